/**
 * Both gradient rules of every primitive — the JVP rule (forward mode) and
 * the VJP rule (reverse mode) — on every backend, from one table of cases
 * keyed by `Prim`, against references computed without them:
 *
 * - central differences of the primitive itself: along a random tangent for
 *   the JVP (every output element), and along each input element for the
 *   VJP (the cotangent `Jᵀu` for a random `u`, element by element);
 * - at kinks and ties, where no derivative exists, the one-sided differences:
 *   the rule's value must lie between them (a subgradient);
 * - at jumps of a piecewise-constant primitive, the derivative almost
 *   everywhere, 0;
 * - the transpose identity `⟨u, J v⟩ = Σᵢ ⟨(Jᵀ u)ᵢ, vᵢ⟩` and the double-VJP
 *   identity `J v = vjp(u ↦ Jᵀu)(v)` (the VJP rule transposed by reverse
 *   mode), so the two rules describe the same Jacobian, ties included.
 *
 * The table is a mapped type over `Prim`: a primitive added without a case
 * does not compile. Primitives need inputs of equal shapes; broadcasting is
 * checked a level up, through the public ops, by the same harness with the
 * `jvp` and `vjp` transforms (`OP_CASES`).
 *
 * (`jacfwd(f) == jacrev(f)` and the exact Hessian of a quadratic are in
 * `jvp_test.ts`.)
 * @module
 */

import assert from "node:assert/strict";
import { type DType, jvp, stack, type Tensor, tensor, vjp, where } from "../mod.ts";
import { JVP_RULES } from "../src/jvp_rules.ts";
import { VJP_RULES } from "../src/vjp_rules.ts";
import { type Prim, type PrimParams, PRIMS } from "../src/primitives.ts";
import { apply } from "../src/core/interpreter.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type Values = number | Values[];

/** Where a case sits: smooth (the default), at a kink or tie, or at a jump. */
type Kind = "smooth" | "kink" | "jump";

interface Case {
  /** Input values, and dtypes where not float32. */
  inputs: { values: Values; dtype?: DType }[];
  params?: PrimParams;
  /**
   * `"kink"`: values at kinks or ties, where the rules must pick a value
   * between the one-sided differences. `"jump"`: values at jumps of a
   * piecewise-constant primitive, where the rules give 0.
   */
  kind?: Kind;
}

const x23 = [[0.3, -0.7, 1.2], [0.9, 0.4, -1.1]];
const pos23 = [[0.3, 0.7, 1.2], [0.9, 0.4, 1.6]];
const y23 = [[-0.2, 0.5, 0.8], [1.3, -0.6, 0.45]];
// Ratios to pos23 well away from integers (floordiv and mod jump there).
const offGrid = [[0.35, -0.75, 1.3], [0.95, 0.45, -1.15]];
const f = (values: Values): { values: Values } => ({ values });
const unary = (values: Values = x23, kind: Kind = "smooth"): Case => ({
  inputs: [f(values)],
  kind,
});
const binary = (a: Values = x23, b: Values = y23, kind: Kind = "smooth"): Case => ({
  inputs: [f(a), f(b)],
  kind,
});

const CASES: { [P in Prim]: Case[] } = {
  neg: [unary()],
  exp: [unary()],
  log: [unary(pos23)],
  sqrt: [unary(pos23)],
  tanh: [unary()],
  sigmoid: [unary()],
  abs: [unary(), unary([0, 1, -2, 0], "kink")],
  sign: [unary(), unary([0, -0, 2, -1], "jump")],
  sin: [unary()],
  cos: [unary()],
  floor: [unary(), unary([1, -2, 0, 3], "jump")],
  ceil: [unary(), unary([1, -2, 0, 3], "jump")],
  round: [unary(), unary([0.5, 1.5, -0.5, 2], "jump")],
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
  // At base 0: integer exponents (smooth in the base), and 0^y for y > 0 (0 near y).
  pow: [binary(pos23, y23), binary([0, 0, 1.5, 2], [2, 3, 2, 0], "kink")],
  maximum: [binary(), binary([1, 2, 3, 4], [1, 0, 3, 5], "kink")],
  minimum: [binary(), binary([1, 2, 3, 4], [1, 0, 3, 5], "kink")],
  floordiv: [binary(offGrid, pos23), binary([2, 3, -4, 0], [1, 1.5, 2, 0.5], "jump")],
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
    kind: "kink",
  }],
  min: [{ inputs: [f(x23)], params: { axes: [0] } }, {
    inputs: [f([[1, 3, 3], [1, 2, 2]])],
    params: { axes: [0, 1] },
    kind: "kink",
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
  // Its derivative is 0 by definition: checked as at a jump (both rules 0).
  stopGradient: [unary(x23, "jump")],
};

/**
 * Functions built from the public ops: broadcasting (which the primitives
 * do not do: the ops insert `broadcast` and reduce the cotangent back), a
 * tensor used twice, and kinks, ties and jumps of composites.
 */
const OP_CASES: { name: string; fn: (...xs: Tensor[]) => Tensor; inputs: Values[]; kind?: Kind }[] =
  [
    { name: "add [2,3] + [3]", fn: (a, b) => a.add(b), inputs: [x23, [0.5, -1, 2]] },
    { name: "sub [2,1] - [3]", fn: (a, b) => a.sub(b), inputs: [[[0.3], [-0.8]], [0.5, -1, 2]] },
    { name: "mul [2,3] * [2,1]", fn: (a, b) => a.mul(b), inputs: [x23, [[0.5], [-1.5]]] },
    { name: "div [2,3] / [3]", fn: (a, b) => a.div(b), inputs: [x23, [0.5, 1.25, -2]] },
    { name: "pow [2,3] ** [3]", fn: (a, b) => a.pow(b), inputs: [pos23, [2, -0.5, 1.5]] },
    {
      name: "where(cond [2,1], [3], [2,3])",
      fn: (a, b) => where(tensor([[1], [0]], { dtype: "bool" }), a, b),
      inputs: [[0.5, -1, 2], x23],
    },
    {
      name: "matmul [2,2,3] @ [3,2] (batch broadcast)",
      fn: (a, b) => a.matmul(b),
      inputs: [[x23, y23], [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]],
    },
    {
      name: "outer product of a tensor with itself ([3,1] * [3])",
      fn: (a) => a.reshape([3, 1]).mul(a),
      inputs: [[0.5, -1, 2]],
    },
    {
      name: "maximum [2,3] vs [3], with ties",
      fn: (a, b) => a.maximum(b),
      inputs: [[[1, 2, 3], [0, 2, 5]], [1, 2, 4]],
      kind: "kink",
    },
    {
      name: "minimum [2,1] vs [2,3], with ties",
      fn: (a, b) => a.minimum(b),
      inputs: [[[1], [2]], [[1, 0, 3], [2, 2, 5]]],
      kind: "kink",
    },
    { name: "relu at 0", fn: (a) => a.relu(), inputs: [[0, -1, 0, 2]], kind: "kink" },
    {
      name: "relu as where(x > 0, x, 0), at 0",
      fn: (a) => where(a.gt(0), a, 0),
      inputs: [[0, -1, 0, 2]],
      kind: "kink",
    },
    { name: "abs at 0", fn: (a) => a.abs(), inputs: [[0, -1, 0, 2]], kind: "kink" },
    {
      name: "max over an axis, with ties",
      fn: (a) => a.max(1),
      inputs: [[[1, 3, 3], [2, 2, 2]]],
      kind: "kink",
    },
    {
      name: "min of everything, with ties",
      fn: (a) => a.min(),
      inputs: [[[1, 3, 1], [2, 1, 2]]],
      kind: "kink",
    },
    { name: "x ** 2 and x ** 3 at 0", fn: (a) => a.pow(tensor([2, 3])), inputs: [[0, 0]] },
    {
      name: "0 ** y (the exponent's derivative at base 0)",
      fn: (b) => tensor([0, 0]).pow(b),
      inputs: [[2, 0.5]],
    },
    {
      name: "sign(x) · x² at 0 (the jump of sign times 0)",
      fn: (a) => a.sign().mul(a.square()),
      inputs: [[0, 1, -2]],
    },
    { name: "sign at 0", fn: (a) => a.sign().mul(3), inputs: [[0, 1, -2]], kind: "jump" },
    { name: "floor at integers", fn: (a) => a.floor(), inputs: [[1, -2, 0]], kind: "jump" },
  ];

// ---- references ---------------------------------------------------------------------------

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

/** What the harness checks: a function at a point, and the two rules under test. */
interface Subject {
  label: string;
  kind: Kind;
  /** The point. */
  inputs: Tensor[];
  /** Which inputs are differentiated (the float ones). */
  wants: boolean[];
  /** The function at other points (for the differences): not under test. */
  at: (xs: Tensor[]) => Tensor;
  /** Its value at the point. */
  output: Tensor;
  /** Under test: `J·v` (`null`: a symbolic zero). */
  forward: (tangents: (Tensor | null)[]) => Tensor | null;
  /** Under test: `Jᵀ·u` per input (`null`: a symbolic zero). */
  reverse: (cotangent: Tensor) => (Tensor | null)[];
}

/** Asserts `got` lies between `left` and `right`, elementwise, within `tol`. */
function assertBetween(
  got: ArrayLike<number>,
  left: ArrayLike<number>,
  right: ArrayLike<number>,
  tol: number,
  label: string,
) {
  assert.equal(got.length, left.length, `${label}: length`);
  for (let i = 0; i < left.length; i++) {
    assert.ok(
      Number.isFinite(left[i]) && Number.isFinite(right[i]),
      `${label}: one-sided differences at element ${i} are not finite (${left[i]}, ${right[i]})`,
    );
    const slack = tol * (1 + Math.abs(left[i]) + Math.abs(right[i]));
    assert.ok(
      got[i] >= Math.min(left[i], right[i]) - slack &&
        got[i] <= Math.max(left[i], right[i]) + slack,
      `${label}: element ${i} is ${got[i]}, not between the one-sided differences ` +
        `${left[i]} and ${right[i]}`,
    );
  }
}

const assertZeros = (got: ArrayLike<number>, label: string) =>
  assert.ok(Array.from(got).every((x) => x === 0), `${label}: [${Array.from(got)}], expected 0`);

/**
 * Checks both rules of `s` against the references:
 *
 * - forward mode: central differences along one tangent over every float
 *   input (smooth); at kinks, one-sided differences along a tangent on one
 *   input at a time (a joint direction may leave the function's domain,
 *   e.g. a negative base of `pow`); at jumps, 0;
 * - reverse mode: differences of `⟨u, f(x)⟩` along each element of each
 *   float input, the same way;
 * - the two rules against each other: `⟨u, J v⟩ = Σᵢ ⟨(Jᵀ u)ᵢ, vᵢ⟩`, and the
 *   double-VJP identity — the VJP rule is linear in `u`, and reverse mode
 *   through it (the `vjp` transform) gives its transpose:
 *   `vjp(u ↦ Jᵀu)(v) = J v`, elementwise.
 *
 * Everything is enqueued first and read back at once (one round trip on
 * WebGPU), then compared.
 */
async function checkSubject(s: Subject) {
  const tangents = s.inputs.map((x, i) => (s.wants[i] ? direction(x, 17 + i) : null));
  const forward = s.forward(tangents);
  if (!isFloatTensor(s.output)) {
    assert.equal(forward, null, `${s.label}: an integer output has no tangent`);
    return;
  }
  if (forward) assert.deepEqual(forward.shape, s.output.shape, `${s.label}: tangent shape`);
  const jv = forward ?? s.output.astype("float32").mul(0);
  const u = direction(s.output, 91);
  // float16 rounds a step of 1e-3 away: a larger one, and looser tolerances.
  const half = s.output.dtype === "float16";
  const eps = half ? 5e-2 : 1e-3;
  const tol = half ? 2e-2 : 5e-3;
  const hosts = await Promise.all(s.inputs.map((x) => x.data()));

  const reads: Tensor[] = [];
  /** Registers `t` to be read back; the returned function gives its values afterwards. */
  const read = (t: Tensor) => {
    const i = reads.push(t.astype("float32")) - 1;
    return () => values[i];
  };
  let values: Float32Array[] = [];
  const checks: (() => void)[] = [];

  // Forward mode.
  const shifted = (ts: (Tensor | null)[], sign: number) =>
    s.at(s.inputs.map((x, i) => (ts[i] ? x.add(ts[i]!.mul(sign * eps)) : x)));
  if (s.kind === "smooth") {
    const got = read(jv);
    const central = read(
      shifted(tangents, 1).astype("float32").sub(shifted(tangents, -1)).div(2 * eps),
    );
    checks.push(() =>
      assertClose(got(), central(), {
        atol: tol,
        rtol: 1e-2,
        label: `${s.label}: jvp vs central differences`,
      })
    );
  } else {
    const base = read(s.output);
    for (const [i, v] of tangents.entries()) {
      if (!v) continue;
      const only = tangents.map((t, j) => (j === i ? t : null));
      const label = `${s.label}: jvp along input ${i}`;
      const alone = s.forward(only);
      if (s.kind === "jump") {
        if (alone) {
          const got = read(alone);
          checks.push(() => assertZeros(got(), `${label} at a jump`));
        }
        continue;
      }
      assert.ok(alone, `${label}: at a kink the tangent is not a symbolic zero`);
      const [got, plus, minus] = [read(alone), read(shifted(only, 1)), read(shifted(only, -1))];
      checks.push(() => {
        const right = plus().map((p, k) => (p - base()[k]) / eps);
        const left = minus().map((m, k) => (base()[k] - m) / eps);
        assertBetween(got(), left, right, tol, label);
      });
    }
  }

  // Reverse mode.
  const cotangents = s.reverse(u);
  const u32 = u.astype("float32");
  const scalarAt = (xs: Tensor[]) => s.at(xs).astype("float32").mul(u32).sum();
  for (const [i, x] of s.inputs.entries()) {
    if (!s.wants[i]) continue;
    const label = `${s.label}: vjp of input ${i}`;
    const cotangent = cotangents[i];
    if (cotangent) assert.deepEqual(cotangent.shape, x.shape, `${label}: cotangent shape`);
    const got = cotangent ? read(cotangent) : () => new Float32Array(x.size);
    if (s.kind === "jump") {
      checks.push(() => assertZeros(got(), `${label} at a jump`));
      continue;
    }
    // ⟨u, f⟩ at x and at x ± h·eⱼ for every element j, with the steps taken after rounding.
    const host = hosts[i];
    const steps: [number, number][] = [];
    const scalars = [scalarAt(s.inputs)];
    for (let j = 0; j < host.length; j++) {
      for (const sign of [1, -1]) {
        const d = Float32Array.from(host);
        d[j] += sign * eps;
        if (sign === 1) steps.push([d[j] - host[j], 0]);
        else steps[j][1] = host[j] - d[j];
        const moved = tensor(d, { shape: x.shape, dtype: x.dtype });
        scalars.push(scalarAt(s.inputs.map((y, k) => (k === i ? moved : y))));
      }
    }
    const differences = read(stack(scalars));
    checks.push(() => {
      const [base, ...rest] = differences();
      const plus = steps.map((_, j) => rest[2 * j]);
      const minus = steps.map((_, j) => rest[2 * j + 1]);
      if (s.kind === "smooth") {
        const central = steps.map(([hp, hm], j) => (plus[j] - minus[j]) / (hp + hm));
        assertClose(got(), central, {
          atol: tol,
          rtol: 1e-2,
          label: `${label} vs central differences`,
        });
      } else {
        const right = steps.map(([hp], j) => (plus[j] - base) / hp);
        const left = steps.map(([, hm], j) => (base - minus[j]) / hm);
        assertBetween(got(), left, right, tol, label);
      }
    });
  }

  // The transpose identity ⟨u, J v⟩ = Σᵢ ⟨(Jᵀ u)ᵢ, vᵢ⟩.
  const used = tangents.map((v, i) => v !== null && cotangents[i] !== null);
  const forwardDot = read(jv.astype("float32").mul(u32).sum());
  const reverseDot = read(
    tangents.reduce(
      (sum: Tensor, v, i) =>
        used[i] ? sum.add(cotangents[i]!.astype("float32").mul(v!.astype("float32")).sum()) : sum,
      tensor(0),
    ),
  );
  checks.push(() => {
    const [fd, rd] = [forwardDot()[0], reverseDot()[0]];
    assert.ok(
      Math.abs(fd - rd) <= 1e-4 + 2e-3 * Math.abs(rd),
      `${s.label}: ⟨u, Jv⟩ = ${fd} but ⟨Jᵀu, v⟩ = ${rd}`,
    );
  });

  // The double-VJP identity: transpose the (linear) VJP map by reverse mode.
  if (used.some((x) => x)) {
    const pullback = (w: Tensor) => s.reverse(w).filter((_, i) => used[i]) as Tensor[];
    const [, transpose] = vjp(pullback, u);
    const [twice] = transpose(tangents.filter((_, i) => used[i]) as Tensor[]) as [Tensor];
    transpose.dispose();
    const got = read(twice);
    const expected = read(jv);
    const close = half ? 1e-2 : 1e-5;
    checks.push(() =>
      assertClose(got(), expected(), {
        atol: close,
        rtol: close,
        label: `${s.label}: double VJP vs jvp`,
      })
    );
  }

  values = await Promise.all(reads.map((t) => t.data() as Promise<Float32Array>));
  for (const check of checks) check();
}

// ---- the primitives -----------------------------------------------------------------------

for (const prim of PRIMS) {
  CASES[prim].forEach((c, k) => {
    testBoth(
      `rules of ${prim} (case ${k}${c.kind && c.kind !== "smooth" ? `, a ${c.kind}` : ""}): ` +
        "jvp and vjp vs differences, transpose and double-VJP identities",
      async () => {
        const inputs = c.inputs.map(({ values, dtype }) => tensor(values as number[], { dtype }));
        const params = c.params ?? {};
        const output = apply(prim, inputs, params);
        const eqn = { prim, inputs, output, params };
        const wants = inputs.map(isFloatTensor);
        await checkSubject({
          label: prim,
          kind: c.kind ?? "smooth",
          inputs,
          wants,
          at: (xs) => apply(prim, xs, params),
          output,
          forward: (tangents) => JVP_RULES[prim](tangents, eqn),
          // No rule (stopGradient): no cotangent for any input.
          reverse: (u) => VJP_RULES[prim]?.(u, eqn, wants) ?? inputs.map(() => null),
        });
      },
    );
  });
}

// ---- public ops: broadcasting, composites -------------------------------------------------

for (const c of OP_CASES) {
  testBoth(
    `jvp and vjp of ${c.name}: differences, transpose and double-VJP identities`,
    async () => {
      const inputs = c.inputs.map((v) => tensor(v as number[]));
      await checkSubject({
        label: c.name,
        kind: c.kind ?? "smooth",
        inputs,
        wants: inputs.map(() => true),
        at: (xs) => c.fn(...xs),
        output: c.fn(...inputs),
        forward: (tangents) => jvp(c.fn, inputs, tangents)[1],
        reverse: (u) => {
          const [, pullback] = vjp(c.fn, ...inputs);
          const cotangents = pullback(u) as Tensor[];
          pullback.dispose();
          return cotangents;
        },
      });
    },
  );
}
