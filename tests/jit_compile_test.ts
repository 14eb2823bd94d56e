/**
 * The fused-kernel compiler behind `jit` (src/compiler/*, kernels/fused.ts),
 * checked against the same function run eagerly on the same backend.
 *
 * On WebGPU, an eager call of a jitted function runs the compiled program
 * (fused kernels and library calls); on the CPU backend `jit` replays the
 * trace primitive by primitive, so there the comparison is a consistency
 * check and the compiler itself is exercised on WebGPU only. Every
 * comparison on WebGPU also asserts that the compiled path ran (the jitted
 * function counts compiled steps in `stats.kernels`).
 *
 * What must hold: elementwise programs give eager's bits exactly (float16
 * rounded after each op, int8 wrapped, bools normalised, NaN, ±Infinity and
 * -0 as eager gives them); reductions and matmul agree within ~1e-6
 * relative (the summation order differs).
 *
 * Covered: random programs (fast-check, fixed seed) of elementwise ops,
 * broadcasting, movement ops and reductions, with special values and traced
 * numbers; dtypes (float16, int8 wrap-around, int32, bool, casts); literals
 * a compiler could fold (x / 0, x / -0, NaN comparisons, 0 · ∞) and
 * algebraic identities that do not hold in IEEE arithmetic (x - x, exp(log
 * x), the isfinite idiom); traced numbers of every kind; shapes (zero-size,
 * scalars, rank 5–6, stacked views, steps and flips, outputs that are
 * inputs, views or repeated); both fused reduction strategies, epilogues,
 * softmax and logsumexp, a reduction longer than `maxReduce` (a library
 * call); matmuls with fused epilogues, and outputs stored by another
 * output's kernel (optimizer updates); dispatch counts (a 1,000-op chain is one dispatch, a 10,000-op
 * chain compiles in ~10 kernels, the MLP step in at most 10 dispatches);
 * memory (no leak, no buffers created by warm calls); errors; and the
 * binding budget (a schedule with a small `maxBuffers`).
 *
 * Some tests are regression tests for bugs fixed since the compiler landed (their comments
 * say which). `program`, `programInputs`, `denote` and `compare` are
 * exported so that the generators can be run for many more seeds outside
 * the suite.
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  add,
  availableBackends,
  type BackendName,
  disposeTree,
  div,
  type DType,
  eq,
  floorDiv,
  ge,
  gt,
  jit,
  le,
  logsumexp,
  lt,
  makeTrace,
  maximum,
  memoryStats,
  minimum,
  mod,
  mul,
  ne,
  pow,
  randomNormal,
  sgd,
  softmax,
  softmaxCrossEntropy,
  sub,
  sync,
  Tensor,
  tensor,
  type Trace,
  trimMemory,
  useBackend,
  valueAndGrad,
  where,
  zeros,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import { compileProgram } from "../src/compiler/execute.ts";
import { denseView, type FusedKernel } from "../src/compiler/ir.ts";
import { DEFAULT_LIMITS, schedule } from "../src/compiler/schedule.ts";
import { MOVEMENT_PRIMS } from "../src/compiler/views.ts";
import { settleGarbage, testBoth } from "./_helpers.ts";

const SEED = 20260407;

// ---- helpers ------------------------------------------------------------------

/** The WebGPU backend's counters (dispatches, buffers created, ...). */
interface GpuCounters {
  dispatches: number;
  created: number;
  bindGroupsCreated: number;
  pipelinesCreated: number;
  acquired: number;
}

/** The counters of `backend` when it is WebGPU, else null. */
function counters(backend: BackendName): GpuCounters | null {
  if (backend !== "webgpu") return null;
  return (resolveBackend("webgpu") as unknown as { stats: GpuCounters }).stats;
}

/**
 * Registers a test of the compiled path itself (WebGPU only: the CPU
 * backend replays traces), ignored where no WebGPU adapter exists.
 */
function testWebGPU(name: string, fn: (backend: BackendName) => Promise<void>): void {
  Deno.test({
    name: `${name} [webgpu]`,
    ignore: !availableBackends().includes("webgpu"),
    async fn() {
      useBackend("webgpu");
      await settleGarbage();
      try {
        await fn("webgpu");
      } finally {
        useBackend(availableBackends()[0]);
      }
    },
  });
}

/** Whether the default backend stores `dtype` (float16 needs `shader-f16` on WebGPU). */
function stores(backend: BackendName, dtype: DType): boolean {
  return resolveBackend(backend).dtypes.includes(dtype);
}

type Out = Tensor | number | string | null | undefined;

/** The results of a call, flattened in order (arrays and objects one level deep or more). */
function leaves(result: unknown): Out[] {
  if (Array.isArray(result)) return result.flatMap(leaves);
  if (result instanceof Tensor) return [result];
  if (result !== null && typeof result === "object") return Object.values(result).flatMap(leaves);
  return [result as Out];
}

/** An element as text: distinguishes -0 and NaN. */
const show = (v: number) => (Object.is(v, -0) ? "-0" : String(v));

/** Asserts two number lists agree bit for bit (as JavaScript numbers: -0 apart, NaN = NaN). */
function assertSameBits(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string) {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      const a = Array.from(actual).slice(0, 16).map(show).join(", ");
      const e = Array.from(expected).slice(0, 16).map(show).join(", ");
      assert.fail(
        `${label}: element ${i} is ${show(actual[i])}, eager gives ${show(expected[i])}\n` +
          `  jit:   [${a}${actual.length > 16 ? ", ..." : ""}]\n` +
          `  eager: [${e}${expected.length > 16 ? ", ..." : ""}]`,
      );
    }
  }
}

/**
 * Asserts `actual` is `expected` up to the summation order of reductions:
 * integers and bools exactly; NaN where eager has NaN; otherwise within
 * `rtol` of the larger magnitude plus `rtol` times the largest magnitude of
 * the output (cancellation), a finite value next to ±Infinity only past the
 * range where the order decides overflow, and ±0 equal.
 */
function assertNear(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  dtype: DType,
  label: string,
  rtol = dtype === "float16" ? 2e-3 : 1e-5,
) {
  assert.equal(actual.length, expected.length, `${label}: length`);
  if (dtype !== "float32" && dtype !== "float16") {
    assertSameBits(actual, expected, label);
    return;
  }
  const big = dtype === "float16" ? 6e4 : 1e30;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Number.isFinite(expected[i])) scale = Math.max(scale, Math.abs(expected[i]));
  }
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i], expected[i]];
    let ok: boolean;
    if (Number.isNaN(e) || Number.isNaN(a)) ok = Number.isNaN(e) && Number.isNaN(a);
    else if (!Number.isFinite(e) || !Number.isFinite(a)) {
      ok = a === e || (Math.sign(a) === Math.sign(e) && Math.min(Math.abs(a), Math.abs(e)) > big);
    } else ok = Math.abs(a - e) <= rtol * (Math.max(Math.abs(a), Math.abs(e)) + scale) + 1e-30;
    if (!ok) {
      assert.fail(
        `${label}: element ${i} is ${show(a)}, eager gives ${show(e)} (rtol ${rtol})\n` +
          `  jit:   [${Array.from(actual).slice(0, 12).map(show).join(", ")}]\n` +
          `  eager: [${Array.from(expected).slice(0, 12).map(show).join(", ")}]`,
      );
    }
  }
}

/**
 * Whether the trace of `f` computes anything its results need (a program
 * that returns views of its inputs, or only dead code, compiles to no step).
 */
function computes(f: (...args: never[]) => unknown, args: unknown[]): boolean {
  const trace = jit(f as (...a: unknown[]) => unknown).trace(...args);
  const needed = new Set(trace.outputs);
  for (let i = trace.equations.length - 1; i >= 0; i--) {
    const e = trace.equations[i];
    if (!needed.has(e.output)) continue;
    if (!MOVEMENT_PRIMS.has(e.prim)) return true;
    for (const v of e.inputs) needed.add(v);
  }
  return false;
}

interface CompareOptions {
  /** Bitwise (elementwise programs, the default) or within reduction tolerance. */
  exact?: boolean;
  /** The tolerance of a non-exact comparison. */
  rtol?: number;
}

/**
 * Runs `f` eagerly and jitted on `args`, asserts the results agree (shape,
 * dtype, values), and on WebGPU that the jitted call ran compiled steps.
 * Disposes the results. Returns the jitted function.
 */
export async function compare<A extends unknown[]>(
  backend: BackendName,
  label: string,
  f: (...args: A) => unknown,
  args: A,
  { exact = true, rtol }: CompareOptions = {},
) {
  const jitted = jit(f);
  const eager = leaves(f(...args));
  const compiled = leaves(jitted(...args));
  if (backend !== "cpu" && computes(f as never, args)) {
    assert.ok(jitted.stats.kernels > 0, `${label}: the compiled path did not run`);
  }
  assert.equal(compiled.length, eager.length, `${label}: number of results`);
  for (let i = 0; i < eager.length; i++) {
    const [c, e] = [compiled[i], eager[i]];
    const where = `${label}, result ${i}`;
    if (!(e instanceof Tensor)) {
      assert.ok(Object.is(c, e), `${where}: ${String(c)} is not ${String(e)}`);
      continue;
    }
    assert.ok(c instanceof Tensor, `${where}: not a tensor`);
    assert.deepEqual(c.shape, e.shape, `${where}: shape`);
    assert.equal(c.dtype, e.dtype, `${where}: dtype`);
    const [cd, ed] = [await c.data(), await e.data()];
    if (exact) assertSameBits(cd, ed, where);
    else assertNear(cd, ed, e.dtype, where, rtol);
  }
  // The same tensor may come back twice: dispose each once.
  for (const t of new Set([...compiled, ...eager])) {
    if (t instanceof Tensor && !args.includes(t) && !t.disposed) t.dispose();
  }
  return jitted;
}

/** Dispatches, buffers created and bind groups created by `run` (WebGPU), after a sync. */
async function measure(backend: BackendName, run: () => void) {
  const stats = counters(backend);
  await sync();
  const before = stats ? { ...stats } : null;
  run();
  await sync();
  if (!stats || !before) return null;
  return {
    dispatches: stats.dispatches - before.dispatches,
    created: stats.created - before.created,
    bindGroups: stats.bindGroupsCreated - before.bindGroupsCreated,
    pipelines: stats.pipelinesCreated - before.pipelinesCreated,
  };
}

// ---- random programs ----------------------------------------------------------------

const UNARY = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "tanh",
  "sigmoid",
  "abs",
  "sign",
  "sin",
  "cos",
  "floor",
  "ceil",
  "round",
  "log1p",
  "expm1",
  "relu",
  "square",
  "reciprocal",
  "isnan",
  "isinf",
  "logicalNot",
] as const;
const BINARY = [
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "maximum",
  "minimum",
  "floorDiv",
  "mod",
  "lt",
  "le",
  "gt",
  "ge",
  "eq",
  "ne",
  "logicalAnd",
  "logicalOr",
] as const;
/** The binary ops as free functions, for a number on the left. */
const FREE: Record<string, (a: Tensor | number, b: Tensor | number) => Tensor> = {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  floorDiv,
  mod,
  lt,
  le,
  gt,
  ge,
  eq,
  ne,
};
/** Ops applied to values computed from a reduction: smooth, so order-level differences stay small. */
const SMOOTH_UNARY = ["neg", "exp", "tanh", "sigmoid", "abs", "square"] as const;
const SMOOTH_BINARY = ["add", "sub", "mul", "maximum", "minimum"] as const;
const REDUCE = ["sum", "max", "min", "prod", "mean"] as const;
const CASTS: readonly DType[] = ["float32", "float16", "int32", "int8", "bool"];

/** Literal operands: including the ones a compiler could fold wrongly. */
const LITERALS = [0, -0, 1, -1, 2, 0.5, -2.5, 3, NaN, Infinity, -Infinity, 1e-3, 100, 7];
/** Traced-number arguments, one of each kind (float, int8, int32, -0, NaN, ±Infinity). */
const NUMBERS = [0.25, 3, -7, 1000, -0, NaN, Infinity, -Infinity, 1.5];

/** Element values of float inputs: special values, ties, large and tiny values. */
const FLOAT_POOL = [
  NaN,
  Infinity,
  -Infinity,
  -0,
  0,
  0.5,
  1.5,
  2.5,
  -0.5,
  -2.5,
  1,
  -1,
  3,
  1e30,
  -1e30,
  65504,
  70000,
  1e-40,
  1e-8,
  88.5,
  -100,
];
/** Element values of the reduction programs' inputs: special values, no order-sensitive magnitudes. */
const MODERATE_POOL = [NaN, Infinity, -Infinity, -0, 0, 0.5, 1.5, -2.5, 2, 1, -1, 3, 10, -10];
const INT8_POOL = [-128, 127, 100, -100, 0, 1, -1, 5, -7, 64, 2, 3];
const INT32_POOL = [2147483647, -2147483648, 1e9, -1e9, 0, 1, -1, 7, -3, 65536, 46341];

type Instr =
  | { k: "unary"; op: number; a: number }
  | { k: "binary"; op: number; a: number; b: number; operand: number; lit: number }
  | { k: "where"; c: number; a: number; b: number }
  | { k: "move"; m: number; a: number; s: number }
  | { k: "reduce"; op: number; a: number; s: number; keepdims: boolean }
  | { k: "cast"; dtype: number; a: number }
  | { k: "matmul"; a: number; b: number };

interface Program {
  dtype: DType;
  /** The shape all inputs broadcast to. */
  shape: number[];
  /** Per input: how many leading axes it drops, and which axes it has as 1 (bits). */
  inputs: [number, number][];
  instrs: Instr[];
  /** Extra results: earlier values (inputs included), besides the last value. */
  outs: number[];
  /** Seeds of the input data. */
  data: number;
  numbers: [number, number];
}

const nat = fc.nat({ max: 1 << 20 });
const instr = (reductions: boolean): fc.Arbitrary<Instr> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.record({ k: fc.constant("unary" as const), op: nat, a: nat }) },
    {
      weight: 5,
      arbitrary: fc.record({
        k: fc.constant("binary" as const),
        op: nat,
        a: nat,
        b: nat,
        operand: fc.nat({ max: 5 }),
        lit: nat,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ k: fc.constant("where" as const), c: nat, a: nat, b: nat }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ k: fc.constant("move" as const), m: nat, a: nat, s: nat }),
    },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("cast" as const), dtype: nat, a: nat }) },
    {
      weight: reductions ? 3 : 0,
      arbitrary: fc.record({
        k: fc.constant("reduce" as const),
        op: nat,
        a: nat,
        s: nat,
        keepdims: fc.boolean(),
      }),
    },
    {
      weight: reductions ? 1 : 0,
      arbitrary: fc.record({ k: fc.constant("matmul" as const), a: nat, b: nat }),
    },
  );

export const program = (reductions: boolean): fc.Arbitrary<Program> =>
  fc.record({
    dtype: fc.constantFrom<DType>("float32", "float32", "float32", "float16", "int32", "int8"),
    shape: fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }),
    inputs: fc.tuple(
      fc.tuple(fc.nat({ max: 4 }), fc.nat({ max: 15 })),
      fc.tuple(fc.nat({ max: 4 }), fc.nat({ max: 15 })),
      fc.tuple(fc.nat({ max: 4 }), fc.nat({ max: 15 })),
    ),
    instrs: fc.array(instr(reductions), { minLength: 1, maxLength: 16 }),
    outs: fc.array(nat, { maxLength: 3 }),
    data: nat,
    numbers: fc.tuple(fc.constantFrom(...NUMBERS), fc.constantFrom(...NUMBERS)),
  });

/** A deterministic pseudo-random sequence (an LCG) from `seed`. */
function lcg(seed: number): () => number {
  let s = (seed * 2654435761 + 12345) >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The input tensors of `p` (float16 inputs made on float32 and cast, as eager would hold them). */
export function programInputs(p: Program, reductions: boolean): Tensor[] {
  const rand = lcg(p.data);
  return p.inputs.map(([drop, ones]) => {
    const shape = p.shape.slice(Math.min(drop, p.shape.length)).map((d, i) =>
      (ones >> i) & 1 ? 1 : d
    );
    const n = shape.reduce((a, b) => a * b, 1);
    const pool = p.dtype === "int8"
      ? INT8_POOL
      : p.dtype === "int32"
      ? INT32_POOL
      : reductions
      ? MODERATE_POOL
      : FLOAT_POOL;
    const values = Array.from({ length: n }, () => {
      const r = rand();
      if (p.dtype === "int8" || p.dtype === "int32") {
        return r < 0.5 ? pool[Math.floor(rand() * pool.length)] : Math.floor(rand() * 21) - 10;
      }
      return r < 0.4
        ? pool[Math.floor(rand() * pool.length)]
        : Math.round((rand() * 8 - 4) * 64) / 64;
    });
    if (p.dtype === "float16") return tensor(values, { shape }).astype("float16");
    return tensor(values, { shape, dtype: p.dtype });
  });
}

/** Whether shapes `a` and `b` broadcast together. */
function broadcasts(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 1; i <= Math.min(a.length, b.length); i++) {
    const [x, y] = [a[a.length - i], b[b.length - i]];
    if (x !== y && x !== 1 && y !== 1) return false;
  }
  return true;
}

/** The movement op `m` (seeded by `s`) applied to `x`; ranks stay at most 6. */
function move(x: Tensor, m: number, s: number): Tensor {
  const shape = x.shape;
  const rank = shape.length;
  const rand = lcg(s);
  const kind = rank === 0 ? [1, 4, 5][m % 3] : m % 8;
  switch (kind) {
    case 6: // views no strides express after a reshape: stacked views
    case 7: {
      const wide = shape.filter((d) => d > 1).length >= 2 || rank >= 5
        ? x
        : x.broadcastTo([3, ...shape]);
      const inner = kind === 6
        ? wide.transpose()
        : wide.slice([0, 1], undefined, { steps: [1, 2] }).flip(0);
      return inner.reshape(s % 2 ? [inner.size] : [...inner.shape].reverse());
    }
    case 0: { // transpose
      const perm = shape.map((_, i) => i);
      for (let i = rank - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      return x.transpose(perm);
    }
    case 1: { // reshape: flatten, reverse the axes' sizes, or insert a 1
      const size = shape.reduce((a, b) => a * b, 1);
      const choice = s % 3;
      if (choice === 0 || rank === 0) return x.reshape(rank === 0 ? [1, 1] : [size]);
      if (choice === 1) return x.reshape([...shape].reverse());
      const at = s % (rank + 1);
      return rank >= 6
        ? x.reshape([size])
        : x.reshape([...shape.slice(0, at), 1, ...shape.slice(at)]);
    }
    case 2: { // slice with steps, forwards or backwards
      const starts: number[] = [];
      const stops: (number | null)[] = [];
      const steps: number[] = [];
      for (const d of shape) {
        const step = 1 + Math.floor(rand() * 3);
        const start = Math.floor(rand() * d);
        if (rand() < 0.3) {
          starts.push(d - 1 - start);
          stops.push(null);
          steps.push(-step);
        } else {
          starts.push(start);
          stops.push(null);
          steps.push(step);
        }
      }
      return x.slice(starts, stops, { steps });
    }
    case 3: { // flip some axes
      const axes = shape.map((_, i) => i).filter(() => rand() < 0.6);
      return x.flip(axes.length ? axes : [0]);
    }
    case 4: { // broadcast: a new leading axis, size-1 axes expanded
      if (rank >= 6) return x.flip();
      return x.broadcastTo([2, ...shape.map((d) => (d === 1 && rand() < 0.7 ? 3 : d))]);
    }
    default: { // expandDims, then broadcast that axis
      if (rank >= 6) return x.transpose();
      const at = s % (rank + 1);
      const e = x.expandDims(at);
      return e.broadcastTo(e.shape.map((d, i) => (i === at ? 2 : d)));
    }
  }
}

/** The reduction `op` over axes chosen by `s` (all of a scalar). */
function reduce(x: Tensor, op: number, s: number, keepdims: boolean): Tensor {
  const name = REDUCE[op % REDUCE.length];
  const rank = x.shape.length;
  let axes = x.shape.map((_, i) => i).filter((i) => (s >> i) & 1);
  if (axes.length === 0 && rank > 0) axes = [s % rank];
  return x[name](rank === 0 ? undefined : axes, { keepdims });
}

/**
 * The function a program denotes, of three tensors and two (traced)
 * numbers: every choice depends on shapes and dtypes only, so the eager run
 * and the trace build the same program. An op eager refuses (a dtype rule)
 * is skipped the same way in both.
 */
export function denote(p: Program) {
  return (x: Tensor, y: Tensor, z: Tensor, n0: number, n1: number): Tensor[] => {
    const vals: Tensor[] = [x, y, z];
    /** Whether each value depends on a reduction (then only smooth ops apply to it). */
    const reduced: boolean[] = [false, false, false];
    // Mostly one of the last three values (so ops chain and views stack), else any.
    const at = (i: number) =>
      i % 4 ? vals.length - 1 - ((i >> 2) % Math.min(3, vals.length)) : (i >> 2) % vals.length;
    for (const ins of p.instrs) {
      let out: Tensor | null = null;
      let fromReduce = false;
      try {
        switch (ins.k) {
          case "unary": {
            const a = at(ins.a);
            fromReduce = reduced[a];
            const ops: readonly string[] = fromReduce ? SMOOTH_UNARY : UNARY;
            const op = ops[ins.op % ops.length] as (typeof UNARY)[number];
            out = vals[a][op]();
            break;
          }
          case "binary": {
            const a = at(ins.a);
            const ops: readonly string[] = reduced[a] ? SMOOTH_BINARY : BINARY;
            const op = ops[ins.op % ops.length] as (typeof BINARY)[number];
            let b: Tensor | number;
            if (ins.operand <= 2) {
              // Another value whose shape broadcasts, or `a` itself (x - x, x / x).
              const ok = vals.map((_, i) => i).filter((i) =>
                broadcasts(vals[i].shape, vals[a].shape) &&
                (!reduced[i] || SMOOTH_BINARY.includes(op as never))
              );
              if (ok.length === 0) b = LITERALS[ins.lit % LITERALS.length];
              else {
                const j = ok[ins.b % ok.length];
                b = vals[j];
                fromReduce = reduced[j];
              }
            } else if (ins.operand <= 4) b = LITERALS[ins.lit % LITERALS.length];
            else b = ins.lit % 2 ? n1 : n0;
            fromReduce ||= reduced[a];
            // Operands swapped by a choice of the program's, never by a runtime type (a
            // traced number is a Tensor to the trace, a number to eager).
            out = ins.b % 2 && op in FREE ? FREE[op](b, vals[a]) : vals[a][op](b as Tensor);
            break;
          }
          case "where": {
            const [c, a] = [at(ins.c), at(ins.a)];
            if (reduced[c]) break;
            const ok = vals.map((_, i) => i).filter((i) =>
              broadcasts(vals[i].shape, vals[a].shape) &&
              broadcasts(vals[i].shape, vals[c].shape) && broadcasts(vals[a].shape, vals[c].shape)
            );
            if (ok.length === 0) break;
            const b = ok[ins.b % ok.length];
            fromReduce = reduced[a] || reduced[b];
            out = where(
              vals[c],
              vals[a],
              ins.b % 3 === 0 ? LITERALS[ins.b % LITERALS.length] : vals[b],
            );
            break;
          }
          case "move": {
            const a = at(ins.a);
            fromReduce = reduced[a];
            out = move(vals[a], ins.m, ins.s);
            break;
          }
          case "cast": {
            const a = at(ins.a);
            fromReduce = reduced[a];
            const casts = fromReduce ? ["float32", "float16"] as DType[] : CASTS;
            const dtype = casts[ins.dtype % casts.length];
            if (!resolveBackend(x.backend).dtypes.includes(dtype)) break;
            out = vals[a].astype(dtype);
            break;
          }
          case "reduce": {
            const a = at(ins.a);
            fromReduce = true;
            out = reduce(vals[a], ins.op, ins.s, ins.keepdims);
            break;
          }
          case "matmul": {
            // a · aᵀ over the last two axes (a dot product for a vector), or a · b where
            // the shapes allow (an integer operand is refused: skipped).
            const m = vals[at(ins.a)];
            fromReduce = true;
            const r = m.ndim;
            const other = vals.find((v, i) =>
              i % 3 === ins.b % 3 && r >= 1 && r <= 4 && v.ndim >= 2 && v.ndim <= r &&
              v.shape[v.ndim - 2] === m.shape[r - 1]
            );
            // The last two axes swapped.
            const perm = [...m.shape.keys()].map((i) => (i < r - 2 ? i : 2 * r - 3 - i));
            if (other && ins.b % 2) out = m.matmul(other);
            else if (r >= 2) out = m.matmul(m.transpose(perm));
            else if (r === 1) out = m.matmul(m);
            break;
          }
        }
      } catch (err) {
        // A dtype rule (a bool operand an op refuses, a number that does not fit int8): the
        // op is skipped, by eager and by the trace alike (were only one to skip it, the
        // programs would differ and so would their results).
        if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
        out = null;
      }
      if (out && out.size <= 4096) {
        vals.push(out);
        reduced.push(fromReduce);
      }
    }
    return [vals[vals.length - 1], ...p.outs.map((i) => vals[at(i)])];
  };
}

/** A program as readable text, for a failure's report. */
const describeProgram = (p: Program) => JSON.stringify(p);

export async function checkProgram(backend: BackendName, p: Program, reductions: boolean) {
  const inputs = programInputs(p, reductions);
  const f = denote(p);
  const args = [...inputs, ...p.numbers] as [Tensor, Tensor, Tensor, number, number];
  try {
    await compare(backend, `program ${describeProgram(p)}`, f, args, { exact: !reductions });
  } finally {
    for (const t of inputs) t.dispose();
  }
}

testBoth(
  "property: random elementwise programs (movement, broadcasting, casts, special values, " +
    "traced numbers) give eager's bits when jitted (compiled on WebGPU)",
  async (backend) => {
    if (!stores(backend, "float16")) {
      console.log("  float16 is not stored by this adapter: float16 programs are skipped");
    }
    await fc.assert(
      fc.asyncProperty(
        program(false).filter((p) => p.dtype !== "float16" || stores(backend, "float16")),
        (p) => checkProgram(backend, p, false),
      ),
      { seed: SEED, numRuns: backend === "webgpu" ? 60 : 30 },
    );
  },
);

testBoth(
  "property: random programs with reductions over random axes (prologues, epilogues, " +
    "keepdims, softmax-like broadcasts) agree with eager when jitted (compiled on WebGPU)",
  async (backend) => {
    await fc.assert(
      fc.asyncProperty(
        program(true).filter((p) => p.dtype !== "float16" || stores(backend, "float16")),
        (p) => checkProgram(backend, p, true),
      ),
      { seed: SEED + 1, numRuns: backend === "webgpu" ? 60 : 30 },
    );
  },
);

// ---- dtypes -------------------------------------------------------------------------

testBoth("jit: float16 chains round after every op, as eager (compiled on WebGPU)", async (b) => {
  if (!stores(b, "float16")) {
    console.log("  skipped: this adapter has no shader-f16");
    return;
  }
  const x = tensor([0.1, 1 / 3, 2049, 65504, -65504, 1e-5, 3.14159, -0, NaN, Infinity, 7e4, 0.5])
    .astype("float16");
  const y = tensor([3, 0.7, 1, 2, -2, 1e4, -1, 5, 1, 2, 1, 1.5]).astype("float16");
  await compare(
    b,
    "f16 add/mul/div chain",
    (a: Tensor, c: Tensor) => a.add(c).mul(1.1).div(c).sub(a).mul(a),
    [x, y],
  );
  // Every intermediate of 2049 + 1 rounds to 2048 (ties to even) in float16: +1 three
  // times is 2048, while float32 intermediates would give 2052.
  await compare(b, "f16 ties", (a: Tensor) => a.add(1).add(1).add(1), [x]);
  await compare(
    b,
    "f16 overflow to infinity inside a chain",
    (a: Tensor, c: Tensor) => a.mul(c).mul(10).div(10),
    [x, y],
  );
  await compare(
    b,
    "f16 transcendental chain",
    (a: Tensor) => a.exp().tanh().sigmoid().sqrt().log1p().expm1(),
    [x],
  );
  await compare(
    b,
    "f16 mixed with float32 and numbers",
    (a: Tensor, c: Tensor, k: number) => a.astype("float32").mul(c).add(k).astype("float16").mul(k),
    [x, y.astype("float32"), 0.1],
  );
  await compare(
    b,
    "f16 comparisons and where",
    (a: Tensor, c: Tensor) => where(a.gt(c), a.mul(3), c.neg()).eq(a),
    [x, y],
  );
});

testBoth("jit: int8 wraps around inside a chain, int32 overflows, as eager", async (b) => {
  const i8 = tensor([100, 127, -128, -100, 50, 0, 1, -1], { dtype: "int8" });
  const j8 = tensor([100, 1, -1, -100, 90, 0, 127, -128], { dtype: "int8" });
  const jitted = await compare(
    b,
    "int8 add overflow then multiply",
    (a: Tensor, c: Tensor) => a.add(c).mul(3).sub(a).mul(c),
    [i8, j8],
  );
  if (b !== "cpu") assert.equal(jitted.stats.kernels, 1, "one fused kernel");
  // The reference, by hand: (100 + 100) wraps to -56; -56 * 3 = -168 wraps to 88.
  const out = await jit((a: Tensor, c: Tensor) => a.add(c).mul(3))(i8, j8).data();
  assert.equal(out[0], 88);
  await compare(
    b,
    "int8 floorDiv and mod, negative operands",
    (a: Tensor, c: Tensor) => a.floorDiv(c.add(3)).add(a.mod(7)).mul(a),
    [i8, j8],
  );
  await compare(
    b,
    "int8 with numbers",
    (a: Tensor, k: number) => a.add(k).mul(k).maximum(a).minimum(k),
    [i8, 7],
  );
  const i32 = tensor([2147483647, -2147483648, 65536, 46341, -1, 0, 7, 1e9], { dtype: "int32" });
  await compare(
    b,
    "int32 overflow chain",
    (a: Tensor) => a.add(1).mul(a).sub(a.mul(65536)).abs().neg(),
    [i32],
  );
  await compare(
    b,
    "int32 floorDiv and mod by zero and negatives",
    (a: Tensor, c: Tensor) => a.floorDiv(c.sub(7)).add(a.mod(c.sub(7))),
    [i32, i32.mul(0).add(7).sub(i32.sign())],
  );
  await compare(
    b,
    "int sign and abs of the most negative int32",
    (a: Tensor) => a.abs().sign().mul(a.sign()),
    [i32],
  );
});

testBoth("jit: bool logic and convert chains, as eager", async (b) => {
  const x = tensor([-2, -0, 0, 0.5, 1.5, 2.5, NaN, Infinity, -Infinity, 300, -129, 1e10]);
  await compare(
    b,
    "bool logic",
    (a: Tensor) =>
      a.gt(0).logicalAnd(a.lt(2)).logicalOr(a.isnan()).logicalXor(a.eq(0)).logicalNot(),
    [x],
  );
  await compare(b, "bool arithmetic", (a: Tensor) => a.gt(0).add(a.ge(0)).mul(a.ne(1)).sum(), [x]);
  await compare(
    b,
    "float → bool → float (NaN is true, -0 false)",
    (a: Tensor) => a.astype("bool").astype("float32").mul(a.astype("bool").astype("int32")),
    [x],
  );
  await compare(
    b,
    "float → int32 saturates, NaN → 0",
    (a: Tensor) => a.mul(1e9).astype("int32").add(1),
    [x],
  );
  await compare(
    b,
    "float → int8 truncates then wraps",
    (a: Tensor) => a.astype("int8").mul(2).astype("float32").div(3),
    [x],
  );
  await compare(
    b,
    "int → bool → int",
    (a: Tensor) => a.astype("int32").astype("bool").astype("int8").add(a.astype("int8")),
    [x],
  );
  if (stores(b, "float16")) {
    await compare(
      b,
      "float32 → float16 → int8 → float16 → bool",
      (a: Tensor) => a.astype("float16").mul(2).astype("int8").astype("float16").astype("bool"),
      [x],
    );
  }
});

// ---- literals and numbers --------------------------------------------------------------

const special = () =>
  tensor([Infinity, -Infinity, NaN, -0, 0, 1, -1, 3.5, 1e30, -1e-30, 65504, 1e-45]);

testBoth("jit: literals a compiler could fold wrongly give eager's values", async (b) => {
  const x = special();
  await compare(b, "x / 0", (a: Tensor) => a.div(0), [x]);
  await compare(b, "x / -0", (a: Tensor) => a.div(-0), [x]);
  await compare(b, "x * 0 (0 · ∞ is NaN)", (a: Tensor) => a.mul(0), [x]);
  await compare(b, "0 * Infinity", (a: Tensor) => a.mul(Infinity).mul(0), [x]);
  await compare(b, "x + 0 keeps -0 apart", (a: Tensor) => a.add(0).mul(-1), [x]);
  await compare(b, "x - 0, -0 + x", (a: Tensor) => a.sub(0).add(a.mul(-0)), [x]);
  await compare(b, "x * 1, x / 1, x ** 1", (a: Tensor) => a.mul(1).div(1).pow(1), [x]);
  await compare(
    b,
    "comparisons with NaN",
    (a: Tensor) => [a.lt(NaN), a.le(NaN), a.gt(NaN), a.ge(NaN), a.eq(NaN), a.ne(NaN)],
    [x],
  );
  await compare(
    b,
    "where with NaN",
    (a: Tensor) => [where(a.gt(0), NaN, a), where(a.ne(a), 0, a), where(NaN, a, 1)],
    [x],
  );
  await compare(
    b,
    "maximum and minimum with NaN and -0",
    (a: Tensor) => [a.maximum(NaN), a.minimum(-0), a.maximum(0)],
    [x],
  );
  await compare(
    b,
    "pow with special exponents",
    (a: Tensor) => [a.pow(0), a.pow(-1), a.pow(0.5), a.pow(NaN), a.pow(Infinity), a.pow(-Infinity)],
    [x],
  );
  await compare(
    b,
    "floorDiv and mod by 0, -0 and ∞",
    (a: Tensor) => [a.floorDiv(0), a.mod(-0), a.floorDiv(Infinity), a.mod(-Infinity)],
    [x],
  );
  await compare(b, "isnan and isinf", (a: Tensor) => [a.isnan(), a.isinf()], [x]);
  await compare(b, "the same literal twice", (a: Tensor) => a.mul(3).add(3).div(3), [x]);
});

testBoth(
  "jit: no folding or contraction across fused ops: identities false for NaN/±Infinity, " +
    "and exp of a product, keep eager's bits (compiled on WebGPU)",
  async (b) => {
    // Eager stores every op's result, so the shader compiler never sees x - x; in a fused
    // kernel it could, and (WGSL lets it assume finite values) fold it, or reassociate
    // exp(a·b) = exp2(a·b·log2 e) (a regression test: both happened before fd74fa3).
    const x = special();
    const cases: [string, (a: Tensor) => Tensor][] = [
      ["isfinite (x - x == 0)", (a) => a.isfinite()],
      ["x - x", (a) => a.sub(a)],
      ["-x + x", (a) => a.neg().add(a)],
      ["x² - x·x", (a) => a.square().sub(a.mul(a))],
      ["(x + 1) - 1", (a) => a.add(1).sub(1)],
      ["exp(log x)", (a) => a.log().exp()],
      ["log(exp x)", (a) => a.exp().log()],
      ["√x · √x", (a) => a.sqrt().mul(a.sqrt())],
    ];
    if (stores(b, "float16")) {
      cases.push(["float16 x - x", (a) => a.astype("float16").sub(a.astype("float16"))]);
    }
    const failures: string[] = [];
    const attempt = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        failures.push((err as Error).message.split("\n")[0]);
      }
    };
    for (const [label, f] of cases) await attempt(() => compare(b, label, f, [x]));
    // Finite values: products feeding exp, and a·b + c (no fused multiply-add).
    const [u, v, w] = [1, 2, 3].map((seed) => randomNormal([4096], { seed }));
    const finite: [string, (a: Tensor, c: Tensor, d: Tensor) => Tensor][] = [
      ["exp(a·b)", (a, c) => a.mul(c).exp()],
      ["exp((a + 1)·a)", (a) => a.add(1).mul(a).exp()],
      ["a·b + c", (a, c, d) => a.mul(c).add(d)],
      ["c - a·b", (a, c, d) => d.sub(a.mul(c))],
      ["tanh(a·b) · c", (a, c, d) => a.mul(c).tanh().mul(d)],
    ];
    for (const [label, f] of finite) await attempt(() => compare(b, label, f, [u, v, w]));
    // Chains of adds and of multiplies reach the shader compiler unhidden (kernels/fused.ts,
    // mustHide): regrouped, these would change (cancellation, overflow, underflow).
    const big = tensor([1e8, 1e30, 3e38, 1e-30, -1e8, 1]);
    const neg = tensor([-1e8, 1e30, -3e38, 1e-30, 1e8, 1e-8]);
    const one = tensor([1, 1e-30, 3e38, 1e30, 1, -1]);
    const chains: [string, (a: Tensor, c: Tensor, d: Tensor) => Tensor][] = [
      ["(a + b) + c", (a, c, d) => a.add(c).add(d)],
      ["a + (b + c)", (a, c, d) => a.add(c.add(d))],
      ["(a · b) · c", (a, c, d) => a.mul(c).mul(d)],
      ["a · (b · c)", (a, c, d) => a.mul(c.mul(d))],
      ["(a · b) · c + a", (a, c, d) => a.mul(c).mul(d).add(a)],
      ["a + b + c + a · b", (a, c, d) => a.add(c).add(d).add(a.mul(c))],
    ];
    for (const [label, f] of chains) {
      await attempt(() => compare(b, label, f, [big, neg, one]));
      await attempt(() => compare(b, `${label}, random`, f, [u, v, w]));
    }
    assert.deepEqual(failures, [], `fused results differ from eager:\n${failures.join("\n")}`);
  },
);

testBoth("jit: traced numbers of every kind (float, int, -0, NaN, ±Infinity)", async (b) => {
  const x = tensor([-2, -0, 0, 1.5, Infinity, NaN, -Infinity, 3]);
  const f = (
    a: Tensor,
    k: number,
  ) => [a.mul(k), a.add(k).div(k), a.lt(k), a.pow(k), where(a.gt(0), k, a)];
  for (const k of [2.5, 3, -7, 1000, 1e10, -0, 0, NaN, Infinity, -Infinity]) {
    await compare(b, `number ${show(k)}`, f, [x, k]);
  }
  const i8 = tensor([100, -100, 5, -128, 127, 0], { dtype: "int8" });
  for (const k of [2.5, 3, -0, NaN, Infinity, -5, 100]) {
    await compare(
      b,
      `int8 tensor and number ${show(k)}`,
      (a: Tensor, n: number) => [a.add(n), a.mul(n), a.floorDiv(n)],
      [i8, k],
    );
  }
  if (stores(b, "float16")) {
    for (const k of [0.1, 3, -0, NaN, Infinity, 70000]) {
      await compare(
        b,
        `float16 tensor and number ${show(k)}`,
        (a: Tensor, n: number) => [a.add(n), a.mul(n)],
        [x.astype("float16"), k],
      );
    }
  }
  // One program per kind of number; a new value of the same kind reuses it.
  const g = jit((a: Tensor, k: number) => a.mul(k).add(k));
  for (const k of [0.5, 0.25, 3, 4, -0, NaN, Infinity, 2.5]) g(x, k).dispose();
  assert.equal(g.stats.traces, 3, "one trace each for float, int8 and -0");
  assert.equal(g.stats.cacheHits, 5);
});

// ---- shapes -----------------------------------------------------------------------

testBoth("jit: zero-size tensors, scalars and rank 5–6 tensors", async (b) => {
  const empty = tensor([], { shape: [3, 0, 2] });
  await compare(b, "zero-size elementwise", (a: Tensor) => a.exp().transpose([2, 0, 1]).add(1), [
    empty,
  ]);
  await compare(
    b,
    "zero-size reduced to zeros",
    (a: Tensor) => [a.exp().sum(1), a.add(1).sum(1, { keepdims: true }).mul(2), a.sum()],
    [empty],
    {
      exact: false,
    },
  );
  await compare(b, "scalar", (a: Tensor, k: number) => a.exp().add(a).mul(k), [tensor(2), 0.5]);
  await compare(
    b,
    "scalar broadcast into a vector",
    (a: Tensor, v: Tensor) => v.mul(a.exp()).sub(a),
    [tensor(0.3), tensor([1, 2, 3])],
  );
  const r6 = randomNormal([2, 3, 1, 2, 3, 2], { seed: 9 });
  await compare(
    b,
    "rank 6 transpose, reduce, flip",
    (a: Tensor) => a.transpose([5, 4, 3, 2, 1, 0]).exp().sum([1, 3]).reshape([2, 2, 6]).flip(1),
    [r6],
    {
      exact: false,
    },
  );
  await compare(
    b,
    "rank 6 broadcast against rank 2",
    (a: Tensor, c: Tensor) => a.mul(c).sub(c.exp()),
    [r6, randomNormal([3, 2], { seed: 2 })],
  );
  const r5 = randomNormal([2, 1, 3, 4, 2], { seed: 10 });
  await compare(
    b,
    "rank 5 broadcast to rank 6 and sliced",
    (a: Tensor) =>
      a.broadcastTo([2, 2, 5, 3, 4, 2]).slice([0, 1, 0, 2, 0, 1], undefined, {
        steps: [1, 1, 2, 1, 3, 1],
      })
        .mul(2),
    [r5],
  );
});

testBoth("jit: movement ops as index arithmetic (stacked views, steps, flips)", async (b) => {
  const x = randomNormal([4, 5, 6], { seed: 3 });
  await compare(
    b,
    "a reshape of a transposed tensor (two views)",
    (a: Tensor) => a.transpose([1, 0, 2]).reshape([5, 24]).exp(),
    [x],
  );
  await compare(
    b,
    "reshape of a transpose, transposed again",
    (a: Tensor) => a.add(1).transpose([2, 1, 0]).reshape([6, 20]).transpose().mul(2),
    [x],
  );
  await compare(
    b,
    "three stacked views",
    (a: Tensor) =>
      a.transpose([2, 0, 1]).reshape([6, 20]).transpose().reshape([4, 5, 6]).transpose([1, 2, 0])
        .reshape([120]).neg(),
    [x],
  );
  await compare(
    b,
    "reshape of a computed value's transpose, sliced and flipped",
    (a: Tensor) =>
      a.exp().transpose([1, 0, 2]).reshape([120]).slice([3], [100], { steps: [7] }).flip(),
    [x],
  );
  await compare(
    b,
    "slices with steps and negative steps composed with flips",
    (a: Tensor) =>
      a.flip(1).slice([3, 4, 5], undefined, { steps: [-2, -1, -3] }).flip([0, 2])
        .slice([0, 1, 0], undefined, { steps: [1, 2, 1] }).mul(3),
    [x],
  );
  await compare(
    b,
    "a flipped, merged axis (negative stride reshape)",
    (a: Tensor) => a.flip([1, 2]).reshape([4, 30]).add(a.reshape([4, 30])),
    [x],
  );
  await compare(
    b,
    "a broadcast (stride 0) merged by a reshape",
    (a: Tensor) => a.sum(2).broadcastTo([3, 4, 5]).reshape([12, 5]).transpose().mul(2),
    [x],
    { exact: false },
  );
  await compare(b, "a broadcast of an inlined expression", (a: Tensor, c: Tensor) => {
    const t = c.add(1).mul(c); // used by two kernels: recomputed in each
    return [a.mul(t.broadcastTo([4, 5, 6])), t.exp(), a.sub(t.reshape([1, 1, 6]))];
  }, [x, randomNormal([6], { seed: 4 })]);
  await compare(
    b,
    "a non-contiguous input (transposed, sliced, flipped)",
    (a: Tensor, c: Tensor) => a.exp().add(c),
    [
      x.transpose([2, 0, 1]),
      randomNormal([8, 5, 6], { seed: 12 }).slice([1, 0, 0], undefined, { steps: [2, 1, 1] })
        .flip(1).transpose([2, 0, 1]),
    ],
  );
});

testBoth("jit: outputs that are inputs, views, repeated values and numbers", async (b) => {
  const x = randomNormal([3, 4], { seed: 5 });
  await compare(b, "an input returned as it is", (a: Tensor) => [a, a.add(1)], [x]);
  await compare(b, "only inputs and their views returned", (a: Tensor) => [a, a.transpose()], [x]);
  await compare(b, "outputs that are views of a computed value", (a: Tensor) => {
    const t = a.exp();
    return [t.transpose(), t.reshape([12]), t.slice([1, 1]), t.flip(1), t.broadcastTo([2, 3, 4])];
  }, [x]);
  await compare(b, "the same value returned twice, and its view", (a: Tensor) => {
    const t = a.mul(2);
    return { first: t, again: t, view: t.transpose() };
  }, [x]);
  await compare(
    b,
    "a reshape of a transposed computed value (a copy) as output",
    (a: Tensor) => a.exp().transpose().reshape([12]),
    [x],
  );
  const f = jit((a: Tensor, k: number) => [a.add(k), k, "label"]);
  const [t, k, s] = f(x, 2.5) as [Tensor, number, string];
  assert.equal(k, 2.5, "a number argument returned as it is comes back as that number");
  assert.equal(s, "label");
  assertSameBits(await t.data(), await x.add(2.5).data(), "x + k");
  assert.ok(Object.is((f(x, -0) as unknown[])[1], -0), "-0 returned as -0");
  assert.ok(Number.isNaN((f(x, NaN) as unknown[])[1] as number), "NaN returned as NaN");
});

// ---- reductions ---------------------------------------------------------------------

testBoth(
  "jit: fused reductions, both strategies, over leading, middle and last axes",
  async (b) => {
    const x = randomNormal([4, 5, 6], { seed: 3 });
    const loose = { exact: false };
    await compare(b, "sum over the last axis", (a: Tensor) => a.exp().sum(2), [x], loose);
    await compare(b, "max over a middle axis", (a: Tensor) => a.exp().max(1), [x], loose);
    await compare(
      b,
      "min over the first axis (kept axes trailing)",
      (a: Tensor) => a.min(0),
      [x],
      loose,
    );
    await compare(b, "sum over axes 0 and 2", (a: Tensor) => a.mul(a).sum([0, 2]), [x], loose);
    await compare(b, "prod, keepdims", (a: Tensor) => a.prod(1, { keepdims: true }), [x], loose);
    await compare(b, "mean of everything", (a: Tensor) => a.mean(), [x], loose);
    // "thread": a short reduction with many outputs (10 elements, 4096 outputs).
    const wide = randomNormal([4096, 10], { seed: 6 });
    await compare(b, "short sum, many outputs", (a: Tensor) => a.exp().sum(1), [wide], loose);
    // "workgroup": a long reduction with one output.
    const long = randomNormal([100000], { seed: 7 });
    const s = await compare(
      b,
      "sum of 100,000 elements",
      (a: Tensor) => a.mul(0.5).sum(),
      [long],
      loose,
    );
    if (b !== "cpu") assert.equal(s.stats.kernels, 1, "one fused kernel");
    await compare(
      b,
      "max of 100,000 elements over a strided view",
      (a: Tensor) => a.reshape([1000, 100]).transpose().max(),
      [long],
      loose,
    );
    await compare(
      b,
      "max and min with NaN and ±Infinity",
      (a: Tensor) => [a.max(), a.min(), a.max(0), a.min(1), a.sum(1)],
      [
        tensor([[1, NaN, 3], [-Infinity, 2, 0], [Infinity, -0, 0]]),
      ],
      loose,
    );
    await compare(
      b,
      "int32 sum wraps, int8 sums to int32, bool counts",
      (
        a: Tensor,
      ) => [
        a.mul(1e8).astype("int32").sum(1),
        a.mul(100).astype("int8").sum(0),
        a.gt(0).sum(),
        a.astype("int32").max(2),
      ],
      [x],
    );
    if (stores(b, "float16")) {
      await compare(
        b,
        "float16 sum and max with an epilogue",
        (a: Tensor) => [a.astype("float16").sum(1), a.astype("float16").max(1).mul(3)],
        [x],
        loose,
      );
    }
  },
);

testBoth("jit: reductions with epilogues, softmax and logsumexp", async (b) => {
  const x = randomNormal([8, 33], { seed: 8 }).mul(4);
  const loose = { exact: false };
  const e = await compare(b, "log(sum(exp(x)))", (a: Tensor) => a.exp().sum(1).log(), [x], loose);
  if (b !== "cpu") assert.equal(e.stats.kernels, 1, "prologue, reduction, epilogue: one kernel");
  await compare(
    b,
    "epilogue through keepdims and a reshape",
    (a: Tensor) => a.exp().sum(1, { keepdims: true }).reshape([2, 4]).log().mul(2),
    [x],
    loose,
  );
  await compare(
    b,
    "an epilogue over a transposed reduction",
    (a: Tensor) => a.reshape([8, 3, 11]).sum(2).transpose().sqrt(),
    [x],
    loose,
  );
  await compare(
    b,
    "a reduction used twice (no epilogue)",
    (a: Tensor) => {
      const s = a.sum(1);
      return s.mul(s);
    },
    [x],
    loose,
  );
  await compare(
    b,
    "x - max(x) broadcast back",
    (a: Tensor) => a.sub(a.max(1, { keepdims: true })),
    [x],
    loose,
  );
  await compare(b, "softmax", (a: Tensor) => softmax(a, 1), [x], loose);
  await compare(b, "softmax over the first axis", (a: Tensor) => softmax(a, 0), [x], loose);
  await compare(b, "logsumexp", (a: Tensor) => logsumexp(a, 1), [x], loose);
  await compare(b, "logSoftmax with -Infinity and a NaN row", (a: Tensor) => a.logSoftmax(-1), [
    tensor([[0, -Infinity, 1], [NaN, 1, 2], [1000, 1000, -1000]]),
  ], loose);
  await compare(
    b,
    "variance and a reduction of a reduction",
    (a: Tensor) => [a.var(1), a.sum(1).max(), a.max(1).sum()],
    [x],
    loose,
  );
});

testBoth(
  "jit: row kernels: reductions over one space share a kernel, rows are stored after them",
  async (b) => {
    const x = randomNormal([8, 33], { seed: 8 }).mul(4);
    // Few outputs and long rows: the WebGPU renderer's workgroup strategy.
    const long = randomNormal([2, 3000], { seed: 9 }).mul(4);
    const ints = tensor(Array.from({ length: 8 * 33 }, (_, i) => ((i * 37) % 251) - 125), {
      shape: [8, 33],
      dtype: "int32",
    });
    const int8 = ints.astype("int8");
    const labels = tensor([0, 3, 1, 32, 5, 7, 2, 9], { dtype: "int32" });
    const rowMax = (a: Tensor) => a.max(1, { keepdims: true });
    type Case = [string, (a: Tensor) => unknown, Tensor, number, boolean];
    const cases: Case[] = [
      // [what, function, argument, kernels on a compiling backend, bitwise equal to eager]
      ["x - max(x)", (a) => a.sub(rowMax(a)), x, 1, true],
      ["softmax", (a) => softmax(a, 1), x, 1, false],
      ["softmax over the first axis", (a) => softmax(a, 0), x, 1, false],
      ["logsumexp", (a) => logsumexp(a, 1), x, 1, false],
      ["variance (a sum, then a sum of squares around it)", (a) => a.var(1), x, 1, false],
      ["softmax of long rows", (a) => softmax(a, 1), long, 1, false],
      ["logSoftmax of long rows", (a) => a.logSoftmax(-1), long, 1, false],
      // The loss rows in one kernel, their mean (another space) in a second.
      ["softmax cross-entropy", (a) => softmaxCrossEntropy(a, labels), x, 2, false],
      ["int32 rows minus their sum", (a) => a.sub(a.sum(1, { keepdims: true })), ints, 1, true],
      ["int8 rows minus their maximum (wrapping)", (a) => a.sub(rowMax(a)).mul(3), int8, 1, true],
      [
        "rows compared with their mean (bool rows)",
        (a) => a.gt(a.mean(1, { keepdims: true })),
        x,
        1,
        true,
      ],
      [
        "rows read through a transposed reshape (stacked views)",
        (a) => {
          const t = a.reshape([33, 8]).transpose().reshape([8, 33]);
          return t.sub(rowMax(t)).exp();
        },
        x,
        1,
        false,
      ],
      // Another row's maximum is not this kernel's result: materialised, still correct.
      ["x minus the maximum of the flipped rows", (a) => a.sub(rowMax(a).flip(0)), x, 2, true],
      // Regression tests (a review found both crashing the wasm renderer): a reduction whose
      // input is another one's result, and int8/bool constants converted inside a loop.
      ["sum of the broadcast maximum", (a) => rowMax(a).broadcastTo(a.shape).sum(1), x, 1, false],
      [
        "rows times an int8 3",
        (a) => a.sub(rowMax(a)).mul(tensor(3, { dtype: "int8" })),
        x,
        1,
        true,
      ],
      ["sum of x times an int8 3", (a) => a.mul(tensor(3, { dtype: "int8" })).sum(1), x, 1, false],
      ["sum of x times true", (a) => a.mul(tensor(true)).sum(1), x, 1, false],
      // Reductions over different spaces stay in different kernels.
      ["column sums of x - max(x)", (a) => a.sub(rowMax(a)).sum(0), x, 2, false],
      // Several outputs: the rows, and the reductions stored for the caller.
      [
        "softmax with its maximum and sum",
        (a) => {
          const m = rowMax(a);
          const e = a.sub(m).exp();
          const s = e.sum(1, { keepdims: true });
          return [e.div(s), m, s];
        },
        x,
        1,
        false,
      ],
    ];
    for (const [what, f, arg, kernels, exact] of cases) {
      const jitted = await compare(b, what, f, [arg], { exact });
      if (b !== "cpu") assert.equal(jitted.stats.kernels, kernels, `${what}: kernels`);
    }
    disposeTree([x, long, ints, int8, labels]);
  },
);

testBoth("jit: a reduction longer than maxReduce is a library call (2^21 elements)", async (b) => {
  const n = 1 << 21;
  const x = randomNormal([n], { seed: 11 });
  const f = (a: Tensor) => a.mul(0.5).sum().div(100);
  const jitted = await compare(b, "sum of 2^21", f, [x], { exact: false, rtol: 1e-5 });
  if (b !== "cpu") {
    const trace = jitted.trace(x);
    const plan = compileProgram(trace, new Set(), resolveBackend(b)).schedule;
    assert.ok(n > DEFAULT_LIMITS.maxReduce);
    assert.ok(
      plan.steps.some((s) => s.kind === "library" && s.equation.prim === "sum"),
      "the long sum runs as the backend's own reduction",
    );
    assert.equal(jitted.stats.kernels, plan.steps.length);
  }
  x.dispose();
});

// ---- matmuls and kernels with several outputs ------------------------------------------

testBoth(
  "jit: a value several kernels read is stored by the first; a matmul operand is never computed " +
    "by the matmul's own kernel",
  async (b) => {
    const x = randomNormal([6, 5], { seed: 1 });
    const w = randomNormal([5, 7], { seed: 2 });
    const bias = randomNormal([7], { seed: 3 });
    // The pre-activation feeds the activation (in the matmul's kernel) and a later kernel.
    const layer = (a: Tensor, v: Tensor) => {
      const pre = a.matmul(v).add(bias);
      const h = pre.relu();
      return [h.sum(), pre.gt(0).astype("float32").mul(h.sum(0)).sum(0)];
    };
    const fused = await compare(b, "a layer and its mask", layer, [x, w], { exact: false });
    if (b !== "cpu") assert.ok(fused.stats.kernels <= 3, `${fused.stats.kernels} kernels`);
    // Found by the fuzzer: 2x is both a matmul operand and read by the matmul's epilogue.
    const both = (a: Tensor) => {
      const twice = a.add(a);
      const v = twice.broadcastTo([2]);
      return v.reshape([1, 2]).matmul(v.reshape([2, 1])).reshape([]).add(twice).neg();
    };
    await compare(b, "an operand of a matmul read by its epilogue", both, [tensor(0.75)], {
      exact: false,
    });
    disposeTree([x, w, bias]);
  },
);

testBoth("jit: matmuls with fused epilogues (bias, activation, views of operands)", async (b) => {
  const x = randomNormal([6, 5], { seed: 1 });
  const w = randomNormal([5, 7], { seed: 2 });
  const bias = randomNormal([7], { seed: 3 });
  const near = { exact: false, rtol: 1e-6 };
  const fused = await compare(
    b,
    "x·w + b, relu",
    (a: Tensor, c: Tensor, d: Tensor) => a.matmul(c).add(d).relu(),
    [x, w, bias],
    near,
  );
  if (b !== "cpu") assert.equal(fused.stats.kernels, 1, "the epilogue runs in the matmul");
  await compare(
    b,
    "a matmul returned and used twice",
    (a: Tensor, c: Tensor) => {
      const m = a.matmul(c);
      return [m, m.mul(m)];
    },
    [x, w],
    near,
  );
  await compare(
    b,
    "xᵀ·x and x·xᵀ (one buffer as both operands)",
    (a: Tensor) => [a.transpose().matmul(a).exp(), a.matmul(a.transpose()).tanh()],
    [x],
    near,
  );
  await compare(
    b,
    "flipped and strided operands",
    (a: Tensor, c: Tensor) =>
      a.flip(0).slice([0, 0], undefined, { steps: [2, 1] }).matmul(c.flip([0, 1])).mul(2),
    [x, w],
    near,
  );
  await compare(
    b,
    "an epilogue reading an operand",
    (a: Tensor) => {
      const sq = a.slice([0, 0], [5, 5]);
      return sq.matmul(sq).add(sq);
    },
    [x],
    near,
  );
  await compare(
    b,
    "an epilogue through a reshape, and one through a transpose",
    (a: Tensor, c: Tensor) => [a.matmul(c).reshape([42]).add(1), a.matmul(c).transpose().add(1)],
    [x, w],
    near,
  );
  await compare(
    b,
    "batched, the weight broadcast over the batch",
    (a: Tensor, c: Tensor, d: Tensor) => a.matmul(c).add(d).sigmoid(),
    [randomNormal([3, 6, 5], { seed: 4 }), w, bias],
    near,
  );
  await compare(
    b,
    "rank 4 with transposed batch axes",
    (a: Tensor, c: Tensor) => a.transpose([1, 0, 2, 3]).matmul(c).add(1),
    [randomNormal([2, 3, 4, 5], { seed: 5 }), w],
    near,
  );
  await compare(
    b,
    "traced numbers in the epilogue and in an operand",
    (a: Tensor, c: Tensor, k: number) => [a.matmul(c).mul(k).add(k), a.matmul(c.mul(k)).add(1)],
    [x, w, 0.5],
    near,
  );
  await compare(
    b,
    "k = 0 (zeros), vectors, a 1-D operand",
    (
      a: Tensor,
      c: Tensor,
      v: Tensor,
    ) => [a.matmul(c).add(1), v.matmul(v.reshape([9, 1])).exp(), x.matmul(v.slice([0], [5])).exp()],
    [
      tensor([], { shape: [3, 0] }),
      tensor([], { shape: [0, 4] }),
      randomNormal([9], { seed: 7 }),
    ],
    near,
  );
  await compare(b, "k = 70,000 (a library matmul)", (a: Tensor, c: Tensor) => a.matmul(c).add(1), [
    randomNormal([2, 70000], { seed: 8 }),
    randomNormal([70000, 3], { seed: 9 }),
  ], {
    exact: false,
    rtol: 1e-5,
  });
  await compare(
    b,
    "computed, constant and broadcast operands; chained matmuls",
    (a: Tensor, c: Tensor) => [
      a.exp().matmul(c.tanh()).add(1),
      a.matmul(tensor([[1], [2], [3], [4], [5]])).add(1),
      a.sum(0, { keepdims: true }).broadcastTo([4, 5]).matmul(c).add(1),
      a.matmul(c).relu().matmul(c.transpose()).add(1),
    ],
    [x, w],
    near,
  );
  if (stores(b, "float16")) {
    await compare(
      b,
      "float16 operands",
      (a: Tensor, c: Tensor) => a.astype("float16").matmul(c.astype("float16")).add(1),
      [x, w],
      { exact: false },
    );
  }
});

testWebGPU(
  "jit: a float16 value in a matmul's fused epilogue gives eager's result " +
    "(regression: the WGSL put `enable f16;` after a declaration)",
  async (b) => {
    if (!stores(b, "float16")) {
      console.log("  skipped: this adapter has no shader-f16");
      return;
    }
    // The matmul template emits the args declaration before the epilogue module, whose
    // header starts with `enable f16;`: the shader does not parse, the pipeline is
    // invalid, the dispatch does nothing (a console error only) and the output keeps
    // whatever its pooled buffer held. The jitted call runs first, so no buffer holds a
    // copy of eager's result.
    const x = randomNormal([4, 3], { seed: 1 });
    const w = randomNormal([3, 2], { seed: 2 });
    const h = randomNormal([2], { seed: 3 }).astype("float16");
    const cases: [string, (a: Tensor, c: Tensor, d: Tensor) => Tensor][] = [
      ["the product cast to float16", (a, c) => a.matmul(c).astype("float16").mul(2)],
      ["a float16 bias", (a, c, d) => a.matmul(c).add(d.astype("float32"))],
    ];
    const failures: string[] = [];
    for (const [label, f] of cases) {
      const compiled = await jit(f)(x, w, h).data();
      const eager = await f(x, w, h).data();
      try {
        assertSameBits(compiled, eager, label);
      } catch (err) {
        failures.push((err as Error).message.split("\n")[0]);
      }
    }
    assert.deepEqual(failures, [], failures.join("\n"));
  },
);

testBoth("jit: outputs computed inside another output's kernel (optimizer updates)", async (b) => {
  const [w, g, m] = [1, 2, 3].map((seed) => randomNormal([64], { seed }));
  const v = randomNormal([64], { seed: 4 }).abs();
  const adam = (w: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: number) => {
    const m2 = m.mul(0.9).add(g.mul(0.1));
    const v2 = v.mul(0.999).add(g.square().mul(0.001));
    return { w: w.sub(m2.div(v2.sqrt().add(1e-8)).mul(lr)), m: m2, v: v2 };
  };
  const jitted = await compare(b, "an Adam-like update", adam, [w, g, m, v, 0.01]);
  if (b === "webgpu") {
    const eager = await measure(b, () => disposeTree(adam(w, g, m, v, 0.01)));
    const compiled = await measure(b, () => disposeTree(jitted(w, g, m, v, 0.01)));
    assert.ok(compiled!.dispatches < eager!.dispatches / 3, `${compiled!.dispatches} dispatches`);
  }
  await compare(b, "a chain of outputs, in either order", (a: Tensor) => {
    const [p, q] = [a.exp(), a.exp().add(1)];
    const r = q.mul(2);
    return [p, q, r, r, q, p];
  }, [w]);
  await compare(b, "an output and views of it", (a: Tensor, c: Tensor) => {
    const t = a.add(c);
    return [t, t.flip().mul(2), t.reshape([8, 8]), t.reshape([8, 8]).add(1)];
  }, [w, g]);
  await compare(
    b,
    "outputs beside reductions and a matmul",
    (a: Tensor) => {
      const e = a.exp();
      const s = e.reshape([8, 8]).sum(1);
      const t = s.log();
      const h = a.reshape([8, 8]).matmul(e.reshape([8, 8])).add(1);
      return [e, s, t, t.add(1), h, h.relu(), e.sum()];
    },
    [w],
    { exact: false, rtol: 1e-6 },
  );
  await compare(b, "bool, float16 and int8 outputs side by side", (a: Tensor) => {
    const c = a.gt(0);
    const h = stores(b, "float16") ? a.mul(50).astype("float16") : a.mul(50);
    const i = h.astype("int8");
    return [c, c.astype("float32").mul(a), h, i, i.add(100)];
  }, [w]);
});

// ---- dispatches ---------------------------------------------------------------------

testBoth("jit: a chain of 1,000 dependent adds is one dispatch per call (WebGPU)", async (b) => {
  const x = randomNormal([16], { seed: 1 });
  const chain = (a: Tensor) => {
    let y = a;
    for (let i = 0; i < 1000; i++) y = y.add(a);
    return y;
  };
  const f = jit(chain);
  f(x).dispose(); // traced and compiled
  let out: Tensor | null = null;
  const used = await measure(b, () => (out = f(x)));
  const expected = chain(x);
  assertSameBits(await out!.data(), await expected.data(), "1,000 adds");
  if (used) {
    assert.equal(used.dispatches, 1, "one dispatch");
    assert.equal(used.created, 0, "a warm call creates no buffer (the output is pooled)");
    assert.equal(f.stats.kernels, 1);
    const lowered = f.lower(x);
    assert.equal(lowered.steps, 1, lowered.text);
    assert.equal(lowered.kernels.length, 1);
    assert.match(lowered.kernels[0], /fn main/);
  }
  out!.dispose();
  expected.dispose();
});

testBoth("jit: a 10,000-op chain traces, compiles (~10 kernels) and matches eager", async (b) => {
  const x = randomNormal([16], { seed: 2 });
  const chain = (a: Tensor) => {
    let y = a;
    for (let i = 0; i < 10000; i++) {
      y = i % 4 === 0 ? y.mul(0.999) : i % 4 === 1 ? y.add(a) : i % 4 === 2 ? y.sub(0.5) : y.neg();
    }
    return y;
  };
  const f = jit(chain);
  const out = f(x);
  const expected = chain(x);
  assertSameBits(await out.data(), await expected.data(), "10,000 ops");
  if (b !== "cpu") {
    assert.ok(f.stats.kernels >= 10 && f.stats.kernels <= 12, `${f.stats.kernels} kernels`);
  }
  out.dispose();
  expected.dispose();
});

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

testBoth(
  "jit: the MLP training step (784→128→10) runs in ≤ 10 dispatches, creates no buffer " +
    "when warm, and tracks eager's loss within 1e-5 over 20 steps",
  async (b) => {
    const batch = b === "webgpu" ? 128 : 16;
    const loss = (p: Params, x: Tensor, labels: Tensor) =>
      softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);
    const trainStep = (p: Params, x: Tensor, labels: Tensor) => {
      const [value, grads] = valueAndGrad(loss)(p, x, labels);
      return { loss: value, params: sgd(p, grads, { lr: 0.05 }) };
    };
    const init = (): Params => ({
      w1: randomNormal([784, 128], { seed: 1, std: 0.05 }),
      b1: zeros([128]),
      w2: randomNormal([128, 10], { seed: 2, std: 0.1 }),
      b2: zeros([10]),
    });
    const x = randomNormal([batch, 784], { seed: 3 });
    const labels = tensor(Int32Array.from({ length: batch }, (_, i) => (i * 7) % 10));
    const step = jit(trainStep);
    let [pj, pe] = [init(), init()];
    for (let i = 0; i < 20; i++) {
      let r: { loss: Tensor; params: Params } | null = null;
      const used = await measure(b, () => (r = step(pj, x, labels)));
      const e = trainStep(pe, x, labels);
      const [lj, le] = [await r!.loss.item(), await e.loss.item()];
      assert.ok(Math.abs(lj - le) <= 1e-5, `step ${i}: loss ${lj}, eager ${le}`);
      if (used && i > 0) {
        assert.ok(used.dispatches <= 10, `step ${i}: ${used.dispatches} dispatches`);
        assert.equal(used.created, 0, `step ${i}: buffers created by a warm step`);
        assert.equal(used.pipelines, 0, `step ${i}: pipelines created by a warm step`);
      }
      disposeTree([pj, pe, r!.loss, e.loss]);
      [pj, pe] = [r!.params, e.params];
    }
    // A training loop queues steps without waiting: five in a row create no buffer either.
    const queued = await measure(b, () => {
      for (let i = 0; i < 5; i++) {
        const r = step(pj, x, labels);
        disposeTree([pj, r.loss]);
        pj = r.params;
      }
    });
    if (queued) {
      assert.ok(queued.dispatches <= 5 * 10, `${queued.dispatches} dispatches for 5 steps`);
      assert.equal(queued.created, 0, "buffers created by 5 queued warm steps");
    }
    if (b !== "cpu") assert.ok(step.stats.kernels > 0 && step.stats.kernels <= 10);
    assert.equal(step.stats.traces, 1);
    disposeTree([pj, pe, x, labels]);
  },
);

// ---- memory -------------------------------------------------------------------------

/** Disposes the tensors of `result` except `keep` (arguments returned as they are). */
function release(result: unknown, keep: readonly Tensor[]) {
  for (const t of new Set(leaves(result))) {
    if (t instanceof Tensor && !keep.includes(t) && !t.disposed) t.dispose();
  }
}

testBoth("jit: many calls leak no buffer, bytes or tensor; warm calls create none", async (b) => {
  const x = randomNormal([8, 16], { seed: 1 });
  const y = randomNormal([16], { seed: 2 });
  const long = b === "webgpu" ? 1 << 14 : 1 << 8;
  const programs: [string, (a: Tensor, c: Tensor, k: number) => unknown][] = [
    ["views of intermediates as outputs", (a, c) => {
      const t = a.mul(c).exp();
      return [t.transpose(), t.reshape([128]), t.sum(1), t.max(0).log()];
    }],
    ["a copy (reshape of a transpose) as output", (a) => a.exp().transpose().reshape([128])],
    ["an input and its view as outputs", (a, _c, k) => [a, a.transpose(), a.add(k)]],
    ["a library call on a traced number", (a, c, k) => a.matmul(c.reshape([16, 1]).mul(k))],
    // Past one workgroup's loop on WebGPU; shorter on the (slow) CPU backend.
    ["a long reduction", (a) => a.reshape([128]).broadcastTo([long, 128]).exp().sum().log()],
  ];
  for (const [label, f] of programs) {
    const jitted = jit(f);
    // An empty pool, then one call (traced and compiled): what it frees is all the pool
    // holds, so the 10 calls below create none only by reusing their own buffers.
    await settleGarbage();
    trimMemory();
    release(jitted(x, y, 2.5), [x, y]);
    await sync();
    const before = memoryStats();
    const used = await measure(b, () => {
      for (let i = 0; i < 10; i++) release(jitted(x, y, 2.5), [x, y]);
    });
    const after = memoryStats();
    assert.equal(after.liveBuffers, before.liveBuffers, `${label}: live buffers`);
    assert.equal(after.liveBytes, before.liveBytes, `${label}: live bytes`);
    assert.equal(after.liveTensors, before.liveTensors, `${label}: live tensors`);
    if (used) assert.equal(used.created, 0, `${label}: buffers created by 10 warm calls`);
    if (b !== "cpu") assert.ok(jitted.stats.kernels > 0, `${label}: compiled`);
  }
  disposeTree([x, y]);
});

testWebGPU(
  "jit: warm calls queued without a sync create no buffer, with an array constant or a " +
    "number returned as it is (regression: both were uploaded at every call)",
  async (b) => {
    // execute.ts uploads a traced host constant, and a traced number that is an output,
    // at every call; an upload needs a buffer the open encoder does not use (a "clean"
    // one), so back-to-back calls each create one (and a bind group for it). The pool is
    // emptied first so that buffers left by earlier tests do not hide it.
    const x = randomNormal([8, 16], { seed: 1 });
    const c = Array.from({ length: 16 }, (_, i) => i);
    const programs: [string, (a: Tensor, k: number) => unknown][] = [
      ["an array constant", (a) => a.mul(tensor(c)).sum(0)],
      ["a number returned as it is", (a, k) => [a.add(k), k]],
    ];
    const created: string[] = [];
    for (const [label, f] of programs) {
      const jitted = jit(f);
      await settleGarbage();
      trimMemory();
      release(jitted(x, 2.5), [x]);
      const used = await measure(b, () => {
        for (let i = 0; i < 10; i++) release(jitted(x, 2.5), [x]);
      });
      if (used && used.created > 0) created.push(`${label}: ${used.created} buffers`);
    }
    assert.deepEqual(created, [], "buffers created by 10 warm calls");
    x.dispose();
  },
);

// ---- errors ---------------------------------------------------------------------------

testWebGPU(
  "a shader that does not compile rejects the next read and is never run again",
  async () => {
    const backend = resolveBackend("webgpu");
    const x = tensor([1, 2, 3]);
    // A kernel whose load names a buffer it does not bind: its WGSL does not compile.
    const broken: FusedKernel = {
      shape: [3],
      buffers: [{ dtype: "float32", access: "read" }, { dtype: "float32", access: "write" }],
      params: 0,
      nodes: [{
        kind: "load",
        buffer: 7,
        address: [denseView([3])],
        dtype: "float32",
        space: "out",
      }],
      stores: [{ node: 0, buffer: 1, space: "out" }],
      reduce: null,
      matmul: null,
    };
    const kernel = backend.compileKernel!(broken);
    const [out] = kernel.run([x.view("test").storage], []);
    await assert.rejects(() => backend.read(out), /did not compile.*buf7/s);
    backend.free(out);
    // Compiling it again throws at once, with the same message; other work goes on.
    assert.throws(() => backend.compileKernel!(broken), /did not compile/);
    assert.deepEqual(await x.add(1).array(), [2, 3, 4]);
    x.dispose();
  },
);

testBoth("jit: a disposed captured tensor or argument is a clear error", async (b) => {
  const w = tensor([1, 2, 3]);
  const f = jit(function scaled(x: Tensor) {
    return x.mul(w).exp();
  });
  const x = tensor([3, 3, 3]);
  await compare(b, "captured", (a: Tensor) => a.mul(w).exp(), [x]);
  f(x).dispose();
  if (b !== "cpu") assert.equal(f.stats.kernels, 1, "compiled");
  w.dispose();
  assert.throws(
    () => f(x),
    (err: Error) =>
      err instanceof ReferenceError &&
      /^scaled: a tensor the traced function captured \(shape \[3\]\) was disposed/.test(
        err.message,
      ),
  );
  const g = jit(function shifted(a: Tensor) {
    return a.add(1);
  });
  g(x).dispose();
  x.dispose();
  assert.throws(
    () => g(x),
    (err: Error) =>
      err instanceof ReferenceError &&
      /^shifted: argument 0 is a tensor \(shape \[3\]\) that was disposed/.test(err.message),
  );
});

testBoth("jit: a read inside a compiled function is still refused at trace time", async (b) => {
  const f = jit((a: Tensor) => {
    if (a.shape[0] === 3) void a.sum().item(); // reads only for this signature
    return a.exp();
  });
  const ok = f(tensor([1, 2]));
  assertSameBits(await ok.data(), await tensor([1, 2]).exp().data(), "compiled first signature");
  if (b !== "cpu") assert.equal(f.stats.kernels, 1, "compiled");
  assert.throws(() => f(tensor([1, 2, 3])), /traced value: while makeTrace or jit traces/);
});

// ---- the binding budget ---------------------------------------------------------------

const twelve = (...xs: Tensor[]) =>
  xs.reduce((acc, t, i) => (i % 3 === 0 ? acc.add(t) : i % 3 === 1 ? acc.mul(t) : acc.sub(t)));

testBoth("jit: twelve distinct inputs in one expression", async (b) => {
  const xs = Array.from({ length: 12 }, (_, i) => randomNormal([5, 3], { seed: 30 + i }));
  await compare(b, "12 inputs", twelve, xs);
  const forty = Array.from({ length: 40 }, (_, i) => randomNormal([7], { seed: 60 + i }));
  await compare(b, "40 inputs", twelve, forty);
  disposeTree([xs, forty]);
});

/** Runs `trace` compiled with `limits` on `inputs` (WebGPU), checking every kernel's bindings. */
function runLimited(
  trace: Trace,
  inputs: Tensor[],
  limits: Partial<typeof DEFAULT_LIMITS>,
) {
  const program = compileProgram(trace, new Set(), resolveBackend("webgpu"), limits);
  for (const step of program.schedule.steps) {
    if (step.kind !== "kernel") continue;
    assert.ok(step.kernel.buffers.length <= limits.maxBuffers!, "a kernel binds too many buffers");
    assert.equal(step.kernel.buffers.length, step.bindings.length);
  }
  // No traced numbers here: every output is a tensor.
  return { program, outputs: program.run(inputs) as Tensor[] };
}

// compileProgram needs a backend that compiles kernels.
testWebGPU("jit: schedules respect a small binding budget (maxBuffers 3)", async () => {
  const xs = Array.from({ length: 12 }, (_, i) => randomNormal([5, 3], { seed: 30 + i }));
  const trace = makeTrace(twelve, ...xs.map((x) => ({ shape: x.shape })));
  const limits = { ...DEFAULT_LIMITS, maxBuffers: 3 };
  // The plan alone, from the scheduler.
  const plan = schedule(trace, new Set(), limits);
  assert.ok(plan.steps.length >= 6, `${plan.steps.length} steps`);
  for (const s of plan.steps) {
    if (s.kind === "kernel") assert.ok(s.kernel.buffers.length <= 3);
  }
  const { outputs } = runLimited(trace, xs, limits);
  assertSameBits(await outputs[0].data(), await twelve(...xs).data(), "maxBuffers 3");
  // With reductions and a shared subexpression, and maxBuffers 4.
  const f = (a: Tensor, c: Tensor, d: Tensor, e: Tensor) => {
    const s = a.mul(c).sum(1, { keepdims: true });
    return [a.sub(s).mul(d).add(e).exp().sum(0), s.mul(e).add(d)];
  };
  const args = [0, 1, 2, 3].map((i) => randomNormal([4, 5], { seed: 40 + i }));
  const spec = { shape: [4, 5] };
  const t2 = makeTrace(f, spec, spec, spec, spec);
  const run = runLimited(t2, args, { ...DEFAULT_LIMITS, maxBuffers: 4 });
  const expected = f(args[0], args[1], args[2], args[3]);
  for (let i = 0; i < 2; i++) {
    assertNear(await run.outputs[i].data(), await expected[i].data(), "float32", `output ${i}`);
  }
  disposeTree([xs, outputs, args, run.outputs, expected]);
});

testWebGPU(
  "jit: a kernel over the binding budget only because of recomputed (INLINE) operands " +
    "is split, not refused",
  async () => {
    // p and q are cheap and used by two kernels, so each kernel recomputes both and reads
    // all four inputs; the root alone is over maxBuffers 4. The split must materialise a
    // recomputed value (before fd74fa3 it split only group members and threw).
    const f = (x1: Tensor, x2: Tensor, x3: Tensor, x4: Tensor) => {
      const [p, q] = [x1.add(x2), x3.add(x4)];
      return [p.mul(q), p.sub(q)];
    };
    const xs = [0, 1, 2, 3].map((i) => randomNormal([4], { seed: 50 + i }));
    const spec = { shape: [4] };
    const trace = makeTrace(f, spec, spec, spec, spec);
    const { outputs } = runLimited(trace, xs, { ...DEFAULT_LIMITS, maxBuffers: 4 });
    const expected = f(xs[0], xs[1], xs[2], xs[3]);
    for (let i = 0; i < 2; i++) {
      assertSameBits(await outputs[i].data(), await expected[i].data(), `output ${i}`);
    }
  },
);
