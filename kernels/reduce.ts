/**
 * Reduction kernel template. The input view is arranged so that its flat
 * order is `outSize` groups of `reduceSize` elements (the reduced axes
 * last). A group may be split into `chunks` chunks of `chunkLength`
 * elements, each reduced to one partial result; the backend then reduces the
 * `[outSize, chunks]` partials again. Launch sizes never exceed the
 * 65,535-workgroups-per-dimension limit: the grid is 2-D and each kernel
 * loops over its share, so any length works.
 *
 * Two strategies:
 * - `"workgroup"`: one workgroup of `REDUCE_GROUP` invocations per (group,
 *   chunk); each invocation accumulates a contiguous slice of the chunk
 *   serially, then a tree in workgroup memory combines the invocations.
 *   For long groups.
 * - `"thread"`: one invocation per (group, chunk), accumulating serially.
 *   For many short groups.
 *
 * And three ways of addressing the input (`ReduceLayout`):
 * - `"vec4"`: the view is dense and every chunk starts on a multiple of 4:
 *   `vec4` loads, four partial results per invocation;
 * - `"strided"`: the reduced axes collapse into one stride (one reduced axis,
 *   or several adjacent ones): the group's start is computed once, then one
 *   add per element;
 * - `"generic"`: the full strided index arithmetic per element.
 * @module
 */

import {
  arg,
  ARGS_DECL,
  computeType,
  FLAT_INDEX,
  header,
  loadAs,
  storageType,
  storeAs,
  stridedOffset,
  wgslType,
  WORKGROUP,
} from "./common.ts";

/** Kernel variants: one workgroup per group, or one invocation per group. */
export type ReduceStrategy = "workgroup" | "thread";
/** How the kernel addresses the input. */
export type ReduceLayout = "vec4" | "strided" | "generic";

/** Invocations per workgroup of the `"workgroup"` strategy. */
export const REDUCE_GROUP = 64;

type Compute = "f32" | "i32";

/** The identity of each reduction, per compute type. */
export const REDUCE_INIT: Record<string, Record<Compute, string>> = {
  sum: { f32: "0.0", i32: "0i" },
  prod: { f32: "1.0", i32: "1i" },
  max: { f32: "lg_neg_inf()", i32: "bitcast<i32>(0x80000000u)" },
  min: { f32: "-lg_neg_inf()", i32: "2147483647i" },
};
/** Combining two accumulators (scalars, or vec4s lane by lane). */
export function combiner(op: string, t: Compute, vec: boolean): (a: string, b: string) => string {
  if (op === "sum") return (a, b) => `(${a} + ${b})`;
  if (op === "prod") return (a, b) => `(${a} * ${b})`;
  // Floats propagate NaN (tested on the bits); integers have none.
  const f = t === "i32" ? op : `lg_${op}${vec ? "4" : ""}`;
  return (a, b) => `${f}(${a}, ${b})`;
}
/** Folding a vec4 accumulator into one value. */
function fold4(op: string, t: Compute): (v: string) => string {
  const c = combiner(op, t, false);
  return (v) => c(c(`${v}.x`, `${v}.y`), c(`${v}.z`, `${v}.w`));
}

/**
 * `args` layout: `[outSize, reduceSize, chunks, chunkLength, offset,
 * innerStride, sliceLength, shape[0..ndim), strides[0..ndim)]`.
 * `innerStride` is the stride of the collapsed reduced axes (`"strided"`
 * layout); `sliceLength` the share of a chunk one invocation of the
 * `"workgroup"` strategy reduces (a multiple of 4 for `"vec4"`).
 */
export function reduceArgs(
  outSize: number,
  reduceSize: number,
  chunks: number,
  chunkLength: number,
  view: { offset: number; shape: readonly number[]; strides: readonly number[] },
  innerStride: number,
  sliceLength: number,
): number[] {
  return [
    outSize,
    reduceSize,
    chunks,
    chunkLength,
    view.offset,
    innerStride,
    sliceLength,
    ...view.shape,
    ...view.strides,
  ];
}

const SHAPE_AT = 7;

/** Cache key of the program `reduceKernel` makes. */
export function reduceKey(
  op: string,
  strategy: ReduceStrategy,
  layout: ReduceLayout,
  ndim: number,
  keptRank: number,
  types: { input: string; out: string },
): string {
  return `reduce:${op}:${strategy}:${layout}:${
    layout === "vec4" ? "" : `${ndim}/${keptRank}`
  }:${types.input}>${types.out}`;
}

/**
 * WGSL source of a reduction kernel. Bindings: args, out, input. It
 * accumulates in the input's compute type (f32 for floats, i32 wrapping for
 * integers) and stores `types.out` (the partial results of a float16
 * reduction are kept as float32).
 */
export function reduceKernel(
  op: string,
  strategy: ReduceStrategy,
  layout: ReduceLayout,
  ndim: number,
  keptRank: number,
  types: { input: string; out: string },
): string {
  const vec = layout === "vec4";
  const t = computeType(types.input);
  const stridesAt = SHAPE_AT + ndim;
  // Statements computing `at`, the offset of element `r` of group `o`, given
  // `groupBase` (strided layout) computed once per invocation.
  const groupBase = layout === "strided"
    ? stridedOffset(keptRank, "o", SHAPE_AT, stridesAt, 4, "groupBase")
    : "";
  const raw = vec
    ? `in0[(${arg(4)} + o * ${arg(1)} + r) / 4u]`
    : layout === "strided"
    ? `in0[groupBase + r * ${arg(5)}]`
    : `in0[at]`;
  const load = loadAs(raw, types.input, t, vec);
  const perElement = layout === "generic"
    ? stridedOffset(ndim, "o * " + arg(1) + " + r", SHAPE_AT, stridesAt, 4, "at")
    : "";
  const acc = wgslType(t, vec);
  const init = vec ? `${acc}(${REDUCE_INIT[op][t]})` : REDUCE_INIT[op][t];
  const combine = combiner(op, t, vec);
  const fold = vec ? fold4(op, t)("acc") : "acc";
  // Serial accumulation of elements [start, end) of group `o`, `step` apart.
  const accumulate = (first: string, step: string) => {
    const loop = `
  var acc = ${init};
  var r = ${first};`;
    // Contiguous vec4 runs: 4 loads per iteration (16 elements) while they last;
    // fewer loop iterations matter on software adapters.
    const unrolled = vec && step === "4u"
      ? `
  for (; r + 16u <= end; r += 16u) {
    let v0 = ${load.replace("+ r)", "+ r + 0u)")};
    let v1 = ${load.replace("+ r)", "+ r + 4u)")};
    let v2 = ${load.replace("+ r)", "+ r + 8u)")};
    let v3 = ${load.replace("+ r)", "+ r + 12u)")};
    acc = ${combine("acc", combine(combine("v0", "v1"), combine("v2", "v3")))};
  }`
      : "";
    return `${loop}${unrolled}
  for (; r < end; r += ${step}) {
${perElement}
    acc = ${combine("acc", load)};
  }`;
  };
  const head = `
${header([types.input, types.out])}
${ARGS_DECL}
@group(0) @binding(1) var<storage, read_write> out: array<${storageType(types.out)}>;
@group(0) @binding(2) var<storage, read> in0: array<${wgslType(storageType(types.input), vec)}>;
`;
  const store = (v: string) => storeAs(v, t, types.out, false);
  // A vec4 invocation takes 4 consecutive elements at a time.
  const width = vec ? 4 : 1;
  if (strategy === "thread") {
    return `${head}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = ${FLAT_INDEX};
  if (g >= ${arg(0)} * ${arg(2)}) { return; }
  let o = g / ${arg(2)};
  let start = (g % ${arg(2)}) * ${arg(3)};
  let end = min(start + ${arg(3)}, ${arg(1)});
${groupBase}
${accumulate("start", `${width}u`)}
  out[g] = ${store(fold)};
}
`;
  }
  return `${head}
var<workgroup> partial: array<${t}, ${REDUCE_GROUP}>;

@compute @workgroup_size(${REDUCE_GROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let valid = g < ${arg(0)} * ${arg(2)};
  let o = select(0u, g / ${arg(2)}, valid);
  let start = (g % ${arg(2)}) * ${arg(3)};
  let end = select(start, min(start + ${arg(3)}, ${arg(1)}), valid);
${groupBase}
  // This invocation's contiguous slice of the chunk.
  let chunkEnd = end;
  let first = min(start + lid * ${arg(6)}, chunkEnd);
  {
    let end = min(first + ${arg(6)}, chunkEnd);
${accumulate("first", `${width}u`)}
    partial[lid] = ${fold};
  }
  workgroupBarrier();
  for (var s = ${REDUCE_GROUP / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] = ${combiner(op, t, false)("partial[lid]", "partial[lid + s]")}; }
    workgroupBarrier();
  }
  if (lid == 0u && valid) { out[g] = ${store("partial[0]")}; }
}
`;
}
