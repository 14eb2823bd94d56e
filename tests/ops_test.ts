/**
 * Every differentiable op: a gradient check against central differences on
 * both backends (kinks and broadcasting included), and forward results
 * compared between the WebGPU and CPU backends and with plain TypeScript.
 */

import assert from "node:assert/strict";
import {
  availableBackends,
  checkGrads,
  grad,
  mse,
  randomNormal,
  randomUniform,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  where,
} from "../mod.ts";
import * as ops from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type Case = {
  name: string;
  fn: (...xs: Tensor[]) => Tensor;
  /** Inputs, made on the current backend. */
  inputs: () => Tensor[];
  /** Plain-TypeScript reference of the forward result, where simple. */
  expect?: (...xs: number[][]) => number[];
};

const u = (shape: number[], seed: number, low = -1, high = 1) => () =>
  randomUniform(shape, { seed, low, high });
const n = (shape: number[], seed: number) => () => randomNormal(shape, { seed });
const map1 = (f: (a: number) => number) => (a: number[]) => a.map(f);

const unary: Case[] = [
  {
    name: "neg",
    fn: (x) => x.neg(),
    inputs: () => [n([3, 4], 1)()],
    expect: map1((a) => -a),
  },
  {
    name: "exp",
    fn: (x) => x.exp(),
    inputs: () => [n([3, 4], 2)()],
    expect: map1(Math.exp),
  },
  {
    name: "log",
    fn: (x) => x.log(),
    inputs: () => [u([3, 4], 3, 0.5, 3)()],
    expect: map1(Math.log),
  },
  {
    name: "sqrt",
    fn: (x) => x.sqrt(),
    inputs: () => [u([3, 4], 4, 0.5, 3)()],
    expect: map1(Math.sqrt),
  },
  {
    name: "tanh",
    fn: (x) => x.tanh(),
    inputs: () => [n([3, 4], 5)()],
    expect: map1(Math.tanh),
  },
  {
    name: "sigmoid",
    fn: (x) => x.sigmoid(),
    inputs: () => [n([3, 4], 6)()],
    expect: map1((a) => 1 / (1 + Math.exp(-a))),
  },
  {
    name: "abs",
    fn: (x) => x.abs(),
    inputs: () => [n([3, 4], 7)()],
    expect: map1(Math.abs),
  },
  {
    name: "abs at 0 (gradient 0)",
    fn: (x) => x.abs(),
    inputs: () => [tensor([0, 1, -1, 0])],
    expect: map1(Math.abs),
  },
  {
    name: "relu",
    fn: (x) => x.relu(),
    inputs: () => [n([3, 4], 8)()],
    expect: map1((a) => Math.max(a, 0)),
  },
  {
    // relu'(0) is 0 (JAX, PyTorch): checkGrads skips the kinks at 0, where
    // central differences measure 1/2; the value itself is tested in
    // defects_ops_test.ts.
    name: "relu at 0 (gradient 0)",
    fn: (x) => x.relu(),
    inputs: () => [tensor([0, 0.5, -0.5, 0])],
    expect: map1((a) => Math.max(a, 0)),
  },
  { name: "sin", fn: (x) => x.sin(), inputs: () => [n([3, 4], 31)()], expect: map1(Math.sin) },
  { name: "cos", fn: (x) => x.cos(), inputs: () => [n([3, 4], 32)()], expect: map1(Math.cos) },
  {
    name: "log1p (small and large inputs)",
    fn: (x) => x.log1p(),
    inputs: () => [tensor([1e-7, -1e-5, 0.5, 3, -0.5])],
    expect: map1(Math.log1p),
  },
  {
    name: "expm1 (small and large inputs)",
    fn: (x) => x.expm1(),
    inputs: () => [tensor([1e-7, -1e-5, 0.5, -2, 3])],
    expect: map1(Math.expm1),
  },
  {
    name: "floor, ceil, round (gradient 0 away from the jumps)",
    fn: (x) => x.floor().add(x.ceil()).add(x.round()).add(x.sign()),
    inputs: () => [tensor([-1.7, -0.2, 0.3, 1.4, 2.6])],
    expect: map1((v) => Math.floor(v) + Math.ceil(v) + Math.round(v) + Math.sign(v)),
  },
];

const binary: Case[] = [
  {
    name: "add",
    fn: (a, b) => a.add(b),
    inputs: () => [n([3, 4], 10)(), n([3, 4], 11)()],
  },
  {
    name: "add broadcast [3,4]+[4]",
    fn: (a, b) => a.add(b),
    inputs: () => [n([3, 4], 12)(), n([4], 13)()],
  },
  {
    name: "add broadcast [3,1]+[1,4]",
    fn: (a, b) => a.add(b),
    inputs: () => [n([3, 1], 14)(), n([1, 4], 15)()],
  },
  {
    name: "add scalar number",
    fn: (a) => a.add(2.5),
    inputs: () => [n([2, 3], 16)()],
  },
  {
    name: "sub broadcast",
    fn: (a, b) => a.sub(b),
    inputs: () => [n([2, 3, 4], 17)(), n([3, 1], 18)()],
  },
  {
    name: "mul broadcast",
    fn: (a, b) => a.mul(b),
    inputs: () => [n([3, 4], 19)(), n([1], 20)()],
  },
  {
    name: "div broadcast",
    fn: (a, b) => a.div(b),
    inputs: () => [n([3, 4], 21)(), u([4], 22, 0.5, 2)()],
  },
  {
    name: "pow tensor exponent",
    fn: (a, b) => a.pow(b),
    inputs: () => [u([3, 4], 23, 0.5, 2)(), u([3, 4], 24, -2, 2)()],
  },
  {
    name: "pow negative base, integer exponent",
    fn: (a) => a.pow(3),
    inputs: () => [n([3, 4], 25)()],
  },
  { name: "pow square", fn: (a) => a.pow(2), inputs: () => [n([3, 4], 26)()] },
  {
    name: "maximum",
    fn: (a, b) => a.maximum(b),
    inputs: () => [n([3, 4], 27)(), n([3, 4], 28)()],
  },
  {
    name: "maximum with ties (gradient split)",
    fn: (a, b) => a.maximum(b),
    inputs: () => [tensor([1, 2, 3, -1]), tensor([1, 0, 3, -1])],
  },
  {
    name: "maximum broadcast",
    fn: (a, b) => a.maximum(b),
    inputs: () => [n([3, 4], 29)(), n([4], 30)()],
  },
];

const reductions: Case[] = [
  { name: "sum all", fn: (x) => x.sum(), inputs: () => [n([3, 4], 40)()] },
  { name: "sum axis 1", fn: (x) => x.sum(1), inputs: () => [n([3, 4], 41)()] },
  {
    name: "sum axes [0,2] keepdims",
    fn: (x) => x.sum([0, 2], { keepdims: true }),
    inputs: () => [n([2, 3, 4], 42)()],
  },
  {
    name: "sum axis -1",
    fn: (x) => x.sum(-1),
    inputs: () => [n([2, 3, 4], 43)()],
  },
  { name: "max all", fn: (x) => x.max(), inputs: () => [n([3, 4], 44)()] },
  { name: "max axis 0", fn: (x) => x.max(0), inputs: () => [n([3, 4], 45)()] },
  {
    name: "max keepdims",
    fn: (x) => x.max(1, { keepdims: true }),
    inputs: () => [n([3, 4], 46)()],
  },
  {
    // With two tied maxima, the even split (1/2 each) is exactly what central
    // differences measure; see the three-way tie test below for k > 2.
    name: "max with two-way ties",
    fn: (x) => x.max(1),
    inputs: () => [tensor([[1, 3, 3], [2, 2, 0], [0, -1, 5]])],
  },
  { name: "mean all", fn: (x) => x.mean(), inputs: () => [n([3, 4], 47)()] },
  {
    name: "mean axis 0 keepdims",
    fn: (x) => x.mean(0, { keepdims: true }),
    inputs: () => [n([3, 4], 48)()],
  },
];

const linear: Case[] = [
  {
    name: "matmul 2-D",
    fn: (a, b) => a.matmul(b),
    inputs: () => [n([3, 5], 50)(), n([5, 2], 51)()],
  },
  {
    name: "matmul odd shapes",
    fn: (a, b) => a.matmul(b),
    inputs: () => [n([7, 3], 52)(), n([3, 9], 53)()],
  },
  {
    name: "matmul batched",
    fn: (a, b) => a.matmul(b),
    inputs: () => [n([2, 3, 4], 54)(), n([2, 4, 2], 55)()],
  },
  {
    name: "matmul batch broadcast",
    fn: (a, b) => a.matmul(b),
    inputs: () => [n([2, 1, 3, 4], 56)(), n([3, 4, 2], 57)()],
  },
  {
    name: "matmul vector @ matrix",
    fn: (a, b) => a.matmul(b),
    inputs: () => [n([4], 58)(), n([4, 3], 59)()],
  },
  {
    name: "matmul matrix @ vector",
    fn: (a, b) => a.matmul(b),
    inputs: () => [n([3, 4], 60)(), n([4], 61)()],
  },
  {
    name: "matmul transposed operand",
    fn: (a, b) => a.transpose().matmul(b),
    inputs: () => [n([4, 3], 62)(), n([4, 2], 63)()],
  },
  {
    name: "reshape",
    fn: (x) => x.reshape([4, -1]).mul(x.reshape([4, 3])),
    inputs: () => [n([3, 4], 64)()],
  },
  {
    name: "reshape of a transpose (copy)",
    fn: (x) => x.transpose().reshape([12]),
    inputs: () => [n([3, 4], 65)()],
  },
  {
    name: "transpose",
    fn: (x) => x.transpose([1, 2, 0]),
    inputs: () => [n([2, 3, 4], 66)()],
  },
  {
    name: "broadcastTo",
    fn: (x) => x.broadcastTo([2, 3, 4]),
    inputs: () => [n([3, 1], 67)()],
  },
  { name: "softmax", fn: (x) => x.softmax(), inputs: () => [n([3, 4], 68)()] },
  {
    name: "softmax axis 0",
    fn: (x) => x.softmax(0),
    inputs: () => [n([3, 4], 69)()],
  },
  {
    name: "logSoftmax",
    fn: (x) => x.logSoftmax(),
    inputs: () => [n([3, 4], 70)()],
  },
  {
    name: "mse",
    fn: (a, b) => mse(a, b),
    inputs: () => [n([4, 2], 71)(), n([4, 2], 72)()],
  },
  {
    name: "softmaxCrossEntropy",
    fn: (x) => softmaxCrossEntropy(x, [0, 3, 1]),
    inputs: () => [n([3, 4], 73)()],
  },
];

const ALL = [...unary, ...binary, ...reductions, ...linear];

for (const c of ALL) {
  testBoth(`gradient check: ${c.name}`, async () => {
    const xs = c.inputs();
    try {
      await checkGrads(c.fn, xs);
    } finally {
      for (const x of xs) x.dispose();
    }
  });
}

for (const c of ALL.filter((c) => c.expect)) {
  testBoth(`forward matches TypeScript: ${c.name}`, async () => {
    const xs = c.inputs();
    const y = c.fn(...xs);
    const data = await Promise.all(
      xs.map(async (x) => Array.from(await x.data())),
    );
    assertClose(await y.data(), c.expect!(...data), {
      atol: 1e-5,
      rtol: 1e-5,
      label: c.name,
    });
    for (const t of [...xs, y]) t.dispose();
  });
}

Deno.test({
  name: "forward results agree between WebGPU and CPU for every op",
  ignore: !availableBackends().includes("webgpu"),
  async fn() {
    for (const c of ALL) {
      const made = c.inputs();
      const host = await Promise.all(
        made.map(async (x) => ({ data: await x.data(), shape: x.shape })),
      );
      for (const x of made) x.dispose();
      const results = [];
      for (const backend of ["webgpu", "cpu"] as const) {
        const inputs = host.map((h) => tensor(h.data, { shape: h.shape, backend }));
        const y = c.fn(...inputs);
        assert.equal(y.backend, backend);
        results.push({ shape: y.shape, data: await y.data() });
        for (const t of [...inputs, y]) t.dispose();
      }
      assert.deepEqual(results[0].shape, results[1].shape, c.name);
      assertClose(results[0].data, results[1].data, {
        atol: 1e-5,
        rtol: 1e-4,
        label: c.name,
      });
    }
  },
});

testBoth("reference values: reductions, matmul, softmax", async () => {
  const x = tensor([[1, -2, 3], [4, 5, -6]]);
  assertClose(await x.sum().array(), 5);
  assertClose(await x.sum(0).array(), [5, 3, -3]);
  assertClose(await x.sum(1, { keepdims: true }).array(), [[2], [3]]);
  assertClose(await x.max(1).array(), [3, 5]);
  assertClose(await x.max().array(), 5);
  assertClose(await x.mean(0).array(), [2.5, 1.5, -1.5]);
  assertClose(await x.matmul(x.transpose()).array(), [[14, -24], [-24, 77]]);
  const s = await tensor([[0, Math.log(3)]]).softmax().array();
  assertClose(s, [[0.25, 0.75]]);
  assertClose(await tensor([1, 2, 3]).sub(tensor([[1], [2]])).array(), [[
    0,
    1,
    2,
  ], [-1, 0, 1]]);
  assertClose(await tensor([-2, 2]).pow(3).array(), [-8, 8]);
  assertClose(await tensor([-2]).pow(0.5).array(), [NaN]);
  assertClose(await tensor([1, -1, 0]).div(0).array(), [
    Infinity,
    -Infinity,
    NaN,
  ]);
});

testBoth(
  "max with a k-way tie splits the gradient evenly (documented)",
  async () => {
    // Central differences would give 1/2 to each of k > 2 tied elements (a
    // one-sided slope of 1 and 0), which does not sum to 1; littlegrad gives 1/k,
    // like JAX and PyTorch's amax.
    const g = grad((x: Tensor) => x.max(1).sum())(
      tensor([[2, 2, 2, 1], [0, 4, 1, 4]]),
    );
    assertClose(await g.array(), [[1 / 3, 1 / 3, 1 / 3, 0], [0, 0.5, 0, 0.5]]);
    const gm = grad((x: Tensor) => x.maximum(tensor([1, 5])).sum())(
      tensor([1, 2]),
    );
    assertClose(await gm.array(), [0.5, 0]);
  },
);

testBoth("round ties to even, like NumPy; log1p and expm1 keep tiny values", async () => {
  assertClose(await tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999]).round().array(), [
    0,
    2,
    2,
    0,
    -2,
    2,
  ]);
  assertClose(await tensor([1e-10, -1e-12]).log1p().array(), [1e-10, -1e-12], {
    rtol: 1e-6,
    atol: 0,
  });
  assertClose(await tensor([1e-10, -1e-12]).expm1().array(), [1e-10, -1e-12], {
    rtol: 1e-6,
    atol: 0,
  });
});

testBoth("large inputs: tanh, sigmoid, softmax stay finite", async () => {
  const x = tensor([-1e4, -50, 0, 50, 1e4]);
  assertClose(await x.tanh().array(), [-1, -1, 0, 1, 1]);
  assertClose(await x.sigmoid().array(), [0, 1.9287498e-22, 0.5, 1, 1], {
    atol: 1e-30,
  });
  assertClose(await tensor([[1e4, 0, -1e4]]).softmax().array(), [[1, 0, 0]]);
  assertClose(await tensor([[1e4, 1e4]]).logSoftmax().array(), [[
    -Math.LN2,
    -Math.LN2,
  ]]);
});

testBoth("reductions of long vectors (chunked on the GPU)", async () => {
  const N = 100_003;
  const host = new Float32Array(N).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const x = tensor(host);
  let sum = 0;
  let max = -Infinity;
  for (const v of host) {
    sum += v;
    max = Math.max(max, v);
  }
  assertClose(await x.sum().item(), sum, {
    atol: 1e-2,
    rtol: 1e-4,
    label: "sum",
  });
  assertClose(await x.max().item(), max, { label: "max" });
  const m = x.reshape([1, N]).broadcastTo([3, N]).sum(1);
  assertClose(await m.array(), [sum, sum, sum], {
    atol: 3e-2,
    rtol: 1e-4,
    label: "broadcast sum",
  });
  x.dispose();
  m.dispose();
});

testBoth("zero-size tensors", async () => {
  const e = tensor(new Float32Array(0), { shape: [0, 3] });
  assert.deepEqual(e.add(1).shape, [0, 3]);
  assertClose(await e.sum(0).array(), [0, 0, 0]);
  assert.deepEqual(await e.matmul(tensor([[1], [2], [3]])).array(), []);
});

testBoth("comparisons return 1/0, NaN compares as IEEE says", async () => {
  const a = tensor([1, 2, 3, NaN]);
  const b = tensor([2, 2, 2, NaN]);
  assert.deepEqual(await a.lt(b).array(), [1, 0, 0, 0]);
  assert.deepEqual(await a.le(b).array(), [1, 1, 0, 0]);
  assert.deepEqual(await a.gt(b).array(), [0, 0, 1, 0]);
  assert.deepEqual(await a.ge(b).array(), [0, 1, 1, 0]);
  assert.deepEqual(await a.eq(b).array(), [0, 1, 0, 0]);
  assert.deepEqual(await a.ne(b).array(), [1, 0, 1, 1]);
  assert.deepEqual(await a.gt(2).array(), [0, 0, 1, 0]);
});

testBoth("where selects with broadcasting; a NaN condition counts as true", async () => {
  const x = tensor([[-2, 3], [4, -5]]);
  assert.deepEqual(await where(x.gt(0), x, 0).array(), [[0, 3], [4, 0]]);
  assert.deepEqual(await where(tensor([1, 0]), tensor([[1], [2]]), -1).array(), [[1, -1], [2, -1]]);
  assert.deepEqual(await where(tensor([NaN, 0]), 1, 2).array(), [1, 2]);
  // The branch not taken does not leak NaN or Inf into the gradient.
  const g = grad((t: Tensor) => where(t.gt(0), t.log(), t).sum())(tensor([-1, 2]));
  assertClose(await g.array(), [1, 0.5]);
  // pow's gradient at 0^0, and logsumexp with infinities (both use where).
  assertClose(await grad((t: Tensor) => t.pow(0).sum())(tensor([0, 1])).array(), [0, 0]);
  assert.equal(await tensor([-Infinity, -Infinity]).logsumexp().item(), -Infinity);
  assert.equal(await tensor([Infinity, 1]).logsumexp().item(), Infinity);
});

testBoth("gradient check: where (both branches, broadcast condition)", async () => {
  const [a, b] = [randomNormal([3, 4], { seed: 80 }), randomNormal([4], { seed: 81 })];
  const cond = tensor([1, 0, 1, 0]);
  await checkGrads((x: Tensor, y: Tensor) => where(cond, x, y), [a, b]);
  for (const t of [a, b, cond]) t.dispose();
});

testBoth("free functions match the methods, numbers on either side", async () => {
  const x = tensor([-1.5, 0, 2.5]);
  const same = async (a: Tensor, b: Tensor) => {
    assert.equal(a.dtype, b.dtype);
    assertClose(await a.data(), await b.data());
  };
  await same(ops.minimum(x, 1), x.minimum(1));
  await same(ops.minimum(1, x), x.minimum(1));
  await same(ops.gt(x, 0), x.gt(0));
  await same(ops.gt(0, x), x.lt(0));
  await same(ops.ge(x, 0), x.ge(0));
  await same(ops.floorDiv(7, tensor([2, -2])), tensor([3, -4]));
  await same(ops.mod(x, 2), x.mod(2));
  await same(ops.prod(x.add(3)), x.add(3).prod());
  await same(ops.cumsum(x), x.cumsum());
  await same(ops.cumprod(x), x.cumprod());
  await same(ops.argmax(x), x.argmax());
  await same(ops.argmin(x), x.argmin());
  await same(ops.astype(x, "int8"), x.astype("int8"));
  await same(ops.take(x, [2, 0]), x.take([2, 0]));
  await same(ops.clip(x, -1, 1), x.clip(-1, 1));
  assert.throws(() => ops.gt(tensor([1], { dtype: "int8" }), 300), /^RangeError: gt: /);
});
