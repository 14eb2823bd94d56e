/**
 * The small private interface every backend implements. A backend stores flat
 * typed buffers (one dtype each) and runs four kinds of work on strided views
 * of them: elementwise maps, reductions, batched matmul and reads. Everything
 * else (broadcasting, transposes, type promotion, gradients) is built above
 * this line.
 * @module
 */

import { type DType, type HostArray, valueRange } from "./dtype.ts";
import { type Shape, shapeString, sizeOf } from "./shape.ts";
import type { FusedKernel } from "./compiler/ir.ts";

/**
 * Elementwise operations with one input. The backend's op names are a
 * vocabulary of their own, not primitive names: primitives lower to them
 * through `LOWERING` in `primitives.ts`, and some (`copy`) are no primitive.
 */
export type UnaryOp =
  | "copy"
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "tanh"
  | "sigmoid"
  | "abs"
  | "sign"
  | "sin"
  | "cos"
  | "floor"
  | "ceil"
  | "round"
  | "log1p"
  | "expm1"
  | "convert";

/** Elementwise operations with two inputs of the same shape. */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "floordiv"
  | "mod"
  | "lt"
  | "le"
  | "eq"
  | "ne";

/** Elementwise operations with three inputs of the same shape. */
export type TernaryOp = "where";

/** Reductions over the trailing axes of a view. */
export type ReduceOp = "sum" | "prod" | "max" | "min";

/** A flat buffer of values of one dtype owned by one backend, reference counted. */
export interface Storage {
  readonly backend: Backend;
  /** Element type of the buffer. */
  readonly dtype: DType;
  /** Number of elements the buffer holds. */
  readonly size: number;
  /** Number of views (tensors) that share this buffer. */
  refs: number;
}

/** A strided window onto a storage: element `idx` lives at `offset + Σ idx[i]·strides[i]`. */
export interface View {
  readonly storage: Storage;
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
}

/** A fused kernel compiled by a backend (`Backend.compileKernel`). */
export interface CompiledKernel {
  /** The generated source. */
  readonly source: string;
  /**
   * Runs the kernel on the storages of its read buffers (in binding order)
   * and the parameter block (u32 words); returns the storages of its
   * written buffers, in binding order: `outputs[k]` for the k-th where it
   * is given (a storage of this backend with the buffer's dtype and size,
   * alive on its device), a new one otherwise. A written buffer may be
   * loaded too (a donated input updated in place): its loads see the
   * contents it had before the kernel.
   */
  run(
    inputs: readonly Storage[],
    params: readonly number[],
    outputs?: readonly (Storage | undefined)[],
  ): Storage[];
}

/** Counters a backend keeps about its buffers. */
export interface BackendMemory {
  /** Buffers currently holding tensor data. */
  liveBuffers: number;
  /** Bytes in those buffers. */
  liveBytes: number;
  /** Bytes kept in the pool for reuse (WebGPU only). */
  pooledBytes: number;
  /** Highest `liveBytes` seen. */
  peakBytes: number;
}

/** What every backend provides. Results are always fresh contiguous storages. */
export interface Backend {
  /** `"webgpu"`, `"wasm"` or `"cpu"`. */
  readonly name: "webgpu" | "wasm" | "cpu";
  /** True for a software GPU adapter (one that reports `isFallbackAdapter`). */
  readonly software?: boolean;
  /** Human-readable device description (the adapter for WebGPU). */
  readonly adapter: string;
  /** Copies host data (the host array of `dtype`, see `hostArrayClass`) into a new storage. */
  upload(data: HostArray, dtype: DType): Storage;
  /** Reads a whole storage back to the host, as the host array of its dtype. */
  read(storage: Storage): Promise<HostArray>;
  /**
   * Applies an elementwise op to views of identical shape, giving `dtype`.
   * The op computes in the kind (float or integer) of its last input, whose
   * dtype every input shares except `where`'s boolean condition and
   * `convert`'s target; the result is converted to `dtype` on store (see
   * `convertNumber` for the rules).
   */
  map(
    op: UnaryOp | BinaryOp | TernaryOp,
    inputs: readonly View[],
    shape: Shape,
    dtype: DType,
  ): Storage;
  /**
   * Reduces a view whose last axes are the reduced ones: the view's flat
   * element order is `outSize` groups of `reduceSize` elements. The result
   * has `dtype`: the input's, or `int32` for sums and products of `int8`
   * and `bool`. Floats accumulate in float32 at least, integers in int32.
   */
  reduce(
    op: ReduceOp,
    input: View,
    outSize: number,
    reduceSize: number,
    dtype: DType,
  ): Storage;
  /**
   * Batched matmul of 3-D float32 views `[batch, m, k]` and `[batch, k, n]`
   * (a batch stride may be 0 to broadcast), giving a contiguous `[batch, m, n]`.
   */
  matmul(
    a: View,
    b: View,
    batch: number,
    m: number,
    k: number,
    n: number,
  ): Storage;
  /**
   * A contiguous tensor of `outShape` filled with `fill`, except that along
   * every axis `k` input element `j` is written at `starts[k] + j·steps[k]`.
   */
  pad(
    input: View,
    outShape: Shape,
    starts: readonly number[],
    steps: readonly number[],
    fill: number,
  ): Storage;
  /**
   * Gathers along the middle axis of a contiguous `input` viewed as `[pre,
   * n, post]`, at the `count` int32 values of a contiguous `indices` view
   * (negative ones count from the end, the rest are clamped to `[0, n)`),
   * giving a contiguous `[pre, count, post]` of the input's dtype. `n` is at
   * least 1 when `count` is not 0 (the ops refuse to take from an empty axis).
   */
  gather(input: View, indices: View, pre: number, n: number, post: number, count: number): Storage;
  /** The dtypes this backend can store (float16 needs `shader-f16` on WebGPU). */
  readonly dtypes: readonly DType[];
  /** Releases pooled (free) buffers to the device; returns the bytes released. */
  trim(): number;
  /** Returns a storage's memory to the backend. */
  free(storage: Storage): void;
  /** Starts a new high-water mark: `peakBytes` becomes the bytes live now. */
  resetPeak(): void;
  /** Resolves once all work queued so far has finished. */
  sync(): Promise<void>;
  /**
   * Largest number of elements one storage may hold: on WebGPU what the
   * adapter's largest storage buffer holds in 32-bit values, on the CPU
   * `HOST_MAX_ELEMENTS`.
   */
  readonly maxElements: number;
  /**
   * Throws a clear error if `storage` (or, without one, any new work) cannot
   * be used: its device was lost.
   */
  assertUsable(storage?: Storage): void;
  /** Resolves when the backend can run work again (after a device loss). */
  ready(): Promise<void>;
  /**
   * Debug mode: checks the first `size` values of `storage` are finite. The
   * CPU backend answers at once; the WebGPU backend records a failure under
   * `tag` and answers `undefined` (see `takeNonFinite`).
   */
  checkFinite(storage: Storage, size: number, tag: number): boolean | undefined;
  /** The smallest tag whose recorded check failed since the last call, or null. */
  takeNonFinite(): Promise<number | null>;
  /** Memory counters. */
  memory(): BackendMemory;
  /**
   * Compiles a fused kernel of `jit` (see `src/compiler/ir.ts`); absent
   * where `jit` replays primitives one by one.
   */
  compileKernel?(kernel: FusedKernel): CompiledKernel;
  /** Storage buffers one fused kernel may bind (with `compileKernel`). */
  readonly maxKernelBuffers?: number;
}

/** The identity of a reduction in `dtype` (the result of reducing nothing). */
export function reduceInit(op: ReduceOp, dtype: DType): number {
  const [lo, hi] = valueRange(dtype);
  return { sum: 0, prod: 1, max: lo, min: hi }[op];
}

/** True when a view covers its storage densely in row-major order from `offset`. */
export function isContiguous(view: View): boolean {
  let expected = 1;
  for (let i = view.shape.length - 1; i >= 0; i--) {
    if (view.shape[i] !== 1 && view.strides[i] !== expected) return false;
    expected *= view.shape[i];
  }
  return true;
}

/**
 * The most elements one host array may hold: 2³⁰ (a 4 GiB `Float32Array`,
 * well within what V8 allocates). The CPU backend's limit per tensor, and
 * the limit of host-only results such as `random.bits`.
 */
export const HOST_MAX_ELEMENTS = 2 ** 30;

/**
 * Throws a `RangeError` naming `op`, the shape and the limit when a tensor of
 * `shape` has more elements than `backend` holds in one tensor. Every
 * creation function calls it before allocating any host memory, so a size
 * that cannot work fails at once.
 */
export function checkCapacity(op: string, shape: Shape, backend: Backend): void {
  const n = sizeOf(shape);
  if (n > backend.maxElements) {
    throw new RangeError(
      `${op}: shape ${shapeString(shape)} has ${n} elements, more than the ${backend.name} ` +
        `backend can hold in one tensor (${backend.maxElements} values on ${backend.adapter})`,
    );
  }
}
