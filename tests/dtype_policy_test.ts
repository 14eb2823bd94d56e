/**
 * The per-primitive dtype policy (`DTYPE_POLICY` in `src/dtype.ts`) against
 * what the op layer and the backends do:
 *
 * - every elementwise primitive that computes on integers natively runs on
 *   int32 (and bool, where it takes bool) on every backend, with the dtype
 *   abstract evaluation gives;
 * - the op of each unary and binary primitive computes integers in float32,
 *   leaves them unchanged, or refuses bool exactly where the policy says;
 * - sums and products accumulate int8 and bool in int32, and matmul refuses
 *   integers.
 * @module
 */

import assert from "node:assert/strict";
import { type DType, type Tensor, tensor } from "../mod.ts";
import { abstractEval } from "../src/abstract_eval.ts";
import {
  acceptsIntegers,
  accumulationDType,
  computesInFloat,
  DTYPE_POLICY,
  isIdentityOnIntegers,
  refusesBool,
} from "../src/dtype.ts";
import {
  BINARY_PRIMS,
  type BinaryPrim,
  type ElementwisePrim,
  PRIMS,
  REDUCE_PRIMS,
  UNARY_PRIMS,
  type UnaryPrim,
} from "../src/primitives.ts";
import { apply } from "../src/core/interpreter.ts";
import { testBoth } from "./_helpers.ts";

/** The `Tensor` method of each unary primitive (`convert` is `astype`, with a dtype). */
const UNARY_METHOD: { [P in Exclude<UnaryPrim, "convert">]: P } = {
  neg: "neg",
  exp: "exp",
  log: "log",
  sqrt: "sqrt",
  tanh: "tanh",
  sigmoid: "sigmoid",
  abs: "abs",
  sign: "sign",
  sin: "sin",
  cos: "cos",
  floor: "floor",
  ceil: "ceil",
  round: "round",
  log1p: "log1p",
  expm1: "expm1",
};

/** The `Tensor` method of each binary primitive. */
const BINARY_METHOD: { [P in BinaryPrim]: keyof Tensor } = {
  add: "add",
  sub: "sub",
  mul: "mul",
  div: "div",
  pow: "pow",
  maximum: "maximum",
  minimum: "minimum",
  floordiv: "floorDiv",
  mod: "mod",
  lt: "lt",
  le: "le",
  eq: "eq",
  ne: "ne",
};

type Method = (this: Tensor, ...args: unknown[]) => Tensor;
const call = (x: Tensor, method: keyof Tensor, ...args: unknown[]): Tensor =>
  (x[method] as Method).call(x, ...args);

const inputs = (prim: ElementwisePrim, dtype: DType): Tensor[] => {
  const x = tensor(dtype === "bool" ? [1, 0, 1] : [3, -2, 5], { dtype });
  const y = tensor(dtype === "bool" ? [1, 1, 0] : [2, 4, -3], { dtype });
  if (prim === "where") return [tensor([1, 0, 1], { dtype: "bool" }), x, y];
  return (BINARY_PRIMS as readonly string[]).includes(prim) ? [x, y] : [x];
};

const ELEMENTWISE: readonly ElementwisePrim[] = [...UNARY_PRIMS, ...BINARY_PRIMS, "where"];

testBoth("primitives that compute on integers natively run on int32, int8 and bool", async () => {
  for (const prim of ELEMENTWISE) {
    if (DTYPE_POLICY[prim].integers !== "native") continue;
    const dtypes: DType[] = refusesBool(prim) ? ["int32", "int8"] : ["int32", "int8", "bool"];
    for (const dtype of dtypes) {
      const xs = inputs(prim, dtype);
      const params = prim === "convert" ? { dtype: "float32" as const } : {};
      const out = apply(prim, xs, params);
      const expected = abstractEval(
        prim,
        xs.map((x) => ({ shape: x.shape, dtype: x.dtype })),
        params,
      );
      assert.deepEqual({ shape: out.shape, dtype: out.dtype }, expected, `${prim} on ${dtype}`);
      await out.data();
    }
  }
});

Deno.test("the ops of unary and binary primitives follow the policy on integers and bool", async () => {
  const ints = tensor([3, -2, 5], { dtype: "int32" });
  const bools = tensor([1, 0, 1], { dtype: "bool" });
  const cases: (readonly [UnaryPrim | BinaryPrim, (x: Tensor) => Tensor])[] = [
    ...Object.entries(UNARY_METHOD).map(([prim, method]) =>
      [prim as UnaryPrim, (x: Tensor) => call(x, method)] as const
    ),
    ...Object.entries(BINARY_METHOD).map(([prim, method]) =>
      [prim as BinaryPrim, (x: Tensor) => call(x, method, x)] as const
    ),
  ];
  for (const [prim, op] of cases) {
    const out = op(ints);
    const policy = DTYPE_POLICY[prim];
    const expected = computesInFloat(prim)
      ? "float32"
      : policy.output === "bool"
      ? "bool"
      : "int32";
    assert.equal(out.dtype, expected, `${prim} of int32`);
    if (isIdentityOnIntegers(prim)) {
      assert.deepEqual(Array.from(await out.data()), [3, -2, 5], prim);
    }
    if (refusesBool(prim)) assert.throws(() => op(bools), TypeError, `${prim} of bool`);
    else op(bools);
  }
  assert.equal(cases.length, UNARY_PRIMS.length - 1 + BINARY_PRIMS.length, "every primitive");
});

Deno.test("sums and products accumulate int8 and bool in int32; matmul refuses integers", () => {
  for (const prim of REDUCE_PRIMS) {
    for (const dtype of ["int8", "bool", "int32", "float32"] as const) {
      const x = tensor([[1, 0], [1, 1]], { dtype });
      assert.equal(call(x, prim, 1).dtype, accumulationDType(prim, dtype), `${prim} of ${dtype}`);
    }
  }
  for (const prim of PRIMS) assert.equal(acceptsIntegers(prim), prim !== "matmul", prim);
  const ints = tensor([[1, 2], [3, 4]], { dtype: "int32" });
  assert.throws(() => ints.matmul(ints), TypeError);
});
