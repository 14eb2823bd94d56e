/**
 * Functional optimizers: they take parameters and gradients and return new
 * parameters, never touching their inputs.
 * @module
 */

import { scoped, type Tensor } from "./tensor.ts";
import { shapeString } from "./shape.ts";
import { treeMap, treeTensors } from "./tree.ts";

/** Options of `sgd`. */
export interface SgdOptions {
  /** Learning rate. */
  lr: number;
}

/**
 * One step of plain stochastic gradient descent: `p - lr·g` for every leaf.
 * Returns a new tree; `params` and `grads` are left as they are (dispose
 * them when no longer needed).
 *
 * @param params A tree of parameter tensors.
 * @param grads Gradients with the same structure (e.g. from `grad`).
 * @param opts `{ lr }`.
 * @returns The updated parameters.
 * @example
 * ```ts
 * import { sgd, tensor } from "littlegrad";
 * const params = { w: tensor([1, 2]) };
 * const next = sgd(params, { w: tensor([10, 10]) }, { lr: 0.1 });
 * console.log(await next.w.array()); // [0, 1]
 * ```
 */
export function sgd<P>(
  params: P,
  grads: unknown,
  opts: SgdOptions,
): P {
  if (typeof opts?.lr !== "number" || !Number.isFinite(opts.lr)) {
    throw new TypeError(
      `sgd: opts.lr must be a finite number, got ${String(opts?.lr)}`,
    );
  }
  return scoped(
    () =>
      treeMap(
        (p: Tensor, g: Tensor) => {
          if (shapeString(p.shape) !== shapeString(g.shape)) {
            throw new TypeError(
              `sgd: gradient of shape ${shapeString(g.shape)} for a parameter of shape ${
                shapeString(p.shape)
              }`,
            );
          }
          return p.sub(g.mul(opts.lr));
        },
        params,
        grads,
      ) as P,
    (tree) => treeTensors(tree),
  );
}
