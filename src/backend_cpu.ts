/**
 * The CPU reference backend: plain loops over `Float32Array`s. It defines the
 * semantics the WebGPU kernels are tested against, so it favours clarity.
 * @module
 */

import {
  type Backend,
  type BackendMemory,
  type BinaryOp,
  isContiguous,
  type ReduceOp,
  type Storage,
  type UnaryOp,
  type View,
} from "./backend.ts";
import { sizeOf } from "./shape.ts";
import type { Shape } from "./shape.ts";

interface CpuStorage extends Storage {
  data: Float32Array;
}

const UNARY: Record<UnaryOp, (x: number) => number> = {
  copy: (x) => x,
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

const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: (
    a,
    b,
  ) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
};

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
function gather(view: View): Float32Array {
  const src = (view.storage as CpuStorage).data;
  const n = sizeOf(view.shape);
  const offs = offsets(view);
  if (offs === null) return src.subarray(view.offset, view.offset + n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = src[offs[i]];
  return out;
}

/** Creates the CPU backend. */
export function createCpuBackend(): Backend {
  const mem: BackendMemory = {
    liveBuffers: 0,
    liveBytes: 0,
    pooledBytes: 0,
    peakBytes: 0,
  };
  const make = (data: Float32Array): CpuStorage => {
    mem.liveBuffers++;
    mem.liveBytes += data.byteLength;
    mem.peakBytes = Math.max(mem.peakBytes, mem.liveBytes);
    return { backend, size: data.length, refs: 0, data };
  };
  const maxElements = 2 ** 30;
  const alloc = (n: number) => {
    if (n > maxElements) {
      throw new RangeError(
        `a tensor of ${n} float32 values exceeds the CPU backend's limit of ${maxElements}`,
      );
    }
    return new Float32Array(n);
  };
  const backend: Backend = {
    name: "cpu",
    adapter: "CPU (TypeScript reference)",
    upload: (data) => make(new Float32Array(data)),
    read: (storage) => Promise.resolve(new Float32Array((storage as CpuStorage).data)),
    map(op, inputs, shape: Shape) {
      const n = sizeOf(shape);
      const out = alloc(n);
      if (inputs.length === 1) {
        const f = UNARY[op as UnaryOp];
        const x = gather(inputs[0]);
        for (let i = 0; i < n; i++) out[i] = f(x[i]);
      } else if (inputs.length === 2) {
        const f = BINARY[op as BinaryOp];
        const a = gather(inputs[0]);
        const b = gather(inputs[1]);
        for (let i = 0; i < n; i++) out[i] = f(a[i], b[i]);
      } else {
        // where(cond, a, b): a where cond is non-zero, else b (NaN counts as true).
        const [c, a, b] = inputs.map(gather);
        for (let i = 0; i < n; i++) out[i] = c[i] !== 0 ? a[i] : b[i];
      }
      return make(out);
    },
    reduce(op: ReduceOp, input, outSize, reduceSize) {
      const x = gather(input);
      const out = alloc(outSize);
      for (let o = 0; o < outSize; o++) {
        const base = o * reduceSize;
        if (op === "sum") {
          let acc = 0; // float64 accumulation: the reference is the exact-ish sum
          for (let r = 0; r < reduceSize; r++) acc += x[base + r];
          out[o] = acc;
        } else {
          let acc = -Infinity;
          for (let r = 0; r < reduceSize; r++) {
            const v = x[base + r];
            acc = Number.isNaN(v) || Number.isNaN(acc) ? NaN : Math.max(acc, v);
          }
          out[o] = acc;
        }
      }
      return make(out);
    },
    matmul(a, b, batch, m, k, n) {
      const A = (a.storage as CpuStorage).data;
      const B = (b.storage as CpuStorage).data;
      const [abs, ars, acs] = a.strides;
      const [bbs, brs, bcs] = b.strides;
      const out = alloc(batch * m * n);
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
      return make(out);
    },
    pad(input, outShape, starts, steps, fill) {
      const x = gather(input);
      const out = alloc(sizeOf(outShape)).fill(fill);
      const nd = outShape.length;
      const outStrides = new Array<number>(nd);
      for (let k = nd - 1, s = 1; k >= 0; k--) {
        outStrides[k] = s;
        s *= outShape[k];
      }
      // Walk the input in row-major order and place each element.
      const idx = new Array<number>(nd).fill(0);
      for (let i = 0; i < x.length; i++) {
        let at = 0;
        for (let k = 0; k < nd; k++) at += (starts[k] + idx[k] * steps[k]) * outStrides[k];
        out[at] = x[i];
        for (let k = nd - 1; k >= 0; k--) {
          if (++idx[k] < input.shape[k]) break;
          idx[k] = 0;
        }
      }
      return make(out);
    },
    free(storage) {
      mem.liveBuffers--;
      mem.liveBytes -= (storage as CpuStorage).data.byteLength;
    },
    sync: () => Promise.resolve(),
    maxElements,
    assertUsable: () => {},
    ready: () => Promise.resolve(),
    checkFinite(storage, size) {
      const data = (storage as CpuStorage).data;
      for (let i = 0; i < size; i++) if (!Number.isFinite(data[i])) return false;
      return true;
    },
    takeNonFinite: () => Promise.resolve(null),
    memory: () => ({ ...mem }),
  };
  return backend;
}
