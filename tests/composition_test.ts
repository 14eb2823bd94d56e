/**
 * The composition matrix: every ordered pair of transforms and every triple
 * of distinct ones, on a small set of functions (elementwise with
 * broadcasting, a reduction, matmul, a gather, a conv, a `customVjp` rule
 * and `checkpoint`ed layers), on every backend.
 *
 * Each transform is one entry of `TRANSFORMS`: a `wrap` that applies it to
 * a function in a fixed way (one tensor in front, one tensor out), and a
 * `reference` that computes what the wrapped function must return without
 * the transform — central differences for `grad` and `jvp`, a loop over the
 * examples for `vmap`, eager for `jit`. A composition `T₁ ∘ T₂ ∘ … ∘ Tₖ` of `f` is checked
 * against `T₁`'s reference applied to `T₂ ∘ … ∘ Tₖ` of `f`, and that inner
 * composition is itself a row of the matrix (down to the single transforms,
 * checked against their references on `f`), so by induction every level of
 * every composition is compared with a computation that does not use it.
 * `jit` is the entry `wrap: (f) => jit(f)`, `reference: (f, x, rest) =>
 * f(x, ...rest)` (eager); a new transform is one more entry: its pairs and
 * triples follow. Every comparison also checks that it can fail: the result
 * with one element off by 1% + 0.01 must be rejected.
 *
 * The fixed way each transform maps tensors to a tensor, for a function
 * `f(x, ...rest)` (only `x` is transformed; `rest` are passed through as
 * constants: unbatched, undifferentiated, with null tangents):
 * - `grad`: the gradient with respect to `x` of `⟨f(x, …), W⟩`, a fixed
 *   weighting `W` of the output's shape (so a permutation of the output is
 *   not invisible, as it would be to a plain sum);
 * - `jvp`: the output tangent along a fixed tangent of `x`'s shape;
 * - `vmap`: over a leading axis of size 3 of `x`.
 * The fixed weightings and tangents depend on the nesting level as well as
 * on the shape, so that nested `jvp`s move along different directions; the
 * wrap and the reference of a level see the same level, so they agree.
 * @module
 */

import assert from "node:assert/strict";
import {
  checkpoint,
  conv2d,
  customVjp,
  grad,
  jit,
  jvp,
  stack,
  type Tensor,
  tensor,
  tidy,
  vmap,
} from "../mod.ts";
import { assertClose, flat, testBoth } from "./_helpers.ts";

/** A function of the transformed argument `x` and constants passed through. */
type Fn = (x: Tensor, ...rest: Tensor[]) => Tensor;

interface Transform {
  name: string;
  /** The shape of `x` that `wrap(f)` takes, where `f` takes `shape`. */
  inShape(shape: readonly number[]): number[];
  /** The transform, applied in the fixed way described above. */
  wrap(f: Fn): Fn;
  /** What `wrap(f)(x, ...rest)` must equal, computed without the transform. */
  reference(f: Fn, x: Tensor, rest: Tensor[]): Tensor;
  /** How closely `wrap` must match `reference`. */
  tolerance: { atol: number; rtol: number };
}

const BATCH = 3;
/** The central-difference step: float32 loses ~1e-7·|f|/EPS to rounding, gains EPS²·f'''/6. */
const EPS = 1e-2;
const DIFFERENCES = { atol: 1e-3, rtol: 1e-3 };

/** Deterministic values in (-1, 1), different for each seed and element. */
function pattern(shape: readonly number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Array.from({ length: n }, (_, i) => Math.sin(seed * 2.7 + i * 1.3 + 0.4) * 0.9);
  return tensor(data).reshape([...shape]);
}

/**
 * The nesting level of the transform (or reference) now running: the seed
 * of its fixed weighting or tangent. A wrap and the reference that stands in
 * for it run at the same level, and the functions inside them one deeper.
 */
let level = 0;
function atLevel<R>(body: (seed: number) => R): R {
  const seed = level++;
  try {
    return body(seed);
  } finally {
    level--;
  }
}

/** `⟨y, W⟩` with the fixed weighting of this level. */
const contract = (y: Tensor, seed: number) => y.mul(pattern(y.shape, 100 + seed)).sum();
/** The fixed tangent of this level. */
const tangent = (shape: readonly number[], seed: number) => pattern(shape, 200 + seed);
/** `x + s·d`, in `x`'s shape. */
const shifted = (x: Tensor, d: Tensor, s: number) => x.add(d.mul(s));

/** The transforms composed; their pairs and distinct triples are generated below. */
const TRANSFORMS: Transform[] = [
  {
    name: "grad",
    inShape: (shape) => [...shape],
    wrap: (f) => (x, ...rest) =>
      atLevel((seed) =>
        grad((x: Tensor, ...r: Tensor[]) => contract(f(x, ...r), seed), { argnums: 0 })(
          x,
          ...rest,
        )
      ),
    // Central differences of ⟨f, W⟩, one coordinate of x at a time.
    reference: (f, x, rest) =>
      atLevel((seed) => {
        const parts = Array.from({ length: x.size }, (_, i) => {
          const basis = tensor(Array.from({ length: x.size }, (_, j) => (j === i ? 1 : 0)))
            .reshape(x.shape);
          const at = (s: number) => contract(f(shifted(x, basis, s * EPS), ...rest), seed);
          return at(1).sub(at(-1)).div(2 * EPS);
        });
        return stack(parts).reshape(x.shape);
      }),
    tolerance: DIFFERENCES,
  },
  {
    name: "jvp",
    inShape: (shape) => [...shape],
    wrap: (f) => (x, ...rest) =>
      atLevel((seed) => jvp(f, [x, ...rest], [tangent(x.shape, seed), ...rest.map(() => null)])[1]),
    // Central differences along the same tangent.
    reference: (f, x, rest) =>
      atLevel((seed) => {
        const v = tangent(x.shape, seed);
        const at = (s: number) => f(shifted(x, v, s * EPS), ...rest);
        return at(1).sub(at(-1)).div(2 * EPS);
      }),
    tolerance: DIFFERENCES,
  },
  {
    name: "vmap",
    inShape: (shape) => [BATCH, ...shape],
    wrap: (f) => (x, ...rest) =>
      atLevel(() => vmap(f, { inAxes: [0, ...rest.map(() => null)] })(x, ...rest)),
    // A loop over the examples, stacked.
    reference: (f, x, rest) =>
      atLevel(() => stack(Array.from({ length: BATCH }, (_, b) => f(x.get(b), ...rest)))),
    tolerance: { atol: 1e-5, rtol: 1e-5 },
  },
  {
    name: "jit",
    inShape: (shape) => [...shape],
    wrap: (f) => jit(f),
    // Eager: the same function without the transform.
    reference: (f, x, rest) => f(x, ...rest),
    tolerance: { atol: 1e-6, rtol: 1e-6 },
  },
];

/** softplus with its true gradient as a custom rule (so differences agree with it). */
const softplusRule = customVjp((z: Tensor) => z.softplus(), {
  fwd: (z: Tensor) => [z.softplus(), z],
  bwd: (z: Tensor, g: Tensor) => [g.mul(z.sigmoid())],
});
/** A layer whose intermediates the backward pass recomputes. */
const tanhLayer = checkpoint((h: Tensor, w: Tensor) => h.matmul(w).tanh());

interface TestFunction {
  fn: Fn;
  /** The shape of `x` (the values are a fixed pattern in (-1, 1)). */
  shape: number[];
  /** The constants passed through after `x`. */
  rest: () => Tensor[];
}

const FUNCTIONS: Record<string, TestFunction> = {
  "elementwise: tanh(x[3]·w[3] + b[1])": {
    fn: (x, w, b) => x.mul(w).add(b).tanh(),
    shape: [3],
    rest: () => [tensor([0.8, -1.1, 0.6]), tensor([0.3])],
  },
  "elementwise: tanh(w[3]·x[1] + b[3]), x broadcast": {
    fn: (x, w, b) => w.mul(x).add(b).tanh(),
    shape: [1],
    rest: () => [tensor([0.8, -1.1, 0.6]), tensor([0.3, -0.2, 0.1])],
  },
  "reduction: Σ softmax(x)·x − logsumexp(x) over the last axis of [2, 3]": {
    fn: (x) => x.softmax(-1).mul(x).sum(-1).sub(x.logsumexp(-1)),
    shape: [2, 3],
    rest: () => [],
  },
  "matmul: tanh(x·W)·xᵀ, x [2, 3]": {
    fn: (x, w) => x.matmul(w).tanh().matmul(x.transpose()),
    shape: [2, 3],
    rest: () => [tensor([[0.5, -0.3, 0.8], [0.2, 0.9, -0.4], [-0.7, 0.1, 0.6]])],
  },
  "gather: sin(x.take([3, 0, 3, 1], 0)), x [4, 2]": {
    fn: (x, ids) => x.take(ids, 0).sin().mul(1.5),
    shape: [4, 2],
    rest: () => [tensor([3, 0, 3, 1], { dtype: "int32" })],
  },
  "customVjp: softplus(x[3]·w[3]) with a hand-written rule σ(z)·g": {
    fn: (x, w) => softplusRule(x.mul(w)).mul(w),
    shape: [3],
    rest: () => [tensor([0.8, -1.1, 0.6])],
  },
  "checkpoint: two layers tanh(x·W), each checkpointed, x [2, 3]": {
    fn: (x, w) => tanhLayer(tanhLayer(x, w), w),
    shape: [2, 3],
    rest: () => [tensor([[0.5, -0.3, 0.8], [0.2, 0.9, -0.4], [-0.7, 0.1, 0.6]])],
  },
  "conv: tanh(conv2d(x [1, 1, 4, 4], w [2, 1, 3, 3], padding 1))": {
    fn: (x, w) => conv2d(x, w, { padding: 1 }).tanh(),
    shape: [1, 1, 4, 4],
    rest: () => [pattern([2, 1, 3, 3], 7).mul(0.5)],
  },
};

/** Every sequence of `depth` transforms (outermost first), distinct ones only if asked. */
function sequences(depth: number, distinct: boolean): Transform[][] {
  if (depth === 0) return [[]];
  return sequences(depth - 1, distinct).flatMap((tail) =>
    TRANSFORMS.filter((t) => !distinct || !tail.includes(t)).map((t) => [t, ...tail])
  );
}

/** Singles (the base of the induction), every ordered pair, every triple of distinct transforms. */
const COMPOSITIONS: Transform[][] = [
  ...sequences(1, false),
  ...sequences(2, false),
  ...sequences(3, true),
];

const nameOf = (ts: readonly Transform[]) => ts.map((t) => t.name).join("∘");

/** `ts` applied to `fn`, outermost first. */
function compose(ts: readonly Transform[], fn: Fn): Fn {
  return ts.reduceRight((f, t) => t.wrap(f), fn);
}

/** The composition's result and its outermost transform's reference on the rest. */
function evaluate(ts: readonly Transform[], f: TestFunction, seed: number) {
  const shape = ts.reduceRight((s, t) => t.inShape(s), f.shape);
  const x = pattern(shape, seed);
  const rest = f.rest();
  const [outer, ...inner] = ts;
  const actual = tidy(() => compose(ts, f.fn)(x, ...rest));
  const expected = tidy(() => outer.reference(compose(inner, f.fn), x, rest));
  for (const t of [x, ...rest]) t.dispose();
  return { actual, expected };
}

/**
 * Compares the composition with the reference on one function; returns
 * what went wrong, or null. Also checks that the comparison can fail: the
 * result with its largest element off by 1% + 0.01 must be rejected.
 */
async function check(ts: readonly Transform[], name: string, f: TestFunction, seed: number) {
  const label = `${nameOf(ts)} of ${name}`;
  const { actual, expected } = evaluate(ts, f, seed);
  try {
    assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
    const [got, want] = [flat(await actual.data()), flat(await expected.data())];
    const tolerance = ts[0].tolerance;
    assertClose(got, want, { ...tolerance, label });
    const worst = want.reduce((k, v, i) => (Math.abs(v) > Math.abs(want[k]) ? i : k), 0);
    const wrong = [...got];
    wrong[worst] += 0.01 * (1 + Math.abs(want[worst]));
    assert.throws(() => assertClose(wrong, want, tolerance), `${label}: a wrong result passes`);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    actual.dispose();
    expected.dispose();
  }
}

// One test per composition (a test costs ~0.1 s of overhead here), over every
// function; a failure lists each function that failed.
for (const ts of COMPOSITIONS) {
  const [outer, ...inner] = ts;
  const against = `${outer.name}'s reference on ${inner.length ? nameOf(inner) : "f"}`;
  testBoth(`composition ${nameOf(ts)} equals ${against}, for every function`, async () => {
    const failures: string[] = [];
    for (const [k, [name, f]] of Object.entries(FUNCTIONS).entries()) {
      const failure = await check(ts, name, f, k);
      if (failure) failures.push(failure);
    }
    if (failures.length > 0) {
      throw new Error(
        `${failures.length} of ${Object.keys(FUNCTIONS).length} functions failed:\n\n` +
          failures.join("\n\n"),
      );
    }
  });
}
