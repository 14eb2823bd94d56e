/**
 * The JVP rule of every primitive, on every backend, against two references
 * computed without it:
 *
 * - central differences of the primitive itself along the tangent (away from
 *   kinks, where a derivative exists);
 * - the primitive's VJP rule, through the transpose identity
 *   `⟨u, J v⟩ = Σᵢ ⟨(Jᵀ u)ᵢ, vᵢ⟩` for random `u` and `v` — at kinks and ties
 *   too, so forward and reverse mode describe the same Jacobian there.
 *
 * The case table is keyed by `Prim` (a mapped type): a primitive added
 * without a case does not compile.
 * @module
 */

import assert from "node:assert/strict";
import { type DType, type Tensor, tensor } from "../mod.ts";
import { JVP_RULES } from "../src/jvp_rules.ts";
import { VJP_RULES } from "../src/vjp_rules.ts";
import { type Prim, type PrimParams, PRIMS } from "../src/primitives.ts";
import { apply } from "../src/tensor.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type Values = number | Values[];

interface Case {
  /** Input values, and dtypes where not float32. */
  inputs: { values: Values; dtype?: DType }[];
  params?: PrimParams;
  /** Values at kinks or ties: only the transpose identity applies. */
  kink?: boolean;
}

const x23 = [[0.3, -0.7, 1.2], [0.9, 0.4, -1.1]];
const pos23 = [[0.3, 0.7, 1.2], [0.9, 0.4, 1.6]];
const y23 = [[-0.2, 0.5, 0.8], [1.3, -0.6, 0.45]];
// Ratios to pos23 well away from integers (floordiv and mod jump there).
const offGrid = [[0.35, -0.75, 1.3], [0.95, 0.45, -1.15]];
const f = (values: Values): { values: Values } => ({ values });
const unary = (values: Values = x23): Case => ({ inputs: [f(values)] });
const binary = (a: Values = x23, b: Values = y23, kink = false): Case => ({
  inputs: [f(a), f(b)],
  kink,
});

const CASES: { [P in Prim]: Case[] } = {
  neg: [unary()],
  exp: [unary()],
  log: [unary(pos23)],
  sqrt: [unary(pos23)],
  tanh: [unary()],
  sigmoid: [unary()],
  abs: [unary(), { inputs: [f([0, 1, -2, 0])], kink: true }],
  sign: [unary()],
  sin: [unary()],
  cos: [unary()],
  floor: [unary()],
  ceil: [unary()],
  round: [unary()],
  log1p: [unary(pos23)],
  expm1: [unary()],
  convert: [
    { inputs: [f(x23)], params: { dtype: "float16" } },
    { inputs: [f(x23)], params: { dtype: "int32" } },
  ],
  add: [binary()],
  sub: [binary()],
  mul: [binary()],
  div: [binary(x23, pos23)],
  pow: [binary(pos23, y23), binary([0, 0, 1.5, 2], [2, 3, 2, 0], true)],
  maximum: [binary(), binary([1, 2, 3, 4], [1, 0, 3, 5], true)],
  minimum: [binary(), binary([1, 2, 3, 4], [1, 0, 3, 5], true)],
  floordiv: [binary(offGrid, pos23)],
  mod: [binary(offGrid, pos23)],
  lt: [binary()],
  le: [binary()],
  eq: [binary()],
  ne: [binary()],
  where: [{ inputs: [{ values: [[1, 0, 1], [0, 0, 1]], dtype: "bool" }, f(x23), f(y23)] }],
  sum: [{ inputs: [f(x23)], params: { axes: [1] } }, {
    inputs: [f(x23)],
    params: { axes: [0, 1] },
  }],
  prod: [{ inputs: [f(x23)], params: { axes: [1] } }, {
    inputs: [f([[0, 2, 3], [0, 0, 4]])],
    params: { axes: [1] },
  }],
  max: [{ inputs: [f(x23)], params: { axes: [1] } }, {
    inputs: [f([[1, 3, 3], [2, 2, 2]])],
    params: { axes: [1] },
    kink: true,
  }],
  min: [{ inputs: [f(x23)], params: { axes: [0] } }, {
    inputs: [f([[1, 3, 3], [1, 2, 2]])],
    params: { axes: [0, 1] },
    kink: true,
  }],
  matmul: [binary(x23, [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]])],
  reshape: [{ inputs: [f(x23)], params: { shape: [3, 2] } }],
  transpose: [{ inputs: [f(x23)], params: { perm: [1, 0] } }],
  broadcast: [{ inputs: [f([[0.5], [-1]])], params: { shape: [3, 2, 4] } }],
  slice: [{ inputs: [f(x23)], params: { shape: [2, 2], starts: [0, 0], steps: [1, 2] } }],
  flip: [{ inputs: [f(x23)], params: { axes: [1] } }],
  pad: [{
    inputs: [f(x23)],
    params: { shape: [4, 7], starts: [1, 0], steps: [1, 3], fill: 2.5 },
  }],
  gather: [{
    inputs: [f(x23), { values: [2, 0, 2, 1], dtype: "int32" }],
    params: { axis: 1 },
  }],
};

/** Deterministic values in [-1, 1), shaped like `t`. */
function direction(t: Tensor, seed: number): Tensor {
  const out = new Float32Array(t.size);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return tensor(out).reshape(t.shape).astype(t.dtype);
}

const isFloatTensor = (t: Tensor) => t.dtype === "float32" || t.dtype === "float16";
const dot = async (a: Tensor, b: Tensor) => await a.astype("float32").mul(b).sum().item();

for (const prim of PRIMS) {
  CASES[prim].forEach((c, k) => {
    testBoth(
      `jvp rule of ${prim} (case ${k}): central differences and the VJP's transpose`,
      async () => {
        const inputs = c.inputs.map(({ values, dtype }) => tensor(values as number[], { dtype }));
        const params = c.params ?? {};
        const output = apply(prim, inputs, params);
        const eqn = { prim, inputs, output, params };
        const wants = inputs.map(isFloatTensor);
        const tangents = inputs.map((x, i) => (wants[i] ? direction(x, 17 + i) : null));
        const jvp = JVP_RULES[prim](tangents, eqn);
        const float = isFloatTensor(output);
        if (!float) assert.equal(jvp, null, `${prim}: an integer output has no tangent`);
        const forward = jvp ?? output.astype("float32").mul(0);
        assert.deepEqual(forward.shape, output.shape, `${prim}: tangent shape`);
        if (float && !c.kink) {
          // float16 rounds a step of 1e-3 away: a larger one (the cases are smooth).
          const eps = output.dtype === "float16" ? 5e-2 : 1e-3;
          const at = (sign: number) =>
            apply(
              prim,
              inputs.map((x, i) => (tangents[i] ? x.add(tangents[i]!.mul(sign * eps)) : x)),
              params,
            ).astype("float32");
          const central = at(1).sub(at(-1)).div(2 * eps);
          const tol = output.dtype === "float16" ? 2e-2 : 5e-3;
          assertClose(await forward.data(), await central.data(), {
            atol: tol,
            rtol: 1e-2,
            label: `${prim}: jvp vs central differences`,
          });
        }
        if (float) {
          // ⟨u, J v⟩ = Σᵢ ⟨(Jᵀ u)ᵢ, vᵢ⟩
          const u = direction(output, 91);
          const cotangents = VJP_RULES[prim](u, eqn, wants);
          let reverse = 0;
          for (const [i, v] of tangents.entries()) {
            if (v && cotangents[i]) reverse += await dot(cotangents[i]!, v);
          }
          const forwardDot = await dot(forward, u);
          assert.ok(
            Math.abs(forwardDot - reverse) <= 1e-4 + 2e-3 * Math.abs(reverse),
            `${prim}: ⟨u, Jv⟩ = ${forwardDot} but ⟨Jᵀu, v⟩ = ${reverse}`,
          );
        }
      },
    );
  });
}
