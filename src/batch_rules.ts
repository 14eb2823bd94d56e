/**
 * Batching rules: for each primitive, how to apply it to operands that
 * carry an extra leading batch axis. `vmap` traces a function at the
 * per-example shapes and then replays each equation through these rules,
 * so a batch costs the same number of primitives as one example, never a
 * loop. The batch axis is always axis 0 (moving an axis is a free view),
 * which keeps most rules one line: shift the axes the primitive names by
 * one. The table is a mapped type over `Prim`: a primitive without a rule
 * does not compile.
 * @module
 */

import { apply, hostTensor } from "./core/interpreter.ts";
import { resolveBackend } from "./backends.ts";
import type { ElementwisePrim, Prim, PrimParams, ReducePrim } from "./primitives.ts";
import type { Tensor } from "./tensor.ts";

/** An operand of a batched equation: `t` has the batch axis at 0 when `batched`. */
export interface BatchedValue {
  readonly t: Tensor;
  readonly batched: boolean;
}

/**
 * The rule of one primitive: its result with the batch axis at 0, given
 * operands of which at least one is batched, and the batch size.
 */
export type BatchRule<P extends Prim = Prim> = (
  inputs: readonly BatchedValue[],
  params: PrimParams<P>,
  size: number,
  prim: P,
) => Tensor;

/** The operand with a batch axis: an unbatched one is broadcast (a view). */
function withBatch(v: BatchedValue, size: number): Tensor {
  return v.batched ? v.t : apply("broadcast", [v.t], { shape: [size, ...v.t.shape] });
}

/** Axes of an example, as axes of the batch. */
const shifted = (axes: readonly number[]) => axes.map((a) => a + 1);

/** Elementwise primitives: every operand gets the batch axis. */
const elementwise: BatchRule<ElementwisePrim> = (inputs, params, size, prim) =>
  apply(prim, inputs.map((v) => withBatch(v, size)), params);

/** Reductions: the reduced axes move past the batch axis. */
const reduce: BatchRule<ReducePrim> = ([x], params, _size, prim) =>
  apply(prim, [x.t], { ...params, axes: shifted(params.axes) });

/**
 * Batched matmul. A batched left operand of one example `[m, k]` against a
 * shared right operand `[k, n]` is one `[size·m, k] @ [k, n]` product (the
 * per-example MLP layer); other cases give both operands the batch axis.
 */
const matmul: BatchRule<"matmul"> = ([a, b], _params, size) => {
  if (a.batched && !b.batched && a.t.ndim === 3 && b.t.ndim === 2) {
    const [, m, k] = a.t.shape;
    const flat = apply("reshape", [a.t], { shape: [size * m, k] });
    const product = apply("matmul", [flat, b.t]);
    return apply("reshape", [product], { shape: [size, m, b.t.shape[1]] });
  }
  return apply("matmul", [withBatch(a, size), withBatch(b, size)]);
};

/**
 * `broadcast` may add leading axes to an example; in the batch they go
 * after the batch axis, so the operand first gets them as size-1 axes.
 */
const broadcast: BatchRule<"broadcast"> = ([x], { shape }, size) => {
  const example = x.t.shape.slice(1);
  const lead = shape.length - example.length;
  const padded = lead === 0
    ? x.t
    : apply("reshape", [x.t], { shape: [size, ...Array(lead).fill(1), ...example] });
  return apply("broadcast", [padded], { shape: [size, ...shape] });
};

/** The permutation moving axis `from` of an `ndim`-axis tensor to position `to`. */
export function moveAxisPerm(ndim: number, from: number, to: number): number[] {
  const rest = [...Array(ndim).keys()].filter((a) => a !== from);
  rest.splice(to, 0, from);
  return rest;
}

/**
 * `gather` along `axis`. A batched source with shared indices gathers along
 * `axis + 1`; shared source with batched indices gathers once and moves the
 * batch axis (which lands at `axis`) to the front; when both are batched,
 * the examples' sources are stacked along the gathered axis and each
 * example's indices are offset into its own block.
 */
const gather: BatchRule<"gather"> = ([x, ids], { axis }, size) => {
  if (!ids.batched) return apply("gather", [x.t, ids.t], { axis: axis + 1 });
  if (!x.batched) {
    const out = apply("gather", [x.t, ids.t], { axis });
    return apply("transpose", [out], { perm: moveAxisPerm(out.ndim, axis, 0) });
  }
  // x: [size, pre..., n, post...] → [size·n, pre..., post...].
  const n = x.t.shape[axis + 1];
  const front = apply("transpose", [x.t], { perm: moveAxisPerm(x.t.ndim, axis + 1, 1) });
  const rest = front.shape.slice(2);
  const blocks = apply("reshape", [front], { shape: [size * n, ...rest] });
  // Indices as gather reads them (negative from the end, then clamped), plus
  // each example's block offset.
  const inRange = ids.t.add(ids.t.lt(0).astype("int32").mul(n)).clip(0, Math.max(n - 1, 0));
  const offsets = hostTensor(
    Int32Array.from({ length: size }, (_, b) => b * n),
    "int32",
    [size, ...Array(ids.t.ndim - 1).fill(1)],
    resolveBackend(ids.t.backend),
  );
  const picked = apply("gather", [blocks, inRange.add(offsets)], { axis: 0 });
  // picked: [size, J..., pre..., post...] → [size, pre..., J..., post...].
  const j = ids.t.ndim - 1;
  const pre = axis;
  const perm = [
    0,
    ...Array.from({ length: pre }, (_, i) => 1 + j + i),
    ...Array.from({ length: j }, (_, i) => 1 + i),
    ...Array.from({ length: picked.ndim - 1 - j - pre }, (_, i) => 1 + j + pre + i),
  ];
  return apply("transpose", [picked], { perm });
};

/** Every primitive's batching rule. */
export const BATCH_RULES: { readonly [P in Prim]: BatchRule<P> } = {
  neg: elementwise,
  exp: elementwise,
  log: elementwise,
  sqrt: elementwise,
  tanh: elementwise,
  sigmoid: elementwise,
  abs: elementwise,
  sign: elementwise,
  sin: elementwise,
  cos: elementwise,
  floor: elementwise,
  ceil: elementwise,
  round: elementwise,
  log1p: elementwise,
  expm1: elementwise,
  convert: elementwise,
  add: elementwise,
  sub: elementwise,
  mul: elementwise,
  div: elementwise,
  pow: elementwise,
  maximum: elementwise,
  minimum: elementwise,
  floordiv: elementwise,
  mod: elementwise,
  lt: elementwise,
  le: elementwise,
  eq: elementwise,
  ne: elementwise,
  where: elementwise,
  sum: reduce,
  prod: reduce,
  max: reduce,
  min: reduce,
  matmul,
  reshape: ([x], { shape }, size) => apply("reshape", [x.t], { shape: [size, ...shape] }),
  transpose: ([x], { perm }) => apply("transpose", [x.t], { perm: [0, ...shifted(perm)] }),
  broadcast,
  slice: ([x], { shape, starts, steps }, size) =>
    apply("slice", [x.t], {
      shape: [size, ...shape],
      starts: [0, ...starts],
      steps: [1, ...steps],
    }),
  flip: ([x], { axes }) => apply("flip", [x.t], { axes: shifted(axes) }),
  pad: ([x], { shape, starts, steps, fill }, size) =>
    apply("pad", [x.t], {
      shape: [size, ...shape],
      starts: [0, ...starts],
      steps: [1, ...steps],
      fill,
    }),
  gather,
  stopGradient: ([x]) => apply("stopGradient", [x.t]),
};
