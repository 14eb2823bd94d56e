/**
 * The indexing ops that are Tensor methods only (`mod.ts` exports no free
 * function for them): NumPy-style basic indexing as views (`get`, `slice`,
 * `flip`) and `takeAlongAxis`; and `clampIndices`, the rule by which `take`
 * reads its indices, which `take`'s VJP rule uses too. The free indexing
 * ops (`take`, `oneHot`) are in `indexing.ts`. The `Tensor` methods of the
 * same names delegate to these functions.
 *
 * Depends on `_operands.ts`, `elementwise.ts` (`where`) and the core; the
 * `Tensor` class imports this module back (a safe cycle: nothing here
 * touches an import at load time).
 * @module
 */

import { normalizeAxes, quoteValue, shapeString, sizeOf } from "../shape.ts";
import { describe, named } from "../core/errors.ts";
import { apply } from "../core/interpreter.ts";
import { composite, scoped } from "../core/scope.ts";
import { Tensor } from "../tensor.ts";
import { backendOf, fromHost, indexTensor } from "./_operands.ts";
import { where } from "./elementwise.ts";
import type { Axis } from "./reduce.ts";

/**
 * One entry of a `get` index, as in NumPy's basic indexing: an integer picks
 * one position and drops the axis; `[start, stop, step]` (each optional,
 * `null` for the default, negatives count from the end, `step` ≥ 1) keeps a
 * range; `null` inserts a new axis of size 1; `"..."` stands for every axis
 * not otherwise indexed.
 */
export type Index = number | readonly (number | null | undefined)[] | null | "...";

/**
 * NumPy-style basic indexing of `x`, as a view (see `Tensor.get`):
 * integers, ranges with steps, negative indices, new axes and an ellipsis.
 */
export function get(x: Tensor, ...index: Index[]): Tensor {
  const ellipses = index.filter((e) => e === "...").length;
  if (ellipses > 1) throw new TypeError("get: an index can have at most one '...'");
  const consuming = index.filter((e) => e !== null && e !== "...").length;
  if (consuming > x.ndim) {
    throw new RangeError(
      `get: ${consuming} indices for a tensor of rank ${x.ndim} (shape ${shapeString(x.shape)})`,
    );
  }
  const full = index.flatMap((e) => e === "..." ? Array<Index>(x.ndim - consuming).fill([]) : [e]);
  while (full.filter((e) => e !== null).length < x.ndim) full.push([]);
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
    const d = x.shape[axis];
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
        ? apply("slice", [x], { shape: sliced, starts, steps }).flip(flips)
        : apply("slice", [x], { shape: sliced, starts, steps })).reshape(result),
  );
}

/** A strided window of `x`, one range per leading axis (see `Tensor.slice`). */
export function slice(
  x: Tensor,
  starts: readonly number[],
  stops?: readonly (number | null)[],
  opts: { steps?: readonly number[] } = {},
): Tensor {
  const steps = opts.steps;
  for (const [name, list] of [["starts", starts], ["stops", stops], ["steps", steps]] as const) {
    if (list !== undefined && (!Array.isArray(list) || list.length > x.ndim)) {
      throw new TypeError(
        `slice: ${name} must be an array of at most ${x.ndim} entries (shape ${
          shapeString(x.shape)
        }), got ${Array.isArray(list) ? `${list.length} entries` : describe(list)}`,
      );
    }
  }
  if (stops && stops.length !== starts.length || steps && steps.length !== starts.length) {
    throw new TypeError("slice: starts, stops and steps must have the same length");
  }
  return named(
    "slice",
    () => x.get(...starts.map((start, k) => [start, stops?.[k] ?? null, steps?.[k] ?? 1])),
  );
}

/** `x` with the order of elements reversed along `axis` (all axes when omitted). A view. */
export function flip(x: Tensor, axis?: Axis): Tensor {
  const axes = normalizeAxes("flip", axis, x.ndim);
  return apply("flip", [x], { axes });
}

/**
 * One entry of `x` per position along `axis`, like `numpy.take_along_axis`
 * (see `Tensor.takeAlongAxis`).
 */
export function takeAlongAxis(x: Tensor, indices: Tensor, axis: number): Tensor {
  const [a] = normalizeAxes("takeAlongAxis", axis, x.ndim);
  const bad = !(indices instanceof Tensor) || indices.ndim !== x.ndim ||
    indices.shape.some((d, k) => k !== a && d !== x.shape[k]);
  if (bad) {
    throw new TypeError(
      `takeAlongAxis: indices must be a tensor of shape ${shapeString(x.shape)} except along ` +
        `axis ${a}, got ${
          indices instanceof Tensor ? shapeString(indices.shape) : describe(indices)
        }`,
    );
  }
  return composite("takeAlongAxis", () => {
    // Flat positions: the index along `axis`, the position elsewhere.
    const ids = clampIndices(indexTensor("takeAlongAxis", indices, x), x.shape[a]);
    const strides = x.shape.map((_, k) => sizeOf(x.shape.slice(k + 1)));
    let flat = ids.mul(strides[a]);
    for (let k = 0; k < x.ndim; k++) {
      if (k === a || x.shape[k] === 1) continue;
      const at = fromHost(
        Int32Array.from({ length: x.shape[k] }, (_, i) => i * strides[k]),
        x.shape.map((d, m) => (m === k ? d : 1)),
        backendOf(x, "takeAlongAxis"),
      );
      flat = flat.add(at);
    }
    return x.take(flat);
  });
}

/**
 * @internal Integer indices into an axis of length `n` as `take` reads them:
 * negative ones count from the end, then everything is clamped to `[0, n)`.
 */
export function clampIndices(ids: Tensor, n: number): Tensor {
  return scoped(() => where(ids.lt(0), ids.add(n), ids).clip(0, Math.max(n - 1, 0)), (t) => [t]);
}
