/**
 * Layers and initialisers: parameter pytree shapes, forward values against
 * plain TypeScript, gradients against central differences (checkGrads), the
 * train/eval behaviour of dropout, determinism from keys, and errors.
 */

import assert from "node:assert/strict";
import {
  checkGrads,
  disposeTree,
  flattenTree,
  initializers,
  memoryStats,
  nn,
  random,
  type Tensor,
  tensor,
  treeTensors,
  valueAndGrad,
} from "../mod.ts";
import { assertClose, flat, testBoth } from "./_helpers.ts";

const shapesOf = (tree: unknown) =>
  Object.fromEntries(
    flattenTree(tree).leaves.map((l) => [l.path, [...(l.value as Tensor).shape]]),
  );

// ---- initialisers ----------------------------------------------------------------

Deno.test("fans follow JAX's convention", () => {
  assert.deepEqual(initializers.fans([784, 128]), { fanIn: 784, fanOut: 128 });
  assert.deepEqual(initializers.fans([3, 3, 16, 32]), { fanIn: 144, fanOut: 288 });
  assert.deepEqual(initializers.fans([7]), { fanIn: 7, fanOut: 7 });
  assert.deepEqual(initializers.fans([]), { fanIn: 1, fanOut: 1 });
});

testBoth("initialisers have the variance and range their papers prescribe", async () => {
  const key = random.key(0);
  const std = (values: ArrayLike<number>) => {
    const xs = Array.from(values);
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
  };
  const cases: [string, initializers.Initializer, number][] = [
    ["heNormal", initializers.heNormal(), Math.sqrt(2 / 400)],
    ["heUniform", initializers.heUniform(), Math.sqrt(2 / 400)],
    ["glorotNormal", initializers.glorotNormal(), Math.sqrt(2 / 500)],
    ["glorotUniform", initializers.glorotUniform(), Math.sqrt(2 / 500)],
    ["lecunNormal", initializers.lecunNormal(), Math.sqrt(1 / 400)],
    ["normal(0.02)", initializers.normal(0.02), 0.02],
  ];
  for (const [name, init, expected] of cases) {
    const w = init(key, [400, 100]);
    const data = await w.data();
    const s = std(data);
    assert.ok(Math.abs(s / expected - 1) < 0.03, `${name}: std ${s}, expected ${expected}`);
    if (name.endsWith("Uniform")) {
      const limit = Math.sqrt(3) * expected;
      assert.ok(data.every((x) => Math.abs(x) <= limit), `${name} exceeds ±${limit}`);
    }
    w.dispose();
  }
  const z = initializers.zeros(key, [2, 3]);
  const o = initializers.ones(key, [2]);
  const c = initializers.constant(0.5)(key, [1]);
  assert.deepEqual(flat(await z.array()), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(flat(await o.array()), [1, 1]);
  assert.deepEqual(flat(await c.array()), [0.5]);
  disposeTree([z, o, c]);
  assert.throws(() => initializers.heNormal()(key, [0, 3]), /fanIn of shape \[0,3\]/);
});

// ---- linear ---------------------------------------------------------------------

testBoth("nn.linear: params, values and gradients", async (backend) => {
  const p = nn.initLinear(random.key(1), 3, 2);
  assert.deepEqual(shapesOf(p), { w: [3, 2], b: [2] });
  assert.equal(p.w.backend, backend);
  // The default kernel is LeCun normal from the first half of the split key.
  const [wKey] = random.split(random.key(1));
  const expectedW = random.normal(wKey, [3, 2], { std: Math.sqrt(1 / 3) });
  assertClose(await p.w.data(), await expectedW.data(), { label: "w" });
  assert.deepEqual(flat(await p.b!.array()), [0, 0]);

  const params = { w: tensor([[1, 2], [3, 4], [5, 6]]), b: tensor([0.5, -1]) };
  const x = tensor([[1, 0, -1], [2, 1, 0]]);
  const y = nn.linear(params, x);
  assert.deepEqual(await y.array(), [[1 - 5 + 0.5, 2 - 6 - 1], [2 + 3 + 0.5, 4 + 4 - 1]]);
  // Leading axes are batch axes.
  const x3 = tensor([[[1, 0, -1]], [[2, 1, 0]]]);
  const y3 = nn.linear(params, x3);
  assert.deepEqual(y3.shape, [2, 1, 2]);
  await checkGrads(
    (q: { w: Tensor; b: Tensor }, input: Tensor) => nn.linear(q, input).tanh(),
    [{ w: tensor([[0.1, -0.2], [0.3, 0.05], [-0.4, 0.2]]), b: tensor([0.1, 0]) }, x],
  );
  const noBias = nn.initLinear(random.key(1), 3, 2, { bias: false });
  assert.deepEqual(Object.keys(noBias), ["w"]);
  assert.deepEqual(nn.linear(noBias, x).shape, [2, 2]);
  assert.throws(() => nn.linear(params, tensor([[1, 2]])), /the last axis must be 3/);
  disposeTree([p, expectedW, params, x, y, x3, y3, noBias]);
});

// ---- mlp ------------------------------------------------------------------------

testBoth("nn.mlp: layer pytree, forward pass, gradients", async () => {
  const p = nn.initMlp(random.key(2), [4, 5, 3, 2], { wInit: initializers.heNormal() });
  assert.deepEqual(shapesOf(p), {
    "layers.0.w": [4, 5],
    "layers.0.b": [5],
    "layers.1.w": [5, 3],
    "layers.1.b": [3],
    "layers.2.w": [3, 2],
    "layers.2.b": [2],
  });
  const x = random.normal(random.key(3), [6, 4]);
  const y = nn.mlp(p, x);
  // The same computation written out.
  const manual = p.layers.reduce(
    (h: Tensor, l, i) => {
      const z = h.matmul(l.w).add(l.b!);
      return i < 2 ? z.relu() : z;
    },
    x,
  );
  assertClose(await y.data(), await manual.data(), { label: "mlp" });
  const tanhNet = nn.mlp(p, x, { activation: (t) => t.tanh() });
  assert.notDeepEqual(await tanhNet.data(), await y.data());
  const small = nn.initMlp(random.key(4), [3, 4, 2]);
  await checkGrads(
    (q: nn.MlpParams) =>
      nn.mlp(q, tensor([[0.5, -1, 0.25], [1, 2, -0.5]]), {
        activation: (t) => t.tanh(),
      }),
    [small],
  );
  assert.throws(() => nn.initMlp(random.key(0), [3]), /at least an input and an output/);
  assert.throws(
    () => nn.mlp(p, x, { dropout: 0.5, train: true }),
    /dropout in training mode needs opts.key/,
  );
  disposeTree([p, x, y, manual, tanhNet, small]);
});

testBoth("nn.mlp applies dropout only in training mode", async () => {
  const p = nn.initMlp(random.key(5), [8, 32, 4]);
  const x = random.normal(random.key(6), [5, 8]);
  const evalOut = nn.mlp(p, x, { dropout: 0.5, train: false, key: random.key(7) });
  const plain = nn.mlp(p, x);
  assert.deepEqual(await evalOut.data(), await plain.data());
  const a = nn.mlp(p, x, { dropout: 0.5, train: true, key: random.key(7) });
  const b = nn.mlp(p, x, { dropout: 0.5, train: true, key: random.key(7) });
  const c = nn.mlp(p, x, { dropout: 0.5, train: true, key: random.key(8) });
  assert.deepEqual(await a.data(), await b.data()); // same key, same mask
  assert.notDeepEqual(await a.data(), await plain.data());
  assert.notDeepEqual(await a.data(), await c.data());
  disposeTree([p, x, evalOut, plain, a, b, c]);
});

// ---- dropout --------------------------------------------------------------------

testBoth(
  "nn.dropout: scaled mask in training, identity in evaluation, exact gradient",
  async () => {
    const x = tensor([[1, 2, 3, 4], [5, 6, 7, 8]]);
    const key = random.key(9);
    const y = nn.dropout(key, x, 0.25, { train: true });
    const mask = await random.bernoulli(key, 0.75, [2, 4]).data();
    const xs = await x.data();
    assertClose(await y.data(), Array.from(xs, (v, i) => (mask[i] * v) / 0.75), {
      label: "train",
    });
    const e = nn.dropout(key, x, 0.25, { train: false });
    assert.notEqual(e, x); // a new tensor...
    assert.deepEqual(await e.data(), xs); // ...with x's values
    const none = nn.dropout(key, x, 0, { train: true });
    assert.deepEqual(await none.data(), xs);
    // The gradient is the mask scaled by 1/(1 - rate).
    const [, g] = valueAndGrad((t: Tensor) => nn.dropout(key, t, 0.25, { train: true }).sum())(x);
    assertClose(await g.data(), Array.from(mask, (m) => m / 0.75), { label: "grad" });
    // The fraction dropped is about the rate.
    const big = nn.dropout(
      random.key(10),
      random.uniform(random.key(11), [4000], { low: 1 }),
      0.3,
      {
        train: true,
      },
    );
    const zeros = (await big.data()).filter((v) => v === 0).length / 4000;
    assert.ok(Math.abs(zeros - 0.3) < 0.03, `dropped ${zeros}`);
    assert.throws(() => nn.dropout(key, x, 1, { train: true }), /rate must be in \[0, 1\)/);
    assert.throws(
      () => nn.dropout(key, x, 0.5, {} as { train: boolean }),
      /opts.train must be true \(training\) or false \(evaluation\)/,
    );
    disposeTree([x, y, e, none, g, big]);
  },
);

// ---- embedding ------------------------------------------------------------------

testBoth("nn.embedding looks up rows; the table gets the summed gradient", async () => {
  const p = nn.initEmbedding(random.key(12), 5, 3);
  assert.deepEqual(shapesOf(p), { table: [5, 3] });
  const table = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14]];
  const params = { table: tensor(table) };
  const out = nn.embedding(params, [4, 0, 4]);
  assert.deepEqual(await out.array(), [table[4], table[0], table[4]]);
  // Ids of any shape, as an int32 tensor; float ids are refused.
  const out2 = nn.embedding(params, tensor([[1, 2], [3, 1]], { dtype: "int32" }));
  assert.throws(() => nn.embedding(params, tensor([1, 2])), /take: indices must be an integer/);
  assert.deepEqual(out2.shape, [2, 2, 3]);
  assert.deepEqual(await out2.array(), [[table[1], table[2]], [table[3], table[1]]]);
  // d/dtable of sum(embedding · weights): row i gets the weights of each use of i.
  const weights = tensor([[1, 0, 0], [0, 1, 0], [0, 0, 2]]);
  const [, g] = valueAndGrad((q: nn.EmbeddingParams) =>
    nn.embedding(q, [4, 0, 4]).mul(weights).sum()
  )(params);
  assert.deepEqual(await g.table.array(), [
    [0, 1, 0],
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
    [1, 0, 2],
  ]);
  await checkGrads(
    (q: nn.EmbeddingParams) => nn.embedding(q, [1, 3, 3]).tanh(),
    [{ table: random.normal(random.key(13), [4, 2]) }],
  );
  assert.deepEqual(await nn.oneHot([2, 0], 3).array(), [[0, 0, 1], [1, 0, 0]]);
  assert.throws(() => nn.embedding(params, [5]), /id 5 at index 0 is not in \[0, 5\)/);
  assert.throws(() => nn.embedding(params, [1.5]), RangeError);
  disposeTree([p, params, out, out2, weights, g]);
});

// ---- layer norm -----------------------------------------------------------------

testBoth("nn.layerNorm: values against plain TypeScript, gradients", async () => {
  const p = nn.initLayerNorm(4);
  assert.deepEqual(shapesOf(p), { scale: [4], bias: [4] });
  assert.deepEqual(flat(await p.scale.array()), [1, 1, 1, 1]);
  const rows = [[1, 2, 3, 4], [-1, 0.5, 2, 10]];
  const params = { scale: tensor([1, 2, 0.5, -1]), bias: tensor([0, 0.1, 0.2, 0.3]) };
  const y = nn.layerNorm(params, tensor(rows), { eps: 1e-5 });
  const expected = rows.map((r) => {
    const mean = r.reduce((a, b) => a + b) / r.length;
    const variance = r.reduce((a, b) => a + (b - mean) ** 2, 0) / r.length;
    const s = [1, 2, 0.5, -1];
    const b = [0, 0.1, 0.2, 0.3];
    return r.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * s[i] + b[i]);
  });
  assertClose(await y.array(), expected, { label: "layerNorm" });
  await checkGrads(
    (q: nn.LayerNormParams, x: Tensor) => nn.layerNorm(q, x).mul(tensor([1, -2, 3, 0.5])),
    [params, tensor(rows)],
    { atol: 1e-2 },
  );
  assert.throws(() => nn.layerNorm(p, tensor([1, 2, 3])), /both must be \[3\]/);
  disposeTree([p, params, y]);
});

// ---- conv2d ---------------------------------------------------------------------

testBoth("nn.initConv2d: pytree, layout and He/Glorot fans of a conv kernel", async (backend) => {
  const key = random.key(20);
  const p = nn.initConv2d(key, 16, 32, 3, { wInit: initializers.heNormal() });
  assert.deepEqual(shapesOf(p), { w: [32, 16, 3, 3], b: [32] });
  assert.equal(p.w.backend, backend);
  assert.deepEqual(flat(await p.b!.array()), new Array(32).fill(0));
  // The initialiser sees the HWIO shape [kh, kw, in, out] (fanIn = in·kh·kw),
  // and the result is transposed to [out, in, kh, kw].
  const [wKey] = random.split(key);
  const hwio = initializers.heNormal()(wKey, [3, 3, 16, 32]);
  const oihw = hwio.transpose([3, 2, 0, 1]);
  assertClose(await p.w.data(), await oihw.data(), { label: "w" });
  const data = Array.from(await p.w.data());
  const m = data.reduce((a, b) => a + b, 0) / data.length;
  const std = Math.sqrt(data.reduce((a, b) => a + (b - m) ** 2, 0) / data.length);
  const expected = Math.sqrt(2 / (16 * 3 * 3));
  assert.ok(Math.abs(std / expected - 1) < 0.05, `std ${std}, expected ${expected}`);
  assert.ok(Math.abs(m) < 0.1 * expected, `mean ${m}`);

  // Glorot uniform with groups: fanIn = (8 / 2)·3·2 = 24, fanOut = 12·3·2 = 72.
  const g = nn.initConv2d(key, 8, 12, [3, 2], {
    wInit: initializers.glorotUniform(),
    groups: 2,
    bias: false,
  });
  assert.deepEqual(shapesOf(g), { w: [12, 4, 3, 2] });
  const limit = Math.sqrt(6 / (24 + 72));
  const gData = await g.w.data();
  assert.ok(gData.every((x) => Math.abs(x) <= limit), `glorotUniform exceeds ±${limit}`);
  assert.ok(gData.some((x) => Math.abs(x) > limit / 2));

  assert.throws(() => nn.initConv2d(key, 3, 4, 3, { groups: 2 }), /groups=2 must divide/);
  assert.throws(() => nn.initConv2d(key, 3, 4, 0), /kernel must be a positive integer/);
  assert.throws(() => nn.initConv2d(key, 0, 4, 3), /inChannels must be a positive integer/);
  disposeTree([p, hwio, oihw, g]);
});

testBoth("nn.conv2d: values by hand, shapes, bias broadcast, gradients", async () => {
  // x = 1..9 as a 3×3 image; kernel 0 is [[1, 0], [0, -1]] (x[i][j] - x[i+1][j+1] = -4),
  // kernel 1 sums each 2×2 window.
  const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9]).reshape([1, 1, 3, 3]);
  const params = {
    w: tensor([[[[1, 0], [0, -1]]], [[[1, 1], [1, 1]]]]),
    b: tensor([0.5, -1]),
  };
  const y = nn.conv2d(params, x);
  assert.deepEqual(await y.array(), [[
    [[-3.5, -3.5], [-3.5, -3.5]],
    [[11, 15], [23, 27]],
  ]]);
  // Without a bias, and with padding 1: the corner sees only x[0][0] = 1.
  const padded = nn.conv2d({ w: params.w }, x, { padding: 1 });
  assert.deepEqual(padded.shape, [1, 2, 4, 4]);
  assert.deepEqual(flat(await padded.get(0, 1, 0, 0).array()), [1]);
  assert.deepEqual(flat(await padded.get(0, 0, 0, 0).array()), [-1]);

  // Stride, padding, a non-square kernel and groups (inferred from the shapes).
  const p = nn.initConv2d(random.key(21), 4, 6, [3, 2], { groups: 2 });
  const big = random.normal(random.key(22), [2, 4, 5, 6]);
  const out = nn.conv2d(p, big, { stride: 2, padding: 1 });
  assert.deepEqual(out.shape, [2, 6, 3, 4]);
  const explicit = nn.conv2d(p, big, { stride: 2, padding: 1, groups: 2 });
  assertClose(await out.data(), await explicit.data());

  await checkGrads(
    (q: { w: Tensor; b: Tensor }, input: Tensor) =>
      nn.conv2d(q, input, { stride: 2, padding: 1 }).tanh(),
    [
      {
        w: random.normal(random.key(23), [3, 2, 2, 2], { std: 0.5 }),
        b: tensor([0.1, -0.2, 0.3]),
      },
      random.normal(random.key(24), [1, 2, 4, 3]),
    ],
    { atol: 1e-2 },
  );
  assert.throws(() => nn.conv2d(params, tensor([[1, 2]])), /expected input \[n, c, h, w\]/);
  assert.throws(
    () => nn.conv2d({ w: params.w, b: tensor([1, 2, 3]) }, x),
    /params.b must be \[2\]/,
  );
  disposeTree([x, params, y, padded, p, big, out, explicit]);
});

// ---- everything together --------------------------------------------------------

testBoth(
  "layers compose in a loss whose grads mirror the params and free their temporaries",
  async () => {
    const [k1, k2, k3] = random.split(random.key(14), 3);
    const params = {
      embed: nn.initEmbedding(k1, 6, 4),
      norm: nn.initLayerNorm(4),
      head: nn.initMlp(k2, [4, 8, 3]),
    };
    const loss = (p: typeof params, ids: number[], key: random.Key) => {
      const h = nn.layerNorm(p.norm, nn.embedding(p.embed, ids));
      const dropped = nn.dropout(key, h, 0.1, { train: true });
      return nn.mlp(p.head, dropped).logSoftmax().mean().neg();
    };
    const before = memoryStats().liveTensors;
    const [value, grads] = valueAndGrad(loss)(params, [0, 5, 2], k3);
    assert.equal(memoryStats().liveTensors - before, 1 + treeTensors(grads).length);
    assert.deepEqual(shapesOf(grads), shapesOf(params));
    assert.ok(Number.isFinite(await value.item()));
    disposeTree([params, value, grads]);
  },
);
