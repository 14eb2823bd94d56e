/**
 * Memory: a training loop that disposes what it no longer needs runs in
 * constant memory, and the transforms release every temporary — also when
 * the differentiated function throws.
 */

import assert from "node:assert/strict";
import {
  disposeTree,
  grad,
  type MemoryStats,
  memoryStats,
  randomNormal,
  randomUniform,
  sgd,
  type Tensor,
  tensor,
  tidy,
  treeTensors,
  trimMemory,
  valueAndGrad,
  vjp,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import { testBoth } from "./_helpers.ts";

type Mlp = { l1: { w: Tensor; b: Tensor }; l2: { w: Tensor; b: Tensor } };

const mlpLoss = (p: Mlp, x: Tensor, y: Tensor) =>
  x.matmul(p.l1.w).add(p.l1.b).tanh().matmul(p.l2.w).add(p.l2.b).sub(y).pow(2).mean();

/** The counters that must not grow (the pool and the peak may). */
function live(s: MemoryStats) {
  return { liveTensors: s.liveTensors, liveBuffers: s.liveBuffers, liveBytes: s.liveBytes };
}

testBoth("training a tiny MLP for 200 steps runs in constant memory", async () => {
  // 16 points in 2-D; target: the sign of x0·x1 (an XOR-like pattern).
  const points = Array.from({ length: 16 }, (_, i) => [
    ((i % 4) - 1.5) / 1.5,
    (Math.floor(i / 4) - 1.5) / 1.5,
  ]);
  const x = tensor(points);
  const y = tensor(points.map(([a, b]) => [Math.sign(a * b)]));
  let params: Mlp = {
    l1: {
      w: randomNormal([2, 8], { seed: 1, std: 1 }),
      b: randomNormal([8], { seed: 2, std: 0.1 }),
    },
    l2: { w: randomNormal([8, 1], { seed: 3, std: 0.5 }), b: tensor([0]) },
  };
  const step = valueAndGrad(mlpLoss);
  let atStep10: ReturnType<typeof live> | undefined;
  let first: number | undefined;
  let value: Tensor | undefined;
  for (let i = 1; i <= 200; i++) {
    value?.dispose();
    const [v, grads] = step(params, x, y);
    const next = sgd(params, grads, { lr: 0.2 });
    disposeTree(params);
    disposeTree(grads);
    params = next;
    value = v;
    if (i === 1) first = await v.item();
    if (i === 10) atStep10 = live(memoryStats());
  }
  const atStep200 = live(memoryStats());
  assert.ok(atStep10);
  assert.deepEqual(atStep200, atStep10, "memory grew between step 10 and step 200");
  // Training did something.
  const last = await value!.item();
  assert.ok(Number.isFinite(last), `final loss ${last}`);
  assert.ok(last < first! * 0.5, `loss went from ${first} to ${last}`);
  value!.dispose();
  disposeTree(params);
  x.dispose();
  y.dispose();
});

testBoth("a loop of grad + sgd with a tree of params keeps liveTensors flat", () => {
  const x = randomUniform([4, 2], { seed: 5, low: -1, high: 1 });
  const y = randomUniform([4, 1], { seed: 6, low: -1, high: 1 });
  let params: Mlp = {
    l1: { w: randomNormal([2, 3], { seed: 7 }), b: tensor([0, 0, 0]) },
    l2: { w: randomNormal([3, 1], { seed: 8 }), b: tensor([0]) },
  };
  const counts: number[] = [];
  for (let i = 0; i < 20; i++) {
    const g = grad(mlpLoss)(params, x, y);
    const next = sgd(params, g, { lr: 0.1 });
    disposeTree([params, g]);
    params = next;
    counts.push(memoryStats().liveTensors);
  }
  assert.ok(counts.every((c) => c === counts[0]), `liveTensors per step: ${counts.join(", ")}`);
  disposeTree([params, x, y]);
});

testBoth("grad of a function that throws midway leaves nothing behind", () => {
  const x = tensor([[1, 2], [3, 4]]);
  const w = tensor([[0.5], [-0.5]]);
  class Boom extends Error {}
  const f = (a: Tensor, b: Tensor) => {
    const h = a.matmul(b).tanh();
    const e = h.exp().add(h);
    e.sum(); // a few ops, some of them reductions
    throw new Boom("failed after a few ops");
  };
  // Warm up the constant cache so that only leaks change the counters.
  assert.throws(() => grad(f, { argnums: [0, 1] })(x, w), Boom);
  const before = live(memoryStats());
  assert.throws(() => grad(f)(x, w), Boom);
  assert.deepEqual(live(memoryStats()), before, "grad");
  assert.throws(() => grad(f, { argnums: [0, 1] })(x, w), Boom);
  assert.deepEqual(live(memoryStats()), before, "grad, argnums [0, 1]");
  assert.throws(() => valueAndGrad(f)(x, w), Boom);
  assert.deepEqual(live(memoryStats()), before, "valueAndGrad");
  assert.throws(() => vjp(f, x, w), Boom);
  assert.deepEqual(live(memoryStats()), before, "vjp");
  // Throwing inside a nested grad.
  const outer = (a: Tensor, b: Tensor) => grad(f)(a.mul(2), b).sum();
  assert.throws(() => grad(outer)(x, w), Boom);
  assert.deepEqual(live(memoryStats()), before, "nested grad");
  // The inputs are untouched.
  assert.ok(!x.disposed && !w.disposed);
  // Throwing when the output is invalid (non-scalar) also leaves nothing.
  assert.throws(() => grad((a: Tensor) => a.exp().mul(2))(x), TypeError);
  assert.deepEqual(live(memoryStats()), before, "non-scalar output");
  x.dispose();
  w.dispose();
});

testBoth("valueAndGrad returns value + grads and releases all its temporaries", () => {
  const x = randomUniform([5, 2], { seed: 9, low: -1, high: 1 });
  const y = randomUniform([5, 1], { seed: 10, low: -1, high: 1 });
  const params: Mlp = {
    l1: { w: randomNormal([2, 4], { seed: 11 }), b: tensor([0.1, 0, -0.1, 0.2]) },
    l2: { w: randomNormal([4, 1], { seed: 12 }), b: tensor([0]) },
  };
  const step = valueAndGrad(mlpLoss);
  // Warm up the constant cache.
  disposeTree(step(params, x, y));
  const before = memoryStats();
  const [value, grads] = step(params, x, y);
  const nGrads = treeTensors(grads).length;
  assert.equal(nGrads, 4);
  assert.equal(memoryStats().liveTensors, before.liveTensors + 1 + nGrads);
  value.dispose();
  disposeTree(grads);
  assert.deepEqual(live(memoryStats()), live(before), "nothing left after disposing the results");

  // Several argnums and hasAux: only value, aux and grads survive.
  const withAux = valueAndGrad((p: Mlp, a: Tensor, b: Tensor) => {
    const pred = a.matmul(p.l1.w).tanh();
    return [pred.sub(b).pow(2).mean(), { pred }] as const;
  }, { argnums: [0, 1], hasAux: true });
  disposeTree(withAux(params, x, y));
  const before2 = memoryStats();
  const [[v2, aux], [gp, gx]] = withAux(params, x, y);
  const survivors = 1 + 1 + treeTensors(gp).length + 1;
  assert.equal(memoryStats().liveTensors, before2.liveTensors + survivors);
  disposeTree([v2, aux, gp, gx]);
  assert.deepEqual(live(memoryStats()), live(before2));
  disposeTree([params, x, y]);
});

testBoth("grad(grad(f)) in a loop keeps memory flat", () => {
  const f = (x: Tensor) => x.tanh().mul(x).sum();
  const d2 = grad((x: Tensor) => grad(f)(x).sum());
  const x = tensor([0.5, -1, 2]);
  d2(x).dispose();
  const before = live(memoryStats());
  for (let i = 0; i < 10; i++) d2(x).dispose();
  assert.deepEqual(live(memoryStats()), before);
  x.dispose();
});

testBoth("vjp keeps residuals until pullback.dispose()", () => {
  const x = tensor([0.1, 0.2, 0.3]);
  const f = (a: Tensor) => a.exp().mul(a).tanh();
  const c = tensor([1, 1, 1]);
  // Warm up the constant cache.
  const [y0, pullback0] = vjp(f, x);
  disposeTree([y0, pullback0(c)]);
  pullback0.dispose();
  const before = live(memoryStats());
  const [y, pullback] = vjp(f, x);
  const [dx] = pullback(c) as Tensor[];
  const [dx2] = pullback(c) as Tensor[];
  pullback.dispose();
  // Left: y, dx and dx2.
  assert.equal(memoryStats().liveTensors, before.liveTensors + 3);
  disposeTree([y, dx, dx2]);
  assert.deepEqual(live(memoryStats()), before);
  disposeTree([x, c]);
});

testBoth("a decaying learning rate (new constants every step) keeps memory flat", () => {
  let params: Mlp = {
    l1: { w: randomNormal([2, 4], { seed: 3 }), b: tensor([0, 0, 0, 0]) },
    l2: { w: randomNormal([4, 1], { seed: 4 }), b: tensor([0]) },
  };
  const x = randomUniform([8, 2], { seed: 5 });
  const y = randomUniform([8, 1], { seed: 6 });
  const step = valueAndGrad(mlpLoss);
  let early: ReturnType<typeof live> | undefined;
  for (let i = 0; i < 60; i++) {
    const [value, grads] = step(params, x, y);
    const next = sgd(params, grads, { lr: 0.1 / (1 + i) });
    disposeTree([value, grads, params]);
    params = next;
    if (i === 5) early = live(memoryStats());
  }
  assert.deepEqual(live(memoryStats()), early);
  disposeTree([params, x, y]);
});

testBoth("tidy releases eager intermediates and keeps the returned tree", async () => {
  const x = tensor([[1, -2], [3, 4]]);
  const before = memoryStats();
  const out = tidy(() => {
    const h = x.mul(2).relu();
    return { total: h.sum(), rows: [h.max(1)] };
  });
  assert.equal(memoryStats().liveTensors, before.liveTensors + 2);
  assert.equal(await out.total.item(), 16);
  assert.deepEqual(await out.rows[0].array(), [2, 8]);
  assert.throws(
    () => tidy(() => Promise.resolve(x)),
    (e: unknown) => e instanceof TypeError && /tidy/.test(e.message) && /Promise/.test(e.message),
  );
  disposeTree([out, x]);
  assert.equal(memoryStats().liveTensors, before.liveTensors - 1);
  assert.equal(memoryStats().liveBytes, before.liveBytes - 16);
});

// An `interface` (not only a `type` alias) can describe a parameter tree.
interface Layer {
  w: Tensor;
  b: Tensor;
}
testBoth("sgd accepts parameter trees typed with interfaces", async () => {
  const layer: Layer = { w: tensor([1, 2]), b: tensor([3]) };
  const grads = grad((p: Layer) => p.w.sum().add(p.b.sum()))(layer);
  const next: Layer = sgd(layer, grads, { lr: 1 });
  assert.deepEqual(await next.w.array(), [0, 1]);
  assert.deepEqual(await next.b.array(), [2]);
  disposeTree([layer, grads, next]);
});

testBoth("trimMemory gives pooled buffers back and leaves live tensors intact", async (backend) => {
  const keep = tensor([1, 2, 3]);
  const big = randomUniform([1 << 18]);
  const y = big.mul(2);
  await y.sum().item(); // the reduction's temporaries go back to the pool
  big.dispose();
  y.dispose();
  const before = memoryStats();
  // A WebAssembly memory cannot shrink: the wasm backend's free blocks stay
  // pooled for reuse, and trimming releases every other backend's pool.
  const kept = resolveBackend("wasm").memory().pooledBytes;
  const released = trimMemory();
  const after = memoryStats();
  // The CPU backend leaves freed arrays to the garbage collector.
  if (backend !== "cpu") {
    assert.ok(before.pooledBytes >= 4 << 18, `pooled ${before.pooledBytes} before trimming`);
  }
  if (backend === "wasm") assert.ok(kept >= 4 << 18, `wasm pooled ${kept}`);
  assert.equal(released, before.pooledBytes - kept);
  assert.equal(after.pooledBytes, kept);
  assert.deepEqual(live(after), live(before));
  // Live data survive, and new work allocates afresh.
  assert.deepEqual(await keep.add(1).array(), [2, 3, 4]);
  assert.deepEqual(await tensor([4, 5]).mul(keep.get([0, 2])).array(), [4, 10]);
  keep.dispose();
});
