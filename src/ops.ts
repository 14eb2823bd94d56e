/**
 * Every tensor op as a free function, for a functional style:
 * `add(x, 1)` is `x.add(1)`. Plain numbers, booleans, nested arrays of them
 * and typed arrays are accepted wherever a tensor is (`exp(2)`,
 * `sum([1, 2, 3])`, `matmul([[1, 2]], w)`): they become tensors, as
 * `tensor()` makes them, on the backend of the call's other tensor operand,
 * else on the default backend. In binary ops a plain number stays a weak
 * scalar that takes the other operand's dtype (`add(halfTensor, 1)` stays
 * float16). Anything else (a string, an object) is a `TypeError` naming the
 * op.
 * @module
 */

import { resolveBackend } from "./backends.ts";
import { tensor } from "./creation.ts";
import type { Axis, ReduceOptions } from "./ops/reduce.ts";
import { binary, scalar } from "./ops/_operands.ts";
import { Tensor } from "./tensor.ts";
import { composite, scoped } from "./core/scope.ts";
import { named } from "./core/errors.ts";
import type { DType } from "./dtype.ts";
import type { Prim } from "./primitives.ts";
import { quoteValue, type Shape } from "./shape.ts";

/** Nested arrays of numbers or booleans, as `tensor()` takes them. */
export type NestedValues = number | boolean | readonly NestedValues[];

/**
 * What a free function accepts where it takes a tensor: a `Tensor`, or
 * values `tensor()` would turn into one (a number, a boolean, nested arrays
 * of them, a typed array).
 */
export type TensorLike = Tensor | NestedValues | ArrayLike<number>;

/**
 * `x` as a tensor: a `Tensor` itself, values `tensor()` accepts converted on
 * `backend` (a temporary of the calling op's scope), or a `TypeError` naming
 * the op.
 */
function toTensor(op: string, x: unknown, like?: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const convertible = typeof x === "number" || typeof x === "boolean" || Array.isArray(x) ||
    (ArrayBuffer.isView(x) && !(x instanceof DataView));
  if (!convertible) {
    throw new TypeError(
      `${op}: expected a Tensor, a number or nested arrays of numbers, got ${quoteValue(x)}`,
    );
  }
  return tensor(x as number[], { backend: like?.backend });
}

/** The tensors among a result, which escape the conversion scope. */
const results = (r: Tensor | Tensor[]): Tensor[] => (Array.isArray(r) ? r : [r]);

/**
 * Runs `run` on `args` as tensors: the one place where a free function's
 * tensor arguments are converted (see `toTensor`), on the backend of the
 * first one that already is a tensor. Temporaries made from plain values are
 * released when the call returns; errors name `op`.
 */
function lifted<R extends Tensor | Tensor[]>(
  op: string,
  args: readonly unknown[],
  run: (tensors: Tensor[]) => R,
): R {
  if (args.every((a) => a instanceof Tensor)) return run(args as Tensor[]);
  return named(op, () =>
    scoped(() => {
      const like = args.find((a): a is Tensor => a instanceof Tensor);
      return run(args.map((a) => toTensor(op, a, like)));
    }, results));
}

/** The free-function form of a method whose first argument is the tensor. */
function unaryFn<A extends unknown[], R extends Tensor | Tensor[]>(
  op: string,
  method: (x: Tensor, ...rest: A) => R,
): (x: TensorLike, ...rest: A) => R {
  return (x, ...rest) => lifted(op, [x], ([t]) => method(t, ...rest));
}

/** A binary op as a free function: tensors, numbers or nested arrays, broadcast together. */
export type BinaryFn = (a: TensorLike, b: TensorLike) => Tensor;

/**
 * The free-function form of a binary op: plain numbers stay weak scalars,
 * other plain values become tensors on the other operand's backend, and two
 * numbers compute on the default backend.
 */
const binaryFn = (op: Prim, name: string = op, swap = false): BinaryFn => (a, b) => {
  if (swap) [a, b] = [b, a];
  if (
    (a instanceof Tensor || b instanceof Tensor) &&
    (a instanceof Tensor || typeof a === "number") && (b instanceof Tensor || typeof b === "number")
  ) {
    return binary(op, a, b, name);
  }
  return composite(name, () => {
    const like = a instanceof Tensor ? a : b instanceof Tensor ? b : undefined;
    const operand = (v: unknown) => (typeof v === "number" ? v : toTensor(name, v, like));
    const [x, y] = [operand(a), operand(b)];
    // Two numbers: compute on the default backend.
    const first = typeof x === "number" && typeof y === "number" ? scalar(x, resolveBackend()) : x;
    return binary(op, first, y, name);
  });
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
export const neg: (x: TensorLike) => Tensor = unaryFn(
  "neg",
  (x: Tensor): Tensor => x.neg(),
);
/** `e ** x`. @example `exp(x)` */
export const exp: (x: TensorLike) => Tensor = unaryFn(
  "exp",
  (x: Tensor): Tensor => x.exp(),
);
/** Natural logarithm. @example `log(x)` */
export const log: (x: TensorLike) => Tensor = unaryFn(
  "log",
  (x: Tensor): Tensor => x.log(),
);
/** Square root. @example `sqrt(x)` */
export const sqrt: (x: TensorLike) => Tensor = unaryFn(
  "sqrt",
  (x: Tensor): Tensor => x.sqrt(),
);
/** Hyperbolic tangent. @example `tanh(x)` */
export const tanh: (x: TensorLike) => Tensor = unaryFn(
  "tanh",
  (x: Tensor): Tensor => x.tanh(),
);
/** Logistic sigmoid. @example `sigmoid(x)` */
export const sigmoid: (x: TensorLike) => Tensor = unaryFn(
  "sigmoid",
  (x: Tensor): Tensor => x.sigmoid(),
);
/** `max(x, 0)`; gradient 0 at 0 (as JAX and PyTorch). @example `relu(x)` */
export const relu: (x: TensorLike) => Tensor = unaryFn(
  "relu",
  (x: Tensor): Tensor => x.relu(),
);
/** Absolute value. @example `abs(x)` */
export const abs: (x: TensorLike) => Tensor = unaryFn(
  "abs",
  (x: Tensor): Tensor => x.abs(),
);

/** Sum over axes. @example `sum(x, 1, { keepdims: true })` */
export const sum: (x: TensorLike, axis?: Axis, opts?: ReduceOptions) => Tensor = unaryFn(
  "sum",
  (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.sum(axis, opts),
);
/** Maximum over axes. @example `max(x, -1)` */
export const max: (x: TensorLike, axis?: Axis, opts?: ReduceOptions) => Tensor = unaryFn(
  "max",
  (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.max(axis, opts),
);
/** Mean over axes. @example `mean(x)` */
export const mean: (x: TensorLike, axis?: Axis, opts?: ReduceOptions) => Tensor = unaryFn(
  "mean",
  (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.mean(axis, opts),
);

/** Matrix product (2-D, batched, or with 1-D operands). @example `matmul(x, w)` */
export const matmul = (a: TensorLike, b: TensorLike): Tensor =>
  lifted("matmul", [a, b], ([x, y]) => x.matmul(y));
/** Same data, new shape. @example `reshape(x, [2, -1])` */
export const reshape: (x: TensorLike, shape: Shape) => Tensor = unaryFn(
  "reshape",
  (x: Tensor, shape: Shape): Tensor => x.reshape(shape),
);
/** Permute axes. @example `transpose(x, [1, 0])` */
export const transpose: (x: TensorLike, perm?: readonly number[]) => Tensor = unaryFn(
  "transpose",
  (x: Tensor, perm?: readonly number[]): Tensor => x.transpose(perm),
);
/** Broadcast to a shape. @example `broadcastTo(b, [4, 3])` */
export const broadcastTo: (x: TensorLike, shape: Shape) => Tensor = unaryFn(
  "broadcastTo",
  (x: Tensor, shape: Shape): Tensor => x.broadcastTo(shape),
);
/** Softmax along an axis. @example `softmax(logits)` */
export const softmax: (x: TensorLike, axis?: number) => Tensor = unaryFn(
  "softmax",
  (x: Tensor, axis = -1): Tensor => x.softmax(axis),
);
/** Log-softmax along an axis. @example `logSoftmax(logits)` */
export const logSoftmax: (x: TensorLike, axis?: number) => Tensor = unaryFn(
  "logSoftmax",
  (x: Tensor, axis = -1): Tensor => x.logSoftmax(axis),
);

/** Elementwise minimum with broadcasting; ties split the gradient. @example `minimum(x, 1)` */
export const minimum: BinaryFn = binaryFn("minimum");
/** Clamp to `[low, high]`. @example `clip(x, -1, 1)` */
export const clip: (x: TensorLike, low: Tensor | number, high: Tensor | number) => Tensor = unaryFn(
  "clip",
  (x: Tensor, low: Tensor | number, high: Tensor | number): Tensor => x.clip(low, high),
);
/** `x²`. @example `square(x)` */
export const square: (x: TensorLike) => Tensor = unaryFn(
  "square",
  (x: Tensor): Tensor => x.square(),
);
/** `log(1 + e^x)`, stable. @example `softplus(x)` */
export const softplus: (x: TensorLike) => Tensor = unaryFn(
  "softplus",
  (x: Tensor): Tensor => x.softplus(),
);
/** `max(x, slope·x)`. @example `leakyRelu(x, 0.1)` */
export const leakyRelu: (x: TensorLike, slope?: number) => Tensor = unaryFn(
  "leakyRelu",
  (x: Tensor, slope = 0.01): Tensor => x.leakyRelu(slope),
);
/** GELU (tanh approximation). @example `gelu(x)` */
export const gelu: (x: TensorLike) => Tensor = unaryFn(
  "gelu",
  (x: Tensor): Tensor => x.gelu(),
);
/** Minimum over axes. @example `min(x, 0)` */
export const min: (x: TensorLike, axis?: Axis, opts?: ReduceOptions) => Tensor = unaryFn(
  "min",
  (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.min(axis, opts),
);
/** Variance over axes. @example `variance(x, 1)` */
export const variance: (
  x: TensorLike,
  axis?: Axis,
  opts?: ReduceOptions & { ddof?: number },
) => Tensor = unaryFn(
  "variance",
  (x: Tensor, axis?: Axis, opts?: ReduceOptions & { ddof?: number }): Tensor => x.var(axis, opts),
);
/** Standard deviation over axes. @example `std(x)` */
export const std: (x: TensorLike, axis?: Axis, opts?: ReduceOptions & { ddof?: number }) => Tensor =
  unaryFn(
    "std",
    (x: Tensor, axis?: Axis, opts?: ReduceOptions & { ddof?: number }): Tensor => x.std(axis, opts),
  );
/** Stable `log(sum(exp(x)))` over axes. @example `logsumexp(x, -1)` */
export const logsumexp: (x: TensorLike, axis?: Axis, opts?: ReduceOptions) => Tensor = unaryFn(
  "logsumexp",
  (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.logsumexp(axis, opts),
);
/** Remove size-1 axes. @example `squeeze(x)` */
export const squeeze: (x: TensorLike, axis?: Axis) => Tensor = unaryFn(
  "squeeze",
  (x: Tensor, axis?: Axis): Tensor => x.squeeze(axis),
);
/** Insert a size-1 axis. @example `expandDims(x, 0)` */
export const expandDims: (x: TensorLike, axis: number) => Tensor = unaryFn(
  "expandDims",
  (x: Tensor, axis: number): Tensor => x.expandDims(axis),
);
/** Flatten a range of axes. @example `flatten(x, 1)` */
export const flatten: (x: TensorLike, start?: number, end?: number) => Tensor = unaryFn(
  "flatten",
  (x: Tensor, start = 0, end = -1): Tensor => x.flatten(start, end),
);
/** Sign: -1, 0 or 1. @example `sign(x)` */
export const sign: (x: TensorLike) => Tensor = unaryFn(
  "sign",
  (x: Tensor): Tensor => x.sign(),
);
/** Sine. @example `sin(x)` */
export const sin: (x: TensorLike) => Tensor = unaryFn(
  "sin",
  (x: Tensor): Tensor => x.sin(),
);
/** Cosine. @example `cos(x)` */
export const cos: (x: TensorLike) => Tensor = unaryFn(
  "cos",
  (x: Tensor): Tensor => x.cos(),
);
/** Floor. @example `floor(x)` */
export const floor: (x: TensorLike) => Tensor = unaryFn(
  "floor",
  (x: Tensor): Tensor => x.floor(),
);
/** Ceiling. @example `ceil(x)` */
export const ceil: (x: TensorLike) => Tensor = unaryFn(
  "ceil",
  (x: Tensor): Tensor => x.ceil(),
);
/** Round half to even. @example `round(x)` */
export const round: (x: TensorLike) => Tensor = unaryFn(
  "round",
  (x: Tensor): Tensor => x.round(),
);
/** `log(1 + x)`. @example `log1p(x)` */
export const log1p: (x: TensorLike) => Tensor = unaryFn(
  "log1p",
  (x: Tensor): Tensor => x.log1p(),
);
/** `e^x - 1`. @example `expm1(x)` */
export const expm1: (x: TensorLike) => Tensor = unaryFn(
  "expm1",
  (x: Tensor): Tensor => x.expm1(),
);
/** Constant padding. @example `pad(x, [[1, 1], [0, 0]])` */
export const pad: (
  x: TensorLike,
  widths: readonly (readonly [number, number])[] | readonly [number, number],
  value?: number,
) => Tensor = unaryFn(
  "pad",
  (
    x: Tensor,
    widths: readonly (readonly [number, number])[] | readonly [number, number],
    value = 0,
  ): Tensor => x.pad(widths, value),
);
/** Split along an axis. @example `split(x, 2, 1)` */
export const split: (
  x: TensorLike,
  sections: number | readonly number[],
  axis?: number,
) => Tensor[] = unaryFn(
  "split",
  (x: Tensor, sections: number | readonly number[], axis = 0): Tensor[] => x.split(sections, axis),
);
/** Product over axes (`int8`/`bool` give `int32`). @example `prod(x, 1)` */
export const prod: (x: TensorLike, axis?: Axis, opts?: ReduceOptions) => Tensor = unaryFn(
  "prod",
  (x: Tensor, axis?: Axis, opts?: ReduceOptions): Tensor => x.prod(axis, opts),
);
/** Cumulative sum along an axis. @example `cumsum(x, 0)` */
export const cumsum: (x: TensorLike, axis?: number) => Tensor = unaryFn(
  "cumsum",
  (x: Tensor, axis = -1): Tensor => x.cumsum(axis),
);
/** Cumulative product along an axis. @example `cumprod(x, 0)` */
export const cumprod: (x: TensorLike, axis?: number) => Tensor = unaryFn(
  "cumprod",
  (x: Tensor, axis = -1): Tensor => x.cumprod(axis),
);
/** Index of the maximum along an axis, as `int32`. @example `argmax(logits, -1)` */
export const argmax: (x: TensorLike, axis?: number, opts?: ReduceOptions) => Tensor = unaryFn(
  "argmax",
  (x: Tensor, axis = -1, opts?: ReduceOptions): Tensor => x.argmax(axis, opts),
);
/** Index of the minimum along an axis, as `int32`. @example `argmin(x, 0)` */
export const argmin: (x: TensorLike, axis?: number, opts?: ReduceOptions) => Tensor = unaryFn(
  "argmin",
  (x: Tensor, axis = -1, opts?: ReduceOptions): Tensor => x.argmin(axis, opts),
);
/** Conversion to another dtype. @example `astype(x, "int32")` */
export const astype: (x: TensorLike, dtype: DType) => Tensor = unaryFn(
  "astype",
  (x: Tensor, dtype: DType): Tensor => x.astype(dtype),
);
/** Entries at integer indices along an axis, like `numpy.take`. @example `take(table, ids, 0)` */
export const take: (
  x: TensorLike,
  indices: Tensor | readonly number[] | Int32Array,
  axis?: number,
) => Tensor = unaryFn(
  "take",
  (x: Tensor, indices: Tensor | readonly number[] | Int32Array, axis?: number): Tensor =>
    x.take(indices, axis),
);
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
