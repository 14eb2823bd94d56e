/**
 * Function transforms: `vjp`, `grad` and `valueAndGrad`. Each traces the
 * function into a `Tape` while it runs, then replays the tape in reverse,
 * applying each primitive's VJP rule and summing cotangents per variable.
 * @module
 */

import { Tape } from "./tape.ts";
import { alias, isTracing, pushTrace, weakTensors } from "./core/interpreter.ts";
import { backendOf, scalar } from "./ops/_operands.ts";
import { Tensor } from "./tensor.ts";
import { closeScope, detachScope, openScope, type Scope, scoped } from "./core/scope.ts";
import { describe } from "./core/errors.ts";
import { flattenTree, type Tree, treeTensors } from "./tree.ts";
import { VJP_RULES } from "./vjp_rules.ts";
import { shapeString } from "./shape.ts";
import { isFloat } from "./dtype.ts";

/** Options of `grad` and `valueAndGrad`. */
export interface GradOptions {
  /**
   * Which positional argument(s) to differentiate (default `0`). Each
   * position may be listed once: `[0, 0]` is a `RangeError`.
   */
  argnums?: number | readonly number[];
  /** `fn` returns `[value, aux]`; `aux` is passed through untouched. */
  hasAux?: boolean;
}

/**
 * The gradients `grad` returns for options `O`: the type of argument 0 by
 * default, of argument `N` for `argnums: N`, a tuple for an array.
 */
export type GradsOf<A extends unknown[], O> = O extends { argnums: infer N }
  ? N extends number ? A[N]
  : N extends readonly number[] ? { -readonly [K in keyof N]: A[N[K] & number] }
  : A[0]
  : A[0];

/** What a function differentiated with options `O` returns: `[value, aux]` with `hasAux`. */
export type ValueOf<R, O> = O extends { hasAux: true } ? R : Tensor;

/** The auxiliary output of a `hasAux` function returning `[value, aux]`. */
export type AuxOf<R> = R extends readonly [unknown, infer X] ? X
  : R extends readonly (infer E)[] ? E
  : never;

/** The pullback of `vjp`: maps output cotangents to one cotangent tree per primal. */
export interface Pullback {
  /** Computes the input cotangents for output cotangent `cotangent`. */
  (cotangent: Tree): Tree[];
  /** The recorded tape (the traced computation). */
  readonly tape: Tape;
  /** Releases the forward values the pullback keeps. Idempotent. */
  dispose(): void;
  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void;
}

/**
 * Marks a promise the library refuses as handled, so that its later
 * rejection cannot crash the process as an unhandled rejection.
 */
function defuse(value: unknown): void {
  if (value instanceof Promise) value.catch(() => {});
}

/** Defuses `value` and every promise among its tree's leaves. */
function defuseTree(value: unknown): void {
  for (const { value: leaf } of flattenTree(value).leaves) defuse(leaf);
}

interface Traced {
  out: unknown;
  tape: Tape;
  inputs: { unflatten: (v: readonly Tensor[]) => Tree; aliases: Tensor[] }[];
  residuals: Set<Tensor>;
}

/** Runs `fn` with the leaves of `args[argnums]` as traced inputs. */
function traceCall(
  op: string,
  fn: (...args: never[]) => unknown,
  args: readonly unknown[],
  argnums: readonly number[],
  escaping: (out: unknown) => Tensor[],
): Traced {
  if (typeof fn !== "function") {
    defuse(fn);
    throw new TypeError(`${op}: expected a function, got ${describe(fn)}`);
  }
  for (const i of argnums) {
    if (!Number.isInteger(i) || i < 0 || i >= args.length) {
      throw new RangeError(
        `${op}: argnums ${i} is out of range: the function was called with ${args.length} argument(s)`,
      );
    }
  }
  const scope = openScope("transform");
  const tape = new Tape();
  let out: unknown;
  let raw: unknown; // what fn returned, to defuse if it is refused
  const inputs: Traced["inputs"] = [];
  try {
    const traced = [...args];
    for (const i of argnums) {
      const { leaves, unflatten } = flattenTree(args[i]);
      const aliases = leaves.map(({ path, value }) => {
        // A number traced by jit is still a number here, as in eager mode.
        if (!(value instanceof Tensor) || weakTensors.has(value)) {
          defuse(value);
          throw new TypeError(
            `${op}: argument ${i}${path ? ` at '${path}'` : ""} is ${
              value instanceof Tensor ? "a number (traced by jit)" : describe(value)
            }; ` +
              "only tensors can be differentiated (pass other values in arguments not listed in argnums)",
          );
        }
        value.view(op); // a disposed input is named here, not in an internal step
        if (!isFloat(value.dtype)) {
          throw new TypeError(
            `${op}: argument ${i}${path ? ` at '${path}'` : ""} has dtype ${value.dtype}; only ` +
              "float32 and float16 inputs are differentiable (cast with astype, or pass it in an " +
              "argument not listed in argnums)",
          );
        }
        return alias(value);
      });
      for (const a of aliases) tape.addInput(a);
      inputs.push({ unflatten: (v) => unflatten(v) as Tree, aliases });
      traced[i] = unflatten(aliases);
    }
    const pop = pushTrace(tape);
    try {
      raw = (fn as (...a: unknown[]) => unknown)(...traced);
      if (raw instanceof Promise) {
        throw new TypeError(
          `${op}: the function returned a Promise, not a Tensor; ${op} only works with ` +
            "synchronous functions (nothing after an await could be traced)",
        );
      }
      // While the tape still records: a copy made for a repeated output
      // must be on the tape, or its cotangent would be dropped.
      out = freshOutputs(raw, scope);
    } finally {
      pop();
    }
    escaping(out); // validates the output before anything is detached
  } catch (err) {
    defuseTree(raw);
    closeScope(scope);
    throw err;
  }
  return { out, tape, inputs, residuals: detachScope(scope, escaping(out)) };
}

/**
 * Replaces each output tensor that was not created by this call (a caller's
 * tensor passed through) or that appears twice with an alias, so every
 * output is a distinct tensor the caller owns. Runs while the tape records,
 * so aliases of traced values stay connected.
 */
function freshOutputs(out: unknown, scope: Scope): unknown {
  const { leaves, unflatten } = flattenTree(out);
  if (!leaves.some((l) => l.value instanceof Tensor)) return out;
  const seen = new Set<Tensor>();
  return unflatten(leaves.map(({ value }) => {
    if (!(value instanceof Tensor) || value.disposed) return value;
    const fresh = scope.tensors.has(value) && !seen.has(value) ? value : alias(value);
    seen.add(fresh);
    return fresh;
  }));
}

/**
 * @internal The reverse sweep, shared by every reverse-mode transform and by
 * `toDot`: replays `tape` backwards from `seeds` (output, cotangent) and
 * returns the cotangents by tensor id. With `keepAll` false an equation's
 * output cotangent is dropped once used, so only the tape's inputs remain
 * (what `grad` needs); with `keepAll` true every active tensor keeps its own.
 * Integer and boolean values carry no cotangent; each cotangent has its
 * primal's dtype (rules may promote on the way).
 */
export function reverseSweep(
  tape: Tape,
  seeds: readonly (readonly [Tensor, Tensor])[],
  { keepAll }: { keepAll: boolean },
): Map<number, Tensor> {
  const cotangents = new Map<number, Tensor>();
  const accumulate = (t: Tensor, g: Tensor) => {
    const cast = g.dtype === t.dtype ? g : g.astype(t.dtype);
    const prev = cotangents.get(t.id);
    cotangents.set(t.id, prev ? prev.add(cast) : cast);
  };
  for (const [out, g] of seeds) {
    if (tape.isActive(out) && isFloat(out.dtype)) accumulate(out, g);
  }
  // Outputs of custom steps: an outer tape also saw the primitives that
  // computed them, which the custom rule replaces.
  const claimed = new Set<number>();
  for (let i = tape.steps.length - 1; i >= 0; i--) {
    const step = tape.steps[i];
    if ("pullback" in step) {
      for (const t of step.outputs) claimed.add(t.id);
      const gs = step.outputs.map((t) => cotangents.get(t.id) ?? null);
      if (gs.every((g) => g === null)) continue;
      if (!keepAll) { for (const t of step.outputs) cotangents.delete(t.id); }
      const grads = step.pullback(gs);
      step.inputs.forEach((t, j) => {
        const gj = grads[j];
        if (gj && tape.isActive(t) && isFloat(t.dtype)) accumulate(t, gj);
      });
      continue;
    }
    const eqn = step;
    if (claimed.has(eqn.output.id)) continue;
    const g = cotangents.get(eqn.output.id);
    if (!g) continue;
    if (!keepAll) cotangents.delete(eqn.output.id);
    const wants = eqn.inputs.map((t) => tape.isActive(t) && isFloat(t.dtype));
    const rule = VJP_RULES[eqn.prim];
    if (!rule) continue; // not differentiable: never recorded
    const grads = rule(g, eqn, wants);
    eqn.inputs.forEach((t, j) => {
      const gj = grads[j];
      if (wants[j] && gj) accumulate(t, gj);
    });
  }
  return cotangents;
}

/** Replays `tape` in reverse from the given output cotangents. */
function backward(
  tape: Tape,
  makeSeeds: () => readonly [Tensor, Tensor][],
  inputs: Traced["inputs"],
): Tree[] {
  return scoped(
    () => {
      const cotangents = reverseSweep(tape, makeSeeds(), { keepAll: false });
      // Every result is a fresh alias, so no two results (nor a result and a
      // user's tensor) are the same object.
      return inputs.map(({ aliases, unflatten }) =>
        unflatten(aliases.map((a) => {
          const g = cotangents.get(a.id);
          return g ? alias(g) : scalar(0, backendOf(a, "grad"), a.dtype).broadcastTo(a.shape);
        }))
      );
    },
    (trees) => treeTensors(trees),
    "transform",
  );
}

function outputTensors(op: string, out: unknown): Tensor[] {
  const { leaves } = flattenTree(out);
  return leaves.map(({ path, value }) => {
    if (!(value instanceof Tensor)) {
      defuseTree(out);
      throw new TypeError(
        `${op}: the function must return a Tensor or a tree of tensors, but it returned ${
          describe(value)
        }${path ? ` at '${path}'` : ""}`,
      );
    }
    return value;
  });
}

/**
 * Reverse-mode differentiation of `fn` at `primals`: returns `fn(...primals)`
 * and a pullback mapping a cotangent for that output (same tree structure
 * and shapes) to a cotangent for each primal. The pullback keeps the forward
 * values until `pullback.dispose()`.
 *
 * @param fn A pure function of tensors (or trees of tensors).
 * @param primals The point to differentiate at.
 * @returns `[output, pullback]`.
 * @example
 * ```ts
 * import { tensor, vjp, Tensor } from "littlegrad";
 * const [y, pullback] = vjp((x: Tensor) => x.mul(x), tensor([1, 2, 3]));
 * const [dx] = pullback(tensor([1, 1, 1]));
 * console.log(await (dx as Tensor).array()); // [2, 4, 6]
 * pullback.dispose();
 * ```
 */
export function vjp<A extends unknown[], R>(
  fn: (...args: A) => R,
  ...primals: A
): [R, Pullback] {
  const argnums = primals.map((_, i) => i);
  const traced = traceCall(
    "vjp",
    fn as never,
    primals,
    argnums,
    (o) => outputTensors("vjp", o),
  );
  const outs = outputTensors("vjp", traced.out);
  let released = false;
  const dispose = () => {
    if (released) return;
    released = true;
    for (const t of traced.residuals) t.release("transform");
  };
  const pullback = ((cotangent: Tree) => {
    if (released) {
      throw new ReferenceError("vjp: the pullback was used after dispose()");
    }
    const cts = outputTensors("vjp pullback", cotangent);
    if (cts.length !== outs.length) {
      throw new TypeError(
        `vjp pullback: expected ${outs.length} cotangent tensor(s), one per output, got ${cts.length}`,
      );
    }
    cts.forEach((c, i) => {
      if (shapeString(c.shape) !== shapeString(outs[i].shape)) {
        throw new TypeError(
          `vjp pullback: cotangent ${i} has shape ${
            shapeString(c.shape)
          }, but the output has shape ${shapeString(outs[i].shape)}`,
        );
      }
    });
    return backward(
      traced.tape,
      () => outs.map((o, i) => [o, cts[i]]),
      traced.inputs,
    );
  }) as Pullback;
  Object.defineProperty(pullback, "tape", { value: traced.tape });
  pullback.dispose = dispose;
  pullback[Symbol.dispose] = dispose;
  return [traced.out as R, pullback];
}

/**
 * The argument positions `opts.argnums` names. Each may appear once: a
 * repeated position is a `RangeError` (as a repeated axis is), since the
 * same argument cannot be differentiated twice.
 */
function argnumList(
  op: string,
  argnums: GradOptions["argnums"],
): { list: number[]; single: boolean } {
  if (argnums === undefined) return { list: [0], single: true };
  if (typeof argnums === "number") return { list: [argnums], single: true };
  if (!Array.isArray(argnums)) {
    throw new TypeError(
      `${op}: argnums must be a number or an array of numbers, got ${describe(argnums)}`,
    );
  }
  const seen = new Set<number>();
  for (const i of argnums) {
    if (seen.has(i)) {
      throw new RangeError(
        `${op}: argnums [${argnums.join(", ")}] names argument ${i} more than once; ` +
          "list each argument once",
      );
    }
    seen.add(i);
  }
  return { list: [...argnums], single: false };
}

/**
 * Transforms a scalar-valued `fn` into a function returning
 * `[value, gradients]`; gradients have the tree structure of the
 * differentiated argument (a tuple of them when `argnums` is an array). With
 * `hasAux`, `fn` returns `[value, aux]` and so does the result's first entry.
 * Every temporary tensor of the forward and backward pass is released
 * before it returns.
 *
 * @param fn A pure function returning a scalar tensor (shape `[]`).
 * @param opts `argnums` (default 0; each position once) and `hasAux`.
 * @returns The transformed function. If `fn` throws, returns something
 * other than a scalar float tensor (a Promise included: `fn` must be
 * synchronous), or the backward pass fails, the call throws and releases
 * every tensor it created.
 * @example
 * ```ts
 * import { tensor, valueAndGrad, Tensor } from "littlegrad";
 * const f = (p: { w: Tensor }) => p.w.pow(2).sum();
 * const [value, grads] = valueAndGrad(f)({ w: tensor([1, 2]) });
 * console.log(await value.item(), await grads.w.array()); // 5 [2, 4]
 * ```
 */
export function valueAndGrad<
  A extends unknown[],
  R,
  // deno-lint-ignore ban-types
  const O extends GradOptions = {},
>(
  fn: (...args: A) => R,
  opts: O = {} as O,
): (...args: A) => [ValueOf<R, O>, GradsOf<A, O>] {
  return makeValueAndGrad("valueAndGrad", fn, opts);
}

/** `valueAndGrad`, with errors naming `op` (the transform the user called). */
function makeValueAndGrad<A extends unknown[], R, O extends GradOptions>(
  op: string,
  fn: (...args: A) => R,
  opts: O,
): (...args: A) => [ValueOf<R, O>, GradsOf<A, O>] {
  const { list, single } = argnumList(op, opts.argnums);
  return (...args: A): [ValueOf<R, O>, GradsOf<A, O>] => {
    const split = (out: unknown): [unknown, unknown] => {
      if (!opts.hasAux) return [out, undefined];
      if (!Array.isArray(out) || out.length !== 2) {
        throw new TypeError(
          `${op}: with hasAux the function must return [value, aux], got ${describe(out)}`,
        );
      }
      return [out[0], out[1]];
    };
    const escaping = (out: unknown) => {
      const [value, aux] = split(out);
      if (!(value instanceof Tensor)) {
        throw new TypeError(
          `${op}: the function must return a scalar Tensor, but it returned ${describe(value)}`,
        );
      }
      if (!isFloat(value.dtype)) {
        throw new TypeError(
          `${op}: the function must return a float32 or float16 scalar, but it returned dtype ${value.dtype}`,
        );
      }
      if (value.ndim !== 0) {
        throw new TypeError(
          `${op}: the function must return a scalar (shape []), but it returned shape ${
            shapeString(value.shape)
          }; reduce it with .sum() or .mean(), or use vjp for non-scalar outputs`,
        );
      }
      return [value, ...treeTensors(aux)];
    };
    const traced = traceCall(op, fn as never, args, list, escaping);
    const [value, aux] = split(traced.out) as [Tensor, unknown];
    let grads: Tree[];
    try {
      grads = backward(
        traced.tape,
        () => [[value, scalar(1, backendOf(value, op), value.dtype)]],
        traced.inputs,
      );
    } catch (err) {
      // The value and aux were going to the caller, who now gets an error
      // instead: release them too. Inside an outer transform they belong to
      // its scope (its tape may use them), which releases them when it ends.
      if (!isTracing()) {
        for (const t of escaping(traced.out)) t.release("transform");
      }
      throw err;
    } finally {
      for (const t of traced.residuals) t.release("transform");
    }
    return [
      (opts.hasAux ? [value, aux] : value) as ValueOf<R, O>,
      (single ? grads[0] : grads) as GradsOf<A, O>,
    ];
  };
}

/**
 * Transforms a scalar-valued `fn` into a function returning its gradient
 * with respect to argument `argnums` (default 0), with that argument's tree
 * structure. Apply it twice for second derivatives: `grad(grad(f))`.
 *
 * @param fn A pure function returning a scalar tensor.
 * @param opts `argnums` (each position once) and `hasAux` (then the result
 * is `[grads, aux]`).
 * @returns The gradient function.
 * @example
 * ```ts
 * import { grad, tensor, Tensor } from "littlegrad";
 * const f = (x: Tensor) => x.tanh().sum();
 * const d2 = grad((x: Tensor) => grad(f)(x).sum());
 * console.log(await d2(tensor([0.5])).array()); // -2·tanh(0.5)·(1 - tanh²(0.5))
 * ```
 */
export function grad<
  A extends unknown[],
  R,
  // deno-lint-ignore ban-types
  const O extends GradOptions = {},
>(
  fn: (...args: A) => R,
  opts: O = {} as O,
): (
  ...args: A
) => O extends { hasAux: true } ? [GradsOf<A, O>, AuxOf<R>] : GradsOf<A, O> {
  const inner = makeValueAndGrad("grad", fn, opts);
  type Out = O extends { hasAux: true } ? [GradsOf<A, O>, AuxOf<R>]
    : GradsOf<A, O>;
  return (...args: A): Out => {
    const [out, grads] = inner(...args);
    if (!opts.hasAux) {
      // Inside an outer transform the value may be on its tape (the inner
      // backward pass used it): the enclosing scope releases it later.
      if (!isTracing()) (out as Tensor).dispose();
      return grads as Out;
    }
    const [value, aux] = out as [Tensor, unknown];
    if (!isTracing()) value.dispose();
    return [grads, aux] as Out;
  };
}

/** @internal The float tensor leaves of some arguments, and how to put others in their place. */
export interface FloatLeaves {
  /** The leaves, in argument and tree order. */
  readonly tensors: readonly Tensor[];
  /** Each leaf's argument and its path in that argument's tree. */
  readonly places: readonly { readonly arg: number; readonly path: string }[];
  /**
   * The arguments rebuilt: each float leaf replaced by `pick(k, value)` (`k`
   * its index in `tensors`), every other leaf by `pick(-1, value)`.
   */
  rebuild(pick: (k: number, value: unknown) => unknown): unknown[];
}

/**
 * @internal The leaves of `args` that can be differentiated: float tensors,
 * not numbers traced by jit. The rest (integer indices, numbers, strings)
 * is held fixed by the callers (`hvp`, `checkpoint`'s recomputation).
 */
export function floatLeaves(args: readonly unknown[]): FloatLeaves {
  const trees = args.map((a) => flattenTree(a));
  const tensors: Tensor[] = [];
  const places: { arg: number; path: string }[] = [];
  const index = trees.map((tree, arg) =>
    tree.leaves.map(({ value, path }) => {
      if (!(value instanceof Tensor) || !isFloat(value.dtype) || weakTensors.has(value)) return -1;
      places.push({ arg, path });
      return tensors.push(value) - 1;
    })
  );
  return {
    tensors,
    places,
    rebuild: (pick) =>
      trees.map((tree, arg) =>
        tree.unflatten(tree.leaves.map(({ value }, leaf) => pick(index[arg][leaf], value)))
      ),
  };
}
