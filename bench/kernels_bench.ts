/**
 * Kernel benchmarks: square f32 matmul at 256, 512 and 1024, elementwise add
 * over 1M (2^20) elements and a full sum over 1M elements, each on WebGPU
 * and on the CPU reference backend (the group baseline), plus the cost of an
 * empty `sync()`.
 *
 * Each bench queues `×K` ops and waits once (see `_common.ts`), so the time
 * per op is `time/iter ÷ K`. Derived figures:
 * matmul GFLOP/s = 2·n³ / time per op; add GB/s = 3·4·n / time per op (two
 * reads, one write); sum GB/s = 4·n / time per op.
 *
 * K is chosen per size so the ~10 ms sync floor is small next to the queued
 * work on WebGPU while a CPU iteration stays under ~2 s: at 1024 one matmul
 * already takes ~40× the floor on the software adapter, so K = 1.
 *
 * Run: `deno task bench` (set `XDG_RUNTIME_DIR` where Mesa needs it).
 * @module
 */

import { available, bench, benchQueued, printHeader } from "./_common.ts";
import { randomNormal, sync } from "../mod.ts";

// ---- sync floor ---------------------------------------------------------------

bench({
  name: "sync() with nothing queued [webgpu]",
  group: "sync floor",
  ignore: !available("webgpu"),
  n: 20,
  warmup: 2,
  async fn(b) {
    b.start();
    await sync();
    b.end();
  },
});

// ---- matmul -------------------------------------------------------------------

const MATMUL = [
  { size: 256, k: 10, gpu: { n: 40, warmup: 3 }, cpu: { n: 6, warmup: 1 } },
  { size: 512, k: 4, gpu: { n: 40, warmup: 2 }, cpu: { n: 3, warmup: 1 } },
  { size: 1024, k: 1, gpu: { n: 25, warmup: 1 }, cpu: { n: 2, warmup: 1 } },
] as const;

for (const { size, k, gpu, cpu } of MATMUL) {
  benchQueued({
    name: `matmul ${size}`,
    group: `matmul ${size}x${size}x${size} f32`,
    k,
    setup: (backend) => ({
      a: randomNormal([size, size], { seed: 1, backend }),
      b: randomNormal([size, size], { seed: 2, backend }),
    }),
    op: ({ a, b }) => a.matmul(b),
    runs: { webgpu: gpu, cpu },
  });
}

// ---- elementwise and reduction over 1M elements -----------------------------

const N = 1 << 20;

benchQueued({
  name: "add 1M",
  group: "add 1M f32",
  k: 10,
  setup: (backend) => ({
    x: randomNormal([N], { seed: 3, backend }),
    y: randomNormal([N], { seed: 4, backend }),
  }),
  op: ({ x, y }) => x.add(y),
  runs: { webgpu: { n: 100, warmup: 3 }, cpu: { n: 20, warmup: 2 } },
});

benchQueued({
  name: "sum 1M",
  group: "sum 1M f32",
  k: 10,
  setup: (backend) => randomNormal([N], { seed: 5, backend }),
  op: (x) => x.sum(),
  runs: { webgpu: { n: 100, warmup: 3 }, cpu: { n: 20, warmup: 2 } },
});

// After registration, so the header can name the ignored benches.
printHeader("bench/kernels_bench.ts");
