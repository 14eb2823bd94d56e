/**
 * Creating tensors: from nested arrays or typed arrays, filled, ranges and
 * seeded random values. Every function takes `{ backend }` to choose where
 * the tensor lives (default: `backendInfo().name`), and checks the size
 * against that backend's limit before allocating anything.
 * @module
 */

import { type BackendName, resolveBackend } from "./backends.ts";
import { checkCapacity } from "./backend.ts";
import {
  checkDType,
  type DType,
  dtypeOfArray,
  holds,
  type HostArray,
  hostArray,
  isFloat,
  valueRange,
} from "./dtype.ts";
import { checkShape, type Shape, shapeString, sizeOf } from "./shape.ts";
import { checkBackendDType } from "./ops/_operands.ts";
import type { NestedArray, Tensor } from "./tensor.ts";
import { checkOptions, describe } from "./core/errors.ts";
import { hostTensor } from "./core/interpreter.ts";
import { key as randomKey, normal, threefry2x32, uniform } from "./random.ts";

/** Options shared by the creation functions. */
export interface CreateOptions {
  /** Element type (default `"float32"`; `tensor` infers it from typed arrays and booleans). */
  dtype?: DType;
  /** Backend to create the tensor on (default: the current default backend). */
  backend?: BackendName;
}

/** Options of `tensor`. */
export interface TensorOptions extends CreateOptions {
  /** Shape for flat input (a typed array or flat array); inferred otherwise. */
  shape?: Shape;
}

/** Checks dtype and size before any host memory is allocated. */
function prepare(op: string, shape: Shape, opts: CreateOptions): void {
  checkDType(op, opts.dtype ?? "float32");
  const backend = resolveBackend(opts.backend);
  checkBackendDType(op, backend, opts.dtype ?? "float32");
  checkCapacity(op, shape, backend);
}

/**
 * Host values of `dtype` from plain numbers: integer types take integers in
 * their range (a `RangeError` names the first value that is not), `bool`
 * takes 0 and 1, floats take anything.
 */
function toHost(op: string, values: ArrayLike<number>, dtype: DType): HostArray {
  const out = hostArray(dtype, values.length);
  if (!isFloat(dtype)) {
    const [lo, hi] = valueRange(dtype);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!holds(dtype, v)) {
        throw new RangeError(
          `${op}: value ${v} at flat index ${i} is not ${
            dtype === "bool" ? "a boolean (or 0/1)" : `an integer in [${lo}, ${hi}]`
          }, as dtype ${dtype} needs; use astype to convert floats`,
        );
      }
    }
  }
  out.set(values);
  return out;
}

function fromFlat(
  op: string,
  data: ArrayLike<number>,
  shape: Shape,
  opts: CreateOptions,
): Tensor {
  prepare(op, shape, opts);
  const backend = resolveBackend(opts.backend);
  const dtype = opts.dtype ?? "float32";
  // A typed array of the dtype itself needs no check (a Uint8Array for bool does).
  const host = dtypeOfArray(data) === dtype && dtype !== "bool"
    ? data as HostArray
    : toHost(op, data, dtype);
  return hostTensor(host, dtype, [...shape], backend);
}

/**
 * Infers the shape of nested arrays, throwing a `TypeError` on ragged or
 * non-numeric input. `checkSize` sees the inferred shape before the values
 * are copied.
 */
function inferNested(
  data: NestedArray | boolean | unknown[],
  checkSize: (shape: Shape) => void,
): { shape: number[]; flat: number[]; booleans: boolean } {
  const shape: number[] = [];
  for (let level: unknown = data; Array.isArray(level); level = level[0]) {
    shape.push(level.length);
  }
  checkSize(shape);
  const flat: number[] = [];
  let booleans = false;
  let numbers = false;
  const walk = (node: unknown, depth: number, path: number[]) => {
    if (depth === shape.length) {
      if (typeof node === "boolean") {
        booleans = true;
        flat.push(node ? 1 : 0);
        return;
      }
      numbers = true;
      if (typeof node !== "number") {
        const where = path.length ? ` at [${path.join(",")}]` : "";
        throw new TypeError(
          Array.isArray(node)
            ? `tensor: ragged nested array: element${where} is an array, but its siblings are numbers`
            : `tensor: element${where} is ${describe(node)}, expected a number`,
        );
      }
      flat.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new TypeError(
        `tensor: ragged nested array: expected length ${shape[depth]} at [${path.join(",")}], got ${
          Array.isArray(node) ? `length ${node.length}` : describe(node)
        } (inferred shape ${shapeString(shape)})`,
      );
    }
    node.forEach((child, i) => walk(child, depth + 1, [...path, i]));
  };
  walk(data, 0, []);
  return { shape, flat, booleans: booleans && !numbers };
}

/**
 * The values of an array-like object that is not an array (`{ 0: 1, 1: 2,
 * length: 2 }`): its length must be a non-negative integer and its elements
 * numbers or booleans — anything else is a `TypeError` naming the element.
 * The size is checked before anything is copied.
 */
function arrayLikeValues(data: object, opts: TensorOptions): Float64Array {
  const like = data as { readonly length: unknown; readonly [i: number]: unknown };
  const length = like.length;
  if (typeof length !== "number" || !Number.isSafeInteger(length) || length < 0) {
    throw new TypeError(
      `tensor: an array-like ${describe(data)} needs a non-negative integer length, got ${
        describe(length)
      }`,
    );
  }
  prepare("tensor", opts.shape && sizeOf(opts.shape) === length ? opts.shape : [length], opts);
  const values = new Float64Array(length); // exact for integer dtypes beyond 2^24
  for (let i = 0; i < length; i++) {
    const v = like[i];
    if (typeof v === "number") values[i] = v;
    else if (typeof v === "boolean") values[i] = v ? 1 : 0;
    else {
      throw new TypeError(
        `tensor: element ${i} of the array-like ${describe(data)} is ${
          describe(v)
        }, expected a number`,
      );
    }
  }
  return values;
}

/**
 * Creates a tensor from a number, a boolean, nested arrays of them, or a
 * typed array (give `shape` for flat data; default is 1-D). Array-like
 * objects whose elements are numbers (or booleans) work like flat arrays;
 * any other element, a `DataView`, a `BigInt64Array` or a `String` is a
 * `TypeError`.
 *
 * The dtype is `opts.dtype` when given. Otherwise numbers give `float32`
 * (unlike NumPy, integer literals too: models mostly want floats), booleans
 * give `bool`, and typed arrays give their own type: `Float16Array`
 * `float16`, `Int32Array` `int32`, `Int8Array` `int8`, any other (such as
 * a `Uint8Array` of pixels) `float32`. Integer dtypes take integers in
 * their range and `bool` takes booleans or 0/1: anything else is a
 * `RangeError` (convert floats with `astype`).
 *
 * @param data The values.
 * @param opts `shape`, `dtype`, `backend`.
 * @returns A new tensor.
 * @example
 * ```ts
 * import { tensor } from "littlegrad";
 * const a = tensor([[1, 2, 3], [4, 5, 6]]); // float32, shape [2, 3]
 * const b = tensor(new Float32Array(6), { shape: [3, 2] });
 * const c = tensor(3.5); // a scalar, shape []
 * const labels = tensor([3, 1, 4], { dtype: "int32" });
 * const mask = tensor([true, false]); // bool
 * ```
 */
export function tensor(
  data: NestedArray | boolean | boolean[] | boolean[][] | ArrayLike<number>,
  opts: TensorOptions = {},
): Tensor {
  checkOptions("tensor", opts);
  let flat: ArrayLike<number>;
  let shape: Shape;
  let inferred: DType = "float32";
  if (typeof data === "number" || typeof data === "boolean") {
    flat = [Number(data)];
    shape = [];
    if (typeof data === "boolean") inferred = "bool";
  } else if (Array.isArray(data)) {
    const nested = inferNested(data, (s) => prepare("tensor", s, opts));
    flat = nested.flat;
    shape = nested.shape;
    if (nested.booleans) inferred = "bool";
  } else if (ArrayBuffer.isView(data)) {
    if (
      data instanceof DataView || data instanceof BigInt64Array ||
      data instanceof BigUint64Array
    ) {
      throw new TypeError(
        `tensor: a ${data.constructor.name} holds no numbers tensor can take; pass a ` +
          "Float32Array, Int32Array or another numeric typed array",
      );
    }
    const own = dtypeOfArray(data);
    if (own && own !== "bool") inferred = own;
    flat = data as unknown as ArrayLike<number>;
    shape = [flat.length];
  } else if (data instanceof String) {
    throw new TypeError(
      `tensor: expected a number, nested arrays or a typed array, got a String object ` +
        `(${JSON.stringify(String(data))})`,
    );
  } else if (data && typeof data === "object" && "length" in data) {
    flat = arrayLikeValues(data, opts);
    shape = [flat.length];
  } else {
    // A refused promise is marked handled: its rejection cannot crash the process later.
    const refused: unknown = data;
    if (refused instanceof Promise) refused.catch(() => {});
    throw new TypeError(
      `tensor: expected a number, nested arrays or a typed array, got ${describe(data)}`,
    );
  }
  if (opts.shape) {
    checkShape("tensor", opts.shape);
    if (sizeOf(opts.shape) !== flat.length) {
      throw new TypeError(
        `tensor: shape ${shapeString(opts.shape)} needs ${
          sizeOf(opts.shape)
        } values, got ${flat.length}`,
      );
    }
    shape = opts.shape;
  }
  return fromFlat("tensor", flat, shape, { ...opts, dtype: opts.dtype ?? inferred });
}

/**
 * A tensor of `shape` filled with `value`.
 *
 * @example
 * ```ts
 * import { full } from "littlegrad";
 * const x = full([2, 2], 7);
 * ```
 */
export function full(
  shape: Shape,
  value: number,
  opts: CreateOptions = {},
): Tensor {
  return filled("full", shape, value, opts);
}

function filled(op: string, shape: Shape, value: number, opts: CreateOptions): Tensor {
  checkOptions(op, opts);
  checkShape(op, shape);
  if (typeof value !== "number") {
    throw new TypeError(`${op}: value must be a number, got ${describe(value)}`);
  }
  prepare(op, shape, opts);
  // Float64 on the host so integer values above 2^24 stay exact until stored.
  return fromFlat(op, new Float64Array(sizeOf(shape)).fill(value), shape, opts);
}

/**
 * A tensor of zeros.
 *
 * @example
 * ```ts
 * import { zeros } from "littlegrad";
 * const b = zeros([10]);
 * ```
 */
export function zeros(shape: Shape, opts: CreateOptions = {}): Tensor {
  return filled("zeros", shape, 0, opts);
}

/**
 * A tensor of ones.
 *
 * @example
 * ```ts
 * import { ones } from "littlegrad";
 * const m = ones([3, 3]);
 * ```
 */
export function ones(shape: Shape, opts: CreateOptions = {}): Tensor {
  return filled("ones", shape, 1, opts);
}

/**
 * Evenly spaced values in `[start, stop)`, like `numpy.arange`. With one
 * number it counts from 0.
 *
 * @example
 * ```ts
 * import { arange } from "littlegrad";
 * console.log(await arange(4).array()); // [0, 1, 2, 3]
 * console.log(await arange(1, 2, 0.25).array()); // [1, 1.25, 1.5, 1.75]
 * ```
 */
export function arange(
  start: number,
  stop?: number,
  step = 1,
  opts: CreateOptions = {},
): Tensor {
  checkOptions("arange", opts);
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every(Number.isFinite) || step === 0) {
    throw new RangeError(
      `arange: start, stop and step must be finite and step non-zero, got ${start}, ${stop}, ${step}`,
    );
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  prepare("arange", [n], opts); // before the host array is allocated
  const data = new Float64Array(n); // exact for integer dtypes beyond 2^24
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  return fromFlat("arange", data, [n], opts);
}

/** Options of the random creation functions. */
export interface RandomOptions extends CreateOptions {
  /**
   * Seed: a non-negative safe integer, as `random.key` takes (default 0).
   * The values are those of `random.key(seed)`, so the same seed gives the
   * same values on every backend and in every run, and distinct seeds give
   * distinct values. Any other seed is refused as `random.key` refuses it:
   * a `TypeError` for a non-number, a `RangeError` for a negative, fractional
   * or unsafe number.
   */
  seed?: number;
}

/** The key of a `RandomOptions` seed, checked as `random.key` checks it, naming `op`. */
function seedKey(op: string, seed: unknown = 0): ReturnType<typeof randomKey> {
  if (typeof seed !== "number") {
    throw new TypeError(
      `${op}: seed must be a non-negative safe integer, got ${describe(seed)}`,
    );
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`${op}: seed must be a non-negative safe integer, got ${seed}`);
  }
  return randomKey(seed);
}

/**
 * @internal Floats in [0, 1), one per call, from the Threefry stream of
 * `random.key(seed)`: the `n`th is element `n` of
 * `random.uniform(random.key(seed), [...])` (for `checkGrads`' directions).
 */
export function generator(seed: number): () => number {
  const [k0, k1] = seedKey("generator", seed).data;
  let i = 0;
  return () => {
    const [a, b] = threefry2x32(k0, k1, Math.floor(i / 2 ** 32), i >>> 0);
    i++;
    return ((a ^ b) >>> 9) / 2 ** 23; // the top 23 bits, as random.uniform takes them
  };
}

/** Random values are floats: an integer or boolean dtype is a `TypeError`. */
function checkFloat(op: string, dtype: DType | undefined): void {
  if (dtype !== undefined && !isFloat(dtype)) {
    throw new TypeError(`${op}: dtype must be float32 or float16, got ${dtype}`);
  }
}

/**
 * Uniform random values in `[low, high)` (default `[0, 1)`) from a seed:
 * the same values as `random.uniform(random.key(seed), shape, { low, high })`.
 *
 * @param shape The result's shape.
 * @param opts `seed` (default 0; see `RandomOptions`), `low`, `high`, `dtype`, `backend`.
 * @returns A new tensor.
 * @example
 * ```ts
 * import { randomUniform } from "littlegrad";
 * const u = randomUniform([2, 3], { seed: 1, low: -1, high: 1 });
 * ```
 */
export function randomUniform(
  shape: Shape,
  opts: RandomOptions & { low?: number; high?: number } = {},
): Tensor {
  checkOptions("randomUniform", opts);
  const k = seedKey("randomUniform", opts.seed);
  checkShape("randomUniform", shape);
  prepare("randomUniform", shape, opts);
  checkFloat("randomUniform", opts.dtype);
  const { low = 0, high = 1 } = opts;
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(low <= high)) {
    throw new RangeError(`randomUniform: need finite low <= high, got low ${low}, high ${high}`);
  }
  return uniform(k, shape, { low, high, dtype: opts.dtype, backend: opts.backend });
}

/**
 * Normally distributed random values from a seed: the same values as
 * `random.normal(random.key(seed), shape, { mean, std })`.
 *
 * @param shape The result's shape.
 * @param opts `seed` (default 0; see `RandomOptions`), `mean`, `std`, `dtype`, `backend`.
 * @returns A new tensor.
 * @example
 * ```ts
 * import { randomNormal } from "littlegrad";
 * const w = randomNormal([784, 128], { seed: 0, std: 0.05 });
 * ```
 */
export function randomNormal(
  shape: Shape,
  opts: RandomOptions & { mean?: number; std?: number } = {},
): Tensor {
  checkOptions("randomNormal", opts);
  const k = seedKey("randomNormal", opts.seed);
  checkShape("randomNormal", shape);
  prepare("randomNormal", shape, opts);
  checkFloat("randomNormal", opts.dtype);
  const { mean = 0, std = 1 } = opts;
  if (!Number.isFinite(mean) || !Number.isFinite(std) || !(std >= 0)) {
    throw new RangeError(
      `randomNormal: need a finite mean and std >= 0, got mean ${mean}, std ${std}`,
    );
  }
  return normal(k, shape, { mean, std, dtype: opts.dtype, backend: opts.backend });
}
