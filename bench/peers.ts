/**
 * Peers comparison, in one process, on the same inputs, printed as two tables:
 *
 * - WebGPU: littlegrad's WebGPU backend (`littlegrad`), TensorFlow.js with its
 *   WebGPU backend and jax-js with its WebGPU device, on the same adapter, next
 *   to a hand-tuned WGSL reference; the ratio is littlegrad to the faster of
 *   the WebGPU peers.
 * - CPU: littlegrad's WebAssembly backend (`littlegrad-wasm`), jax-js with its
 *   wasm device, TensorFlow.js with its wasm backend (`tfjs-wasm`) and NumPy
 *   (float32, in a `python3` subprocess); the ratio is littlegrad-wasm to
 *   jax-js-wasm (jit to jit for the MLP), and "of numpy" is littlegrad-wasm's
 *   speed as a fraction of NumPy's (NumPy time ÷ littlegrad-wasm time).
 *
 * Run: `deno task bench:peers` (add `-- --rounds 7` for more rounds, or
 * `-- --only matmul,mlp` for some rows, `-- --libs littlegrad,jax-js-wasm` for
 * some libraries; set `XDG_RUNTIME_DIR` where Mesa needs it).
 *
 * Timing model: every GPU library only enqueues work when an op is called,
 * so each timed iteration queues K independent ops, then waits once for the
 * device (littlegrad `sync()`, tfjs `submitQueue()` + `onSubmittedWorkDone()`,
 * jax-js `blockUntilReady()`); per-op time = iteration time ÷ K. The wait
 * itself costs about 11 ms in Deno whatever the work, so K is chosen to keep
 * it small next to the work. The wasm libraries run each op synchronously
 * when it is called, so the same iteration times K ops back to back (their
 * wait has nothing left to do), again ÷ K. Libraries are interleaved round by
 * round (littlegrad, tfjs-webgpu, jax-js-webgpu, littlegrad-wasm, …) and every
 * figure is the median over the rounds, so drift on a shared machine hits
 * them alike. tfjs has one global backend: each tfjs library makes its own
 * backend the active one (`tf.setBackend`) before each of its checks and
 * rounds, outside the timed region.
 *
 * NumPy is CPU-only and synchronous, so it is timed per op directly: for each
 * row (not the chain or the MLP) a `python3` subprocess reads the row's inputs
 * from its stdin, runs the op once (that result is checked like the others'),
 * runs one untimed warm-up round, then the same number of rounds of K calls
 * timed with `time.perf_counter`, and prints the times as JSON (the median is
 * taken here) followed by the result; it also reports NumPy's version, its
 * BLAS and the BLAS thread count (matmul is the only op NumPy spreads over
 * threads). Its rounds run after the row's in-process rounds, not interleaved
 * with them. Without python3 or NumPy a note says so and the column is absent.
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
import * as tfWasm from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
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
/** Libraries to run (comma-separated names, e.g. `littlegrad,jax-js-wasm`), or all. */
const LIBS = flag("libs", "").split(",").filter(Boolean);
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
  /**
   * The MLP row's variants: `plain` (one, under `name`), `jit` (`name` and
   * `name jit`) or `eager-jit` (`name eager` and `name jit`).
   */
  mlpVariants: "plain" | "jit" | "eager-jit";
  /** Makes this library's backend the active one, before its work (untimed). */
  enter?(): Promise<void>;
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
  mlp(init: MlpInit, opts?: { jit?: boolean; donate?: boolean }): MlpRunner;
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

/**
 * littlegrad's peak memory over `steps` MLP steps above what the loop starts
 * with (parameters and data): eager, jit (donating the parameters) and jit
 * without donation, on each littlegrad backend among `libs`. Not timed.
 */
async function mlpPeaks(
  init: MlpInit,
  steps: number,
  readEvery: number,
  libs: readonly Lib[],
): Promise<string[]> {
  const lines: string[] = [];
  for (const [lib, name] of [[littlegrad, "webgpu"], [littlegradWasm, "wasm"]] as const) {
    if (!libs.includes(lib)) continue;
    const backend = resolveBackend(name);
    const kib = async (opts: { jit?: boolean; donate?: boolean }) => {
      const runner = lib.mlp(init, opts);
      await lg.sync();
      const base = backend.memory().liveBytes;
      backend.resetPeak();
      await runner.run(steps, readEvery);
      const peak = backend.memory().peakBytes - base;
      runner.dispose();
      return `${(peak / 1024).toFixed(0)} KiB`;
    };
    const [eager, jitted, kept] = [
      await kib({}),
      await kib({ jit: true }),
      await kib({ jit: true, donate: false }),
    ];
    lines.push(
      `${lib.name} peak memory over ${steps} steps, above the parameters and data: eager ${eager}, ` +
        `jit ${jitted} (parameters donated; ${kept} without donation)`,
    );
  }
  return lines;
}

/** littlegrad on one of its backends: `webgpu` (named `littlegrad`) or `wasm` (`littlegrad-wasm`). */
const littlegradLib = (backend: "webgpu" | "wasm"): Lib => ({
  name: backend === "webgpu" ? "littlegrad" : "littlegrad-wasm",
  mlpVariants: "jit",
  upload: (data, shape) => lg.tensor(data, { shape, backend }),
  matmul: (a, b) => (a as lg.Tensor).matmul(b as lg.Tensor),
  add: (a, b) => (a as lg.Tensor).add(b as lg.Tensor),
  exp: (a) => (a as lg.Tensor).exp(),
  sum: (a) => (a as lg.Tensor).sum(),
  read: (x) => (x as lg.Tensor).data() as Promise<Float32Array>,
  // Waits for every backend; the wasm backend has already finished.
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
    const t = (data: Float32Array, shape: number[]) => lg.tensor(data, { shape, backend });
    let params: LgParams = {
      w1: t(init.w1, [IN, HIDDEN]),
      b1: t(init.b1, [HIDDEN]),
      w2: t(init.w2, [HIDDEN, OUT]),
      b2: t(init.b2, [OUT]),
    };
    const x = t(init.x, [BATCH, IN]);
    const labels = lg.tensor(init.labels, { backend, dtype: "int32" });
    const loss = (p: LgParams, x: lg.Tensor, labels: lg.Tensor) =>
      lg.softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);
    const step = lg.valueAndGrad(loss);
    // Under jit, the whole step (loss, gradients, update) is one compiled program,
    // which updates the donated parameters in place.
    const jitted = lg.jit((p: LgParams, x: lg.Tensor, labels: lg.Tensor): [lg.Tensor, LgParams] => {
      const [value, grads] = step(p, x, labels);
      return [value, lg.sgd(p, grads, { lr: LR })];
    }, { donateArgnums: opts.donate === false ? [] : 0 });
    return {
      async run(n, readEvery) {
        const reads: Promise<Float32Array>[] = [];
        for (let i = 0; i < n; i++) {
          let value: lg.Tensor;
          if (opts.jit) {
            let next: LgParams;
            [value, next] = jitted(params, x, labels); // disposes the donated params
            if (opts.donate === false) lg.disposeTree(params);
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
});
const littlegrad = littlegradLib("webgpu");
const littlegradWasm = littlegradLib("wasm");

// TensorFlow.js, WebGPU and wasm backends -----------------------------------------------

/** The tfjs WebGPU backend's internals we need to wait without a read. */
interface TfWebGPUBackend {
  device: GPUDevice;
  endComputePassEncoder(): void;
  ensureCommandEncoderReady(): void;
  submitQueue(): void;
}

/**
 * TensorFlow.js on one of its backends. tfjs has one global backend, which
 * `enter` switches to this one; tensors stay on the backend that made them.
 */
const tfjsLib = (backend: "webgpu" | "wasm"): Lib => ({
  name: `tfjs-${backend}`,
  mlpVariants: "plain",
  async enter() {
    if (tf.getBackend() === backend) return;
    if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  },
  upload: (data, shape) => tf.tensor(data, shape),
  matmul: (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
  add: (a, b) => tf.add(a as tf.Tensor, b as tf.Tensor),
  exp: (a) => tf.exp(a as tf.Tensor),
  sum: (a) => tf.sum(a as tf.Tensor),
  read: async (x) => new Float32Array(await (x as tf.Tensor).data()),
  async wait() {
    // The wasm backend ran every op when it was called: nothing to wait for.
    if (backend === "wasm") return;
    // What tfjs itself does before a read: end the open pass, submit the encoder.
    const gpu = tf.backend() as unknown as TfWebGPUBackend;
    gpu.endComputePassEncoder();
    gpu.ensureCommandEncoderReady();
    gpu.submitQueue();
    await gpu.device.queue.onSubmittedWorkDone();
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
});
const tfjs = tfjsLib("webgpu");
const tfjsWasm = tfjsLib("wasm");

// jax-js, WebGPU device ---------------------------------------------------------------

type JaxParams = { w1: jax.Array; b1: jax.Array; w2: jax.Array; b2: jax.Array };
const jnp = jax.numpy;

/** jax-js on one of its devices: `webgpu` (the same adapter), or `wasm` (its CPU backend). */
const jaxLib = (device: "webgpu" | "wasm"): Lib => ({
  name: `jax-js-${device}`,
  mlpVariants: "eager-jit",
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

/** What the tfjs wasm backend runs with (for the CPU table's heading). */
let tfjsWasmInfo = "";

async function setupTfjs(): Promise<Lib[]> {
  const libs: Lib[] = [];
  try {
    // Without this, tfjs runs ops on tensors under 1000 elements on the CPU.
    tf.env().set("WEBGPU_CPU_FORWARD", false);
    if (!(await tf.setBackend("webgpu"))) throw new Error("setBackend('webgpu') returned false");
    await tf.ready();
    libs.push(tfjs);
  } catch (err) {
    notes.push(`tfjs-webgpu unavailable: ${err instanceof Error ? err.message : err}`);
  }
  try {
    // The wasm backend loads its .wasm from beside its module (node's fs; --allow-read).
    // Where that fails, point it there explicitly and try once more.
    if (!(await tf.setBackend("wasm"))) {
      const url = import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
      tfWasm.setWasmPaths(new URL("./", url).href);
      if (!(await tf.setBackend("wasm"))) {
        throw new Error(`setBackend('wasm') returned false, also with setWasmPaths(${url})`);
      }
    }
    await tf.ready();
    const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
    const threads = tfWasm.getThreadsCount();
    tfjsWasmInfo = `tfjs-wasm ${simd ? "SIMD" : "no SIMD"}, ${threads} thread${
      threads === 1 ? "" : "s"
    }`;
    libs.push(tfjsWasm);
  } catch (err) {
    notes.push(`tfjs-wasm unavailable: ${err instanceof Error ? err.message : err}`);
  }
  return libs;
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

// NumPy, in a python3 subprocess ------------------------------------------------------------

/**
 * The subprocess. stdin: one JSON line `{op, shapes, queue, rounds}`, then
 * each input as raw float32 (C order). stdout: one JSON line `{times, dtype,
 * info}` (per-op milliseconds of each round), then the result as raw float32.
 * `{op: "info"}` alone prints `{info}`.
 */
const NUMPY_SCRIPT = String.raw`
import json, os, sys, time

def blas_info(np):
    info = {"numpy": np.__version__, "blas": None, "threads": None}
    try:
        import threadpoolctl
        for pool in threadpoolctl.threadpool_info():
            if pool.get("user_api") == "blas":
                info["blas"] = "%s %s" % (pool.get("internal_api"), pool.get("version"))
                info["threads"] = pool.get("num_threads")
                return info
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = "%s %s" % (blas.get("name"), blas.get("version"))
    except Exception:
        pass
    try:
        import ctypes, glob
        libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
        for path in glob.glob(libs):
            lib = ctypes.CDLL(path)
            for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                           "openblas_get_num_threads"):
                if hasattr(lib, symbol):
                    info["threads"] = getattr(lib, symbol)()
                    return info
    except Exception:
        pass
    return info

def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    spec = json.loads(stdin.readline())
    import numpy as np
    info = blas_info(np)
    if spec["op"] == "info":
        stdout.write(json.dumps({"info": info}).encode() + b"\n")
        return
    inputs = []
    for shape in spec["shapes"]:
        a = np.empty(shape, np.float32)
        view, got = memoryview(a).cast("B"), 0
        while got < len(view):
            n = stdin.readinto(view[got:])
            if not n:
                raise EOFError("input truncated")
            got += n
        inputs.append(a)
    op = {
        "matmul": lambda a, b: a @ b,
        "add": lambda a, b: a + b,
        "exp": lambda a: np.exp(a),
        "sum": lambda a: a.sum(),
    }[spec["op"]]
    result = np.asarray(op(*inputs))
    queue = spec["queue"]
    def round_ms():
        results = []
        t0 = time.perf_counter()
        for _ in range(queue):
            results.append(op(*inputs))
        return (time.perf_counter() - t0) * 1000 / queue
    round_ms()  # warm-up
    times = [round_ms() for _ in range(spec["rounds"])]
    meta = {"times": times, "dtype": str(result.dtype), "info": info}
    stdout.write(json.dumps(meta).encode() + b"\n")
    stdout.write(np.ascontiguousarray(result, np.float32).tobytes())

main()
`;

/** NumPy's version, BLAS and BLAS threads, as the subprocess reports them. */
interface NumpyInfo {
  numpy: string;
  blas: string | null;
  threads: number | null;
}

/** What one subprocess run returned. */
interface NumpyRun {
  times: number[];
  dtype: string;
  info: NumpyInfo;
  out: Float32Array;
}

/** NumPy as found by `setupNumpy`, or null (the column is absent). */
let numpy: NumpyInfo | null = null;

/** Runs the subprocess on `spec`, feeding it `inputs`. */
async function runNumpy(
  spec: Record<string, unknown>,
  inputs: { data: Float32Array; shape: number[] }[] = [],
): Promise<NumpyRun> {
  const child = new Deno.Command("python3", {
    args: ["-c", NUMPY_SCRIPT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const feed = (async () => {
    const writer = child.stdin.getWriter();
    const header = { ...spec, shapes: inputs.map((x) => x.shape), rounds: ROUNDS };
    await writer.write(new TextEncoder().encode(JSON.stringify(header) + "\n"));
    for (const { data } of inputs) {
      await writer.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    await writer.close();
  })().catch(() => {}); // a subprocess that died early reports through its stderr
  const [result] = await Promise.all([child.output(), feed]);
  const stdout = result.stdout;
  const eol = stdout.indexOf(10);
  if (!result.success || eol < 0) {
    const err = new TextDecoder().decode(result.stderr).trim().split("\n");
    throw new Error(`python3 exited with ${result.code}: ${err[err.length - 1] ?? ""}`);
  }
  const meta = JSON.parse(new TextDecoder().decode(stdout.subarray(0, eol)));
  // Copy: the result need not start at a multiple of 4 bytes.
  return { ...meta, out: new Float32Array(stdout.slice(eol + 1).buffer) };
}

async function setupNumpy(): Promise<void> {
  try {
    numpy = (await runNumpy({ op: "info" })).info;
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "python3 not found"
      : err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied
      ? "no permission to run python3 (--allow-run=python3)"
      : err instanceof Error
      ? err.message
      : String(err);
    notes.push(`numpy unavailable: ${why}`);
  }
}

/** NumPy runs in the CPU phase only (rows are measured twice: the WebGPU libraries, then the CPU ones). */
let numpyPhase = false;

/**
 * NumPy's cell for a row: `op` on `inputs`, `queue` calls a round, its first
 * result checked by `verify`; null without NumPy.
 */
async function numpyCell(
  op: "matmul" | "add" | "exp" | "sum",
  inputs: { data: Float32Array; shape: number[] }[],
  queue: number,
  verify: (out: Float32Array) => string | null,
): Promise<Cell | null> {
  if (!numpy || !numpyPhase) return null;
  try {
    const run = await runNumpy({ op, queue }, inputs);
    const ms = median(run.times);
    const wrong = run.dtype === "float32" ? verify(run.out) : `result dtype ${run.dtype}`;
    return wrong ? { ms: null, status: "wrong", detail: `${wrong}; took ${fmtMs(ms)}` } : { ms };
  } catch (err) {
    return {
      ms: null,
      status: "error",
      detail: err instanceof Error ? err.message.split("\n")[0] : String(err),
    };
  }
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
  /** The WebGPU target: littlegrad at least this many times faster than the faster WebGPU peer. */
  target: number;
  /** Optional note about the target. */
  targetNote?: string;
  /**
   * The CPU table's target: littlegrad-wasm at least this many times faster
   * than jax-js-wasm (jit against jit for the MLP); none where absent.
   */
  wasmTarget?: number;
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
      await lib.enter?.();
      const wrong = await check(lib);
      if (wrong) {
        // Still time it, to show what the wrong answer costs, but mark it.
        cells[lib.name] = { ms: null, status: "wrong", detail: wrong };
      } else {
        cells[lib.name] = { ms: null };
      }
      valid.push(lib);
      // Warm-up, at least 300 ms: pipelines compiled, pools filled, and
      // WebAssembly tiered up (V8 first runs baseline code, on every worker).
      const until = performance.now() + 300;
      do await timed(lib); while (performance.now() < until);
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
    for (const lib of valid) {
      await lib.enter?.(); // outside the timed body
      times.get(lib.name)!.push(await timed(lib));
    }
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
  const verify = (out: Float32Array) => {
    if (out.length !== m * n) return `${out.length} values, expected ${m * n}`;
    const w = worst(out, ref, samples, 1e-3 * Math.sqrt(k), 1e-4);
    return w.ratio > 1 ? `C[${w.at}] = ${w.got}, expected ${w.want.toFixed(5)}` : null;
  };
  const cells = await measure(
    libs,
    async (lib) => {
      const [a, b] = get(lib);
      const c = lib.matmul(a, b);
      const out = await lib.read(c);
      lib.dispose([c]);
      return verify(out);
    },
    (lib) => {
      const [a, b] = get(lib);
      return queued(lib, queue, () => lib.matmul(a, b));
    },
  );
  for (const [lib, pair] of inputs) lib.dispose(pair);
  const np = await numpyCell(
    "matmul",
    [{ data: aData, shape: [m, k] }, { data: bData, shape: [k, n] }],
    queue,
    verify,
  );
  if (np) cells.numpy = np;
  const row: Row = {
    key,
    title,
    rate: (ms) => `${(2 * m * n * k / ms / 1e6).toFixed(1)} GFLOP/s`,
    target,
    wasmTarget: 1.5,
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
  const verify = (out: Float32Array) => {
    if (out.length !== n) return `${out.length} values, expected ${n}`;
    // add is exact in float32; exp within a few ulp.
    const w = worst(out, expected, out.keys(), 0, kind === "exp" ? 1e-5 : 0);
    return w.ratio > (kind === "exp" ? 1 : 0) ? `z[${w.at}] = ${w.got}, expected ${w.want}` : null;
  };
  const cells = await measure(
    libs,
    async (lib) => {
      const z = op(lib, get(lib));
      const out = await lib.read(z);
      lib.dispose([z]);
      return verify(out);
    },
    (lib) => {
      const xs = get(lib);
      return queued(lib, queue, () => op(lib, xs));
    },
  );
  for (const [lib, xs] of inputs) lib.dispose(xs);
  const np = await numpyCell(
    kind === "exp" ? "exp" : "add",
    [{ data: xData, shape: xShape }, ...(yData ? [{ data: yData, shape: yShape }] : [])],
    queue,
    verify,
  );
  if (np) cells.numpy = np;
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
    wasmTarget: kind === "bias" ? undefined : 1,
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
  let magnitude = 0;
  for (let i = 0; i < n; i++) magnitude += Math.abs(xData[i]);
  // A float32 sum is counted correct within one float32 ulp of Σ|x| (about 1.6
  // here): a plain running sum stays inside it, a lost or repeated chunk does
  // not. Each library's error is printed under the table.
  const tolerance = 2 ** -23 * magnitude;
  const errors = new Map<string, number>();
  const verify = (out: Float32Array, name: string) => {
    if (out.length === 1) errors.set(name, out[0] - exact);
    const ok = out.length === 1 && Math.abs(out[0] - exact) <= tolerance;
    return ok ? null : `${out[0]}, expected ${exact.toFixed(4)} (± ${tolerance.toFixed(2)})`;
  };
  const cells = await measure(
    libs,
    async (lib) => {
      const s = lib.sum(get(lib));
      const out = await lib.read(s);
      lib.dispose([s]);
      return verify(out, lib.name);
    },
    (lib) => queued(lib, queue, () => lib.sum(get(lib))),
  );
  for (const [lib, x] of inputs) lib.dispose([x]);
  const np = await numpyCell(
    "sum",
    [{ data: xData, shape: [n] }],
    queue,
    (out) => verify(out, "numpy"),
  );
  if (np) cells.numpy = np;
  const row: Row = {
    note: `sum of ${n} float32 normals, error against the float64 sum ${exact.toFixed(4)}: ` +
      [...errors].map(([name, e]) => `${name} ${e.toExponential(2)}`).join(", "),
    key: "sum",
    title: `sum ${n >> 20}M f32 (×${queue} queued)`,
    rate: (ms) => `${(4 * n / ms / 1e6).toFixed(1)} GB/s`,
    target: 5,
    wasmTarget: 1,
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
    lib.mlpVariants === "eager-jit"
      ? [{ lib, name: `${lib.name} eager` }, { lib, name: `${lib.name} jit`, jit: true }]
      : lib.mlpVariants === "jit"
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
  const firsts: string[] = [];
  for (const v of variants) {
    try {
      await v.lib.enter?.();
      // The first step of a new runner (a new jitted function: trace, compile, one read).
      const pipelines = lgStats().pipelinesCreated;
      const t0 = performance.now();
      await fresh(v).run(1, 1);
      const made = v.lib === littlegrad
        ? `, ${lgStats().pipelinesCreated - pipelines} pipelines`
        : "";
      firsts.push(`${v.name} ${fmtMs(performance.now() - t0)}${made}`);
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
      await v.lib.enter?.(); // outside the timed region
      // littlegrad's WebGPU counters: for the webgpu library only.
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
  const memory = await mlpPeaks(init, steps, readEvery, live.map((v) => v.lib));
  for (const v of live) {
    runners.get(v.name)!.dispose();
    const ms = median(times.get(v.name)!);
    if (cells[v.name].status === "wrong") cells[v.name].detail += `; took ${fmtMs(ms)}/step`;
    else cells[v.name].ms = ms;
  }
  return {
    note: [note, ...memory, `first step (trace, compile, read): ${firsts.join("; ")}`]
      .filter(Boolean).join("\n"),
    key: "mlp",
    title:
      `MLP step ${IN}→${HIDDEN}→${OUT}, batch ${BATCH}, grads + SGD (per step, ${steps} steps, loss read every ${readEvery})`,
    target: 2,
    wasmTarget: 2,
    cells,
  };
}

// ---- report ------------------------------------------------------------------------------

/** The fastest valid cell of `row` among the columns `names`. */
function fastest(row: Row, names: string[]): { name: string; ms: number } | null {
  let best: { name: string; ms: number } | null = null;
  for (const name of names) {
    const ms = row.cells[name]?.ms ?? null;
    if (ms !== null && (!best || ms < best.ms)) best = { name, ms };
  }
  return best;
}

function cellText(row: Row, cell: Cell | undefined): string {
  if (!cell) return "—";
  if (cell.ms === null) return cell.status ?? "—";
  return row.rate ? `${fmtMs(cell.ms)} (${row.rate(cell.ms)})` : fmtMs(cell.ms);
}

/** The table columns of a library (the MLP row's variants have their own). */
function columnsOf(lib: Lib): string[] {
  return lib.mlpVariants === "eager-jit"
    ? [lib.name, `${lib.name} eager`, `${lib.name} jit`]
    : lib.mlpVariants === "jit"
    ? [lib.name, `${lib.name} jit`]
    : [lib.name];
}

/** A column computed from a whole row (ratios, targets). */
interface Summary {
  header: string;
  text(row: Row): string;
}

function printTable(heading: string, rows: Row[], columns: string[], summaries: Summary[]): void {
  const header = ["work", ...columns, ...summaries.map((s) => s.header)];
  const lines = rows.map((row) => [
    row.title,
    ...columns.map((c) => cellText(row, row.cells[c])),
    ...summaries.map((s) => s.text(row)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(`\n${heading}\n`);
  console.log(fmt(header));
  console.log(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`);
  for (const l of lines) console.log(fmt(l));
}

/** The WebGPU summary: littlegrad against the faster WebGPU peer. */
function webgpuSummaries(peerColumns: string[]): Summary[] {
  const ratio = (row: Row) => {
    const peer = fastest(row, peerColumns);
    const lgMs = row.cells.littlegrad?.ms ?? null;
    return peer && lgMs ? { peer, ratio: peer.ms / lgMs } : null;
  };
  return [
    { header: "hand-tuned WGSL", text: (row) => cellText(row, row.hand) },
    {
      header: "littlegrad vs faster peer",
      text(row) {
        const r = ratio(row);
        return r ? `${r.ratio.toFixed(2)}× (${r.peer.name})` : "—";
      },
    },
    { header: "target", text: (row) => row.targetNote ?? `≥ ${row.target}×` },
    {
      header: "met",
      text(row) {
        const r = ratio(row);
        return r === null ? "?" : r.ratio >= row.target ? "yes" : "no";
      },
    },
  ];
}

/** The CPU summary: littlegrad-wasm against jax-js-wasm (jit against jit for the MLP), and NumPy. */
function cpuSummaries(): Summary[] {
  const lgName = (row: Row) => row.key === "mlp" ? "littlegrad-wasm jit" : "littlegrad-wasm";
  const jaxName = (row: Row) => row.key === "mlp" ? "jax-js-wasm jit" : "jax-js-wasm";
  const ratio = (row: Row) => {
    const lgMs = row.cells[lgName(row)]?.ms ?? null;
    const jaxMs = row.cells[jaxName(row)]?.ms ?? null;
    return lgMs && jaxMs ? jaxMs / lgMs : null;
  };
  const ofNumpy: Summary = {
    header: "of numpy",
    text(row) {
      const lgMs = row.cells[lgName(row)]?.ms ?? null;
      const npMs = row.cells.numpy?.ms ?? null;
      return lgMs && npMs ? `${(100 * npMs / lgMs).toFixed(0)}%` : "—";
    },
  };
  return [
    {
      header: "littlegrad-wasm vs jax-js-wasm",
      text(row) {
        const r = ratio(row);
        return r === null ? "—" : `${r.toFixed(2)}×${row.key === "mlp" ? " (jit vs jit)" : ""}`;
      },
    },
    {
      header: "wasm target",
      text: (row) => row.wasmTarget === undefined ? "—" : `≥ ${row.wasmTarget}×`,
    },
    {
      header: "met",
      text(row) {
        if (row.wasmTarget === undefined) return "—";
        const r = ratio(row);
        return r === null ? "?" : r >= row.wasmTarget ? "yes" : "no";
      },
    },
    ...(numpy ? [ofNumpy] : []),
  ];
}
function printReport(rows: Row[], gpuLibs: Lib[], cpuLibs: Lib[]): void {
  const present = (c: string) => rows.some((r) => r.cells[c]);
  const gpuColumns = gpuLibs.flatMap(columnsOf).filter(present);
  const gpuPeerColumns = gpuLibs.filter((l) => l !== littlegrad).flatMap(columnsOf);
  const rounds = `Deno ${Deno.version.deno} | medians of ${ROUNDS} rounds`;
  if (gpuLibs.length) {
    printTable(
      `WebGPU, adapter: ${resolveBackend("webgpu").adapter} | ${rounds}`,
      rows,
      gpuColumns,
      webgpuSummaries(gpuPeerColumns),
    );
  }
  const cpuColumns = [...cpuLibs.flatMap(columnsOf), "numpy"].filter(present);
  const cpu = [
    `littlegrad-wasm on ${resolveBackend("wasm").adapter}`,
    ...(tfjsWasmInfo ? [tfjsWasmInfo] : []),
    ...(numpy
      ? [
        `numpy ${numpy.numpy} (${numpy.blas ?? "BLAS unknown"}, ${
          numpy.threads ?? "?"
        } BLAS threads)`,
      ]
      : []),
  ];
  if (cpuLibs.length) {
    printTable(
      `CPU, ${navigator.hardwareConcurrency} cores: ${cpu.join("; ")} | ${rounds}`,
      rows,
      cpuColumns,
      cpuSummaries(),
    );
  }
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
  if (
    JSON_OUT && Deno.permissions.querySync({ name: "write", path: JSON_OUT }).state !== "granted"
  ) {
    console.error(
      `bench:peers: --json ${JSON_OUT} needs write access: run bench/peers.ts with ` +
        `deno run and --allow-write=${JSON_OUT} (the task grants none)`,
    );
    Deno.exit(1);
  }
  const adapter = resolveBackend("webgpu").adapter;
  const peers = [...(await setupTfjs()), ...(await setupJax())];
  await setupNumpy();
  const gpuLibs = [littlegrad, ...[tfjs, jaxjs].filter((l) => peers.includes(l))];
  const cpuLibs = [littlegradWasm, ...[jaxWasm, tfjsWasm].filter((l) => peers.includes(l))];
  const known = [...gpuLibs, ...cpuLibs].map((l) => l.name);
  const unknown = LIBS.filter((name) => !known.includes(name));
  if (unknown.length) {
    console.error(`bench:peers: --libs ${unknown.join(", ")}: not among ${known.join(", ")}`);
    Deno.exit(1);
  }
  const chosen = (l: Lib) => LIBS.length === 0 || LIBS.includes(l.name);
  const libs = [...gpuLibs, ...cpuLibs].filter(chosen);
  const hand = await handTuned();
  const want = (key: string) => ONLY.length === 0 || ONLY.some((o) => key.startsWith(o));
  console.error(
    `bench:peers on ${adapter} and the CPU: ${
      [...libs.map((l) => l.name), ...(numpy ? ["numpy"] : [])].join(", ")
    }`,
  );
  // Two phases: the CPU libraries (interleaved round by round), then the
  // WebGPU ones. Kept apart, CPU first, because a software adapter runs on
  // the same cores: timed after WebGPU work, the CPU libraries all ran
  // slower (jax-js-wasm's matmul 512³ at 26 against 37 GFLOP/s).
  const phase = async (libs: Lib[], hand: HandTuned | null): Promise<Row[]> => {
    const rows: Row[] = [];
    if (libs.length === 0) return rows;
    const progress = (row: Row) => {
      rows.push(row);
      console.error(`  done: ${row.title} (${libs.map((l) => l.name).join(", ")})`);
    };
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
    return rows;
  };
  numpyPhase = true;
  const cpuRows = await phase(cpuLibs.filter(chosen), null);
  numpyPhase = false;
  const gpuRows = await phase(gpuLibs.filter(chosen), hand);
  // One row per workload, with the cells (and notes) of both phases.
  const cpuOnly = cpuRows.filter((r) => !gpuRows.some((g) => g.key === r.key));
  const rows = [...gpuRows, ...cpuOnly].map((row) => {
    const cpu = cpuRows.find((r) => r.key === row.key);
    if (!cpu || cpu === row) return row;
    const note = [row.note, cpu.note].filter(Boolean).join("\n");
    return { ...row, cells: { ...row.cells, ...cpu.cells }, note: note || undefined };
  });
  printReport(rows, gpuLibs.filter(chosen), cpuLibs.filter(chosen));
  const stats = lg.memoryStats();
  console.log(
    `\nlittlegrad memory after the run: ${stats.liveTensors} live tensors, ${
      (stats.pooledBytes / 2 ** 20).toFixed(1)
    } MiB pooled`,
  );
  if (JSON_OUT) {
    await Deno.writeTextFile(
      JSON_OUT,
      JSON.stringify(
        {
          adapter,
          wasm: resolveBackend("wasm").adapter,
          tfjsWasmInfo,
          numpy,
          rounds: ROUNDS,
          rows,
        },
        null,
        2,
      ),
    );
  }
  Deno.exit(0);
}
