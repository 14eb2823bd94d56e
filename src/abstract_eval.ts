/**
 * Abstract evaluation: each primitive's output shape and dtype from its
 * inputs' shapes and dtypes alone, with no data and no backend. The forward
 * rules take their output shapes from here, and a transform that traces from
 * `{ shape, dtype }` (a compiler planning buffers, batching) will too.
 *
 * The table is a mapped type over `Prim`, each rule taking its primitive's
 * own parameters: a primitive without a rule does not compile. Output dtypes
 * follow the primitive's `DTYPE_POLICY` entry (`dtype.ts`). Inputs are
 * assumed validated by the op layer (shapes agree, parameters in range), as
 * for the forward rules.
 * @module
 */

import { type DType, outputDType } from "./dtype.ts";
import type { Prim, PrimParams, ReducePrim } from "./primitives.ts";
import type { Shape } from "./shape.ts";

/** An abstract value: what is known of a tensor before it is computed. */
export interface Aval {
  readonly shape: Shape;
  readonly dtype: DType;
}

/**
 * A primitive's abstract-evaluation rule, given its inputs, its parameters
 * and its own name (so one family helper serves many primitives).
 */
export type AbstractEvalRule<P extends Prim = Prim> = (
  inputs: readonly Aval[],
  params: PrimParams<P>,
  prim: P,
) => Aval;

const dtypes = (inputs: readonly Aval[]) => inputs.map((x) => x.dtype);

/** Elementwise: the inputs' (common) shape; the dtype by the primitive's policy. */
const elementwise: AbstractEvalRule = (inputs, _params, prim) => ({
  shape: inputs[0].shape,
  dtype: outputDType(prim, dtypes(inputs)),
});
/** Reductions over `params.axes` (dropped), accumulating in `params.dtype` if given. */
const reduce: AbstractEvalRule<ReducePrim> = ([x], params, prim) => ({
  shape: x.shape.filter((_, i) => !params.axes.includes(i)),
  dtype: outputDType(prim, [x.dtype], "dtype" in params ? params.dtype : undefined),
});
/** Movement to `params.shape`, dtype kept. */
const toShape: AbstractEvalRule<"reshape" | "broadcast" | "slice" | "pad"> = ([x], { shape }) => ({
  shape,
  dtype: x.dtype,
});

/** Every primitive's abstract-evaluation rule. */
export const ABSTRACT_EVAL: { readonly [P in Prim]: AbstractEvalRule<P> } = {
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
  convert: ([x], { dtype }, prim) => ({
    shape: x.shape,
    dtype: outputDType(prim, [x.dtype], dtype),
  }),
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
  // where(cond, a, b): the branches' dtype (cond is bool).
  where: elementwise,
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
  transpose: ([x], { perm }) => ({ shape: perm.map((p) => x.shape[p]), dtype: x.dtype }),
  broadcast: toShape,
  slice: toShape,
  flip: ([x]) => ({ shape: x.shape, dtype: x.dtype }),
  pad: toShape,
  // x[..., ids, ...] along `axis`: the indices' axes replace it.
  stopGradient: ([x]) => ({ shape: x.shape, dtype: x.dtype }),
  gather: ([x, ids], { axis }) => ({
    shape: [...x.shape.slice(0, axis), ...ids.shape, ...x.shape.slice(axis + 1)],
    dtype: x.dtype,
  }),
};

/** The output of `prim` applied to `inputs` with `params`, abstractly. */
export function abstractEval<P extends Prim>(
  prim: P,
  inputs: readonly Aval[],
  params: PrimParams<P>,
): Aval {
  return ABSTRACT_EVAL[prim](inputs, params, prim);
}
