/**
 * The `Tensor` class: an immutable, typed, shaped handle on a backend buffer,
 * with every op as a method. Ops either apply one primitive (`apply`) or are
 * compositions of other ops; nothing else touches a backend.
 * @module
 */

import type { Backend, Storage, View } from "./backend.ts";
import { isContiguous } from "./backend.ts";
import {
  accumulationDType,
  checkDType,
  computesInFloat,
  convertNumber,
  type DType,
  holds,
  type HostArray,
  hostArrayClass,
  isFloat,
  isIdentityOnIntegers,
  promoteTypes,
  refusesBool,
  valueRange,
  weakDType,
} from "./dtype.ts";
import type { Prim } from "./primitives.ts";
import {
  broadcastShapes,
  checkShape,
  normalizeAxes,
  quoteValue,
  type Shape,
  shapeString,
  sizeOf,
} from "./shape.ts";
import { reportNonFinite } from "./core/debug_nans.ts";
import { describe, named, withOpName } from "./core/errors.ts";
import {
  abstractStorages,
  apply,
  hostTensor,
  leakedTracer,
  refuseRead,
} from "./core/interpreter.ts";
import { composite, scoped, type ScopeKind, trackInScope } from "./core/scope.ts";

/** One axis or several; `undefined` means all axes. */
export type Axis = number | readonly number[];

/** Options of the reductions `sum`, `max` and `mean`. */
export interface ReduceOptions {
  /** Keep reduced axes as size-1 axes (default `false`). */
  keepdims?: boolean;
}

/**
 * One entry of a `get` index, as in NumPy's basic indexing: an integer picks
 * one position and drops the axis; `[start, stop, step]` (each optional,
 * `null` for the default, negatives count from the end, `step` ≥ 1) keeps a
 * range; `null` inserts a new axis of size 1; `"..."` stands for every axis
 * not otherwise indexed.
 */
export type Index = number | readonly (number | null | undefined)[] | null | "...";

/** Nested arrays of numbers, as returned by `Tensor.array()`. */
export type NestedArray = number | NestedArray[];

let nextId = 0;
let liveTensors = 0;

/** @internal Number of tensors created and not yet disposed. */
export function liveTensorCount(): number {
  return liveTensors;
}

// ---- the class -------------------------------------------------------------

/**
 * An n-dimensional array on a backend (WebGPU or CPU). Tensors are immutable:
 * every op returns a new tensor. Data is read back asynchronously with
 * `await t.data()`, `await t.array()` or `await t.item()`.
 *
 * @example
 * ```ts
 * import { tensor } from "littlegrad";
 * const x = tensor([[1, 2], [3, 4]]);
 * const y = x.mul(2).add(1).sum(1);
 * console.log(await y.array()); // [7, 15]
 * ```
 */
export class Tensor {
  /** Unique id, used to name the tensor in traces (`%id`). */
  readonly id: number;
  /** Size of each axis. */
  readonly shape: Shape;
  /** Element type (see `DType`). */
  readonly dtype: DType;
  #view: View | null;
  #released: ScopeKind | "dispose" | null = null;

  /**
   * Wraps a backend view. Users create tensors with `tensor`, `zeros`, ...
   * @internal
   */
  constructor(view: View) {
    this.id = nextId++;
    this.shape = Object.freeze([...view.shape]);
    this.dtype = view.storage.dtype;
    this.#view = view;
    view.storage.refs++;
    liveTensors++;
    trackInScope(this);
    dropped.register(this, view.storage, this);
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of axes. */
  get ndim(): number {
    return this.shape.length;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.#view === null;
  }

  /** The backend holding the data: `"webgpu"` or `"cpu"`. */
  get backend(): "webgpu" | "cpu" {
    return this.view("backend").storage.backend.name;
  }

  /** @internal The strided view; throws a clear error after `dispose()`. */
  view(op: string): View {
    if (!this.#view) {
      const what = `${op}: tensor %${this.id} (shape ${shapeString(this.shape)})`;
      throw new ReferenceError(
        this.#released === "trace"
          ? `${what} is a traced value from makeTrace or jit (it has a shape and dtype but no ` +
            "data) that was used after its trace ended; use it only inside the traced function"
          : this.#released === "transform"
          ? `${what} was created inside grad, valueAndGrad or vjp and released when it returned ` +
            "(a leaked tracer): return it from the function, or as aux with hasAux, to keep it"
          : this.#released === "tidy"
          ? `${what} was created inside tidy() and released when it returned: return it to keep it`
          : `${what} was used after dispose()`,
      );
    }
    return this.#view;
  }

  /**
   * Releases the tensor's memory. Idempotent. Using the tensor afterwards
   * throws a `ReferenceError`.
   *
   * @example
   * ```ts
   * import { ones } from "littlegrad";
   * const x = ones([1024]);
   * x.dispose();
   * ```
   */
  dispose(): void {
    this.release("dispose");
  }

  /** @internal Disposes the tensor, remembering who did (for error messages). */
  release(by: ScopeKind | "dispose"): void {
    const view = this.#view;
    if (!view) return;
    this.#view = null;
    this.#released = by;
    liveTensors--;
    dropped.unregister(this);
    releaseStorage(view.storage);
  }

  /** Lets `using x = ...` dispose the tensor at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Reads the values back as a flat row-major typed array of the tensor's
   * dtype: `Float32Array`, `Float16Array`, `Int32Array`, `Int8Array`, or a
   * `Uint8Array` of 0/1 for `bool`. Waits for all queued GPU work this
   * tensor depends on.
   *
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * console.log(await tensor([1, 2]).data()); // Float32Array [1, 2]
   * console.log(await tensor([1, 2], { dtype: "int32" }).data()); // Int32Array [1, 2]
   * ```
   */
  data(): Promise<HostArray> {
    if (this.#view && abstractStorages.has(this.#view.storage)) {
      const err = leakedTracer("data", this);
      refuseRead(err); // a trace being made fails with this error
      const refused = Promise.reject(err);
      refused.catch(() => {}); // not awaited in a traced function: makeTrace reports it
      return refused;
    }
    return this.#read();
  }

  async #read(): Promise<HostArray> {
    try {
      const view = this.view("data");
      const backend = view.storage.backend;
      backend.assertUsable(view.storage);
      let result: Promise<HostArray>;
      if (isContiguous(view) && view.offset === 0 && view.storage.size === this.size) {
        result = backend.read(view.storage);
      } else {
        // A view (broadcast, strided) is first copied to contiguous memory.
        const copy = named(
          `copy of the view ${shapeString(this.shape)}`,
          () => backend.map("copy", [view], this.shape, this.dtype),
        );
        result = backend.read(copy).finally(() => backend.free(copy));
      }
      const [values] = await Promise.all([result, reportNonFinite(backend)]);
      return values;
    } catch (err) {
      throw withOpName("data", err);
    }
  }

  /**
   * Reads the values back as nested arrays (a number for a scalar; `bool`
   * values read as 1 and 0).
   *
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * console.log(await tensor([[1, 2], [3, 4]]).array()); // [[1, 2], [3, 4]]
   * ```
   */
  async array(): Promise<NestedArray> {
    const flat = await this.data();
    const build = (axis: number, offset: number): NestedArray => {
      if (axis === this.ndim) return flat[offset];
      const stride = sizeOf(this.shape.slice(axis + 1));
      return Array.from(
        { length: this.shape[axis] },
        (_, i) => build(axis + 1, offset + i * stride),
      );
    };
    return build(0, 0);
  }

  /**
   * Reads a one-element tensor back as a number.
   *
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * console.log(await tensor([1, 2, 3]).sum().item()); // 6
   * ```
   */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new TypeError(
        `item: tensor has shape ${
          shapeString(this.shape)
        } (${this.size} elements); item() needs exactly 1`,
      );
    }
    return (await this.data())[0];
  }

  /**
   * Reads the tensor back and formats it like NumPy, with its shape and
   * dtype; the middle of large tensors is elided with `...`.
   *
   * @param opts `threshold`: element count above which to elide (default
   *   1000); `edgeItems`: items kept at each end of an elided axis (default
   *   3); `precision`: digits after the point (default 4).
   * @returns The text.
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * console.log(await tensor([[1, 2.5], [-3, 4]]).format());
   * // tensor([[ 1.0000,  2.5000],
   * //         [-3.0000,  4.0000]], shape=[2,2], dtype=float32)
   * console.log(await tensor([1, 0]).gt(0).format());
   * // tensor([ true, false], shape=[2], dtype=bool)
   * ```
   */
  async format(
    opts: { threshold?: number; edgeItems?: number; precision?: number } = {},
  ): Promise<string> {
    const { threshold = 1000, edgeItems = 3, precision = 4 } = opts;
    const data = await this.data();
    const elide = this.size > threshold;
    // Which indices of each axis are shown (null marks the "..." gap).
    const shown = this.shape.map((d) =>
      elide && d > 2 * edgeItems
        ? [
          ...Array(edgeItems).keys(),
          null,
          ...Array.from({ length: edgeItems }, (_, i) => d - edgeItems + i),
        ]
        : [...Array(d).keys()]
    );
    const strides = this.shape.map((_, i) => sizeOf(this.shape.slice(i + 1)));
    const visible: number[] = [];
    const collect = (axis: number, offset: number) => {
      if (axis === this.ndim) return void visible.push(data[offset]);
      for (const i of shown[axis]) if (i !== null) collect(axis + 1, offset + i * strides[axis]);
    };
    collect(0, 0);
    const finite = visible.filter(Number.isFinite).map(Math.abs);
    const big = finite.length > 0 && Math.max(...finite) >= 1e6;
    const tiny = finite.some((v) => v > 0 && v < 10 ** -precision);
    const text = (v: number) =>
      this.dtype === "bool"
        ? (v ? "true" : "false")
        : !isFloat(this.dtype)
        ? String(v)
        : Number.isNaN(v)
        ? "nan"
        : !Number.isFinite(v)
        ? (v > 0 ? "inf" : "-inf")
        : big || tiny
        ? v.toExponential(precision)
        : v.toFixed(precision);
    const width = Math.max(1, ...visible.map((v) => text(v).length));
    const pad = (s: string) => s.padStart(width);
    const render = (axis: number, offset: number, indent: string): string => {
      if (axis === this.ndim) return pad(text(data[offset]));
      const parts = shown[axis].map((i) =>
        i === null ? "..." : render(axis + 1, offset + i * strides[axis], indent + " ")
      );
      const sep = axis === this.ndim - 1
        ? ", "
        : ",\n" + "\n".repeat(this.ndim - axis - 2) + indent + " ";
      return `[${parts.join(sep)}]`;
    };
    const body = render(0, 0, " ".repeat("tensor(".length));
    return `tensor(${body}, shape=${shapeString(this.shape)}, dtype=${this.dtype})`;
  }

  /** Describes the tensor without reading the GPU: `Tensor(float32[2,3], webgpu)`. */
  toString(): string {
    const where = !this.#view
      ? "disposed"
      : abstractStorages.has(this.#view.storage)
      ? "traced"
      : this.#view.storage.backend.name;
    return `Tensor(${this.dtype}${shapeString(this.shape)}, ${where})`;
  }

  /** Used by `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  // ---- elementwise ----------------------------------------------------------

  /** Elementwise `this + other`, with NumPy broadcasting. @example `x.add(1)` */
  add(other: Tensor | number): Tensor {
    return binary("add", this, other);
  }
  /** Elementwise `this - other`, with broadcasting. @example `x.sub(y)` */
  sub(other: Tensor | number): Tensor {
    return binary("sub", this, other);
  }
  /** Elementwise `this * other`, with broadcasting. @example `x.mul(0.5)` */
  mul(other: Tensor | number): Tensor {
    return binary("mul", this, other);
  }
  /**
   * Elementwise true division `this / other` (IEEE: `1/0 = inf`), with
   * broadcasting; integer and boolean operands give `float32`, as in JAX.
   * @example `x.div(y)`
   */
  div(other: Tensor | number): Tensor {
    return binary("div", this, other);
  }
  /**
   * Elementwise `this ** other`, with broadcasting. A negative base gives a
   * real result only for integral exponents (`(-2)**3 = -8`), else NaN.
   * Computed in floating point: integer operands give `float32`.
   * @example `x.pow(2)`
   */
  pow(other: Tensor | number): Tensor {
    return binary("pow", this, other);
  }
  /**
   * Elementwise maximum, with broadcasting. Where the inputs tie, the
   * gradient is split evenly between them (1/2 each, what central
   * differences see), as JAX's `lax.max` and PyTorch's `torch.maximum` do.
   * @example `x.maximum(y)`
   */
  maximum(other: Tensor | number): Tensor {
    return binary("maximum", this, other);
  }
  /**
   * Elementwise `this < other`, a `bool` tensor (no gradient), comparing in
   * the promoted dtype. Likewise `le`, `gt`, `ge`, `eq`, `ne`.
   * @example `x.lt(0)`
   */
  lt(other: Tensor | number): Tensor {
    return binary("lt", this, other);
  }
  /** Elementwise `this <= other`, as `bool`. @example `x.le(y)` */
  le(other: Tensor | number): Tensor {
    return binary("le", this, other);
  }
  /** Elementwise `this > other`, as `bool`. @example `x.gt(0)` */
  gt(other: Tensor | number): Tensor {
    return binary("lt", other, this, "gt");
  }
  /** Elementwise `this >= other`, as `bool`. @example `x.ge(y)` */
  ge(other: Tensor | number): Tensor {
    return binary("le", other, this, "ge");
  }
  /** Elementwise `this == other`, as `bool`. @example `x.eq(y)` */
  eq(other: Tensor | number): Tensor {
    return binary("eq", this, other);
  }
  /** Elementwise `this != other`, as `bool` (NaN != NaN). @example `x.ne(y)` */
  ne(other: Tensor | number): Tensor {
    return binary("ne", this, other);
  }
  /** Elementwise `-this` (integers wrap: `-(-2³¹) = -2³¹`; not for `bool`). @example `x.neg()` */
  neg(): Tensor {
    return unary("neg", this);
  }
  /**
   * Elementwise `e ** this`. Like every transcendental op (`log sqrt tanh
   * sigmoid sin cos log1p expm1`), it computes integer and boolean inputs
   * in `float32`.
   * @example `x.exp()`
   */
  exp(): Tensor {
    return unary("exp", this);
  }
  /** Elementwise natural logarithm (`log(0) = -inf`). @example `x.log()` */
  log(): Tensor {
    return unary("log", this);
  }
  /** Elementwise square root. @example `x.sqrt()` */
  sqrt(): Tensor {
    return unary("sqrt", this);
  }
  /** Elementwise hyperbolic tangent (stable for large inputs). @example `x.tanh()` */
  tanh(): Tensor {
    return unary("tanh", this);
  }
  /** Elementwise logistic `1 / (1 + e^-x)` (stable for large inputs). @example `x.sigmoid()` */
  sigmoid(): Tensor {
    return unary("sigmoid", this);
  }
  /** Elementwise absolute value; its gradient at 0 is 0. @example `x.abs()` */
  abs(): Tensor {
    return unary("abs", this);
  }
  /** Elementwise sign: -1, 0 or 1 (gradient 0). @example `x.sign()` */
  sign(): Tensor {
    return unary("sign", this);
  }
  /** Elementwise sine. @example `x.sin()` */
  sin(): Tensor {
    return unary("sin", this);
  }
  /** Elementwise cosine. @example `x.cos()` */
  cos(): Tensor {
    return unary("cos", this);
  }
  /** Elementwise floor (gradient 0; integers pass unchanged). @example `x.floor()` */
  floor(): Tensor {
    return unary("floor", this);
  }
  /** Elementwise ceiling (gradient 0). @example `x.ceil()` */
  ceil(): Tensor {
    return unary("ceil", this);
  }
  /** Rounds to the nearest integer, ties to even like NumPy (gradient 0). @example `x.round()` */
  round(): Tensor {
    return unary("round", this);
  }
  /** Elementwise `log(1 + x)`, accurate for small `x`. @example `x.log1p()` */
  log1p(): Tensor {
    return unary("log1p", this);
  }
  /** Elementwise `e^x - 1`, accurate for small `x`. @example `x.expm1()` */
  expm1(): Tensor {
    return unary("expm1", this);
  }
  /**
   * Elementwise `max(this, 0)` (NaN stays NaN). Its gradient at exactly 0
   * is 0, as in JAX (`jax.nn.relu`), PyTorch and TensorFlow: the kink takes
   * the left derivative. (It is `where(x <= 0, 0, x)`, not `maximum(x, 0)`,
   * whose tie rule would give 1/2; `checkGrads` skips such kinks.)
   * @example `x.relu()`
   */
  relu(): Tensor {
    return composite("relu", () => where(this.le(0), 0, this));
  }
  /**
   * Elementwise minimum, with broadcasting; ties split the gradient evenly
   * (as JAX's `lax.min` and PyTorch's `torch.minimum`).
   * @example `x.minimum(1)`
   */
  minimum(other: Tensor | number): Tensor {
    return binary("minimum", this, other);
  }
  /**
   * Clamps every element to `[low, high]` (`maximum` then `minimum`). At a
   * bound exactly, the gradient is 1/2 (the tie rule of `maximum` and
   * `minimum`), as `jnp.clip`, which is built the same way; PyTorch's
   * `clamp` gives 1 there and `lax.clamp` 0. Inside the bounds it is 1,
   * outside 0.
   * @example `x.clip(-1, 1)`
   */
  clip(low: Tensor | number, high: Tensor | number): Tensor {
    const shapeOf = (x: Tensor | number) => (x instanceof Tensor ? x.shape : []);
    broadcastShapes("clip", broadcastShapes("clip", this.shape, shapeOf(low)), shapeOf(high));
    return composite(
      "clip",
      () => binary("minimum", binary("maximum", this, low, "clip"), high, "clip"),
    );
  }
  /** Elementwise `this²`. @example `x.square()` */
  square(): Tensor {
    return named("square", () => this.mul(this));
  }
  /** Elementwise `1 / this`. @example `x.reciprocal()` */
  reciprocal(): Tensor {
    return binary("div", 1, this, "reciprocal");
  }
  /**
   * Elementwise `log(1 + e^x)`, computed as `max(x, 0) + log1p(e^-|x|)`:
   * large inputs neither overflow nor lose the linear tail, and very
   * negative ones keep their tail `e^x` (which `log(1 + e^x)` would round
   * to 0 in float32 below about -17). Its gradient is `sigmoid(x)`,
   * including `1/2` at 0 (the tie of `maximum` splits evenly there).
   * @example `x.softplus()`
   */
  softplus(): Tensor {
    return composite("softplus", () => this.maximum(0).add(this.abs().neg().exp().log1p()));
  }
  /**
   * Elementwise `x` for `x ≥ 0` and `slope·x` below (`maximum(x, slope·x)`,
   * for `0 ≤ slope < 1`). At exactly 0 its gradient is `(1 + slope) / 2`,
   * the tie rule of `maximum` (the mean of the two sides); JAX's
   * `jax.nn.leaky_relu` gives 1 there and PyTorch's `leaky_relu` gives
   * `slope` (so `leakyRelu(x, 0)` differs from `relu` at 0 only in that).
   * @example `x.leakyRelu(0.01)`
   */
  leakyRelu(slope = 0.01): Tensor {
    if (!(slope >= 0 && slope < 1)) {
      throw new RangeError(`leakyRelu: slope must be in [0, 1), got ${slope}`);
    }
    return composite("leakyRelu", () => this.maximum(this.mul(slope)));
  }
  /**
   * GELU with the tanh approximation (JAX's default):
   * `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
   * @example `x.gelu()`
   */
  gelu(): Tensor {
    return composite("gelu", () => {
      const inner = this.add(this.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
      return this.mul(inner.tanh().add(1)).mul(0.5);
    });
  }

  // ---- reductions -----------------------------------------------------------

  /**
   * Sum over `axis` (all axes when omitted).
   * @example `x.sum()`, `x.sum(1, { keepdims: true })`, `x.sum([0, 2])`
   */
  sum(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return reduce("sum", this, axis, opts);
  }
  /**
   * Product over `axis` (all axes when omitted); `int8` and `bool` give
   * `int32`, as in JAX. Its gradient is the product of the other elements,
   * exact with zeros (no division by zero).
   * @example `tensor([[1, 2], [3, 4]]).prod(1)` is `[2, 12]`
   */
  prod(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return reduce("prod", this, axis, opts);
  }
  /**
   * Maximum over `axis` (all axes when omitted). Ties share the gradient
   * evenly (as `jnp.max` and PyTorch's `amax`; `torch.max(dim)` gives it all
   * to one index).
   * @example `x.max(-1)`
   */
  max(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return reduce("max", this, axis, opts);
  }
  /**
   * Mean over `axis` (all axes when omitted); integers give `float32`, and
   * `float16` is averaged in float32 and rounded once at the end (as JAX
   * does), so neither the sum nor the count overflows float16.
   * @example `x.mean(0)`
   */
  mean(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    const axes = normalizeAxes("mean", axis, this.ndim);
    const count = sizeOf(axes.map((a) => this.shape[a]));
    return composite("mean", () => inFloat32(toFloat(this), (x) => x.sum(axes, opts).div(count)));
  }
  /**
   * Minimum over `axis` (all axes when omitted). Ties share the gradient evenly.
   * @example `x.min(0)`
   */
  min(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return reduce("min", this, axis, opts);
  }
  /**
   * Variance over `axis` (all axes when omitted): `mean((x - mean(x))²)`, or
   * divided by `n - ddof` with `ddof`.
   * @example `x.var(1)`, `x.var(undefined, { ddof: 1 })`
   */
  var(axis?: Axis, opts: ReduceOptions & { ddof?: number } = {}): Tensor {
    const axes = normalizeAxes("var", axis, this.ndim);
    const n = sizeOf(axes.map((a) => this.shape[a]));
    const ddof = opts.ddof ?? 0;
    return composite("var", () =>
      inFloat32(toFloat(this), (x) => {
        const centered = x.sub(x.mean(axes, { keepdims: true }));
        return centered.square().sum(axes, { keepdims: opts.keepdims }).div(n - ddof);
      }));
  }
  /** Standard deviation: `sqrt(var)`. @example `x.std(0, { ddof: 1 })` */
  std(axis?: Axis, opts: ReduceOptions & { ddof?: number } = {}): Tensor {
    return composite("std", () => this.var(axis, opts).sqrt());
  }
  /**
   * Index of the maximum along `axis` (the first one on ties), as `int32`;
   * no gradient. A NaN counts as the maximum, as in NumPy.
   * @example `logits.argmax(-1)`
   */
  argmax(axis = -1, opts: ReduceOptions = {}): Tensor {
    return argExtreme("argmax", this, axis, opts);
  }
  /** Index of the minimum along `axis` (the first one on ties). @example `x.argmin(0)` */
  argmin(axis = -1, opts: ReduceOptions = {}): Tensor {
    return argExtreme("argmin", this, axis, opts);
  }
  /**
   * Cumulative sum along `axis`, as a log-step scan: ⌈log₂ d⌉ rounds of
   * "add the values shifted by 1, 2, 4, ..." (shifts are a slice and a pad,
   * so the gradient needs no rule of its own). Exact for integers; `int8` and
   * `bool` give `int32` like `sum`.
   * @example `tensor([1, 2, 3]).cumsum()` is `[1, 3, 6]`
   */
  cumsum(axis = -1): Tensor {
    const [a] = normalizeAxes("cumsum", axis, this.ndim);
    return composite("cumsum", () => scan(widenInt(this), a, "add"));
  }
  /**
   * Cumulative product along `axis`, the same log-step scan as `cumsum`
   * with products (no division, so zeros are exact, and every derivative
   * order is right). `int8` and `bool` give `int32`.
   * @example `tensor([1, 2, 3, 4]).cumprod()` is `[1, 2, 6, 24]`
   */
  cumprod(axis = -1): Tensor {
    const [a] = normalizeAxes("cumprod", axis, this.ndim);
    return composite("cumprod", () => scan(widenInt(this), a, "mul"));
  }
  /**
   * Floor division with Python's rule (rounds toward -inf), with
   * broadcasting and promotion; gradient 0. Integer division by zero gives
   * 0 (as NumPy, without its warning), on both backends; float division by
   * zero gives ±inf or NaN.
   * @example `tensor([7, -7]).floorDiv(2)` is `[3, -4]`
   */
  floorDiv(other: Tensor | number): Tensor {
    return binary("floordiv", this, other);
  }
  /**
   * Remainder with Python's sign rule (the sign of the divisor):
   * `a - b·floorDiv(a, b)`. Integer `mod(a, 0)` gives 0; float gives NaN.
   * @example `tensor([7, -7]).mod(3)` is `[1, 2]`
   */
  mod(other: Tensor | number): Tensor {
    return binary("mod", this, other);
  }
  /** Elementwise logical and (non-zero is true), as `bool`. @example `a.logicalAnd(b)` */
  logicalAnd(other: Tensor | number): Tensor {
    return composite(
      "logicalAnd",
      () => binary("mul", truth("logicalAnd", this), truth("logicalAnd", other, this)),
    );
  }
  /** Elementwise logical or (non-zero is true), as `bool`. @example `a.logicalOr(b)` */
  logicalOr(other: Tensor | number): Tensor {
    return composite(
      "logicalOr",
      () => binary("maximum", truth("logicalOr", this), truth("logicalOr", other, this)),
    );
  }
  /** Elementwise logical not (true where zero), as `bool`. @example `mask.logicalNot()` */
  logicalNot(): Tensor {
    return named("logicalNot", () => this.eq(0));
  }
  /** Elementwise logical exclusive or (non-zero is true), as `bool`. @example `a.logicalXor(b)` */
  logicalXor(other: Tensor | number): Tensor {
    return composite(
      "logicalXor",
      () => binary("ne", truth("logicalXor", this), truth("logicalXor", other, this)),
    );
  }
  /** Elementwise test for NaN, as `bool` (false for integers). @example `x.isnan()` */
  isnan(): Tensor {
    return named("isnan", () => this.ne(this)); // for integers x != x is all false, in one kernel
  }
  /** Elementwise test for ±Infinity, as `bool` (false for integers). @example `x.isinf()` */
  isinf(): Tensor {
    return composite("isinf", () => isFloat(this.dtype) ? this.abs().eq(Infinity) : this.isnan());
  }
  /**
   * Elementwise test for a finite value (not NaN, not ±Infinity), as `bool`;
   * true for integers. `x - x` is 0 exactly when `x` is finite.
   * @example `x.isfinite()`
   */
  isfinite(): Tensor {
    return composite("isfinite", () => isFloat(this.dtype) ? this.sub(this).eq(0) : this.eq(this));
  }
  /**
   * The values converted to `dtype`: floats to integers truncate toward zero
   * and saturate at the type's limits (NaN gives 0), `int8` then wraps,
   * `bool` is `x != 0` (NaN is true), `float16` rounds to nearest (overflow
   * gives ±inf). Differentiable between float types; a cast to an integer
   * type has no gradient. The same dtype gives a view (no copy).
   *
   * @param dtype The target dtype.
   * @returns The converted tensor.
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * console.log(await tensor([-1.7, 2.9, 300]).astype("int8").array()); // [-1, 2, 44]
   * console.log(await tensor([0, 0.5]).astype("bool").array()); // [0, 1]
   * ```
   */
  astype(dtype: DType): Tensor {
    checkDType("astype", dtype);
    return named("astype", () => {
      if (dtype === this.dtype) return apply("reshape", [this], { shape: this.shape });
      checkBackendDType("astype", backendOf(this, "astype"), dtype);
      return apply("convert", [this], { dtype });
    });
  }
  /**
   * `log(sum(exp(x)))` over `axis`, computed stably (shifted by the maximum).
   * @example `x.logsumexp(-1)`
   */
  logsumexp(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    const axes = normalizeAxes("logsumexp", axis, this.ndim);
    if (axes.some((a) => this.shape[a] === 0)) {
      // An empty sum: log(0) = -inf, with no maximum to shift by.
      return composite("logsumexp", () => this.exp().sum(axes, opts).log());
    }
    return composite("logsumexp", () => {
      // Shift by the maximum; an infinite maximum (all -inf, or a +inf) shifts
      // by 0 instead, so the result is ±inf as in JAX, not inf - inf = NaN.
      const max = stopGradient(this.max(axes, { keepdims: true }));
      const m = where(max.abs().lt(Infinity), max, 0);
      const out = this.sub(m).exp().sum(axes, { keepdims: true }).log().add(m);
      return opts.keepdims ? out : out.reshape(this.shape.filter((_, i) => !axes.includes(i)));
    });
  }

  // ---- linear algebra and shape ---------------------------------------------

  /**
   * Matrix product with NumPy semantics: 2-D `[m,k]·[k,n]`, batched
   * `[...,m,k]·[...,k,n]` with broadcast batch axes, and 1-D operands
   * treated as a row (left) or column (right) vector.
   * @example `x.matmul(w)`
   */
  matmul(other: Tensor): Tensor {
    return matmul(this, other);
  }

  /**
   * The same data with a new shape of the same size; one entry may be -1.
   * @example `x.reshape([2, -1])`
   */
  reshape(shape: Shape): Tensor {
    checkReshapeArgs(shape);
    const inferred = inferShape(this, shape);
    return apply("reshape", [this], { shape: inferred });
  }

  /**
   * Permutes axes (reverses them when `perm` is omitted). A view: no copy.
   * @example `x.transpose()`, `x.transpose([0, 2, 1])`
   */
  transpose(perm?: readonly number[]): Tensor {
    const p = perm ?? [...this.shape.keys()].reverse();
    const sorted = [...p].sort((a, b) => a - b);
    if (p.length !== this.ndim || sorted.some((v, i) => v !== i)) {
      throw new RangeError(
        `transpose: permutation ${
          shapeString(p)
        } is not a permutation of the ${this.ndim} axes of a tensor of shape ${
          shapeString(this.shape)
        }`,
      );
    }
    return apply("transpose", [this], { perm: p });
  }

  /**
   * Broadcasts to `shape` with NumPy rules. A view: no copy.
   * @example `tensor([1, 2]).broadcastTo([3, 2])`
   */
  broadcastTo(shape: Shape): Tensor {
    checkShape("broadcastTo", shape);
    const target = [...shape];
    const result = shape.length >= this.ndim ? tryBroadcast(this.shape, target) : false;
    if (!result) {
      throw new TypeError(
        `broadcastTo: cannot broadcast shape ${shapeString(this.shape)} to ${shapeString(shape)}`,
      );
    }
    if (sameShape(this.shape, target)) {
      return apply("reshape", [this], { shape: target });
    }
    return apply("broadcast", [this], { shape: target });
  }

  /**
   * Removes size-1 axes (all of them, or the given ones).
   * @example `tensor([[1], [2]]).squeeze()` has shape `[2]`
   */
  squeeze(axis?: Axis): Tensor {
    const axes = axis === undefined
      ? this.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : normalizeAxes("squeeze", axis, this.ndim);
    for (const a of axes) {
      if (this.shape[a] !== 1) {
        throw new RangeError(
          `squeeze: axis ${a} has size ${this.shape[a]}, not 1 (shape ${shapeString(this.shape)})`,
        );
      }
    }
    return this.reshape(this.shape.filter((_, i) => !axes.includes(i)));
  }

  /**
   * Inserts a size-1 axis at `axis` (negative counts from the end of the result).
   * @example `tensor([1, 2]).expandDims(0)` has shape `[1, 2]`
   */
  expandDims(axis: number): Tensor {
    const [a] = normalizeAxes("expandDims", axis, this.ndim + 1);
    return this.reshape([...this.shape.slice(0, a), 1, ...this.shape.slice(a)]);
  }

  /**
   * Flattens axes `start..end` (inclusive; default all) into one.
   * @example `x.flatten(1)` turns `[n, c, h, w]` into `[n, c·h·w]`
   */
  flatten(start = 0, end = -1): Tensor {
    if (this.ndim === 0) return this.reshape([1]);
    const [s] = normalizeAxes("flatten", start, this.ndim);
    const [e] = normalizeAxes("flatten", end, this.ndim);
    if (s > e) throw new RangeError(`flatten: start axis ${start} comes after end axis ${end}`);
    const middle = sizeOf(this.shape.slice(s, e + 1));
    return this.reshape([...this.shape.slice(0, s), middle, ...this.shape.slice(e + 1)]);
  }

  /**
   * NumPy-style basic indexing, as a view (no copy): integers, ranges with
   * steps, negative indices, new axes and an ellipsis. Its gradient writes
   * back into zeros of this tensor's shape.
   *
   * @param index One entry per axis (fewer means the rest are whole).
   * @returns The selected part.
   * @example
   * ```ts
   * import { arange } from "littlegrad";
   * const x = arange(24).reshape([2, 3, 4]);
   * x.get(0);                  // x[0]           → shape [3, 4]
   * x.get(-1, [1, null], [0, 4, 2]); // x[-1, 1:, 0:4:2] → shape [2, 2]
   * x.get("...", null, 1);     // x[..., None, 1] → shape [2, 3, 1]
   * ```
   */
  get(...index: Index[]): Tensor {
    const ellipses = index.filter((e) => e === "...").length;
    if (ellipses > 1) throw new TypeError("get: an index can have at most one '...'");
    const consuming = index.filter((e) => e !== null && e !== "...").length;
    if (consuming > this.ndim) {
      throw new RangeError(
        `get: ${consuming} indices for a tensor of rank ${this.ndim} (shape ${
          shapeString(this.shape)
        })`,
      );
    }
    const full = index.flatMap((e) =>
      e === "..." ? Array<Index>(this.ndim - consuming).fill([]) : [e]
    );
    while (full.filter((e) => e !== null).length < this.ndim) full.push([]);
    const starts: number[] = [];
    const steps: number[] = [];
    const sliced: number[] = [];
    const flips: number[] = [];
    const result: number[] = [];
    let axis = 0;
    for (const entry of full) {
      if (entry === null) {
        result.push(1);
        continue;
      }
      const d = this.shape[axis];
      if (typeof entry === "number") {
        if (!Number.isInteger(entry)) {
          throw new RangeError(
            `get: index ${quoteValue(entry)} on axis ${axis} is not an integer`,
          );
        }
        if (entry < -d || entry >= d) {
          throw new RangeError(
            `get: index ${entry} is out of bounds for axis ${axis} with size ${d}`,
          );
        }
        starts.push(entry < 0 ? entry + d : entry);
        steps.push(1);
        sliced.push(1);
      } else if (Array.isArray(entry)) {
        if (entry.length > 3) {
          throw new TypeError(`get: a range is [start, stop, step], got ${entry.length} entries`);
        }
        const [start, stop, rawStep] = entry as (number | null | undefined)[];
        const step = rawStep ?? 1;
        if (!Number.isInteger(step) || step === 0) {
          throw new RangeError(
            `get: step ${quoteValue(rawStep)} on axis ${axis} must be a non-zero integer`,
          );
        }
        // Python's rules: bounds clamp to [0, d] going up, to [-1, d-1] going down.
        const [min, max] = step > 0 ? [0, d] : [-1, d - 1];
        const clamp = (v: number | null | undefined, dflt: number) => {
          if (v === null || v === undefined) return dflt;
          if (!Number.isInteger(v)) {
            throw new TypeError(`get: range bound ${quoteValue(v)} is not an integer`);
          }
          return Math.min(Math.max(v < 0 ? v + d : v, min), max);
        };
        const first = clamp(start, step > 0 ? 0 : d - 1);
        const end = clamp(stop, step > 0 ? d : -1);
        const count = Math.max(0, Math.ceil((end - first) / step));
        // A downward range is the upward one from its last element, flipped.
        const low = step > 0 ? first : first + (count - 1) * step;
        if (step < 0) flips.push(sliced.length);
        starts.push(count === 0 ? 0 : low);
        steps.push(Math.abs(step));
        sliced.push(count);
        result.push(count);
      } else {
        throw new TypeError(
          `get: index entries are integers, ranges, null or '...', got ${quoteValue(entry)}`,
        );
      }
      axis++;
    }
    return composite(
      "get",
      () =>
        (flips.length
          ? apply("slice", [this], { shape: sliced, starts, steps }).flip(flips)
          : apply("slice", [this], { shape: sliced, starts, steps })).reshape(result),
    );
  }

  /**
   * A strided window, one range per leading axis, like `lax.slice` or
   * `x[s0:e0:k0, s1:e1:k1]`: the same view `get` gives for ranges (Python's
   * rules for negative and out-of-range bounds; axes not named are whole).
   *
   * @param starts First index per axis.
   * @param stops End (exclusive) per axis, `null` for the end; default: the ends.
   * @param opts `steps`: step per axis (non-zero; negative walks backwards), default 1.
   * @returns The window, a view.
   * @example
   * ```ts
   * import { arange } from "littlegrad";
   * const x = arange(12).reshape([3, 4]);
   * console.log(await x.slice([1, 0], [3, 4], { steps: [1, 2] }).array()); // [[4, 6], [8, 10]]
   * ```
   */
  slice(
    starts: readonly number[],
    stops?: readonly (number | null)[],
    opts: { steps?: readonly number[] } = {},
  ): Tensor {
    const steps = opts.steps;
    for (const [name, list] of [["starts", starts], ["stops", stops], ["steps", steps]] as const) {
      if (list !== undefined && (!Array.isArray(list) || list.length > this.ndim)) {
        throw new TypeError(
          `slice: ${name} must be an array of at most ${this.ndim} entries (shape ${
            shapeString(this.shape)
          }), got ${Array.isArray(list) ? `${list.length} entries` : describe(list)}`,
        );
      }
    }
    if (stops && stops.length !== starts.length || steps && steps.length !== starts.length) {
      throw new TypeError("slice: starts, stops and steps must have the same length");
    }
    return named(
      "slice",
      () => this.get(...starts.map((start, k) => [start, stops?.[k] ?? null, steps?.[k] ?? 1])),
    );
  }

  /**
   * Reverses the order of elements along `axis` (all axes when omitted). A
   * view: no copy.
   * @example `tensor([1, 2, 3]).flip()` is `[3, 2, 1]`
   */
  flip(axis?: Axis): Tensor {
    const axes = normalizeAxes("flip", axis, this.ndim);
    return apply("flip", [this], { axes });
  }

  /**
   * Pads with a constant: `widths[k] = [before, after]` elements on axis `k`
   * (a single pair applies to every axis).
   * @example `x.pad([[1, 1], [0, 2]])`
   */
  pad(
    widths: readonly (readonly [number, number])[] | readonly [number, number],
    value = 0,
  ): Tensor {
    const isPair = (p: unknown) =>
      Array.isArray(p) && p.length === 2 && p.every((w) => Number.isInteger(w) && w >= 0);
    // One pair (its first entry is a number) applies to every axis.
    const pairs =
      (typeof widths[0] === "number"
        ? Array(this.ndim).fill(widths)
        : widths) as readonly (readonly [number, number])[];
    if (!Array.isArray(pairs) || pairs.length !== this.ndim || !pairs.every(isPair)) {
      throw new RangeError(
        `pad: widths must be ${this.ndim} pairs of non-negative integers for shape ${
          shapeString(this.shape)
        }, got ${JSON.stringify(widths)}`,
      );
    }
    // An integer or bool tensor takes a fill that fits it, as other ops take numbers.
    if (!holds(this.dtype, value)) {
      const [lo, hi] = valueRange(this.dtype);
      throw new RangeError(
        `pad: the fill value ${value} does not fit dtype ${this.dtype} (an integer in [${lo}, ${hi}])`,
      );
    }
    return apply("pad", [this], {
      shape: this.shape.map((d, k) => d + pairs[k][0] + pairs[k][1]),
      starts: pairs.map((p) => p[0]),
      steps: pairs.map(() => 1),
      fill: value,
    });
  }

  /**
   * Picks entries along `axis` at integer `indices`, like `numpy.take`: the
   * result has shape `shape[:axis] + indices.shape + shape[axis+1:]`. With
   * no axis the tensor is flattened first. A negative index counts from the
   * end; an index still out of range is clamped (as JAX's indexing does: a
   * GPU kernel cannot throw). The gradient scatter-adds: rows picked twice
   * get both cotangents.
   *
   * @param indices An `int32`/`int8` tensor, or an array of integers.
   * @param axis The axis to pick along (default: the flattened tensor).
   * @returns The picked entries.
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * const table = tensor([[1, 2], [3, 4], [5, 6]]);
   * console.log(await table.take([2, 0, 2], 0).array()); // [[5, 6], [1, 2], [5, 6]]
   * console.log(await table.take([-1], 1).array()); // [[2], [4], [6]]
   * ```
   */
  take(indices: Tensor | readonly number[] | Int32Array, axis?: number): Tensor {
    if (axis === undefined) return composite("take", () => this.reshape([-1]).take(indices, 0));
    const [a] = normalizeAxes("take", axis, this.ndim);
    return composite("take", () => {
      const ids = indexTensor("take", indices, this);
      if (this.shape[a] === 0 && ids.size > 0) {
        throw new RangeError(
          `take: cannot take from axis ${a} of size 0 (shape ${shapeString(this.shape)})`,
        );
      }
      return apply("gather", [this, ids], { axis: a });
    });
  }

  /**
   * Picks one entry per position along `axis`, like
   * `numpy.take_along_axis`: `indices` has this tensor's rank and shape
   * except along `axis`, and `out[..., j, ...] = x[..., indices[..., j, ...], ...]`.
   * The usual use is picking each row's label. Indices follow `take`'s rules.
   *
   * @param indices An integer tensor (or nested array) of this tensor's rank.
   * @param axis The axis to pick along.
   * @returns A tensor of `indices`' shape.
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * const logits = tensor([[1, 2, 3], [4, 5, 6]]);
   * const labels = tensor([[2], [0]], { dtype: "int32" });
   * console.log(await logits.takeAlongAxis(labels, 1).array()); // [[3], [4]]
   * ```
   */
  takeAlongAxis(indices: Tensor, axis: number): Tensor {
    const [a] = normalizeAxes("takeAlongAxis", axis, this.ndim);
    const bad = !(indices instanceof Tensor) || indices.ndim !== this.ndim ||
      indices.shape.some((d, k) => k !== a && d !== this.shape[k]);
    if (bad) {
      throw new TypeError(
        `takeAlongAxis: indices must be a tensor of shape ${
          shapeString(this.shape)
        } except along ` +
          `axis ${a}, got ${
            indices instanceof Tensor ? shapeString(indices.shape) : describe(indices)
          }`,
      );
    }
    return composite("takeAlongAxis", () => {
      // Flat positions: the index along `axis`, the position elsewhere.
      const ids = clampIndices(indexTensor("takeAlongAxis", indices, this), this.shape[a]);
      const strides = this.shape.map((_, k) => sizeOf(this.shape.slice(k + 1)));
      let flat = ids.mul(strides[a]);
      for (let k = 0; k < this.ndim; k++) {
        if (k === a || this.shape[k] === 1) continue;
        const at = fromHost(
          Int32Array.from({ length: this.shape[k] }, (_, i) => i * strides[k]),
          this.shape.map((d, m) => (m === k ? d : 1)),
          backendOf(this, "takeAlongAxis"),
        );
        flat = flat.add(at);
      }
      return this.take(flat);
    });
  }

  /**
   * Splits along `axis` into `sections` equal parts, or at the given indices.
   * @example `x.split(2)`, `x.split([1, 3], 1)`
   */
  split(sections: number | readonly number[], axis = 0): Tensor[] {
    const [a] = normalizeAxes("split", axis, this.ndim);
    const d = this.shape[a];
    let points: number[];
    if (typeof sections === "number") {
      if (!Number.isInteger(sections) || sections < 1 || d % sections !== 0) {
        throw new RangeError(
          `split: axis ${a} of size ${d} cannot be split into ${sections} equal parts`,
        );
      }
      points = Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * d) / sections);
    } else {
      points = [...sections];
      if (
        points.some((p, i) =>
          !Number.isInteger(p) || p < 0 || p > d || (i > 0 && p < points[i - 1])
        )
      ) {
        throw new RangeError(
          `split: split points ${
            JSON.stringify(sections)
          } must be increasing integers in [0, ${d}]`,
        );
      }
    }
    const bounds = [0, ...points, d];
    return named(
      "split",
      () =>
        bounds.slice(1).map((end, i) => this.get(...Array<Index>(a).fill([]), [bounds[i], end])),
    );
  }

  // ---- normalisation --------------------------------------------------------

  /**
   * Softmax along `axis` (default last), computed stably. A tensor with no
   * elements (an empty axis, reduced or not) gives an empty result of its
   * shape, as in JAX and PyTorch.
   * @example `logits.softmax(-1)`
   */
  softmax(axis = -1): Tensor {
    const ax = normalizeAxes("softmax", axis, this.ndim);
    return composite("softmax", () => {
      const shifted = shiftByMax(this, ax);
      const e = shifted.exp();
      return e.div(e.sum(ax, { keepdims: true }));
    });
  }

  /**
   * Log of the softmax along `axis` (default last), computed stably. A
   * tensor with no elements gives an empty result of its shape.
   * @example `logits.logSoftmax()`
   */
  logSoftmax(axis = -1): Tensor {
    const ax = normalizeAxes("logSoftmax", axis, this.ndim);
    return composite("logSoftmax", () => {
      const shifted = shiftByMax(this, ax);
      return shifted.sub(shifted.exp().sum(ax, { keepdims: true }).log());
    });
  }
}

/**
 * `x` minus its maximum over `axes` (held constant for the gradient), the
 * shift that keeps softmax from overflowing. A tensor with no elements has
 * no maximum to take (and nothing to overflow): it is returned as it is.
 */
function shiftByMax(x: Tensor, axes: number[]): Tensor {
  if (x.size === 0) return x;
  return x.sub(stopGradient(x.max(axes, { keepdims: true })));
}

/** A tensor holding host data (a `Float32Array` or `Int32Array`) on `backend`. */
function fromHost(data: Float32Array | Int32Array, shape: Shape, backend: Backend): Tensor {
  return hostTensor(data, data instanceof Int32Array ? "int32" : "float32", shape, backend);
}

/**
 * argmax or argmin along one axis: the smallest index reaching the extreme,
 * or holding a NaN (NumPy's rule), as int32.
 */
function argExtreme(op: "argmax" | "argmin", x: Tensor, axis: number, opts: ReduceOptions): Tensor {
  const [a] = normalizeAxes(op, axis, x.ndim);
  const d = x.shape[a];
  if (d === 0) {
    throw new RangeError(
      `${op}: axis ${a} of shape ${shapeString(x.shape)} is empty: no index to return`,
    );
  }
  return composite(op, () => {
    const k = stopGradient(x);
    const extreme = op === "argmax" ? k.max(a, { keepdims: true }) : k.min(a, { keepdims: true });
    const hits = k.eq(extreme).logicalOr(k.ne(k));
    const ids = fromHost(
      Int32Array.from({ length: d }, (_, i) => i),
      x.shape.map((_, i) => (i === a ? d : 1)),
      backendOf(x, op),
    );
    return where(hits, ids, d).min(a, opts);
  });
}

// ---- selection ----------------------------------------------------------------

/**
 * Elementwise choice: `a` where `cond` is true, else `b`, with NumPy
 * broadcasting of all three and `a`, `b` promoted to one dtype. A `cond`
 * that is not `bool` counts non-zero as true (NaN too). `cond` gets no
 * gradient, and each branch gets the gradient only where it was chosen — so
 * a NaN or Inf in the branch not taken does not leak into gradients.
 *
 * @param cond The condition.
 * @param a Values where `cond` is true.
 * @param b Values where `cond` is false.
 * @returns The selected values.
 * @example
 * ```ts
 * import { tensor, where } from "littlegrad";
 * const x = tensor([-2, 3]);
 * console.log(await where(x.gt(0), x, 0).array()); // [0, 3]
 * ```
 */
export function where(cond: Tensor | number, a: Tensor | number, b: Tensor | number): Tensor {
  const like = [cond, a, b].find((t): t is Tensor => t instanceof Tensor);
  if (!like) throw new TypeError("where: at least one of cond, a and b must be a Tensor");
  return composite("where", () => {
    const c = truth("where", cond, like);
    const [x, y] = promoted("where", a, b, like);
    const shape = broadcastShapes("where", broadcastShapes("where", c.shape, x.shape), y.shape);
    const expand = (t: Tensor) =>
      sameShape(t.shape, shape) ? t : apply("broadcast", [t], { shape });
    return apply("where", [expand(c), expand(x), expand(y)]);
  });
}

// ---- indices -------------------------------------------------------------------

/** `indices` as an int32 tensor on `like`'s backend, or a clear error. */
function indexTensor(op: string, indices: unknown, like: Tensor): Tensor {
  if (indices instanceof Tensor) {
    if (indices.dtype === "int32") return indices;
    if (indices.dtype === "int8") return indices.astype("int32");
    throw new TypeError(
      `${op}: indices must be an integer tensor, got ${indices.dtype}${
        shapeString(indices.shape)
      }; cast with astype("int32")`,
    );
  }
  if (!Array.isArray(indices) && !(indices instanceof Int32Array)) {
    throw new TypeError(
      `${op}: indices must be a Tensor, an array of integers or an Int32Array, got ${
        describe(indices)
      }`,
    );
  }
  const list = Array.from(indices as ArrayLike<number>);
  const bad = list.findIndex((i) => !Number.isInteger(i) || i < -(2 ** 31) || i > 2 ** 31 - 1);
  if (bad >= 0) {
    throw new TypeError(
      `${op}: index ${list[bad]} at position ${bad} is not an int32 integer (in [-2^31, 2^31 - 1])`,
    );
  }
  return fromHost(Int32Array.from(list), [list.length], backendOf(like, op));
}

/**
 * @internal Integer indices into an axis of length `n` as `take` reads them:
 * negative ones count from the end, then everything is clamped to `[0, n)`.
 */
export function clampIndices(ids: Tensor, n: number): Tensor {
  return scoped(() => where(ids.lt(0), ids.add(n), ids).clip(0, Math.max(n - 1, 0)), (t) => [t]);
}

/**
 * One-hot encoding: integer `ids` of shape `s` give `[...s, count]`, 1 at
 * each id and 0 elsewhere. Ids outside `[0, count)` give a row of zeros
 * (as `jax.nn.one_hot`).
 *
 * @param ids An integer tensor, or an array of integers.
 * @param count The number of classes.
 * @param opts `dtype` of the result (default `float32`).
 * @returns The one-hot tensor.
 * @example
 * ```ts
 * import { oneHot, tensor } from "littlegrad";
 * const labels = tensor([2, 0], { dtype: "int32" });
 * console.log(await oneHot(labels, 3).array()); // [[0, 0, 1], [1, 0, 0]]
 * ```
 */
export function oneHot(ids: Tensor, count: number, opts: { dtype?: DType } = {}): Tensor {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`oneHot: count must be a non-negative integer, got ${count}`);
  }
  if (!(ids instanceof Tensor)) {
    throw new TypeError(`oneHot: ids must be an integer Tensor, got ${describe(ids)}`);
  }
  return composite("oneHot", () => {
    const id = indexTensor("oneHot", ids, ids);
    const classes = fromHost(
      Int32Array.from({ length: count }, (_, i) => i),
      [count],
      backendOf(ids, "oneHot"),
    );
    return id.reshape([...id.shape, 1]).eq(classes).astype(opts.dtype ?? "float32");
  });
}

// ---- joining ------------------------------------------------------------------

/**
 * Joins tensors along an existing axis (shapes must agree elsewhere).
 *
 * @param tensors The tensors, in order.
 * @param axis The axis to join along (default 0).
 * @returns The joined tensor.
 * @example
 * ```ts
 * import { concat, tensor } from "littlegrad";
 * console.log(await concat([tensor([[1, 2]]), tensor([[3, 4]])], 0).array()); // [[1, 2], [3, 4]]
 * ```
 */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (
    !Array.isArray(tensors) || tensors.length === 0 || !tensors.every((t) => t instanceof Tensor)
  ) {
    throw new TypeError("concat: expected a non-empty array of tensors");
  }
  const first = tensors[0];
  const [a] = normalizeAxes("concat", axis, first.ndim);
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((d, k) => k !== a && d !== first.shape[k])) {
      throw new TypeError(
        `concat: shapes ${
          tensors.map((x) => shapeString(x.shape)).join(", ")
        } differ outside axis ${a}`,
      );
    }
  }
  const total = tensors.reduce((n, t) => n + t.shape[a], 0);
  // Each input padded into place along the axis, then summed: one mechanism
  // (pad, whose gradient is a slice) instead of a kernel of its own.
  return composite("concat", () => {
    let offset = 0;
    const placed = tensors.map((t) => {
      const widths = t.shape.map((_, k): [number, number] =>
        k === a ? [offset, total - offset - t.shape[a]] : [0, 0]
      );
      offset += t.shape[a];
      return t.pad(widths);
    });
    return placed.reduce((x, y) => x.add(y));
  });
}

/**
 * Stacks tensors of one shape along a new axis.
 *
 * @param tensors The tensors, all of the same shape.
 * @param axis Where the new axis goes (default 0).
 * @returns The stacked tensor.
 * @example
 * ```ts
 * import { stack, tensor } from "littlegrad";
 * console.log(stack([tensor([1, 2]), tensor([3, 4])], 1).shape); // [2, 2]
 * ```
 */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (
    !Array.isArray(tensors) || tensors.length === 0 || !tensors.every((t) => t instanceof Tensor)
  ) {
    throw new TypeError("stack: expected a non-empty array of tensors");
  }
  const shape = shapeString(tensors[0].shape);
  if (tensors.some((t) => shapeString(t.shape) !== shape)) {
    throw new TypeError(
      `stack: all shapes must be equal, got ${tensors.map((t) => shapeString(t.shape)).join(", ")}`,
    );
  }
  return composite("stack", () => concat(tensors.map((t) => t.expandDims(axis)), axis));
}

// ---- lifecycle --------------------------------------------------------------

function releaseStorage(storage: Storage): void {
  if (--storage.refs === 0 && !abstractStorages.has(storage)) storage.backend.free(storage);
}

/**
 * A safety net: a tensor that becomes unreachable without `dispose()` has its
 * memory released when the garbage collector reclaims it. Collection timing
 * is up to the JavaScript engine, so explicit `dispose()`/`using`/`tidy`
 * remain the way to bound memory.
 */
const dropped = new FinalizationRegistry<Storage>((storage) => {
  liveTensors--;
  releaseStorage(storage);
});
/**
 * A tensor with the same value as `x` through which no gradient flows: the
 * transforms treat it as a constant.
 *
 * @param x The tensor to cut from the graph.
 * @returns A new tensor sharing `x`'s data.
 * @example
 * ```ts
 * import { grad, stopGradient, tensor, Tensor } from "littlegrad";
 * const f = (x: Tensor) => x.mul(stopGradient(x)).sum(); // d/dx = x, not 2x
 * console.log(await grad(f)(tensor([3])).array()); // [3]
 * ```
 */
export function stopGradient(x: Tensor): Tensor {
  const v = x.view("stopGradient");
  return new Tensor({
    storage: v.storage,
    shape: v.shape,
    strides: v.strides,
    offset: v.offset,
  });
}

// ---- constants -------------------------------------------------------------

/** @internal The backend object of `t`; a disposed `t` gets an error naming `op`. */
export function backendOf(t: Tensor, op: string): Backend {
  return t.view(op).storage.backend;
}

/**
 * @internal A scalar tensor holding `value` on `backend`. Ops create these
 * for plain-number operands inside their own scope, so they are released
 * with the op's other temporaries.
 */
export function scalar(value: number, backend: Backend, dtype: DType = "float32"): Tensor {
  return hostTensor(new (hostArrayClass(dtype))([convertNumber(value, dtype)]), dtype, [], backend);
}

/** Throws a `TypeError` naming the op if `backend` cannot hold `dtype`. */
export function checkBackendDType(op: string, backend: Backend, dtype: DType): void {
  if (!backend.dtypes.includes(dtype)) {
    throw new TypeError(
      `${op}: dtype ${dtype} needs the WebGPU feature 'shader-f16', which this adapter ` +
        `(${backend.adapter}) lacks; use float32, or the CPU backend, which emulates float16`,
    );
  }
}

/**
 * Two operands (tensors, or numbers as weak types) converted to their
 * promoted dtype; at least one of `a`, `b`, `like` is a tensor.
 */
function promoted(
  op: string,
  a: Tensor | number,
  b: Tensor | number,
  like: Tensor | number,
): [Tensor, Tensor] {
  for (const x of [a, b]) {
    if (!(x instanceof Tensor) && typeof x !== "number") {
      throw new TypeError(`${op}: expected a Tensor or a number, got ${describe(x)}`);
    }
  }
  const ref = a instanceof Tensor ? a : b instanceof Tensor ? b : like;
  if (!(ref instanceof Tensor)) throw new TypeError(`${op}: at least one operand must be a Tensor`);
  // A number takes the other operand's dtype (weak typing); two numbers
  // alone (where(c, 1, 0)) take the defaults, int32 or float32.
  const strong = a instanceof Tensor ? a.dtype : b instanceof Tensor ? b.dtype : "bool";
  const typeOf = (x: Tensor | number) => x instanceof Tensor ? x.dtype : weakDType(op, x, strong);
  const dtype = promoteTypes(typeOf(a), typeOf(b));
  const backend = backendOf(ref, op);
  const cast = (x: Tensor | number) =>
    x instanceof Tensor ? (x.dtype === dtype ? x : x.astype(dtype)) : scalar(x, backend, dtype);
  return [cast(a), cast(b)];
}

/** `x` as a bool tensor (non-zero is true); a number becomes a bool scalar. */
function truth(op: string, x: Tensor | number, like?: Tensor | number): Tensor {
  if (x instanceof Tensor) return x.dtype === "bool" ? x : x.astype("bool");
  if (typeof x !== "number") {
    throw new TypeError(`${op}: expected a Tensor or a number, got ${describe(x)}`);
  }
  if (!(like instanceof Tensor)) {
    throw new TypeError(`${op}: at least one operand must be a Tensor`);
  }
  return scalar(x !== 0 ? 1 : 0, backendOf(like, op), "bool");
}

/** `x` itself if floating, else converted to float32 (JAX's rule for transcendental ops). */
export function toFloat(x: Tensor): Tensor {
  return isFloat(x.dtype) ? x : x.astype("float32");
}

/**
 * @internal Inclusive scan along axis `a` with `add` or `mul`: ⌈log₂ d⌉ rounds
 * of combining the values with themselves shifted by 1, 2, 4, ... (the shift
 * a slice and a pad with the identity), so it is differentiable through
 * those primitives and exact for integers.
 */
export function scan(x: Tensor, a: number, op: "add" | "mul"): Tensor {
  const d = x.shape[a];
  let out = x;
  for (let shift = 1; shift < d; shift *= 2) {
    const head = apply("slice", [out], {
      shape: out.shape.map((n, k) => (k === a ? n - shift : n)),
      starts: out.shape.map(() => 0),
      steps: out.shape.map(() => 1),
    });
    const widths = out.shape.map((_, k): [number, number] => (k === a ? [shift, 0] : [0, 0]));
    const shifted = head.pad(widths, op === "add" ? 0 : 1);
    out = op === "add" ? out.add(shifted) : out.mul(shifted);
  }
  // Always a fresh tensor, even when there was nothing to combine.
  return apply("reshape", [out], { shape: out.shape });
}

/** `f(x)`, computed in float32 when `x` is float16 and rounded back at the end. */
function inFloat32(x: Tensor, f: (x: Tensor) => Tensor): Tensor {
  return x.dtype === "float16" ? f(x.astype("float32")).astype("float16") : f(x);
}

/** `x` with `int8` and `bool` widened to `int32` (what sums accumulate in). */
function widenInt(x: Tensor): Tensor {
  return x.dtype === "int8" || x.dtype === "bool" ? x.astype("int32") : x;
}

// ---- composites ------------------------------------------------------------

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function tryBroadcast(from: Shape, to: Shape): boolean {
  const lead = to.length - from.length;
  return from.every((d, i) => d === 1 || d === to[lead + i]);
}

/**
 * @internal Broadcasts both operands (tensors or numbers) to a common shape,
 * then applies a binary primitive.
 */
export function binary(
  op: Prim,
  a: Tensor | number,
  b: Tensor | number,
  name: string = op,
): Tensor {
  return composite(name, () => {
    let [x, y] = promoted(name, a, b, a);
    if (computesInFloat(op) && !isFloat(x.dtype)) [x, y] = [toFloat(x), toFloat(y)];
    if (refusesBool(op) && x.dtype === "bool") {
      throw new TypeError(
        "sub: subtracting bool tensors is not supported (as in NumPy); use a.ne(b) for " +
          'exclusive or, or cast with astype("int32")',
      );
    }
    const shape = broadcastShapes(name, x.shape, y.shape);
    const xs = sameShape(x.shape, shape) ? x : apply("broadcast", [x], { shape });
    const ys = sameShape(y.shape, shape) ? y : apply("broadcast", [y], { shape });
    return apply(op, [xs, ys]);
  });
}

/** @internal Applies a unary elementwise primitive with its dtype policy (`DTYPE_POLICY`). */
function unary(op: Prim, x: Tensor): Tensor {
  if (computesInFloat(op) && !isFloat(x.dtype)) {
    return composite(op, () => apply(op, [toFloat(x)]));
  }
  if (isIdentityOnIntegers(op) && !isFloat(x.dtype)) {
    return apply("reshape", [x], { shape: x.shape });
  }
  if (refusesBool(op) && x.dtype === "bool") {
    throw new TypeError("neg: negating a bool tensor is not supported; use logicalNot()");
  }
  return apply(op, [x]);
}

function reduce(
  op: "sum" | "prod" | "max" | "min",
  x: Tensor,
  axis: Axis | undefined,
  opts: ReduceOptions,
): Tensor {
  const axes = normalizeAxes(op, axis, x.ndim);
  if ((op === "max" || op === "min") && axes.some((a) => x.shape[a] === 0)) {
    throw new RangeError(
      `${op}: cannot reduce over an empty axis (shape ${shapeString(x.shape)}, axes ${
        shapeString(axes)
      }): ${op} has no identity value (NumPy and JAX raise too)`,
    );
  }
  return composite(op, () => {
    // Sums and products of int8 and bool accumulate in int32, as in JAX
    // (in the reduction itself: no conversion pass).
    const dtype = accumulationDType(op, x.dtype);
    const out = axes.length === 0
      ? (dtype !== x.dtype ? x.astype(dtype) : apply("reshape", [x], { shape: x.shape }))
      : apply(op, [x], dtype !== x.dtype ? { axes, dtype } : { axes });
    if (!opts.keepdims) return out;
    return out.reshape(x.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
  });
}

function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(b instanceof Tensor)) {
    throw new TypeError(`matmul: expected a Tensor, got ${describe(b)}`);
  }
  if (a.ndim === 0 || b.ndim === 0) {
    throw new TypeError(
      `matmul: operands must have at least 1 axis, got shapes ${shapeString(a.shape)} and ${
        shapeString(b.shape)
      }`,
    );
  }
  const k = a.shape[a.ndim - 1];
  const kb = b.shape[Math.max(b.ndim - 2, 0)];
  if (k !== kb) {
    throw new TypeError(
      `matmul: inner dimensions differ: ${shapeString(a.shape)} @ ${
        shapeString(b.shape)
      } (${k} vs ${kb})`,
    );
  }
  if (!isFloat(a.dtype) || !isFloat(b.dtype)) {
    throw new TypeError(
      `matmul: operands must be float32 or float16, got ${a.dtype}${
        shapeString(a.shape)
      } @ ${b.dtype}${shapeString(b.shape)}; cast with astype("float32")`,
    );
  }
  return composite("matmul", () => {
    const dtype = promoteTypes(a.dtype, b.dtype);
    const [ac, bc] = [a, b].map((t) => (t.dtype === dtype ? t : t.astype(dtype)));
    const a2 = ac.ndim === 1 ? ac.reshape([1, k]) : ac;
    const b2 = bc.ndim === 1 ? bc.reshape([k, 1]) : bc;
    const [batchA, batchB] = [a2.shape.slice(0, -2), b2.shape.slice(0, -2)];
    let batch: number[];
    try {
      batch = broadcastShapes("matmul", batchA, batchB);
    } catch {
      throw new TypeError(
        `matmul: the batch axes of ${shapeString(a.shape)} and ${
          shapeString(b.shape)
        } cannot be broadcast together`,
      );
    }
    const m = a2.shape[a2.ndim - 2];
    const n = b2.shape[b2.ndim - 1];
    const expand = (t: Tensor, shape: number[]) =>
      sameShape(t.shape, shape) ? t : t.broadcastTo(shape);
    const out = apply("matmul", [expand(a2, [...batch, m, k]), expand(b2, [...batch, k, n])]);
    if (a.ndim > 1 && b.ndim > 1) return out;
    const shape = [
      ...batch,
      ...(a.ndim > 1 ? [m] : []),
      ...(b.ndim > 1 ? [n] : []),
    ];
    return out.reshape(shape);
  });
}

function checkReshapeArgs(shape: Shape): void {
  if (
    !Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < -1)
  ) {
    throw new TypeError(
      `reshape: shape entries must be non-negative integers or -1, got ${
        Array.isArray(shape) ? `[${shape.join(",")}]` : String(shape)
      }`,
    );
  }
  if (shape.filter((d) => d === -1).length > 1) {
    throw new TypeError(
      `reshape: at most one -1 is allowed, got ${shapeString(shape)}`,
    );
  }
}

function inferShape(x: Tensor, shape: Shape): number[] {
  const known = sizeOf(shape.filter((d) => d !== -1));
  if (known === 0 && shape.includes(-1)) {
    // Any size would do: NumPy refuses the -1 too.
    throw new TypeError(
      `reshape: cannot infer the -1 in ${shapeString(shape)} when another axis is 0 ` +
        `(tensor of shape ${shapeString(x.shape)}); give every axis`,
    );
  }
  const out = shape.map((d) => (d === -1 ? x.size / known : d));
  if (sizeOf(out) !== x.size || out.some((d) => !Number.isInteger(d))) {
    throw new TypeError(
      `reshape: cannot reshape ${shapeString(x.shape)} (${x.size} elements) to ${
        shapeString(shape)
      }`,
    );
  }
  return out;
}
