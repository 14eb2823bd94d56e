/**
 * The wasm backend on 1 thread against all of the machine's cores: matmul,
 * elementwise ops and a sum over 16M elements, and a jitted MLP training
 * step. One group per workload, the 1-thread run its baseline; results are
 * the same for every thread count (`tests/wasm_threads_test.ts`), so only
 * time changes. The slices run by workers are printed at the end.
 *
 * Run: `deno bench --env-file=tasks.env bench/threads_bench.ts` (alone: the
 * figures are the speed-up from the second core).
 * @module
 */

import {
  disposeTree,
  jit,
  randomNormal,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  useBackend,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import type { ThreadPool } from "../src/wasm/threads.ts";
import { fixture, LeakCheck } from "./_common.ts";

const pool = (resolveBackend("wasm") as unknown as { threads: ThreadPool }).threads;
const CORES = Math.max(1, Math.min(16, navigator.hardwareConcurrency ?? 1));
const counts = [...new Set([1, CORES])];
const o = { backend: "wasm" as const };

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };
const loss = (p: Params, x: Tensor, labels: Tensor): Tensor =>
  softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);
const step = jit((p: Params, x: Tensor, labels: Tensor): [Tensor, Params] => {
  const [value, grads] = valueAndGrad(loss)(p, x, labels);
  return [value, sgd(p, grads, { lr: 0.05 })];
});

const inputs = fixture(() => ({
  a512: randomNormal([512, 512], { seed: 1, ...o }),
  a1024: randomNormal([1024, 1024], { seed: 2, ...o }),
  x: randomNormal([1 << 24], { seed: 3, ...o }),
  y: randomNormal([1 << 24], { seed: 4, ...o }),
  params: {
    w1: randomNormal([784, 128], { seed: 5, std: 0.05, ...o }),
    b1: zeros([128], o),
    w2: randomNormal([128, 10], { seed: 6, std: 0.1, ...o }),
    b2: zeros([10], o),
  } as Params,
  images: randomNormal([128, 784], { seed: 7, ...o }),
  labels: tensor(Array.from({ length: 128 }, (_, i) => (i * 7) % 10), { dtype: "int32", ...o }),
}));

type Inputs = Awaited<ReturnType<typeof inputs>>;
const rows: [string, number, (s: Inputs) => Tensor[]][] = [
  ["matmul f32 512³", 20, (s) => [s.a512.matmul(s.a512)]],
  ["matmul f32 1024³", 5, (s) => [s.a1024.matmul(s.a1024)]],
  ["add 16M f32", 10, (s) => [s.x.add(s.y)]],
  ["exp 16M f32", 10, (s) => [s.x.exp()]],
  ["sum 16M f32", 20, (s) => [s.x.sum()]],
  ["MLP step 784→128→10 batch 128 (jit)", 50, (s) => {
    const [value, next] = step(s.params, s.images, s.labels);
    return [value, next.w1, next.b1, next.w2, next.b2];
  }],
];

for (const [work, n, run] of rows) {
  for (const threads of counts) {
    const name = `${work} [wasm, ${threads} thread${threads === 1 ? "" : "s"}]`;
    const leaks = new LeakCheck(name);
    Deno.bench({
      name,
      group: work,
      baseline: threads === 1,
      n,
      warmup: 5,
      async fn(b) {
        const s = await inputs();
        useBackend("wasm", { threads });
        await pool.ready();
        b.start();
        const out = run(s);
        b.end();
        disposeTree(out);
        leaks.check();
      },
    });
  }
}

globalThis.addEventListener("unload", () => {
  useBackend("wasm", { threads: CORES });
  console.log(
    `\nwasm threads: ${pool.stats.parallelRuns} parallel kernel runs, ` +
      `${pool.stats.workerSlices} slices run by workers (${CORES} cores)`,
  );
});
