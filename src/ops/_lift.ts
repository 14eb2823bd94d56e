/**
 * What the free functions accept where they take a tensor. Every op
 * exported as a free function (`add(x, 1)` is `x.add(1)`) takes plain
 * numbers, booleans, nested arrays of them and typed arrays wherever a
 * tensor goes (`exp(2)`, `sum([1, 2, 3])`, `matmul([[1, 2]], w)`): they
 * become tensors, as `tensor()` makes them, on the backend of the call's
 * other tensor operand, else on the default backend. In binary ops a plain
 * number stays a weak scalar that takes the other operand's dtype
 * (`add(halfTensor, 1)` stays float16). Anything else (a string, an object)
 * is a `TypeError` naming the op.
 *
 * The `Tensor` methods call the same functions with the tensor itself, so
 * lifting costs them one `instanceof`; a binary method's operand stays a
 * tensor or a number (`tensorOrNumber`), as it always was.
 *
 * Internal: nothing here but the types is exported from `mod.ts`. Depends
 * on `creation.ts` (`tensor`), `_operands.ts` and the core.
 * @module
 */

import { resolveBackend } from "../backends.ts";
import { tensor } from "../creation.ts";
import type { Prim } from "../primitives.ts";
import { quoteValue } from "../shape.ts";
import { describe, named } from "../core/errors.ts";
import { composite, scoped } from "../core/scope.ts";
import { Tensor } from "../tensor.ts";
import { binary, scalar } from "./_operands.ts";

/** Nested arrays of numbers or booleans, as `tensor()` takes them. */
export type NestedValues = number | boolean | readonly NestedValues[];

/**
 * What a free function accepts where it takes a tensor: a `Tensor`, or
 * values `tensor()` would turn into one (a number, a boolean, nested arrays
 * of them, a typed array).
 */
export type TensorLike = Tensor | NestedValues | ArrayLike<number>;

/** A binary op as a free function: tensors, numbers or nested arrays, broadcast together. */
export type BinaryFn = (a: TensorLike, b: TensorLike) => Tensor;

/**
 * `x` as a tensor: a `Tensor` itself, values `tensor()` accepts converted on
 * `backend` (a temporary of the calling op's scope), or a `TypeError` naming
 * the op.
 */
function toTensor(op: string, x: unknown, like?: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const convertible = typeof x === "number" || typeof x === "boolean" || Array.isArray(x) ||
    (ArrayBuffer.isView(x) && !(x instanceof DataView));
  if (!convertible) {
    throw new TypeError(
      `${op}: expected a Tensor, a number or nested arrays of numbers, got ${quoteValue(x)}`,
    );
  }
  return tensor(x as number[], { backend: like?.backend });
}

/** The tensors among a result, which escape the conversion scope. */
const results = (r: Tensor | Tensor[]): Tensor[] => (Array.isArray(r) ? r : [r]);

/**
 * @internal Runs `run` on `args` as tensors: the one place where a free
 * function's tensor arguments are converted (see `toTensor`), on the backend
 * of the first one that already is a tensor. Temporaries made from plain
 * values are released when the call returns; errors name `op`.
 */
export function lifted<R extends Tensor | Tensor[]>(
  op: string,
  args: readonly unknown[],
  run: (tensors: Tensor[]) => R,
): R {
  if (args.every((a) => a instanceof Tensor)) return run(args as Tensor[]);
  return named(op, () =>
    scoped(() => {
      const like = args.find((a): a is Tensor => a instanceof Tensor);
      return run(args.map((a) => toTensor(op, a, like)));
    }, results));
}

/** @internal `lifted` for an op with one tensor argument: runs `run` on `x` as a tensor. */
export function lift<R extends Tensor | Tensor[]>(
  op: string,
  x: TensorLike,
  run: (x: Tensor) => R,
): R {
  return lifted(op, [x], ([t]) => run(t));
}

/**
 * @internal A binary primitive on two operands as the free functions take
 * them: plain numbers stay weak scalars, other plain values become tensors
 * on the other operand's backend, and two numbers compute on the default
 * backend.
 */
export function liftedBinary(
  op: Prim,
  a: TensorLike,
  b: TensorLike,
  name: string = op,
): Tensor {
  if (
    (a instanceof Tensor || b instanceof Tensor) &&
    (a instanceof Tensor || typeof a === "number") && (b instanceof Tensor || typeof b === "number")
  ) {
    return binary(op, a, b, name);
  }
  return composite(name, () => {
    const like = a instanceof Tensor ? a : b instanceof Tensor ? b : undefined;
    const operand = (v: unknown) => (typeof v === "number" ? v : toTensor(name, v, like));
    const [x, y] = [operand(a), operand(b)];
    // Two numbers: compute on the default backend.
    const first = typeof x === "number" && typeof y === "number" ? scalar(x, resolveBackend()) : x;
    return binary(op, first, y, name);
  });
}

/**
 * @internal The operand of a binary `Tensor` method (`x.add(other)`): a
 * tensor or a number, as the method's signature says (only the free
 * function lifts arrays), else the `TypeError` the method gives.
 */
export function tensorOrNumber(op: string, x: unknown): Tensor | number {
  if (!(x instanceof Tensor) && typeof x !== "number") {
    throw new TypeError(`${op}: expected a Tensor or a number, got ${describe(x)}`);
  }
  return x;
}

/**
 * @internal The operand of a `Tensor` method that takes another tensor
 * (`x.matmul(other)`): a tensor, else the `TypeError` the method gives.
 */
export function tensorOnly(op: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: expected a Tensor, got ${describe(x)}`);
  return x;
}
