/**
 * The wasm backend's memory: one shared `WebAssembly.Memory` that every
 * kernel module imports, and a size-class allocator over it. Blocks never
 * move, so a typed-array view made when a block is allocated stays valid
 * after the memory grows (a shared memory's buffer is never detached).
 * Freed blocks wait in a free list per size class for the next allocation
 * of that class; a WebAssembly memory cannot shrink, so they are not given
 * back to the system.
 * @module
 */

import type { WasmModule } from "./encode.ts";

/** 64 KiB. */
const PAGE = 65536;
/** The most pages a 32-bit memory can have (4 GiB). */
export const MAX_PAGES = 65536;
/** Blocks start at multiples of 64 bytes (a cache line; 16 is what SIMD needs). */
const ALIGN = 64;
/** The first bytes are never handed out, so address 0 is never a block. */
const RESERVED = 1024;

/** The byte size class a request of `bytes` is served from. */
export function sizeClass(bytes: number): number {
  const aligned = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (aligned <= 4096) return aligned;
  // Above 4 KiB: quarter steps between powers of two (at most 25% slack).
  const p = 2 ** Math.floor(Math.log2(aligned));
  const quarter = p / 4;
  return Math.ceil(aligned / quarter) * quarter;
}

/** The shared memory and its allocator. */
export class Heap {
  /** The memory every kernel imports as `env.memory`. */
  readonly memory: WebAssembly.Memory;
  private top = RESERVED;
  private readonly free = new Map<number, number[]>();
  /** Bytes in blocks waiting in the free lists. */
  pooledBytes = 0;

  constructor() {
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  }

  /** The byte address of a new block of at least `bytes`, and its class size. */
  alloc(bytes: number): { ptr: number; size: number } {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    if (list && list.length > 0) {
      this.pooledBytes -= size;
      return { ptr: list.pop()!, size };
    }
    const ptr = this.top;
    const end = ptr + size;
    if (end > MAX_PAGES * PAGE) {
      throw new RangeError(
        `wasm backend: out of memory (a block of ${bytes} bytes does not fit in the 4 GiB ` +
          `WebAssembly memory; ${this.top} bytes are allocated)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow by at least a quarter of the memory, so growth stays rare.
      const need = Math.ceil((end - have) / PAGE);
      const pages = Math.min(MAX_PAGES - have / PAGE, Math.max(need, Math.ceil(have / PAGE / 4)));
      this.memory.grow(pages);
    }
    this.top = end;
    return { ptr, size };
  }

  /** Returns a block to its free list. */
  release(ptr: number, size: number): void {
    let list = this.free.get(size);
    if (!list) this.free.set(size, list = []);
    list.push(ptr);
    this.pooledBytes += size;
  }

  /** The memory's current buffer (views of it see every block allocated so far). */
  get buffer(): SharedArrayBuffer {
    return this.memory.buffer as SharedArrayBuffer;
  }

  /** Compiles and instantiates a module (or its bytes) on this memory, with `host` functions (`host.name`). */
  instantiate(
    module: WasmModule | Uint8Array,
    host: Record<string, (...args: number[]) => number> = {},
  ): WebAssembly.Exports {
    const bytes = module instanceof Uint8Array ? module : module.bytes();
    const compiled = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    return new WebAssembly.Instance(compiled, { env: { memory: this.memory }, host }).exports;
  }
}
