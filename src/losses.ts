/**
 * Loss functions, composed from the primitive ops.
 * @module
 */

import { tensor } from "./creation.ts";
import { composite } from "./core/scope.ts";
import { oneHot } from "./ops/indexing.ts";
import { Tensor } from "./tensor.ts";
import { shapeString } from "./shape.ts";

/**
 * Mean squared error `mean((pred - target)²)`, with broadcasting.
 *
 * @example
 * ```ts
 * import { mse, tensor } from "littlegrad";
 * console.log(await mse(tensor([1, 2]), tensor([1, 4])).item()); // 2
 * ```
 */
export function mse(pred: Tensor, target: Tensor | number): Tensor {
  return composite("mse", () => pred.sub(target).pow(2).mean());
}

/**
 * Softmax cross-entropy averaged over a batch: `logits` is `[batch, classes]`
 * and `labels` holds one integer class index per row (numbers, an
 * `Int32Array`, or a tensor: `int32`, or float values that are converted).
 * Numbers and `Int32Array`s are range-checked; a tensor of labels is not
 * (that would need a read from the GPU): an index outside `[0, classes)`
 * there contributes a loss of 0.
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropy, tensor } from "littlegrad";
 * const loss = softmaxCrossEntropy(tensor([[2, 0], [0, 2]]), [0, 1]);
 * console.log(await loss.item()); // ≈ 0.127
 * ```
 */
export function softmaxCrossEntropy(
  logits: Tensor,
  labels: Tensor | readonly number[] | Int32Array,
): Tensor {
  if (logits.ndim !== 2) {
    throw new TypeError(
      `softmaxCrossEntropy: logits must be [batch, classes], got shape ${
        shapeString(logits.shape)
      }`,
    );
  }
  const [batch, classes] = logits.shape;
  if (!(labels instanceof Tensor)) {
    const list = Array.from(labels);
    if (list.length !== batch) {
      throw new TypeError(
        `softmaxCrossEntropy: ${list.length} labels for a batch of ${batch}`,
      );
    }
    const bad = list.findIndex((c) => !Number.isInteger(c) || c < 0 || c >= classes);
    if (bad >= 0) {
      throw new RangeError(
        `softmaxCrossEntropy: label ${
          list[bad]
        } at index ${bad} is not a class index in [0, ${classes})`,
      );
    }
  } else if (labels.size !== batch) {
    throw new TypeError(
      `softmaxCrossEntropy: labels of shape ${shapeString(labels.shape)} for a batch of ${batch}`,
    );
  }
  return composite("softmaxCrossEntropy", () => {
    const backend = logits.backend;
    const ids = labels instanceof Tensor
      ? labels.astype("int32")
      : tensor(Array.from(labels), { backend, dtype: "int32" });
    const hot = oneHot(ids.reshape([batch]), classes, { dtype: logits.dtype });
    return hot.mul(logits.logSoftmax(-1)).sum(-1).mean().neg();
  });
}
