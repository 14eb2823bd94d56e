/**
 * Hand-written reverse rules: `customVjp` gives a function its own VJP, and
 * `checkpoint` (rematerialisation) is one such rule — keep only the inputs,
 * recompute the rest in the backward pass.
 *
 * A call records one step on the innermost reverse-mode tape that traces
 * one of its inputs (`Tape.recordCustom`); that tape does not see the
 * function's primitives, while every other level (outer tapes, forward
 * mode) still does. So `grad` uses the custom rule, and the rule is written
 * with public ops, which an outer `grad` differentiates: the gradient of a
 * custom gradient works. Forward mode differentiates the function itself.
 *
 * Inside `vmap` or `jit` with no tape in between, a call is staged as a
 * region of the trace (`stageRegion`): the trace keeps the rule beside the
 * region's equations, so a `grad` outside the `vmap` or `jit` still uses it
 * (vmap batches the rule itself). What is still refused: a custom rule
 * taken by a `grad` inside the `vmap` or `jit` while another `grad` outside
 * it is also differentiating (`grad(jit(grad(f)))` with `f` custom).
 * @module
 */

import { alias, hiddenLevels, isTracing, visibleLevels, withoutLevel } from "./core/interpreter.ts";
import { stageRegion } from "./staging.ts";
import { closeScope, openScope, releaseScope } from "./core/scope.ts";
import { describe } from "./core/errors.ts";
import { backendOf, scalar } from "./ops/_operands.ts";
import { shapeString } from "./shape.ts";
import { type CustomStep, Tape } from "./tape.ts";
import { Tensor } from "./tensor.ts";
import { flattenTree } from "./tree.ts";
import { floatLeaves, vjp } from "./transforms.ts";

/** The rules of `customVjp`. */
export interface CustomVjpRules<A extends unknown[], R, Res> {
  /** Computes the output (as `fn` does) and the residuals `bwd` needs. */
  fwd: (...args: A) => [R, Res];
  /**
   * Maps the residuals and the output's cotangent (a tree like the output)
   * to one cotangent per argument: a tree like the argument, or `null` for
   * an argument without one.
   */
  bwd: (residuals: Res, cotangent: R) => readonly unknown[];
}

/** Options of `customVjp`. */
export interface CustomVjpOptions {
  /** The name used in errors (default: the function's name). */
  name?: string;
}

interface InputLeaf {
  arg: number;
  path: string;
  t: Tensor;
}

/**
 * Gives `fn` a hand-written reverse-mode rule. Under `grad`, `vjp` and
 * `valueAndGrad`, a call runs `fwd` (the output and residuals) and the
 * backward pass calls `bwd` instead of differentiating `fn`'s primitives.
 * Outside reverse mode, and in forward mode, `fn` itself runs. `bwd` is
 * written with public ops, so a gradient of the custom gradient works.
 *
 * @param fn The function (the reference `fwd` must agree with).
 * @param rules `fwd` and `bwd`.
 * @param opts `name`, used in errors.
 * @returns A function with `fn`'s signature and the custom rule.
 * @example
 * ```ts
 * import { customVjp, grad, type Tensor, tensor } from "littlegrad";
 * // A straight-through estimator: round forward, identity backward.
 * const roundSte = customVjp((x: Tensor) => x.round(), {
 *   fwd: (x: Tensor) => [x.round(), null],
 *   bwd: (_residuals: null, g: Tensor) => [g],
 * });
 * console.log(await grad((x: Tensor) => roundSte(x).mul(x).sum())(tensor([0.4, 1.6])).array());
 * // [0.4, 3.6]: x + round(x); plain round would give round(x) = [0, 2]
 * ```
 */
export function customVjp<A extends unknown[], R, Res>(
  fn: (...args: A) => R,
  rules: CustomVjpRules<A, R, Res>,
  opts: CustomVjpOptions = {},
): (...args: A) => R {
  const name = opts.name ?? (fn.name || "customVjp");
  if (
    typeof fn !== "function" || typeof rules?.fwd !== "function" || typeof rules?.bwd !== "function"
  ) {
    throw new TypeError(`customVjp: expected a function and { fwd, bwd } functions (${name})`);
  }
  return customCall(name, fn, rules, false);
}

/**
 * Rematerialisation: the backward pass recomputes `fn`'s intermediates from
 * its inputs instead of keeping them, trading compute for memory. The
 * gradients are those of `fn` itself, bitwise.
 *
 * @param fn The function whose intermediates are recomputed.
 * @returns A function with `fn`'s signature.
 * @example
 * ```ts
 * import { checkpoint, grad, type Tensor, tensor } from "littlegrad";
 * const layer = checkpoint((x: Tensor) => x.tanh().mul(2).exp());
 * console.log(await grad((x: Tensor) => layer(layer(x)).sum())(tensor([0.1, 0.2])).array());
 * ```
 */
export function checkpoint<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  if (typeof fn !== "function") {
    throw new TypeError(`checkpoint: expected a function, got ${describe(fn)}`);
  }
  return customCall<A, R, A>(`checkpoint(${fn.name || "fn"})`, fn, {
    fwd: (...args) => [fn(...args), args],
    bwd: (args, cotangent) => recompute(fn, args, cotangent),
  }, true);
}

/**
 * `checkpoint`'s backward pass: runs `fn` again under `vjp`, differentiating
 * only its float tensor leaves (numbers, strings and integer tensors are
 * passed as they are and get no cotangent).
 */
function recompute<A extends unknown[]>(
  fn: (...args: A) => unknown,
  args: A,
  cotangent: unknown,
): unknown[] {
  const leaves = floatLeaves(args);
  if (leaves.tensors.length === 0) return args.map(() => null);
  const [out, pullback] = vjp(
    (...ts: Tensor[]) => fn(...leaves.rebuild((k, value) => (k >= 0 ? ts[k] : value)) as A),
    ...leaves.tensors,
  );
  try {
    const cts = pullback(cotangent as never) as Tensor[];
    return leaves.rebuild((k) => (k >= 0 ? cts[k] : null));
  } finally {
    pullback.dispose();
    // Inside an outer transform the recomputed values may be on its tape.
    if (!isTracing()) {
      for (const leaf of flattenTree(out).leaves) {
        if (leaf.value instanceof Tensor) leaf.value.dispose();
      }
    }
  }
}

/**
 * The straight-through estimator: `forward(x)` in the forward pass, the
 * identity in the backward pass, so a gradient flows through a step that
 * has none (rounding for quantisation-aware training, hard thresholds).
 * Built with `customVjp`.
 *
 * @param forward An elementwise function that keeps `x`'s shape.
 * @returns The function with an identity backward pass.
 * @example
 * ```ts
 * import { grad, straightThrough, type Tensor, tensor } from "littlegrad";
 * const quantize = straightThrough((x: Tensor) => x.mul(4).round().div(4)); // to quarters
 * const loss = (w: Tensor) => quantize(w).sub(0.3).square().sum();
 * console.log(await grad(loss)(tensor([0.9])).array()); // [1.4]: 2·(1 - 0.3)·1; plain round gives 0
 * ```
 */
export function straightThrough(forward: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  return customVjp(forward, {
    fwd: (x: Tensor) => [forward(x), null],
    bwd: (_: null, g: Tensor) => [g],
  }, { name: `straightThrough(${forward.name || "fn"})` });
}

/**
 * @internal A custom rule over flat lists of tensors: what `callCustom`
 * applies and what a trace keeps of a custom call (`TraceRegion`), so that
 * `vmap` can batch it and a replayed trace can use it again.
 */
export interface CustomRule {
  /** The name used in errors. */
  readonly name: string;
  /**
   * Whether `fwd` computes the function with its own primitives, so that
   * differentiating them gives its gradient (checkpoint): then intermediates
   * nobody recorded may be freed after `fwd`, and a tape that sees only
   * those primitives loses nothing.
   */
  readonly fwdIsFn: boolean;
  /**
   * Whether `fwd` and `bwd` are known to read only their arguments (a rule
   * a trace kept, or one batched from it), so a new trace need not check.
   */
  readonly checked?: boolean;
  /** The outputs, the residual tensors, and the rest of the residuals (opaque). */
  fwd(inputs: readonly Tensor[]): CustomForward;
  /** One cotangent per input (null: none) from the outputs' cotangents. */
  bwd(
    residuals: readonly Tensor[],
    rest: unknown,
    cotangents: readonly Tensor[],
  ): readonly (Tensor | null)[];
}

/** @internal What a `CustomRule`'s `fwd` returns. */
export interface CustomForward {
  /** The function's outputs. */
  outputs: Tensor[];
  /** The tensors among the residuals. */
  residuals: Tensor[];
  /** Whatever else `bwd` needs (the residuals' tree and other leaves). */
  rest: unknown;
}

/**
 * @internal Applies a function with a custom rule to flat `inputs`: `fn`
 * computes the function itself, where no tape needs the rule; the innermost
 * reverse-mode tape that traces an input records one step with the rule
 * instead. While a trace is being made and no level sees the call, the call
 * is recorded as a region of the trace, so replaying the trace under `grad`
 * applies the rule again.
 */
export function callCustom(
  rule: CustomRule,
  inputs: readonly Tensor[],
  fn: (inputs: readonly Tensor[]) => Tensor[],
): Tensor[] {
  const { name } = rule;
  const levels = visibleLevels(); // innermost first
  if (levels.length === 0) return stageRegion(rule, inputs, fn, callCustom);
  const tapes = levels.filter((l): l is Tape =>
    l instanceof Tape && inputs.some((t) => l.isActive(t))
  );
  if (tapes.length === 0) return fn(inputs);
  const tape = tapes[0];
  // A forward level inside the tape would compute tangents of fwd's values
  // that the tape cannot see: then every level differentiates fn itself.
  if (levels.indexOf(tape) > 0) return fn(inputs);
  // A tape inside vmap or jit uses the rule, but a tape outside the trace
  // would differentiate fwd's primitives instead of using it: refuse rather
  // than lose the rule, unless fwd's primitives are fn's own (checkpoint).
  // Captured data (not traced) is fine.
  if (
    !rule.fwdIsFn && inputs.some((t) => t.isTraced) &&
    hiddenLevels().some((l) => l instanceof Tape)
  ) {
    throw new TypeError(
      `${name}: a custom gradient (customVjp, straightThrough) taken by grad inside vmap or ` +
        "jit, under another grad outside it, is not supported yet: the outer grad would lose " +
        "the custom rule. Take the gradients on one side of the vmap or jit",
    );
  }
  // The forward pass, unseen by `tape`; other levels see it as usual.
  const scope = openScope("op");
  let forward: CustomForward, outputs: Tensor[];
  try {
    forward = withoutLevel(tape, () => rule.fwd(inputs));
    const seen = new Set<Tensor>(inputs);
    outputs = forward.outputs.map((value) => {
      // Each output a distinct new tensor, so the tape can tell them apart;
      // with outer tapes always a new one, so only it is claimed by the
      // custom step and fwd's own values (residuals) keep their equations.
      const fresh = seen.has(value) || tapes.length > 1
        ? withoutLevel(tape, () => alias(value))
        : value;
      seen.add(fresh);
      return fresh;
    });
  } catch (err) {
    closeScope(scope);
    throw err;
  }
  const keep = [...outputs, ...forward.residuals];
  // Intermediates nobody recorded can go now (what checkpoint saves).
  if (rule.fwdIsFn && levels.length === 1 && hiddenLevels().length === 0) {
    releaseScope(scope, keep);
  } else closeScope(scope, keep);
  const step: CustomStep = {
    name,
    inputs,
    outputs,
    pullback: (cotangents) => {
      const full = cotangents.map((g, i) =>
        g ??
          scalar(0, backendOf(outputs[i], name), outputs[i].dtype).broadcastTo(outputs[i].shape)
      );
      return rule.bwd(forward.residuals, forward.rest, full);
    },
  };
  // Every tape tracing an input uses the rule; the outer ones also saw
  // fwd's primitives (so residuals stay connected for higher orders), and
  // their sweep lets the step replace them.
  for (const t of tapes) t.recordCustom(step);
  return outputs;
}

/**
 * A function of pytrees with a custom rule, as `callCustom` over its tensor
 * leaves: the other leaves of the arguments pass through as they are.
 */
function customCall<A extends unknown[], R, Res>(
  name: string,
  fn: (...args: A) => R,
  { fwd, bwd }: CustomVjpRules<A, R, Res>,
  fwdIsFn: boolean,
): (...args: A) => R {
  return (...args: A): R => {
    const inputs: InputLeaf[] = args.flatMap((a, arg) =>
      flattenTree(a).leaves.flatMap(({ path, value }) =>
        value instanceof Tensor ? [{ arg, path, t: value }] : []
      )
    );
    const withTensors = (ts: readonly Tensor[]): A => {
      let k = 0;
      return args.map((a) => {
        const { leaves, unflatten } = flattenTree(a);
        return unflatten(leaves.map((l) => l.value instanceof Tensor ? ts[k++] : l.value));
      }) as A;
    };
    // The result's tree, from whichever of fn and fwd ran (the same tree).
    let result = flattenTree(undefined);
    const tensorsOf = (value: unknown, strict: boolean): Tensor[] => {
      result = flattenTree(value);
      return result.leaves.flatMap(({ path, value }) => {
        if (value instanceof Tensor) return [value];
        if (!strict) return [];
        throw new TypeError(
          `${name}: output ${path || "value"} is ${describe(value)}; the output must be tensors`,
        );
      });
    };
    const rule: CustomRule = {
      name,
      fwdIsFn,
      fwd: (ts) => {
        const both = fwd(...withTensors(ts));
        if (!Array.isArray(both) || both.length !== 2) {
          throw new TypeError(
            `${name}: fwd must return [output, residuals], got ${describe(both)}`,
          );
        }
        const residuals = flattenTree(both[1]);
        return {
          outputs: tensorsOf(both[0], true),
          residuals: residuals.leaves.flatMap((l) => l.value instanceof Tensor ? [l.value] : []),
          rest: residuals,
        };
      },
      bwd: (ts, rest, cotangents) => {
        const tree = rest as ReturnType<typeof flattenTree>;
        let k = 0;
        const residuals = tree.unflatten(
          tree.leaves.map((l) => l.value instanceof Tensor ? ts[k++] : l.value),
        ) as Res;
        const grads = bwd(residuals, result.unflatten(cotangents) as R);
        return cotangentsOf(name, grads, args.length, inputs);
      },
    };
    const outputs = callCustom(
      rule,
      inputs.map((i) => i.t),
      (ts) => tensorsOf(fn(...withTensors(ts)), false),
    );
    let k = 0;
    return result.unflatten(
      result.leaves.map((l) => l.value instanceof Tensor ? outputs[k++] : l.value),
    ) as R;
  };
}

/** The cotangent `bwd` gave each input leaf, checked against its shape. */
function cotangentsOf(
  name: string,
  grads: unknown,
  count: number,
  inputs: readonly InputLeaf[],
): (Tensor | null)[] {
  if (!Array.isArray(grads) || grads.length !== count) {
    throw new TypeError(
      `${name}: bwd must return one cotangent per argument (${count}), got ${describe(grads)}`,
    );
  }
  const byArg = grads.map((g, arg) => {
    if (g === null || g === undefined) return null;
    const given = new Map(flattenTree(g).leaves.map((l) => [l.path, l.value]));
    // The cotangent's tree must be the argument's (its tensor leaves at least).
    const expected = inputs.filter((i) => i.arg === arg).map((i) => i.path);
    const extra = [...given.entries()]
      .filter(([path, v]) => !expected.includes(path) && v !== null && v !== undefined)
      .map(([path]) => path);
    const missing = expected.filter((path) => !given.has(path));
    if (extra.length > 0 || missing.length > 0) {
      const list = (paths: string[]) => `[${paths.map((p) => `'${p}'`).join(", ")}]`;
      throw new TypeError(
        `${name}: bwd's cotangent for argument ${arg} has the leaves ${list([...given.keys()])}, ` +
          `but the argument's tensors are at ${list(expected)}: return a tree like the argument ` +
          "(null for a leaf without a cotangent)",
      );
    }
    return given;
  });
  return inputs.map(({ arg, path, t }) => {
    const g = byArg[arg]?.get(path) ?? null;
    if (g === null || g === undefined) return null;
    if (!(g instanceof Tensor) || g.shape.join() !== t.shape.join()) {
      throw new TypeError(
        `${name}: bwd's cotangent for argument ${arg}${path ? ` at '${path}'` : ""} must be ` +
          `a tensor of shape ${shapeString(t.shape)}, got ${
            g instanceof Tensor ? `shape ${shapeString(g.shape)}` : describe(g)
          }`,
      );
    }
    return g;
  });
}
