/**
 * The WebGPU kernel variants (and the wasm backend's) against the CPU reference backend: every path
 * the backend can choose (vec4 or scalar elementwise, row broadcasts and
 * strided inputs, reduction strategies around their thresholds and past the
 * 65,535-workgroup limit, matmul register blocks with and without bounds
 * checks, transposed operands read without a copy, batches), plus the
 * execution machinery (the args ring across submits, uploads interleaved
 * with recorded work, buffer reuse once warm).
 *
 * Each case builds the same computation from the same data on both backends
 * and compares. Registered as ignored (never silently skipped) where WebGPU
 * has no adapter.
 */

import assert from "node:assert/strict";
import {
  availableBackends,
  type BackendName,
  disposeTree,
  type DType,
  DTYPES,
  memoryStats,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  valueAndGrad,
  where,
} from "../mod.ts";
import { assertClose, settleGarbage } from "./_helpers.ts";

/** The backend a test compares with the CPU reference. */
let underTest: BackendName = "webgpu";

/**
 * Registers a test comparing each kernel backend (WebGPU, wasm) with the
 * CPU reference, ignored where a backend is missing.
 */
function gpuTest(name: string, fn: () => Promise<void>): void {
  for (const backend of ["webgpu", "wasm"] as const) {
    Deno.test({
      name: `${name} [${backend} vs cpu]`,
      ignore: !availableBackends().includes(backend),
      async fn() {
        underTest = backend;
        await settleGarbage(); // earlier tests' dropped tensors are finalized before, not during
        await fn();
      },
    });
  }
}

/** Deterministic values in [-1, 1) (an LCG), the same on both backends. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Positive values in [lo, hi). */
function positive(n: number, seed: number, lo = 0.5, hi = 3): Float32Array {
  return values(n, seed).map((v) => lo + (v + 1) / 2 * (hi - lo));
}

/**
 * Runs `build` on both backends with the same host inputs and compares the
 * results. `build` gets the inputs as tensors on one backend.
 */
async function compare(
  label: string,
  inputs: { data: Float32Array; shape: number[] }[],
  build: (...xs: Tensor[]) => Tensor,
  tol: { atol?: number; rtol?: number } = {},
): Promise<void> {
  const run = async (backend: BackendName) => {
    const xs = inputs.map(({ data, shape }) => tensor(data, { shape, backend }));
    const y = build(...xs);
    const shape = y.shape;
    const out = await y.data();
    disposeTree([xs, y]);
    return { out, shape };
  };
  const gpu = await run(underTest);
  const cpu = await run("cpu");
  assert.deepEqual(gpu.shape, cpu.shape, `${label}: shapes differ`);
  assertClose(gpu.out, cpu.out, { atol: 1e-5, rtol: 1e-4, label, ...tol });
}

const input = (shape: number[], seed: number, gen = values) => ({
  data: gen(shape.reduce((a, b) => a * b, 1), seed),
  shape,
});

// ---- elementwise ------------------------------------------------------------------------

gpuTest("elementwise: sizes not divisible by 4, vec4 and scalar programs", async () => {
  for (const n of [1, 2, 3, 4, 5, 7, 1023, 1025, 4099]) {
    await compare(`add ${n}`, [input([n], 1), input([n], 2)], (a, b) => a.add(b));
    await compare(`exp ${n}`, [input([n], 3)], (a) => a.exp());
    // A transposed operand forces the scalar (strided) program.
    await compare(
      `sub transposed ${n}`,
      [input([n, 3], 4), input([3, n], 5)],
      (a, b) => a.sub(b.transpose()),
    );
  }
});

gpuTest("elementwise: every op on the vec4 and on the strided program", async () => {
  const shape = [6, 10]; // 60 elements: vec4 when dense
  const unary: [string, (x: Tensor) => Tensor, typeof values][] = [
    ["neg", (x) => x.neg(), values],
    ["exp", (x) => x.exp(), values],
    ["log", (x) => x.log(), positive],
    ["sqrt", (x) => x.sqrt(), positive],
    ["tanh", (x) => x.tanh(), values],
    ["sigmoid", (x) => x.sigmoid(), values],
    ["abs", (x) => x.abs(), values],
    ["relu", (x) => x.relu(), values],
  ];
  for (const [name, f, gen] of unary) {
    await compare(`${name} dense`, [input(shape, 7, gen)], f);
    await compare(`${name} strided`, [input([10, 6], 8, gen)], (x) => f(x.transpose()));
  }
  const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ["add", (a, b) => a.add(b)],
    ["sub", (a, b) => a.sub(b)],
    ["mul", (a, b) => a.mul(b)],
    ["div", (a, b) => a.div(b)],
    ["pow", (a, b) => a.pow(b)],
    ["maximum", (a, b) => a.maximum(b)],
  ];
  for (const [name, f] of binary) {
    await compare(`${name} dense`, [input(shape, 9, positive), input(shape, 10)], f);
    await compare(
      `${name} strided`,
      [input([10, 6], 11, positive), input(shape, 12)],
      (a, b) => f(a.transpose(), b),
    );
  }
});

gpuTest("elementwise: broadcasting (scalars, rows, columns, 3-D)", async () => {
  const cases: [string, number[], number[]][] = [
    ["row of 8 (vec4 row)", [5, 8], [8]],
    ["row of 6 (scalar row)", [5, 6], [6]],
    ["row of 12 over 3-D", [2, 3, 12], [3, 12]],
    ["column", [7, 1], [1, 9]],
    ["middle axis", [2, 3, 4], [3, 1]],
    ["scalar tensor", [9, 4], []],
    ["size-1 axes", [1, 5, 1, 4], [5, 1, 4]],
  ];
  for (const [label, sa, sb] of cases) {
    await compare(label, [input(sa, 13), input(sb, 14)], (a, b) => a.add(b));
    await compare(`${label} (swapped)`, [input(sa, 15), input(sb, 16)], (a, b) => b.mul(a));
  }
  // Plain numbers become broadcast scalars.
  await compare("x * 3 + 1", [input([1027], 17)], (x) => x.mul(3).add(1));
});

gpuTest("elementwise: more elements than 65,535 workgroups of 256 (2-D grid)", async () => {
  // 16,777,220 elements through the scalar (strided) program: a 2-D dispatch.
  const [rows, cols] = [4, 4_194_305];
  await compare(
    "neg of a transposed [4194305, 4]",
    [input([rows, cols], 18)],
    (x) => x.transpose().neg(),
  );
});

// ---- reductions ---------------------------------------------------------------------------

gpuTest("reductions: lengths around the strategy and chunk thresholds", async () => {
  for (const length of [1, 3, 4, 255, 256, 257, 1001, 4095, 4096, 4097, 65537, 1_048_579]) {
    const x = input([length], length);
    await compare(`sum of ${length}`, [x], (t) => t.sum(), { atol: 1e-3, rtol: 1e-4 });
    await compare(`max of ${length}`, [x], (t) => t.max());
  }
});

gpuTest("reductions: many outputs, few outputs, along every axis", async () => {
  const shapes = [[255, 300], [256, 300], [3, 9000], [300, 7], [17, 257]];
  for (const shape of shapes) {
    for (const axis of [0, 1]) {
      await compare(`sum ${shape} axis ${axis}`, [input(shape, 21)], (t) => t.sum(axis), {
        atol: 1e-4,
      });
      await compare(`max ${shape} axis ${axis}`, [input(shape, 22)], (t) => t.max(axis));
    }
  }
  // Several reduced axes that do not collapse into one stride: the generic program.
  await compare("sum [4,5,6] axes 0,2", [input([4, 5, 6], 23)], (t) => t.sum([0, 2]));
  await compare("max [4,5,6] axes 0,2", [input([4, 5, 6], 24)], (t) => t.max([0, 2]));
  await compare("sum [6,7,300] axes 0,2", [input([6, 7, 300], 25)], (t) => t.sum([0, 2]), {
    atol: 1e-4,
  });
  // Of a transposed view (one axis, then all), of a broadcast view, keepdims, and the mean.
  await compare("sum transposed", [input([33, 70], 26)], (t) => t.transpose().sum(1));
  await compare(
    "sum of all of a transposed view",
    [input([33, 70], 32)],
    (t) => t.transpose().sum(),
    {
      atol: 1e-4,
    },
  );
  await compare(
    "max of all of a transposed view",
    [input([33, 70], 33)],
    (t) => t.transpose().max(),
  );
  await compare(
    "sum of a broadcast view",
    [input([3], 34)],
    (t) => t.broadcastTo([1000, 3]).sum(0),
    {
      atol: 1e-3,
    },
  );
  await compare("mean keepdims", [input([5, 4096], 27)], (t) => t.mean(1, { keepdims: true }));
});

gpuTest("reductions: NaN and -Infinity in max, empty reductions", async () => {
  const data = values(5000, 28);
  data[4321] = NaN;
  await compare("max with a NaN", [{ data, shape: [5000] }], (t) => t.max());
  await compare(
    "max of -Infinity",
    [{ data: new Float32Array(300).fill(-Infinity), shape: [300] }],
    (t) => t.max(),
  );
  await compare(
    "sum over an empty axis",
    [{ data: new Float32Array(0), shape: [3, 0] }],
    (t) => t.sum(1),
  );
});

gpuTest("reductions: longer than 65,535 × 256 elements", async () => {
  const n = 65535 * 256 + 1001;
  await compare("sum", [input([n], 29)], (t) => t.sum(), { atol: 5e-2, rtol: 1e-4 });
  await compare("max", [input([n], 30)], (t) => t.max());
  // Thread strategy with many outputs: a 2-D grid of workgroups.
  await compare("row sums of [8388612, 2]", [input([8_388_612, 2], 31)], (t) => t.sum(1));
});

// ---- matmul ---------------------------------------------------------------------------------

const mm = (a: Tensor, b: Tensor) => a.matmul(b);

gpuTest("matmul: odd shapes (scalar loads, bounds checks)", async () => {
  for (const [m, k, n] of [[1000, 37, 513], [1, 1, 1], [3, 5, 7], [17, 33, 65], [130, 9, 131]]) {
    await compare(`${m}×${k}·${k}×${n}`, [input([m, k], m), input([k, n], n)], mm, { atol: 1e-4 });
  }
});

gpuTest("matmul: tiles that fit, and vec4 operands with bounds checks", async () => {
  for (
    const [m, k, n] of [[128, 64, 256], [64, 128, 128], [16, 4, 128], [100, 36, 132], [68, 8, 20]]
  ) {
    await compare(`${m}×${k}·${k}×${n}`, [input([m, k], 1), input([k, n], 2)], mm, { atol: 1e-4 });
  }
});

gpuTest("matmul: transposed operands without a copy", async () => {
  for (const [m, k, n] of [[128, 64, 96], [36, 20, 44], [33, 21, 45]]) {
    // Stored transposed: A as [k, m], B as [n, k].
    const at = input([k, m], 3);
    const bt = input([n, k], 4);
    const a = input([m, k], 5);
    const b = input([k, n], 6);
    await compare(`Aᵀ·B ${m},${k},${n}`, [at, b], (x, y) => x.transpose().matmul(y), {
      atol: 1e-4,
    });
    await compare(`A·Bᵀ ${m},${k},${n}`, [a, bt], (x, y) => x.matmul(y.transpose()), {
      atol: 1e-4,
    });
    await compare(`Aᵀ·Bᵀ ${m},${k},${n}`, [at, bt], (x, y) => x.transpose().matmul(y.transpose()), {
      atol: 1e-4,
    });
  }
});

gpuTest("matmul: tall-skinny, short-wide, vectors", async () => {
  const cases: [number[], number[]][] = [
    [[2048, 16], [16, 3]],
    [[5, 300], [300, 700]],
    [[1, 513], [513, 1]],
    [[128, 128], [128, 10]],
    [[128, 10], [10, 128]],
    [[784], [784, 128]],
    [[64, 32], [32]],
  ];
  for (const [sa, sb] of cases) {
    await compare(`${sa}·${sb}`, [input(sa, 7), input(sb, 8)], mm, { atol: 1e-4 });
  }
});

gpuTest("matmul: batched and broadcast batches", async () => {
  const cases: [number[], number[]][] = [
    [[3, 33, 20], [3, 20, 17]],
    [[4, 32, 16], [4, 16, 64]],
    [[2, 3, 8, 12], [12, 16]],
    [[16, 8], [5, 8, 12]],
    [[2, 1, 5, 6], [1, 3, 6, 4]],
  ];
  for (const [sa, sb] of cases) {
    await compare(`${sa}·${sb}`, [input(sa, 9), input(sb, 10)], mm, { atol: 1e-4 });
  }
  // A transposed batch of matrices.
  await compare(
    "batched Aᵀ",
    [input([3, 20, 32], 11), input([3, 20, 8], 12)],
    (a, b) => a.transpose([0, 2, 1]).matmul(b),
    { atol: 1e-4 },
  );
});

gpuTest("matmul: grids past 65,535 workgroups are split into several launches", async () => {
  await compare("batch of 70000", [input([70000, 2, 3], 13), input([70000, 3, 2], 14)], mm);
  await compare("8,388,613 columns", [input([1, 2], 15), input([2, 8_388_613], 16)], mm);
});

gpuTest("matmul: k = 0 gives zeros", async () => {
  await compare("[3,0]·[0,5]", [input([3, 0], 17), input([0, 5], 18)], mm);
});

// ---- execution ------------------------------------------------------------------------------

gpuTest("a long dependent chain spans several submits and reads back right", async () => {
  await compare("600 dependent adds", [input([16], 19), input([16], 20)], (x, y) => {
    let acc = x.add(0);
    for (let i = 0; i < 600; i++) {
      const next = acc.add(y);
      acc.dispose();
      acc = next;
    }
    return acc;
  }, { atol: 1e-4 });
});

gpuTest("uploads interleaved with recorded work never overwrite buffers still in use", async () => {
  // Each iteration uploads a fresh scalar, uses it, frees it: a pooled buffer
  // freed while recording must not be the target of the next upload.
  await compare("400 uploads and adds", [input([8], 21)], (x) => {
    let acc = x.add(0);
    for (let i = 0; i < 400; i++) {
      const c = tensor(i % 7, { backend: x.backend });
      const next = acc.add(c).mul(0.5);
      c.dispose();
      acc.dispose();
      acc = next;
    }
    return acc;
  });
});

gpuTest("reads pipelined behind later work return each value as it was", async () => {
  const run = async (backend: BackendName) => {
    let x = tensor(values(64, 22), { backend });
    const reads: Promise<ArrayLike<number>>[] = [];
    for (let i = 0; i < 50; i++) {
      const next = x.mul(1.01).add(0.5);
      x.dispose();
      x = next;
      if (i % 10 === 9) reads.push(x.sum().data()); // not awaited here
    }
    x.dispose();
    return (await Promise.all(reads)).map((d) => d[0]);
  };
  assertClose(await run(underTest), await run("cpu"), { rtol: 1e-4, label: "pipelined reads" });
});

gpuTest("a warm training step allocates no new GPU memory", async () => {
  type P = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };
  const loss = (p: P, x: Tensor, y: Tensor) =>
    softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), y);
  const step = valueAndGrad(loss);
  const t = (shape: number[], seed: number) =>
    tensor(values(shape.reduce((a, b) => a * b), seed).map((v) => v * 0.1), {
      shape,
      backend: underTest,
    });
  let params: P = { w1: t([64, 32], 1), b1: t([32], 2), w2: t([32, 10], 3), b2: t([10], 4) };
  const x = t([16, 64], 5);
  const y = tensor(Array.from({ length: 16 }, (_, i) => i % 10), { backend: underTest });
  const total = () => {
    const s = memoryStats();
    return s.liveBytes + s.pooledBytes;
  };
  let warm = 0;
  for (let i = 0; i < 30; i++) {
    const [value, grads] = step(params, x, y);
    const next = sgd(params, grads, { lr: 0.1 });
    disposeTree([params, grads]);
    params = next;
    if (i % 10 === 9) await value.data();
    value.dispose();
    if (i === 9) warm = total();
  }
  assert.equal(total(), warm, "GPU bytes (live + pooled) grew after warm-up");
  disposeTree([params, x, y]);
});

// ---- dtypes -----------------------------------------------------------------------------

/** Host values valid for `dtype`, from the same LCG: small ints, 0/1, or halves. */
function typedValues(dtype: DType, n: number, seed: number): number[] {
  const v = Array.from(values(n, seed));
  if (dtype === "bool") return v.map((x) => (x > 0 ? 1 : 0));
  if (dtype === "int8") return v.map((x) => Math.round(x * 127));
  if (dtype === "int32") return v.map((x) => Math.round(x * 2 ** 30)); // big: products wrap
  return v.map((x) => Math.round(x * 64) / 16); // exact in float16
}

/** Like `compare`, for inputs of one dtype; integer and bool results must match exactly. */
async function compareTyped(
  label: string,
  dtype: DType,
  shapes: number[][],
  build: (...xs: Tensor[]) => Tensor,
): Promise<void> {
  const run = async (backend: BackendName) => {
    const xs = shapes.map((shape, i) =>
      tensor(typedValues(dtype, shape.reduce((a, b) => a * b, 1), 40 + i), {
        shape,
        backend,
        dtype,
      })
    );
    const y = build(...xs);
    const result = { dtype: y.dtype, shape: y.shape, out: Array.from(await y.data()) };
    disposeTree([xs, y]);
    return result;
  };
  const gpu = await run(underTest);
  const cpu = await run("cpu");
  assert.equal(gpu.dtype, cpu.dtype, `${label}: dtypes differ`);
  assert.deepEqual(gpu.shape, cpu.shape, `${label}: shapes differ`);
  if (gpu.dtype === "float32" || gpu.dtype === "float16") {
    // float16 results may round differently where the GPU computes in float32 first.
    const tol = gpu.dtype === "float16" ? { atol: 1e-3, rtol: 2e-3 } : { atol: 1e-5, rtol: 1e-4 };
    assertClose(gpu.out, cpu.out, { label: `${label} (${gpu.dtype})`, ...tol });
  } else {
    assert.deepEqual(gpu.out, cpu.out, `${label} (${gpu.dtype})`);
  }
}

gpuTest(
  "every dtype through the vec4, strided and row programs, reductions, pad and gather",
  async () => {
    const dense = [6, 10]; // 60 elements: the vec4 program
    const T = (x: Tensor) => x.transpose(); // [10, 6] read transposed: the strided program
    const elementwise: [string, (a: Tensor, b: Tensor) => Tensor][] = [
      ["add", (a, b) => a.add(b)],
      ["mul", (a, b) => a.mul(b)],
      ["maximum", (a, b) => a.maximum(b)],
      ["minimum", (a, b) => a.minimum(b)],
      ["lt", (a, b) => a.lt(b)],
      ["eq", (a, b) => a.eq(b)],
      ["ne", (a, b) => a.ne(b)],
      ["where", (a, b) => where(a.gt(b), a, b)],
      ["logicalAnd", (a, b) => a.logicalAnd(b)],
    ];
    const numeric: [string, (a: Tensor, b: Tensor) => Tensor][] = [
      ["sub", (a, b) => a.sub(b)],
      ["floorDiv", (a, b) => a.floorDiv(b)],
      ["mod", (a, b) => a.mod(b)],
      ["neg", (a) => a.neg()],
      ["abs", (a) => a.abs()],
      ["sign", (a) => a.sign()],
      ["add a weak scalar", (a) => a.add(3)],
    ];
    for (const dtype of DTYPES) {
      const ops = dtype === "bool" ? elementwise : [...elementwise, ...numeric];
      for (const [name, f] of ops) {
        await compareTyped(`${name} dense`, dtype, [dense, dense], f);
        await compareTyped(`${name} strided`, dtype, [[10, 6], dense], (a, b) => f(T(a), b));
        await compareTyped(`${name} row`, dtype, [dense, [10]], f);
      }
      for (const target of DTYPES) {
        await compareTyped(`astype ${target} dense`, dtype, [dense], (a) => a.astype(target));
        await compareTyped(
          `astype ${target} strided`,
          dtype,
          [[10, 6]],
          (a) => T(a).astype(target),
        );
      }
      // Reductions: the thread and workgroup strategies (one chunk, then three),
      // vec4 and strided layouts.
      for (const shape of [[6, 10], [3, 3000], [2, 9000]]) {
        await compareTyped(`sum ${shape}`, dtype, [shape], (a) => a.sum(1));
        await compareTyped(`max ${shape}`, dtype, [shape], (a) => a.max(1));
        await compareTyped(`min over axis 0 ${shape}`, dtype, [shape], (a) => a.min(0));
        // Float products of 3000 values overflow, and where zeros meet infinities
        // the order (f32 tree vs f64 loop) decides; integer products wrap exactly.
        if (dtype !== "float16" && (dtype !== "float32" || shape[1] === 10)) {
          await compareTyped(`prod ${shape}`, dtype, [shape], (a) => a.prod(1));
        }
      }
      await compareTyped("pad", dtype, [[3, 5]], (a) => a.pad([[1, 2], [0, 3]]));
      await compareTyped("take", dtype, [[5, 4]], (a) => a.take([4, 0, -1, 2, 2], 0));
      await compareTyped("flip", dtype, [[5, 4]], (a) => a.flip(1).add(a.astype(a.dtype)));
    }
  },
);
