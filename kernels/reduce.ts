/**
 * Reduction kernel template. The input view is arranged so that its flat
 * order is `outSize` groups of `reduceSize` elements; each group may be split
 * into `chunks` partial results, which a second launch combines. A workgroup
 * reduces one (group, chunk) pair with a shared-memory tree, or, for short
 * groups, each invocation reduces a whole group on its own.
 * @module
 */

import { FLAT_INDEX, stridedOffset, WGSL_HELPERS, WORKGROUP } from "./common.ts";

/** Kernel variants: one workgroup per group, or one invocation per group. */
export type ReduceStrategy = "workgroup" | "thread";

const INIT: Record<string, string> = { sum: "0.0", max: "lg_neg_inf()" };
const COMBINE: Record<string, (a: string, b: string) => string> = {
  sum: (a, b) => `${a} + ${b}`,
  max: (a, b) => `lg_max(${a}, ${b})`,
};

/**
 * `args` layout: `[outSize, reduceSize, chunks, chunkLength, offset,
 * shape[0..ndim), strides[0..ndim)]`.
 */
export function reduceMeta(
  outSize: number,
  reduceSize: number,
  chunks: number,
  chunkLength: number,
  view: {
    offset: number;
    shape: readonly number[];
    strides: readonly number[];
  },
): Uint32Array {
  const nd = view.shape.length;
  const meta = new Uint32Array(5 + 2 * nd);
  meta.set([outSize, reduceSize, chunks, chunkLength, view.offset]);
  meta.set(view.shape, 5);
  meta.set(view.strides, 5 + nd);
  return meta;
}

/** Cache key of the program `reduceKernel` makes. */
export function reduceKey(
  op: string,
  strategy: ReduceStrategy,
  ndim: number,
  dense: boolean,
) {
  return `reduce:${op}:${strategy}:${dense ? "dense" : ndim}`;
}

/** WGSL source of a reduction kernel. Bindings: args, out, input. */
export function reduceKernel(
  op: string,
  strategy: ReduceStrategy,
  ndim: number,
  dense: boolean,
): string {
  const load = dense ? `in0[args[4] + flat]` : `in0[off]`;
  const offset = dense ? "" : stridedOffset(ndim, "flat", "5u", `${5 + ndim}u`, "args[4]", "off");
  const accumulate = (loop: string) => `
  var acc = ${INIT[op]};
  ${loop} {
    let flat = base + r;${offset}
    acc = ${COMBINE[op]("acc", load)};
  }`;
  const header = `
${WGSL_HELPERS}
@group(0) @binding(0) var<storage, read> args: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> in0: array<f32>;
`;
  if (strategy === "thread") {
    return `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = ${FLAT_INDEX};
  if (g >= args[0] * args[2]) { return; }
  let o = g / args[2];
  let c = g % args[2];
  let base = o * args[1];
  let start = c * args[3];
  let end = min(start + args[3], args[1]);
  ${accumulate("for (var r = start; r < end; r = r + 1u)")}
  out[g] = acc;
}
`;
  }
  return `${header}
var<workgroup> partial: array<f32, ${WORKGROUP}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let valid = g < args[0] * args[2];
  let o = g / args[2];
  let c = g % args[2];
  let base = o * args[1];
  let start = c * args[3];
  let end = select(start, min(start + args[3], args[1]), valid);
  ${accumulate(`for (var r = start + lid; r < end; r = r + ${WORKGROUP}u)`)}
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { partial[lid] = ${COMBINE[op]("partial[lid]", "partial[lid + s]")}; }
    workgroupBarrier();
  }
  if (lid == 0u && valid) { out[g] = partial[0]; }
}
`;
}
