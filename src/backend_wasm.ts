/**
 * The wasm backend: tensors live in one shared WebAssembly memory
 * (`src/wasm/heap.ts`) and the hot operations run as WebAssembly kernels
 * generated at run time: elementwise maps and reductions through the fused
 * kernel renderer (`kernels/wasm_fused.ts`, the same one `jit` uses here),
 * matmul through a register-blocked SIMD kernel (`kernels/wasm_matmul.ts`),
 * gather and pad through `kernels/wasm_gather.ts` and `kernels/wasm_pad.ts`
 * (a strided input to pad is first copied into a dense one by a kernel).
 * @module
 */

import {
  type Backend,
  type CompiledKernel,
  isContiguous,
  reduceInit,
  type Storage,
  type View,
} from "./backend.ts";
import { createHostBackend, type HostArrays } from "./backend_cpu.ts";
import { type FusedKernel, type KernelNode, storeSizes } from "./compiler/ir.ts";
import { type DType, type HostArray, hostArrayClass } from "./dtype.ts";
import { contiguousStrides, sizeOf } from "./shape.ts";
import { Heap, sizeClass } from "./wasm/heap.ts";
import { elementBytes, renderWasmKernel } from "../kernels/wasm_fused.ts";
import { createWasmGather } from "../kernels/wasm_gather.ts";
import { createWasmPad } from "../kernels/wasm_pad.ts";
import { createWasmMatmul } from "../kernels/wasm_matmul.ts";
import { splitRange, ThreadPool } from "./wasm/threads.ts";

/** The most values one wasm tensor may hold (1 GiB of float32; the memory holds 4 GiB in all). */
export const WASM_MAX_ELEMENTS = 2 ** 28;

type HostStorage = Storage & { data: HostArray };

/** Kernels over at least this many elements (read, for a reduction) are split across threads. */
const PARALLEL_WORK = 1 << 16;

/** A rendered kernel: `exec(args)` runs it on the buffers and parameter block `args`. */
interface PreparedKernel {
  exec: (args: number[]) => void;
  source: string;
}

/**
 * Reductions to fewer than this many outputs, of contiguous float32 or
 * int32 data, at least `2 * PARALLEL_WORK` long and divisible by this
 * count, are reduced in this many pieces first.
 */
const REDUCE_CHUNKS = 16;

/** Whether `backend.reduce` takes the two-pass route for these arguments. */
function chunked(input: View, outSize: number, reduceSize: number, dtype: DType): boolean {
  if (outSize >= REDUCE_CHUNKS || reduceSize < PARALLEL_WORK * 2) return false;
  if (reduceSize % REDUCE_CHUNKS !== 0) return false;
  if (input.storage.dtype !== dtype || (dtype !== "float32" && dtype !== "int32")) return false;
  const dense = contiguousStrides(input.shape);
  return input.shape.every((d, i) => d === 1 || input.strides[i] === dense[i]);
}

/** The machine's cores (at most 16), or 1 where the runtime does not say. */
function defaultThreads(): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(16, cores));
}

/** Creates the wasm backend. */
export function createWasmBackend(): Backend {
  const heap = new Heap();
  const arrays: HostArrays = {
    alloc(n, dtype) {
      const { ptr } = heap.alloc(n * elementBytes(dtype));
      const View = hostArrayClass(dtype) as unknown as new (
        buffer: ArrayBufferLike,
        offset: number,
        length: number,
      ) => HostArray;
      return new View(heap.buffer, ptr, n);
    },
    release: (data) => heap.release(data.byteOffset, sizeClass(data.byteLength)),
    pooledBytes: () => heap.pooledBytes,
    maxElements: WASM_MAX_ELEMENTS,
  };
  const { backend, allocate } = createHostBackend("wasm", "WebAssembly SIMD", arrays);
  const pool = new ThreadPool(heap, defaultThreads());
  Object.defineProperty(backend, "adapter", {
    get: () => {
      const n = pool.wantedThreads;
      return `WebAssembly SIMD (${n} thread${n === 1 ? "" : "s"})`;
    },
  });
  const address = (view: View) =>
    (view.storage as HostStorage).data.byteOffset +
    view.offset * elementBytes(view.storage.dtype);

  /** Renders a kernel; the result runs it, across threads when it is large enough. */
  const prepare = (kernel: FusedKernel): PreparedKernel => {
    const rendered = renderWasmKernel(kernel, heap);
    const shared = rendered.bytes ? pool.register(rendered.bytes, rendered.run) : null;
    const work = kernel.reduce ? sizeOf(kernel.reduce.inputShape) : sizeOf(kernel.shape);
    const { outer, run } = rendered;
    const exec = (args: number[]) => {
      const threads = shared && work >= PARALLEL_WORK ? Math.min(pool.threads, outer) : 1;
      if (threads <= 1) return run(...args, 0, outer);
      const align = kernel.reduce ? 1 : 4;
      pool.run(shared!, splitRange(outer, threads, align).map(([b, e]) => [...args, b, e]));
    };
    return { exec, source: rendered.source };
  };
  // Kernels by their IR, compiled on first use.
  const cache = new Map<string, PreparedKernel["exec"]>();
  const kernelFn = (kernel: FusedKernel): PreparedKernel["exec"] => {
    const key = JSON.stringify(kernel);
    let fn = cache.get(key);
    if (!fn) cache.set(key, fn = prepare(kernel).exec);
    return fn;
  };
  /** A view's load node and read buffer, as the renderer takes them (offsets travel in the address). */
  const load = (view: View, buffer: number, space: "out" | "reduce"): KernelNode => ({
    kind: "load",
    buffer,
    address: [{ shape: view.shape, strides: view.strides, offset: 0 }],
    dtype: view.storage.dtype,
    space,
  });

  backend.map = (op, inputs, shape, dtype) => {
    const out = allocate(sizeOf(shape), dtype);
    if (out.size === 0) return out;
    const nodes: KernelNode[] = inputs.map((v, i) => load(v, i, "out"));
    nodes.push({ kind: "op", op, args: inputs.map((_, i) => i), dtype, space: "out" });
    const kernel: FusedKernel = {
      shape,
      buffers: [
        ...inputs.map((v) => ({ dtype: v.storage.dtype, access: "read" as const })),
        { dtype, access: "write" },
      ],
      params: 0,
      nodes,
      stores: [{ node: inputs.length, buffer: inputs.length, space: "out" }],
      reduce: null,
      matmul: null,
    };
    kernelFn(kernel)([...inputs.map(address), out.data.byteOffset, 0]);
    return out;
  };

  // Pad: a strided input is first copied densely (the pad kernel reads its
  // input in row-major order).
  const pad = createWasmPad(heap);
  backend.pad = (input, outShape, starts, steps, fill) => {
    const dtype = input.storage.dtype;
    const dense = isContiguous(input) ? null : backend.map("copy", [input], input.shape, dtype);
    const out = allocate(sizeOf(outShape), dtype);
    try {
      if (out.size === 0) return out;
      const from = dense ? address({ ...input, storage: dense, offset: 0 }) : address(input);
      pad(from, out.data.byteOffset, dtype, fill, input.shape, outShape, starts, steps);
      return out;
    } catch (err) {
      backend.free(out);
      throw err;
    } finally {
      if (dense) backend.free(dense);
    }
  };

  backend.reduce = (op, input, outSize, reduceSize, dtype) => {
    if (outSize > 0 && chunked(input, outSize, reduceSize, dtype)) {
      // Partial results of REDUCE_CHUNKS equal pieces, then their reduction:
      // the pieces are what threads share, and the order is fixed by shapes.
      const piece = reduceSize / REDUCE_CHUNKS;
      const partial = backend.reduce(
        op,
        { ...input, shape: [outSize * REDUCE_CHUNKS, piece], strides: [piece, 1] },
        outSize * REDUCE_CHUNKS,
        piece,
        dtype,
      );
      const view = {
        storage: partial,
        offset: 0,
        shape: [outSize, REDUCE_CHUNKS],
        strides: [REDUCE_CHUNKS, 1],
      };
      const result = backend.reduce(op, view, outSize, REDUCE_CHUNKS, dtype);
      backend.free(partial);
      return result;
    }
    const out = allocate(outSize, dtype);
    if (outSize === 0) return out;
    if (reduceSize === 0) {
      out.data.fill(reduceInit(op, dtype));
      return out;
    }
    // The reduced axes are the trailing ones holding reduceSize elements.
    const shape = input.shape;
    let split = shape.length;
    while (split > 0 && sizeOf(shape.slice(split)) < reduceSize) split--;
    const axes = shape.map((_, a) => a).slice(split);
    const kernel: FusedKernel = {
      shape: [outSize],
      buffers: [{ dtype: input.storage.dtype, access: "read" }, { dtype, access: "write" }],
      params: 0,
      nodes: [load(input, 0, "reduce"), { kind: "reduced", reduction: 0, dtype }],
      stores: [{ node: 1, buffer: 1, space: "out" }],
      reduce: { inputShape: shape, axes, reductions: [{ op, input: 0, dtype }] },
      matmul: null,
    };
    kernelFn(kernel)([address(input), out.data.byteOffset, 0]);
    return out;
  };

  const gather = createWasmGather(heap);
  backend.gather = (input, indices, pre, n, post, count) => {
    if (n === 0 && count > 0) throw new Error("internal: gather from an empty axis");
    const dtype = input.storage.dtype;
    const out = allocate(pre * count * post, dtype);
    if (out.size === 0) return out;
    const rowBytes = post * elementBytes(dtype);
    gather(address(input), address(indices), out.data.byteOffset, pre, n, rowBytes, count);
    return out;
  };

  const matmul = createWasmMatmul(heap, pool);
  const operand = (v: View) => ({
    ptr: address(v),
    strides: v.strides as [number, number, number],
  });
  backend.matmul = (a, b, batch, m, k, n) => {
    const out = allocate(batch * m * n, "float32");
    if (out.size === 0) return out;
    matmul(operand(a), operand(b), out.data.byteOffset, batch, m, k, n);
    return out;
  };

  const compileKernel = (kernel: FusedKernel): CompiledKernel => {
    if (kernel.matmul) return compileMatmulKernel(kernel);
    const { exec, source } = prepare(kernel);
    const params = heap.alloc(Math.max(4, kernel.params * 4)).ptr;
    const words = new Uint32Array(heap.buffer, params, Math.max(1, kernel.params));
    const size = sizeOf(kernel.shape);
    const sizes = storeSizes(kernel);
    return {
      source,
      run(inputs, values, given = []) {
        words.set(values);
        let next = 0;
        const outputs: HostStorage[] = [];
        const ptrs = kernel.buffers.map((b, i) => {
          if (b.access === "read") return (inputs[next++] as HostStorage).data.byteOffset;
          const out = (given[outputs.length] as HostStorage | undefined) ??
            allocate(sizes[i], b.dtype);
          outputs.push(out);
          return out.data.byteOffset;
        });
        if (size > 0) exec([...ptrs, params]);
        return outputs;
      },
    };
  };

  /**
   * A matmul with an epilogue: the product into a temporary, then the
   * epilogue as an elementwise kernel that loads it where the IR has the
   * `"reduced"` node.
   */
  const compileMatmulKernel = (kernel: FusedKernel): CompiledKernel => {
    const mm = kernel.matmul!;
    const view = (storage: Storage, v: typeof mm.a): View => ({ storage, ...v });
    if (kernel.nodes.length === 1 && kernel.stores.length === 1) {
      // No epilogue: the product goes straight to the output.
      return {
        source: `matmul [${mm.batch}, ${mm.m}, ${mm.k}] · [${mm.batch}, ${mm.k}, ${mm.n}]`,
        run(inputs, _values, given = []) {
          const out = (given[0] as HostStorage | undefined) ??
            allocate(mm.batch * mm.m * mm.n, "float32");
          const [a, b] = [operand(view(inputs[0], mm.a)), operand(view(inputs[1], mm.b))];
          matmul(a, b, out.data.byteOffset, mm.batch, mm.m, mm.k, mm.n);
          return [out];
        },
      };
    }
    const product = kernel.buffers.length;
    const nodes = kernel.nodes.map((n): KernelNode =>
      n.kind === "reduced"
        ? {
          kind: "load",
          buffer: product,
          address: [{
            shape: kernel.shape,
            strides: [...kernel.shape.keys()].map((i) => sizeOf(kernel.shape.slice(i + 1))),
            offset: 0,
          }],
          dtype: "float32",
          space: "out",
        }
        : n
    );
    const epilogue = compileKernel({
      ...kernel,
      matmul: null,
      nodes,
      buffers: [...kernel.buffers, { dtype: "float32", access: "read" }],
    });
    return {
      source: `matmul [${mm.batch}, ${mm.m}, ${mm.k}] · [${mm.batch}, ${mm.k}, ${mm.n}], then ` +
        epilogue.source,
      run(inputs, values, given) {
        const temp = backend.matmul(
          view(inputs[0], mm.a),
          view(inputs[1], mm.b),
          mm.batch,
          mm.m,
          mm.k,
          mm.n,
        );
        const outs = epilogue.run([...inputs, temp], values, given);
        backend.free(temp);
        return outs;
      },
    };
  };

  return Object.assign(backend, { compileKernel, maxKernelBuffers: 32, threads: pool });
}
