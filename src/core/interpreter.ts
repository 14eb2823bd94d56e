/**
 * The interpreter stack. Applying a primitive (`apply`) goes to the
 * evaluator at the bottom of the stack, which produces its output (the eager
 * one runs it on a backend; `makeTrace`'s staging one records it from shapes
 * alone), and then to every visible transform level above it (a reverse-mode
 * `Tape` records the equation, a forward-mode level computes its tangent).
 * Every op is written against `apply`, so it runs under every interpreter
 * without knowing which.
 *
 * Depends on `primitives.ts` (the forward rules), `errors.ts`,
 * `debug_nans.ts`, and on the `Tensor` class, whose handles the eager
 * evaluator creates; `tensor.ts` imports `abstractStorages`, `leakedTracer`
 * and `refuseRead` back (a cycle that is safe: nothing here touches an
 * import at load time, only inside functions).
 * @module
 */

import type { Backend, Storage } from "../backend.ts";
import type { DType, HostArray, WeakKind } from "../dtype.ts";
import { type Prim, type PrimParams, runPrimitive } from "../primitives.ts";
import { abstractEval } from "../abstract_eval.ts";
import { contiguousStrides, type Shape, shapeString } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { checkFinite, debuggingNans } from "./debug_nans.ts";
import { named } from "./errors.ts";

// ---- transform levels --------------------------------------------------------

/**
 * @internal A transform level that sees every primitive applied while it is
 * active: a reverse-mode `Tape` records it, a forward-mode level computes its
 * output's tangent.
 */
export interface TraceLevel {
  /** Called after `output = prim(...inputs; params)` ran. */
  process(prim: Prim, inputs: readonly Tensor[], output: Tensor, params: PrimParams): void;
}

/** The transform levels currently active, outermost first. */
const traceStack: TraceLevel[] = [];
/**
 * How many levels (from the outermost) see the primitives applied now: all
 * of them, except while a level computes its own rule, when only the levels
 * outside it do (so nested transforms never confuse their perturbations).
 */
let visibleDepth: number | null = null;

/** @internal Whether any transform is tracing (scopes then keep temporaries). */
export function isTracing(): boolean {
  return traceStack.length > 0;
}

/**
 * @internal Whether primitives applied now run eagerly and are seen by no
 * transform: no level is active and no trace is being made.
 */
export function isEagerContext(): boolean {
  return traceStack.length === 0 && evaluator === EAGER;
}

/** @internal Pushes a level; returns the function that pops it. */
export function pushTrace(level: TraceLevel): () => void {
  traceStack.push(level);
  return () => {
    const at = traceStack.lastIndexOf(level);
    if (at >= 0) traceStack.splice(at, 1);
  };
}

/**
 * @internal Hides every active level (for a trace that must not be seen by
 * the transforms around it, like `makeTrace`'s); returns the function that
 * brings them back.
 */
export function isolateTrace(): () => void {
  const levels = traceStack.splice(0);
  hidden.push(levels);
  const depth = visibleDepth;
  visibleDepth = null;
  return () => {
    hidden.splice(hidden.lastIndexOf(levels), 1);
    traceStack.splice(0, traceStack.length, ...levels);
    visibleDepth = depth;
  };
}

/** The levels `isolateTrace` hid, one list per isolation still in force. */
const hidden: TraceLevel[][] = [];

/** @internal The levels hidden by traces being made (`makeTrace` inside a transform). */
export function hiddenLevels(): TraceLevel[] {
  return hidden.flat();
}

/** Levels that see nothing for now (see `withoutLevel`). */
const suppressed = new Set<TraceLevel>();

/** @internal The levels that see the primitives applied now, innermost first. */
export function visibleLevels(): TraceLevel[] {
  const depth = Math.min(visibleDepth ?? traceStack.length, traceStack.length);
  return traceStack.slice(0, depth).filter((l) => !suppressed.has(l)).reverse();
}

/**
 * @internal Runs `fn` while `level` sees nothing (a custom rule's forward
 * pass, which that level records as one step instead); the other levels
 * still see every primitive.
 */
export function withoutLevel<T>(level: TraceLevel, fn: () => T): T {
  const was = suppressed.has(level);
  suppressed.add(level);
  try {
    return fn();
  } finally {
    if (!was) suppressed.delete(level);
  }
}

/**
 * Hands an applied primitive to each visible level, outermost first: a
 * level's rule may use the equation's output (`tanh`'s tangent is
 * `t·(1 - out²)`), and the levels outside it, which see that rule's ops,
 * must already know the output (an outer tape has recorded it, an outer
 * forward level has its tangent).
 */
function processLevels(prim: Prim, inputs: readonly Tensor[], output: Tensor, params: PrimParams) {
  const depth = Math.min(visibleDepth ?? traceStack.length, traceStack.length);
  const saved = visibleDepth;
  try {
    for (let i = 0; i < depth; i++) {
      if (suppressed.has(traceStack[i])) continue;
      visibleDepth = i; // what the level's rule applies is seen only by the levels outside it
      traceStack[i].process(prim, inputs, output, params);
    }
  } finally {
    visibleDepth = saved;
  }
}

// ---- evaluators --------------------------------------------------------------

/**
 * @internal What evaluates primitives at the bottom of the interpreter stack:
 * the eager evaluator runs them on a backend; `makeTrace`'s staging
 * evaluator only computes output shapes and dtypes and records equations.
 * The transform levels (`TraceLevel`s) above it see the results either way.
 */
export interface Evaluator {
  /** `prim(...inputs; params)`, as a new tensor. */
  apply(prim: Prim, inputs: readonly Tensor[], params: PrimParams): Tensor;
  /** A tensor holding host values (every creation function ends here). */
  constant(host: HostArray, dtype: DType, shape: Shape, backend: Backend): Tensor;
  /** Told when the traced function tries to read a value (`data`, `item`, `array`). */
  refuseRead?(err: Error): void;
}

/** Runs each primitive on the inputs' backend at once. */
const EAGER: Evaluator = {
  apply(prim, inputs, params) {
    const views = inputs.map((t) => t.view(prim));
    const backend = views[0].storage.backend;
    for (const v of views) {
      if (v.storage.backend !== backend) {
        throw new TypeError(
          `${prim}: inputs live on different backends (${
            views.map((x) => x.storage.backend.name).join(", ")
          }); move them to one backend first`,
        );
      }
      if (abstractStorages.has(v.storage)) throw leakedTracer(prim, inputs[views.indexOf(v)]);
      backend.assertUsable(v.storage);
    }
    // Backend errors (buffer limits, a lost device) get the primitive's name.
    const aval = abstractEval(prim, inputs, params); // a Tensor is its own abstract value
    const view = named(prim, () => runPrimitive(prim, views, params, aval));
    const out = new Tensor(view);
    if (debuggingNans() && view.storage.refs === 1) checkFinite(prim, inputs, out, view);
    return out;
  },
  constant(host, dtype, shape, backend) {
    const storage = backend.upload(host, dtype);
    return new Tensor({ storage, shape, strides: contiguousStrides(shape), offset: 0 });
  },
};

let evaluator: Evaluator = EAGER;

/** @internal The evaluator in force (a trace being made has its own). */
export function currentEvaluator(): Evaluator {
  return evaluator;
}

/**
 * @internal Makes `next` the evaluator (`null`: the eager one); returns the
 * function that restores the previous one.
 */
export function setEvaluator(next: Evaluator | null): () => void {
  const saved = evaluator;
  evaluator = next ?? EAGER;
  return () => void (evaluator = saved);
}

/** @internal The traced scalars that stand for plain numbers, with their kind. */
export const weakTensors = new WeakMap<Tensor, WeakKind>();

/**
 * @internal Storages without data: the values of a trace made from shapes
 * alone (`makeTrace`). A tensor on one reads nothing and runs nothing.
 */
export const abstractStorages = new WeakSet<Storage>();

/**
 * @internal The error for a traced value (no data) used where data is
 * needed: read inside the traced function, or used after its trace ended.
 */
export function leakedTracer(op: string, t: Tensor): TypeError {
  const what = `${op}: tensor %${t.id} (shape ${shapeString(t.shape)}) is a traced value`;
  return new TypeError(
    evaluator !== EAGER
      ? `${what}: while makeTrace or jit traces a function, values have a shape and dtype ` +
        "but no data. Return the value and read it outside the traced function"
      : `${what} from makeTrace or jit (it has a shape and dtype but no data) that was used ` +
        "after its trace ended; use it only inside the traced function",
  );
}

/**
 * @internal Tells the evaluator that the traced function tries to read a
 * value (a trace being made then fails with `err`).
 */
export function refuseRead(err: Error): void {
  evaluator.refuseRead?.(err);
}

// ---- applying a primitive ----------------------------------------------------

/** The parameter list of a primitive: optional when it takes no parameters. */
type OptionalIfEmpty<T> = Record<never, never> extends T ? [params?: T] : [params: T];

/**
 * @internal Applies one primitive: the evaluator produces the output (eager:
 * runs it; staging: records it), then every visible transform level sees
 * the equation, outermost first.
 */
export function apply<P extends Prim>(
  prim: P,
  inputs: readonly Tensor[],
  ...[params = {} as PrimParams<P>]: OptionalIfEmpty<PrimParams<P>>
): Tensor {
  const out = evaluator.apply(prim, inputs, params);
  if (traceStack.length > 0) processLevels(prim, inputs, out, params);
  return out;
}

/**
 * @internal A new tensor with `t`'s value (a `reshape` to its own shape, a
 * view): a handle of its own that every level sees as derived from `t`.
 */
export function alias(t: Tensor): Tensor {
  return apply("reshape", [t], { shape: t.shape });
}

/** @internal A tensor holding `host` (of `dtype`, `shape`) on `backend`. */
export function hostTensor(host: HostArray, dtype: DType, shape: Shape, backend: Backend): Tensor {
  return evaluator.constant(host, dtype, shape, backend);
}
