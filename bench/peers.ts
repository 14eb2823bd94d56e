/**
 * Peers comparison: littlegrad, TensorFlow.js with its WebGPU backend and
 * jax-js with its WebGPU backend, on the same WebGPU adapter, on the same
 * inputs, in one process. Prints a table of times and the ratio of
 * littlegrad to the faster peer.
 *
 * Run: `deno task bench:peers` (add `-- --rounds 7` for more rounds, or
 * `-- --only matmul,mlp` for some rows; set `XDG_RUNTIME_DIR` where Mesa
 * needs it).
 *
 * Timing model: every library only enqueues GPU work when an op is called,
 * so each timed iteration queues K independent ops, then waits once for the
 * device (littlegrad `sync()`, tfjs `submitQueue()` + `onSubmittedWorkDone()`,
 * jax-js `blockUntilReady()`); per-op time = iteration time ÷ K. The wait
 * itself costs about 11 ms in Deno whatever the work, so K is chosen to keep
 * it small next to the work. Libraries are interleaved round by round
 * (littlegrad, tfjs, jax-js, littlegrad, …) and every figure is the median
 * over the rounds, so drift on a shared machine hits them alike.
 *
 * Every result is checked against an independent reference (float64 on the
 * CPU, or exact float32 for the chain); a library that returns a wrong result
 * is reported as `wrong` and left out of the ratio. The peers are pinned
 * below (integrity in bench/peers.lock) and are bench-only dependencies: the
 * library imports nothing.
 * @module
 */

// The peers are pinned here, inline, rather than in deno.json's "imports":
// `deno task` installs every npm package named there before running any task,
// which would make `deno task test` and `deno task demo` download ~300 MB of
// bench-only packages. Integrity hashes: bench/peers.lock (see the task).
// deno-lint-ignore no-import-prefix
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
// deno-lint-ignore no-import-prefix
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
// deno-lint-ignore no-import-prefix
import * as jax from "npm:@jax-js/jax@0.1.25";
import * as lg from "../mod.ts";
import { type HandTuned, handTuned } from "./_hand_tuned.ts";
// Internal, bench-only: littlegrad's WebGPU backend counts pool hits and bind groups.
import { resolveBackend } from "../src/backends.ts";
import type { PoolStats } from "../src/backend_webgpu.ts";

/** A snapshot of littlegrad's WebGPU counters. */
function lgStats(): PoolStats {
  return { ...(resolveBackend("webgpu") as unknown as { stats: PoolStats }).stats };
}

// ---- command line -------------------------------------------------------------

function flag(name: string, fallback: string): string {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 && at + 1 < Deno.args.length ? Deno.args[at + 1] : fallback;
}
/** Timed rounds per row (each library once per round); figures are medians. */
const ROUNDS = Number(flag("rounds", "5"));
/** Rows to run (comma-separated prefixes of row keys), or all. */
const ONLY = flag("only", "").split(",").filter(Boolean);
/** Optional path to write the figures as JSON (for collecting several runs). */
const JSON_OUT = flag("json", "");

// ---- deterministic inputs --------------------------------------------------------

/** Seeded standard normals (mulberry32 + Box-Muller), identical for every library. */
function normals(n: number, seed: number, std = 1): Float32Array {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const th = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(th) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(th) * std;
  }
  return out;
}

// ---- the libraries behind one small interface -----------------------------------------

/** MLP 784→128→10 parameters and data, as flat arrays. */
interface MlpInit {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  x: Float32Array;
  labels: number[];
}

/** A training loop that keeps its state on the device. */
interface MlpRunner {
  /** Runs `n` steps; the loss of every `readEvery`-th step is read without stalling the queue. */
  run(n: number, readEvery: number): Promise<number[]>;
  dispose(): void;
}

/** What each library provides; arrays are opaque handles the adapter owns. */
interface Lib {
  name: string;
  /** Copies host data to the device. */
  upload(data: Float32Array, shape: number[]): unknown;
  matmul(a: unknown, b: unknown): unknown;
  /** `a + b`, broadcasting like NumPy. */
  add(a: unknown, b: unknown): unknown;
  exp(a: unknown): unknown;
  sum(a: unknown): unknown;
  /** Reads an array back (and waits for it). */
  read(x: unknown): Promise<Float32Array>;
  /** Waits until the work producing `xs` (and everything queued before) has finished. */
  wait(xs: unknown[]): Promise<void>;
  dispose(xs: unknown[]): void;
  /** `n` dependent adds `x ← x + y` on the device, then one read of `x`. */
  chain(x: unknown, y: unknown, n: number): Promise<Float32Array>;
  /** An MLP training loop (SGD, lr 0.05) from the given initial state. */
  mlp(init: MlpInit, opts?: { jit?: boolean }): MlpRunner;
}

const BATCH = 128;
const [IN, HIDDEN, OUT] = [784, 128, 10];
const LR = 0.05;

function oneHot(labels: number[], classes: number): Float32Array {
  const out = new Float32Array(labels.length * classes);
  labels.forEach((c, i) => out[i * classes + c] = 1);
  return out;
}

// littlegrad -------------------------------------------------------------------------

type LgParams = { w1: lg.Tensor; b1: lg.Tensor; w2: lg.Tensor; b2: lg.Tensor };

const littlegrad: Lib = {
  name: "littlegrad",
  upload: (data, shape) => lg.tensor(data, { shape, backend: "webgpu" }),
  matmul: (a, b) => (a as lg.Tensor).matmul(b as lg.Tensor),
  add: (a, b) => (a as lg.Tensor).add(b as lg.Tensor),
  exp: (a) => (a as lg.Tensor).exp(),
  sum: (a) => (a as lg.Tensor).sum(),
  read: (x) => (x as lg.Tensor).data() as Promise<Float32Array>,
  wait: () => lg.sync(),
  dispose: (xs) => xs.forEach((x) => (x as lg.Tensor).dispose()),
  async chain(x0, y, n) {
    let x = x0 as lg.Tensor;
    for (let i = 0; i < n; i++) {
      const next = x.add(y as lg.Tensor);
      if (x !== x0) x.dispose();
      x = next;
    }
    const out = await x.data() as Float32Array;
    x.dispose();
    return out;
  },
  mlp(init, opts = {}) {
    const t = (data: Float32Array, shape: number[]) =>
      lg.tensor(data, { shape, backend: "webgpu" });
    let params: LgParams = {
      w1: t(init.w1, [IN, HIDDEN]),
      b1: t(init.b1, [HIDDEN]),
      w2: t(init.w2, [HIDDEN, OUT]),
      b2: t(init.b2, [OUT]),
    };
    const x = t(init.x, [BATCH, IN]);
    const labels = lg.tensor(init.labels, { backend: "webgpu", dtype: "int32" });
    const loss = (p: LgParams, x: lg.Tensor, labels: lg.Tensor) =>
      lg.softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);
    const step = lg.valueAndGrad(loss);
    // Under jit, the whole step (loss, gradients, update) is one compiled program.
    const jitted = lg.jit((p: LgParams, x: lg.Tensor, labels: lg.Tensor): [lg.Tensor, LgParams] => {
      const [value, grads] = step(p, x, labels);
      return [value, lg.sgd(p, grads, { lr: LR })];
    });
    return {
      async run(n, readEvery) {
        const reads: Promise<Float32Array>[] = [];
        for (let i = 0; i < n; i++) {
          let value: lg.Tensor;
          if (opts.jit) {
            let next: LgParams;
            [value, next] = jitted(params, x, labels);
            lg.disposeTree(params);
            params = next;
          } else {
            let grads: LgParams;
            [value, grads] = step(params, x, labels);
            const next = lg.sgd(params, grads, { lr: LR });
            lg.disposeTree([params, grads]);
            params = next;
          }
          if ((i + 1) % readEvery === 0) {
            reads.push((value.data() as Promise<Float32Array>).finally(() => value.dispose()));
          } else value.dispose();
        }
        return (await Promise.all(reads)).map((d) => d[0]);
      },
      dispose: () => lg.disposeTree([params, x, labels]),
    };
  },
};

// TensorFlow.js, WebGPU backend -------------------------------------------------------

/** The tfjs WebGPU backend's internals we need to wait without a read. */
interface TfWebGPUBackend {
  device: GPUDevice;
  endComputePassEncoder(): void;
  ensureCommandEncoderReady(): void;
  submitQueue(): void;
}

const tfjs: Lib = {
  name: "tfjs-webgpu",
  upload: (data, shape) => tf.tensor(data, shape),
  matmul: (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
  add: (a, b) => tf.add(a as tf.Tensor, b as tf.Tensor),
  exp: (a) => tf.exp(a as tf.Tensor),
  sum: (a) => tf.sum(a as tf.Tensor),
  read: async (x) => new Float32Array(await (x as tf.Tensor).data()),
  async wait() {
    // What tfjs itself does before a read: end the open pass, submit the encoder.
    const backend = tf.backend() as unknown as TfWebGPUBackend;
    backend.endComputePassEncoder();
    backend.ensureCommandEncoderReady();
    backend.submitQueue();
    await backend.device.queue.onSubmittedWorkDone();
  },
  dispose: (xs) => xs.forEach((x) => (x as tf.Tensor).dispose()),
  async chain(x0, y, n) {
    let x = x0 as tf.Tensor;
    for (let i = 0; i < n; i++) {
      const next = tf.add(x, y as tf.Tensor);
      if (x !== x0) x.dispose();
      x = next;
    }
    const out = new Float32Array(await x.data());
    x.dispose();
    return out;
  },
  mlp(init) {
    let params = [
      tf.tensor(init.w1, [IN, HIDDEN]),
      tf.tensor(init.b1, [HIDDEN]),
      tf.tensor(init.w2, [HIDDEN, OUT]),
      tf.tensor(init.b2, [OUT]),
    ];
    const x = tf.tensor2d(init.x, [BATCH, IN]);
    const y = tf.tensor2d(oneHot(init.labels, OUT), [BATCH, OUT]);
    const loss = (w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => {
      const h = tf.relu(tf.add(tf.matMul(x, w1 as tf.Tensor2D), b1));
      const logits = tf.add(tf.matMul(h as tf.Tensor2D, w2 as tf.Tensor2D), b2);
      return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1))) as tf.Scalar;
    };
    const step = tf.valueAndGrads(loss as (...args: tf.Tensor[]) => tf.Scalar);
    return {
      async run(n, readEvery) {
        const reads: Promise<Float32Array>[] = [];
        for (let i = 0; i < n; i++) {
          const { value, grads } = step(params);
          const next = tf.tidy(() => params.map((p, j) => tf.sub(p, tf.mul(grads[j], LR))));
          tf.dispose([...params, ...grads]);
          params = next;
          if ((i + 1) % readEvery === 0) {
            reads.push(
              value.data().then((d) => new Float32Array(d)).finally(() => value.dispose()),
            );
          } else value.dispose();
        }
        return (await Promise.all(reads)).map((d) => d[0]);
      },
      dispose: () => tf.dispose([...params, x, y]),
    };
  },
};

// jax-js, WebGPU device ---------------------------------------------------------------

type JaxParams = { w1: jax.Array; b1: jax.Array; w2: jax.Array; b2: jax.Array };
const jnp = jax.numpy;

/** jax-js on one of its devices: `webgpu` (the same adapter), or `wasm` (its CPU backend). */
const jaxLib = (device: "webgpu" | "wasm"): Lib => ({
  name: `jax-js-${device}`,
  // jax-js functions consume their arguments; `.ref` keeps the caller's handle alive.
  upload: (data, shape) => jnp.array(data as Float32Array<ArrayBuffer>, { shape, device }),
  matmul: (a, b) => jnp.matmul((a as jax.Array).ref, (b as jax.Array).ref),
  add: (a, b) => jnp.add((a as jax.Array).ref, (b as jax.Array).ref),
  exp: (a) => jnp.exp((a as jax.Array).ref),
  sum: (a) => jnp.sum((a as jax.Array).ref),
  read: (x) => (x as jax.Array).ref.data() as Promise<Float32Array>,
  wait: async (xs) => void await jax.blockUntilReady(xs as jax.Array[]),
  dispose: (xs) => xs.forEach((x) => (x as jax.Array).dispose()),
  async chain(x0, y, n) {
    let x = (x0 as jax.Array).ref;
    for (let i = 0; i < n; i++) x = jnp.add(x, (y as jax.Array).ref);
    return await x.data() as Float32Array;
  },
  mlp(init, opts = {}) {
    const a = (data: Float32Array, shape: number[]) =>
      jnp.array(data as Float32Array<ArrayBuffer>, { shape, device });
    let params: JaxParams = {
      w1: a(init.w1, [IN, HIDDEN]),
      b1: a(init.b1, [HIDDEN]),
      w2: a(init.w2, [HIDDEN, OUT]),
      b2: a(init.b2, [OUT]),
    };
    const x = a(init.x, [BATCH, IN]);
    const y = a(oneHot(init.labels, OUT), [BATCH, OUT]);
    const loss = (p: JaxParams, x: jax.Array, y: jax.Array) => {
      const h = jax.nn.relu(jnp.matmul(x, p.w1).add(p.b1));
      const logits = jnp.matmul(h, p.w2).add(p.b2);
      return jnp.sum(jax.nn.logSoftmax(logits).mul(y)).mul(-1 / BATCH);
    };
    const stepFn = (p: JaxParams, x: jax.Array, y: jax.Array): [jax.Array, JaxParams] => {
      const [value, grads] = jax.valueAndGrad(loss)(jax.tree.ref(p), x, y);
      const next = jax.tree.map(
        (w: jax.Array, g: jax.Array) => w.sub(g.mul(LR)),
        p,
        grads,
      ) as JaxParams;
      return [value, next];
    };
    const step = opts.jit ? jax.jit(stepFn) : stepFn;
    return {
      async run(n, readEvery) {
        const reads: Promise<Float32Array>[] = [];
        for (let i = 0; i < n; i++) {
          const [value, next] = step(params, x.ref, y.ref) as [jax.Array, JaxParams];
          params = next;
          if ((i + 1) % readEvery === 0) reads.push(value.data() as Promise<Float32Array>);
          else value.dispose();
        }
        return (await Promise.all(reads)).map((d) => d[0]);
      },
      dispose() {
        jax.tree.dispose([params, x, y]);
        if (opts.jit) (step as unknown as { dispose(): void }).dispose();
      },
    };
  },
});
const jaxjs = jaxLib("webgpu");
const jaxWasm = jaxLib("wasm");

// ---- setup ------------------------------------------------------------------------------

const notes: string[] = [];

async function setupTfjs(): Promise<Lib | null> {
  try {
    // Without this, tfjs runs ops on tensors under 1000 elements on the CPU.
    tf.env().set("WEBGPU_CPU_FORWARD", false);
    if (!(await tf.setBackend("webgpu"))) throw new Error("setBackend('webgpu') returned false");
    await tf.ready();
    return tfjs;
  } catch (err) {
    notes.push(`tfjs-webgpu unavailable: ${err instanceof Error ? err.message : err}`);
    return null;
  }
}

async function setupJax(): Promise<Lib[]> {
  const libs: Lib[] = [];
  try {
    const devices = await jax.init("webgpu", "wasm");
    if (!devices.includes("webgpu")) throw new Error("jax.init found no webgpu device");
    jax.defaultDevice("webgpu");
    libs.push(jaxjs);
    if (devices.includes("wasm")) libs.push(jaxWasm);
    else notes.push("jax-js-wasm unavailable: jax.init found no wasm device");
  } catch (err) {
    notes.push(`jax-js unavailable: ${err instanceof Error ? err.message : err}`);
  }
  return libs;
}

// ---- measurement helpers -------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** One measured cell: a median time, or why there is none. */
interface Cell {
  /** Median milliseconds per op (or per whole task for `chain`), null when not valid. */
  ms: number | null;
  /** Why `ms` is null (`wrong`, `error`, `n/a`), with detail. */
  status?: string;
  detail?: string;
}

/** A row of the table: one workload on every library. */
interface Row {
  key: string;
  title: string;
  /** Turns milliseconds into the row's figure of merit (e.g. GFLOP/s), or null. */
  rate?: (ms: number) => string;
  /** The target: littlegrad must be at least this many times faster than the faster peer. */
  target: number;
  /** Optional note about the target. */
  targetNote?: string;
  cells: Record<string, Cell>;
  /** Hand-tuned WGSL reference (matmul, add, sum, chain only), median ms. */
  hand?: Cell;
  /** A note printed under the table (e.g. littlegrad's buffer pool during the row). */
  note?: string;
}

/**
 * Runs `rounds` rounds of every library's `timed` body (which returns its own
 * per-op milliseconds), after `check` validated its result once. Libraries
 * interleave within a round.
 */
async function measure(
  libs: Lib[],
  check: (lib: Lib) => Promise<string | null>,
  timed: (lib: Lib) => Promise<number>,
  rounds = ROUNDS,
): Promise<Record<string, Cell>> {
  const cells: Record<string, Cell> = {};
  const valid: Lib[] = [];
  for (const lib of libs) {
    try {
      const wrong = await check(lib);
      if (wrong) {
        // Still time it, to show what the wrong answer costs, but mark it.
        cells[lib.name] = { ms: null, status: "wrong", detail: wrong };
      } else {
        cells[lib.name] = { ms: null };
      }
      valid.push(lib);
      await timed(lib); // warm-up: pipelines compiled, pools filled
    } catch (err) {
      cells[lib.name] = {
        ms: null,
        status: "error",
        detail: err instanceof Error ? err.message.split("\n")[0] : String(err),
      };
    }
  }
  const times = new Map<string, number[]>(valid.map((l) => [l.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const lib of valid) times.get(lib.name)!.push(await timed(lib));
  }
  for (const lib of valid) {
    const ms = median(times.get(lib.name)!);
    const cell = cells[lib.name];
    if (cell.status === "wrong") cell.detail = `${cell.detail}; took ${fmtMs(ms)}`;
    else cell.ms = ms;
  }
  return cells;
}

/** Time of one iteration that queues `k` ops and waits once, per op. */
async function queued(lib: Lib, k: number, op: () => unknown): Promise<number> {
  const results: unknown[] = [];
  const t0 = performance.now();
  for (let i = 0; i < k; i++) results.push(op());
  await lib.wait(results);
  const ms = (performance.now() - t0) / k;
  lib.dispose(results);
  return ms;
}

function fmtMs(ms: number): string {
  return ms >= 100
    ? `${ms.toFixed(0)} ms`
    : ms >= 10
    ? `${ms.toFixed(1)} ms`
    : `${ms.toFixed(2)} ms`;
}

/** Largest |actual - expected| / (atol + rtol·|expected|) over the sampled entries. */
function worst(
  actual: Float32Array,
  expected: (i: number) => number,
  indices: Iterable<number>,
  atol: number,
  rtol: number,
): { ratio: number; at: number; got: number; want: number } {
  let w = { ratio: 0, at: -1, got: 0, want: 0 };
  for (const i of indices) {
    const want = expected(i);
    const got = actual[i];
    const ratio = Number.isFinite(got)
      ? Math.abs(got - want) / (atol + rtol * Math.abs(want))
      : Infinity;
    if (ratio > w.ratio) w = { ratio, at: i, got, want };
  }
  return w;
}

function sampleIndices(n: number, count: number, seed: number): number[] {
  const out: number[] = [0, n - 1];
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out.push(s % n);
  }
  return out;
}

// ---- the rows ---------------------------------------------------------------------------

async function matmulRow(
  libs: Lib[],
  hand: HandTuned | null,
  m: number,
  k: number,
  n: number,
  queue: number,
  title: string,
  key: string,
  target: number,
): Promise<Row> {
  const aData = normals(m * k, 11);
  const bData = normals(k * n, 12);
  const ref = (i: number) => {
    const r = Math.floor(i / n), c = i % n;
    let acc = 0;
    for (let kk = 0; kk < k; kk++) acc += aData[r * k + kk] * bData[kk * n + c];
    return acc;
  };
  const samples = sampleIndices(m * n, 3000, 7);
  const inputs = new Map<Lib, [unknown, unknown]>();
  const get = (lib: Lib) => {
    if (!inputs.has(lib)) inputs.set(lib, [lib.upload(aData, [m, k]), lib.upload(bData, [k, n])]);
    return inputs.get(lib)!;
  };
  const cells = await measure(
    libs,
    async (lib) => {
      const [a, b] = get(lib);
      const c = lib.matmul(a, b);
      const out = await lib.read(c);
      lib.dispose([c]);
      const w = worst(out, ref, samples, 1e-3 * Math.sqrt(k), 1e-4);
      return w.ratio > 1 ? `C[${w.at}] = ${w.got}, expected ${w.want.toFixed(5)}` : null;
    },
    (lib) => {
      const [a, b] = get(lib);
      return queued(lib, queue, () => lib.matmul(a, b));
    },
  );
  for (const [lib, pair] of inputs) lib.dispose(pair);
  const row: Row = {
    key,
    title,
    rate: (ms) => `${(2 * m * n * k / ms / 1e6).toFixed(1)} GFLOP/s`,
    target,
    cells,
  };
  if (hand) row.hand = await hand.matmul(aData, bData, m, k, n, queue, ROUNDS, samples, ref);
  return row;
}

/** The elementwise rows: same-shape add, a unary op, a bias (row) broadcast. */
type ElementwiseKind = "add" | "exp" | "bias";

async function elementwiseRow(
  libs: Lib[],
  hand: HandTuned | null,
  kind: ElementwiseKind,
  n: number,
  queue: number,
): Promise<Row> {
  const rowLength = 4096;
  const xData = normals(n, 21);
  const yData = kind === "add" ? normals(n, 22) : kind === "bias" ? normals(rowLength, 23) : null;
  const yShape = kind === "add" ? [n] : [rowLength];
  const xShape = kind === "bias" ? [n / rowLength, rowLength] : [n];
  const expected = kind === "add"
    ? (i: number) => Math.fround(xData[i] + yData![i])
    : kind === "bias"
    ? (i: number) => Math.fround(xData[i] + yData![i % rowLength])
    : (i: number) => Math.exp(xData[i]);
  const op = (lib: Lib, [x, y]: unknown[]) => kind === "exp" ? lib.exp(x) : lib.add(x, y);
  const inputs = new Map<Lib, unknown[]>();
  const get = (lib: Lib) => {
    if (!inputs.has(lib)) {
      const x = lib.upload(xData, xShape);
      inputs.set(lib, yData ? [x, lib.upload(yData, yShape)] : [x]);
    }
    return inputs.get(lib)!;
  };
  const cells = await measure(
    libs,
    async (lib) => {
      const z = op(lib, get(lib));
      const out = await lib.read(z);
      lib.dispose([z]);
      // add is exact in float32; exp within a few ulp.
      const w = worst(out, expected, out.keys(), 0, kind === "exp" ? 1e-5 : 0);
      return w.ratio > (kind === "exp" ? 1 : 0) || out.length !== n
        ? `z[${w.at}] = ${w.got}, expected ${w.want}`
        : null;
    },
    (lib) => {
      const xs = get(lib);
      return queued(lib, queue, () => op(lib, xs));
    },
  );
  for (const [lib, xs] of inputs) lib.dispose(xs);
  // Bytes moved per element: two reads and a write, or a read and a write.
  const bytes = kind === "add" ? 12 : 8;
  const title = kind === "add"
    ? `add ${n >> 20}M f32 (×${queue} queued)`
    : kind === "exp"
    ? `exp ${n >> 20}M f32 (×${queue} queued)`
    : `add bias: [${n / rowLength}, ${rowLength}] + [${rowLength}] (×${queue} queued)`;
  const row: Row = {
    key: kind,
    title,
    rate: (ms) => `${(bytes * n / ms / 1e6).toFixed(1)} GB/s`,
    target: 1.3,
    cells,
  };
  if (hand && kind === "add") row.hand = await hand.add(xData, yData!, queue, ROUNDS);
  return row;
}

async function sumRow(libs: Lib[], hand: HandTuned | null, n: number, queue: number): Promise<Row> {
  const xData = normals(n, 31);
  let exact = 0;
  for (let i = 0; i < n; i++) exact += xData[i];
  const inputs = new Map<Lib, unknown>();
  const get = (lib: Lib) => {
    if (!inputs.has(lib)) inputs.set(lib, lib.upload(xData, [n]));
    return inputs.get(lib)!;
  };
  const cells = await measure(
    libs,
    async (lib) => {
      const s = lib.sum(get(lib));
      const out = await lib.read(s);
      lib.dispose([s]);
      // float32 sums of 16M normals: a tree or chunked sum is within ~1e-3 absolute.
      const ok = out.length === 1 && Math.abs(out[0] - exact) <= 1e-2 + 1e-5 * Math.abs(exact);
      return ok ? null : `${out[0]}, expected ${exact.toFixed(4)}`;
    },
    (lib) => queued(lib, queue, () => lib.sum(get(lib))),
  );
  for (const [lib, x] of inputs) lib.dispose([x]);
  const row: Row = {
    key: "sum",
    title: `sum ${n >> 20}M f32 (×${queue} queued)`,
    rate: (ms) => `${(4 * n / ms / 1e6).toFixed(1)} GB/s`,
    target: 5,
    cells,
  };
  if (hand) row.hand = await hand.sum(xData, exact, queue, ROUNDS);
  return row;
}

async function chainRow(libs: Lib[], hand: HandTuned | null, steps: number): Promise<Row> {
  const size = 16;
  const xData = normals(size, 41);
  const yData = normals(size, 42);
  const expected = new Float32Array(xData);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < size; i++) expected[i] = Math.fround(expected[i] + yData[i]);
  }
  const inputs = new Map<Lib, [unknown, unknown]>();
  const get = (lib: Lib) => {
    if (!inputs.has(lib)) inputs.set(lib, [lib.upload(xData, [size]), lib.upload(yData, [size])]);
    return inputs.get(lib)!;
  };
  const cells = await measure(
    libs,
    async (lib) => {
      const [x, y] = get(lib);
      const out = await lib.chain(x, y, steps);
      const w = worst(out, (i) => expected[i], expected.keys(), 1e-4, 1e-5);
      return w.ratio > 1 ? `x[${w.at}] = ${w.got}, expected ${w.want}` : null;
    },
    async (lib) => {
      const [x, y] = get(lib);
      const t0 = performance.now();
      await lib.chain(x, y, steps);
      return performance.now() - t0;
    },
  );
  for (const [lib, pair] of inputs) lib.dispose(pair);
  const row: Row = {
    key: "chain",
    title: `${steps} dependent adds on ${size} elements + one read (total)`,
    target: 1,
    targetNote: "faster than every peer",
    cells,
  };
  if (hand) row.hand = await hand.chain(xData, yData, expected, steps, ROUNDS);
  return row;
}

async function mlpRow(libs: Lib[], steps: number, readEvery: number): Promise<Row> {
  const init: MlpInit = {
    w1: normals(IN * HIDDEN, 51, 0.05),
    b1: new Float32Array(HIDDEN),
    w2: normals(HIDDEN * OUT, 52, 0.1),
    b2: new Float32Array(OUT),
    x: normals(BATCH * IN, 53),
    labels: Array.from({ length: BATCH }, (_, i) => (i * 7) % OUT),
  };
  // Every library runs the same `steps` from the same start: the losses must agree.
  const variants: { lib: Lib; name: string; jit?: boolean }[] = libs.flatMap((lib) =>
    lib === jaxjs || lib === jaxWasm
      ? [{ lib, name: `${lib.name} eager` }, { lib, name: `${lib.name} jit`, jit: true }]
      : lib === littlegrad
      ? [{ lib, name: lib.name }, { lib, name: `${lib.name} jit`, jit: true }]
      : [{ lib, name: lib.name }]
  );
  let reference: number[] | null = null;
  const cells: Record<string, Cell> = {};
  const times = new Map<string, number[]>();
  const runners = new Map<string, MlpRunner>();
  const fresh = (v: (typeof variants)[number]) => {
    runners.get(v.name)?.dispose();
    const r = v.lib.mlp(init, { jit: v.jit });
    runners.set(v.name, r);
    return r;
  };
  const live: typeof variants = [];
  for (const v of variants) {
    try {
      const losses = await fresh(v).run(steps, readEvery);
      if (!reference) reference = losses;
      const bad = losses.findIndex((l, i) =>
        !(Math.abs(l - reference![i]) <= 1e-3 * Math.max(1, Math.abs(reference![i])))
      );
      cells[v.name] = bad >= 0
        ? {
          ms: null,
          status: "wrong",
          detail: `loss after ${(bad + 1) * readEvery} steps ${losses[bad]}, littlegrad ${
            reference[bad]
          }`,
        }
        : { ms: null };
      times.set(v.name, []);
      live.push(v);
    } catch (err) {
      cells[v.name] = {
        ms: null,
        status: "error",
        detail: err instanceof Error ? err.message.split("\n")[0] : String(err),
      };
    }
  }
  // littlegrad's counters over the timed rounds only (everything is warm by now).
  const zero = (): PoolStats => ({
    acquired: 0,
    created: 0,
    bindGroupsCreated: 0,
    dispatches: 0,
    submits: 0,
    pipelinesCreated: 0,
  });
  const counted = new Map<string, PoolStats>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of live) {
      const runner = runners.get(v.name)!;
      const before = v.lib === littlegrad ? lgStats() : null;
      const t0 = performance.now();
      await runner.run(steps, readEvery);
      times.get(v.name)!.push((performance.now() - t0) / steps);
      if (before) {
        const after = lgStats();
        const deltas = counted.get(v.name) ?? counted.set(v.name, zero()).get(v.name)!;
        for (const key of Object.keys(deltas) as (keyof PoolStats)[]) {
          deltas[key] += after[key] - before[key];
        }
      }
    }
  }
  const total = ROUNDS * steps;
  const note = [...counted].map(([name, deltas]) =>
    `${name}, timed MLP steps: ${(deltas.dispatches / total).toFixed(0)} dispatches/step, ` +
    `${
      (deltas.submits / total).toFixed(2)
    } submits/step; buffer pool ${deltas.acquired} requests, ` +
    `${deltas.created} new buffers (hit rate ${
      (100 * (1 - deltas.created / Math.max(1, deltas.acquired))).toFixed(1)
    }%); ${deltas.bindGroupsCreated} bind groups created for ${deltas.dispatches} dispatches`
  ).join("\n");
  for (const v of live) {
    runners.get(v.name)!.dispose();
    const ms = median(times.get(v.name)!);
    if (cells[v.name].status === "wrong") cells[v.name].detail += `; took ${fmtMs(ms)}/step`;
    else cells[v.name].ms = ms;
  }
  return {
    note,
    key: "mlp",
    title:
      `MLP step ${IN}→${HIDDEN}→${OUT}, batch ${BATCH}, grads + SGD (per step, ${steps} steps, loss read every ${readEvery})`,
    target: 2,
    cells,
  };
}

// ---- report ------------------------------------------------------------------------------

function fasterPeer(row: Row): { name: string; ms: number } | null {
  let best: { name: string; ms: number } | null = null;
  for (const [name, cell] of Object.entries(row.cells)) {
    if (name.startsWith("littlegrad") || cell.ms === null) continue;
    if (!best || cell.ms < best.ms) best = { name, ms: cell.ms };
  }
  return best;
}

function cellText(row: Row, cell: Cell | undefined): string {
  if (!cell) return "—";
  if (cell.ms === null) return cell.status ?? "—";
  return row.rate ? `${fmtMs(cell.ms)} (${row.rate(cell.ms)})` : fmtMs(cell.ms);
}

function printTable(rows: Row[], columns: string[], adapter: string): void {
  const header = [
    "work",
    ...columns,
    "hand-tuned WGSL",
    "littlegrad vs faster peer",
    "target",
    "met",
  ];
  const lines: string[][] = [];
  for (const row of rows) {
    const peer = fasterPeer(row);
    const lgMs = row.cells.littlegrad?.ms ?? null;
    const ratio = peer && lgMs ? peer.ms / lgMs : null;
    const met = ratio === null ? "?" : ratio >= row.target ? "yes" : "no";
    lines.push([
      row.title,
      ...columns.map((c) => cellText(row, row.cells[c])),
      cellText(row, row.hand),
      ratio === null ? "—" : `${ratio.toFixed(2)}× (${peer!.name})`,
      row.targetNote ?? `≥ ${row.target}×`,
      met,
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(`\nadapter: ${adapter} | Deno ${Deno.version.deno} | medians of ${ROUNDS} rounds\n`);
  console.log(fmt(header));
  console.log(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`);
  for (const l of lines) console.log(fmt(l));
  const details = rows.flatMap((row) =>
    Object.entries({ ...row.cells, "hand-tuned WGSL": row.hand ?? { ms: 0 } })
      .filter(([, c]) => c.status)
      .map(([name, c]) => `  ${row.key} / ${name}: ${c.status}: ${c.detail}`)
  );
  if (details.length) console.log(`\nnot counted:\n${details.join("\n")}`);
  for (const row of rows) if (row.note) console.log(`\n${row.note}`);
  if (notes.length) console.log(`\n${notes.join("\n")}`);
}

// ---- main -----------------------------------------------------------------------------------

if (import.meta.main) {
  if (!lg.availableBackends().includes("webgpu")) {
    console.error(
      "bench:peers needs a WebGPU adapter; none found (littlegrad runs on the CPU here).",
    );
    Deno.exit(1);
  }
  const adapter = lg.backendInfo().adapter;
  const peers = [await setupTfjs(), ...(await setupJax())].filter((l): l is Lib => l !== null);
  const libs = [littlegrad, ...peers];
  const hand = await handTuned();
  const want = (key: string) => ONLY.length === 0 || ONLY.some((o) => key.startsWith(o));
  const rows: Row[] = [];
  const progress = (row: Row) => {
    rows.push(row);
    console.error(`  done: ${row.title}`);
  };
  console.error(`bench:peers on ${adapter}: ${libs.map((l) => l.name).join(", ")}`);
  if (want("matmul512")) {
    progress(
      await matmulRow(
        libs,
        hand,
        512,
        512,
        512,
        8,
        "matmul f32 512³ (×8 queued)",
        "matmul512",
        2.5,
      ),
    );
  }
  if (want("matmul1024")) {
    progress(
      await matmulRow(
        libs,
        hand,
        1024,
        1024,
        1024,
        2,
        "matmul f32 1024³ (×2 queued)",
        "matmul1024",
        2.5,
      ),
    );
  }
  if (want("matmulodd")) {
    progress(
      await matmulRow(
        libs,
        hand,
        1000,
        37,
        513,
        8,
        "matmul f32 1000×37 · 37×513 (×8 queued)",
        "matmulodd",
        1,
      ),
    );
  }
  if (want("add")) progress(await elementwiseRow(libs, hand, "add", 1 << 24, 8));
  if (want("exp")) progress(await elementwiseRow(libs, hand, "exp", 1 << 24, 8));
  if (want("bias")) progress(await elementwiseRow(libs, hand, "bias", 1 << 24, 8));
  if (want("sum")) progress(await sumRow(libs, hand, 1 << 24, 8));
  if (want("chain")) progress(await chainRow(libs, hand, 1000));
  if (want("mlp")) progress(await mlpRow(libs, 20, 10));
  const columns = [
    "littlegrad",
    "littlegrad jit",
    ...peers.flatMap((p) =>
      p === jaxjs || p === jaxWasm ? [`${p.name}`, `${p.name} eager`, `${p.name} jit`] : [p.name]
    ),
  ].filter((c) => rows.some((r) => r.cells[c]));
  printTable(rows, columns, adapter);
  const stats = lg.memoryStats();
  console.log(
    `\nlittlegrad memory after the run: ${stats.liveTensors} live tensors, ${
      (stats.pooledBytes / 2 ** 20).toFixed(1)
    } MiB pooled`,
  );
  if (JSON_OUT) {
    await Deno.writeTextFile(JSON_OUT, JSON.stringify({ adapter, rounds: ROUNDS, rows }, null, 2));
  }
  Deno.exit(0);
}
