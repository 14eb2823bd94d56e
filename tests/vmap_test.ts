/**
 * `vmap`, checked against the reference computed without it: a loop over
 * the examples, stacked. Every primitive's batching rule is checked through
 * a table keyed by `Prim` (a primitive without a case does not compile),
 * with each operand batched alone and all together; then pytrees, axes,
 * composition with `grad` and `jvp`, nesting, errors, memory, and the
 * kernel count under `jit` (the same as for one example).
 * @module
 */

import assert from "node:assert/strict";
import {
  conv2d,
  type DType,
  grad,
  jit,
  jvp,
  memoryStats,
  type Prim,
  type PrimParams,
  PRIMS,
  randomNormal,
  stack,
  stopGradient,
  type Tensor,
  tensor,
  valueAndGrad,
  vmap,
} from "../mod.ts";
import { apply } from "../src/core/interpreter.ts";
import { assertClose, testBoth } from "./_helpers.ts";

const BATCH = 3;

interface Operand {
  shape: number[];
  dtype?: DType;
  /** Keep values positive (logarithms, roots, divisors). */
  positive?: boolean;
  /** int32 indices in [-n, n). */
  indices?: number;
}

interface BatchCase<P extends Prim> {
  operands: Operand[];
  params: PrimParams<P>;
}

const unary = <P extends Prim>(positive = false): BatchCase<P> => ({
  operands: [{ shape: [2, 3], positive }],
  params: {} as PrimParams<P>,
});
const binary = <P extends Prim>(positive = false): BatchCase<P> => ({
  operands: [{ shape: [2, 3] }, { shape: [2, 3], positive }],
  params: {} as PrimParams<P>,
});

const CASES: { [P in Prim]: BatchCase<P> } = {
  neg: unary(),
  exp: unary(),
  log: unary(true),
  sqrt: unary(true),
  tanh: unary(),
  sigmoid: unary(),
  abs: unary(),
  sign: unary(),
  sin: unary(),
  cos: unary(),
  floor: unary(),
  ceil: unary(),
  round: unary(),
  log1p: unary(true),
  expm1: unary(),
  convert: { operands: [{ shape: [2, 3] }], params: { dtype: "int32" } },
  add: binary(),
  sub: binary(),
  mul: binary(),
  div: binary(true),
  pow: { operands: [{ shape: [2, 3], positive: true }, { shape: [2, 3] }], params: {} },
  maximum: binary(),
  minimum: binary(),
  floordiv: binary(true),
  mod: binary(true),
  lt: binary(),
  le: binary(),
  eq: binary(),
  ne: binary(),
  where: {
    operands: [{ shape: [2, 3], dtype: "bool" }, { shape: [2, 3] }, { shape: [2, 3] }],
    params: {},
  },
  sum: { operands: [{ shape: [2, 3, 2] }], params: { axes: [0, 2] } },
  prod: { operands: [{ shape: [2, 3] }], params: { axes: [1] } },
  max: { operands: [{ shape: [2, 3] }], params: { axes: [0] } },
  min: { operands: [{ shape: [2, 3] }], params: { axes: [0, 1] } },
  matmul: { operands: [{ shape: [2, 3] }, { shape: [3, 4] }], params: {} },
  reshape: { operands: [{ shape: [2, 3] }], params: { shape: [3, 1, 2] } },
  transpose: { operands: [{ shape: [2, 3, 4] }], params: { perm: [2, 0, 1] } },
  broadcast: { operands: [{ shape: [2, 1] }], params: { shape: [4, 2, 3] } },
  slice: {
    operands: [{ shape: [4, 5] }],
    params: { shape: [2, 2], starts: [1, 0], steps: [2, 3] },
  },
  flip: { operands: [{ shape: [2, 3] }], params: { axes: [1] } },
  pad: {
    operands: [{ shape: [2, 3] }],
    params: { shape: [4, 7], starts: [1, 0], steps: [1, 3], fill: 2.5 },
  },
  gather: {
    operands: [{ shape: [2, 4, 3] }, { shape: [2, 2], dtype: "int32", indices: 4 }],
    params: { axis: 1 },
  },
  stopGradient: unary(),
};

/** Deterministic values of `[...lead, ...shape]` for an operand. */
function values(op: Operand, lead: number[], seed: number): Tensor {
  const shape = [...lead, ...op.shape];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Array.from({ length: n }, (_, i) => {
    const v = Math.sin(seed * 7.3 + i * 1.7) * 2;
    if (op.dtype === "bool") return v > 0 ? 1 : 0;
    if (op.indices !== undefined) {
      const k = Math.floor(Math.abs(v) * 10) % (2 * op.indices);
      return k - op.indices; // negative ones count from the end
    }
    return op.positive ? Math.abs(v) + 0.5 : v;
  });
  return tensor(data, { dtype: op.dtype ?? "float32" }).reshape(shape);
}

for (const prim of PRIMS) {
  testBoth(`vmap batching rule: ${prim} equals a loop over examples`, async () => {
    const c = CASES[prim] as BatchCase<Prim>;
    const n = c.operands.length;
    // Each operand batched alone, then all of them.
    const patterns = n === 1 ? [[true]] : [
      ...c.operands.map((_, i) => c.operands.map((_, j) => j === i)),
      c.operands.map(() => true),
    ];
    for (const pattern of patterns) {
      const inputs = c.operands.map((op, i) => values(op, pattern[i] ? [BATCH] : [], i + 1));
      const run = (...xs: Tensor[]) => apply(prim, xs, c.params as never);
      const batched = vmap(run, { inAxes: pattern.map((b) => (b ? 0 : null)) })(...inputs);
      const examples = Array.from(
        { length: BATCH },
        (_, b) => run(...inputs.map((x, i) => (pattern[i] ? x.get(b) : x))),
      );
      const expected = stack(examples);
      const label = `${prim} with operands ${pattern.map((b) => (b ? "batched" : "shared"))}`;
      assert.deepEqual(batched.shape, expected.shape, label);
      assert.equal(batched.dtype, expected.dtype, label);
      assertClose(await batched.data(), await expected.data(), { atol: 1e-6, rtol: 1e-6, label });
      for (const t of [...inputs, batched, ...examples, expected]) t.dispose();
    }
  });
}

testBoth("vmap sees per-example shapes, on pytrees, with inAxes and outAxes", async () => {
  const seen: number[][] = [];
  const f = (p: { w: Tensor; b: Tensor }, x: Tensor) => {
    seen.push([...x.shape], [...p.w.shape]);
    return [x.matmul(p.w).add(p.b), x.square().sum()];
  };
  const p = { w: tensor([[1, 2], [3, 4], [5, 6]]), b: tensor([0.5, -0.5]) };
  // Two examples as the columns of a [3 features, 2 examples] tensor.
  const xs = tensor([[1, 0], [0, 1], [1, 1]]);
  const [y, norm] = vmap(f, { inAxes: [null, 1], outAxes: [1, 0] })(p, xs);
  assert.deepEqual(seen, [[3], [3, 2]], "the function sees one example");
  // Example 0 is [1, 0, 1]: [6.5, 7.5]; example 1 is [0, 1, 1]: [8.5, 9.5]; batch second.
  assert.deepEqual(await y.array(), [[6.5, 8.5], [7.5, 9.5]]);
  assert.deepEqual(await norm.array(), [2, 2]);
  for (const t of [p.w, p.b, xs, y, norm]) t.dispose();
});

testBoth("vmap(grad(f)) gives per-example gradients equal to a loop", async () => {
  const loss = (w: Tensor, x: Tensor, label: Tensor) =>
    x.reshape([1, 3]).matmul(w).tanh().sub(label).square().sum();
  const w = tensor([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.25]]);
  const xs = tensor([[1, 2, 3], [0.5, -1, 0], [2, 0, -2], [0, 0, 1]]);
  const labels = tensor([[1, 0], [0, 1], [1, 1], [0, 0]]);
  const perExample = vmap(grad(loss), { inAxes: [null, 0, 0] })(w, xs, labels);
  assert.deepEqual(perExample.shape, [4, 3, 2]);
  for (let b = 0; b < 4; b++) {
    const [x, l] = [xs.get(b), labels.get(b)];
    const g = grad(loss)(w, x, l);
    const got = perExample.get(b);
    assertClose(await got.data(), await g.data(), { atol: 1e-6, label: `example ${b}` });
    for (const t of [x, l, g, got]) t.dispose();
  }
  for (const t of [w, xs, labels, perExample]) t.dispose();
});

testBoth("grad of a vmapped function equals the gradient of the loop", async () => {
  const f = (x: Tensor, w: Tensor) => x.mul(w).sin().sum();
  const xs = tensor([[0.1, 0.2], [0.3, -0.4], [1.5, 0.5]]);
  const w = tensor([0.7, -1.3]);
  const batched = (w: Tensor) => vmap(f, { inAxes: [0, null] })(xs, w).sum();
  const looped = (w: Tensor) => {
    const parts = [0, 1, 2].map((b) => f(xs.get(b), w));
    return stack(parts).sum();
  };
  const [v1, g1] = valueAndGrad(batched)(w);
  const [v2, g2] = valueAndGrad(looped)(w);
  assertClose(await v1.data(), await v2.data(), { atol: 1e-6, label: "value" });
  assertClose(await g1.data(), await g2.data(), { atol: 1e-6, label: "gradient" });
  for (const t of [xs, w, v1, g1, v2, g2]) t.dispose();
});

testBoth("jvp of vmap and vmap of jvp equal the loop", async () => {
  const f = (x: Tensor) => x.exp().mul(x).sum();
  const xs = tensor([[0.1, 0.2], [0.3, -0.4]]);
  const vs = tensor([[1, 0], [0.5, 2]]);
  const [, outer] = jvp((x: Tensor) => vmap(f)(x), [xs], [vs]);
  const inner = vmap((x: Tensor, v: Tensor) => jvp(f, [x], [v])[1])(xs, vs);
  const loop = [0, 1].map((b) => jvp(f, [xs.get(b)], [vs.get(b)])[1]);
  const expected = stack(loop);
  assertClose(await (outer as Tensor).data(), await expected.data(), {
    atol: 1e-6,
    label: "jvp(vmap)",
  });
  assertClose(await inner.data(), await expected.data(), { atol: 1e-6, label: "vmap(jvp)" });
});

testBoth("nested vmap equals a double loop", async () => {
  const f = (a: Tensor, b: Tensor) => a.mul(b).sum().exp();
  const xs = tensor([[[1, 2], [3, 4]], [[0.5, 0.5], [-1, 0]]]).mul(0.1);
  const ys = tensor([[1, -1], [2, 0.5]]).mul(0.1);
  // Outer over xs' axis 0, inner over xs' axis 1 and ys' axis 0 (ys shared by the outer).
  const out = vmap((x: Tensor) => vmap(f)(x, ys), { inAxes: 0 })(xs);
  const expected: number[][] = [];
  for (let i = 0; i < 2; i++) {
    expected.push([]);
    for (let j = 0; j < 2; j++) {
      const [x, y] = [xs.get(i, j), ys.get(j)];
      expected[i].push(await f(x, y).item());
    }
  }
  assert.deepEqual(out.shape, [2, 2]);
  assertClose(await out.array(), expected, { atol: 1e-6, label: "nested" });
});

testBoth("vmap broadcasts a result that does not depend on the batch", async () => {
  const c = tensor([1, 2]);
  const out = vmap((_x: Tensor) => c.mul(2), { inAxes: 0 })(tensor([[0], [0], [0]]));
  assert.deepEqual(await out.array(), [[2, 4], [2, 4], [2, 4]]);
  const same = vmap((x: Tensor) => x)(c);
  assert.notEqual(same, c, "a result is never the argument itself");
  same.dispose();
  assert.ok(!c.disposed);
  c.dispose();
});

testBoth("vmap errors name the arguments and their sizes", () => {
  const f = (a: Tensor, b: Tensor) => a.add(b);
  const [a, b] = [tensor([[1, 2], [3, 4], [5, 6]]), tensor([[1, 2], [3, 4]])];
  assert.throws(
    () => vmap(f)(a, b),
    /^TypeError: vmap: the batch axes disagree in size: argument 0 has 3 \(axis 0 of \[3,2\]\); argument 1 has 2 \(axis 0 of \[2,2\]\)$/,
  );
  assert.throws(
    () => vmap(f, { inAxes: [2, 0] })(a, b),
    /vmap: inAxes 2 is out of range for argument 0 of shape \[3,2\]/,
  );
  assert.throws(() => vmap(f, { inAxes: null })(a, b), /vmap: no argument is batched.*axisSize/);
  assert.throws(
    () => vmap(f, { inAxes: [0] })(a, b),
    /vmap: inAxes must be .* one entry per argument \(2\)/,
  );
  assert.throws(() => vmap(f, { axisSize: 4 })(a, a), /axisSize is 4; argument 0 has 3/);
  assert.throws(
    () => vmap(f, { outAxes: 5 })(a, a),
    /vmap: outAxes 5 is out of range for result 0 of batched shape \[3,2\]/,
  );
  // A per-example shape error is the eager one, naming the user's op.
  assert.throws(() => vmap((x: Tensor) => x.matmul(x.reshape([1, 2])))(a), /^TypeError: matmul: /);
  a.dispose();
  b.dispose();
});

testBoth("vmap leaks nothing, also when it fails", () => {
  const xs = tensor([[1, 2], [3, 4]]);
  const live = memoryStats().liveTensors;
  const out = vmap((x: Tensor) => x.exp().sum())(xs);
  assert.equal(memoryStats().liveTensors, live + 1, "only the result is left");
  out.dispose();
  assert.throws(() => vmap((x: Tensor) => x.reshape([3]))(xs));
  assert.equal(memoryStats().liveTensors, live, "a failed vmap leaked");
  xs.dispose();
});

testBoth("stopGradient is kept under vmap (and in traces): gradients equal the loop", async () => {
  const f = (x: Tensor) => x.mul(stopGradient(x)).sum();
  const xs = tensor([[1, 2], [3, 4]]);
  // d/dx of x·sg(x) is sg(x) = x, not 2x.
  const g = grad((x: Tensor) => vmap(f)(x).sum())(xs);
  assert.deepEqual(await g.array(), [[1, 2], [3, 4]]);
  const [, t] = jvp((x: Tensor) => vmap(f)(x), [xs], [tensor([[1, 1], [1, 1]])]);
  assert.deepEqual(await (t as Tensor).array(), [3, 7]);
  // A captured real tensor behind stopGradient.
  const w = tensor([2, -1]);
  assert.deepEqual(await vmap((x: Tensor) => x.mul(stopGradient(w)))(xs).array(), [[2, -2], [
    6,
    -4,
  ]]);
});

testBoth(
  "vmap passes plain objects through (even with a shape key) and returns distinct results",
  async () => {
    const a = tensor([[1, 2, 3, 4], [5, 6, 7, 8]]);
    const out = vmap((x: Tensor, cfg: { shape: number[] }) => x.reshape(cfg.shape), {
      inAxes: [0, null],
    })(a, { shape: [2, 2] });
    assert.deepEqual(await out.array(), [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
    const [y1, y2] = vmap((x: Tensor) => {
      const y = x.exp();
      return [y, y];
    })(a);
    assert.notEqual(y1, y2, "a result returned twice is two tensors");
    y1.dispose();
    assert.deepEqual(y2.shape, [2, 4]);
    await y2.data(); // still alive
  },
);

testBoth(
  "under jit a vmapped function compiles to as many kernels as the unbatched one, and equals a loop",
  async (backend) => {
    const size = 8;
    const w = randomNormal([16, 8], { seed: 1 });
    const bias = randomNormal([8], { seed: 2 });
    const filters = randomNormal([2, 1, 3, 3], { seed: 5 });
    const cases: [string, (x: Tensor) => Tensor, number[]][] = [
      ["elementwise with broadcasting", (x) => x.mul(2).add(bias).tanh(), [8]],
      ["a reduction", (x) => x.exp().sum(-1).log(), [4, 8]],
      ["matmul with an epilogue", (x) => x.matmul(w).add(bias).relu().sum(), [3, 16]],
      [
        "a gradient",
        (x) => grad((v: Tensor) => x.matmul(v).add(bias).tanh().square().sum())(w),
        [3, 16],
      ],
      ["a gather", (x) => x.take([3, 0, 3, 1], 0).sin(), [4, 2]],
      ["a conv", (x) => conv2d(x, filters, { padding: 1 }).tanh(), [1, 1, 4, 4]],
    ];
    for (const [what, f, shape] of cases) {
      const xs = randomNormal([size, ...shape], { seed: 4 });
      const one = jit(f);
      const loop = stack(Array.from({ length: size }, (_, i) => one(xs.get(i))));
      const batched = jit(vmap(f));
      assertClose(await batched(xs).data(), await loop.data(), { atol: 1e-5, label: what });
      assert.equal(batched.stats.compiles, 1, `${what}: one compile`);
      if (backend !== "cpu") {
        // The CPU backend replays traces (no kernels); the others compile.
        assert.ok(one.stats.kernels > 0, `${what}: the unbatched function was compiled`);
        assert.equal(
          batched.stats.kernels,
          one.stats.kernels,
          `${what}: kernels of vmap (${size} examples) vs one example`,
        );
      }
    }
  },
);
