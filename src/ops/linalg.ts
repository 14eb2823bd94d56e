/**
 * Linear algebra: `matmul`, with NumPy semantics (2-D, batched with
 * broadcast batch axes, 1-D operands as vectors). Written once, here, as
 * the free function `mod.ts` exports (taking plain values too, see
 * `_lift.ts`), which the `Tensor` method `matmul` delegates to.
 *
 * Depends on `_lift.ts`, `_operands.ts` and the core; imports only the
 * `Tensor` type.
 * @module
 */

import { isFloat, promoteTypes } from "../dtype.ts";
import { broadcastShapes, shapeString } from "../shape.ts";
import { apply } from "../core/interpreter.ts";
import { composite } from "../core/scope.ts";
import type { Tensor } from "../tensor.ts";
import { lifted, type TensorLike } from "./_lift.ts";
import { sameShape } from "./_operands.ts";

/** Matrix product (2-D, batched, or with 1-D operands). @example `matmul(x, w)` */
export function matmul(a: TensorLike, b: TensorLike): Tensor {
  return lifted("matmul", [a, b], ([a, b]) => product(a, b));
}

/** The product of two tensors (see `matmul`). */
function product(a: Tensor, b: Tensor): Tensor {
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
