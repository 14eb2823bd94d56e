/**
 * The CPU reference backend: plain loops over typed arrays (one per dtype,
 * see `hostArrayClass`). It defines the semantics the WebGPU kernels are
 * tested against, so it favours clarity: floats compute in float64 and round
 * on store, integers wrap through the typed arrays (and `Math.imul`).
 * @module
 */

import {
  type Backend,
  type BackendMemory,
  type BinaryOp,
  HOST_MAX_ELEMENTS,
  isContiguous,
  reduceInit,
  type ReduceOp,
  type Storage,
  type UnaryOp,
  type View,
} from "./backend.ts";
import { convertNumber, type DType, type HostArray, hostArray, isFloat } from "./dtype.ts";
import { sizeOf } from "./shape.ts";
import type { Shape } from "./shape.ts";

interface CpuStorage extends Storage {
  data: HostArray;
}

type Unary = (x: number) => number;
type Binary = (a: number, b: number) => number;

/** Float ops, computed in float64 and rounded by the output array. */
export const FLOAT_UNARY: Record<UnaryOp, Unary> = {
  copy: (x) => x,
  convert: (x) => x,
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  tanh: Math.tanh,
  sigmoid: (x) => x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)),
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN),
  sin: Math.sin,
  cos: Math.cos,
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  log1p: Math.log1p,
  expm1: Math.expm1,
};

/** Rounds to the nearest integer, ties to even (IEEE, NumPy and WGSL `round`). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A finite dividend over an infinite divisor (Python's special case for `//` and `%`). */
const isInfDivisor = (a: number, b: number) => Number.isFinite(a) && Math.abs(b) === Infinity;

const nanOr = (f: Binary): Binary => (a, b) => Number.isNaN(a) || Number.isNaN(b) ? NaN : f(a, b);

export const FLOAT_BINARY: Record<BinaryOp, Binary> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: nanOr(Math.max),
  minimum: nanOr(Math.min),
  // Python's rules (the remainder takes the divisor's sign), rounding each
  // step to float32 as the GPU computes it. An infinite divisor keeps a
  // same-signed dividend (quotient 0) and otherwise gives itself (quotient -1).
  floordiv: (a, b) =>
    isInfDivisor(a, b) ? (a === 0 || (a < 0) === (b < 0) ? 0 : -1) : Math.floor(Math.fround(a / b)),
  mod: (a, b) =>
    isInfDivisor(a, b)
      ? (a === 0 || (a < 0) === (b < 0) ? a : b)
      : a - Math.fround(b * Math.floor(Math.fround(a / b))),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
};

/** Integer ops on int32 values; the output array wraps results to its width. */
export const INT_UNARY: Partial<Record<UnaryOp, Unary>> = {
  copy: (x) => x,
  convert: (x) => x,
  neg: (x) => -x,
  abs: Math.abs,
  sign: Math.sign,
};

/** Python's floor division on integers; division by zero gives 0 (as NumPy). */
function intFloorDiv(a: number, b: number): number {
  return b === 0 ? 0 : Math.floor(a / b);
}

export const INT_BINARY: Partial<Record<BinaryOp, Binary>> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: Math.imul,
  maximum: Math.max,
  minimum: Math.min,
  floordiv: intFloorDiv,
  mod: (a, b) => (b === 0 ? 0 : a - b * intFloorDiv(a, b)),
  lt: FLOAT_BINARY.lt,
  le: FLOAT_BINARY.le,
  eq: FLOAT_BINARY.eq,
  ne: FLOAT_BINARY.ne,
};

/** The function storing a computed value into an output array of `dtype`. */
function storer(dtype: DType, fromFloat: boolean): Unary {
  if (isFloat(dtype) || !fromFloat && dtype !== "bool") return (v) => v;
  return (v) => convertNumber(v, dtype);
}

/** Offsets of every element of `view` in row-major order (an odometer walk). */
function offsets(view: View): Int32Array | null {
  const n = sizeOf(view.shape);
  if (isContiguous(view)) return null;
  const out = new Int32Array(n);
  const nd = view.shape.length;
  const idx = new Array<number>(nd).fill(0);
  let off = view.offset;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      off += view.strides[d];
      if (idx[d] < view.shape[d]) break;
      off -= view.strides[d] * view.shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Reads a view into a dense row-major array. */
function gather(view: View): HostArray {
  const src = (view.storage as CpuStorage).data;
  const n = sizeOf(view.shape);
  const offs = offsets(view);
  if (offs === null) return src.subarray(view.offset, view.offset + n);
  const out = hostArray(view.storage.dtype, n);
  for (let i = 0; i < n; i++) out[i] = src[offs[i]];
  return out;
}

/**
 * Where a host backend keeps its arrays: plain typed arrays for the CPU
 * backend, views of WebAssembly memory for the wasm backend.
 */
export interface HostArrays {
  /** A new zeroed-or-not array of `n` values of `dtype`. */
  alloc(n: number, dtype: DType): HostArray;
  /** Returns an array `alloc` gave. */
  release(data: HostArray): void;
  /** Bytes waiting for reuse. */
  pooledBytes(): number;
  /** The most values one array may hold. */
  readonly maxElements: number;
}

/** A backend whose storages are host arrays, and its way to make them. */
export interface HostBackend {
  readonly backend: Backend;
  /** A new storage of `n` values of `dtype` (counted in the memory statistics). */
  allocate(n: number, dtype: DType): Storage & { data: HostArray };
}

/** Creates the CPU backend. */
export function createCpuBackend(): Backend {
  const arrays: HostArrays = {
    alloc: (n, dtype) => hostArray(dtype, n),
    release: () => {}, // freed arrays go to the garbage collector
    pooledBytes: () => 0,
    maxElements: HOST_MAX_ELEMENTS,
  };
  return createHostBackend("cpu", "CPU (TypeScript reference)", arrays).backend;
}

/**
 * The reference loops as a backend named `name`, on `arrays`. The wasm
 * backend is one of these whose hot operations are replaced by kernels.
 */
export function createHostBackend(
  name: Backend["name"],
  adapter: string,
  arrays: HostArrays,
): HostBackend {
  const mem: BackendMemory = {
    liveBuffers: 0,
    liveBytes: 0,
    pooledBytes: 0,
    peakBytes: 0,
  };
  const make = (data: HostArray, dtype: DType): CpuStorage => {
    mem.liveBuffers++;
    mem.liveBytes += data.byteLength;
    mem.peakBytes = Math.max(mem.peakBytes, mem.liveBytes);
    return { backend, dtype, size: data.length, refs: 0, data };
  };
  const maxElements = arrays.maxElements;
  const alloc = (n: number, dtype: DType) => {
    if (n > maxElements) {
      throw new RangeError(
        `a tensor of ${n} ${dtype} values exceeds the ${name} backend's limit of ${maxElements}`,
      );
    }
    return arrays.alloc(n, dtype);
  };
  const backend: Backend = {
    name,
    adapter,
    dtypes: ["float32", "float16", "int32", "int8", "bool"],
    upload: (data, dtype) => {
      const copy = alloc(data.length, dtype);
      copy.set(data);
      return make(copy, dtype);
    },
    read: (storage) => Promise.resolve((storage as CpuStorage).data.slice()),
    map(op, inputs, shape: Shape, dtype) {
      const n = sizeOf(shape);
      const out = alloc(n, dtype);
      // The op computes in the kind of its last input (see Backend.map).
      const float = isFloat(inputs[inputs.length - 1].storage.dtype);
      const store = storer(dtype, float);
      const missing = () => {
        throw new TypeError(`internal: no integer rule for '${op}'`);
      };
      if (inputs.length === 1) {
        const f = (float ? FLOAT_UNARY : INT_UNARY)[op as UnaryOp] ?? missing();
        const x = gather(inputs[0]);
        for (let i = 0; i < n; i++) out[i] = store(f(x[i]));
      } else if (inputs.length === 2) {
        const f = (float ? FLOAT_BINARY : INT_BINARY)[op as BinaryOp] ?? missing();
        const a = gather(inputs[0]);
        const b = gather(inputs[1]);
        for (let i = 0; i < n; i++) out[i] = store(f(a[i], b[i]));
      } else {
        // where(cond, a, b): a where cond is true, else b.
        const [c, a, b] = inputs.map(gather);
        for (let i = 0; i < n; i++) out[i] = c[i] !== 0 ? a[i] : b[i];
      }
      return make(out, dtype);
    },
    reduce(op: ReduceOp, input, outSize, reduceSize, dtype) {
      const x = gather(input);
      const out = alloc(outSize, dtype);
      const float = isFloat(input.storage.dtype);
      // Floats accumulate in float64 (the reference is the exact-ish result);
      // integers in int32, wrapping like the GPU.
      const combine: Binary = op === "sum"
        ? (float ? (a, b) => a + b : (a, b) => (a + b) | 0)
        : op === "prod"
        ? (float ? (a, b) => a * b : Math.imul)
        : op === "max"
        ? (float ? nanOr(Math.max) : Math.max)
        : (float ? nanOr(Math.min) : Math.min);
      const init = reduceInit(op, dtype);
      for (let o = 0; o < outSize; o++) {
        const base = o * reduceSize;
        let acc = init;
        for (let r = 0; r < reduceSize; r++) acc = combine(acc, x[base + r]);
        out[o] = acc;
      }
      return make(out, dtype);
    },
    matmul(a, b, batch, m, k, n) {
      const A = (a.storage as CpuStorage).data;
      const B = (b.storage as CpuStorage).data;
      const [abs, ars, acs] = a.strides;
      const [bbs, brs, bcs] = b.strides;
      const out = alloc(batch * m * n, "float32");
      const row = new Float64Array(n);
      for (let p = 0; p < batch; p++) {
        for (let i = 0; i < m; i++) {
          row.fill(0);
          for (let kk = 0; kk < k; kk++) {
            const av = A[a.offset + p * abs + i * ars + kk * acs];
            const bBase = b.offset + p * bbs + kk * brs;
            for (let j = 0; j < n; j++) row[j] += av * B[bBase + j * bcs];
          }
          out.set(row, (p * m + i) * n);
        }
      }
      return make(out, "float32");
    },
    pad(input, outShape, starts, steps, fill) {
      const x = gather(input);
      const dtype = input.storage.dtype;
      const out = alloc(sizeOf(outShape), dtype).fill(convertNumber(fill, dtype));
      const nd = outShape.length;
      const outStrides = new Array<number>(nd);
      for (let k = nd - 1, s = 1; k >= 0; k--) {
        outStrides[k] = s;
        s *= outShape[k];
      }
      // Walk the input in row-major order, one innermost row at a time: a row
      // whose elements land next to each other (step 1) is one copy.
      if (x.length === 0) return make(out, dtype);
      const row = nd === 0 ? 1 : input.shape[nd - 1];
      const step = nd === 0 ? 1 : steps[nd - 1] * outStrides[nd - 1];
      const idx = new Array<number>(nd).fill(0);
      for (let i = 0; i < x.length; i += row) {
        let at = 0;
        for (let k = 0; k < nd; k++) at += (starts[k] + idx[k] * steps[k]) * outStrides[k];
        if (step === 1) out.set(x.subarray(i, i + row), at);
        else for (let j = 0; j < row; j++) out[at + j * step] = x[i + j];
        for (let k = nd - 2; k >= 0; k--) {
          if (++idx[k] < input.shape[k]) break;
          idx[k] = 0;
        }
      }
      return make(out, dtype);
    },
    gather(input, indices, pre, n, post, count) {
      if (n === 0 && count > 0) throw new Error("internal: gather from an empty axis");
      const x = (input.storage as CpuStorage).data;
      const ids = (indices.storage as CpuStorage).data;
      const dtype = input.storage.dtype;
      const out = alloc(pre * count * post, dtype);
      for (let p = 0; p < pre; p++) {
        for (let j = 0; j < count; j++) {
          let k = ids[indices.offset + j];
          if (k < 0) k += n;
          k = Math.min(Math.max(k, 0), n - 1);
          const from = input.offset + (p * n + k) * post;
          // One element per row (takeAlongAxis, a flat take): a subarray each costs ~40 ns.
          if (post === 1) out[p * count + j] = x[from];
          else out.set(x.subarray(from, from + post), (p * count + j) * post);
        }
      }
      return make(out, dtype);
    },
    free(storage) {
      mem.liveBuffers--;
      mem.liveBytes -= (storage as CpuStorage).data.byteLength;
      arrays.release((storage as CpuStorage).data);
    },
    trim: () => 0, // nothing is given back: the CPU's arrays are collected, wasm memory cannot shrink
    sync: () => Promise.resolve(),
    maxElements,
    assertUsable: () => {},
    ready: () => Promise.resolve(),
    checkFinite(storage, size) {
      const data = (storage as CpuStorage).data;
      if (!isFloat(storage.dtype)) return true;
      for (let i = 0; i < size; i++) if (!Number.isFinite(data[i])) return false;
      return true;
    },
    takeNonFinite: () => Promise.resolve(null),
    memory: () => ({ ...mem, pooledBytes: arrays.pooledBytes() }),
    resetPeak: () => void (mem.peakBytes = mem.liveBytes),
  };
  return { backend, allocate: (n, dtype) => make(alloc(n, dtype), dtype) };
}
