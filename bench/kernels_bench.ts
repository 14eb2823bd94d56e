/**
 * Kernel benchmarks, one group per kernel path, each on WebGPU and on the
 * CPU reference backend (the group baseline), plus the cost of an empty
 * `sync()`:
 *
 * - square f32 matmul at 256, 512 and 1024, and 512 with a transposed
 *   operand (read in place, no copy);
 * - elementwise over 16M (2^24) elements: add, exp, and a bias add
 *   `[4096, 4096] + [4096]` (a broadcast row);
 * - a full sum over 16M elements (chunked two-stage reduction);
 * - gather: 1M single elements of a 1M vector, and 100k rows of 64 floats;
 *   pad of a transposed (strided) 2048² view;
 * - add and sum over 16M elements in float32, float16, int32 and int8
 *   (WebGPU only, float32 as the group baseline);
 * - 1000 dependent adds on 16 elements, then one read (per-op overhead).
 *
 * Each bench queues `×K` ops and waits once (see `_common.ts`), so the time
 * per op is `time/iter ÷ K`; K keeps the ~11 ms sync floor a small part of
 * each WebGPU iteration. Derived figures: matmul GFLOP/s = 2·n³ / time per
 * op; add GB/s = 12·n / time per op (two reads, one write), exp and bias add
 * 8·n; sum GB/s = 4·n / time per op.
 *
 * Run: `deno task bench` (set `XDG_RUNTIME_DIR` where Mesa needs it); the
 * side-by-side comparison with other libraries is `deno task bench:peers`.
 * @module
 */

import { available, bench, benchQueued, LeakCheck, printHeader } from "./_common.ts";
import { type DType, pad, randomNormal, sync, type Tensor, tensor, tidy } from "../mod.ts";
// Internal, bench-only: which dtypes the adapter can store.
import { resolveBackend } from "../src/backends.ts";

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
  { size: 256, k: 40, gpu: { n: 20, warmup: 2 }, cpu: { n: 3, warmup: 1 } },
  { size: 512, k: 8, gpu: { n: 20, warmup: 2 }, cpu: { n: 2, warmup: 1 } },
  { size: 1024, k: 2, gpu: { n: 15, warmup: 1 }, cpu: { n: 1, warmup: 1 } },
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
    runs: { webgpu: gpu, wasm: gpu, cpu },
  });
}

benchQueued({
  name: "matmul Aᵀ·B 512",
  group: "matmul 512 f32, A transposed (strided view, no copy)",
  k: 8,
  setup: (backend) => ({
    a: randomNormal([512, 512], { seed: 1, backend }),
    b: randomNormal([512, 512], { seed: 2, backend }),
  }),
  op: ({ a, b }) => tidy(() => a.transpose().matmul(b)),
  runs: { webgpu: { n: 20, warmup: 2 }, wasm: { n: 10, warmup: 2 }, cpu: { n: 2, warmup: 1 } },
});

// ---- elementwise and reduction over 16M elements -----------------------------

const N = 1 << 24;
const ROW = 4096;
const LARGE = {
  webgpu: { n: 15, warmup: 2 },
  wasm: { n: 10, warmup: 2 },
  cpu: { n: 5, warmup: 1 },
};

benchQueued({
  name: "add 16M",
  group: "add 16M f32",
  k: 8,
  setup: (backend) => ({
    x: randomNormal([N], { seed: 3, backend }),
    y: randomNormal([N], { seed: 4, backend }),
  }),
  op: ({ x, y }) => x.add(y),
  runs: LARGE,
});

benchQueued({
  name: "exp 16M",
  group: "exp 16M f32",
  k: 8,
  setup: (backend) => randomNormal([N], { seed: 5, backend }),
  op: (x) => x.exp(),
  runs: LARGE,
});

benchQueued({
  name: "bias add [4096,4096]+[4096]",
  group: "bias add 16M f32 (broadcast row)",
  k: 8,
  setup: (backend) => ({
    x: randomNormal([N / ROW, ROW], { seed: 6, backend }),
    b: randomNormal([ROW], { seed: 7, backend }),
  }),
  op: ({ x, b }) => x.add(b),
  runs: LARGE,
});

benchQueued({
  name: "sum 16M",
  group: "sum 16M f32",
  k: 8,
  setup: (backend) => randomNormal([N], { seed: 8, backend }),
  op: (x) => x.sum(),
  runs: LARGE,
});

// ---- gather: one element per index (takeAlongAxis, a flat take) and whole rows ----------

const PICKS = 1 << 20;
benchQueued({
  name: "take 1M of 1M",
  group: "gather: take 1M scalars (rows of one f32)",
  k: 8,
  setup: (backend) => ({
    x: randomNormal([PICKS], { seed: 9, backend }),
    ids: tensor(Int32Array.from({ length: PICKS }, (_, i) => (i * 7919) % PICKS), { backend }),
  }),
  op: ({ x, ids }) => x.take(ids),
  runs: LARGE,
});

benchQueued({
  name: "take 100k rows of [10000, 64]",
  group: "gather: take 100k rows of 64 f32 (an embedding lookup)",
  k: 8,
  setup: (backend) => ({
    x: randomNormal([10_000, 64], { seed: 10, backend }),
    ids: tensor(Int32Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 10_000), { backend }),
  }),
  op: ({ x, ids }) => x.take(ids, 0),
  runs: LARGE,
});

benchQueued({
  name: "pad 2048² transposed by 1",
  group: "pad: a transposed [2048, 2048] by one on each side",
  k: 4,
  setup: (backend) => randomNormal([2048, 2048], { seed: 11, backend }),
  op: (x) => tidy(() => pad(x.transpose(), [1, 1])),
  runs: LARGE,
});

// ---- dtypes: the same add and sum in every numeric dtype (WebGPU) -----------------

// float16 halves the bytes moved; int8 is stored widened to 32 bits, so it
// moves as many as int32 and pays a wrap on every store.
const GPU_DTYPES: DType[] = ["float32", "float16", "int32", "int8"];
for (
  const [label, op] of [["add", (x: Tensor) => x.add(x)], ["sum", (x: Tensor) => x.sum()]] as const
) {
  for (const dtype of GPU_DTYPES) {
    benchQueued({
      name: `${label} 16M ${dtype}`,
      group: `${label} 16M by dtype (webgpu)`,
      k: 8,
      setup: (backend) =>
        tidy(() => randomNormal([N], { seed: 11, backend }).mul(50).astype(dtype)),
      op,
      runs: { webgpu: { n: 15, warmup: 2 } },
      baseline: dtype === "float32",
      ignore: available("webgpu") && !resolveBackend("webgpu").dtypes.includes(dtype),
    });
  }
}

// ---- per-op overhead: a long chain of tiny dependent ops ------------------------

for (const backend of ["webgpu", "cpu"] as const) {
  const name = `1000 dependent adds on 16 elements + one read [${backend}]`;
  let inputs: { x: Tensor; y: Tensor } | null = null;
  const leaks = new LeakCheck(name);
  bench({
    name,
    group: "1000 dependent tiny adds",
    baseline: backend === "cpu",
    ignore: !available(backend),
    n: 20,
    warmup: 2,
    async fn(b) {
      inputs ??= {
        x: randomNormal([16], { seed: 9, backend }),
        y: randomNormal([16], { seed: 10, backend }),
      };
      const { x, y } = inputs;
      b.start();
      let acc = x.add(y);
      for (let i = 1; i < 1000; i++) {
        const next = acc.add(y);
        acc.dispose();
        acc = next;
      }
      await acc.data();
      b.end();
      acc.dispose();
      leaks.check();
    },
  });
}

// After registration, so the header can name the ignored benches.
printHeader("bench/kernels_bench.ts");
