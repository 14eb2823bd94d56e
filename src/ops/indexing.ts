/**
 * Gathering ops: `take` (entries at integer indices along an axis, like
 * `numpy.take`) and `oneHot`. Each op is written once, here, and is the
 * free function `mod.ts` exports (`take` takes plain values too, see
 * `_lift.ts`); the `Tensor` method `take` delegates to it. The indexing ops
 * that are Tensor methods only (`get`, `slice`, `flip`, `takeAlongAxis`)
 * are in `_indexing.ts`.
 *
 * Depends on `_lift.ts`, `_operands.ts` and the core; the `Tensor` class imports this
 * module back (a safe cycle: nothing here touches an import at load time).
 * @module
 */

import type { DType } from "../dtype.ts";
import { normalizeAxes, shapeString } from "../shape.ts";
import { describe } from "../core/errors.ts";
import { apply } from "../core/interpreter.ts";
import { composite } from "../core/scope.ts";
import { Tensor } from "../tensor.ts";
import { lift, type TensorLike } from "./_lift.ts";
import { backendOf, fromHost, indexTensor } from "./_operands.ts";

/** Entries at integer indices along an axis, like `numpy.take`. @example `take(table, ids, 0)` */
export function take(
  x: TensorLike,
  indices: Tensor | readonly number[] | Int32Array,
  axis?: number,
): Tensor {
  return lift("take", x, (x) => {
    if (axis === undefined) return composite("take", () => x.reshape([-1]).take(indices, 0));
    const [a] = normalizeAxes("take", axis, x.ndim);
    return composite("take", () => {
      const ids = indexTensor("take", indices, x);
      if (x.shape[a] === 0 && ids.size > 0) {
        throw new RangeError(
          `take: cannot take from axis ${a} of size 0 (shape ${shapeString(x.shape)})`,
        );
      }
      return apply("gather", [x, ids], { axis: a });
    });
  });
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
