/**
 * Float32 functions of the wasm backend written in WebAssembly SIMD, for
 * the ops where calling the reference's float64 function per element would
 * dominate (`exp` and `sigmoid`). Each is a function `(v128) -> v128` over
 * four float32 lanes; scalar code calls it on a splatted value.
 *
 * `exp` reduces `x = n·ln2 + r` (|r| ≤ ln2/2, Cody–Waite with a two-part
 * ln2), evaluates the degree-7 Taylor polynomial of `e^r` (truncation error
 * below 2⁻²⁷ relative) and scales by `2^n` in two steps, so subnormal
 * results are reached; NaN propagates, ±Infinity give Infinity and 0. It
 * is within 2 ulp of the correctly rounded result (`tests/wasm_test.ts`
 * measures it against `Math.exp` over the float32 range).
 *
 * `log` splits `x = m·2^e` with `m` in [√½, √2) (subnormals scaled by 2²³
 * first) and sums `e·ln2` (two-part) and `log m = 2 atanh s`, `s = (m-1)/(m+1)`,
 * by its odd series to s¹¹ (|s| ≤ 0.172: truncation below 2⁻³⁰). `tanh`
 * is `-t/(2 + t)` with `t = expm1(-2|x|)` and the sign of `x`: `expm1` is
 * its Taylor polynomial to degree 11 on (-1, 0] (no cancellation near 0)
 * and `exp(y) - 1` below. Both are measured against the float64 functions
 * in `tests/wasm_test.ts`.
 * @module
 */

import { Func } from "../src/wasm/encode.ts";

/** The unary float ops with a SIMD function here. */
export const SIMD_MATH = ["exp", "sigmoid", "tanh", "log"] as const;

/** One of `SIMD_MATH`. */
export type SimdMathOp = typeof SIMD_MATH[number];

/** `e^x` on four lanes. */
export function expFunc(): Func {
  const f = new Func(["v128"], ["v128"]);
  const x = 0;
  const n = f.local("v128");
  const r = f.local("v128");
  const p = f.local("v128");
  const k = f.local("v128");
  const splat = (c: number) => f.f32(c).simd("f32x4.splat");
  // Beyond these bounds the result is Infinity or 0 anyway; clamping keeps n small.
  f.get(x);
  splat(-104);
  f.simd("f32x4.max");
  splat(89);
  f.simd("f32x4.min").set(x);
  // n = round(x / ln2); r = x - n·ln2 in two parts (n·LN2_HI is exact).
  f.get(x);
  splat(Math.LOG2E);
  f.simd("f32x4.mul").simd("f32x4.nearest").set(n);
  f.get(x).get(n);
  splat(0.693359375);
  f.simd("f32x4.mul").simd("f32x4.sub");
  f.get(n);
  splat(-2.12194440e-4);
  f.simd("f32x4.mul").simd("f32x4.sub").set(r);
  // p = Σ r^i / i!, i ≤ 7, by Horner.
  const coefficients = [1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1];
  splat(coefficients[0]);
  f.set(p);
  for (const c of coefficients.slice(1)) {
    f.get(p).get(r).simd("f32x4.mul");
    splat(c);
    f.simd("f32x4.add").set(p);
  }
  // 2^n as two powers of two, each a normal float: 2^(n>>1) · 2^(n - (n>>1)).
  f.get(n).simd("i32x4.trunc_sat_f32x4_s").set(k);
  const pow2 = (exponent: () => void) => {
    exponent();
    f.i32(127).simd("i32x4.splat").simd("i32x4.add").i32(23).simd("i32x4.shl");
  };
  f.get(p);
  pow2(() => f.get(k).i32(1).simd("i32x4.shr_s"));
  f.simd("f32x4.mul");
  pow2(() => f.get(k).get(k).i32(1).simd("i32x4.shr_s").simd("i32x4.sub"));
  f.simd("f32x4.mul");
  return f;
}

/**
 * The logistic function on four lanes, with the reference's formula:
 * `1 / (1 + e^-x)` for x ≥ 0 and `e^x / (1 + e^x)` below, through
 * `e = exp(-|x|)` (function `exp`, an index of the module).
 */
export function sigmoidFunc(exp: number): Func {
  const f = new Func(["v128"], ["v128"]);
  const e = f.local("v128");
  const d = f.local("v128");
  f.get(0).simd("f32x4.abs").simd("f32x4.neg").call(exp).set(e);
  f.f32(1).simd("f32x4.splat").get(e).simd("f32x4.add").set(d);
  // bitselect(a, b, mask): a where the mask is set.
  f.f32(1).simd("f32x4.splat").get(d).simd("f32x4.div");
  f.get(e).get(d).simd("f32x4.div");
  f.get(0).f32(0).simd("f32x4.splat").simd("f32x4.ge");
  f.simd("v128.bitselect");
  return f;
}

/** Pushes `c` splatted on four float lanes. */
function splatF(f: Func, c: number): void {
  f.f32(c).simd("f32x4.splat");
}

/** Pushes `c` splatted on four int lanes. */
function splatI(f: Func, c: number): void {
  f.i32(c).simd("i32x4.splat");
}

/** Pushes `Σ coefficients[i]·x^(n-1-i)` (Horner, highest first) for the vector in local `x`. */
function horner(f: Func, x: number, coefficients: readonly number[]): void {
  splatF(f, coefficients[0]);
  for (const c of coefficients.slice(1)) {
    f.get(x).simd("f32x4.mul");
    splatF(f, c);
    f.simd("f32x4.add");
  }
}

/** The natural logarithm on four lanes (NaN below 0, -Infinity at ±0). */
export function logFunc(): Func {
  const f = new Func(["v128"], ["v128"]);
  const x = 0;
  const tiny = f.local("v128");
  const m = f.local("v128");
  const e = f.local("v128");
  const big = f.local("v128");
  const s = f.local("v128");
  const z = f.local("v128");
  const r = f.local("v128");
  // Subnormals: scaled by 2^23 (exactly), their exponent lowered by 23.
  f.get(x);
  splatF(f, 2 ** -126);
  f.simd("f32x4.lt").set(tiny);
  f.get(x);
  splatF(f, 2 ** 23);
  f.simd("f32x4.mul").get(x).get(tiny).simd("v128.bitselect").set(m);
  // e = biased exponent - 127 (- 23 for subnormals); m's exponent set to 0: m in [1, 2).
  f.get(m).i32(23).simd("i32x4.shr_u");
  splatI(f, 127);
  f.simd("i32x4.sub");
  splatI(f, -23);
  splatI(f, 0);
  f.get(tiny).simd("v128.bitselect").simd("i32x4.add").set(e);
  f.get(m);
  splatI(f, 0x007fffff);
  f.simd("v128.and");
  splatI(f, 0x3f800000);
  f.simd("v128.or").set(m);
  // m above √2: halved (exactly), e one higher (a true lane is -1).
  f.get(m);
  splatF(f, Math.SQRT2);
  f.simd("f32x4.gt").set(big);
  f.get(m);
  splatF(f, 0.5);
  f.simd("f32x4.mul").get(m).get(big).simd("v128.bitselect").set(m);
  f.get(e).get(big).simd("i32x4.sub").simd("f32x4.convert_i32x4_s").set(e);
  // s = (m - 1) / (m + 1) (m - 1 is exact); log m = 2s (1 + z/3 + z²/5 + ...), z = s².
  f.get(m);
  splatF(f, 1);
  f.simd("f32x4.sub").get(m);
  splatF(f, 1);
  f.simd("f32x4.add").simd("f32x4.div").set(s);
  f.get(s).get(s).simd("f32x4.mul").set(z);
  horner(f, z, [2 / 11, 2 / 9, 2 / 7, 2 / 5, 2 / 3, 2]);
  f.get(s).simd("f32x4.mul");
  // + e·ln2, in two parts (e·LN2_HI is exact).
  f.get(e);
  splatF(f, -2.12194440e-4);
  f.simd("f32x4.mul").simd("f32x4.add");
  f.get(e);
  splatF(f, 0.693359375);
  f.simd("f32x4.mul").simd("f32x4.add").set(r);
  // ±0 → -Infinity; +Infinity → +Infinity; below 0 and NaN → NaN.
  splatF(f, -Infinity);
  f.get(r).get(x);
  splatF(f, 0);
  f.simd("f32x4.eq").simd("v128.bitselect").set(r);
  splatF(f, Infinity);
  f.get(r).get(x);
  splatF(f, Infinity);
  f.simd("f32x4.eq").simd("v128.bitselect").set(r);
  // bitselect(a, b, mask) takes a where the mask is set; x ≥ 0 is false for NaN.
  f.get(r);
  splatF(f, NaN);
  f.get(x);
  splatF(f, 0);
  f.simd("f32x4.ge").simd("v128.bitselect");
  return f;
}

/** The hyperbolic tangent on four lanes, through `exp` (function `exp`, an index of the module). */
export function tanhFunc(exp: number): Func {
  const f = new Func(["v128"], ["v128"]);
  const x = 0;
  const y = f.local("v128");
  const t = f.local("v128");
  // y = -2|x| ≤ 0; t = expm1(y): Taylor on (-1, 0], exp(y) - 1 below.
  f.get(x).simd("f32x4.abs");
  splatF(f, -2);
  f.simd("f32x4.mul").set(y);
  const taylor = [1 / 39916800, 1 / 3628800, 1 / 362880, 1 / 40320, 1 / 5040, 1 / 720, 1 / 120];
  horner(f, y, [...taylor, 1 / 24, 1 / 6, 1 / 2, 1]);
  f.get(y).simd("f32x4.mul");
  f.get(y).call(exp);
  splatF(f, 1);
  f.simd("f32x4.sub");
  f.get(y);
  splatF(f, -1);
  f.simd("f32x4.gt").simd("v128.bitselect").set(t);
  // tanh|x| = -t / (2 + t), then x's sign (so tanh(-0) = -0).
  f.get(t).simd("f32x4.neg");
  splatF(f, 2);
  f.get(t).simd("f32x4.add").simd("f32x4.div");
  f.get(x);
  splatI(f, 0x80000000 | 0);
  f.simd("v128.and").simd("v128.or");
  return f;
}
