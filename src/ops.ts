/**
 * Every tensor op as a free function, for a functional style:
 * `add(x, 1)` is `x.add(1)`. Plain numbers are accepted wherever a tensor is.
 * @module
 */

import { resolveBackend } from "./backends.ts";
import { type Axis, binary, type ReduceOptions, scalar, Tensor } from "./tensor.ts";
import type { DType } from "./dtype.ts";
import type { Prim } from "./primitives.ts";
import type { Shape } from "./shape.ts";

/** A binary op as a free function: tensors or numbers, broadcast together. */
export type BinaryFn = (a: Tensor | number, b: Tensor | number) => Tensor;

const binaryFn = (op: Prim, name: string = op, swap = false): BinaryFn => (a, b) => {
  if (swap) [a, b] = [b, a];
  if (a instanceof Tensor || b instanceof Tensor) return binary(op, a, b, name);
  using x = scalar(a, resolveBackend()); // both numbers: compute on the default backend
  return binary(op, x, b, name);
};

/** `a + b` with broadcasting. @example `add(x, 1)` */
export const add: BinaryFn = binaryFn("add");
/** `a - b` with broadcasting. @example `sub(x, y)` */
export const sub: BinaryFn = binaryFn("sub");
/** `a * b` with broadcasting. @example `mul(x, 2)` */
export const mul: BinaryFn = binaryFn("mul");
/** `a / b` with broadcasting. @example `div(x, y)` */
export const div: BinaryFn = binaryFn("div");
/** `a ** b` with broadcasting. @example `pow(x, 2)` */
export const pow: BinaryFn = binaryFn("pow");
/** Elementwise maximum with broadcasting; ties split the gradient. @example `maximum(x, 0)` */
export const maximum: BinaryFn = binaryFn("maximum");

/** `-x`. @example `neg(x)` */
export const neg = (x: Tensor): Tensor => x.neg();
/** `e ** x`. @example `exp(x)` */
export const exp = (x: Tensor): Tensor => x.exp();
/** Natural logarithm. @example `log(x)` */
export const log = (x: Tensor): Tensor => x.log();
/** Square root. @example `sqrt(x)` */
export const sqrt = (x: Tensor): Tensor => x.sqrt();
/** Hyperbolic tangent. @example `tanh(x)` */
export const tanh = (x: Tensor): Tensor => x.tanh();
/** Logistic sigmoid. @example `sigmoid(x)` */
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
/** `max(x, 0)`; gradient 0.5 at 0. @example `relu(x)` */
export const relu = (x: Tensor): Tensor => x.relu();
/** Absolute value. @example `abs(x)` */
export const abs = (x: Tensor): Tensor => x.abs();

/** Sum over axes. @example `sum(x, 1, { keepdims: true })` */
export const sum = (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.sum(axis, opts);
/** Maximum over axes. @example `max(x, -1)` */
export const max = (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.max(axis, opts);
/** Mean over axes. @example `mean(x)` */
export const mean = (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.mean(axis, opts);

/** Matrix product (2-D, batched, or with 1-D operands). @example `matmul(x, w)` */
export const matmul = (a: Tensor, b: Tensor): Tensor => a.matmul(b);
/** Same data, new shape. @example `reshape(x, [2, -1])` */
export const reshape = (x: Tensor, shape: Shape): Tensor => x.reshape(shape);
/** Permute axes. @example `transpose(x, [1, 0])` */
export const transpose = (x: Tensor, perm?: readonly number[]): Tensor => x.transpose(perm);
/** Broadcast to a shape. @example `broadcastTo(b, [4, 3])` */
export const broadcastTo = (x: Tensor, shape: Shape): Tensor => x.broadcastTo(shape);
/** Softmax along an axis. @example `softmax(logits)` */
export const softmax = (x: Tensor, axis = -1): Tensor => x.softmax(axis);
/** Log-softmax along an axis. @example `logSoftmax(logits)` */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => x.logSoftmax(axis);

/** Elementwise minimum with broadcasting; ties split the gradient. @example `minimum(x, 1)` */
export const minimum: BinaryFn = binaryFn("minimum");
/** Clamp to `[low, high]`. @example `clip(x, -1, 1)` */
export const clip = (x: Tensor, low: Tensor | number, high: Tensor | number): Tensor =>
  x.clip(low, high);
/** `x²`. @example `square(x)` */
export const square = (x: Tensor): Tensor => x.square();
/** `log(1 + e^x)`, stable. @example `softplus(x)` */
export const softplus = (x: Tensor): Tensor => x.softplus();
/** `max(x, slope·x)`. @example `leakyRelu(x, 0.1)` */
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => x.leakyRelu(slope);
/** GELU (tanh approximation). @example `gelu(x)` */
export const gelu = (x: Tensor): Tensor => x.gelu();
/** Minimum over axes. @example `min(x, 0)` */
export const min = (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.min(axis, opts);
/** Variance over axes. @example `variance(x, 1)` */
export const variance = (
  x: Tensor,
  axis?: Axis,
  opts?: ReduceOptions & { ddof?: number },
): Tensor => x.var(axis, opts);
/** Standard deviation over axes. @example `std(x)` */
export const std = (x: Tensor, axis?: Axis, opts?: ReduceOptions & { ddof?: number }): Tensor =>
  x.std(axis, opts);
/** Stable `log(sum(exp(x)))` over axes. @example `logsumexp(x, -1)` */
export const logsumexp = (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor =>
  x.logsumexp(axis, opts);
/** Remove size-1 axes. @example `squeeze(x)` */
export const squeeze = (x: Tensor, axis?: Axis): Tensor => x.squeeze(axis);
/** Insert a size-1 axis. @example `expandDims(x, 0)` */
export const expandDims = (x: Tensor, axis: number): Tensor => x.expandDims(axis);
/** Flatten a range of axes. @example `flatten(x, 1)` */
export const flatten = (x: Tensor, start = 0, end = -1): Tensor => x.flatten(start, end);
/** Sign: -1, 0 or 1. @example `sign(x)` */
export const sign = (x: Tensor): Tensor => x.sign();
/** Sine. @example `sin(x)` */
export const sin = (x: Tensor): Tensor => x.sin();
/** Cosine. @example `cos(x)` */
export const cos = (x: Tensor): Tensor => x.cos();
/** Floor. @example `floor(x)` */
export const floor = (x: Tensor): Tensor => x.floor();
/** Ceiling. @example `ceil(x)` */
export const ceil = (x: Tensor): Tensor => x.ceil();
/** Round half to even. @example `round(x)` */
export const round = (x: Tensor): Tensor => x.round();
/** `log(1 + x)`. @example `log1p(x)` */
export const log1p = (x: Tensor): Tensor => x.log1p();
/** `e^x - 1`. @example `expm1(x)` */
export const expm1 = (x: Tensor): Tensor => x.expm1();
/** Constant padding. @example `pad(x, [[1, 1], [0, 0]])` */
export const pad = (
  x: Tensor,
  widths: readonly (readonly [number, number])[] | readonly [number, number],
  value = 0,
): Tensor => x.pad(widths, value);
/** Split along an axis. @example `split(x, 2, 1)` */
export const split = (x: Tensor, sections: number | readonly number[], axis = 0): Tensor[] =>
  x.split(sections, axis);
/** Product over axes (`int8`/`bool` give `int32`). @example `prod(x, 1)` */
export const prod = (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.prod(axis, opts);
/** Cumulative sum along an axis. @example `cumsum(x, 0)` */
export const cumsum = (x: Tensor, axis = -1): Tensor => x.cumsum(axis);
/** Cumulative product along an axis. @example `cumprod(x, 0)` */
export const cumprod = (x: Tensor, axis = -1): Tensor => x.cumprod(axis);
/** Index of the maximum along an axis, as `int32`. @example `argmax(logits, -1)` */
export const argmax = (x: Tensor, axis = -1, opts?: ReduceOptions): Tensor => x.argmax(axis, opts);
/** Index of the minimum along an axis, as `int32`. @example `argmin(x, 0)` */
export const argmin = (x: Tensor, axis = -1, opts?: ReduceOptions): Tensor => x.argmin(axis, opts);
/** Conversion to another dtype. @example `astype(x, "int32")` */
export const astype = (x: Tensor, dtype: DType): Tensor => x.astype(dtype);
/** Entries at integer indices along an axis, like `numpy.take`. @example `take(table, ids, 0)` */
export const take = (
  x: Tensor,
  indices: Tensor | readonly number[] | Int32Array,
  axis?: number,
): Tensor => x.take(indices, axis);
/** Floor division with Python's sign rule. @example `floorDiv(x, 2)` */
export const floorDiv: BinaryFn = binaryFn("floordiv", "floorDiv");
/** Remainder with Python's sign rule. @example `mod(x, 3)` */
export const mod: BinaryFn = binaryFn("mod");
/** `a < b` as `bool`. @example `lt(x, 0)` */
export const lt: BinaryFn = binaryFn("lt");
/** `a <= b` as `bool`. @example `le(x, 0)` */
export const le: BinaryFn = binaryFn("le");
/** `a > b` as `bool`. @example `gt(x, 0)` */
export const gt: BinaryFn = binaryFn("lt", "gt", true);
/** `a >= b` as `bool`. @example `ge(x, 0)` */
export const ge: BinaryFn = binaryFn("le", "ge", true);
/** `a == b` as `bool`. @example `eq(x, y)` */
export const eq: BinaryFn = binaryFn("eq");
/** `a != b` as `bool` (NaN != NaN). @example `ne(x, y)` */
export const ne: BinaryFn = binaryFn("ne");
