/**
 * End-to-end benchmark: MLP training steps (784→128→10, ReLU, batch 128,
 * softmax cross-entropy), each `valueAndGrad` + `sgd`, on WebGPU and on the
 * CPU reference backend (the group baseline).
 *
 * Each step runs eagerly (one kernel per primitive) and under `jit` (on
 * WebGPU, a program of fused kernels; on the CPU, a replay of the trace).
 * Each iteration queues `×K` steps, carrying the parameters from step to
 * step like a training loop, reads the loss back every 10 steps without
 * awaiting it in the loop (reads are pipelined behind later steps), then
 * waits once for those reads and `sync()`; the time per step is
 * `time/iter ÷ K`. One step is ≈ 52.4 MFLOP of matmul
 * (forward 26.0, weight and hidden gradients 26.3; no gradient for the
 * input), which gives a rough GFLOP/s figure.
 *
 * Run: `deno task bench` (set `XDG_RUNTIME_DIR` where Mesa needs it).
 * @module
 */

import {
  type BackendName,
  disposeTree,
  jit,
  randomNormal,
  sgd,
  softmaxCrossEntropy,
  sync,
  type Tensor,
  tensor,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import {
  available,
  BACKENDS,
  bench,
  fixture,
  LeakCheck,
  printIgnored,
  type Runs,
} from "./_common.ts";

const BATCH = 128;
const [IN, HIDDEN, OUT] = [784, 128, 10];
/** Training steps queued per iteration. */
const K = 20;
/** The loss is read back every this many steps. */
const READ_EVERY = 10;
const RUNS: Record<BackendName, Runs> = {
  webgpu: { n: 20, warmup: 2 },
  wasm: { n: 10, warmup: 2 },
  cpu: { n: 3, warmup: 1 },
};

// A type alias, not an interface: `sgd<P extends Tree>` needs the implicit
// index signature that only type aliases get.
type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

const loss = (p: Params, x: Tensor, labels: Tensor): Tensor =>
  softmaxCrossEntropy(
    x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2),
    labels,
  );

const step = valueAndGrad(loss);
/** One whole training step under `jit`: loss, gradients and the SGD update. */
const jitted = jit((p: Params, x: Tensor, labels: Tensor): [Tensor, Params] => {
  const [value, grads] = step(p, x, labels);
  return [value, sgd(p, grads, { lr: 0.05 })];
});

for (const [backend, compiled] of BACKENDS.flatMap((b) => [[b, false], [b, true]] as const)) {
  const name = `mlp step ${IN}→${HIDDEN}→${OUT} batch ${BATCH} ×${K} [${backend}${
    compiled ? ", jit" : ""
  }]`;
  // Inputs and initial parameters: created once, before any timed region.
  const state = fixture(() => ({
    params: {
      w1: randomNormal([IN, HIDDEN], { seed: 1, std: 0.05, backend }),
      b1: zeros([HIDDEN], { backend }),
      w2: randomNormal([HIDDEN, OUT], { seed: 2, std: 0.1, backend }),
      b2: zeros([OUT], { backend }),
    } as Params,
    x: randomNormal([BATCH, IN], { seed: 3, backend }),
    labels: tensor(
      Int32Array.from({ length: BATCH }, (_, i) => (i * 7) % OUT),
      { backend },
    ),
  }));
  const leaks = new LeakCheck(name);
  bench({
    name,
    group: "mlp training step",
    baseline: backend === "cpu" && !compiled,
    ignore: !available(backend),
    ...RUNS[backend],
    async fn(b) {
      const s = await state();
      const reads: Promise<ArrayLike<number>>[] = [];
      b.start();
      for (let i = 0; i < K; i++) {
        let value: Tensor;
        if (compiled) {
          let next: Params;
          [value, next] = jitted(s.params, s.x, s.labels);
          disposeTree(s.params);
          s.params = next;
        } else {
          let grads: Params;
          [value, grads] = step(s.params, s.x, s.labels);
          const next = sgd(s.params, grads, { lr: 0.05 });
          disposeTree([s.params, grads]);
          s.params = next;
        }
        if ((i + 1) % READ_EVERY === 0) reads.push(value.data().finally(() => value.dispose()));
        else value.dispose();
      }
      await Promise.all(reads);
      await sync();
      b.end();
      leaks.check();
    },
  });
}

// The adapter header is printed once, by kernels_bench.ts; here only what
// was ignored, since Deno's reporter does not list ignored benches.
printIgnored("bench/mlp_bench.ts");
