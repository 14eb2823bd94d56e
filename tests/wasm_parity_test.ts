/**
 * Property test: random programs of elementwise ops, views and a final
 * reduction, over random shapes and dtypes, give the CPU reference's
 * result on the wasm backend: bitwise for every exactly rounded op (the
 * transcendental ones the wasm backend takes from the reference too), within
 * a few ulp for its own SIMD `exp`, `sigmoid`, `tanh` and `log` (as the last
 * op, so that no later op amplifies their error), within float32 summation
 * error for sums. The same programs under `jit` on wasm give eager wasm's
 * result bitwise, except float sums, whose order fusion may change
 * (fast-check, fixed seed).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type DType, jit, type Tensor, tensor, where } from "../mod.ts";
import { ulps } from "./_helpers.ts";

const SEED = 20261203;

type Backend = "wasm" | "cpu";
type Step =
  | { kind: "unary"; op: string }
  | { kind: "binary"; op: string; other: "y" | "self" | "literal" }
  | { kind: "view"; op: "transpose" | "flip" | "stride" }
  | { kind: "where" };

interface Program {
  shape: number[];
  /** The second input's shape: `shape` with some axes 1 (it broadcasts). */
  yShape: number[];
  dtype: "float32" | "int32" | "int8";
  steps: Step[];
  last: "exp" | "sigmoid" | "tanh" | "log" | "sum" | "max" | "min" | "none";
  axis: number | null;
  seed: number;
}

// Exactly rounded on wasm as on the reference (tanh and log are SIMD approximations: `last`).
const FLOAT_UNARY = ["neg", "abs", "sqrt", "relu", "square", "sign", "floor", "sin"];
/** The last ops within a few ulp of the reference (the wasm backend's SIMD functions): their bounds. */
const APPROXIMATE: Record<string, number> = { exp: 3, sigmoid: 3, tanh: 4, log: 3 };
const INT_UNARY = ["neg", "abs", "relu", "square", "sign"];
const FLOAT_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"];
const INT_BINARY = ["add", "sub", "mul", "maximum", "minimum", "floorDiv", "mod"];

const program: fc.Arbitrary<Program> = fc.record({
  shape: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 }),
  dtype: fc.constantFrom("float32" as const, "int32" as const, "int8" as const),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
  ones: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  wide: fc.boolean(),
  picks: fc.array(fc.tuple(fc.nat(99), fc.nat(99)), { minLength: 1, maxLength: 6 }),
  last: fc.constantFrom(
    "exp" as const,
    "sigmoid" as const,
    "tanh" as const,
    "log" as const,
    "sum" as const,
    "max" as const,
    "min" as const,
    "none" as const,
  ),
  axisPick: fc.nat(3),
}).map(({ shape, dtype, seed, ones, wide, picks, last, axisPick }) => {
  // A long last axis sometimes, so SIMD loops and their scalar tails both run.
  if (wide) shape[shape.length - 1] = 37;
  const float = dtype === "float32";
  const steps: Step[] = picks.map(([a, b]): Step => {
    if (a < 35) {
      const table = float ? FLOAT_UNARY : INT_UNARY;
      return { kind: "unary", op: table[b % table.length] };
    }
    if (a < 75) {
      const table = float ? FLOAT_BINARY : INT_BINARY;
      const other = (["y", "self", "literal"] as const)[b % 3];
      return { kind: "binary", op: table[b % table.length], other };
    }
    if (a < 90) return { kind: "view", op: (["transpose", "flip", "stride"] as const)[b % 3] };
    return { kind: "where" };
  });
  const finalOp = !float && (last in APPROXIMATE || last === "sum") ? "max" : last;
  return {
    shape,
    yShape: shape.map((d, i) => (ones[i] ? 1 : d)),
    dtype,
    steps,
    last: finalOp,
    axis: axisPick < shape.length ? axisPick : null,
    seed,
  };
});

/** Input values: small integers for the integer dtypes; for float32 mixed magnitudes and specials. */
function values(n: number, seed: number, dtype: DType): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  const odd = [0, -0, 0.5, -1.5, 3, 1e-3, 7.25, -100];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    if (dtype === "float32") out.push(i % 7 === 3 ? odd[s % odd.length] : (u - 0.4) * 6);
    else out.push(Math.floor((u - 0.5) * 200));
  }
  return out;
}

/** Runs the program on tensors `x` and `y` (the same ops, eagerly or traced). */
function body(p: Program, x: Tensor, y: Tensor): Tensor {
  let v = x;
  // y broadcast to x's shape, then through the same views as v: the second operand.
  let w = y.broadcastTo(x.shape);
  const view = (t: Tensor, op: "transpose" | "flip" | "stride") =>
    op === "transpose"
      ? t.transpose()
      : op === "flip"
      ? t.flip(t.shape.length - 1)
      : t.get(...t.shape.map((d) => [0, d, d > 2 ? 2 : 1] as [number, number, number]));
  for (const step of p.steps) {
    if (step.kind === "unary") {
      v = (v as unknown as Record<string, () => Tensor>)[step.op]();
    } else if (step.kind === "binary") {
      const other = step.other === "self"
        ? v
        : step.other === "literal"
        ? (p.dtype === "float32" ? 1.75 : 3)
        : w;
      v = (v as unknown as Record<string, (o: Tensor | number) => Tensor>)[step.op](other);
    } else if (step.kind === "view") {
      v = view(v, step.op);
      w = view(w, step.op);
    } else {
      v = where(v.gt(0), v, v.neg());
    }
  }
  const axis = p.axis !== null && p.axis < v.shape.length ? p.axis : undefined;
  switch (p.last) {
    case "exp":
      return v.exp();
    case "sigmoid":
      return v.sigmoid();
    case "tanh":
      return v.tanh();
    case "log":
      return v.log();
    case "sum":
      return v.sum(axis);
    case "max":
      return v.max(axis);
    case "min":
      return v.min(axis);
    case "none":
      return v.add(0);
  }
}

function run(p: Program, backend: Backend, compiled: boolean): Tensor {
  const size = p.shape.reduce((a, b) => a * b, 1);
  const ySize = p.yShape.reduce((a, b) => a * b, 1);
  const x = tensor(values(size, p.seed, p.dtype), { shape: p.shape, dtype: p.dtype, backend });
  const y = tensor(values(ySize, p.seed + 1, p.dtype), {
    shape: p.yShape,
    dtype: p.dtype,
    backend,
  });
  const out = compiled ? jit((a: Tensor, b: Tensor) => body(p, a, b))(x, y) : body(p, x, y);
  x.dispose();
  y.dispose();
  return out;
}

const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

async function compare(p: Program, got: Tensor, want: Tensor, exact: boolean): Promise<void> {
  assert.deepEqual(got.shape, want.shape);
  assert.equal(got.dtype, want.dtype);
  const [g, w] = [Array.from(await got.data()), Array.from(await want.data())];
  const describe = (i: number) => `element ${i}: ${g[i]} vs ${w[i]} for ${JSON.stringify(p)}`;
  for (let i = 0; i < g.length; i++) {
    const exactSum = p.last === "sum" && (exact && p.dtype !== "float32");
    if (exactSum || p.last === "max" || p.last === "min" || p.last === "none") {
      assert.ok(same(g[i], w[i]), describe(i));
    } else if (p.last in APPROXIMATE) {
      assert.ok(exact ? same(g[i], w[i]) : ulps(g[i], w[i]) <= APPROXIMATE[p.last], describe(i));
    } else {
      // float32 accumulation against the reference's float64: a few ulp of the terms' size.
      const bound = 1e-5 * Math.max(1, Math.abs(w[i])) * 64;
      assert.ok(same(g[i], w[i]) || Math.abs(g[i] - w[i]) <= bound, describe(i));
    }
  }
}

Deno.test("wasm parity: random programs match the CPU reference", async () => {
  await fc.assert(
    fc.asyncProperty(program, async (p) => {
      const [got, want] = [run(p, "wasm", false), run(p, "cpu", false)];
      await compare(p, got, want, false);
      got.dispose();
      want.dispose();
    }),
    { seed: SEED, numRuns: 150 },
  );
});

Deno.test("wasm parity: the same programs under jit give eager wasm's result (bitwise but float sums)", async () => {
  await fc.assert(
    fc.asyncProperty(program, async (p) => {
      const [got, want] = [run(p, "wasm", true), run(p, "wasm", false)];
      await compare(p, got, want, true);
      got.dispose();
      want.dispose();
    }),
    { seed: SEED + 1, numRuns: 60 },
  );
});
