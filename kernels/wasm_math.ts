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
 * @module
 */

import { Func } from "../src/wasm/encode.ts";

/** The unary float ops with a SIMD function here. */
export const SIMD_MATH = ["exp", "sigmoid"] as const;

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
