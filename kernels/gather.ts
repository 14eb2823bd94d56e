/**
 * The `gather` kernel: picks slices of a contiguous input viewed as
 * `[pre, n, post]` along its middle axis, at `count` int32 indices, giving
 * a contiguous `[pre, count, post]`. A negative index counts from the end
 * (`-1` is `n - 1`); an index still outside `[0, n)` is clamped to it, so a
 * kernel never reads out of bounds. One invocation per output element; the
 * values are copied as stored, whatever their dtype.
 * @module
 */

import { arg, ARGS_DECL, FLAT_INDEX, header, storageType, WORKGROUP } from "./common.ts";

/** `args` layout: `[total, post, count, n, inputOffset, indexOffset]`. */
export function gatherArgs(
  pre: number,
  n: number,
  post: number,
  count: number,
  inputOffset: number,
  indexOffset: number,
): number[] {
  return [pre * count * post, post, count, n, inputOffset, indexOffset];
}

/** WGSL source for one dtype. Bindings: args, out, input, indices. */
export function gatherKernel(dtype: string): string {
  const t = storageType(dtype);
  return /* wgsl */ `
${header([dtype])}
${ARGS_DECL}
@group(0) @binding(1) var<storage, read_write> out: array<${t}>;
@group(0) @binding(2) var<storage, read> in0: array<${t}>;
@group(0) @binding(3) var<storage, read> ids: array<i32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= ${arg(0)}) { return; }
  let post = ${arg(1)};
  let count = ${arg(2)};
  let n = i32(${arg(3)});
  let q = i % post;
  let j = (i / post) % count;
  let p = i / (post * count);
  var k = ids[${arg(5)} + j];
  if (k < 0i) { k += n; }
  k = clamp(k, 0i, n - 1i);
  out[i] = in0[${arg(4)} + (p * u32(n) + u32(k)) * post + q];
}
`;
}
