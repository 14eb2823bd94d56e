/**
 * Functional pseudo-random numbers, as in `jax.random`: a `Key` is an
 * immutable value, `split` and `foldIn` derive new keys from it, and every
 * sampler is a pure function of a key — the same key gives the same values on
 * every backend and in every run. Nothing is global and nothing is consumed:
 * reusing a key repeats its numbers, so split a key before using it twice.
 *
 * The generator is Threefry-2x32 with 20 rounds (Salmon et al., "Parallel
 * random numbers: as easy as 1, 2, 3", SC 2011), the counter-based hash JAX
 * uses, computed on the host. Keys are derived as JAX does with its default
 * `jax_threefry_partitionable` mode: `split(k, n)[i]` and `foldIn(k, i)` both
 * hash the counter `(0, i)` with `k`, and the 32 random bits of element `i`
 * are the two words of the hash of `(0, i)` XORed together. Floats are made
 * from bits as JAX makes them (23 mantissa bits; normals by `√2·erfinv`).
 *
 * The seeded `randomNormal` and `randomUniform` draw from this generator too:
 * `randomNormal(shape, { seed })` is `normal(key(seed), shape)`.
 *
 * Every sampler checks the requested size against the backend's limit
 * before it computes or allocates anything.
 * @module
 */

import { type BackendName, resolveBackend } from "./backends.ts";
import { type Backend, checkCapacity, HOST_MAX_ELEMENTS } from "./backend.ts";
import { checkDType, type DType, type HostArray, hostArray, isFloat } from "./dtype.ts";
import { checkShape, type Shape, sizeOf } from "./shape.ts";
import { checkBackendDType } from "./ops/_operands.ts";
import type { Tensor } from "./tensor.ts";
import { checkOptions, describe } from "./core/errors.ts";
import { hostTensor } from "./core/interpreter.ts";

/**
 * A PRNG key: two 32-bit words, immutable. Create one with `key(seed)`,
 * derive more with `split` and `foldIn`. Keys live on the host; they own no
 * memory and need no `dispose()`.
 *
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const k = random.key(42);
 * console.log(String(k)); // Key(0, 42)
 * ```
 */
export class Key {
  /** The two 32-bit words `[hi, lo]`. */
  readonly data: readonly [number, number];

  /**
   * Wraps two 32-bit words. Most code uses `key(seed)` instead.
   * @param hi The first word, an integer in [0, 2³²).
   * @param lo The second word, an integer in [0, 2³²).
   */
  constructor(hi: number, lo: number) {
    for (const w of [hi, lo]) {
      if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) {
        throw new RangeError(`Key: words must be integers in [0, 2^32), got ${hi}, ${lo}`);
      }
    }
    this.data = Object.freeze([hi, lo]) as readonly [number, number];
    Object.freeze(this);
  }

  /** `Key(hi, lo)`. */
  toString(): string {
    return `Key(${this.data[0]}, ${this.data[1]})`;
  }

  /** Used by `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

// ---- the hash ------------------------------------------------------------------

const ROTATIONS = [[13, 15, 26, 6], [17, 29, 16, 24]] as const;

/**
 * Threefry-2x32 with 20 rounds: hashes the counter `(c0, c1)` with the key
 * `(k0, k1)` into two 32-bit words.
 *
 * @param k0 Key word 0.
 * @param k1 Key word 1.
 * @param c0 Counter word 0.
 * @param c1 Counter word 1.
 * @returns The two output words, each in [0, 2³²).
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * // A known-answer vector of the Random123 reference implementation:
 * console.log(random.threefry2x32(0, 0, 0, 0).map((w) => w.toString(16))); // ["6b200159", "99ba4efe"]
 * ```
 */
export function threefry2x32(
  k0: number,
  k1: number,
  c0: number,
  c1: number,
): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0;
  let x1 = (c1 + ks[1]) >>> 0;
  for (let i = 0; i < 5; i++) {
    for (const r of ROTATIONS[i % 2]) {
      x0 = (x0 + x1) >>> 0;
      x1 = ((x1 << r) | (x1 >>> (32 - r))) >>> 0;
      x1 = (x1 ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(i + 1) % 3]) >>> 0;
    x1 = (x1 + ks[(i + 2) % 3] + i + 1) >>> 0;
  }
  return [x0, x1];
}

/** The hash of the 64-bit counter `i` (split into two words) under `k`. */
function hashIndex(k: Key, i: number): [number, number] {
  return threefry2x32(k.data[0], k.data[1], Math.floor(i / 2 ** 32), i >>> 0);
}

function checkKey(op: string, k: unknown): Key {
  if (!(k instanceof Key)) {
    // A refused promise is marked handled: its rejection cannot crash the process later.
    if (k instanceof Promise) k.catch(() => {});
    throw new TypeError(
      `${op}: expected a Key (from random.key(seed)), got ${
        k === null ? "null" : Array.isArray(k) ? "an array" : typeof k
      }`,
    );
  }
  return k;
}

// ---- keys ----------------------------------------------------------------------

/**
 * A key from an integer seed, as `jax.random.key(seed)`: `Key(0, seed)` for
 * seeds below 2³², `Key(⌊seed / 2³²⌋, seed mod 2³²)` above, so distinct
 * seeds give distinct keys. A seed that is not a number is a `TypeError`;
 * a negative, fractional or unsafe one a `RangeError`.
 *
 * @param seed A non-negative safe integer.
 * @returns The key.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const k = random.key(0);
 * const w = random.normal(k, [3, 2]); // the same values every run, on every backend
 * ```
 */
export function key(seed: number): Key {
  if (typeof seed !== "number") {
    throw new TypeError(
      `random.key: seed must be a non-negative safe integer, got ${describe(seed)}`,
    );
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`random.key: seed must be a non-negative safe integer, got ${seed}`);
  }
  return new Key(Math.floor(seed / 2 ** 32), seed >>> 0);
}

/**
 * Derives `num` new, independent keys from `k` (default 2). Use one of them
 * now and keep another for later; never use `k` itself again.
 *
 * @param k The key to split.
 * @param num How many keys to make.
 * @returns `num` keys.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * let k = random.key(0);
 * let sub: random.Key;
 * [k, sub] = random.split(k);
 * const noise = random.uniform(sub, [4]);
 * ```
 */
export function split(k: Key, num = 2): Key[] {
  checkKey("random.split", k);
  if (!Number.isSafeInteger(num) || num < 0) {
    throw new RangeError(`random.split: num must be a non-negative integer, got ${num}`);
  }
  return Array.from({ length: num }, (_, i) => new Key(...hashIndex(k, i)));
}

/**
 * Derives a key from `k` and an integer, e.g. a step or layer number:
 * different data give independent keys.
 *
 * @param k The base key.
 * @param data An integer in [0, 2³²).
 * @returns The derived key.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const base = random.key(0);
 * const perStep = [0, 1, 2].map((step) => random.foldIn(base, step));
 * ```
 */
export function foldIn(k: Key, data: number): Key {
  checkKey("random.foldIn", k);
  if (!Number.isInteger(data) || data < 0 || data > 0xffffffff) {
    throw new RangeError(`random.foldIn: data must be an integer in [0, 2^32), got ${data}`);
  }
  return new Key(...threefry2x32(k.data[0], k.data[1], 0, data));
}

/**
 * `count` random 32-bit words on the host (element `i` is the XOR of the two
 * words of the hash of counter `i`). At most 2³⁰ words.
 *
 * @param k The key.
 * @param count How many words.
 * @returns The words.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const words = random.bits(random.key(1), 4); // Uint32Array of length 4
 * ```
 */
export function bits(k: Key, count: number): Uint32Array {
  checkKey("random.bits", k);
  if (!Number.isSafeInteger(count) || count < 0 || count > HOST_MAX_ELEMENTS) {
    throw new RangeError(
      `random.bits: count must be an integer in [0, ${HOST_MAX_ELEMENTS}] (2^30), got ${count}`,
    );
  }
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const [a, b] = hashIndex(k, i);
    out[i] = a ^ b;
  }
  return out;
}

// ---- samplers on the host ------------------------------------------------------

/** Floats in [0, 1) from the top 23 bits of each word, as JAX makes them. */
function unitFloats(k: Key, count: number): Float32Array {
  const words = bits(k, count);
  const asFloat = new Float32Array(words.buffer);
  for (let i = 0; i < count; i++) words[i] = (words[i] >>> 9) | 0x3f800000; // [1, 2)
  for (let i = 0; i < count; i++) asFloat[i] -= 1;
  return asFloat;
}

/**
 * The inverse error function in single precision (M. Giles, "Approximating
 * the erfinv function", GPU Computing Gems, 2011) — the approximation XLA
 * uses, so normals match JAX's to float32 rounding.
 *
 * @param x A number in (-1, 1).
 * @returns `erfinv(x)`.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * console.log(random.erfinv(0.5)); // ≈ 0.476936
 * ```
 */
export function erfinv(x: number): number {
  let w = -Math.log((1 - x) * (1 + x));
  let p: number;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-8;
    p = 3.43273939e-7 + p * w;
    p = -3.5233877e-6 + p * w;
    p = -4.39150654e-6 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = Math.sqrt(w) - 3;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  return p * x;
}

/** Options of the samplers. */
export interface SampleOptions {
  /** Backend of the result (default: the current default backend). */
  backend?: BackendName;
  /**
   * `"float32"` (default) or `"float16"`: the values are drawn in float32
   * and rounded. Another dtype is a `TypeError`.
   */
  dtype?: DType;
}

/** Where and as what a sampler's result is stored, checked before any work. */
interface Target {
  n: number;
  shape: Shape;
  backend: Backend;
  dtype: DType;
}

/**
 * Checks a sampler's key, shape, dtype and size (against the backend's
 * limit) before anything is computed or allocated.
 */
function target(op: string, k: Key, shape: Shape, opts: SampleOptions): Target {
  checkKey(op, k);
  checkShape(op, shape);
  const dtype = opts.dtype ?? "float32";
  checkDType(op, dtype);
  if (!isFloat(dtype)) {
    throw new TypeError(`${op}: dtype must be float32 or float16, got ${dtype}`);
  }
  const backend = resolveBackend(opts.backend);
  checkBackendDType(op, backend, dtype);
  checkCapacity(op, shape, backend);
  return { n: sizeOf(shape), shape: [...shape], backend, dtype };
}

/** Uploads float32 samples as a new tensor of the target's dtype. */
function store(values: Float32Array, to: Target): Tensor {
  let host: HostArray = values;
  if (to.dtype !== "float32") {
    host = hostArray(to.dtype, values.length);
    host.set(values);
  }
  return hostTensor(host, to.dtype, to.shape, to.backend);
}

/**
 * Uniform values in `[low, high)` (default `[0, 1)`).
 *
 * @param k The key.
 * @param shape The result's shape.
 * @param opts `low`, `high`, `backend`, `dtype`.
 * @returns A new tensor.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const u = random.uniform(random.key(0), [2, 3], { low: -1, high: 1 });
 * ```
 */
export function uniform(
  k: Key,
  shape: Shape,
  opts: SampleOptions & { low?: number; high?: number } = {},
): Tensor {
  checkOptions("random.uniform", opts);
  const to = target("random.uniform", k, shape, opts);
  const n = to.n;
  const { low = 0, high = 1 } = opts;
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(low <= high)) {
    throw new RangeError(
      `random.uniform: need finite low <= high, got low ${low}, high ${high}`,
    );
  }
  const u = unitFloats(k, n);
  const scale = Math.fround(high - low);
  for (let i = 0; i < n; i++) {
    u[i] = Math.max(low, Math.fround(Math.fround(u[i] * scale) + low));
  }
  return store(u, to);
}

/** Standard normal samples on the host, as JAX draws them. */
function standardNormals(k: Key, n: number): Float32Array {
  const lo = -0.99999994; // nextafter(-1, 0) in float32
  const u = unitFloats(k, n);
  for (let i = 0; i < n; i++) {
    const v = Math.max(lo, Math.fround(Math.fround(u[i] * 2) + lo));
    u[i] = Math.SQRT2 * erfinv(v);
  }
  return u;
}

/**
 * Normally distributed values with mean `mean` (default 0) and standard
 * deviation `std` (default 1).
 *
 * @param k The key.
 * @param shape The result's shape.
 * @param opts `mean`, `std`, `backend`, `dtype`.
 * @returns A new tensor.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const w = random.normal(random.key(0), [784, 128], { std: 0.05 });
 * ```
 */
export function normal(
  k: Key,
  shape: Shape,
  opts: SampleOptions & { mean?: number; std?: number } = {},
): Tensor {
  checkOptions("random.normal", opts);
  const to = target("random.normal", k, shape, opts);
  const n = to.n;
  const { mean = 0, std = 1 } = opts;
  if (!Number.isFinite(mean) || !Number.isFinite(std) || std < 0) {
    throw new RangeError(
      `random.normal: need a finite mean and std >= 0, got mean ${mean}, std ${std}`,
    );
  }
  const z = standardNormals(k, n);
  if (mean !== 0 || std !== 1) { for (let i = 0; i < n; i++) z[i] = mean + std * z[i]; }
  return store(z, to);
}

/**
 * 1 with probability `p` and 0 otherwise, as floats (a dropout mask).
 *
 * @param k The key.
 * @param p The probability of a 1, in [0, 1].
 * @param shape The result's shape.
 * @param opts `backend`, `dtype`.
 * @returns A new tensor of 0s and 1s.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const keep = random.bernoulli(random.key(0), 0.9, [4, 4]);
 * ```
 */
export function bernoulli(
  k: Key,
  p: number,
  shape: Shape,
  opts: SampleOptions = {},
): Tensor {
  const to = target("random.bernoulli", k, shape, opts);
  const n = to.n;
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
    throw new RangeError(`random.bernoulli: p must be in [0, 1], got ${p}`);
  }
  const u = unitFloats(k, n);
  for (let i = 0; i < n; i++) u[i] = u[i] < p ? 1 : 0;
  return store(u, to);
}

/**
 * A random permutation of `0 … n-1` on the host (Fisher–Yates), e.g. to
 * shuffle a dataset each epoch. At most 2³⁰ indices.
 *
 * @param k The key.
 * @param n How many indices.
 * @returns The shuffled indices.
 * @example
 * ```ts
 * import { random } from "littlegrad";
 * const order = random.permutation(random.key(3), 5); // e.g. Int32Array [3, 0, 4, 1, 2]
 * ```
 */
export function permutation(k: Key, n: number): Int32Array {
  checkKey("random.permutation", k);
  if (!Number.isInteger(n) || n < 0 || n > HOST_MAX_ELEMENTS) {
    throw new RangeError(
      `random.permutation: n must be an integer in [0, ${HOST_MAX_ELEMENTS}] (2^30), got ${n}`,
    );
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const words = bits(k, n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((words[i] / 2 ** 32) * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
