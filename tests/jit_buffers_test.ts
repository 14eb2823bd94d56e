/**
 * Where a jitted program's results go (`src/compiler/buffers.ts`):
 * `donateArgnums` writes outputs into donated inputs' buffers (an optimizer
 * step updating its parameters in place), only where no later step reads
 * the input and the writing kernel reads it only at the element it stores;
 * every other intermediate lives in a buffer the program keeps, coloured by
 * liveness. Every result is compared with the same function run without
 * donation (bitwise) or eagerly.
 * @module
 */

import assert from "node:assert/strict";
import {
  disposeTree,
  grad,
  jit,
  makeTrace,
  memoryStats,
  optim,
  randomNormal,
  resetPeakMemory,
  sgd,
  softmaxCrossEntropy,
  sync,
  type Tensor,
  tensor,
  tidy,
  trimMemory,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import { compileProgram } from "../src/compiler/execute.ts";
import { assertClose, gc, settleGarbage, testBoth } from "./_helpers.ts";

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

const mlpLoss = (p: Params, x: Tensor, labels: Tensor): Tensor =>
  softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);

function sgdStep(p: Params, x: Tensor, labels: Tensor): [Tensor, Params] {
  const [value, grads] = valueAndGrad(mlpLoss)(p, x, labels);
  return [value, sgd(p, grads, { lr: 0.05 })];
}

function mlp(): { params: Params; x: Tensor; labels: Tensor } {
  return {
    params: {
      w1: randomNormal([64, 32], { seed: 1, std: 0.2 }),
      b1: zeros([32]),
      w2: randomNormal([32, 10], { seed: 2, std: 0.3 }),
      b2: zeros([10]),
    },
    x: randomNormal([48, 64], { seed: 3 }),
    labels: tensor(Array.from({ length: 48 }, (_, i) => (i * 7) % 10), { dtype: "int32" }),
  };
}

const storageOf = (t: Tensor) => t.view("test").storage;
const compiles = (b: string) => b !== "cpu";

async function values(tree: Tensor[]): Promise<number[][]> {
  return await Promise.all(tree.map(async (t) => Array.from(await t.data())));
}

testBoth(
  "jit donateArgnums: an SGD step writes the new parameters into the donated ones' buffers, " +
    "bitwise the same as without donation, and disposes the donated tensors",
  async (b) => {
    const { params, x, labels } = mlp();
    const plain = jit(sgdStep);
    const donating = jit(sgdStep, { donateArgnums: 0 });
    let [p1, p2] = [params, mlp().params];
    for (let i = 0; i < 4; i++) {
      const before = storageOf(p2.w1);
      const [v1, n1] = plain(p1, x, labels);
      const [v2, n2] = donating(p2, x, labels);
      assert.deepEqual(await v2.data(), await v1.data(), `loss at step ${i}`);
      assert.ok(p2.w1.disposed && p2.b2.disposed, "the donated parameters are disposed");
      assert.throws(() => p2.w1.add(1), ReferenceError);
      assert.equal(donating.stats.donated, compiles(b) ? 4 : 0, "buffers reused");
      if (compiles(b)) assert.equal(storageOf(n2.w1), before, "w1 updated in its own buffer");
      disposeTree([p1, v1, v2]);
      [p1, p2] = [n1, n2];
    }
    const order = ["w1", "b1", "w2", "b2"] as const;
    assert.deepEqual(
      await values(order.map((k) => p2[k])),
      await values(order.map((k) => p1[k])),
      "parameters after 4 steps",
    );
    if (compiles(b)) {
      const text = donating.lower(p2, x, labels).text;
      assert.equal(text.match(/donated: input \d -> %\d+ \(in place\)/g)?.length, 4, text);
    }
    disposeTree([p1, p2, x, labels]);
  },
);

testBoth(
  "jit donateArgnums: Adam's parameters and state are donated and updated in place, " +
    "matching eager steps",
  async (b) => {
    const opt = optim.adam(0.01) as optim.GradientTransformation<unknown>;
    const lossFn = (p: Params, x: Tensor, y: Tensor) => mlpLoss(p, x, y);
    const step = (p: Params, s: unknown, x: Tensor, y: Tensor): [Params, unknown, Tensor] => {
      const [loss, grads] = valueAndGrad(lossFn)(p, x, y);
      const [updates, next] = opt.update(grads, s, p);
      return [optim.applyUpdates(p, updates), next, loss];
    };
    const jitted = jit(step, { donateArgnums: [0, 1] });
    const { params, x, labels } = mlp();
    let [p, s]: [Params, unknown] = [params, opt.init(params)];
    const start = mlp().params;
    let [q, t]: [Params, unknown] = [start, opt.init(start)];
    for (let i = 0; i < 3; i++) {
      const [p2, s2, l2] = jitted(p, s, x, labels);
      const [q2, t2, m2] = tidy(() => step(q, t, x, labels));
      assertClose(await l2.item(), await m2.item(), { atol: 1e-6, rtol: 1e-6, label: "loss" });
      disposeTree([q, t, l2, m2]);
      [p, s, q, t] = [p2, s2, q2, t2];
    }
    // w1, b1, w2, b2 and both moments of each; the step count is an int32 scalar too.
    if (compiles(b)) assert.ok(jitted.stats.donated >= 12, `donated ${jitted.stats.donated}`);
    const keys = ["w1", "b1", "w2", "b2"] as const;
    assertClose(await values(keys.map((k) => p[k])), await values(keys.map((k) => q[k])), {
      atol: 1e-6,
      rtol: 1e-6,
      label: "parameters, donated jit vs eager",
    });
    disposeTree([p, s, q, t, x, labels]);
  },
);

testBoth(
  "jit donateArgnums: a donated input read after, or elsewhere than, where an output is " +
    "stored keeps its value until read (the donation is declined)",
  async (b) => {
    const square = () => randomNormal([24, 24], { seed: 4 });
    const x = randomNormal([5, 24], { seed: 5 });
    const g = randomNormal([300, 24], { seed: 6 });
    const row = () => randomNormal([24], { seed: 4 });
    const cases: [string, () => Tensor, (w: Tensor) => Tensor[], number][] = [
      // The add's kernel runs before the matmul reads w.
      ["read by a later step", square, (w) => [w.add(1), x.matmul(w)], 0],
      // The kernel that stores the sum reads w at the transposed element too.
      ["read transposed by the writer", square, (w) => [w.add(w.transpose())], 0],
      // A matmul operand is read everywhere by every output element.
      ["a matmul operand of the writer", square, (w) => [w.matmul(w).add(w)], 0],
      // Returned as it is: its buffer is an output already.
      ["returned as it is", square, (w) => [w, w.mul(2)], 0],
      // Elementwise after a broadcast reduction: its own kernel, in place.
      ["in place after a reduction", square, (w) => [w.sub(g.sum(0).reshape([1, 24]))], 1],
      // The epilogue of a reduction (a workgroup per output on WebGPU), in place.
      ["in place in a reduction's epilogue", row, (w) => [w.sub(g.sum(0).mul(0.01))], 1],
    ];
    for (const [label, make, f, reused] of cases) {
      const jitted = jit(f, { donateArgnums: 0 });
      const input = make();
      const want = await values(f(input));
      if (label.endsWith("epilogue") && compiles(b)) {
        const lowered = jitted.lower(input);
        assert.equal(lowered.steps, 1, `one kernel: ${lowered.text}`);
      }
      input.dispose();
      const got = jitted(make());
      assertClose(await values(got), want, { atol: 1e-5, rtol: 1e-5, label });
      assert.equal(jitted.stats.donated, compiles(b) ? reused : 0, `${label}: buffers reused`);
      disposeTree(got);
    }
    disposeTree([x, g]);
  },
);

testBoth(
  "jit donateArgnums: a donated tensor whose buffer another tensor shares (a view, the same " +
    "tensor as another argument) is copied, not overwritten",
  async () => {
    // c is read flipped: were a's buffer c's too and overwritten, a later element would see it.
    const f = jit((a: Tensor, c: Tensor) => a.mul(2).add(c.flip(0)), { donateArgnums: 0 });
    const a = tensor([1, 2, 3, 4]);
    const view = a.reshape([2, 2]);
    const out = f(a, tensor([10, 10, 10, 10]));
    assert.deepEqual(Array.from(await out.data()), [12, 14, 16, 18]);
    assert.ok(a.disposed, "the donated tensor is disposed");
    assert.deepEqual(Array.from(await view.data()), [1, 2, 3, 4], "its view keeps its values");
    assert.equal(f.stats.donated, 0);
    const b = tensor([1, 2, 3, 4]);
    const twice = f(b, b);
    assert.deepEqual(Array.from(await twice.data()), [6, 7, 8, 9], "a passed twice");
    assert.equal(f.stats.donated, 0);
    disposeTree([out, view, twice]);
  },
);

testBoth(
  "jit donateArgnums: under grad the donation is ignored (the arguments are traced) and the " +
    "caller's tensors stay alive; bad argnums are refused",
  async () => {
    const f = jit((w: Tensor) => w.mul(w).sum(), { donateArgnums: 0 });
    const w = tensor([1, 2, 3]);
    const g = grad(f)(w);
    assert.deepEqual(Array.from(await g.data()), [2, 4, 6]);
    assert.ok(!w.disposed, "w is the caller's");
    assert.throws(() => jit((x: Tensor) => x, { donateArgnums: -1 }), /donateArgnums entries/);
    assert.throws(
      () => jit((x: Tensor) => x, { donateArgnums: 0, staticArgnums: 0 }),
      /argument 0 is in both staticArgnums and donateArgnums/,
    );
    disposeTree([w, g]);
  },
);

testBoth(
  "jit: intermediates live in buffers the program keeps, coloured by liveness (values whose " +
    "lifetimes do not overlap share one), and a warm call allocates none",
  async (b) => {
    // Four products in a row: each result is read only by the next kernel.
    const w = randomNormal([5, 5], { seed: 9, std: 0.3 });
    const f = (x: Tensor) => {
      let y = x;
      for (let i = 0; i < 4; i++) y = y.matmul(w).tanh();
      return y.sum();
    };
    const x = randomNormal([6, 5], { seed: 7, std: 0.3 });
    if (compiles(b)) {
      const program = compileProgram(makeTrace(f, x), new Set(), resolveBackend(b));
      const { slotOf, slots } = program.buffers;
      assert.equal(slotOf.size, 4, "four intermediate results");
      assert.equal(slots, 2, "in two buffers: a result and the one it is computed from");
      program.release();
    }
    const jitted = jit(f);
    const want = f(x);
    for (let i = 0; i < 3; i++) {
      const before = memoryStats().liveBuffers;
      const got = jitted(x);
      assertClose(await got.item(), await want.item(), { rtol: 1e-5, label: `call ${i}` });
      got.dispose();
      if (i > 0) assert.equal(memoryStats().liveBuffers, before, "a warm call keeps no more");
    }
    disposeTree([x, w, want]);
  },
);

testBoth(
  "jit: the buffers a program keeps (intermediates, uploaded constants) are freed when the " +
    "jitted function is collected",
  async (b) => {
    if (!gc || !compiles(b)) return;
    const x = randomNormal([6, 5], { seed: 8 });
    await settleGarbage();
    const before = memoryStats().liveBuffers;
    (() => {
      const c = [1, 2, 3, 4, 5];
      const jitted = jit((x: Tensor) => x.exp().sum(1).mul(2).sum().add(tensor(c).sum()));
      jitted(x).dispose();
      assert.ok(memoryStats().liveBuffers > before, "the program keeps its intermediates");
    })();
    for (let round = 0; round < 20 && memoryStats().liveBuffers > before; round++) {
      await settleGarbage();
    }
    assert.equal(memoryStats().liveBuffers, before);
    x.dispose();
  },
);

testBoth(
  "jit: a donated training step binds the same buffers every warm call (WebGPU: no new bind " +
    "group, no new buffer)",
  async (b) => {
    const { params, x, labels } = mlp();
    const step = jit(sgdStep, { donateArgnums: 0 });
    const stats = (resolveBackend(b) as unknown as { stats?: { bindGroupsCreated: number } })
      .stats;
    await sync();
    trimMemory();
    let p = params;
    const created: number[] = [];
    let live = 0;
    for (let i = 0; i < 30; i++) {
      const groups = stats?.bindGroupsCreated ?? 0;
      const [loss, next] = step(p, x, labels);
      p = next;
      loss.dispose();
      created.push((stats?.bindGroupsCreated ?? 0) - groups);
      if (i === 4) live = memoryStats().liveBuffers;
      if (i % 10 === 9) await sync();
    }
    assert.equal(memoryStats().liveBuffers, live, "live buffers over warm steps");
    if (stats) {
      assert.deepEqual(created.slice(10), new Array(20).fill(0), `bind groups: ${created}`);
    }
    disposeTree([p, x, labels]);
  },
);

testBoth(
  "jit: the peak memory of jitted training steps is at most eager's, and donating the " +
    "parameters saves at least a copy of the largest one (the new one is written over the old)",
  async (b) => {
    if (!compiles(b)) return;
    const { x, labels } = mlp();
    const w1Bytes = 64 * 32 * 4;
    const peakOf = async (step: (p: Params) => [Tensor, Params]) => {
      let p = mlp().params;
      await sync();
      const base = memoryStats().liveBytes;
      resetPeakMemory();
      for (let i = 0; i < 5; i++) {
        const [loss, next] = step(p);
        disposeTree([p, loss]);
        p = next;
      }
      const peak = memoryStats().peakBytes - base;
      disposeTree(p);
      return peak;
    };
    const eager = await peakOf((p) => tidy(() => sgdStep(p, x, labels)));
    const jitted = await peakOf(jit((p: Params) => sgdStep(p, x, labels)));
    const donated = await peakOf(jit((p: Params) => sgdStep(p, x, labels), { donateArgnums: 0 }));
    assert.ok(jitted <= eager, `jit's peak ${jitted} B, eager's ${eager} B`);
    assert.ok(
      donated + w1Bytes <= jitted,
      `donated ${donated} B, not ${w1Bytes} B below ${jitted} B`,
    );
    disposeTree([x, labels]);
  },
);

testBoth(
  "jit: a function's programs for different signatures share their kept buffers, and " +
    "trimMemory() frees them",
  (b) => {
    const x = randomNormal([64, 64], { seed: 10 });
    const f = jit((x: Tensor, s: number) => x.matmul(x).exp().mul(s).matmul(x).sum(0), {
      staticArgnums: 1,
    });
    const live: number[] = [];
    for (let s = 0; s < 6; s++) {
      f(x, s).dispose();
      live.push(memoryStats().liveBytes);
    }
    assert.deepEqual(live, new Array(6).fill(live[0]), "live bytes after each new signature");
    trimMemory();
    const kept = memoryStats().liveBytes;
    x.dispose();
    assert.equal(memoryStats().liveBytes, kept - 64 * 64 * 4, "only x was left");
    if (compiles(b)) assert.ok(live[0] > kept, "the programs kept buffers until the trim");
  },
);

testBoth(
  "jit: every result is a tensor of its own, on every backend: an input returned as it is, " +
    "or a value returned twice, can be disposed apart",
  async () => {
    const f = jit((x: Tensor) => [x, x.add(1), x, x.add(1)]);
    const x = tensor([1, 2]);
    const [a, b, c, d] = f(x);
    assert.ok(a !== x && c !== a && d !== b, "distinct objects");
    a.dispose();
    b.dispose();
    assert.deepEqual(Array.from(await c.data()), [1, 2]);
    assert.deepEqual(Array.from(await d.data()), [2, 3]);
    assert.deepEqual(Array.from(await x.data()), [1, 2], "the argument is the caller's");
    disposeTree([c, d, x]);
  },
);
