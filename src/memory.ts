/**
 * Memory statistics across backends.
 * @module
 */

import { allBackends } from "./backends.ts";
import { releaseSlotPools } from "./compiler/execute.ts";
import { liveTensorCount } from "./tensor.ts";
import { reportNonFinite } from "./core/debug_nans.ts";

/** What `memoryStats()` reports. */
export interface MemoryStats {
  /** Tensors created and not yet disposed (views count separately). */
  liveTensors: number;
  /** Buffers holding tensor data, all backends. */
  liveBuffers: number;
  /** Bytes in those buffers. */
  liveBytes: number;
  /** Bytes kept in the WebGPU buffer pool for reuse. */
  pooledBytes: number;
  /** Highest `liveBytes` seen on any one backend. */
  peakBytes: number;
}

/**
 * Reports live tensors and buffer memory. Use it to check a training loop
 * does not leak: `liveBytes` should stay flat from step to step.
 *
 * @returns Counts over every backend.
 * @example
 * ```ts
 * import { memoryStats, ones } from "littlegrad";
 * const before = memoryStats().liveTensors;
 * const x = ones([4]);
 * console.log(memoryStats().liveTensors - before); // 1
 * x.dispose();
 * ```
 */
export function memoryStats(): MemoryStats {
  const stats: MemoryStats = {
    liveTensors: liveTensorCount(),
    liveBuffers: 0,
    liveBytes: 0,
    pooledBytes: 0,
    peakBytes: 0,
  };
  for (const b of allBackends()) {
    const m = b.memory();
    stats.liveBuffers += m.liveBuffers;
    stats.liveBytes += m.liveBytes;
    stats.pooledBytes += m.pooledBytes;
    stats.peakBytes = Math.max(stats.peakBytes, m.peakBytes);
  }
  return stats;
}

/**
 * Starts a new high-water mark: `memoryStats().peakBytes` becomes the bytes
 * live now, so the peak of one computation can be measured on its own.
 *
 * @example
 * ```ts
 * import { memoryStats, ones, resetPeakMemory } from "littlegrad";
 * resetPeakMemory();
 * const before = memoryStats().peakBytes;
 * ones([1024]).mul(2).dispose();
 * console.log(memoryStats().peakBytes - before); // 8192: two 4 KiB buffers at once
 * ```
 */
export function resetPeakMemory(): void {
  for (const b of allBackends()) b.resetPeak();
}

/**
 * Waits until every operation queued on every backend has finished — for
 * benchmarks; reading a tensor already waits for what it needs.
 *
 * @example
 * ```ts
 * import { ones, sync } from "littlegrad";
 * const y = ones([1024]).add(1);
 * await sync();
 * ```
 */
export async function sync(): Promise<void> {
  await Promise.all(
    allBackends().map(async (b) => {
      await b.sync();
      await reportNonFinite(b);
    }),
  );
}

/**
 * Gives the buffers kept for reuse (the WebGPU pool, and the intermediate
 * buffers jitted functions keep between calls) back to the device, so
 * `memoryStats().pooledBytes` drops to 0 — after a large one-off computation,
 * for instance. Live tensors are untouched; later ops allocate afresh until
 * the pool fills again. Work already queued keeps its buffers until it
 * finishes (WebGPU defers their release).
 *
 * @returns The number of bytes released.
 * @example
 * ```ts
 * import { memoryStats, ones, trimMemory } from "littlegrad";
 * ones([1 << 20]).mul(2).dispose(); // its buffers go to the pool
 * const released = trimMemory();
 * console.log(memoryStats().pooledBytes); // 0
 * ```
 */
export function trimMemory(): number {
  releaseSlotPools();
  return allBackends().reduce((bytes, b) => bytes + b.trim(), 0);
}
