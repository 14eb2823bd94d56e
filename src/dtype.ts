/**
 * Element types, their host arrays, and type promotion.
 *
 * | dtype | host array | GPU storage | arithmetic |
 * |---|---|---|---|
 * | `float32` | `Float32Array` | `f32` | IEEE float32 |
 * | `float16` | `Float16Array` | `f16` (needs `shader-f16`) | computed in float32, rounded to float16 on store |
 * | `int32` | `Int32Array` | `i32` | wraps around (two's complement) |
 * | `int8` | `Int8Array` | `i32`, widened | computed in int32, wrapped to 8 bits on store |
 * | `bool` | `Uint8Array` of 0/1 | `i32` 0/1 | logical |
 *
 * Promotion follows JAX's table restricted to these types: `bool` < `int8`
 * < `int32` among integers, `float16` < `float32` among floats, and an
 * integer meets a float at the float (`int32 + float16` is `float16`).
 * Plain JavaScript numbers are *weak*, like Python scalars in JAX: they take
 * the tensor's type (`int8 + 1` is `int8`, `float16 · 2.5` is `float16`),
 * except that a non-integer number makes an integer or boolean tensor
 * `float32`, and an integer makes a boolean tensor `int32`.
 * @module
 */

import type { Prim } from "./primitives.ts";

/**
 * The element type of a tensor.
 *
 * @example
 * ```ts
 * import { type DType, tensor } from "littlegrad";
 * const d: DType = "int32";
 * console.log(tensor([1, 2], { dtype: d }).dtype); // "int32"
 * ```
 */
export type DType = "float32" | "float16" | "int32" | "int8" | "bool";

/**
 * Every dtype, in promotion order (`bool` lowest, `float32` highest).
 *
 * @example
 * ```ts
 * import { DTYPES } from "littlegrad";
 * console.log(DTYPES); // ["bool", "int8", "int32", "float16", "float32"]
 * ```
 */
export const DTYPES: readonly DType[] = ["bool", "int8", "int32", "float16", "float32"];

/**
 * The typed array `Tensor.data()` returns: `Float32Array` (float32),
 * `Float16Array` (float16), `Int32Array` (int32), `Int8Array` (int8) or a
 * `Uint8Array` of 0/1 (bool).
 *
 * @example
 * ```ts
 * import { type HostArray, tensor } from "littlegrad";
 * const values: HostArray = await tensor([true, false]).data(); // Uint8Array [1, 0]
 * ```
 */
export type HostArray = Float32Array | Float16Array | Int32Array | Int8Array | Uint8Array;

/** Whether `dtype` is a floating-point type (the differentiable ones). */
export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16";
}

/** The short name used in traces: `f32 f16 i32 i8 bool`. */
export function shortName(dtype: DType): string {
  return { float32: "f32", float16: "f16", int32: "i32", int8: "i8", bool: "bool" }[dtype];
}

/** The typed-array class that holds `dtype` on the host. */
export function hostArrayClass(dtype: DType) {
  return {
    float32: Float32Array,
    float16: Float16Array,
    int32: Int32Array,
    int8: Int8Array,
    bool: Uint8Array,
  }[dtype];
}

/** A zero-filled host array of `n` elements of `dtype`. */
export function hostArray(dtype: DType, n: number): HostArray {
  return new (hostArrayClass(dtype))(n);
}

/** The dtype a typed array holds, or `undefined` for other arrays. */
export function dtypeOfArray(data: unknown): DType | undefined {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float16Array) return "float16";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "bool";
  return undefined;
}

/** Throws a `TypeError` naming the op unless `dtype` is a known dtype. */
export function checkDType(op: string, dtype: unknown): asserts dtype is DType {
  if (!DTYPES.includes(dtype as DType)) {
    throw new TypeError(
      `${op}: unknown dtype ${JSON.stringify(dtype)} (known: ${DTYPES.join(", ")})`,
    );
  }
}

const RANK: Record<DType, number> = { bool: 0, int8: 1, int32: 2, float16: 3, float32: 4 };

/**
 * The dtype two tensors are computed in: JAX's promotion table for the
 * types littlegrad has.
 *
 * @example
 * ```ts
 * import { promoteTypes } from "littlegrad";
 * console.log(promoteTypes("int8", "int32")); // "int32"
 * console.log(promoteTypes("int32", "float16")); // "float16"
 * ```
 */
export function promoteTypes(a: DType, b: DType): DType {
  // The ranks follow the lattice: bool < int8 < int32 < float16 < float32,
  // and an integer meeting a float gives that float.
  return RANK[a] >= RANK[b] ? a : b;
}

/** The values `dtype` holds, `[lowest, highest]` (floats: ±Infinity; bool: 0 and 1). */
export function valueRange(dtype: DType): [number, number] {
  if (isFloat(dtype)) return [-Infinity, Infinity];
  if (dtype === "bool") return [0, 1];
  return dtype === "int8" ? [-128, 127] : [-(2 ** 31), 2 ** 31 - 1];
}

/** Whether the number `value` is exactly a value of `dtype` (any number for floats). */
export function holds(dtype: DType, value: number): boolean {
  if (isFloat(dtype)) return true;
  const [lo, hi] = valueRange(dtype);
  return Number.isInteger(value) && value >= lo && value <= hi;
}

/**
 * What kind of plain number a value is, which decides its weak type:
 * `float` (not an integer, also NaN and ±Infinity), `int8` or `int32` (an
 * integer that fits), `wide` (an integer beyond int32), `negzero` (-0: an
 * integer that keeps its sign next to floats). `jit` traces a number as a
 * scalar of its kind.
 */
export type WeakKind = "float" | "int8" | "int32" | "wide" | "negzero";

/** The weak kind of the number `value`. */
export function weakKindOf(value: number): WeakKind {
  if (!Number.isInteger(value)) return "float";
  if (Object.is(value, -0)) return "negzero";
  if (holds("int8", value)) return "int8";
  return holds("int32", value) ? "int32" : "wide";
}

/**
 * The dtype a traced number of `kind` is stored in: int32 for integers that
 * fit it, float32 otherwise (as eager rounds a number next to float32).
 */
export function weakStorageDType(kind: WeakKind): "float32" | "int32" {
  return kind === "int8" || kind === "int32" ? "int32" : "float32";
}

/**
 * The dtype a number of weak `kind` takes next to a tensor of `dtype`,
 * checking that an integer fits: `int8 + 300` is a `RangeError`, as in JAX.
 * `value`, when known, is named in the error.
 */
export function weakKindDType(op: string, kind: WeakKind, dtype: DType, value?: number): DType {
  if (isFloat(dtype)) return dtype;
  if (kind === "float") return "float32";
  const target = dtype === "int8" ? "int8" : "int32";
  if (kind === "wide" || (target === "int8" && kind === "int32")) {
    const [lo, hi] = valueRange(target);
    throw new RangeError(
      `${op}: the ${value === undefined ? "traced number" : `number ${value}`} does not fit ` +
        `the tensor's dtype ${target} ([${lo}, ${hi}]); cast the tensor first with astype`,
    );
  }
  return target;
}

/** The dtype the plain number `value` takes next to a tensor of `dtype` (a weak type). */
export function weakDType(op: string, value: number, dtype: DType): DType {
  return weakKindDType(op, weakKindOf(value), dtype, value);
}

/**
 * Converts a number as `astype` does: to an integer dtype by truncating
 * toward zero and saturating at the type's limits (NaN gives 0), then
 * wrapping to 8 bits for `int8`; to `bool` as `value != 0` (NaN is true).
 * Floats are returned unchanged (the host array rounds them).
 */
export function convertNumber(value: number, dtype: DType): number {
  if (isFloat(dtype)) return value;
  if (dtype === "bool") return value !== 0 ? 1 : 0;
  if (Number.isNaN(value)) return 0;
  const i = Math.trunc(Math.min(Math.max(value, -(2 ** 31)), 2 ** 31 - 1));
  return dtype === "int8" ? (i << 24) >> 24 : i;
}

// ---- per-primitive dtype policy ---------------------------------------------

/**
 * What a primitive does with dtypes. The op layer (`src/ops/`) reads the
 * input side before it applies a primitive; abstract evaluation reads the
 * output side.
 */
export interface DTypePolicy {
  /**
   * Integer and bool inputs:
   * - `"native"`: computed on as they are (integer arithmetic wraps);
   * - `"float"`: a float function (`exp`, `log`, …) or true division
   *   (`div`, `pow`): the op layer computes them in float32;
   * - `"identity"`: rounding, the identity on integers: the op layer returns
   *   a copy and launches no kernel;
   * - `"reject"`: floats only (`matmul`): the op layer raises.
   */
  readonly integers: "native" | "float" | "identity" | "reject";
  /** False where bool inputs are refused, as in NumPy (`neg`, `sub`): the op layer raises. */
  readonly bool: boolean;
  /**
   * The output dtype:
   * - `"input"`: the (first) input's;
   * - `"bool"`: comparisons;
   * - `"branches"`: `where`, the dtype of its second and third inputs;
   * - `"param"`: the `dtype` parameter when given (`convert`; `sum` and
   *   `prod` widening int8 and bool), else the input's.
   */
  readonly output: "input" | "bool" | "branches" | "param";
  /**
   * The dtype int8 and bool inputs accumulate in (and the result has), as in
   * JAX: int32 for `sum` and `prod`; null for the input's own.
   */
  readonly accumulate: "int32" | null;
}

const native: DTypePolicy = { integers: "native", bool: true, output: "input", accumulate: null };
const floatFunction: DTypePolicy = { ...native, integers: "float" };
const rounding: DTypePolicy = { ...native, integers: "identity" };
const comparison: DTypePolicy = { ...native, output: "bool" };
const noBool: DTypePolicy = { ...native, bool: false };
const accumulating: DTypePolicy = { ...native, output: "param", accumulate: "int32" };

/** Every primitive's dtype policy. */
export const DTYPE_POLICY: { readonly [P in Prim]: DTypePolicy } = {
  neg: noBool,
  exp: floatFunction,
  log: floatFunction,
  sqrt: floatFunction,
  tanh: floatFunction,
  sigmoid: floatFunction,
  abs: native,
  sign: native,
  sin: floatFunction,
  cos: floatFunction,
  floor: rounding,
  ceil: rounding,
  round: rounding,
  log1p: floatFunction,
  expm1: floatFunction,
  convert: { ...native, output: "param" },
  add: native,
  sub: noBool,
  mul: native,
  div: floatFunction,
  pow: floatFunction,
  maximum: native,
  minimum: native,
  floordiv: native,
  mod: native,
  lt: comparison,
  le: comparison,
  eq: comparison,
  ne: comparison,
  where: { ...native, output: "branches" },
  sum: accumulating,
  prod: accumulating,
  max: native,
  min: native,
  matmul: { ...native, integers: "reject", bool: false },
  reshape: native,
  transpose: native,
  broadcast: native,
  slice: native,
  flip: native,
  pad: native,
  gather: native,
  stopGradient: native,
};

/**
 * Whether `prim` computes integer and bool inputs in float32: a float-only
 * function (`exp`, `log`, `sqrt`, `tanh`, `sigmoid`, `sin`, `cos`, `log1p`,
 * `expm1`) or true division (`div`, `pow`).
 */
export function computesInFloat(prim: Prim): boolean {
  return DTYPE_POLICY[prim].integers === "float";
}

/** Whether `prim` is the identity on integer and bool inputs (`floor`, `ceil`, `round`). */
export function isIdentityOnIntegers(prim: Prim): boolean {
  return DTYPE_POLICY[prim].integers === "identity";
}

/** Whether `prim` takes integer and bool inputs at all (all but `matmul`). */
export function acceptsIntegers(prim: Prim): boolean {
  return DTYPE_POLICY[prim].integers !== "reject";
}

/** Whether `prim` refuses bool inputs (`neg`, `sub`, `matmul`). */
export function refusesBool(prim: Prim): boolean {
  return !DTYPE_POLICY[prim].bool;
}

/**
 * The dtype `prim` accumulates an input of `dtype` in, which its result has:
 * int32 for sums and products of int8 and bool, else `dtype`.
 */
export function accumulationDType(prim: Prim, dtype: DType): DType {
  const wide = DTYPE_POLICY[prim].accumulate;
  return wide !== null && (dtype === "int8" || dtype === "bool") ? wide : dtype;
}

/**
 * The output dtype of `prim` on inputs of `dtypes`, given its `dtype`
 * parameter if it has one (see `DTypePolicy.output`).
 */
export function outputDType(prim: Prim, dtypes: readonly DType[], param?: DType): DType {
  switch (DTYPE_POLICY[prim].output) {
    case "input":
      return dtypes[0];
    case "bool":
      return "bool";
    case "branches":
      return dtypes[1];
    case "param":
      return param ?? dtypes[0];
  }
}
