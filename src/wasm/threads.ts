/**
 * Worker threads for the wasm backend: each worker instantiates the same
 * kernel modules on the same shared memory and runs a slice of a kernel's
 * outermost loop while the main thread runs another.
 *
 * The backend's ops are synchronous, so a parallel kernel is a fork and a
 * join on the main thread: it writes each worker's slice into that worker's
 * slot of a shared control block, wakes it (`Atomics.notify`), runs its own
 * slice, then blocks (`Atomics.wait`) until every worker has signalled. A
 * worker blocks in `Atomics.wait` between jobs; it compiles a kernel from
 * the module's bytes, which the pool keeps in the shared memory, the first
 * time a job names it. Only kernels that import nothing but the memory run
 * on workers: a worker has none of the main thread's JavaScript functions.
 *
 * Slices split a kernel's outputs, never a reduction, so every output is
 * computed by the same instructions in the same order whatever the number
 * of threads: results do not depend on it.
 *
 * Workers are `node:worker_threads` workers evaluated from source: they need
 * no permission (a module worker loaded from a file needs read access) and
 * are unref'd, so they never keep the process alive. The pool starts with
 * only the main thread; each worker joins when it has started (tens of
 * milliseconds), and until then its slices run on the main thread.
 * @module
 */

import { Worker } from "node:worker_threads";
import type { Heap } from "./heap.ts";

/** Int32 words per worker slot in the control block. */
const SLOT = 64;
/** The slot's words. */
const READY = 0, SEQ = 1, DONE = 2, STATUS = 3, PTR = 4, LEN = 5, NARGS = 6, ARGS = 8;
/** The most arguments a parallel kernel takes. */
export const MAX_THREAD_ARGS = SLOT - ARGS;

/** The worker's whole program (plain JavaScript, evaluated as a CommonJS script). */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { memory, control, slot } = workerData;
const base = slot * ${SLOT};
const kernels = new Map();
Atomics.store(control, base + ${READY}, 1);
Atomics.notify(control, base + ${READY});
let seen = 0;
for (;;) {
  Atomics.wait(control, base + ${SEQ}, seen);
  const seq = Atomics.load(control, base + ${SEQ});
  if (seq === seen) continue;
  seen = seq;
  let status = 1;
  try {
    const ptr = control[base + ${PTR}] >>> 0;
    let run = kernels.get(ptr);
    if (run === undefined) {
      const bytes = new Uint8Array(memory.buffer, ptr, control[base + ${LEN}]).slice();
      const module = new WebAssembly.Module(bytes);
      run = new WebAssembly.Instance(module, { env: { memory } }).exports.run;
      kernels.set(ptr, run);
    }
    const args = [];
    for (let i = 0; i < control[base + ${NARGS}]; i++) args.push(control[base + ${ARGS} + i]);
    run(...args);
  } catch {
    status = 2;
  }
  Atomics.store(control, base + ${STATUS}, status);
  Atomics.store(control, base + ${DONE}, seq);
  Atomics.notify(control, base + ${DONE});
}
`;

/** A kernel that can run on every thread: its function here, and its module's bytes in the heap. */
export interface ThreadKernel {
  /** The kernel's `run` export on the main thread. */
  readonly run: (...args: number[]) => void;
  /** Byte address and length of the module's bytes in the heap. */
  readonly ptr: number;
  readonly len: number;
}

/** Counters, for tests and benchmarks. */
export interface ThreadStats {
  /** Parallel kernel runs. */
  parallelRuns: number;
  /** Slices run by workers. */
  workerSlices: number;
}

/** The main thread and up to `threads - 1` workers on `heap`'s memory. */
export class ThreadPool {
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  private seq = 0;
  /** The thread count asked for (main thread included). */
  private wanted: number;
  readonly stats: ThreadStats = { parallelRuns: 0, workerSlices: 0 };

  constructor(private readonly heap: Heap, threads: number) {
    this.wanted = Math.max(1, Math.floor(threads));
    this.control = new Int32Array(new SharedArrayBuffer(4 * SLOT * 64));
    this.spawn();
  }

  /** Starts workers up to the wanted count (the slots of stopped ones are not reused). */
  private spawn(): void {
    while (this.workers.length < Math.min(this.wanted - 1, 63)) {
      const slot = this.workers.length;
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { memory: this.heap.memory, control: this.control, slot },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /**
   * Sets how many threads (the main one included) parallel kernels use;
   * workers beyond it stay idle, new ones are started. Returns the count.
   */
  setThreads(threads: number): number {
    this.wanted = Math.max(1, Math.floor(threads));
    this.spawn();
    return this.wanted;
  }

  /** The threads a kernel can use now: the main one and the workers that have started. */
  get threads(): number {
    let n = 1;
    for (let w = 0; w < this.wanted - 1 && w < this.workers.length; w++) {
      if (Atomics.load(this.control, w * SLOT + READY) === 1) n++;
    }
    return n;
  }

  /** The thread count asked for. */
  get wantedThreads(): number {
    return this.wanted;
  }

  /** Waits until every wanted worker has started (or `timeoutMs` passed); returns the thread count. */
  async ready(timeoutMs = 10_000): Promise<number> {
    const until = performance.now() + timeoutMs;
    while (this.threads < Math.min(this.wanted, this.workers.length + 1)) {
      if (performance.now() > until) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.threads;
  }

  /** Copies a kernel module's bytes into the heap, so workers can compile it. */
  register(bytes: Uint8Array, run: (...args: number[]) => void): ThreadKernel {
    const { ptr } = this.heap.alloc(bytes.length);
    new Uint8Array(this.heap.buffer, ptr, bytes.length).set(bytes);
    return { run, ptr, len: bytes.length };
  }

  /**
   * Runs `kernel` once per argument list: the first on this thread, the
   * others on ready workers, and returns when all are done. There must be
   * at most `threads` lists. A slice a worker could not run (a trap) runs
   * again here, so its error is thrown from this thread.
   */
  run(kernel: ThreadKernel, slices: readonly (readonly number[])[]): void {
    const ready: number[] = [];
    for (let w = 0; w < this.workers.length && ready.length < slices.length - 1; w++) {
      if (Atomics.load(this.control, w * SLOT + READY) === 1) ready.push(w);
    }
    if (ready.length < slices.length - 1) {
      throw new Error(`internal: ${slices.length} slices for ${ready.length + 1} threads`);
    }
    const seq = ++this.seq;
    const c = this.control;
    ready.forEach((w, i) => {
      const args = slices[i + 1];
      if (args.length > MAX_THREAD_ARGS) throw new Error("internal: too many kernel arguments");
      const base = w * SLOT;
      c[base + PTR] = kernel.ptr;
      c[base + LEN] = kernel.len;
      c[base + NARGS] = args.length;
      args.forEach((a, k) => (c[base + ARGS + k] = a));
      Atomics.store(c, base + SEQ, seq);
      Atomics.notify(c, base + SEQ);
    });
    this.stats.parallelRuns++;
    let mainError: unknown = null;
    try {
      kernel.run(...slices[0]);
    } catch (err) {
      mainError = err;
    }
    const failed: number[] = [];
    ready.forEach((w, i) => {
      const base = w * SLOT;
      // Wait only while DONE still holds the value just read: reading it again
      // for the wait could see the worker's final store and sleep forever.
      for (
        let done = Atomics.load(c, base + DONE);
        done !== seq;
        done = Atomics.load(c, base + DONE)
      ) {
        Atomics.wait(c, base + DONE, done);
      }
      if (c[base + STATUS] === 2) failed.push(i + 1);
      else this.stats.workerSlices++;
    });
    if (mainError !== null) throw mainError;
    for (const i of failed) kernel.run(...slices[i]);
  }
}

/**
 * Splits `[0, extent)` into at most `parts` contiguous ranges of nearly
 * equal size, each a multiple of `align` long except the last.
 */
export function splitRange(extent: number, parts: number, align = 1): [number, number][] {
  const chunk = Math.ceil(Math.ceil(extent / parts) / align) * align;
  const out: [number, number][] = [];
  for (let begin = 0; begin < extent; begin += chunk) {
    out.push([begin, Math.min(extent, begin + chunk)]);
  }
  return out;
}
