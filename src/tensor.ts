/**
 * The `Tensor` class: an immutable, typed, shaped handle on a backend buffer,
 * with every op as a method. Ops either apply one primitive (`apply`) or are
 * compositions of other ops; nothing else touches a backend.
 * @module
 */

import type { Backend, Storage, View } from "./backend.ts";
import { isContiguous } from "./backend.ts";
import type { DType } from "./dtype.ts";
import { type Prim, type PrimParams, runPrimitive } from "./primitives.ts";
import {
  broadcastShapes,
  checkShape,
  normalizeAxes,
  type Shape,
  shapeString,
  sizeOf,
} from "./shape.ts";
import type { Tape } from "./tape.ts";

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

// ---- trace state -----------------------------------------------------------

/** Tapes of the transforms currently tracing, innermost last. */
export const tapeStack: Tape[] = [];
/**
 * Who opened a scope, which decides the message a user sees when a tensor it
 * released is used later: an op's own temporaries never reach the user, but a
 * tensor kept from inside `grad` or `tidy` can ("a leaked tracer").
 */
export type ScopeKind = "op" | "transform" | "tidy";

/** The tensors created while a scope was open. */
export class Scope {
  /** Tensors created in this scope, in creation order. */
  readonly tensors: Set<Tensor> = new Set();
  /** @param kind Who opened the scope. */
  constructor(readonly kind: ScopeKind) {}
}

/** Tensors created in each open scope, innermost last. */
const scopeStack: Scope[] = [];
let nextId = 0;
let liveTensors = 0;

/** @internal Number of tensors created and not yet disposed. */
export function liveTensorCount(): number {
  return liveTensors;
}

/** @internal Opens a scope: tensors created until it closes are tracked in it. */
export function openScope(kind: ScopeKind = "op"): Scope {
  const scope = new Scope(kind);
  scopeStack.push(scope);
  return scope;
}

function popScope(scope: Scope): Scope | undefined {
  if (scopeStack.pop() !== scope) throw new Error("internal: scopes closed out of order");
  return scopeStack.at(-1);
}

/**
 * @internal Closes the innermost scope. Tensors in `keep` escape; the rest are
 * disposed — unless a transform is still tracing, whose backward pass may
 * need them: then they all move to the enclosing scope, which disposes them
 * when that transform returns.
 */
export function closeScope(scope: Scope, keep: Iterable<Tensor> = []): void {
  const parent = popScope(scope);
  const kept = new Set(keep);
  for (const t of scope.tensors) {
    if (t.disposed) continue;
    if (kept.has(t) || tapeStack.length > 0) parent?.tensors.add(t);
    else t.release(scope.kind);
  }
}

/**
 * @internal Closes the innermost scope without disposing anything: `keep`
 * moves to the enclosing scope, and the rest is returned for the caller to
 * release later (a vjp's residuals). While a transform is still tracing,
 * everything moves to the enclosing scope and the returned set is empty.
 */
export function detachScope(scope: Scope, keep: Iterable<Tensor>): Set<Tensor> {
  const parent = popScope(scope);
  if (tapeStack.length > 0) {
    for (const t of scope.tensors) parent?.tensors.add(t);
    return new Set();
  }
  for (const t of keep) {
    if (scope.tensors.delete(t)) parent?.tensors.add(t);
  }
  return scope.tensors;
}

/**
 * Runs `fn` and disposes every tensor it created except those in the tree it
 * returns — for eager code outside `grad` (inference, metrics) that would
 * otherwise leave its intermediate tensors alive. `fn` must be synchronous:
 * a scope cannot follow an `await`.
 *
 * @param fn A synchronous function returning a tensor or a tree of tensors.
 * @returns What `fn` returned.
 * @example
 * ```ts
 * import { memoryStats, tensor, tidy } from "littlegrad";
 * const x = tensor([1, 2, 3]);
 * const before = memoryStats().liveTensors;
 * const y = tidy(() => x.mul(2).add(1).relu().sum()); // intermediates released
 * console.log(memoryStats().liveTensors - before); // 1 (just y)
 * ```
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== "function") {
    throw new TypeError(`tidy: expected a function, got ${describe(fn)}`);
  }
  return scoped(
    () => {
      const result = fn();
      if (result instanceof Promise) {
        throw new TypeError(
          "tidy: fn returned a Promise; tidy only works with synchronous functions",
        );
      }
      return result;
    },
    (result) => tensorsIn(result),
    "tidy",
  );
}

/** Tensors anywhere in nested arrays and plain objects. */
function tensorsIn(x: unknown): Tensor[] {
  if (x instanceof Tensor) return [x];
  if (Array.isArray(x)) return x.flatMap(tensorsIn);
  if (x !== null && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.values(x).flatMap(tensorsIn);
  }
  return [];
}

/**
 * @internal Runs `fn` in a scope: temporaries it creates are released when it
 * returns (or throws), except the tensors it returns.
 */
export function scoped<T>(
  fn: () => T,
  escaping: (result: T) => Iterable<Tensor>,
  kind: ScopeKind = "op",
): T {
  const scope = openScope(kind);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    closeScope(scope);
    throw err;
  }
  closeScope(scope, escaping(result));
  return result;
}

/** Runs a composite op so that only its result outlives it. */
function composite(fn: () => Tensor): Tensor {
  return scoped(fn, (t) => [t]);
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
  /** Element type. */
  readonly dtype: DType = "float32";
  #view: View | null;
  #released: ScopeKind | "dispose" | null = null;

  /**
   * Wraps a backend view. Users create tensors with `tensor`, `zeros`, ...
   * @internal
   */
  constructor(view: View) {
    this.id = nextId++;
    this.shape = Object.freeze([...view.shape]);
    this.#view = view;
    view.storage.refs++;
    liveTensors++;
    scopeStack.at(-1)?.tensors.add(this);
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
        this.#released === "transform"
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
   * Reads the values back as a flat row-major `Float32Array`. Waits for all
   * queued GPU work this tensor depends on.
   *
   * @example
   * ```ts
   * import { tensor } from "littlegrad";
   * console.log(await tensor([1, 2]).data()); // Float32Array [1, 2]
   * ```
   */
  async data(): Promise<Float32Array> {
    const view = this.view("data");
    const backend = view.storage.backend;
    backend.assertUsable(view.storage);
    let result: Promise<Float32Array>;
    if (isContiguous(view) && view.offset === 0 && view.storage.size === this.size) {
      result = backend.read(view.storage);
    } else {
      const copy = backend.map("copy", [view], this.shape);
      result = backend.read(copy).finally(() => backend.free(copy));
    }
    const [values] = await Promise.all([result, reportNonFinite(backend)]);
    return values;
  }

  /**
   * Reads the values back as nested arrays (a number for a scalar).
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
      Number.isNaN(v)
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
    const where = this.#view ? this.#view.storage.backend.name : "disposed";
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
  /** Elementwise `this / other` (IEEE: `1/0 = inf`), with broadcasting. @example `x.div(y)` */
  div(other: Tensor | number): Tensor {
    return binary("div", this, other);
  }
  /**
   * Elementwise `this ** other`, with broadcasting. A negative base gives a
   * real result only for integral exponents (`(-2)**3 = -8`), else NaN.
   * @example `x.pow(2)`
   */
  pow(other: Tensor | number): Tensor {
    return binary("pow", this, other);
  }
  /**
   * Elementwise maximum, with broadcasting. Where the inputs tie, the
   * gradient is split evenly between them (what central differences see).
   * @example `x.maximum(y)`
   */
  maximum(other: Tensor | number): Tensor {
    return binary("maximum", this, other);
  }
  /**
   * Elementwise `this < other` as 1 or 0 (float32 until the `bool` dtype
   * lands; no gradient). Likewise `le`, `gt`, `ge`, `eq`, `ne`.
   * @example `x.lt(0)`
   */
  lt(other: Tensor | number): Tensor {
    return binary("lt", this, other);
  }
  /** Elementwise `this <= other` as 1 or 0. @example `x.le(y)` */
  le(other: Tensor | number): Tensor {
    return binary("le", this, other);
  }
  /** Elementwise `this > other` as 1 or 0. @example `x.gt(0)` */
  gt(other: Tensor | number): Tensor {
    return binary("lt", other, this);
  }
  /** Elementwise `this >= other` as 1 or 0. @example `x.ge(y)` */
  ge(other: Tensor | number): Tensor {
    return binary("le", other, this);
  }
  /** Elementwise `this == other` as 1 or 0. @example `x.eq(y)` */
  eq(other: Tensor | number): Tensor {
    return binary("eq", this, other);
  }
  /** Elementwise `this != other` as 1 or 0 (NaN != NaN). @example `x.ne(y)` */
  ne(other: Tensor | number): Tensor {
    return binary("ne", this, other);
  }
  /** Elementwise `-this`. @example `x.neg()` */
  neg(): Tensor {
    return apply("neg", [this]);
  }
  /** Elementwise `e ** this`. @example `x.exp()` */
  exp(): Tensor {
    return apply("exp", [this]);
  }
  /** Elementwise natural logarithm (`log(0) = -inf`). @example `x.log()` */
  log(): Tensor {
    return apply("log", [this]);
  }
  /** Elementwise square root. @example `x.sqrt()` */
  sqrt(): Tensor {
    return apply("sqrt", [this]);
  }
  /** Elementwise hyperbolic tangent (stable for large inputs). @example `x.tanh()` */
  tanh(): Tensor {
    return apply("tanh", [this]);
  }
  /** Elementwise logistic `1 / (1 + e^-x)` (stable for large inputs). @example `x.sigmoid()` */
  sigmoid(): Tensor {
    return apply("sigmoid", [this]);
  }
  /** Elementwise absolute value; its gradient at 0 is 0. @example `x.abs()` */
  abs(): Tensor {
    return apply("abs", [this]);
  }
  /** Elementwise sign: -1, 0 or 1 (gradient 0). @example `x.sign()` */
  sign(): Tensor {
    return apply("sign", [this]);
  }
  /** Elementwise sine. @example `x.sin()` */
  sin(): Tensor {
    return apply("sin", [this]);
  }
  /** Elementwise cosine. @example `x.cos()` */
  cos(): Tensor {
    return apply("cos", [this]);
  }
  /** Elementwise floor (gradient 0). @example `x.floor()` */
  floor(): Tensor {
    return apply("floor", [this]);
  }
  /** Elementwise ceiling (gradient 0). @example `x.ceil()` */
  ceil(): Tensor {
    return apply("ceil", [this]);
  }
  /** Rounds to the nearest integer, ties to even like NumPy (gradient 0). @example `x.round()` */
  round(): Tensor {
    return apply("round", [this]);
  }
  /** Elementwise `log(1 + x)`, accurate for small `x`. @example `x.log1p()` */
  log1p(): Tensor {
    return apply("log1p", [this]);
  }
  /** Elementwise `e^x - 1`, accurate for small `x`. @example `x.expm1()` */
  expm1(): Tensor {
    return apply("expm1", [this]);
  }
  /**
   * Elementwise `max(this, 0)`. Its gradient at exactly 0 is 0.5, the
   * symmetric subgradient that central differences measure (PyTorch uses 0).
   * @example `x.relu()`
   */
  relu(): Tensor {
    return this.maximum(0);
  }
  /**
   * Elementwise minimum, with broadcasting; ties split the gradient evenly.
   * @example `x.minimum(1)`
   */
  minimum(other: Tensor | number): Tensor {
    return composite(() => {
      const y = operand("minimum", other, this);
      broadcastShapes("minimum", this.shape, y.shape); // the error names minimum
      return this.neg().maximum(y.neg()).neg();
    });
  }
  /**
   * Clamps every element to `[low, high]` (`maximum` then `minimum`).
   * @example `x.clip(-1, 1)`
   */
  clip(low: Tensor | number, high: Tensor | number): Tensor {
    return composite(() => {
      const [lo, hi] = [operand("clip", low, this), operand("clip", high, this)];
      broadcastShapes("clip", broadcastShapes("clip", this.shape, lo.shape), hi.shape);
      return this.maximum(lo).minimum(hi);
    });
  }
  /** Elementwise `this²`. @example `x.square()` */
  square(): Tensor {
    return this.mul(this);
  }
  /** Elementwise `1 / this`. @example `x.reciprocal()` */
  reciprocal(): Tensor {
    return binary("div", 1, this);
  }
  /**
   * Elementwise `log(1 + e^x)`, computed as `max(x, 0) + log(1 + e^-|x|)` so
   * large inputs neither overflow nor lose the linear tail.
   * @example `x.softplus()`
   */
  softplus(): Tensor {
    return composite(() => this.relu().add(this.abs().neg().exp().add(1).log()));
  }
  /**
   * Elementwise `x` for `x ≥ 0` and `slope·x` below (`maximum(x, slope·x)`,
   * for `0 ≤ slope < 1`).
   * @example `x.leakyRelu(0.01)`
   */
  leakyRelu(slope = 0.01): Tensor {
    if (!(slope >= 0 && slope < 1)) {
      throw new RangeError(`leakyRelu: slope must be in [0, 1), got ${slope}`);
    }
    return composite(() => this.maximum(this.mul(slope)));
  }
  /**
   * GELU with the tanh approximation (JAX's default):
   * `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
   * @example `x.gelu()`
   */
  gelu(): Tensor {
    return composite(() => {
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
   * Maximum over `axis` (all axes when omitted). Ties share the gradient evenly.
   * @example `x.max(-1)`
   */
  max(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    return reduce("max", this, axis, opts);
  }
  /** Mean over `axis` (all axes when omitted). @example `x.mean(0)` */
  mean(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    const axes = normalizeAxes("mean", axis, this.ndim);
    const count = sizeOf(axes.map((a) => this.shape[a]));
    return composite(() => this.sum(axes, opts).div(count));
  }
  /**
   * Minimum over `axis` (all axes when omitted). Ties share the gradient evenly.
   * @example `x.min(0)`
   */
  min(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    normalizeAxes("min", axis, this.ndim);
    return composite(() => this.neg().max(axis, opts).neg());
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
    return composite(() => {
      const centered = this.sub(this.mean(axes, { keepdims: true }));
      return centered.square().sum(axes, { keepdims: opts.keepdims }).div(n - ddof);
    });
  }
  /** Standard deviation: `sqrt(var)`. @example `x.std(0, { ddof: 1 })` */
  std(axis?: Axis, opts: ReduceOptions & { ddof?: number } = {}): Tensor {
    return composite(() => this.var(axis, opts).sqrt());
  }
  /**
   * Index of the maximum along `axis` (the first one on ties), as float32
   * until the `int32` dtype lands; no gradient.
   * @example `logits.argmax(-1)`
   */
  argmax(axis = -1, opts: ReduceOptions = {}): Tensor {
    return argExtreme("argmax", this, axis, opts, (t) => t);
  }
  /** Index of the minimum along `axis` (the first one on ties). @example `x.argmin(0)` */
  argmin(axis = -1, opts: ReduceOptions = {}): Tensor {
    return argExtreme("argmin", this, axis, opts, (t) => t.neg());
  }
  /**
   * Cumulative sum along `axis` (a matmul with a triangular matrix of ones:
   * O(n·d) work for an axis of length d, fine for the axes models scan).
   * @example `tensor([1, 2, 3]).cumsum()` is `[1, 3, 6]`
   */
  cumsum(axis = -1): Tensor {
    const [a] = normalizeAxes("cumsum", axis, this.ndim);
    const d = this.shape[a];
    return composite(() => {
      const upper = new Float32Array(d * d);
      for (let i = 0; i < d; i++) for (let j = i; j < d; j++) upper[i * d + j] = 1;
      const perm = [...this.shape.keys()].filter((k) => k !== a).concat(a);
      const inverse = perm.map((_, k) => perm.indexOf(k));
      const moved = this.transpose(perm);
      return moved.matmul(fromHost(upper, [d, d], backendOf(this, "cumsum"))).transpose(inverse);
    });
  }
  /**
   * Floor division with Python's rule (rounds toward -inf): `floor(a / b)`;
   * gradient 0.
   * @example `tensor([7, -7]).floorDiv(2)` is `[3, -4]`
   */
  floorDiv(other: Tensor | number): Tensor {
    return composite(() => this.div(other).floor());
  }
  /**
   * Remainder with Python's sign rule (the sign of the divisor):
   * `a - b·floor(a / b)`.
   * @example `tensor([7, -7]).mod(3)` is `[1, 2]`
   */
  mod(other: Tensor | number): Tensor {
    return composite(() => this.sub(this.div(other).floor().mul(other)));
  }
  /** Elementwise logical and of non-zero values, as 1/0. @example `a.logicalAnd(b)` */
  logicalAnd(other: Tensor | number): Tensor {
    return composite(() => this.ne(0).mul(binary("ne", other, 0)));
  }
  /** Elementwise logical or of non-zero values, as 1/0. @example `a.logicalOr(b)` */
  logicalOr(other: Tensor | number): Tensor {
    return composite(() => this.ne(0).maximum(binary("ne", other, 0)));
  }
  /** Elementwise logical not (1 where zero), as 1/0. @example `mask.logicalNot()` */
  logicalNot(): Tensor {
    return this.eq(0);
  }
  /**
   * `log(sum(exp(x)))` over `axis`, computed stably (shifted by the maximum).
   * @example `x.logsumexp(-1)`
   */
  logsumexp(axis?: Axis, opts: ReduceOptions = {}): Tensor {
    const axes = normalizeAxes("logsumexp", axis, this.ndim);
    return composite(() => {
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
        if (!Number.isInteger(entry) || entry < -d || entry >= d) {
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
          throw new RangeError(`get: step ${rawStep} on axis ${axis} must be a non-zero integer`);
        }
        // Python's rules: bounds clamp to [0, d] going up, to [-1, d-1] going down.
        const [min, max] = step > 0 ? [0, d] : [-1, d - 1];
        const clamp = (v: number | null | undefined, dflt: number) => {
          if (v === null || v === undefined) return dflt;
          if (!Number.isInteger(v)) throw new TypeError(`get: range bound ${v} is not an integer`);
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
          `get: index entries are integers, ranges, null or '...', got ${describe(entry)}`,
        );
      }
      axis++;
    }
    return composite(() =>
      (flips.length
        ? apply("slice", [this], { shape: sliced, starts, steps }).flip(flips)
        : apply("slice", [this], { shape: sliced, starts, steps })).reshape(result)
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
    return apply("pad", [this], {
      shape: this.shape.map((d, k) => d + pairs[k][0] + pairs[k][1]),
      starts: pairs.map((p) => p[0]),
      steps: pairs.map(() => 1),
      fill: value,
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
    return bounds.slice(1).map((end, i) => this.get(...Array<Index>(a).fill([]), [bounds[i], end]));
  }

  // ---- normalisation --------------------------------------------------------

  /**
   * Softmax along `axis` (default last), computed stably.
   * @example `logits.softmax(-1)`
   */
  softmax(axis = -1): Tensor {
    const ax = normalizeAxes("softmax", axis, this.ndim);
    return composite(() => {
      const shifted = this.sub(stopGradient(this.max(ax, { keepdims: true })));
      const e = shifted.exp();
      return e.div(e.sum(ax, { keepdims: true }));
    });
  }

  /**
   * Log of the softmax along `axis` (default last), computed stably.
   * @example `logits.logSoftmax()`
   */
  logSoftmax(axis = -1): Tensor {
    const ax = normalizeAxes("logSoftmax", axis, this.ndim);
    return composite(() => {
      const shifted = this.sub(stopGradient(this.max(ax, { keepdims: true })));
      return shifted.sub(shifted.exp().sum(ax, { keepdims: true }).log());
    });
  }
}

/** A tensor holding host data on `backend`. */
function fromHost(data: Float32Array, shape: Shape, backend: Backend): Tensor {
  const strides = shape.map((_, i) => sizeOf(shape.slice(i + 1)));
  return new Tensor({ storage: backend.upload(data), shape, strides, offset: 0 });
}

/** argmax (of `key(x)`) along one axis: the smallest index reaching the maximum. */
function argExtreme(
  op: string,
  x: Tensor,
  axis: number,
  opts: ReduceOptions,
  key: (t: Tensor) => Tensor,
): Tensor {
  const [a] = normalizeAxes(op, axis, x.ndim);
  const d = x.shape[a];
  return composite(() => {
    const k = stopGradient(key(x));
    const hits = k.eq(k.max(a, { keepdims: true }));
    const ids = fromHost(
      Float32Array.from({ length: d }, (_, i) => i),
      x.shape.map((_, i) => (i === a ? d : 1)),
      backendOf(x, op),
    );
    return where(hits, ids, d).min(a, opts);
  });
}

// ---- selection ----------------------------------------------------------------

/**
 * Elementwise choice: `a` where `cond` is non-zero (true), else `b`, with
 * NumPy broadcasting of all three. `cond` is a float tensor of 1/0 (as the
 * comparisons return) until the `bool` dtype lands; it gets no gradient, and
 * each branch gets the gradient only where it was chosen — so a NaN or Inf
 * in the branch not taken does not leak into gradients.
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
  return composite(() => {
    const [c, x, y] = [cond, a, b].map((t) => operand("where", t, like));
    const shape = broadcastShapes("where", broadcastShapes("where", c.shape, x.shape), y.shape);
    const expand = (t: Tensor) =>
      sameShape(t.shape, shape) ? t : apply("broadcast", [t], { shape });
    return apply("where", [expand(c), expand(x), expand(y)]);
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
  return composite(() => {
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
  return composite(() => concat(tensors.map((t) => t.expandDims(axis)), axis));
}

// ---- primitive application ---------------------------------------------------

function releaseStorage(storage: Storage): void {
  if (--storage.refs === 0) storage.backend.free(storage);
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
 * @internal Applies one primitive: checks the inputs are alive and on one
 * backend, runs the forward rule, and records the equation on every tape
 * that is tracing one of the inputs.
 */
export function apply(
  prim: Prim,
  inputs: readonly Tensor[],
  params: PrimParams = {},
): Tensor {
  const views = inputs.map((t) => t.view(prim));
  const backend = views[0].storage.backend;
  for (const v of views) {
    if (v.storage.backend !== backend) {
      throw new TypeError(
        `${prim}: inputs live on different backends (${
          views.map((x) => x.storage.backend.name).join(", ")
        }); move them to one backend first`,
      );
    }
    backend.assertUsable(v.storage);
  }
  let view: View;
  try {
    view = runPrimitive(prim, views, params);
  } catch (err) {
    // Backend errors (buffer limits, a lost device) get the op's name.
    if (err instanceof Error && !err.message.startsWith(`${prim}:`)) {
      err.message = `${prim}: ${err.message}`;
    }
    throw err;
  }
  const out = new Tensor(view);
  if (debugNansEnabled && view.storage.refs === 1) checkFinite(prim, inputs, out, view);
  for (const tape of tapeStack) tape.record(prim, inputs, out, params);
  return out;
}

// ---- debug mode: NaN/Inf checks ---------------------------------------------

let debugNansEnabled = false;
let debugTag = 0;
/** Descriptions of ops whose finiteness check is still pending on the GPU, by tag. */
const pendingChecks = new Map<number, string>();

/**
 * Thrown in `debugNans` mode when an op produces NaN or ±Inf; the message
 * names the first such op.
 */
export class NonFiniteError extends Error {
  /**
   * Creates the error for the op described by `op`.
   * @param op The op and its shapes, as printed in the message.
   */
  constructor(op: string) {
    super(`debugNans: ${op} produced NaN or Inf`);
    this.name = "NonFiniteError";
  }
}

/**
 * Turns the NaN/Inf debug mode on or off (like JAX's `debug_nans`). When on,
 * every op's output is checked: on the CPU backend the op that produces a NaN
 * or ±Inf throws a `NonFiniteError` at once; on WebGPU the checks run on the
 * GPU and the next read (`data`, `array`, `item`, `sync`) throws, naming the
 * first op in program order whose output was not finite. Costs one extra
 * small kernel per op.
 *
 * @param enabled `true` to check every op, `false` to stop.
 * @example
 * ```ts
 * import { debugNans, tensor } from "littlegrad";
 * debugNans(true);
 * try {
 *   await tensor([1, -1]).log().sum().item();
 * } catch (err) {
 *   console.log((err as Error).message); // debugNans: log (output %2, shape [2]; ...) produced NaN or Inf
 * }
 * debugNans(false);
 * ```
 */
export function debugNans(enabled: boolean): void {
  debugNansEnabled = enabled;
}

function checkFinite(prim: Prim, inputs: readonly Tensor[], out: Tensor, view: View): void {
  const tag = ++debugTag;
  const what = `${prim} (output %${out.id}, shape ${shapeString(out.shape)}; inputs ${
    inputs.map((t) => `%${t.id} ${shapeString(t.shape)}`).join(", ")
  })`;
  const finite = view.storage.backend.checkFinite(view.storage, view.storage.size, tag);
  if (finite === false) {
    out.dispose();
    throw new NonFiniteError(what);
  }
  if (finite === undefined) pendingChecks.set(tag, what);
}

/** @internal Throws for a failed deferred check on `backend`, if any. */
export async function reportNonFinite(backend: Backend): Promise<void> {
  if (pendingChecks.size === 0) return;
  const tag = await backend.takeNonFinite();
  const what = tag === null ? undefined : pendingChecks.get(tag);
  pendingChecks.clear();
  if (what !== undefined) throw new NonFiniteError(what);
}

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
export function scalar(value: number, backend: Backend): Tensor {
  const storage = backend.upload(new Float32Array([value]));
  return new Tensor({ storage, shape: [], strides: [], offset: 0 });
}

function operand(
  op: string,
  x: Tensor | number,
  like: Tensor | number,
): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x !== "number") {
    throw new TypeError(
      `${op}: expected a Tensor or a number, got ${describe(x)}`,
    );
  }
  if (!(like instanceof Tensor)) {
    throw new TypeError(`${op}: at least one operand must be a Tensor`);
  }
  return scalar(x, backendOf(like, op));
}

/** @internal Short description of a value for error messages. */
export function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") {
    return (x as object).constructor?.name ?? "an object";
  }
  return `${typeof x} (${String(x)})`;
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
export function binary(op: Prim, a: Tensor | number, b: Tensor | number): Tensor {
  return composite(() => {
    const x = operand(op, a, b);
    const y = operand(op, b, a);
    const shape = broadcastShapes(op, x.shape, y.shape);
    const xs = sameShape(x.shape, shape) ? x : apply("broadcast", [x], { shape });
    const ys = sameShape(y.shape, shape) ? y : apply("broadcast", [y], { shape });
    return apply(op, [xs, ys]);
  });
}

function reduce(
  op: "sum" | "max",
  x: Tensor,
  axis: Axis | undefined,
  opts: ReduceOptions,
): Tensor {
  const axes = normalizeAxes(op, axis, x.ndim);
  return composite(() => {
    const out = axes.length === 0
      ? apply("reshape", [x], { shape: x.shape })
      : apply(op, [x], { axes });
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
  return composite(() => {
    const a2 = a.ndim === 1 ? a.reshape([1, k]) : a;
    const b2 = b.ndim === 1 ? b.reshape([k, 1]) : b;
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
  const out = shape.map((
    d,
  ) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d));
  if (sizeOf(out) !== x.size || out.some((d) => !Number.isInteger(d))) {
    throw new TypeError(
      `reshape: cannot reshape ${shapeString(x.shape)} (${x.size} elements) to ${
        shapeString(shape)
      }`,
    );
  }
  return out;
}
