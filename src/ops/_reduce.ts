/**
 * The log-step scan behind `cumsum` and `cumprod` (`reduce.ts`), which
 * `prod`'s VJP rule uses too. Internal: not exported from `mod.ts`.
 * Depends on the core only (it calls `Tensor` methods, imports no values
 * from `tensor.ts`).
 * @module
 */

import { apply } from "../core/interpreter.ts";
import type { Tensor } from "../tensor.ts";

/**
 * @internal Inclusive scan along axis `a` with `add` or `mul`: ⌈log₂ d⌉ rounds
 * of combining the values with themselves shifted by 1, 2, 4, ... (the shift
 * a slice and a pad with the identity), so it is differentiable through
 * those primitives and exact for integers.
 */
export function scan(x: Tensor, a: number, op: "add" | "mul"): Tensor {
  const d = x.shape[a];
  let out = x;
  for (let shift = 1; shift < d; shift *= 2) {
    const head = apply("slice", [out], {
      shape: out.shape.map((n, k) => (k === a ? n - shift : n)),
      starts: out.shape.map(() => 0),
      steps: out.shape.map(() => 1),
    });
    const widths = out.shape.map((_, k): [number, number] => (k === a ? [shift, 0] : [0, 0]));
    const shifted = head.pad(widths, op === "add" ? 0 : 1);
    out = op === "add" ? out.add(shifted) : out.mul(shifted);
  }
  // Always a fresh tensor, even when there was nothing to combine.
  return apply("reshape", [out], { shape: out.shape });
}
