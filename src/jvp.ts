/**
 * Forward-mode differentiation: `jvp` runs a function once while a
 * forward-mode level carries a tangent beside every value that depends on
 * the inputs (dual numbers), using the JVP rules of `jvp_rules.ts`. A value
 * with no tangent is a symbolic zero: no buffer is made for it. Each `jvp`
 * is its own level of the trace stack, and a level's rules are seen only by
 * the levels outside it, so nested calls never confuse their perturbations;
 * tangents are computed with the public ops, so `grad` of a `jvp` (and `jvp`
 * of a `grad`: `hvp`) works.
 * @module
 */

import { tensor } from "./creation.ts";
import { isFloat } from "./dtype.ts";
import { JVP_RULES } from "./jvp_rules.ts";
import type { Prim, PrimParams } from "./primitives.ts";
import { shapeString } from "./shape.ts";
import { alias, pushTrace, type TraceLevel } from "./core/interpreter.ts";
import { backendOf, scalar } from "./ops/_operands.ts";
import { Tensor } from "./tensor.ts";
import { closeScope, openScope, type Scope, scoped } from "./core/scope.ts";
import { describe } from "./core/errors.ts";
import { flattenTree, type Tree } from "./tree.ts";
import { floatLeaves, grad, vjp } from "./transforms.ts";
import { vmap } from "./vmap.ts";

/** One forward-mode level: the tangent of each value it has seen, by tensor id. */
class ForwardLevel implements TraceLevel {
  readonly tangents = new Map<number, Tensor>();

  process(prim: Prim, inputs: readonly Tensor[], output: Tensor, params: PrimParams): void {
    const tangents = inputs.map((t) => this.tangents.get(t.id) ?? null);
    if (tangents.every((t) => t === null) || !isFloat(output.dtype)) return;
    const t = JVP_RULES[prim](tangents, { prim, inputs, output, params });
    if (t !== null) this.tangents.set(output.id, t);
  }
}

/** Flattens `trees` (a list of pytrees) into their tensor leaves, with paths. */
function leavesOf(
  what: string,
  trees: readonly unknown[],
): { leaves: { path: string; value: unknown }[]; rebuild: (v: unknown[]) => unknown[] } {
  const flat = trees.map((t) => flattenTree(t as Tree));
  const leaves = flat.flatMap((f, i) =>
    f.leaves.map(({ path, value }) => ({
      path: `${what} ${i}${path ? ` at '${path}'` : ""}`,
      value,
    }))
  );
  const rebuild = (values: unknown[]) => {
    let at = 0;
    return flat.map((f) => f.unflatten(values.slice(at, at += f.leaves.length) as never));
  };
  return { leaves, rebuild };
}

/**
 * Forward-mode differentiation of `fn` at `primals` along `tangents`:
 * returns `[fn(...primals), J·tangents]`, the output and its directional
 * derivative, in one pass (no tape, nothing kept for a backward pass).
 * `tangents` has the tree structure of `primals`; a `null` leaf is a
 * symbolic zero (no buffer is made for it), and integer or boolean primals
 * take `null`. Every output gets a tangent (zeros where it does not depend on
 * the inputs).
 *
 * @param fn A pure function of tensors (or trees of tensors).
 * @param primals The point: `fn`'s arguments.
 * @param tangents One direction per argument, the same trees and shapes (or `null` leaves).
 * @returns `[outputs, outputTangents]`, each with the tree structure of `fn`'s result.
 * @example
 * ```ts
 * import { jvp, type Tensor, tensor } from "littlegrad";
 * const f = (x: Tensor) => x.mul(x).sum(); // d/dx along v: 2·x·v
 * const [y, dy] = jvp(f, [tensor([1, 2, 3])], [tensor([1, 0, 0])]);
 * console.log(await y.item(), await (dy as Tensor).item()); // 14 2
 * ```
 */
export function jvp<R>(
  fn: (...args: never[]) => R,
  primals: readonly unknown[],
  tangents: readonly unknown[],
): [R, R] {
  const op = "jvp";
  if (typeof fn !== "function") {
    throw new TypeError(`${op}: expected a function, got ${describe(fn)}`);
  }
  if (!Array.isArray(primals) || !Array.isArray(tangents)) {
    throw new TypeError(
      `${op}: primals and tangents must be arrays (one entry per argument), got ${
        describe(primals)
      } and ${describe(tangents)}`,
    );
  }
  if (primals.length !== tangents.length) {
    throw new TypeError(
      `${op}: ${primals.length} primal(s) but ${tangents.length} tangent(s); give one tangent per argument`,
    );
  }
  const p = leavesOf("primal", primals);
  const t = leavesOf("tangent", tangents);
  if (p.leaves.length !== t.leaves.length) {
    throw new TypeError(
      `${op}: the tangents' trees differ from the primals' (${t.leaves.length} leaves vs ${p.leaves.length})`,
    );
  }
  const scope = openScope("transform");
  const level = new ForwardLevel();
  let pop: (() => void) | null = null;
  try {
    const args = p.leaves.map(({ path, value }, i) => {
      const tangent = t.leaves[i].value;
      if (!(value instanceof Tensor)) {
        if (tangent !== null && tangent !== undefined) {
          throw new TypeError(`${op}: ${path} is ${describe(value)}; its tangent must be null`);
        }
        return value;
      }
      value.view(op); // a disposed primal is named here
      const input = alias(value);
      if (tangent === null || tangent === undefined) return input;
      if (!(tangent instanceof Tensor)) {
        throw new TypeError(
          `${op}: the tangent of ${path} is ${describe(tangent)}, not a Tensor or null`,
        );
      }
      if (!isFloat(value.dtype)) {
        throw new TypeError(
          `${op}: ${path} has dtype ${value.dtype}; only float32 and float16 values take a tangent (pass null)`,
        );
      }
      if (shapeString(tangent.shape) !== shapeString(value.shape)) {
        throw new TypeError(
          `${op}: the tangent of ${path} has shape ${shapeString(tangent.shape)}, its primal ${
            shapeString(value.shape)
          }`,
        );
      }
      level.tangents.set(
        input.id,
        tangent.dtype === value.dtype ? tangent : tangent.astype(value.dtype),
      );
      return input;
    });
    pop = pushTrace(level);
    const out = (fn as (...a: unknown[]) => unknown)(...p.rebuild(args));
    pop();
    pop = null;
    if (out instanceof Promise) {
      out.catch(() => {});
      throw new TypeError(
        `${op}: the function returned a Promise, not a Tensor; ${op} only works with synchronous functions`,
      );
    }
    return finish(op, out, level, scope) as [R, R];
  } catch (err) {
    pop?.();
    closeScope(scope);
    throw err;
  }
}

/** The outputs and their tangents, each a tensor the caller owns; closes `scope`. */
function finish(op: string, out: unknown, level: ForwardLevel, scope: Scope): [unknown, unknown] {
  const { leaves, unflatten } = flattenTree(out as Tree);
  const seen = new Set<Tensor>();
  // A result the caller already owns (an input passed through), or one that
  // appears twice, gets a fresh handle, as do tangents.
  const fresh = (x: Tensor) => {
    const mine = scope.tensors.has(x) && !seen.has(x) ? x : alias(x);
    seen.add(mine);
    return mine;
  };
  const values: Tensor[] = [];
  const tangents: Tensor[] = [];
  for (const { path, value } of leaves) {
    if (!(value instanceof Tensor)) {
      throw new TypeError(
        `${op}: the function must return a Tensor or a tree of tensors, but it returned ${
          describe(value)
        }${path ? ` at '${path}'` : ""}`,
      );
    }
    const tangent = level.tangents.get(value.id);
    values.push(fresh(value));
    tangents.push(
      tangent
        ? fresh(tangent)
        : scalar(0, backendOf(value, op), isFloat(value.dtype) ? value.dtype : "float32")
          .broadcastTo(value.shape),
    );
  }
  closeScope(scope, [...values, ...tangents]);
  return [unflatten(values as never), unflatten(tangents as never)];
}

/**
 * The Hessian-vector product of a scalar function at `primals` along
 * `vectors`, forward over reverse (`jvp` of `grad`): one forward-mode pass
 * over the gradient computation, without forming the Hessian.
 *
 * @param fn A scalar-valued function of tensors.
 * @param primals The point.
 * @param vectors One direction per argument, a tree like it (`null` leaves
 *   for none). An argument without float tensors (integer indices, numbers,
 *   strings) is held fixed: its vector must be `null`, and so is its result.
 * @returns `H·v` for each argument, with its tree structure (`null` for a
 *   fixed one). A float argument with a `null` vector still gets its
 *   cross terms `H_{ij}·v_j`.
 * @example
 * ```ts
 * import { hvp, type Tensor, tensor } from "littlegrad";
 * const f = (x: Tensor) => x.pow(3).sum(); // H = diag(6x)
 * const hv = hvp(f, [tensor([1, 2])], [tensor([1, 1])]);
 * console.log(await (hv[0] as Tensor).array()); // [6, 12]
 * ```
 */
export function hvp(
  fn: (...args: never[]) => Tensor,
  primals: readonly unknown[],
  vectors: readonly unknown[],
): unknown[] {
  // Only float tensor leaves are differentiated; the rest (integer indices,
  // numbers, strings) is held fixed: closed over.
  const leaves = floatLeaves(primals);
  if (leaves.tensors.length === 0) return primals.map(() => null);
  const of = (...ts: Tensor[]) =>
    (fn as (...a: unknown[]) => Tensor)(...leaves.rebuild((k, value) => (k >= 0 ? ts[k] : value)));
  // Each leaf's direction: the vector leaf at the same path (null: none).
  const directions = leaves.places.map(({ arg, path }) => {
    const v = vectors[arg];
    if (v === null || v === undefined) return null;
    const found = flattenTree(v).leaves.find((l) => l.path === path)?.value;
    return found instanceof Tensor ? found : null;
  });
  const gradient = grad(of, { argnums: leaves.tensors.map((_, k) => k) }) as (
    ...ts: Tensor[]
  ) => Tensor[];
  const [g, hv] = jvp(
    (...ts: Tensor[]) => gradient(...ts),
    leaves.tensors,
    directions,
  );
  for (const x of flattenTree(g as Tree).leaves) (x.value as Tensor).dispose();
  const products = hv as Tensor[];
  return leaves.rebuild((k) => (k >= 0 ? products[k] : null)).map((tree, arg) =>
    leaves.places.some((p) => p.arg === arg) ? tree : null
  );
}

/** Options of `jacfwd`, `jacrev` and `hessian`. */
export interface JacobianOptions {
  /** The argument differentiated (default 0); it must be a float tensor. */
  argnums?: number;
}

/** Checks `argnums` and returns the differentiated argument. */
function argumentAt(op: string, args: readonly unknown[], argnums: number): Tensor {
  if (!Number.isInteger(argnums) || argnums < 0 || argnums >= args.length) {
    throw new RangeError(
      `${op}: argnums ${argnums} is out of range: the function was called with ${args.length} argument(s)`,
    );
  }
  const x = args[argnums];
  if (!(x instanceof Tensor) || !isFloat(x.dtype)) {
    throw new TypeError(
      `${op}: argument ${argnums} must be a float32 or float16 tensor, got ${
        x instanceof Tensor ? x.dtype : describe(x)
      }`,
    );
  }
  return x;
}

/**
 * The standard basis of `like`'s shape, stacked: `[like.size, ...like.shape]`,
 * row `i` one at flat element `i` (of `like`'s dtype and backend).
 */
function basisStack(like: Tensor, op: string): Tensor {
  const n = like.size;
  const values = new Float32Array(n * n);
  for (let i = 0; i < n; i++) values[i * n + i] = 1;
  return tensor(values, {
    shape: [n, ...like.shape],
    dtype: like.dtype,
    backend: backendOf(like, op).name,
  });
}

/** Zeros of `shape` in `like`'s dtype (a Jacobian with an empty input or output). */
function zerosLike(like: Tensor, shape: number[], op: string): Tensor {
  return scoped(
    () => scalar(0, backendOf(like, op), like.dtype).broadcastTo(shape),
    (t) => [t],
  );
}

/**
 * The Jacobian of `fn` by forward mode: `jvp` along every input basis
 * vector at once (`vmap` over the basis: one batched pass), for functions
 * with fewer inputs than outputs. The result has shape
 * `[...output.shape, ...input.shape]`.
 *
 * @param fn A function whose result is one tensor.
 * @param opts `argnums`: the argument differentiated (default 0).
 * @returns A function of `fn`'s arguments returning the Jacobian.
 * @example
 * ```ts
 * import { jacfwd, type Tensor, tensor } from "littlegrad";
 * const f = (x: Tensor) => x.mul(x); // J = diag(2x)
 * console.log(await jacfwd(f)(tensor([1, 2])).array()); // [[2, 0], [0, 4]]
 * ```
 */
export function jacfwd(
  fn: (...args: never[]) => Tensor,
  opts: JacobianOptions = {},
): (...args: unknown[]) => Tensor {
  const { argnums = 0 } = opts;
  return (...args) => {
    const x = argumentAt("jacfwd", args, argnums);
    // The other arguments (any pytrees) are closed over, not differentiated.
    const of = (z: Tensor) =>
      (fn as (...a: unknown[]) => Tensor)(...args.map((a, i) => (i === argnums ? z : a)));
    const pass = (v: Tensor | null) => jvp(of, [x], [v]);
    if (x.size === 0) {
      // No basis vectors: one pass (all tangents zero) for the output's shape.
      const [y, dy] = pass(null);
      y.dispose();
      dy.dispose();
      return zerosLike(x, [...dy.shape, ...x.shape], "jacfwd");
    }
    const along = (v: Tensor) => pass(v)[1];
    return scoped(() => {
      const columns = vmap(along)(basisStack(x, "jacfwd")); // [x.size, ...y.shape]
      const outShape = columns.shape.slice(1);
      return columns.reshape([x.size, columns.size / x.size]).transpose()
        .reshape([...outShape, ...x.shape]);
    }, (t) => [t]);
  };
}

/**
 * The Jacobian of `fn` by reverse mode: the pullback of every output basis
 * vector at once (`vmap` over the basis: one batched pass), for functions
 * with fewer outputs than inputs. The result has shape
 * `[...output.shape, ...input.shape]`.
 *
 * @param fn A function whose result is one tensor.
 * @param opts `argnums`: the argument differentiated (default 0).
 * @returns A function of `fn`'s arguments returning the Jacobian.
 * @example
 * ```ts
 * import { jacrev, type Tensor, tensor } from "littlegrad";
 * const f = (x: Tensor) => x.sum().mul(x.get(0)); // ∂/∂x = [x₀ + Σx, x₀]
 * console.log(await jacrev(f)(tensor([1, 2])).array()); // [4, 1]
 * ```
 */
export function jacrev(
  fn: (...args: never[]) => Tensor,
  opts: JacobianOptions = {},
): (...args: unknown[]) => Tensor {
  const { argnums = 0 } = opts;
  return (...args) => {
    const x = argumentAt("jacrev", args, argnums);
    const of = (z: Tensor) =>
      (fn as (...a: unknown[]) => Tensor)(...args.map((a, i) => (i === argnums ? z : a)));
    const [y, pullback] = vjp(of, x);
    try {
      if (y.size === 0 || x.size === 0) return zerosLike(x, [...y.shape, ...x.shape], "jacrev");
      return scoped(() => {
        const rows = vmap((u: Tensor) => (pullback(u) as [Tensor])[0])(basisStack(y, "jacrev"));
        return rows.reshape([...y.shape, ...x.shape]);
      }, (t) => [t]);
    } finally {
      pullback.dispose();
      y.dispose();
    }
  };
}

/**
 * The Hessian of a scalar function: `jacfwd` of `grad` (forward over
 * reverse), shape `[...input.shape, ...input.shape]`.
 *
 * @param fn A scalar-valued function.
 * @param opts `argnums`: the argument differentiated (default 0).
 * @returns A function of `fn`'s arguments returning the Hessian.
 * @example
 * ```ts
 * import { hessian, type Tensor, tensor } from "littlegrad";
 * const f = (x: Tensor) => x.get(0).mul(x.get(1)).add(x.get(0).square()); // x₀x₁ + x₀²
 * console.log(await hessian(f)(tensor([3, 4])).array()); // [[2, 1], [1, 0]]
 * ```
 */
export function hessian(
  fn: (...args: never[]) => Tensor,
  opts: JacobianOptions = {},
): (...args: unknown[]) => Tensor {
  const { argnums = 0 } = opts;
  const gradient = grad(fn as (...a: unknown[]) => Tensor, { argnums }) as (
    ...a: unknown[]
  ) => Tensor;
  return jacfwd(gradient, { argnums });
}
