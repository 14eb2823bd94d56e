/**
 * Backend selection. On import, littlegrad asks Deno's built-in WebGPU for an
 * adapter once; the default backend is WebGPU on a hardware adapter and the
 * wasm backend where the only adapter is a software one (a GPU emulated on
 * the CPU is slower than WebAssembly on the same CPU) or where there is none.
 * The CPU backend is the TypeScript reference the others are tested against.
 * @module
 */

import type { Backend } from "./backend.ts";
import { createCpuBackend } from "./backend_cpu.ts";
import { createWasmBackend } from "./backend_wasm.ts";
import { createWebGPUBackend } from "./backend_webgpu.ts";

/** Names of the backends a tensor can live on. */
export type BackendName = "webgpu" | "wasm" | "cpu";

const cpu = createCpuBackend();
const wasm = createWasmBackend();
let webgpu: Backend | null = null;
let webgpuError = "";
try {
  webgpu = await createWebGPUBackend();
  if (!webgpu) {
    webgpuError = "navigator.gpu.requestAdapter() returned no adapter";
  }
} catch (err) {
  webgpuError = err instanceof Error ? err.message : String(err);
}
/** Why the default backend was chosen. */
const defaultReason = !webgpu
  ? `no WebGPU adapter (${webgpuError})`
  : webgpu.software
  ? `the only WebGPU adapter, ${webgpu.adapter}, is a software one`
  : `a hardware WebGPU adapter: ${webgpu.adapter}`;
const defaultBackend = webgpu && !webgpu.software ? webgpu : wasm;
let current: Backend = defaultBackend;

/**
 * Returns the backend object for a name, or the default one.
 * @internal
 */
export function resolveBackend(name?: BackendName): Backend {
  if (name === undefined) return current;
  if (name === "cpu") return cpu;
  if (name === "wasm") return wasm;
  if (name === "webgpu") {
    if (!webgpu) {
      throw new Error(
        `WebGPU backend is not available on this machine: ${webgpuError}`,
      );
    }
    return webgpu;
  }
  throw new TypeError(
    `unknown backend '${String(name)}' (expected 'webgpu', 'wasm' or 'cpu')`,
  );
}

/** Where new tensors are created when no backend is named. */
export interface BackendInfo {
  /** The backend's name. */
  name: BackendName;
  /** The adapter (GPU) or a description of the CPU backend. */
  adapter: string;
  /** Why littlegrad chose the default backend on this machine (whatever is in use now). */
  reason: string;
}

/** Options of {@linkcode useBackend}. */
export interface UseBackendOptions {
  /**
   * The `"wasm"` backend only: how many threads (the main one included)
   * its large kernels are split across. The default is the machine's
   * cores (at most 16); 1 runs everything on the main thread. Results are
   * the same for every count.
   */
  threads?: number;
}

/**
 * Sets the backend new tensors are created on by default.
 *
 * @param name `"webgpu"`, `"wasm"` or `"cpu"`.
 * @param options `threads` for the wasm backend.
 * @returns The chosen backend's description.
 * @example
 * ```ts
 * import { tensor, useBackend } from "littlegrad";
 * useBackend("cpu");
 * const x = tensor([1, 2, 3]); // lives on the CPU backend
 * useBackend("wasm", { threads: 1 }); // WebAssembly, on the main thread only
 * ```
 */
export function useBackend(name: BackendName, options: UseBackendOptions = {}): BackendInfo {
  const backend = resolveBackend(name);
  if (options.threads !== undefined) {
    const { threads } = options;
    const pool = (backend as { threads?: { setThreads(n: number): number } }).threads;
    if (!pool) {
      throw new TypeError(`useBackend: 'threads' applies to the 'wasm' backend, not '${name}'`);
    }
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`useBackend: threads must be a positive integer, got ${threads}`);
    }
    pool.setThreads(threads);
  }
  current = backend;
  return backendInfo();
}

/**
 * Describes the default backend and its adapter.
 *
 * @returns `{ name, adapter, reason }`, e.g. `{ name: "wasm", adapter: "WebAssembly SIMD (2 threads)",
 * reason: "the only WebGPU adapter, llvmpipe (LLVM 15.0.6, 256 bits), is a software one" }`.
 * @example
 * ```ts
 * import { backendInfo } from "littlegrad";
 * const { name, reason } = backendInfo();
 * console.log(`${name}: ${reason}`); // "webgpu" on a GPU, else "wasm"
 * ```
 */
export function backendInfo(): BackendInfo {
  return { name: current.name, adapter: current.adapter, reason: defaultReason };
}

/**
 * Lists the backends usable on this machine (`"wasm"` and `"cpu"` always).
 *
 * @returns The available backend names, the default one first.
 * @example
 * ```ts
 * import { availableBackends } from "littlegrad";
 * if (availableBackends().includes("webgpu")) console.log("GPU ready");
 * ```
 */
export function availableBackends(): BackendName[] {
  const all: Backend[] = webgpu ? [webgpu, wasm, cpu] : [wasm, cpu];
  return [defaultBackend, ...all.filter((b) => b !== defaultBackend)].map((b) => b.name);
}

/**
 * Resolves when the WebGPU backend can run work: at once normally; after the
 * GPU device was lost, when littlegrad has acquired a new one (tensors made
 * before the loss stay unusable and must be recreated). Rejects, explaining
 * why, if no device can be had.
 *
 * @returns The default backend's description once ready.
 * @example
 * ```ts
 * import { deviceReady } from "littlegrad";
 * console.log((await deviceReady()).adapter);
 * ```
 */
export async function deviceReady(): Promise<BackendInfo> {
  await webgpu?.ready();
  return backendInfo();
}

/** @internal Every backend object, for memory statistics. */
export function allBackends(): Backend[] {
  return webgpu ? [webgpu, wasm, cpu] : [wasm, cpu];
}
