/**
 * Abstract evaluation: each primitive's output shape and dtype from its
 * inputs' shapes and dtypes alone, with no data and no backend. The forward
 * rules take their output shapes from here, and a transform that traces from
 * `{ shape, dtype }` (a compiler planning buffers, batching) will too.
 *
 * The table is a mapped type over `Prim`: a primitive without a rule does not
 * compile. Inputs are assumed validated by the op layer (shapes agree,
 * parameters in range), as for the forward rules.
 * @module
 */

import type { DType } from "./dtype.ts";
import type { Prim, PrimParams } from "./primitives.ts";
import type { Shape } from "./shape.ts";

/** An abstract value: what is known of a tensor before it is computed. */
export interface Aval {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** A primitive's abstract-evaluation rule. */
export type AbstractEvalRule = (inputs: readonly Aval[], params: PrimParams) => Aval;

/** Elementwise: the inputs' (common) shape and dtype. */
const same: AbstractEvalRule = ([x]) => ({ shape: x.shape, dtype: x.dtype });
/** Comparisons: the inputs' shape, `bool`. */
const compare: AbstractEvalRule = ([x]) => ({ shape: x.shape, dtype: "bool" });
/** Reductions over `params.axes` (dropped), accumulating in `params.dtype` if given. */
const reduce: AbstractEvalRule = ([x], { axes, dtype }) => ({
  shape: x.shape.filter((_, i) => !axes!.includes(i)),
  dtype: dtype ?? x.dtype,
});
/** Movement to `params.shape`, dtype kept. */
const toShape: AbstractEvalRule = ([x], { shape }) => ({ shape: shape!, dtype: x.dtype });

/** Every primitive's abstract-evaluation rule. */
export const ABSTRACT_EVAL: { readonly [P in Prim]: AbstractEvalRule } = {
  neg: same,
  exp: same,
  log: same,
  sqrt: same,
  tanh: same,
  sigmoid: same,
  abs: same,
  sign: same,
  sin: same,
  cos: same,
  floor: same,
  ceil: same,
  round: same,
  log1p: same,
  expm1: same,
  convert: ([x], { dtype }) => ({ shape: x.shape, dtype: dtype! }),
  add: same,
  sub: same,
  mul: same,
  div: same,
  pow: same,
  maximum: same,
  minimum: same,
  floordiv: same,
  mod: same,
  lt: compare,
  le: compare,
  eq: compare,
  ne: compare,
  // where(cond, a, b): the branches' dtype (cond is bool).
  where: ([, a]) => ({ shape: a.shape, dtype: a.dtype }),
  sum: reduce,
  prod: reduce,
  max: reduce,
  min: reduce,
  // Batch axes already broadcast to agree: [...batch, m, k] @ [...batch, k, n].
  matmul: ([a, b]) => ({
    shape: [...a.shape.slice(0, -1), b.shape[b.shape.length - 1]],
    dtype: a.dtype,
  }),
  reshape: toShape,
  transpose: ([x], { perm }) => ({ shape: perm!.map((p) => x.shape[p]), dtype: x.dtype }),
  broadcast: toShape,
  slice: toShape,
  flip: same,
  pad: toShape,
  // x[..., ids, ...] along `axis`: the indices' axes replace it.
  gather: ([x, ids], { axis }) => ({
    shape: [...x.shape.slice(0, axis!), ...ids.shape, ...x.shape.slice(axis! + 1)],
    dtype: x.dtype,
  }),
};

/** The output of `prim` applied to `inputs` with `params`, abstractly. */
export function abstractEval(prim: Prim, inputs: readonly Aval[], params: PrimParams): Aval {
  return ABSTRACT_EVAL[prim](inputs, params);
}
