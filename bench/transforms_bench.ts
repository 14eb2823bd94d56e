/**
 * Transform benchmarks: `vmap` against the loop it replaces.
 *
 * - A 64×64 Jacobian by reverse mode: `jacrev` (one `vmap` of the pullback
 *   over the 64 basis vectors) against 64 pullbacks stacked (what `jacrev`
 *   did before `vmap`).
 * - Per-example gradients of an MLP loss for a batch of 32: `vmap(grad)`
 *   against 32 `grad` calls stacked (the DP-SGD inner step).
 *
 * Each iteration computes the result, reads it back, and disposes it. The
 * loop rows are the group baselines. Dispatches per call (WebGPU) are printed
 * once before the benches run.
 *
 * Run: `deno task bench` (set `XDG_RUNTIME_DIR` where Mesa needs it).
 * @module
 */

import {
  type BackendName,
  checkpoint,
  grad,
  jacrev,
  memoryStats,
  randomNormal,
  resetPeakMemory,
  stack,
  type Tensor,
  tensor,
  valueAndGrad,
  vjp,
  vmap,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import { available, BACKENDS, bench, fixture, LeakCheck, printIgnored } from "./_common.ts";

const N = 64;
const BATCH = 32;
const [IN, HIDDEN, OUT] = [32, 16, 4];

const layer = (w: Tensor) => (x: Tensor) => w.matmul(x).tanh();

/** 64 pullbacks of the basis vectors, stacked: `jacrev` before `vmap`. */
function jacobianByLoop(w: Tensor, x: Tensor): Tensor {
  const [y, pullback] = vjp(layer(w), x);
  const rows: Tensor[] = [];
  for (let i = 0; i < y.size; i++) {
    const values = new Float32Array(y.size);
    values[i] = 1;
    const e = tensor(values, { backend: y.backend });
    rows.push((pullback(e) as Tensor[])[0]);
    e.dispose();
  }
  const out = stack(rows);
  for (const r of rows) r.dispose();
  pullback.dispose();
  y.dispose();
  return out;
}

type Params = { w1: Tensor; w2: Tensor };
const loss = (p: Params, x: Tensor, label: Tensor) =>
  x.reshape([1, IN]).matmul(p.w1).tanh().matmul(p.w2).sub(label).square().sum();
const perExample = vmap(grad(loss), { inAxes: [null, 0, 0] });
function perExampleByLoop(p: Params, xs: Tensor, labels: Tensor): Params {
  const grads: Params[] = [];
  for (let b = 0; b < BATCH; b++) {
    const [x, l] = [xs.get(b), labels.get(b)];
    grads.push(grad(loss)(p, x, l));
    x.dispose();
    l.dispose();
  }
  const out = { w1: stack(grads.map((g) => g.w1)), w2: stack(grads.map((g) => g.w2)) };
  for (const g of grads) [g.w1, g.w2].forEach((t) => t.dispose());
  return out;
}

for (const backend of BACKENDS) {
  const inputs = fixture(() => ({
    w: randomNormal([N, N], { seed: 1, std: 0.2, backend }),
    x: randomNormal([N], { seed: 2, backend }),
    p: {
      w1: randomNormal([IN, HIDDEN], { seed: 3, std: 0.2, backend }),
      w2: randomNormal([HIDDEN, OUT], { seed: 4, std: 0.2, backend }),
    },
    xs: randomNormal([BATCH, IN], { seed: 5, backend }),
    labels: randomNormal([BATCH, 1, OUT], { seed: 6, backend }),
  }));
  const runs = backend === "webgpu" ? { n: 10, warmup: 2 } : { n: 5, warmup: 1 };
  const rows: [string, string, boolean, (s: Awaited<ReturnType<typeof inputs>>) => Tensor[]][] = [
    [`jacobian ${N}×${N} by ${N} pullbacks [${backend}]`, "jacobian", true, (s) => [
      jacobianByLoop(s.w, s.x),
    ]],
    [`jacobian ${N}×${N} by jacrev (vmap) [${backend}]`, "jacobian", false, (s) => [
      jacrev(layer(s.w))(s.x),
    ]],
    [`per-example grads ×${BATCH} by a loop [${backend}]`, "per-example", true, (s) => {
      const g = perExampleByLoop(s.p, s.xs, s.labels);
      return [g.w1, g.w2];
    }],
    [`per-example grads ×${BATCH} by vmap(grad) [${backend}]`, "per-example", false, (s) => {
      const g = perExample(s.p, s.xs, s.labels) as Params;
      return [g.w1, g.w2];
    }],
  ];
  for (const [name, group, baseline, run] of rows) {
    const leaks = new LeakCheck(name);
    bench({
      name,
      group: `${group} [${backend}]`,
      baseline,
      ignore: !available(backend),
      ...runs,
      async fn(b) {
        const s = await inputs();
        b.start();
        const out = run(s);
        await Promise.all(out.map((t) => t.data()));
        b.end();
        for (const t of out) t.dispose();
        leaks.check();
      },
    });
  }
}

/** Dispatches one call of `run` costs on WebGPU (printed, not timed). */
async function dispatches(run: () => Tensor[]): Promise<number> {
  const stats = (resolveBackend("webgpu") as unknown as { stats: { dispatches: number } }).stats;
  const before = stats.dispatches;
  const out = run();
  await Promise.all(out.map((t) => t.data()));
  for (const t of out) t.dispose();
  return stats.dispatches - before;
}

if (available("webgpu" as BackendName)) {
  const backend = "webgpu";
  const w = randomNormal([N, N], { seed: 1, std: 0.2, backend });
  const x = randomNormal([N], { seed: 2, backend });
  const p = {
    w1: randomNormal([IN, HIDDEN], { seed: 3, std: 0.2, backend }),
    w2: randomNormal([HIDDEN, OUT], { seed: 4, std: 0.2, backend }),
  };
  const xs = randomNormal([BATCH, IN], { seed: 5, backend });
  const labels = randomNormal([BATCH, 1, OUT], { seed: 6, backend });
  const counts = {
    "jacobian, loop": await dispatches(() => [jacobianByLoop(w, x)]),
    "jacobian, jacrev (vmap)": await dispatches(() => [jacrev(layer(w))(x)]),
    "per-example grads, loop": await dispatches(() =>
      Object.values(perExampleByLoop(p, xs, labels))
    ),
    "per-example grads, vmap(grad)": await dispatches(() =>
      Object.values(perExample(p, xs, labels) as Params)
    ),
  };
  console.log("bench/transforms_bench.ts: WebGPU dispatches per call:", counts);
  for (const t of [w, x, p.w1, p.w2, xs, labels]) t.dispose();
}

/**
 * Peak memory of `valueAndGrad` through an 8-layer MLP (width 128, batch
 * 128), with and without one checkpoint per layer (printed, not timed).
 */
async function checkpointPeaks(backend: BackendName): Promise<Record<string, string>> {
  const ws = Array.from(
    { length: 8 },
    (_, i) => randomNormal([128, 128], { seed: i, std: 0.08, backend }),
  );
  const x = randomNormal([128, 128], { seed: 99, backend });
  const layer = (w: Tensor, h: Tensor) => h.matmul(w).tanh().mul(1.5).sigmoid();
  const saved = checkpoint(layer);
  const peak = async (f: typeof layer) => {
    resetPeakMemory();
    const base = memoryStats().peakBytes;
    const [value, grads] = valueAndGrad((ws: Tensor[]) => ws.reduce((h, w) => f(w, h), x).sum())(
      ws,
    );
    await value.data();
    const bytes = memoryStats().peakBytes - base;
    for (const t of [value, ...(grads as Tensor[])]) t.dispose();
    return bytes;
  };
  const [plain, remat] = [await peak(layer), await peak(saved)];
  for (const t of [...ws, x]) t.dispose();
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  return {
    plain: mb(plain),
    checkpointed: mb(remat),
    ratio: `${(100 * remat / plain).toFixed(0)}%`,
  };
}

for (const backend of BACKENDS) {
  if (!available(backend)) continue;
  console.log(
    `bench/transforms_bench.ts: checkpoint peak memory [${backend}]:`,
    await checkpointPeaks(backend),
  );
}

printIgnored("bench/transforms_bench.ts");
