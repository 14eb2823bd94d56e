/**
 * The `Tensor` class: an immutable, typed, shaped handle on a backend
 * buffer — its lifecycle (creation into the current scope, `dispose`, the
 * garbage-collector safety net), readback (`data`, `array`, `item`) and
 * formatting. Every op is also a method, a one-line delegate to the op's
 * one implementation in `src/ops/` (`x.add(y)` is `add(x, y)`).
 *
 * Dependencies go one way at load time: this module imports the core and
 * the op families, and they import `Tensor` back only to use it inside
 * functions (`instanceof`, `new Tensor`), never at module top level, so
 * the cycle is safe in any import order.
 * @module
 */

import type { Storage, View } from "./backend.ts";
import { isContiguous } from "./backend.ts";
import { type DType, type HostArray, isFloat } from "./dtype.ts";
import { type Shape, shapeString, sizeOf } from "./shape.ts";
import { reportNonFinite } from "./core/debug_nans.ts";
import { named, withOpName } from "./core/errors.ts";
import { abstractStorages, leakedTracer, refuseRead } from "./core/interpreter.ts";
import { type ScopeKind, trackInScope } from "./core/scope.ts";
import {
  isfinite,
  isinf,
  isnan,
  logicalAnd,
  logicalNot,
  logicalOr,
  logicalXor,
  reciprocal,
} from "./ops/_elementwise.ts";
import { flip, get, type Index, slice, takeAlongAxis } from "./ops/_indexing.ts";
import { tensorOnly, tensorOrNumber } from "./ops/_lift.ts";
import {
  abs,
  add,
  astype,
  ceil,
  clip,
  cos,
  div,
  eq,
  exp,
  expm1,
  floor,
  floorDiv,
  ge,
  gelu,
  gt,
  le,
  leakyRelu,
  log,
  log1p,
  lt,
  maximum,
  minimum,
  mod,
  mul,
  ne,
  neg,
  pow,
  relu,
  round,
  sigmoid,
  sign,
  sin,
  softplus,
  sqrt,
  square,
  sub,
  tanh,
} from "./ops/elementwise.ts";
import { take } from "./ops/indexing.ts";
import { matmul } from "./ops/linalg.ts";
import {
  broadcastTo,
  expandDims,
  flatten,
  pad,
  reshape,
  split,
  squeeze,
  transpose,
} from "./ops/movement.ts";
import {
  argmax,
  argmin,
  type Axis,
  cumprod,
  cumsum,
  logSoftmax,
  logsumexp,
  max,
  mean,
  min,
  prod,
  type ReduceOptions,
  softmax,
  std,
  sum,
  variance,
} from "./ops/reduce.ts";

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

  /**
   * @internal Whether this is a value of a trace being made (`makeTrace`,
   * `jit`, `vmap`): it has a shape and a dtype but no data.
   */
  get isTraced(): boolean {
    return this.#view !== null && abstractStorages.has(this.#view.storage);
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.#view === null;
  }

  /** The backend holding the data: `"webgpu"`, `"wasm"` or `"cpu"`. */
  get backend(): "webgpu" | "wasm" | "cpu" {
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
   * A read of a traced value is refused (makeTrace reports it); its promise
   * gets a handler so a read the traced function did not await is not an
   * unhandled rejection as well.
   */
  #unhandledIfTraced<T>(read: Promise<T>): Promise<T> {
    if (this.#view && abstractStorages.has(this.#view.storage)) read.catch(() => {});
    return read;
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
  array(): Promise<NestedArray> {
    return this.#unhandledIfTraced(this.#array());
  }

  async #array(): Promise<NestedArray> {
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
  item(): Promise<number> {
    return this.#unhandledIfTraced(this.#item());
  }

  async #item(): Promise<number> {
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

  /**
   * A tensor is not a number: JavaScript arithmetic and comparisons on it
   * (`x * 2`, `x > 0`, `-x`) throw a `TypeError` instead of giving `NaN` or
   * `false`. Use the ops (`x.mul(2)`, `x.gt(0)`) or read the value
   * (`await x.item()`). String conversion and concatenation (`${x}`,
   * `"x: " + x`) give `toString()`.
   *
   * @param hint What JavaScript converts to.
   * @returns The description, for a string conversion.
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * const x = tensor([1, 2]);
   * console.log(`${x}`); // Tensor(float32[2], ...)
   * try {
   *   console.log((x as unknown as number) * 2);
   * } catch (err) {
   *   console.log((err as Error).message); // a Tensor used as a number: ...
   * }
   * ```
   */
  [Symbol.toPrimitive](hint: string): string {
    if (hint !== "number") return this.toString();
    const traced = this.#view !== null && abstractStorages.has(this.#view.storage);
    throw new TypeError(
      `a Tensor used as a number: ${this.toString()} in JavaScript arithmetic or a comparison; ` +
        "use the tensor ops (x.mul(2), x.gt(0)), or read it with await x.item()" +
        (traced
          ? ". Inside jit, a number argument is traced: mark it with staticArgnums to use it " +
            "as a JavaScript number"
          : ""),
    );
  }

  // ---- elementwise ----------------------------------------------------------

  /** Elementwise `this + other`, with NumPy broadcasting. @example `x.add(1)` */
  add(other: Tensor | number): Tensor {
    return add(this, tensorOrNumber("add", other));
  }
  /** Elementwise `this - other`, with broadcasting. @example `x.sub(y)` */
  sub(other: Tensor | number): Tensor {
    return sub(this, tensorOrNumber("sub", other));
  }
  /** Elementwise `this * other`, with broadcasting. @example `x.mul(0.5)` */
  mul(other: Tensor | number): Tensor {
    return mul(this, tensorOrNumber("mul", other));
  }
  /**
   * Elementwise true division `this / other` (IEEE: `1/0 = inf`), with
   * broadcasting; integer and boolean operands give `float32`, as in JAX.
   * @example `x.div(y)`
   */
  div(other: Tensor | number): Tensor {
    return div(this, tensorOrNumber("div", other));
  }
  /**
   * Elementwise `this ** other`, with broadcasting. A negative base gives a
   * real result only for integral exponents (`(-2)**3 = -8`), else NaN.
   * Computed in floating point: integer operands give `float32`.
   * @example `x.pow(2)`
   */
  pow(other: Tensor | number): Tensor {
    return pow(this, tensorOrNumber("pow", other));
  }
  /**
   * Elementwise maximum, with broadcasting. Where the inputs tie, the
   * gradient is split evenly between them (1/2 each, what central
   * differences see), as JAX's `lax.max` and PyTorch's `torch.maximum` do.
   * @example `x.maximum(y)`
   */
  maximum(other: Tensor | number): Tensor {
    return maximum(this, tensorOrNumber("maximum", other));
  }
  /**
   * Elementwise `this < other`, a `bool` tensor (no gradient), comparing in
   * the promoted dtype. Likewise `le`, `gt`, `ge`, `eq`, `ne`.
   * @example `x.lt(0)`
   */
  lt(other: Tensor | number): Tensor {
    return lt(this, tensorOrNumber("lt", other));
  }
  /** Elementwise `this <= other`, as `bool`. @example `x.le(y)` */
  le(other: Tensor | number): Tensor {
    return le(this, tensorOrNumber("le", other));
  }
  /** Elementwise `this > other`, as `bool`. @example `x.gt(0)` */
  gt(other: Tensor | number): Tensor {
    return gt(this, tensorOrNumber("gt", other));
  }
  /** Elementwise `this >= other`, as `bool`. @example `x.ge(y)` */
  ge(other: Tensor | number): Tensor {
    return ge(this, tensorOrNumber("ge", other));
  }
  /** Elementwise `this == other`, as `bool`. @example `x.eq(y)` */
  eq(other: Tensor | number): Tensor {
    return eq(this, tensorOrNumber("eq", other));
  }
  /** Elementwise `this != other`, as `bool` (NaN != NaN). @example `x.ne(y)` */
  ne(other: Tensor | number): Tensor {
    return ne(this, tensorOrNumber("ne", other));
  }
  /** Elementwise `-this` (integers wrap: `-(-2³¹) = -2³¹`; not for `bool`). @example `x.neg()` */
  neg(): Tensor {
    return neg(this);
  }
  /**
   * Elementwise `e ** this`. Like every transcendental op (`log sqrt tanh
   * sigmoid sin cos log1p expm1`), it computes integer and boolean inputs
   * in `float32`.
   * @example `x.exp()`
   */
  exp(): Tensor {
    return exp(this);
  }
  /** Elementwise natural logarithm (`log(0) = -inf`). @example `x.log()` */
  log(): Tensor {
    return log(this);
  }
  /** Elementwise square root. @example `x.sqrt()` */
  sqrt(): Tensor {
    return sqrt(this);
  }
  /** Elementwise hyperbolic tangent (stable for large inputs). @example `x.tanh()` */
  tanh(): Tensor {
    return tanh(this);
  }
  /** Elementwise logistic `1 / (1 + e^-x)` (stable for large inputs). @example `x.sigmoid()` */
  sigmoid(): Tensor {
    return sigmoid(this);
  }
  /** Elementwise absolute value; its gradient at 0 is 0. @example `x.abs()` */
  abs(): Tensor {
    return abs(this);
  }
  /** Elementwise sign: -1, 0 or 1 (gradient 0). @example `x.sign()` */
  sign(): Tensor {
    return sign(this);
  }
  /** Elementwise sine. @example `x.sin()` */
  sin(): Tensor {
    return sin(this);
  }
  /** Elementwise cosine. @example `x.cos()` */
  cos(): Tensor {
    return cos(this);
  }
  /** Elementwise floor (gradient 0; integers pass unchanged). @example `x.floor()` */
  floor(): Tensor {
    return floor(this);
  }
  /** Elementwise ceiling (gradient 0). @example `x.ceil()` */
  ceil(): Tensor {
    return ceil(this);
  }
  /** Rounds to the nearest integer, ties to even like NumPy (gradient 0). @example `x.round()` */
  round(): Tensor {
    return round(this);
  }
  /** Elementwise `log(1 + x)`, accurate for small `x`. @example `x.log1p()` */
  log1p(): Tensor {
    return log1p(this);
  }
  /** Elementwise `e^x - 1`, accurate for small `x`. @example `x.expm1()` */
  expm1(): Tensor {
    return expm1(this);
  }
  /**
   * Elementwise `max(this, 0)` (NaN stays NaN). Its gradient at exactly 0
   * is 0, as in JAX (`jax.nn.relu`), PyTorch and TensorFlow: the kink takes
   * the left derivative. (It is `where(x <= 0, 0, x)`, not `maximum(x, 0)`,
   * whose tie rule would give 1/2; `checkGrads` skips such kinks.)
   * @example `x.relu()`
   */
  relu(): Tensor {
    return relu(this);
  }
  /**
   * Elementwise minimum, with broadcasting; ties split the gradient evenly
   * (as JAX's `lax.min` and PyTorch's `torch.minimum`).
   * @example `x.minimum(1)`
   */
  minimum(other: Tensor | number): Tensor {
    return minimum(this, tensorOrNumber("minimum", other));
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
    return clip(this, low, high);
  }
  /** Elementwise `this²`. @example `x.square()` */
  square(): Tensor {
    return square(this);
  }
  /** Elementwise `1 / this`. @example `x.reciprocal()` */
  reciprocal(): Tensor {
    return reciprocal(this);
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
    return softplus(this);
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
    return leakyRelu(this, slope);
  }
  /**
   * GELU with the tanh approximation (JAX's default):
   * `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
   * @example `x.gelu()`
   */
  gelu(): Tensor {
    return gelu(this);
  }

  // ---- reductions -----------------------------------------------------------

  /**
   * Sum over `axis` (all axes when omitted).
   * @example `x.sum()`, `x.sum(1, { keepdims: true })`, `x.sum([0, 2])`
   */
  sum(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return sum(this, axis, opts);
  }
  /**
   * Product over `axis` (all axes when omitted); `int8` and `bool` give
   * `int32`, as in JAX. Its gradient is the product of the other elements,
   * exact with zeros (no division by zero).
   * @example `tensor([[1, 2], [3, 4]]).prod(1)` is `[2, 12]`
   */
  prod(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return prod(this, axis, opts);
  }
  /**
   * Maximum over `axis` (all axes when omitted). Ties share the gradient
   * evenly (as `jnp.max` and PyTorch's `amax`; `torch.max(dim)` gives it all
   * to one index).
   * @example `x.max(-1)`
   */
  max(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return max(this, axis, opts);
  }
  /**
   * Mean over `axis` (all axes when omitted); integers give `float32`, and
   * `float16` is averaged in float32 and rounded once at the end (as JAX
   * does), so neither the sum nor the count overflows float16.
   * @example `x.mean(0)`
   */
  mean(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return mean(this, axis, opts);
  }
  /**
   * Minimum over `axis` (all axes when omitted). Ties share the gradient evenly.
   * @example `x.min(0)`
   */
  min(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return min(this, axis, opts);
  }
  /**
   * Variance over `axis` (all axes when omitted): `mean((x - mean(x))²)`, or
   * divided by `n - ddof` with `ddof`.
   * @example `x.var(1)`, `x.var(undefined, { ddof: 1 })`
   */
  var(axis?: Axis, opts: ReduceOptions & { ddof?: number } = {}): Tensor {
    return variance(this, axis, opts);
  }
  /** Standard deviation: `sqrt(var)`. @example `x.std(0, { ddof: 1 })` */
  std(axis?: Axis, opts: ReduceOptions & { ddof?: number } = {}): Tensor {
    return std(this, axis, opts);
  }
  /**
   * Index of the maximum along `axis` (the first one on ties), as `int32`;
   * no gradient. A NaN counts as the maximum, as in NumPy.
   * @example `logits.argmax(-1)`
   */
  argmax(axis = -1, opts: ReduceOptions = {}): Tensor {
    return argmax(this, axis, opts);
  }
  /** Index of the minimum along `axis` (the first one on ties). @example `x.argmin(0)` */
  argmin(axis = -1, opts: ReduceOptions = {}): Tensor {
    return argmin(this, axis, opts);
  }
  /**
   * Cumulative sum along `axis`, as a log-step scan: ⌈log₂ d⌉ rounds of
   * "add the values shifted by 1, 2, 4, ..." (shifts are a slice and a pad,
   * so the gradient needs no rule of its own). Exact for integers; `int8` and
   * `bool` give `int32` like `sum`.
   * @example `tensor([1, 2, 3]).cumsum()` is `[1, 3, 6]`
   */
  cumsum(axis = -1): Tensor {
    return cumsum(this, axis);
  }
  /**
   * Cumulative product along `axis`, the same log-step scan as `cumsum`
   * with products (no division, so zeros are exact, and every derivative
   * order is right). `int8` and `bool` give `int32`.
   * @example `tensor([1, 2, 3, 4]).cumprod()` is `[1, 2, 6, 24]`
   */
  cumprod(axis = -1): Tensor {
    return cumprod(this, axis);
  }
  /**
   * Floor division with Python's rule (rounds toward -inf), with
   * broadcasting and promotion; gradient 0. Integer division by zero gives
   * 0 (as NumPy, without its warning), on both backends; float division by
   * zero gives ±inf or NaN.
   * @example `tensor([7, -7]).floorDiv(2)` is `[3, -4]`
   */
  floorDiv(other: Tensor | number): Tensor {
    return floorDiv(this, tensorOrNumber("floorDiv", other));
  }
  /**
   * Remainder with Python's sign rule (the sign of the divisor):
   * `a - b·floorDiv(a, b)`. Integer `mod(a, 0)` gives 0; float gives NaN.
   * @example `tensor([7, -7]).mod(3)` is `[1, 2]`
   */
  mod(other: Tensor | number): Tensor {
    return mod(this, tensorOrNumber("mod", other));
  }
  /** Elementwise logical and (non-zero is true), as `bool`. @example `a.logicalAnd(b)` */
  logicalAnd(other: Tensor | number): Tensor {
    return logicalAnd(this, other);
  }
  /** Elementwise logical or (non-zero is true), as `bool`. @example `a.logicalOr(b)` */
  logicalOr(other: Tensor | number): Tensor {
    return logicalOr(this, other);
  }
  /** Elementwise logical not (true where zero), as `bool`. @example `mask.logicalNot()` */
  logicalNot(): Tensor {
    return logicalNot(this);
  }
  /** Elementwise logical exclusive or (non-zero is true), as `bool`. @example `a.logicalXor(b)` */
  logicalXor(other: Tensor | number): Tensor {
    return logicalXor(this, other);
  }
  /** Elementwise test for NaN, as `bool` (false for integers). @example `x.isnan()` */
  isnan(): Tensor {
    return isnan(this);
  }
  /** Elementwise test for ±Infinity, as `bool` (false for integers). @example `x.isinf()` */
  isinf(): Tensor {
    return isinf(this);
  }
  /**
   * Elementwise test for a finite value (not NaN, not ±Infinity), as `bool`;
   * true for integers. `x - x` is 0 exactly when `x` is finite.
   * @example `x.isfinite()`
   */
  isfinite(): Tensor {
    return isfinite(this);
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
    return astype(this, dtype);
  }
  /**
   * `log(sum(exp(x)))` over `axis`, computed stably (shifted by the maximum).
   * @example `x.logsumexp(-1)`
   */
  logsumexp(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return logsumexp(this, axis, opts);
  }

  // ---- linear algebra and shape ---------------------------------------------

  /**
   * Matrix product with NumPy semantics: 2-D `[m,k]·[k,n]`, batched
   * `[...,m,k]·[...,k,n]` with broadcast batch axes, and 1-D operands
   * treated as a row (left) or column (right) vector.
   * @example `x.matmul(w)`
   */
  matmul(other: Tensor): Tensor {
    return matmul(this, tensorOnly("matmul", other));
  }

  /**
   * The same data with a new shape of the same size; one entry may be -1.
   * @example `x.reshape([2, -1])`
   */
  reshape(shape: Shape): Tensor {
    return reshape(this, shape);
  }

  /**
   * Permutes axes (reverses them when `perm` is omitted). A view: no copy.
   * @example `x.transpose()`, `x.transpose([0, 2, 1])`
   */
  transpose(perm?: readonly number[]): Tensor {
    return transpose(this, perm);
  }

  /**
   * Broadcasts to `shape` with NumPy rules. A view: no copy.
   * @example `tensor([1, 2]).broadcastTo([3, 2])`
   */
  broadcastTo(shape: Shape): Tensor {
    return broadcastTo(this, shape);
  }

  /**
   * Removes size-1 axes (all of them, or the given ones).
   * @example `tensor([[1], [2]]).squeeze()` has shape `[2]`
   */
  squeeze(axis?: Axis): Tensor {
    return squeeze(this, axis);
  }

  /**
   * Inserts a size-1 axis at `axis` (negative counts from the end of the result).
   * @example `tensor([1, 2]).expandDims(0)` has shape `[1, 2]`
   */
  expandDims(axis: number): Tensor {
    return expandDims(this, axis);
  }

  /**
   * Flattens axes `start..end` (inclusive; default all) into one.
   * @example `x.flatten(1)` turns `[n, c, h, w]` into `[n, c·h·w]`
   */
  flatten(start = 0, end = -1): Tensor {
    return flatten(this, start, end);
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
    return get(this, ...index);
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
    return slice(this, starts, stops, opts);
  }

  /**
   * Reverses the order of elements along `axis` (all axes when omitted). A
   * view: no copy.
   * @example `tensor([1, 2, 3]).flip()` is `[3, 2, 1]`
   */
  flip(axis?: Axis): Tensor {
    return flip(this, axis);
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
    return pad(this, widths, value);
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
    return take(this, indices, axis);
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
    return takeAlongAxis(this, indices, axis);
  }

  /**
   * Splits along `axis` into `sections` equal parts, or at the given indices.
   * @example `x.split(2)`, `x.split([1, 3], 1)`
   */
  split(sections: number | readonly number[], axis = 0): Tensor[] {
    return split(this, sections, axis);
  }

  // ---- normalisation --------------------------------------------------------

  /**
   * Softmax along `axis` (default last), computed stably. A tensor with no
   * elements (an empty axis, reduced or not) gives an empty result of its
   * shape, as in JAX and PyTorch.
   * @example `logits.softmax(-1)`
   */
  softmax(axis = -1): Tensor {
    return softmax(this, axis);
  }

  /**
   * Log of the softmax along `axis` (default last), computed stably. A
   * tensor with no elements gives an empty result of its shape.
   * @example `logits.logSoftmax()`
   */
  logSoftmax(axis = -1): Tensor {
    return logSoftmax(this, axis);
  }
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
