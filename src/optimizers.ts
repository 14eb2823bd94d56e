/**
 * Optimizers in the style of optax: every optimizer, and every piece one is
 * built from, is a `GradientTransformation` — a pair of pure functions
 *
 * - `init(params) → state`, and
 * - `update(updates, state, params?) → [newUpdates, newState]`,
 *
 * where `updates` starts as the gradients and ends as the step to *add* to
 * the parameters (`applyUpdates(params, updates)`, so a learning rate comes
 * out negated). Pieces compose with `chain`: `adam(lr)` is
 * `chain(scaleByAdam(), scaleByLearningRate(lr))`, and
 * `chain(clipByGlobalNorm(1), adam(lr))` clips first.
 *
 * States are pytrees of tensors: moments, momentum, and the step `count`, an
 * int32 scalar tensor that `update` advances with ops, as optax does — so a
 * whole training step, bias corrections and schedules included, traces
 * under `jit` once and reads nothing back. A state whose count is a plain
 * number (built by hand, or kept from before) works too, eagerly: the count
 * stays a number, and the scalars are computed on the host (which is what a
 * user's `(step: number) => number` schedule needs). Nothing is mutated:
 * `update` returns fresh tensors and never disposes its arguments. After a
 * step the caller disposes what it replaced — the gradients, the updates
 * once applied, the old parameters and the old state:
 *
 * ```ts ignore
 * const [updates, nextState] = opt.update(grads, state, params);
 * const nextParams = optim.applyUpdates(params, updates);
 * disposeTree([grads, updates, params, state]);
 * ```
 *
 * Every temporary inside `update` is released before it returns.
 * @module
 */

import { callSchedule, scalarMath as S } from "./schedules.ts";
import { shapeString } from "./shape.ts";
import { describe, named } from "./core/errors.ts";
import { Tensor } from "./tensor.ts";
import { tidy } from "./core/scope.ts";
import { flattenTree, type Tree } from "./tree.ts";
import { zeros } from "./creation.ts";
import type { DType } from "./dtype.ts";

// The public schedules (schedules.ts also holds internal helpers used here).
export {
  constantSchedule,
  cosineDecaySchedule,
  joinSchedules,
  linearSchedule,
  type Schedule,
  warmupCosineDecaySchedule,
} from "./schedules.ts";

/**
 * A learning rate: a number, or a schedule of the step count — a `Schedule`
 * (the built-in ones), which takes the count as a tensor too and so works
 * under `jit`, or any `(step: number) => number`, which works while the
 * state's count is a number (eager steps from a hand-built state).
 */
export type LearningRate = number | ((step: number) => number);

/**
 * A gradient transformation (optax's name): `init` makes the state for a
 * parameter tree, `update` maps updates (initially gradients) to new updates
 * and a new state. Both are pure: they never modify or dispose their
 * arguments, and return fresh tensors.
 */
export interface GradientTransformation<S = unknown> {
  /**
   * The initial state for `params` (zeros for moments, an int32 scalar
   * tensor 0 for a step count).
   * @param params The parameter tree the optimizer will update.
   * @returns The state, a pytree the caller owns.
   */
  init(params: unknown): S;
  /**
   * Transforms `updates` (gradients) into the step to add to the parameters.
   * @param updates A tree with the structure and shapes of the parameters.
   * @param state The state from `init` or the previous `update`.
   * @param params The current parameters (needed by weight decay).
   * @returns `[newUpdates, newState]`.
   */
  update<U>(updates: U, state: S, params?: unknown): [U, S];
}

/** State of transformations without state. */
export type EmptyState = Record<string, never>;

/**
 * State of `scaleByLearningRate`: the number of updates so far, an int32
 * scalar tensor (a plain number in a hand-built state: it stays one).
 */
export type CountState = { count: Tensor | number };

/** State of `trace` (momentum): the running trace, shaped like the params. */
export type TraceState = { trace: Tree };

/** State of `scaleByAdam`: step count (as in `CountState`) and first and second moments. */
export type AdamState = { count: Tensor | number; mu: Tree; nu: Tree };

// ---- helpers -------------------------------------------------------------------

/**
 * `tidy(fn)` on behalf of the optimizer piece `op`: an error from inside (a
 * backend mix-up, a buffer limit) names `op` first (see `named`).
 */
function tidyNamed<T>(op: string, fn: () => T): T {
  return named(op, () => tidy(fn));
}

/**
 * Applies `fn` leaf by leaf to `tree` and the matching leaves of `others`,
 * checking every leaf is a tensor and structures and shapes agree.
 */
function mapLeaves(
  op: string,
  fn: (x: Tensor, ...rest: Tensor[]) => Tensor,
  tree: unknown,
  ...others: { name: string; tree: unknown }[]
): Tree {
  return mapNamed(op, "updates", fn, tree, ...others);
}

/** `mapLeaves`, calling the first tree `first` in error messages. */
function mapNamed(
  op: string,
  first: string,
  fn: (x: Tensor, ...rest: Tensor[]) => Tensor,
  tree: unknown,
  ...others: { name: string; tree: unknown }[]
): Tree {
  const { leaves, unflatten } = flattenTree(tree);
  const flats = others.map(({ name, tree: t }) => {
    const flat = flattenTree(t).leaves;
    const paths = leaves.map((l) => l.path).join(", ");
    if (
      flat.length !== leaves.length || flat.some((l, i) => l.path !== leaves[i].path)
    ) {
      throw new TypeError(
        `${op}: ${name} do not have the structure of the ${first} (leaves ${
          flat.map((l) => l.path || "(root)").join(", ")
        } vs ${paths || "(root)"})`,
      );
    }
    return flat;
  });
  return unflatten(leaves.map((leaf, i) => {
    const where = leaf.path ? ` at '${leaf.path}'` : "";
    if (!(leaf.value instanceof Tensor)) {
      throw new TypeError(`${op}: ${first}${where} is ${describe(leaf.value)}, not a Tensor`);
    }
    const x = leaf.value;
    const rest = flats.map((flat, j) => {
      const v = flat[i].value;
      if (!(v instanceof Tensor)) {
        throw new TypeError(`${op}: ${others[j].name}${where} is ${describe(v)}, not a Tensor`);
      }
      if (shapeString(v.shape) !== shapeString(x.shape)) {
        throw new TypeError(
          `${op}: ${others[j].name}${where} has shape ${
            shapeString(v.shape)
          }, but the ${first} have ${shapeString(x.shape)}`,
        );
      }
      return v;
    });
    return fn(x, ...rest);
  })) as Tree;
}

/** Zeros shaped like each tensor of `params`, on its backend. */
function zerosLike(op: string, params: unknown): Tree {
  return mapNamed(op, "params", (p) => zeros(p.shape, { backend: p.backend }), params);
}

function checkNumber(op: string, name: string, v: unknown, min = -Infinity): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new RangeError(
      `${op}: ${name} must be a finite number${min > -Infinity ? ` >= ${min}` : ""}, got ${
        String(v)
      }`,
    );
  }
  return v;
}

function checkObject(op: string, state: unknown, keys: string[]): void {
  if (
    state === null || typeof state !== "object" || keys.some((k) => !(k in (state as object)))
  ) {
    throw new TypeError(
      `${op}: state must be the object init() returned (with ${keys.join(", ")}), got ${
        describe(state)
      }`,
    );
  }
}

/** The step count 0 for `params`: an int32 scalar on the backend of their first tensor. */
function zeroCount(params: unknown): Tensor {
  const first = flattenTree(params).leaves.find((l) => l.value instanceof Tensor);
  return zeros([], { dtype: "int32", backend: (first?.value as Tensor | undefined)?.backend });
}

/** `state.count` checked: an int32 scalar tensor (as `init` makes), or a non-negative integer. */
function checkCount(op: string, count: unknown): Tensor | number {
  if (count instanceof Tensor) {
    if (count.dtype !== "int32" || count.shape.length !== 0) {
      throw new TypeError(
        `${op}: state.count must be an int32 scalar tensor (shape []) or a non-negative ` +
          `integer, got ${count}`,
      );
    }
    return count;
  }
  if (typeof count !== "number" || !Number.isInteger(count) || count < 0) {
    throw new TypeError(
      `${op}: state.count must be a non-negative integer or an int32 scalar tensor, got ${
        typeof count === "number" ? count : describe(count)
      }`,
    );
  }
  return count;
}

/**
 * `fn(x, c)` for each leaf `x`, with the scalar `c` (a number or a float
 * scalar tensor) as the operand next to `x`: a number as is (a weak
 * scalar), a tensor cast to `x`'s dtype (once per dtype), so that float16
 * leaves stay float16 as they do next to a number.
 */
function withScalar(
  c: number | Tensor,
  fn: (x: Tensor, c: number | Tensor) => Tensor,
): (x: Tensor) => Tensor {
  if (typeof c === "number") return (x) => fn(x, c);
  const cast = new Map<DType, Tensor>([[c.dtype, c]]);
  return (x) => {
    if (!cast.has(x.dtype)) cast.set(x.dtype, c.astype(x.dtype));
    return fn(x, cast.get(x.dtype)!);
  };
}

/**
 * The learning rate at `count`: a number, or the schedule's value, checked
 * (a finite number for a number count; for a tensor count, `callSchedule`
 * requires a float tensor and explains when the schedule cannot take one).
 */
function learningRateAt(
  op: string,
  learningRate: LearningRate,
  count: Tensor | number,
): Tensor | number {
  if (typeof learningRate !== "function") return learningRate;
  const lr = callSchedule(op, "the learning-rate schedule", learningRate, count);
  if (typeof count === "number") checkNumber(op, `the learning rate at step ${count}`, lr);
  return lr;
}

/** `t`'s update, named `op` in errors (`optim.adam: optim.scaleByAdam: ...`). */
function namedOptimizer<S>(
  op: string,
  t: GradientTransformation<S>,
): GradientTransformation<S> {
  return {
    init: (params) => named(op, () => t.init(params)),
    update: (updates, state, params) => named(op, () => t.update(updates, state, params)),
  };
}

function requireParams(op: string, params: unknown): unknown {
  if (params === undefined) {
    throw new TypeError(`${op}: update() needs the current params (pass them as 3rd argument)`);
  }
  return params;
}

// ---- building blocks -------------------------------------------------------------

/**
 * Multiplies updates by a constant.
 *
 * @param factor The factor.
 * @returns The transformation (state `{}`).
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const half = optim.scale(0.5);
 * const [u] = half.update({ w: tensor([2, 4]) }, half.init({}));
 * console.log(await u.w.array()); // [1, 2]
 * ```
 */
export function scale(factor: number): GradientTransformation<EmptyState> {
  const op = "optim.scale";
  checkNumber(op, "factor", factor);
  return {
    init: () => ({}),
    update: (updates, state) => {
      checkObject(op, state, []);
      return tidyNamed(op, () => [mapLeaves(op, (u) => u.mul(factor), updates), {}]) as [
        typeof updates,
        EmptyState,
      ];
    },
  };
}

/**
 * Scales updates by `-learningRate` (a number, or a schedule of the step
 * count): the last piece of most optimizers, turning a direction into a
 * descent step. The state counts the updates: an int32 scalar tensor from
 * `init`, advanced with an op (so a schedule runs on the tensor count, with
 * ops: nothing is read back, and `jit` traces it), or a number in a state
 * built by hand, advanced on the host (a `(step: number) => number`
 * schedule needs that). The count keeps its kind: number in, number out.
 *
 * @param learningRate A number or a schedule.
 * @returns The transformation (state `{ count }`).
 * @example
 * ```ts
 * import { optim, tensor, type Tensor } from "littlegrad";
 * const lr = optim.scaleByLearningRate(optim.linearSchedule({
 *   initValue: 0.1,
 *   endValue: 0,
 *   transitionSteps: 10,
 * }));
 * const [u, s] = lr.update({ w: tensor([1, 2]) }, lr.init({}));
 * console.log(await u.w.array(), await (s.count as Tensor).item()); // [-0.1, -0.2] 1
 * // A number count (a hand-built state) stays a number:
 * const [u2, s2] = lr.update({ w: tensor([1, 2]) }, { count: 5 });
 * console.log(await u2.w.array(), s2.count); // [-0.05, -0.1] 6
 * ```
 */
export function scaleByLearningRate(
  learningRate: LearningRate,
): GradientTransformation<CountState> {
  const op = "optim.scaleByLearningRate";
  if (typeof learningRate !== "function") checkNumber(op, "learningRate", learningRate);
  return {
    init: (params) => ({ count: zeroCount(params) }),
    update: (updates, state) => {
      checkObject(op, state, ["count"]);
      const count = checkCount(op, state.count);
      return tidyNamed(op, () => {
        const factor = S.neg(learningRateAt(op, learningRate, count));
        const scaled = mapLeaves(op, withScalar(factor, (u, c) => u.mul(c)), updates);
        return [scaled as typeof updates, { count: S.add(count, 1) }];
      });
    },
  };
}

/**
 * Adds `weightDecay · params` to the updates (L2 regularisation when used
 * before the optimizer's scaling, decoupled weight decay as in AdamW when
 * used after `scaleByAdam`).
 *
 * @param weightDecay The decay coefficient.
 * @returns The transformation (state `{}`); its `update` needs `params`.
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const wd = optim.addDecayedWeights(0.1);
 * const params = { w: tensor([10]) };
 * const [u] = wd.update({ w: tensor([1]) }, wd.init(params), params);
 * console.log(await u.w.array()); // [2]
 * ```
 */
export function addDecayedWeights(weightDecay: number): GradientTransformation<EmptyState> {
  const op = "optim.addDecayedWeights";
  checkNumber(op, "weightDecay", weightDecay, 0);
  return {
    init: () => ({}),
    update: (updates, state, params) => {
      checkObject(op, state, []);
      requireParams(op, params);
      const out = tidyNamed(op, () =>
        mapLeaves(op, (u, p) => u.add(p.mul(weightDecay)), updates, {
          name: "params",
          tree: params,
        }));
      return [out as typeof updates, {}];
    },
  };
}

/**
 * Momentum: keeps a trace `t ← g + decay·t` and outputs it, or with Nesterov
 * `g + decay·t` (PyTorch's SGD momentum without dampening; optax's `trace`).
 *
 * @param opts `decay` (the momentum, e.g. 0.9) and `nesterov` (default false).
 * @returns The transformation (state `{ trace }`).
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const m = optim.trace({ decay: 0.9 });
 * const params = { w: tensor([0]) };
 * let state = m.init(params);
 * let u;
 * [u, state] = m.update({ w: tensor([1]) }, state, params); // trace 1
 * [u, state] = m.update({ w: tensor([1]) }, state, params); // trace 1 + 0.9·1
 * console.log(await u.w.array()); // [1.9]
 * ```
 */
export function trace(
  opts: { decay: number; nesterov?: boolean },
): GradientTransformation<TraceState> {
  const op = "optim.trace";
  const decay = checkNumber(op, "decay", opts?.decay, 0);
  const nesterov = opts.nesterov ?? false;
  return {
    init: (params) => ({ trace: zerosLike(op, params) }),
    update: (updates, state) => {
      checkObject(op, state, ["trace"]);
      return tidyNamed(op, () => {
        const newTrace = mapLeaves(
          op,
          (g, t) => g.add(t.mul(decay)),
          updates,
          { name: "state.trace", tree: state.trace },
        );
        const out = nesterov
          ? mapLeaves(op, (g, t) => g.add(t.mul(decay)), updates, {
            name: "state.trace",
            tree: newTrace,
          })
          : mapLeaves(op, (t) => t.reshape(t.shape), newTrace); // a distinct tensor
        return [out as typeof updates, { trace: newTrace }];
      });
    },
  };
}

/**
 * Adam's rescaling (Kingma & Ba, 2015), without the learning rate:
 * `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`, output
 * `m̂ / (√v̂ + ε)` with `m̂ = m/(1-β₁ᵗ)`, `v̂ = v/(1-β₂ᵗ)` and `t` the
 * step number from 1 (optax's `scale_by_adam`). The state's count is an
 * int32 scalar tensor, and the bias corrections are computed from it with
 * ops, on the device (see `scaleByLearningRate` for a number count).
 *
 * @param opts `b1` (0.9), `b2` (0.999), `eps` (1e-8).
 * @returns The transformation (state `{ count, mu, nu }`).
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const adam = optim.scaleByAdam();
 * const params = { w: tensor([0, 0]) };
 * const [u] = adam.update({ w: tensor([3, -0.5]) }, adam.init(params), params);
 * console.log(await u.w.array()); // ≈ [1, -1]: the first Adam step is sign(g)
 * ```
 */
export function scaleByAdam(
  opts: { b1?: number; b2?: number; eps?: number } = {},
): GradientTransformation<AdamState> {
  const op = "optim.scaleByAdam";
  const b1 = checkNumber(op, "b1", opts.b1 ?? 0.9, 0);
  const b2 = checkNumber(op, "b2", opts.b2 ?? 0.999, 0);
  const eps = checkNumber(op, "eps", opts.eps ?? 1e-8, 0);
  if (b1 >= 1 || b2 >= 1) {
    throw new RangeError(`${op}: b1 and b2 must be in [0, 1), got ${b1} and ${b2}`);
  }
  return {
    init: (params) => ({
      count: zeroCount(params),
      mu: zerosLike(op, params),
      nu: zerosLike(op, params),
    }),
    update: (updates, state) => {
      checkObject(op, state, ["count", "mu", "nu"]);
      const previous = checkCount(op, state.count);
      return tidyNamed(op, () => {
        const count = S.add(previous, 1);
        // 1 - βᵗ as -expm1(t·ln β), with ln β taken on the host in float64:
        // no cancellation at small t, where a float32 pow(β, t) (on a GPU
        // through log2) loses digits. β = 0 gives ln β = -∞ and 1, as it should.
        const t = S.float(count);
        const debias1 = withScalar(S.neg(S.expm1(S.mul(t, Math.log(b1)))), (m, c) => m.div(c));
        const debias2 = withScalar(S.neg(S.expm1(S.mul(t, Math.log(b2)))), (v, c) => v.div(c));
        const mu = mapLeaves(op, (g, m) => m.mul(b1).add(g.mul(1 - b1)), updates, {
          name: "state.mu",
          tree: state.mu,
        });
        const nu = mapLeaves(op, (g, v) => v.mul(b2).add(g.mul(g).mul(1 - b2)), updates, {
          name: "state.nu",
          tree: state.nu,
        });
        const out = mapLeaves(
          op,
          (m, v) => debias1(m).div(debias2(v).sqrt().add(eps)),
          mu,
          { name: "state.nu", tree: nu },
        );
        return [out as typeof updates, { count, mu, nu }];
      });
    },
  };
}

/**
 * The global L2 norm of a tree of tensors, `√(Σ x²)` over every element of
 * every leaf, as a scalar tensor (no GPU read).
 *
 * @param tree A tree of tensors.
 * @returns A scalar tensor.
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * console.log(await optim.globalNorm({ a: tensor([3]), b: tensor([4]) }).item()); // 5
 * ```
 */
export function globalNorm(tree: unknown): Tensor {
  const op = "optim.globalNorm";
  const leaves = flattenTree(tree).leaves.map(({ path, value }) => {
    if (!(value instanceof Tensor)) {
      throw new TypeError(`${op}: leaf${path ? ` '${path}'` : ""} is ${describe(value)}`);
    }
    return value;
  });
  if (leaves.length === 0) throw new TypeError(`${op}: the tree has no tensors`);
  return tidyNamed(op, () => leaves.map((x) => x.mul(x).sum()).reduce((a, b) => a.add(b)).sqrt());
}

/**
 * Clips updates by their global norm: when `‖g‖ > maxNorm` every leaf is
 * multiplied by `maxNorm / ‖g‖`, else left as is (optax's
 * `clip_by_global_norm`). Computed on the device, with no GPU read.
 *
 * @param maxNorm The largest norm let through.
 * @returns The transformation (state `{}`).
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const clip = optim.clipByGlobalNorm(1);
 * const [u] = clip.update({ a: tensor([3]), b: tensor([4]) }, clip.init({}));
 * console.log(await u.a.array(), await u.b.array()); // [0.6] [0.8]
 * ```
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<EmptyState> {
  const op = "optim.clipByGlobalNorm";
  checkNumber(op, "maxNorm", maxNorm, 0);
  if (maxNorm === 0) throw new RangeError(`${op}: maxNorm must be positive, got 0`);
  return {
    init: () => ({}),
    update: (updates, state) => {
      checkObject(op, state, []);
      return tidyNamed(op, () => {
        // maxNorm / max(norm, maxNorm) is 1 below the threshold.
        const factor = globalNorm(updates).maximum(maxNorm).div(maxNorm).pow(-1);
        return [mapLeaves(op, (u) => u.mul(factor), updates), {}];
      }) as [typeof updates, EmptyState];
    },
  };
}

/**
 * Composes transformations: each `update` feeds the next, states are kept
 * in an array in the same order.
 *
 * @param transforms The transformations, applied first to last.
 * @returns The composite transformation (state: an array of their states).
 * @example
 * ```ts
 * import { optim } from "littlegrad";
 * const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adam(1e-3));
 * ```
 */
export function chain(
  ...transforms: GradientTransformation<unknown>[]
): GradientTransformation<unknown[]> {
  const op = "optim.chain";
  transforms.forEach((t, i) => {
    if (typeof t?.init !== "function" || typeof t?.update !== "function") {
      throw new TypeError(
        `${op}: argument ${i} is not a GradientTransformation ({ init, update }), got ${
          describe(t)
        }`,
      );
    }
  });
  return {
    init: (params) => transforms.map((t) => t.init(params)),
    update: (updates, state, params) => {
      if (!Array.isArray(state) || state.length !== transforms.length) {
        throw new TypeError(
          `${op}: state must be the array init() returned, with ${transforms.length} entries; got ${
            Array.isArray(state) ? `${state.length} entries` : describe(state)
          }`,
        );
      }
      if (transforms.length === 0) {
        return [mapLeaves(op, (u) => u.reshape(u.shape), updates) as typeof updates, []];
      }
      // Intermediate updates are released; the last ones and the states escape.
      return tidy(() => {
        let u: unknown = updates;
        const next = transforms.map((t, i) => {
          const [nu, ns] = t.update(u, state[i], params);
          u = nu;
          return ns;
        });
        return [u as typeof updates, next];
      });
    },
  };
}

// ---- optimizers ----------------------------------------------------------------

/**
 * Stochastic gradient descent with optional momentum, Nesterov momentum and
 * (coupled, L2) weight decay, as PyTorch's `torch.optim.SGD` without
 * dampening: `g ← g + λp`, `b ← μb + g`, step `-lr·b` (Nesterov:
 * `-lr·(g + μb)`). It is `chain(addDecayedWeights(λ), trace(μ),
 * scaleByLearningRate(lr))`, leaving out the pieces not asked for.
 *
 * (The top-level `sgd(params, grads, { lr })` is the one-line plain step;
 * this is the optimizer-with-state form.)
 *
 * @param learningRate A number or a schedule.
 * @param opts `momentum` (0), `nesterov` (false), `weightDecay` (0).
 * @returns The optimizer.
 * @example
 * ```ts
 * import { disposeTree, optim, tensor } from "littlegrad";
 * const opt = optim.sgd(0.1, { momentum: 0.9, nesterov: true });
 * let params = { w: tensor([1, 2]) };
 * let state = opt.init(params);
 * const grads = { w: tensor([1, 1]) };
 * const [updates, nextState] = opt.update(grads, state, params);
 * const next = optim.applyUpdates(params, updates);
 * disposeTree([grads, updates, params, state]);
 * [params, state] = [next, nextState];
 * console.log(await params.w.array()); // [0.81, 1.81]: -0.1·(1 + 0.9·1)
 * ```
 */
export function sgd(
  learningRate: LearningRate,
  opts: { momentum?: number; nesterov?: boolean; weightDecay?: number } = {},
): GradientTransformation<unknown[]> {
  const op = "optim.sgd";
  const momentum = checkNumber(op, "momentum", opts.momentum ?? 0, 0);
  const weightDecay = checkNumber(op, "weightDecay", opts.weightDecay ?? 0, 0);
  if (opts.nesterov && momentum === 0) {
    throw new RangeError(`${op}: Nesterov momentum needs momentum > 0`);
  }
  return namedOptimizer(
    op,
    chain(
      ...(weightDecay > 0 ? [addDecayedWeights(weightDecay)] : []),
      ...(momentum > 0 ? [trace({ decay: momentum, nesterov: opts.nesterov })] : []),
      scaleByLearningRate(learningRate),
    ),
  );
}

/**
 * Adam (Kingma & Ba, 2015): `chain(scaleByAdam(opts), scaleByLearningRate(lr))`.
 *
 * @param learningRate A number or a schedule.
 * @param opts `b1` (0.9), `b2` (0.999), `eps` (1e-8).
 * @returns The optimizer.
 * @example
 * ```ts
 * import { optim, type Tensor, tensor, valueAndGrad } from "littlegrad";
 * const loss = (p: { w: Tensor }) => p.w.sub(3).pow(2).sum();
 * const opt = optim.adam(0.1);
 * const params = { w: tensor([0]) };
 * const state = opt.init(params);
 * const [, grads] = valueAndGrad(loss)(params);
 * const [updates] = opt.update(grads, state, params);
 * console.log(await updates.w.array()); // ≈ [0.1]: lr·sign(-grad) on the first step
 * ```
 */
export function adam(
  learningRate: LearningRate,
  opts: { b1?: number; b2?: number; eps?: number } = {},
): GradientTransformation<unknown[]> {
  return namedOptimizer("optim.adam", chain(scaleByAdam(opts), scaleByLearningRate(learningRate)));
}

/**
 * AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay,
 * `p ← p - lr·(m̂/(√v̂ + ε) + λp)` — `chain(scaleByAdam(opts),
 * addDecayedWeights(λ), scaleByLearningRate(lr))`, as optax's `adamw` and
 * PyTorch's `AdamW`.
 *
 * @param learningRate A number or a schedule.
 * @param opts `b1` (0.9), `b2` (0.999), `eps` (1e-8), `weightDecay` (1e-4, optax's default).
 * @returns The optimizer.
 * @example
 * ```ts
 * import { optim } from "littlegrad";
 * const opt = optim.adamw(1e-3, { weightDecay: 0.01 });
 * ```
 */
export function adamw(
  learningRate: LearningRate,
  opts: { b1?: number; b2?: number; eps?: number; weightDecay?: number } = {},
): GradientTransformation<unknown[]> {
  return namedOptimizer(
    "optim.adamw",
    chain(
      scaleByAdam(opts),
      addDecayedWeights(opts.weightDecay ?? 1e-4),
      scaleByLearningRate(learningRate),
    ),
  );
}

/**
 * Adds updates to parameters leaf by leaf: `params + updates`. Returns a new
 * tree; dispose the old parameters and the updates when done with them.
 *
 * @param params The parameters.
 * @param updates Updates with the same structure (from an optimizer's `update`).
 * @returns The new parameters.
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const next = optim.applyUpdates({ w: tensor([1, 2]) }, { w: tensor([0.5, -0.5]) });
 * console.log(await next.w.array()); // [1.5, 1.5]
 * ```
 */
export function applyUpdates<P>(params: P, updates: unknown): P {
  const op = "optim.applyUpdates";
  return tidyNamed(
    op,
    () => mapNamed(op, "params", (p, u) => p.add(u), params, { name: "updates", tree: updates }),
  ) as P;
}
