/**
 * The elementwise ops that are Tensor methods only (`mod.ts` exports no
 * free function for them): `reciprocal`, the logical ops (`logicalAnd`,
 * `logicalOr`, `logicalNot`, `logicalXor`: non-zero is true) and the value
 * tests `isnan`, `isinf`, `isfinite`. The `Tensor` methods of the same names
 * delegate to these functions; the free elementwise ops are in
 * `elementwise.ts`.
 *
 * Depends on `_operands.ts` and the core (it calls `Tensor` methods, imports
 * no values from `tensor.ts`).
 * @module
 */

import { isFloat } from "../dtype.ts";
import { named } from "../core/errors.ts";
import { composite } from "../core/scope.ts";
import type { Tensor } from "../tensor.ts";
import { binary, truth } from "./_operands.ts";

/** Elementwise `1 / x`. */
export function reciprocal(x: Tensor): Tensor {
  return binary("div", 1, x, "reciprocal");
}

// ---- logical ops ---------------------------------------------------------------

/** Elementwise logical and of `a` and `b` (non-zero is true), as `bool`. */
export function logicalAnd(a: Tensor, b: Tensor | number): Tensor {
  return composite(
    "logicalAnd",
    () => binary("mul", truth("logicalAnd", a), truth("logicalAnd", b, a)),
  );
}
/** Elementwise logical or of `a` and `b` (non-zero is true), as `bool`. */
export function logicalOr(a: Tensor, b: Tensor | number): Tensor {
  return composite(
    "logicalOr",
    () => binary("maximum", truth("logicalOr", a), truth("logicalOr", b, a)),
  );
}
/** Elementwise logical not (true where zero), as `bool`. */
export function logicalNot(x: Tensor): Tensor {
  return named("logicalNot", () => x.eq(0));
}
/** Elementwise logical exclusive or of `a` and `b` (non-zero is true), as `bool`. */
export function logicalXor(a: Tensor, b: Tensor | number): Tensor {
  return composite(
    "logicalXor",
    () => binary("ne", truth("logicalXor", a), truth("logicalXor", b, a)),
  );
}

// ---- value tests ----------------------------------------------------------------

/** Elementwise test for NaN, as `bool` (false for integers). */
export function isnan(x: Tensor): Tensor {
  return named("isnan", () => x.ne(x)); // for integers x != x is all false, in one kernel
}
/** Elementwise test for ±Infinity, as `bool` (false for integers). */
export function isinf(x: Tensor): Tensor {
  return composite("isinf", () => isFloat(x.dtype) ? x.abs().eq(Infinity) : x.isnan());
}
/** Elementwise test for a finite value, as `bool` (true for integers): `x - x` is 0 exactly then. */
export function isfinite(x: Tensor): Tensor {
  return composite("isfinite", () => isFloat(x.dtype) ? x.sub(x).eq(0) : x.eq(x));
}
