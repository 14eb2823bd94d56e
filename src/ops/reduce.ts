/**
 * Reductions and the ops built on them: `sum`, `prod`, `max`, `min`,
 * `mean`, `variance`, `std`, `logsumexp`, `argmax`, `argmin`, the
 * cumulative `cumsum` and `cumprod` (a log-step scan, `_reduce.ts`), and the
 * normalisations `softmax` and `logSoftmax`. Each op is written once, here,
 * and is both the free function `mod.ts` exports (taking plain values too,
 * see `_lift.ts`) and what the `Tensor` methods of the same names (`var`
 * for `variance`) delegate to.
 *
 * Depends on `_lift.ts`, `_operands.ts`, `_reduce.ts`, `elementwise.ts` (`where`),
 * `movement.ts` (`stopGradient`) and the core; the `Tensor` class imports
 * this module back (a safe cycle: nothing here touches an import at load
 * time).
 * @module
 */

import { accumulationDType } from "../dtype.ts";
import { normalizeAxes, shapeString, sizeOf } from "../shape.ts";
import { apply } from "../core/interpreter.ts";
import { composite } from "../core/scope.ts";
import type { Tensor } from "../tensor.ts";
import { lift, type TensorLike } from "./_lift.ts";
import { backendOf, fromHost, inFloat32, toFloat, widenInt } from "./_operands.ts";
import { scan } from "./_reduce.ts";
import { where } from "./elementwise.ts";
import { stopGradient } from "./movement.ts";

/** One axis or several; `undefined` means all axes. */
export type Axis = number | readonly number[];

/** Options of the reductions `sum`, `max` and `mean`. */
export interface ReduceOptions {
  /** Keep reduced axes as size-1 axes (default `false`). */
  keepdims?: boolean;
}

/** A reduction primitive over `axis`, with its accumulation dtype and `keepdims`. */
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

// ---- reductions --------------------------------------------------------------

/** Sum over axes. @example `sum(x, 1, { keepdims: true })` */
export function sum(x: TensorLike, axis?: Axis, opts: ReduceOptions = {}): Tensor {
  return lift("sum", x, (x) => reduce("sum", x, axis, opts));
}
/** Product over axes (`int8`/`bool` give `int32`). @example `prod(x, 1)` */
export function prod(x: TensorLike, axis?: Axis, opts: ReduceOptions = {}): Tensor {
  return lift("prod", x, (x) => reduce("prod", x, axis, opts));
}
/** Maximum over axes. @example `max(x, -1)` */
export function max(x: TensorLike, axis?: Axis, opts: ReduceOptions = {}): Tensor {
  return lift("max", x, (x) => reduce("max", x, axis, opts));
}
/** Minimum over axes. @example `min(x, 0)` */
export function min(x: TensorLike, axis?: Axis, opts: ReduceOptions = {}): Tensor {
  return lift("min", x, (x) => reduce("min", x, axis, opts));
}
/** Mean over axes. @example `mean(x)` */
export function mean(x: TensorLike, axis?: Axis, opts: ReduceOptions = {}): Tensor {
  return lift("mean", x, (x) => {
    const axes = normalizeAxes("mean", axis, x.ndim);
    const count = sizeOf(axes.map((a) => x.shape[a]));
    return composite("mean", () => inFloat32(toFloat(x), (v) => v.sum(axes, opts).div(count)));
  });
}
/** Variance over axes. @example `variance(x, 1)` */
export function variance(
  x: TensorLike,
  axis?: Axis,
  opts: ReduceOptions & { ddof?: number } = {},
): Tensor {
  return lift("variance", x, (x) => {
    const axes = normalizeAxes("var", axis, x.ndim);
    const n = sizeOf(axes.map((a) => x.shape[a]));
    const ddof = opts.ddof ?? 0;
    return composite("var", () =>
      inFloat32(toFloat(x), (v) => {
        const centered = v.sub(v.mean(axes, { keepdims: true }));
        return centered.square().sum(axes, { keepdims: opts.keepdims }).div(n - ddof);
      }));
  });
}
/** Standard deviation over axes. @example `std(x)` */
export function std(
  x: TensorLike,
  axis?: Axis,
  opts: ReduceOptions & { ddof?: number } = {},
): Tensor {
  return lift("std", x, (x) => composite("std", () => x.var(axis, opts).sqrt()));
}
/** Stable `log(sum(exp(x)))` over axes. @example `logsumexp(x, -1)` */
export function logsumexp(x: TensorLike, axis?: Axis, opts: ReduceOptions = {}): Tensor {
  return lift("logsumexp", x, (x) => {
    const axes = normalizeAxes("logsumexp", axis, x.ndim);
    if (axes.some((a) => x.shape[a] === 0)) {
      // An empty sum: log(0) = -inf, with no maximum to shift by.
      return composite("logsumexp", () => x.exp().sum(axes, opts).log());
    }
    return composite("logsumexp", () => {
      // Shift by the maximum; an infinite maximum (all -inf, or a +inf) shifts
      // by 0 instead, so the result is ±inf as in JAX, not inf - inf = NaN.
      const max = stopGradient(x.max(axes, { keepdims: true }));
      const m = where(max.abs().lt(Infinity), max, 0);
      const out = x.sub(m).exp().sum(axes, { keepdims: true }).log().add(m);
      return opts.keepdims ? out : out.reshape(x.shape.filter((_, i) => !axes.includes(i)));
    });
  });
}

// ---- indices of extremes --------------------------------------------------------

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

/** Index of the maximum along an axis, as `int32`. @example `argmax(logits, -1)` */
export function argmax(x: TensorLike, axis = -1, opts: ReduceOptions = {}): Tensor {
  return lift("argmax", x, (x) => argExtreme("argmax", x, axis, opts));
}
/** Index of the minimum along an axis, as `int32`. @example `argmin(x, 0)` */
export function argmin(x: TensorLike, axis = -1, opts: ReduceOptions = {}): Tensor {
  return lift("argmin", x, (x) => argExtreme("argmin", x, axis, opts));
}

// ---- cumulative --------------------------------------------------------------------

/** Cumulative sum along an axis. @example `cumsum(x, 0)` */
export function cumsum(x: TensorLike, axis = -1): Tensor {
  return lift("cumsum", x, (x) => {
    const [a] = normalizeAxes("cumsum", axis, x.ndim);
    return composite("cumsum", () => scan(widenInt(x), a, "add"));
  });
}
/** Cumulative product along an axis. @example `cumprod(x, 0)` */
export function cumprod(x: TensorLike, axis = -1): Tensor {
  return lift("cumprod", x, (x) => {
    const [a] = normalizeAxes("cumprod", axis, x.ndim);
    return composite("cumprod", () => scan(widenInt(x), a, "mul"));
  });
}

// ---- normalisation -------------------------------------------------------------------

/**
 * `x` minus its maximum over `axes` (held constant for the gradient), the
 * shift that keeps softmax from overflowing. A tensor with no elements has
 * no maximum to take (and nothing to overflow): it is returned as it is.
 */
function shiftByMax(x: Tensor, axes: number[]): Tensor {
  if (x.size === 0) return x;
  return x.sub(stopGradient(x.max(axes, { keepdims: true })));
}

/** Softmax along an axis. @example `softmax(logits)` */
export function softmax(x: TensorLike, axis = -1): Tensor {
  return lift("softmax", x, (x) => {
    const ax = normalizeAxes("softmax", axis, x.ndim);
    return composite("softmax", () => {
      const shifted = shiftByMax(x, ax);
      const e = shifted.exp();
      return e.div(e.sum(ax, { keepdims: true }));
    });
  });
}
/** Log-softmax along an axis. @example `logSoftmax(logits)` */
export function logSoftmax(x: TensorLike, axis = -1): Tensor {
  return lift("logSoftmax", x, (x) => {
    const ax = normalizeAxes("logSoftmax", axis, x.ndim);
    return composite("logSoftmax", () => {
      const shifted = shiftByMax(x, ax);
      return shifted.sub(shifted.exp().sum(ax, { keepdims: true }).log());
    });
  });
}
