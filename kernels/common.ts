/**
 * WGSL snippets shared by the kernel templates.
 * @module
 */

/** Invocations per workgroup for 1-D kernels. */
export const WORKGROUP = 256;

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
fn lg_max(a: f32, b: f32) -> f32 {
  return select(max(a, b), lg_nan(), a != a || b != b);
}
`;

/**
 * WGSL statements that turn a flat row-major index `flatVar` over the shape
 * stored at `args[shapeAt..]` into an element offset, using the strides at
 * `args[stridesAt..]` and the base offset expression `base`.
 */
export function stridedOffset(
  ndim: number,
  flatVar: string,
  shapeAt: string,
  stridesAt: string,
  base: string,
  result: string,
): string {
  return `
  var ${result} = ${base};
  {
    var rem = ${flatVar};
    for (var d = ${ndim - 1}; d >= 0; d = d - 1) {
      let extent = args[${shapeAt} + u32(d)];
      ${result} = ${result} + (rem % extent) * args[${stridesAt} + u32(d)];
      rem = rem / extent;
    }
  }`;
}

/** The global invocation index of a 1-D kernel launched on a 2-D grid. */
export const FLAT_INDEX = `gid.x + gid.y * nwg.x * ${WORKGROUP}u`;
