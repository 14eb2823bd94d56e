/**
 * Shared helpers for the `deno bench` suite in `bench/` (not a bench file
 * itself: `deno bench` only runs `*_bench.ts`).
 *
 * Timing model: littlegrad ops only enqueue GPU work, and waiting for the
 * queue (`await sync()`) costs a fixed ~10 ms in Deno on top of the work
 * itself. Each bench therefore queues `K` operations, waits once, and names
 * `×K` in its title: the time per operation is `time/iter ÷ K`. Inputs are
 * created once, before the first timed region; every result is disposed
 * inside the iteration, and a leak check fails the bench if live tensors or
 * bytes grow from one iteration to the next.
 * @module
 */

import {
  availableBackends,
  backendInfo,
  type BackendName,
  memoryStats,
  sync,
  type Tensor,
  tensor,
} from "../mod.ts";

/** The backends every bench is registered for, WebGPU first. */
export const BACKENDS: readonly BackendName[] = ["webgpu", "wasm", "cpu"];

/** Whether `backend` can run here; a bench for a missing one is registered with `ignore: true`. */
export function available(backend: BackendName): boolean {
  return availableBackends().includes(backend);
}

/** Why WebGPU cannot be used here, or `null` where it can. */
export function webgpuUnavailableReason(): string | null {
  if (available("webgpu")) return null;
  try {
    tensor(0, { backend: "webgpu" }).dispose();
    return "unknown reason";
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

const ignored: string[] = [];

/**
 * `Deno.bench` that also remembers the benches it registers with
 * `ignore: true`: Deno's reporter does not list ignored benches, so
 * `printHeader` / `printIgnored` name them.
 */
export function bench(def: Deno.BenchDefinition): void {
  if (def.ignore) ignored.push(def.name);
  Deno.bench(def);
}

/** Prints the benches this file registered as ignored, and why (nothing when none). */
export function printIgnored(file: string): void {
  if (ignored.length === 0) return;
  console.log(
    `${file}: ${ignored.length} bench(es) registered with ignore: true ` +
      `(${webgpuUnavailableReason() ?? "backend unavailable"}):\n` +
      ignored.map((name) => `  - ${name}`).join("\n") + "\n",
  );
}

/**
 * Prints the one-time header: adapter, backends, how to read the figures,
 * and the ignored benches. Call it after registering the file's benches.
 */
export function printHeader(file: string): void {
  const info = backendInfo();
  const lines = [
    "littlegrad benchmarks",
    `  default backend: ${info.name} | adapter: ${info.adapter}`,
    `  backends here:   ${availableBackends().join(", ")}`,
    "  each bench queues ×K ops, then one `await sync()` inside the timed region;",
    "  time per op = time/iter ÷ K (the empty-queue sync floor is benched too).",
  ];
  console.log(lines.join("\n") + "\n");
  printIgnored(file);
}

/**
 * Memoizes an async fixture: `setup` runs once, on the first iteration and
 * before its timed region, and its uploads are waited for.
 */
export function fixture<T>(setup: () => T): () => Promise<T> {
  let value: Promise<T> | null = null;
  return () =>
    value ??= (async () => {
      const result = setup();
      await sync();
      return result;
    })();
}

/**
 * Fails a bench whose iterations leak: after the first iteration (which may
 * legitimately cache constants) live tensors and live bytes must stay flat.
 */
export class LeakCheck {
  #expected: { liveTensors: number; liveBytes: number } | null = null;

  constructor(readonly label: string) {}

  /** Call after an iteration has disposed everything it created. */
  check(): void {
    const { liveTensors, liveBytes } = memoryStats();
    if (!this.#expected) {
      this.#expected = { liveTensors, liveBytes };
      return;
    }
    const e = this.#expected;
    if (liveTensors !== e.liveTensors || liveBytes !== e.liveBytes) {
      throw new Error(
        `${this.label}: memory grew between iterations: ` +
          `live tensors ${e.liveTensors} → ${liveTensors}, ` +
          `live bytes ${e.liveBytes} → ${liveBytes}`,
      );
    }
  }
}

/** `Deno.bench` options controlling how many iterations run. */
export interface Runs {
  /** Measured iterations (Deno may add a few more to fill its time budget). */
  n: number;
  /** Warmup iterations (must be ≥ 1: Deno treats 0 as its default). */
  warmup: number;
}

/** What `benchQueued` registers. */
export interface QueuedBench<T> {
  /** Operation name, e.g. `matmul 512`; `×K [backend]` is appended. */
  name: string;
  /** Deno bench group. */
  group: string;
  /** Operations queued per iteration before the one sync. */
  k: number;
  /** Creates the inputs on `backend` (called once, untimed). */
  setup: (backend: BackendName) => T;
  /** Queues one operation and returns its result, which is disposed after timing. */
  op: (inputs: T) => Tensor;
  /** Iteration counts per backend; a backend without an entry is not benched. */
  runs: Partial<Record<BackendName, Runs>>;
  /** Whether these benches are the group's baseline (default: the CPU one is). */
  baseline?: boolean;
  /** Registers the benches as ignored (besides where their backend is missing). */
  ignore?: boolean;
}

/**
 * Registers one bench per backend that queues `k` results of `op`, waits
 * for the device once, and disposes the results after the timed region. The
 * CPU bench is the group's baseline when there is one.
 */
export function benchQueued<T>(spec: QueuedBench<T>): void {
  for (const backend of BACKENDS) {
    const runs = spec.runs[backend];
    if (!runs) continue;
    const name = `${spec.name} ×${spec.k} [${backend}]`;
    const inputs = fixture(() => spec.setup(backend));
    const leaks = new LeakCheck(name);
    bench({
      name,
      group: spec.group,
      baseline: spec.baseline ?? backend === "cpu",
      ignore: !available(backend) || spec.ignore === true,
      ...runs,
      async fn(b) {
        const x = await inputs();
        const results: Tensor[] = new Array(spec.k);
        b.start();
        for (let i = 0; i < spec.k; i++) results[i] = spec.op(x);
        await sync();
        b.end();
        for (const r of results) r.dispose();
        leaks.check();
      },
    });
  }
}
