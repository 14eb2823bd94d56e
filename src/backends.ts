/**
 * Backend selection. On import, littlegrad asks Deno's built-in WebGPU for an
 * adapter once; the default backend is WebGPU when one exists and the CPU
 * reference backend otherwise.
 * @module
 */

import type { Backend } from "./backend.ts";
import { createCpuBackend } from "./backend_cpu.ts";
import { createWebGPUBackend } from "./backend_webgpu.ts";

/** Names of the backends a tensor can live on. */
export type BackendName = "webgpu" | "cpu";

const cpu = createCpuBackend();
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
let current: Backend = webgpu ?? cpu;

/**
 * Returns the backend object for a name, or the default one.
 * @internal
 */
export function resolveBackend(name?: BackendName): Backend {
  if (name === undefined) return current;
  if (name === "cpu") return cpu;
  if (name === "webgpu") {
    if (!webgpu) {
      throw new Error(
        `WebGPU backend is not available on this machine: ${webgpuError}`,
      );
    }
    return webgpu;
  }
  throw new TypeError(
    `unknown backend '${String(name)}' (expected 'webgpu' or 'cpu')`,
  );
}

/** Where new tensors are created when no backend is named. */
export interface BackendInfo {
  /** The backend's name. */
  name: BackendName;
  /** The adapter (GPU) or a description of the CPU backend. */
  adapter: string;
}

/**
 * Sets the backend new tensors are created on by default.
 *
 * @param name `"webgpu"` or `"cpu"`.
 * @returns The chosen backend's description.
 * @example
 * ```ts
 * import { tensor, useBackend } from "littlegrad";
 * useBackend("cpu");
 * const x = tensor([1, 2, 3]); // lives on the CPU backend
 * ```
 */
export function useBackend(name: BackendName): BackendInfo {
  current = resolveBackend(name);
  return backendInfo();
}

/**
 * Describes the default backend and its adapter.
 *
 * @returns `{ name, adapter }`, e.g. `{ name: "webgpu", adapter: "llvmpipe (LLVM 15.0.6, 256 bits)" }`.
 * @example
 * ```ts
 * import { backendInfo } from "littlegrad";
 * console.log(backendInfo().name); // "webgpu" where an adapter exists, else "cpu"
 * ```
 */
export function backendInfo(): BackendInfo {
  return { name: current.name, adapter: current.adapter };
}

/**
 * Lists the backends usable on this machine (`"cpu"` always).
 *
 * @returns The available backend names, WebGPU first when present.
 * @example
 * ```ts
 * import { availableBackends } from "littlegrad";
 * if (availableBackends().includes("webgpu")) console.log("GPU ready");
 * ```
 */
export function availableBackends(): BackendName[] {
  return webgpu ? ["webgpu", "cpu"] : ["cpu"];
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
  return webgpu ? [webgpu, cpu] : [cpu];
}
