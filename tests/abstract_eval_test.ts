/**
 * Abstract evaluation: every primitive's output shape and dtype from shapes
 * and dtypes alone. The case table is keyed by `Prim` (a mapped type), each
 * case with its primitive's own parameters, so a primitive added without a
 * case, or a case without the parameters its primitive needs, does not
 * compile; each expected result is written out by hand, independently of
 * the rule.
 * @module
 */

import assert from "node:assert/strict";
import { abstractEval, type Aval } from "../src/abstract_eval.ts";
import { type Prim, type PrimParams, PRIMS } from "../src/primitives.ts";

/** A case of `P`: its parameters are required where `P` has any. */
type Case<P extends Prim> =
  & { inputs: Aval[]; expected: Aval }
  & (Record<never, never> extends PrimParams<P> ? { params?: PrimParams<P> }
    : { params: PrimParams<P> });

const f32 = (...shape: number[]): Aval => ({ shape, dtype: "float32" });
const of = (dtype: Aval["dtype"], ...shape: number[]): Aval => ({ shape, dtype });
const unary = () => ({ inputs: [of("float16", 2, 3)], expected: of("float16", 2, 3) });
const binary = () => ({
  inputs: [of("int32", 4, 1), of("int32", 4, 1)],
  expected: of("int32", 4, 1),
});
const comparison = () => ({ inputs: [f32(3), f32(3)], expected: of("bool", 3) });
const reduction = (dtype?: "int32") => ({
  inputs: [of("int8", 2, 3, 4)],
  params: { axes: [0, 2], ...(dtype ? { dtype } : {}) },
  expected: of(dtype ?? "int8", 3),
});

const CASES: { [P in Prim]: Case<P> } = {
  neg: unary(),
  exp: unary(),
  log: unary(),
  sqrt: unary(),
  tanh: unary(),
  sigmoid: unary(),
  abs: unary(),
  sign: unary(),
  sin: unary(),
  cos: unary(),
  floor: unary(),
  ceil: unary(),
  round: unary(),
  log1p: unary(),
  expm1: unary(),
  convert: { inputs: [f32(2, 2)], params: { dtype: "int8" }, expected: of("int8", 2, 2) },
  add: binary(),
  sub: binary(),
  mul: binary(),
  div: binary(),
  pow: binary(),
  maximum: binary(),
  minimum: binary(),
  floordiv: binary(),
  mod: binary(),
  lt: comparison(),
  le: comparison(),
  eq: comparison(),
  ne: comparison(),
  where: {
    inputs: [of("bool", 2, 5), of("float16", 2, 5), of("float16", 2, 5)],
    expected: of("float16", 2, 5),
  },
  sum: reduction("int32"),
  prod: reduction(),
  max: reduction(),
  min: { inputs: [f32(0, 3)], params: { axes: [1] }, expected: f32(0) },
  matmul: { inputs: [f32(7, 2, 3), f32(7, 3, 5)], expected: f32(7, 2, 5) },
  reshape: { inputs: [f32(2, 6)], params: { shape: [3, 4] }, expected: f32(3, 4) },
  transpose: { inputs: [f32(2, 3, 4)], params: { perm: [2, 0, 1] }, expected: f32(4, 2, 3) },
  broadcast: { inputs: [f32(3, 1)], params: { shape: [2, 3, 4] }, expected: f32(2, 3, 4) },
  slice: {
    inputs: [f32(10, 4)],
    params: { starts: [1, 0], steps: [3, 1], shape: [3, 4] },
    expected: f32(3, 4),
  },
  flip: { inputs: [of("bool", 2, 3)], params: { axes: [1] }, expected: of("bool", 2, 3) },
  pad: {
    inputs: [f32(2, 2)],
    params: { shape: [4, 5], starts: [1, 1], steps: [1, 2], fill: 0 },
    expected: f32(4, 5),
  },
  stopGradient: { inputs: [of("int8", 2, 3)], expected: of("int8", 2, 3) },
  gather: {
    inputs: [f32(5, 6, 7), of("int32", 2, 3)],
    params: { axis: 1 },
    expected: f32(5, 2, 3, 7),
  },
};

Deno.test("abstract evaluation gives every primitive's output shape and dtype", () => {
  for (const prim of PRIMS) {
    const c: Case<Prim> = CASES[prim];
    const { inputs, params = {}, expected } = c;
    assert.deepEqual(abstractEval(prim, inputs, params), expected, prim);
  }
  assert.deepEqual(Object.keys(CASES).sort(), [...PRIMS].sort(), "one case per primitive");
});
