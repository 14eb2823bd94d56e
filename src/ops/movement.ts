/**
 * Movement ops, which change a tensor's shape or layout but not its values:
 * `reshape`, `transpose`, `broadcastTo`, `squeeze`, `expandDims`, `flatten`
 * (views, no copy), `pad`, `split`, and joining (`concat`, `stack`), plus
 * `stopGradient` (the same view as a new handle the transforms treat as a
 * constant). Each op is written once, here, and is both the free function
 * `mod.ts` exports (the single-tensor ops take plain values too, see
 * `_lift.ts`) and what the `Tensor` methods of the same names delegate to.
 * The views that are Tensor methods only (`get`, `slice`, `flip`) are in
 * `_indexing.ts`.
 *
 * Depends on `_lift.ts`, `_operands.ts` and the core; the `Tensor` class imports this
 * module back (a safe cycle: nothing here touches an import at load time).
 * @module
 */

import { holds, valueRange } from "../dtype.ts";
import { checkShape, normalizeAxes, type Shape, shapeString, sizeOf } from "../shape.ts";
import { named } from "../core/errors.ts";
import { apply } from "../core/interpreter.ts";
import { composite } from "../core/scope.ts";
import { Tensor } from "../tensor.ts";
import { lift, type TensorLike } from "./_lift.ts";
import { sameShape } from "./_operands.ts";
import type { Index } from "./_indexing.ts";
import type { Axis } from "./reduce.ts";

// ---- reshaping -------------------------------------------------------------------

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

/** Same data, new shape. @example `reshape(x, [2, -1])` */
export function reshape(x: TensorLike, shape: Shape): Tensor {
  return lift("reshape", x, (x) => {
    checkReshapeArgs(shape);
    const inferred = inferShape(x, shape);
    return apply("reshape", [x], { shape: inferred });
  });
}

/** Remove size-1 axes. @example `squeeze(x)` */
export function squeeze(x: TensorLike, axis?: Axis): Tensor {
  return lift("squeeze", x, (x) => {
    const axes = axis === undefined
      ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : normalizeAxes("squeeze", axis, x.ndim);
    for (const a of axes) {
      if (x.shape[a] !== 1) {
        throw new RangeError(
          `squeeze: axis ${a} has size ${x.shape[a]}, not 1 (shape ${shapeString(x.shape)})`,
        );
      }
    }
    return x.reshape(x.shape.filter((_, i) => !axes.includes(i)));
  });
}

/** Insert a size-1 axis. @example `expandDims(x, 0)` */
export function expandDims(x: TensorLike, axis: number): Tensor {
  return lift("expandDims", x, (x) => {
    const [a] = normalizeAxes("expandDims", axis, x.ndim + 1);
    return x.reshape([...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
  });
}

/** Flatten a range of axes. @example `flatten(x, 1)` */
export function flatten(x: TensorLike, start = 0, end = -1): Tensor {
  return lift("flatten", x, (x) => {
    if (x.ndim === 0) return x.reshape([1]);
    const [s] = normalizeAxes("flatten", start, x.ndim);
    const [e] = normalizeAxes("flatten", end, x.ndim);
    if (s > e) throw new RangeError(`flatten: start axis ${start} comes after end axis ${end}`);
    const middle = sizeOf(x.shape.slice(s, e + 1));
    return x.reshape([...x.shape.slice(0, s), middle, ...x.shape.slice(e + 1)]);
  });
}

// ---- permuting and broadcasting ----------------------------------------------------

/** Permute axes. @example `transpose(x, [1, 0])` */
export function transpose(x: TensorLike, perm?: readonly number[]): Tensor {
  return lift("transpose", x, (x) => {
    const p = perm ?? [...x.shape.keys()].reverse();
    const sorted = [...p].sort((a, b) => a - b);
    if (p.length !== x.ndim || sorted.some((v, i) => v !== i)) {
      throw new RangeError(
        `transpose: permutation ${
          shapeString(p)
        } is not a permutation of the ${x.ndim} axes of a tensor of shape ${shapeString(x.shape)}`,
      );
    }
    return apply("transpose", [x], { perm: p });
  });
}

function tryBroadcast(from: Shape, to: Shape): boolean {
  const lead = to.length - from.length;
  return from.every((d, i) => d === 1 || d === to[lead + i]);
}

/** Broadcast to a shape. @example `broadcastTo(b, [4, 3])` */
export function broadcastTo(x: TensorLike, shape: Shape): Tensor {
  return lift("broadcastTo", x, (x) => {
    checkShape("broadcastTo", shape);
    const target = [...shape];
    const result = shape.length >= x.ndim ? tryBroadcast(x.shape, target) : false;
    if (!result) {
      throw new TypeError(
        `broadcastTo: cannot broadcast shape ${shapeString(x.shape)} to ${shapeString(shape)}`,
      );
    }
    if (sameShape(x.shape, target)) {
      return apply("reshape", [x], { shape: target });
    }
    return apply("broadcast", [x], { shape: target });
  });
}

// ---- padding and splitting -----------------------------------------------------------

/** Constant padding. @example `pad(x, [[1, 1], [0, 0]])` */
export function pad(
  x: TensorLike,
  widths: readonly (readonly [number, number])[] | readonly [number, number],
  value = 0,
): Tensor {
  return lift("pad", x, (x) => {
    const isPair = (p: unknown) =>
      Array.isArray(p) && p.length === 2 && p.every((w) => Number.isInteger(w) && w >= 0);
    // One pair (its first entry is a number) applies to every axis.
    const pairs =
      (typeof widths[0] === "number" ? Array(x.ndim).fill(widths) : widths) as readonly (readonly [
        number,
        number,
      ])[];
    if (!Array.isArray(pairs) || pairs.length !== x.ndim || !pairs.every(isPair)) {
      throw new RangeError(
        `pad: widths must be ${x.ndim} pairs of non-negative integers for shape ${
          shapeString(x.shape)
        }, got ${JSON.stringify(widths)}`,
      );
    }
    // An integer or bool tensor takes a fill that fits it, as other ops take numbers.
    if (!holds(x.dtype, value)) {
      const [lo, hi] = valueRange(x.dtype);
      throw new RangeError(
        `pad: the fill value ${value} does not fit dtype ${x.dtype} (an integer in [${lo}, ${hi}])`,
      );
    }
    return apply("pad", [x], {
      shape: x.shape.map((d, k) => d + pairs[k][0] + pairs[k][1]),
      starts: pairs.map((p) => p[0]),
      steps: pairs.map(() => 1),
      fill: value,
    });
  });
}

/** Split along an axis. @example `split(x, 2, 1)` */
export function split(x: TensorLike, sections: number | readonly number[], axis = 0): Tensor[] {
  return lift("split", x, (x) => {
    const [a] = normalizeAxes("split", axis, x.ndim);
    const d = x.shape[a];
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
      () => bounds.slice(1).map((end, i) => x.get(...Array<Index>(a).fill([]), [bounds[i], end])),
    );
  });
}

// ---- joining -----------------------------------------------------------------------------

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

// ---- cutting the graph -------------------------------------------------------------------

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
  return apply("stopGradient", [x]);
}
