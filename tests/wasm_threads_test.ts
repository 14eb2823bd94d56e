/**
 * The wasm backend's threads: large kernels are split across the main
 * thread and workers, and every result is bitwise the same as on one thread.
 * @module
 */

import assert from "node:assert/strict";
import {
  backendInfo,
  disposeTree,
  jit,
  memoryStats,
  randomNormal,
  randomUniform,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  useBackend,
  valueAndGrad,
  where,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import type { ThreadPool } from "../src/wasm/threads.ts";

const pool = (): ThreadPool =>
  (resolveBackend("wasm") as unknown as { threads: ThreadPool }).threads;

/** Runs `fn` with the wasm backend on 2 threads (the worker started), then restores the count. */
async function onTwoThreads(fn: (threads: ThreadPool) => Promise<void>): Promise<void> {
  const threads = pool();
  const before = threads.wantedThreads;
  try {
    threads.setThreads(2);
    assert.equal(await threads.ready(), 2, "the worker did not start");
    await fn(threads);
  } finally {
    threads.setThreads(before);
  }
}

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

/** Workloads large enough to be split (each returns the tensors to compare). */
function workloads(): [string, () => Tensor[]][] {
  const o = { backend: "wasm" as const };
  const x = randomNormal([600, 300], { seed: 1, ...o });
  const y = randomNormal([300], { seed: 2, ...o });
  const big = randomNormal([1 << 17], { seed: 3, ...o }).mul(20);
  const ints = randomUniform([400, 400], { seed: 4, ...o }).mul(1000).astype("int32");
  const a = randomNormal([256, 300], { seed: 5, ...o });
  const b = randomNormal([300, 200], { seed: 6, ...o });
  const batchA = randomNormal([3, 100, 64], { seed: 7, ...o });
  const batchB = randomNormal([3, 64, 90], { seed: 8, ...o });
  const params: Params = {
    w1: randomNormal([784, 128], { seed: 9, std: 0.05, ...o }),
    b1: randomNormal([128], { seed: 10, std: 0.05, ...o }),
    w2: randomNormal([128, 10], { seed: 11, std: 0.1, ...o }),
    b2: randomNormal([10], { seed: 12, std: 0.1, ...o }),
  };
  const images = randomNormal([512, 784], { seed: 13, ...o });
  const labels = tensor(Array.from({ length: 512 }, (_, i) => (i * 7) % 10), {
    dtype: "int32",
    ...o,
  });
  const loss = (p: Params, x: Tensor, labels: Tensor) =>
    softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);
  const step = jit((p: Params, x: Tensor, labels: Tensor): [Tensor, Params] => {
    const [value, grads] = valueAndGrad(loss)(p, x, labels);
    return [value, sgd(p, grads, { lr: 0.1 })];
  });
  return [
    ["broadcast add", () => [x.add(y)]],
    [
      "exp, sigmoid, tanh of a transposed view",
      () => [x.exp(), big.sigmoid(), x.transpose().tanh()],
    ],
    ["where and comparisons", () => [where(big.gt(0), big, big.mul(-0.5))]],
    ["int32 arithmetic", () => [ints.mul(ints).sub(ints.floorDiv(7)), ints.maximum(300)]],
    ["sums and maxima over each axis", () => [x.sum(0), x.max(1), big.reshape([512, 256]).sum(1)]],
    [
      "whole-array reductions (in 16 pieces)",
      () => [big.sum(), big.max(), ints.reshape([-1]).sum(), big.reshape([2, -1]).min(1)],
    ],
    ["matmul", () => [a.matmul(b), a.matmul(a.transpose()), b.transpose().matmul(b)]],
    ["batched matmul", () => [batchA.matmul(batchB)]],
    ["a jitted MLP training step", () => {
      const [value, next] = step(params, images, labels);
      return [value, next.w1, next.b1, next.w2, next.b2];
    }],
  ];
}

async function bits(ts: Tensor[]): Promise<Uint32Array[]> {
  const out: Uint32Array[] = [];
  for (const t of ts) {
    const d = await t.data();
    out.push(
      d instanceof Float32Array ? new Uint32Array(d.buffer, d.byteOffset, d.length) : Uint32Array
        .from(d as ArrayLike<number>),
    );
  }
  return out;
}

Deno.test("wasm threads: every result is bitwise the one-thread result, and workers ran slices", () =>
  onTwoThreads(async (threads) => {
    for (const [name, run] of workloads()) {
      threads.setThreads(1);
      const one = run();
      const single = await bits(one);
      threads.setThreads(2);
      const slicesBefore = threads.stats.workerSlices;
      const two = run();
      const parallel = await bits(two);
      assert.ok(threads.stats.workerSlices > slicesBefore, `${name}: no slice ran on a worker`);
      assert.equal(parallel.length, single.length);
      parallel.forEach((p, i) => {
        assert.equal(p.length, single[i].length, name);
        const at = p.findIndex((v, j) => v !== single[i][j]);
        assert.equal(at, -1, `${name}, output ${i}: element ${at} differs between 1 and 2 threads`);
      });
      disposeTree([one, two]);
    }
  }));

Deno.test("wasm threads: small kernels stay on the main thread", () =>
  onTwoThreads(async (threads) => {
    const runs = threads.stats.parallelRuns;
    const x = tensor([1, 2, 3], { backend: "wasm" });
    const y = x.mul(2).add(1).sum();
    assert.equal(await y.item(), 15);
    assert.equal(threads.stats.parallelRuns, runs);
    disposeTree([x, y]);
  }));

Deno.test("wasm threads: useBackend sets the count, says it, and refuses it elsewhere", () => {
  const threads = pool();
  const before = threads.wantedThreads;
  const previous = backendInfo().name;
  try {
    assert.equal(useBackend("wasm", { threads: 1 }).adapter, "WebAssembly SIMD (1 thread)");
    assert.equal(useBackend("wasm", { threads: 2 }).adapter, "WebAssembly SIMD (2 threads)");
    assert.throws(() => useBackend("cpu", { threads: 2 }), /'threads' applies to the 'wasm'/);
    assert.throws(() => useBackend("wasm", { threads: 0 }), /positive integer, got 0/);
    assert.throws(() => useBackend("wasm", { threads: 1.5 }), /positive integer, got 1.5/);
  } finally {
    threads.setThreads(before);
    useBackend(previous);
  }
});

Deno.test("wasm: a long reduction to few outputs (two passes) matches the float64 reference", async () => {
  const n = 1 << 18;
  const data = new Float32Array(n);
  let seed = 7;
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    data[i] = seed / 2 ** 32 - 0.3;
  }
  let exact = 0;
  let max = -Infinity;
  for (const v of data) {
    exact += v;
    max = Math.max(max, v);
  }
  const x = tensor(data, { backend: "wasm" });
  x.sum().dispose();
  const live = memoryStats().liveBytes;
  for (let i = 0; i < 3; i++) x.sum().dispose();
  assert.equal(memoryStats().liveBytes, live, "the two passes leave nothing behind");
  const [sum, biggest, halves] = [x.sum(), x.max(), x.reshape([2, n / 2]).sum(1)];
  assert.ok(
    Math.abs((await sum.item()) - exact) <= 1e-6 * n * 0.5,
    `sum ${await sum.item()} vs ${exact}`,
  );
  assert.equal(await biggest.item(), max);
  let firstHalf = 0;
  for (let i = 0; i < n / 2; i++) firstHalf += data[i];
  assert.ok(Math.abs((await halves.data())[0] - firstHalf) <= 1e-6 * n * 0.25);
  disposeTree([x, sum, biggest, halves]);
});

Deno.test("wasm threads: thousands of back-to-back parallel kernels all complete (no lost wake-up)", () =>
  onTwoThreads(async (threads) => {
    const x = randomNormal([1 << 16], { seed: 21, backend: "wasm" });
    const runs = threads.stats.parallelRuns;
    let y = x.mul(0);
    for (let i = 0; i < 3000; i++) {
      const next = y.add(x);
      y.dispose();
      y = next;
    }
    assert.equal(threads.stats.parallelRuns - runs, 3001);
    const [got, want] = [await y.data(), await x.mul(3000).data()];
    assert.ok(got.every((v, i) => Math.abs(v - want[i]) <= 1e-3 * Math.max(1, Math.abs(want[i]))));
    disposeTree([x, y]);
  }));
