/**
 * Memory scopes: every tensor is created into the innermost open scope, and
 * closing a scope releases the temporaries created in it (`tidy` for users;
 * `scoped` and `composite` for ops, which release their own temporaries;
 * `openScope`, `closeScope` and `detachScope` for the transforms, which keep
 * what their backward pass needs while they trace).
 *
 * Depends on `errors.ts`, on `interpreter.ts` (whether a transform traces)
 * and on the `Tensor` class; `tensor.ts` imports `trackInScope` back (a
 * cycle that is safe: no module here touches an import at load time, only
 * inside functions).
 * @module
 */

import { describe, named } from "./errors.ts";
import { isTracing } from "./interpreter.ts";
import { Tensor } from "../tensor.ts";

/**
 * Who opened a scope, which decides the message a user sees when a tensor it
 * released is used later: an op's own temporaries never reach the user, but a
 * tensor kept from inside `grad` or `tidy` can ("a leaked tracer").
 */
export type ScopeKind = "op" | "transform" | "tidy" | "trace";

/** The tensors created while a scope was open. */
export class Scope {
  /** Tensors created in this scope, in creation order. */
  readonly tensors: Set<Tensor> = new Set();
  /** @param kind Who opened the scope. */
  constructor(readonly kind: ScopeKind) {}
}

/** Tensors created in each open scope, innermost last. */
const scopeStack: Scope[] = [];

/** @internal Records a new tensor in the innermost open scope, if any. */
export function trackInScope(t: Tensor): void {
  scopeStack.at(-1)?.tensors.add(t);
}

/** @internal Opens a scope: tensors created until it closes are tracked in it. */
export function openScope(kind: ScopeKind = "op"): Scope {
  const scope = new Scope(kind);
  scopeStack.push(scope);
  return scope;
}

function popScope(scope: Scope): Scope | undefined {
  if (scopeStack.pop() !== scope) throw new Error("internal: scopes closed out of order");
  return scopeStack.at(-1);
}

/**
 * @internal Closes the innermost scope. Tensors in `keep` escape; the rest are
 * disposed — unless a transform is still tracing, whose backward pass may
 * need them: then they all move to the enclosing scope, which disposes them
 * when that transform returns.
 */
export function closeScope(scope: Scope, keep: Iterable<Tensor> = []): void {
  const parent = popScope(scope);
  const kept = new Set(keep);
  for (const t of scope.tensors) {
    if (t.disposed) continue;
    if (kept.has(t) || isTracing()) parent?.tensors.add(t);
    else t.release(scope.kind);
  }
}

/**
 * @internal Closes the innermost scope and disposes everything in it but
 * `keep`, even while a transform traces: for a caller that knows no level
 * recorded those tensors (`checkpoint`'s forward pass).
 */
export function releaseScope(scope: Scope, keep: Iterable<Tensor>): void {
  const parent = popScope(scope);
  const kept = new Set(keep);
  for (const t of scope.tensors) {
    if (t.disposed) continue;
    if (kept.has(t)) parent?.tensors.add(t);
    else t.release(scope.kind);
  }
}

/**
 * @internal Closes the innermost scope without disposing anything: `keep`
 * moves to the enclosing scope, and the rest is returned for the caller to
 * release later (a vjp's residuals). While a transform is still tracing,
 * everything moves to the enclosing scope and the returned set is empty.
 */
export function detachScope(scope: Scope, keep: Iterable<Tensor>): Set<Tensor> {
  const parent = popScope(scope);
  if (isTracing()) {
    for (const t of scope.tensors) parent?.tensors.add(t);
    return new Set();
  }
  for (const t of keep) {
    if (scope.tensors.delete(t)) parent?.tensors.add(t);
  }
  return scope.tensors;
}

/**
 * Runs `fn` and disposes every tensor it created except those in the tree it
 * returns — for eager code outside `grad` (inference, metrics) that would
 * otherwise leave its intermediate tensors alive. `fn` must be synchronous:
 * a scope cannot follow an `await`.
 *
 * @param fn A synchronous function returning a tensor or a tree of tensors.
 * @returns What `fn` returned.
 * @example
 * ```ts
 * import { memoryStats, tensor, tidy } from "littlegrad";
 * const x = tensor([1, 2, 3]);
 * const before = memoryStats().liveTensors;
 * const y = tidy(() => x.mul(2).add(1).relu().sum()); // intermediates released
 * console.log(memoryStats().liveTensors - before); // 1 (just y)
 * ```
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== "function") {
    throw new TypeError(`tidy: expected a function, got ${describe(fn)}`);
  }
  return scoped(
    () => {
      const result = fn();
      if (result instanceof Promise) {
        // The refused promise may still reject: handled here, so it cannot
        // crash the process later as an unhandled rejection.
        result.catch(() => {});
        throw new TypeError(
          "tidy: fn returned a Promise; tidy only works with synchronous functions",
        );
      }
      return result;
    },
    (result) => tensorsIn(result),
    "tidy",
  );
}

/** Tensors anywhere in nested arrays and plain objects. */
function tensorsIn(x: unknown): Tensor[] {
  if (x instanceof Tensor) return [x];
  if (Array.isArray(x)) return x.flatMap(tensorsIn);
  if (x !== null && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.values(x).flatMap(tensorsIn);
  }
  return [];
}

/**
 * @internal Runs `fn` in a scope: temporaries it creates are released when it
 * returns (or throws), except the tensors it returns.
 */
export function scoped<T>(
  fn: () => T,
  escaping: (result: T) => Iterable<Tensor>,
  kind: ScopeKind = "op",
): T {
  const scope = openScope(kind);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    closeScope(scope);
    throw err;
  }
  closeScope(scope, escaping(result));
  return result;
}

/**
 * @internal Runs the composite op `op` (see `named`): only the tensor `fn`
 * returns outlives it, and errors from inside name `op` first.
 */
export function composite(op: string, fn: () => Tensor): Tensor {
  return named(op, () => scoped(fn, (t) => [t]));
}
