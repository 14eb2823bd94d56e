/**
 * Ops composed from primitives (no gradient rule of their own): values
 * against plain TypeScript, gradient checks on both backends, kinks included.
 */

import assert from "node:assert/strict";
import { checkGrads, grad, randomNormal, randomUniform, type Tensor, tensor } from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type Case = {
  name: string;
  fn: (...xs: Tensor[]) => Tensor;
  inputs: () => Tensor[];
  expect?: (...xs: number[][]) => number[];
};
const n = (shape: number[], seed: number) => randomNormal(shape, { seed });
const map1 = (f: (a: number) => number) => (a: number[]) => a.map(f);
const gelu = (x: number) =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

const CASES: Case[] = [
  {
    name: "minimum",
    fn: (a, b) => a.minimum(b),
    inputs: () => [n([3, 4], 1), n([3, 4], 2)],
    expect: (a, b) => a.map((v, i) => Math.min(v, b[i])),
  },
  {
    name: "minimum with ties and broadcasting",
    fn: (a, b) => a.minimum(b),
    inputs: () => [tensor([[1, 2], [0, -1]]), tensor([1, -1])],
  },
  {
    name: "clip (including values at the bounds)",
    fn: (x) => x.clip(-0.5, 0.5),
    inputs: () => [tensor([-2, -0.5, 0, 0.3, 0.5, 2])],
    expect: map1((v) => Math.min(Math.max(v, -0.5), 0.5)),
  },
  {
    name: "square",
    fn: (x) => x.square(),
    inputs: () => [n([3, 4], 3)],
    expect: map1((v) => v * v),
  },
  {
    name: "reciprocal",
    fn: (x) => x.reciprocal(),
    inputs: () => [randomUniform([3, 4], { seed: 4, low: 0.5, high: 2 })],
    expect: map1((v) => 1 / v),
  },
  {
    name: "softplus",
    fn: (x) => x.softplus(),
    inputs: () => [tensor([-30, -2, 0, 0.5, 3, 30])],
    expect: map1((v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)))),
  },
  {
    name: "leakyRelu (including 0)",
    fn: (x) => x.leakyRelu(0.1),
    inputs: () => [tensor([-2, -0.5, 0, 0.5, 2])],
    expect: map1((v) => (v >= 0 ? v : 0.1 * v)),
  },
  { name: "gelu", fn: (x) => x.gelu(), inputs: () => [n([3, 4], 5)], expect: map1(gelu) },
  { name: "min over an axis", fn: (x) => x.min(1), inputs: () => [n([3, 4], 6)] },
  {
    name: "min with two-way ties",
    fn: (x) => x.min(0),
    inputs: () => [tensor([[1, 0, 3], [1, 2, 3]])],
  },
  { name: "var", fn: (x) => x.var(), inputs: () => [n([3, 4], 7)] },
  {
    name: "var axis 1 ddof 1 keepdims",
    fn: (x) => x.var(1, { ddof: 1, keepdims: true }),
    inputs: () => [n([3, 4], 8)],
  },
  { name: "std axis 0", fn: (x) => x.std(0), inputs: () => [n([5, 3], 9)] },
  { name: "logsumexp", fn: (x) => x.logsumexp(-1), inputs: () => [n([3, 4], 10)] },
  {
    name: "logsumexp keepdims all",
    fn: (x) => x.logsumexp(undefined, { keepdims: true }),
    inputs: () => [n([2, 3], 11)],
  },
  {
    name: "squeeze, expandDims and flatten",
    fn: (x) => x.expandDims(0).squeeze(0).flatten().mul(x.flatten(0, 1)),
    inputs: () => [n([2, 3], 12)],
  },
];

for (const c of CASES) {
  testBoth(`gradient check: ${c.name}`, async () => {
    const xs = c.inputs();
    await checkGrads(c.fn, xs);
    if (c.expect) {
      const host = await Promise.all(xs.map(async (x) => Array.from(await x.data())));
      const y = c.fn(...xs);
      assertClose(await y.data(), c.expect(...host), { rtol: 1e-5, atol: 1e-6, label: c.name });
      y.dispose();
    }
    for (const x of xs) x.dispose();
  });
}

testBoth("reductions and shapes: reference values", async () => {
  const x = tensor([[1, 2, 3], [4, 6, 8]]);
  assertClose(await x.min().item(), 1);
  assertClose(await x.min(1, { keepdims: true }).array(), [[1], [4]]);
  assertClose(await x.var(1).array(), [2 / 3, 8 / 3], { rtol: 1e-6 });
  assertClose(await x.var(1, { ddof: 1 }).array(), [1, 4], { rtol: 1e-6 });
  assertClose(await x.std(0).array(), [1.5, 2, 2.5], { rtol: 1e-6 });
  assertClose(await x.logsumexp(1).array(), [
    Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)),
    Math.log(Math.exp(4) + Math.exp(6) + Math.exp(8)),
  ], { rtol: 1e-6 });
  assertClose(await tensor([1e4, 1e4]).logsumexp().item(), 1e4 + Math.LN2, { rtol: 1e-7 });
  assertClose(await tensor([-1e4, 0]).softplus().array(), [0, Math.LN2]);
  assertClose(await tensor([1e4]).softplus().array(), [1e4]);
  assert.deepEqual(tensor([[1], [2]]).squeeze().shape, [2]);
  assert.deepEqual(tensor([1, 2]).expandDims(-1).shape, [2, 1]);
  assert.deepEqual(tensor([[[1, 2]], [[3, 4]]]).flatten(1).shape, [2, 2]);
  assert.deepEqual(tensor(5).flatten().shape, [1]);
  assert.throws(
    () => tensor([1, 2]).squeeze(0),
    (e: unknown) => e instanceof RangeError && /squeeze/.test(e.message),
  );
  assert.throws(() => tensor([1]).leakyRelu(2), RangeError);
});

testBoth("format() prints like NumPy and elides large tensors", async () => {
  assert.equal(
    await tensor([[1, 2.5], [-3, 4]]).format(),
    "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]], shape=[2,2], dtype=float32)",
  );
  assert.equal(await tensor(2).format({ precision: 1 }), "tensor(2.0, shape=[], dtype=float32)");
  const big = await randomUniform([50, 60], { seed: 1 }).format();
  assert.match(big, /\.\.\./);
  assert.equal(big.split("\n").length, 7, big); // 3 rows, "...", 3 rows
  assert.match(await tensor([NaN, Infinity, 1e-9]).format(), /nan.*inf.*e-9/);
});

testBoth("argmax/argmin (first index on ties), cumsum, floorDiv/mod, logical ops", async () => {
  const x = tensor([[1, 5, 5, 2], [7, 0, 7, -1]]);
  assert.deepEqual(await x.argmax().array(), [1, 0]);
  assert.deepEqual(await x.argmin(-1).array(), [0, 3]);
  assert.deepEqual(await x.argmax(0, { keepdims: true }).array(), [[1, 0, 1, 0]]);
  assert.deepEqual(await tensor([1, 2, 3, 4]).cumsum().array(), [1, 3, 6, 10]);
  assert.deepEqual(await x.cumsum(0).array(), [[1, 5, 5, 2], [8, 5, 12, 1]]);
  assert.deepEqual(await tensor([7, -7, 7, -7]).floorDiv(tensor([2, 2, -2, -2])).array(), [
    3,
    -4,
    -4,
    3,
  ]);
  assert.deepEqual(await tensor([7, -7, 7, -7]).mod(tensor([3, 3, -3, -3])).array(), [
    1,
    2,
    -2,
    -1,
  ]);
  assertClose(await tensor([5.5, -5.5]).mod(2).array(), [1.5, 0.5]);
  const [p, q] = [tensor([1, 0, 2, 0]), tensor([3, 3, 0, 0])];
  assert.deepEqual(await p.logicalAnd(q).array(), [1, 0, 0, 0]);
  assert.deepEqual(await p.logicalOr(q).array(), [1, 1, 1, 0]);
  assert.deepEqual(await p.logicalNot().array(), [0, 1, 0, 1]);
});

testBoth("gradient checks: cumsum, mod (in both operands), argmax has none", async () => {
  const x = randomNormal([3, 4], { seed: 20 });
  await checkGrads((t: Tensor) => t.cumsum(1), [x]);
  await checkGrads((t: Tensor) => t.cumsum(0).square(), [x]);
  const a = tensor([2.3, -1.7, 4.1]);
  const b = tensor([1.1, 0.9, -1.3]);
  await checkGrads((s: Tensor, t: Tensor) => s.mod(t), [a, b]);
  const g = grad((t: Tensor) => t.argmax().sum().add(t.sum()))(x);
  assertClose(await g.array(), new Array(12).fill(1));
  for (const t of [x, a, b, g]) t.dispose();
});

testBoth(
  "cumprod: values (zeros and ints exact) and gradients by central differences",
  async () => {
    assertClose(await tensor([1, 2, 3, 4]).cumprod().array(), [1, 2, 6, 24]);
    assertClose(await tensor([[2, 0, 5], [1, -1, 3]]).cumprod(1).array(), [[2, 0, 0], [1, -1, -3]]);
    assertClose(await tensor([[2, 0, 5], [1, -1, 3]]).cumprod(0).array(), [[2, 0, 5], [2, 0, 15]]);
    const big = tensor([46341, 46341, 2], { dtype: "int32" }); // 46341² wraps past 2³¹
    assert.deepEqual(Array.from(await big.cumprod().data()), [46341, -2147479015, 9266]);
    assert.equal(tensor([true, true]).cumprod().dtype, "int32");
    await checkGrads((x: Tensor) => x.cumprod(1), [tensor([[0.5, -1.2, 2], [0, 1.5, -0.7]])]);
  },
);

testBoth("prod's gradient is differentiable again, zeros included", async () => {
  const hessianRow = (t: Tensor) => grad((u: Tensor) => u.prod())(t);
  for (const x of [[0.5, -1.2, 2], [0, 1.5, -0.7], [0, 0, 1.3]]) {
    await checkGrads(hessianRow, [tensor(x)]);
  }
  // Over two of three axes, with a zero in one group.
  const x = tensor([[[1.5, 0], [2, -1]], [[0.5, 1.2], [-0.8, 2]]]);
  await checkGrads((t: Tensor) => t.prod([0, 2]), [x]);
  await checkGrads((t: Tensor) => grad((u: Tensor) => u.prod([0, 2]).sum())(t), [x]);
});
