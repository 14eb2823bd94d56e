/**
 * Functional optimizers: they take parameters and gradients and return new
 * parameters, never touching their inputs.
 * @module
 */

import { describe, named } from "./core/errors.ts";
import { Tensor } from "./tensor.ts";
import { shapeString } from "./shape.ts";
import { disposeTree, treeMap } from "./tree.ts";
import { applyUpdates, sgd as optimSgd } from "./optimizers.ts";

/** Options of `sgd`. */
export interface SgdOptions {
  /** Learning rate. */
  lr: number;
}

/**
 * One step of plain stochastic gradient descent: `p - lr·g` for every leaf.
 * Returns a new tree; `params` and `grads` are left as they are (dispose
 * them when no longer needed). It is exactly one step of `optim.sgd(lr)`
 * from a fresh state (`update`, then `optim.applyUpdates`): the same
 * arithmetic, implemented once; use `optim.sgd` for momentum, weight decay
 * or a schedule.
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
  const op = "sgd";
  if (typeof opts?.lr !== "number" || !Number.isFinite(opts.lr)) {
    throw new TypeError(
      `${op}: opts.lr must be a finite number, got ${String(opts?.lr)}`,
    );
  }
  return named(op, () => {
    // Structure and shapes are checked first, in the caller's terms (params
    // and gradients rather than the optimizer's "updates").
    treeMap(
      (p: Tensor, g: unknown) => {
        if (!(g instanceof Tensor)) {
          throw new TypeError(`gradient is ${describe(g)}, not a Tensor`);
        }
        if (shapeString(p.shape) !== shapeString(g.shape)) {
          throw new TypeError(
            `gradient of shape ${shapeString(g.shape)} for a parameter of shape ${
              shapeString(p.shape)
            }`,
          );
        }
        return p;
      },
      params,
      grads,
    );
    const opt = optimSgd(opts.lr);
    // A fresh state with a number count (its `init` would put the count on
    // the device, as an int32 tensor): the plain step costs nothing for it.
    const [updates] = opt.update(grads, [{ count: 0 }], params);
    try {
      return applyUpdates(params, updates);
    } finally {
      disposeTree(updates);
    }
  });
}
