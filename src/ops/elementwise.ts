/**
 * Elementwise ops: arithmetic and comparisons (with NumPy broadcasting and
 * weak-typed numbers), unary math, activations, `clip`, `astype` and
 * `where`. Each op is written once, here, against `apply`, and is both the
 * free function `mod.ts` exports (taking plain values too, see `_lift.ts`)
 * and what the `Tensor` methods of the same names delegate to. The
 * elementwise ops that are Tensor methods only (`reciprocal`, the logical
 * ops, `isnan` ...) are in `_elementwise.ts`.
 *
 * Depends on `_lift.ts`, `_operands.ts` and the core; the `Tensor` class imports this
 * module back (a safe cycle: nothing here touches an import at load time).
 * @module
 */

import { checkDType, type DType } from "../dtype.ts";
import { broadcastShapes } from "../shape.ts";
import { named } from "../core/errors.ts";
import { apply } from "../core/interpreter.ts";
import { composite } from "../core/scope.ts";
import { Tensor } from "../tensor.ts";
import { lift, liftedBinary, type TensorLike } from "./_lift.ts";
import {
  backendOf,
  binary,
  checkBackendDType,
  promoted,
  sameShape,
  truth,
  unary,
} from "./_operands.ts";

// ---- binary arithmetic and comparisons ---------------------------------------

/** `a + b` with broadcasting. @example `add(x, 1)` */
export function add(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("add", a, b);
}
/** `a - b` with broadcasting. @example `sub(x, y)` */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("sub", a, b);
}
/** `a * b` with broadcasting. @example `mul(x, 2)` */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("mul", a, b);
}
/** `a / b` with broadcasting. @example `div(x, y)` */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("div", a, b);
}
/** `a ** b` with broadcasting. @example `pow(x, 2)` */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("pow", a, b);
}
/** Elementwise maximum with broadcasting; ties split the gradient. @example `maximum(x, 0)` */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("maximum", a, b);
}
/** Elementwise minimum with broadcasting; ties split the gradient. @example `minimum(x, 1)` */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("minimum", a, b);
}
/** Floor division with Python's sign rule. @example `floorDiv(x, 2)` */
export function floorDiv(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("floordiv", a, b, "floorDiv");
}
/** Remainder with Python's sign rule. @example `mod(x, 3)` */
export function mod(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("mod", a, b);
}
/** `a < b` as `bool`. @example `lt(x, 0)` */
export function lt(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("lt", a, b);
}
/** `a <= b` as `bool`. @example `le(x, 0)` */
export function le(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("le", a, b);
}
/** `a > b` as `bool`. @example `gt(x, 0)` */
export function gt(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("lt", b, a, "gt");
}
/** `a >= b` as `bool`. @example `ge(x, 0)` */
export function ge(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("le", b, a, "ge");
}
/** `a == b` as `bool`. @example `eq(x, y)` */
export function eq(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("eq", a, b);
}
/** `a != b` as `bool` (NaN != NaN). @example `ne(x, y)` */
export function ne(a: TensorLike, b: TensorLike): Tensor {
  return liftedBinary("ne", a, b);
}

// ---- unary math --------------------------------------------------------------

/** `-x`. @example `neg(x)` */
export function neg(x: TensorLike): Tensor {
  return lift("neg", x, (x) => unary("neg", x));
}
/** `e ** x`. @example `exp(x)` */
export function exp(x: TensorLike): Tensor {
  return lift("exp", x, (x) => unary("exp", x));
}
/** Natural logarithm. @example `log(x)` */
export function log(x: TensorLike): Tensor {
  return lift("log", x, (x) => unary("log", x));
}
/** Square root. @example `sqrt(x)` */
export function sqrt(x: TensorLike): Tensor {
  return lift("sqrt", x, (x) => unary("sqrt", x));
}
/** Hyperbolic tangent. @example `tanh(x)` */
export function tanh(x: TensorLike): Tensor {
  return lift("tanh", x, (x) => unary("tanh", x));
}
/** Logistic sigmoid. @example `sigmoid(x)` */
export function sigmoid(x: TensorLike): Tensor {
  return lift("sigmoid", x, (x) => unary("sigmoid", x));
}
/** Absolute value. @example `abs(x)` */
export function abs(x: TensorLike): Tensor {
  return lift("abs", x, (x) => unary("abs", x));
}
/** Sign: -1, 0 or 1. @example `sign(x)` */
export function sign(x: TensorLike): Tensor {
  return lift("sign", x, (x) => unary("sign", x));
}
/** Sine. @example `sin(x)` */
export function sin(x: TensorLike): Tensor {
  return lift("sin", x, (x) => unary("sin", x));
}
/** Cosine. @example `cos(x)` */
export function cos(x: TensorLike): Tensor {
  return lift("cos", x, (x) => unary("cos", x));
}
/** Floor. @example `floor(x)` */
export function floor(x: TensorLike): Tensor {
  return lift("floor", x, (x) => unary("floor", x));
}
/** Ceiling. @example `ceil(x)` */
export function ceil(x: TensorLike): Tensor {
  return lift("ceil", x, (x) => unary("ceil", x));
}
/** Round half to even. @example `round(x)` */
export function round(x: TensorLike): Tensor {
  return lift("round", x, (x) => unary("round", x));
}
/** `log(1 + x)`. @example `log1p(x)` */
export function log1p(x: TensorLike): Tensor {
  return lift("log1p", x, (x) => unary("log1p", x));
}
/** `e^x - 1`. @example `expm1(x)` */
export function expm1(x: TensorLike): Tensor {
  return lift("expm1", x, (x) => unary("expm1", x));
}

// ---- compositions --------------------------------------------------------------

/** `max(x, 0)`; gradient 0 at 0 (as JAX and PyTorch). @example `relu(x)` */
export function relu(x: TensorLike): Tensor {
  return lift("relu", x, (x) => composite("relu", () => where(x.le(0), 0, x)));
}
/** Clamp to `[low, high]`. @example `clip(x, -1, 1)` */
export function clip(x: TensorLike, low: Tensor | number, high: Tensor | number): Tensor {
  return lift("clip", x, (x) => {
    const shapeOf = (t: Tensor | number) => (t instanceof Tensor ? t.shape : []);
    broadcastShapes("clip", broadcastShapes("clip", x.shape, shapeOf(low)), shapeOf(high));
    return composite(
      "clip",
      () => binary("minimum", binary("maximum", x, low, "clip"), high, "clip"),
    );
  });
}
/** `x²`. @example `square(x)` */
export function square(x: TensorLike): Tensor {
  return lift("square", x, (x) => named("square", () => x.mul(x)));
}
/** `log(1 + e^x)`, stable. @example `softplus(x)` */
export function softplus(x: TensorLike): Tensor {
  return lift(
    "softplus",
    x,
    (x) => composite("softplus", () => x.maximum(0).add(x.abs().neg().exp().log1p())),
  );
}
/** `max(x, slope·x)`. @example `leakyRelu(x, 0.1)` */
export function leakyRelu(x: TensorLike, slope = 0.01): Tensor {
  return lift("leakyRelu", x, (x) => {
    if (!(slope >= 0 && slope < 1)) {
      throw new RangeError(`leakyRelu: slope must be in [0, 1), got ${slope}`);
    }
    return composite("leakyRelu", () => x.maximum(x.mul(slope)));
  });
}
/** GELU (tanh approximation). @example `gelu(x)` */
export function gelu(x: TensorLike): Tensor {
  return lift("gelu", x, (x) =>
    composite("gelu", () => {
      const inner = x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
      return x.mul(inner.tanh().add(1)).mul(0.5);
    }));
}

// ---- conversion and selection ----------------------------------------------------

/** Conversion to another dtype. @example `astype(x, "int32")` */
export function astype(x: TensorLike, dtype: DType): Tensor {
  return lift("astype", x, (x) => {
    checkDType("astype", dtype);
    return named("astype", () => {
      if (dtype === x.dtype) return apply("reshape", [x], { shape: x.shape });
      checkBackendDType("astype", backendOf(x, "astype"), dtype);
      return apply("convert", [x], { dtype });
    });
  });
}

/**
 * Elementwise choice: `a` where `cond` is true, else `b`, with NumPy
 * broadcasting of all three and `a`, `b` promoted to one dtype. A `cond`
 * that is not `bool` counts non-zero as true (NaN too). `cond` gets no
 * gradient, and each branch gets the gradient only where it was chosen — so
 * a NaN or Inf in the branch not taken does not leak into gradients.
 *
 * @param cond The condition.
 * @param a Values where `cond` is true.
 * @param b Values where `cond` is false.
 * @returns The selected values.
 * @example
 * ```ts
 * import { tensor, where } from "littlegrad";
 * const x = tensor([-2, 3]);
 * console.log(await where(x.gt(0), x, 0).array()); // [0, 3]
 * ```
 */
export function where(cond: Tensor | number, a: Tensor | number, b: Tensor | number): Tensor {
  const like = [cond, a, b].find((t): t is Tensor => t instanceof Tensor);
  if (!like) throw new TypeError("where: at least one of cond, a and b must be a Tensor");
  return composite("where", () => {
    const c = truth("where", cond, like);
    const [x, y] = promoted("where", a, b, like);
    const shape = broadcastShapes("where", broadcastShapes("where", c.shape, x.shape), y.shape);
    const expand = (t: Tensor) =>
      sameShape(t.shape, shape) ? t : apply("broadcast", [t], { shape });
    return apply("where", [expand(c), expand(x), expand(y)]);
  });
}
