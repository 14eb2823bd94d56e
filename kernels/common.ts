/**
 * WGSL snippets shared by the kernel templates.
 *
 * Every kernel reads its parameters from a small uniform block `args` of
 * `ARGS_WORDS` u32 words, bound at binding 0 with a dynamic offset into one
 * ring buffer that the backend fills once per submit. Parameters are read
 * with constant indices (`arg(i)`), which a software adapter turns into one
 * scalar load shared by every invocation.
 * @module
 */

/**
 * The most iterations any loop in a kernel runs per invocation. Mesa's
 * software rasteriser (llvmpipe, behind lavapipe) silently ends every shader
 * loop after 65,535 iterations to guard against hangs, and real GPUs' watchdogs
 * dislike long invocations too; so a kernel whose work could exceed this is
 * split over more invocations or more passes by its backend (reductions into
 * more chunks, matmul along k) instead of looping longer.
 */
export const MAX_LOOP_ITERATIONS = 16384;

/** Invocations per workgroup for 1-D kernels. */
export const WORKGROUP = 256;

/** u32 words in a kernel's `args` block (a 256-byte uniform binding). */
export const ARGS_WORDS = 64;

/** Declaration of the `args` uniform block, binding 0 of group 0. */
export const ARGS_DECL = `@group(0) @binding(0) var<uniform> args: array<vec4<u32>, ${
  ARGS_WORDS / 4
}>;`;

/** WGSL expression reading word `i` of `args` (a constant index). */
export function arg(i: number): string {
  if (!Number.isInteger(i) || i < 0 || i >= ARGS_WORDS) {
    throw new RangeError(`internal: kernel argument index ${i} outside [0, ${ARGS_WORDS})`);
  }
  return `args[${i >> 2}].${"xyzw"[i & 3]}`;
}

/** Helper functions every elementwise or reduction kernel may call. */
export const WGSL_HELPERS = /* wgsl */ `
fn lg_nan() -> f32 { return bitcast<f32>(0x7fc00000u); }
fn lg_neg_inf() -> f32 { return bitcast<f32>(0xff800000u); }
fn lg_tanh(x: f32) -> f32 {
  // tanh|x| = -m / (2 + m) with m = e^(-2|x|) - 1: exp of a non-positive
  // number never overflows (large |x| gives ±1, not NaN), and expm1 keeps
  // small |x| exact where 1 - e^(-2|x|) would cancel.
  let m = lg_expm1(-2.0 * abs(x));
  let t = -m / (2.0 + m);
  return select(t, -t, x < 0.0);
}
fn lg_log1p(x: f32) -> f32 {
  // log(1 + x): a Taylor polynomial near 0 (where 1 + x would round away x),
  // the plain formula elsewhere. Relative error below 2e-8 for |x| < 0.1.
  if (abs(x) < 0.1) {
    return x * (1.0 + x * (-1.0 / 2.0 + x * (1.0 / 3.0 + x * (-1.0 / 4.0 + x * (1.0 / 5.0
      + x * (-1.0 / 6.0 + x * (1.0 / 7.0)))))));
  }
  return log(1.0 + x);
}
fn lg_expm1(x: f32) -> f32 {
  // e^x - 1: a Taylor polynomial near 0 (no cancellation), exp(x) - 1 elsewhere.
  if (abs(x) < 0.1) {
    return x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0
      + x * (1.0 / 720.0))))));
  }
  return exp(x) - 1.0;
}
fn lg_sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(1.0 / (1.0 + e), e / (1.0 + e), x < 0.0);
}
fn lg_pow(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (y == 1.0) { return x; }
  if (y == 2.0) { return x * x; }
  if (x == 0.0 && y < 0.0) {
    // IEEE: ±0 to a negative power is +inf, or -inf for -0 and an odd integer power.
    let odd = floor(y) == y && fract(y * 0.5) != 0.0;
    let inf = bitcast<f32>(0x7f800000u);
    return select(inf, -inf, odd && (bitcast<u32>(x) & 0x80000000u) != 0u);
  }
  let r = exp2(y * log2(abs(x)));
  if (x >= 0.0) { return r; }
  if (floor(y) != y) { return lg_nan(); }
  if (fract(y * 0.5) != 0.0) { return -r; }
  return r;
}
// NaN tests on the bits: compilers may assume float compares never see NaN.
fn lg_is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn lg_is_nan4(x: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}
fn lg_max(a: f32, b: f32) -> f32 {
  return select(max(a, b), lg_nan(), lg_is_nan(a) || lg_is_nan(b));
}
fn lg_max4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  return select(max(a, b), vec4<f32>(lg_nan()), lg_is_nan4(a) | lg_is_nan4(b));
}
fn lg_min(a: f32, b: f32) -> f32 {
  return select(min(a, b), lg_nan(), lg_is_nan(a) || lg_is_nan(b));
}
fn lg_min4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  return select(min(a, b), vec4<f32>(lg_nan()), lg_is_nan4(a) | lg_is_nan4(b));
}
// float -> int: truncate toward zero, saturate, NaN -> 0 (the same on every driver).
fn lg_f2i(x: f32) -> i32 {
  let t = select(i32(max(x, -2147483648.0)), 2147483647i, x >= 2147483648.0);
  return select(t, 0i, lg_is_nan(x));
}
fn lg_f2i4(x: vec4<f32>) -> vec4<i32> {
  return vec4<i32>(lg_f2i(x.x), lg_f2i(x.y), lg_f2i(x.z), lg_f2i(x.w));
}
// int32 -> int8 with wrap-around (shift left, then arithmetic shift right).
fn lg_wrap8(x: i32) -> i32 { return (x << 24u) >> 24u; }
fn lg_wrap84(x: vec4<i32>) -> vec4<i32> { return (x << vec4<u32>(24u)) >> vec4<u32>(24u); }
// Python's floor division and modulo on floats: floor(a / b) and a - b·floor(a / b),
// except that a finite a over an infinite b keeps a same-signed a (quotient 0)
// and otherwise gives b (quotient -1).
fn lg_inf_divisor(a: f32, b: f32) -> bool {
  return (bitcast<u32>(b) & 0x7fffffffu) == 0x7f800000u && (bitcast<u32>(a) & 0x7f800000u) != 0x7f800000u;
}
fn lg_floordiv(a: f32, b: f32) -> f32 {
  let same = a == 0.0 || ((a < 0.0) == (b < 0.0));
  return select(floor(a / b), select(-1.0, 0.0, same), lg_inf_divisor(a, b));
}
fn lg_mod(a: f32, b: f32) -> f32 {
  let same = a == 0.0 || ((a < 0.0) == (b < 0.0));
  return select(a - b * floor(a / b), select(b, a, same), lg_inf_divisor(a, b));
}
// Python's floor division and modulo on integers; a zero divisor gives 0.
fn lg_ifloordiv(a: i32, b: i32) -> i32 {
  if (b == 0i) { return 0i; }
  let q = a / b;
  return select(q, q - 1i, (a % b != 0i) && ((a < 0i) != (b < 0i)));
}
fn lg_imod(a: i32, b: i32) -> i32 {
  if (b == 0i) { return 0i; }
  let r = a % b;
  return select(r, r + b, (r != 0i) && ((r < 0i) != (b < 0i)));
}
`;

/** Helpers for kernels that store float16 (they need `enable f16;`). */
export const WGSL_F16_HELPERS = /* wgsl */ `
// f32 -> f16 rounding, with overflow to ±inf and NaN kept, whatever a driver
// does with out-of-range conversions.
fn lg_f16(x: f32) -> f16 {
  // ±inf and NaN convert exactly; finite values past the largest float16
  // (65504) would be indeterminate, so they become the infinity they round to.
  let inf = bitcast<f32>(0x7f800000u);
  let y = select(clamp(x, -65504.0, 65504.0), select(inf, -inf, x < 0.0), abs(x) >= 65520.0);
  return f16(select(y, x, lg_is_nan(x)));
}
fn lg_f164(x: vec4<f32>) -> vec4<f16> {
  let inf = vec4<f32>(bitcast<f32>(0x7f800000u));
  let big = abs(x) >= vec4<f32>(65520.0);
  let y = select(clamp(x, vec4<f32>(-65504.0), vec4<f32>(65504.0)), select(inf, -inf, x < vec4<f32>(0.0)), big);
  return vec4<f16>(select(y, x, lg_is_nan4(x)));
}
`;

/** How a dtype is stored in WGSL (int8 and bool are widened to i32). */
export function storageType(dtype: string): "f32" | "f16" | "i32" {
  return dtype === "float32" ? "f32" : dtype === "float16" ? "f16" : "i32";
}

/** The type a dtype computes in: f32 for floats, i32 for the rest. */
export function computeType(dtype: string): "f32" | "i32" {
  return dtype === "float32" || dtype === "float16" ? "f32" : "i32";
}

/** A WGSL scalar or vec4 type name. */
export function wgslType(scalar: string, vec: boolean): string {
  return vec ? `vec4<${scalar}>` : scalar;
}

/** A WGSL constant of compute type `type` (scalar or vec4). */
export function constant(value: number, type: "f32" | "i32", vec: boolean): string {
  const lit = type === "f32" ? `${value}.0` : `${value}i`;
  return vec ? `vec4<${type}>(${lit})` : lit;
}

/** The module header: `enable f16;` and the helpers, as the dtypes need. */
export function header(dtypes: readonly string[]): string {
  const f16 = dtypes.includes("float16");
  return `${f16 ? "enable f16;\n" : ""}${WGSL_HELPERS}${f16 ? WGSL_F16_HELPERS : ""}`;
}

/** Converts expression `x`, stored as `dtype`, to compute type `to`. */
export function loadAs(x: string, dtype: string, to: "f32" | "i32", vec: boolean): string {
  return storageType(dtype) === to ? x : `${wgslType(to, vec)}(${x})`;
}

/**
 * Converts expression `v` of compute type `from` to the stored form of
 * `dtype`, with the rules of `convertNumber` in `src/dtype.ts`: floats to
 * integers truncate and saturate (NaN gives 0), int8 wraps, bool is `v != 0`
 * (NaN is true), float16 rounds (overflow gives ±inf).
 */
export function storeAs(v: string, from: "f32" | "i32", dtype: string, vec: boolean): string {
  const w = vec ? "4" : "";
  switch (dtype) {
    case "float32":
      return from === "f32" ? v : `${wgslType("f32", vec)}(${v})`;
    case "float16":
      return `lg_f16${w}(${from === "f32" ? v : `${wgslType("f32", vec)}(${v})`})`;
    case "int32":
      return from === "i32" ? v : `lg_f2i${w}(${v})`;
    case "int8":
      return `lg_wrap8${w}(${from === "i32" ? v : `lg_f2i${w}(${v})`})`;
    default: {
      // bool: written as "== 0" so a NaN counts as true on every compiler.
      const [zero, one] = [constant(0, "i32", vec), constant(1, "i32", vec)];
      return `select(${one}, ${zero}, ${v} == ${constant(0, from, vec)})`;
    }
  }
}

/**
 * WGSL statements declaring `result`: the element offset of flat row-major
 * index `flatVar` in a view of rank `ndim`, whose shape is at
 * `args[shapeAt..]`, strides at `args[stridesAt..]` and base offset at
 * `args[offsetAt]`. Unrolled over the (compile-time) rank.
 */
export function stridedOffset(
  ndim: number,
  flatVar: string,
  shapeAt: number,
  stridesAt: number,
  offsetAt: number,
  result: string,
): string {
  const lines = [`  var ${result} = ${arg(offsetAt)};`];
  if (ndim > 0) lines.push(`  { var rem = ${flatVar};`);
  for (let d = ndim - 1; d >= 0; d--) {
    if (d === 0) {
      lines.push(`    ${result} += rem * ${arg(stridesAt + d)}; }`);
    } else {
      lines.push(
        `    ${result} += (rem % ${arg(shapeAt + d)}) * ${arg(stridesAt + d)};` +
          ` rem /= ${arg(shapeAt + d)};`,
      );
    }
  }
  return lines.join("\n");
}

/** The global invocation index of a 1-D kernel launched on a 2-D grid. */
export const FLAT_INDEX = `gid.x + gid.y * nwg.x * ${WORKGROUP}u`;
