/**
 * How the ops' operands meet a primitive, shared by the op families: the
 * backend and dtype checks, scalars for plain numbers, weak typing and
 * promotion (`promoted`), the dtype policy of unary and binary primitives
 * (`unary`, `binary`: what `DTYPE_POLICY` says about floats and bools), and
 * index operands (`indexTensor`).
 *
 * Internal: nothing here is exported from `mod.ts`. Depends on the core
 * (`apply`, `hostTensor`, scopes, error naming) and on the `Tensor` class
 * (`instanceof`, methods), which imports the op families back; nothing here
 * touches an import at load time, so the cycle is safe.
 * @module
 */

import type { Backend } from "../backend.ts";
import {
  computesInFloat,
  convertNumber,
  type DType,
  hostArrayClass,
  isFloat,
  isIdentityOnIntegers,
  promoteTypes,
  refusesBool,
  weakDType,
  weakKindDType,
} from "../dtype.ts";
import type { Prim } from "../primitives.ts";
import { broadcastShapes, type Shape, shapeString } from "../shape.ts";
import { describe } from "../core/errors.ts";
import { apply, hostTensor, weakTensors } from "../core/interpreter.ts";
import { composite } from "../core/scope.ts";
import { Tensor } from "../tensor.ts";

// ---- backends and scalars ----------------------------------------------------

/** @internal The backend object of `t`; a disposed `t` gets an error naming `op`. */
export function backendOf(t: Tensor, op: string): Backend {
  return t.view(op).storage.backend;
}

/**
 * @internal A scalar tensor holding `value` on `backend`. Ops create these
 * for plain-number operands inside their own scope, so they are released
 * with the op's other temporaries.
 */
export function scalar(value: number, backend: Backend, dtype: DType = "float32"): Tensor {
  return hostTensor(new (hostArrayClass(dtype))([convertNumber(value, dtype)]), dtype, [], backend);
}

/** @internal A tensor holding host data (a `Float32Array` or `Int32Array`) on `backend`. */
export function fromHost(data: Float32Array | Int32Array, shape: Shape, backend: Backend): Tensor {
  return hostTensor(data, data instanceof Int32Array ? "int32" : "float32", shape, backend);
}

/** @internal Throws a `TypeError` naming the op if `backend` cannot hold `dtype`. */
export function checkBackendDType(op: string, backend: Backend, dtype: DType): void {
  if (!backend.dtypes.includes(dtype)) {
    throw new TypeError(
      `${op}: dtype ${dtype} needs the WebGPU feature 'shader-f16', which this adapter ` +
        `(${backend.adapter}) lacks; use float32, or the CPU backend, which emulates float16`,
    );
  }
}

// ---- promotion -----------------------------------------------------------------

/**
 * @internal Two operands (tensors, or numbers as weak types) converted to
 * their promoted dtype; at least one of `a`, `b`, `like` is a tensor.
 */
export function promoted(
  op: string,
  a: Tensor | number,
  b: Tensor | number,
  like: Tensor | number,
): [Tensor, Tensor] {
  for (const x of [a, b]) {
    if (!(x instanceof Tensor) && typeof x !== "number") {
      throw new TypeError(`${op}: expected a Tensor or a number, got ${describe(x)}`);
    }
  }
  const ref = a instanceof Tensor ? a : b instanceof Tensor ? b : like;
  if (!(ref instanceof Tensor)) throw new TypeError(`${op}: at least one operand must be a Tensor`);
  // A number takes the other operand's dtype (weak typing); two numbers
  // alone (where(c, 1, 0)) take the defaults, int32 or float32. A traced
  // scalar standing for a number (jit's dynamic numbers) is weak the same way.
  const weak = (x: Tensor | number) => x instanceof Tensor ? weakTensors.get(x) : undefined;
  const strong = a instanceof Tensor && !weak(a)
    ? a.dtype
    : b instanceof Tensor && !weak(b)
    ? b.dtype
    : "bool";
  const typeOf = (x: Tensor | number) => {
    if (!(x instanceof Tensor)) return weakDType(op, x, strong);
    const kind = weak(x);
    return kind ? weakKindDType(op, kind, strong) : x.dtype;
  };
  const dtype = promoteTypes(typeOf(a), typeOf(b));
  const backend = backendOf(ref, op);
  const cast = (x: Tensor | number) =>
    x instanceof Tensor ? (x.dtype === dtype ? x : x.astype(dtype)) : scalar(x, backend, dtype);
  return [cast(a), cast(b)];
}

/** @internal `x` as a bool tensor (non-zero is true); a number becomes a bool scalar. */
export function truth(op: string, x: Tensor | number, like?: Tensor | number): Tensor {
  if (x instanceof Tensor) return x.dtype === "bool" ? x : x.astype("bool");
  if (typeof x !== "number") {
    throw new TypeError(`${op}: expected a Tensor or a number, got ${describe(x)}`);
  }
  if (!(like instanceof Tensor)) {
    throw new TypeError(`${op}: at least one operand must be a Tensor`);
  }
  return scalar(x !== 0 ? 1 : 0, backendOf(like, op), "bool");
}

/** @internal `x` itself if floating, else converted to float32 (JAX's rule for transcendental ops). */
export function toFloat(x: Tensor): Tensor {
  return isFloat(x.dtype) ? x : x.astype("float32");
}

/** @internal `f(x)`, computed in float32 when `x` is float16 and rounded back at the end. */
export function inFloat32(x: Tensor, f: (x: Tensor) => Tensor): Tensor {
  return x.dtype === "float16" ? f(x.astype("float32")).astype("float16") : f(x);
}

/** @internal `x` with `int8` and `bool` widened to `int32` (what sums accumulate in). */
export function widenInt(x: Tensor): Tensor {
  return x.dtype === "int8" || x.dtype === "bool" ? x.astype("int32") : x;
}

/** @internal Whether two shapes are equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// ---- elementwise primitives with their dtype policy ------------------------------

/**
 * @internal Broadcasts both operands (tensors or numbers) to a common shape,
 * then applies a binary primitive.
 */
export function binary(
  op: Prim,
  a: Tensor | number,
  b: Tensor | number,
  name: string = op,
): Tensor {
  return composite(name, () => {
    let [x, y] = promoted(name, a, b, a);
    // Dtype first: float operands (the common case) skip the policy lookups.
    if (!isFloat(x.dtype) && computesInFloat(op)) [x, y] = [toFloat(x), toFloat(y)];
    if (x.dtype === "bool" && refusesBool(op)) {
      throw new TypeError(
        "sub: subtracting bool tensors is not supported (as in NumPy); use a.ne(b) for " +
          'exclusive or, or cast with astype("int32")',
      );
    }
    const shape = broadcastShapes(name, x.shape, y.shape);
    const xs = sameShape(x.shape, shape) ? x : apply("broadcast", [x], { shape });
    const ys = sameShape(y.shape, shape) ? y : apply("broadcast", [y], { shape });
    return apply(op, [xs, ys]);
  });
}

/** @internal Applies a unary elementwise primitive with its dtype policy (`DTYPE_POLICY`). */
export function unary(op: Prim, x: Tensor): Tensor {
  if (!isFloat(x.dtype) && computesInFloat(op)) {
    return composite(op, () => apply(op, [toFloat(x)]));
  }
  if (!isFloat(x.dtype) && isIdentityOnIntegers(op)) {
    return apply("reshape", [x], { shape: x.shape });
  }
  if (x.dtype === "bool" && refusesBool(op)) {
    throw new TypeError("neg: negating a bool tensor is not supported; use logicalNot()");
  }
  return apply(op, [x]);
}

// ---- index operands --------------------------------------------------------------

/** @internal `indices` as an int32 tensor on `like`'s backend, or a clear error. */
export function indexTensor(op: string, indices: unknown, like: Tensor): Tensor {
  if (indices instanceof Tensor) {
    if (indices.dtype === "int32") return indices;
    if (indices.dtype === "int8") return indices.astype("int32");
    throw new TypeError(
      `${op}: indices must be an integer tensor, got ${indices.dtype}${
        shapeString(indices.shape)
      }; cast with astype("int32")`,
    );
  }
  if (!Array.isArray(indices) && !(indices instanceof Int32Array)) {
    throw new TypeError(
      `${op}: indices must be a Tensor, an array of integers or an Int32Array, got ${
        describe(indices)
      }`,
    );
  }
  const list = Array.from(indices as ArrayLike<number>);
  const bad = list.findIndex((i) => !Number.isInteger(i) || i < -(2 ** 31) || i > 2 ** 31 - 1);
  if (bad >= 0) {
    throw new TypeError(
      `${op}: index ${list[bad]} at position ${bad} is not an int32 integer (in [-2^31, 2^31 - 1])`,
    );
  }
  return fromHost(Int32Array.from(list), [list.length], backendOf(like, op));
}
