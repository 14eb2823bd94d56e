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
  // exp of a non-positive number never overflows, so large |x| gives ±1, not NaN.
  let e = exp(-2.0 * abs(x));
  let t = (1.0 - e) / (1.0 + e);
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
`;

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
