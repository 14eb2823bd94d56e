/**
 * Learning-rate schedules with optax's formulas: functions from the step
 * count (0 for the first update) to a value. A schedule takes a number or a
 * tensor: a number step gives a number, computed on the host; a tensor step
 * (an optimizer's count, an int32 scalar tensor, which `jit` traces) gives a
 * float32 tensor of its shape, computed with ops and never read back. Every
 * optimizer takes a schedule wherever it takes a learning rate.
 * @module
 */

import { full } from "./creation.ts";
import { describe } from "./core/errors.ts";
import { shapeString } from "./shape.ts";
import { tidy } from "./core/scope.ts";
import { Tensor } from "./tensor.ts";
import {
  add,
  cos,
  div,
  expm1,
  ge,
  maximum,
  minimum,
  mul,
  neg,
  sub,
  where,
} from "./ops/elementwise.ts";

/**
 * A schedule: the value to use at update number `step` (counted from 0), a
 * number for a number step and a float32 tensor (shaped like the step, so a
 * scalar for an optimizer's count) for a tensor step. The built-in
 * schedules are of this type; an optimizer also takes any
 * `(step: number) => number`, which works while its state's count is a
 * number (see `scaleByLearningRate`).
 *
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const lr: optim.Schedule = optim.linearSchedule({
 *   initValue: 0,
 *   endValue: 1,
 *   transitionSteps: 10,
 * });
 * console.log(lr(5)); // 0.5: a number, computed on the host
 * const t = lr(tensor(5, { dtype: "int32" })); // a float32 scalar tensor, computed with ops
 * console.log(t.dtype, await t.item()); // float32 0.5
 * ```
 */
export type Schedule = {
  (step: Tensor): Tensor;
  (step: number): number;
};

/** A number, or a tensor standing for one (a step count, a schedule value). */
type Scalar = number | Tensor;

const binaryScalar = (
  host: (a: number, b: number) => number,
  op: (a: Scalar, b: Scalar) => Tensor,
) =>
(a: Scalar, b: Scalar): Scalar =>
  typeof a === "number" && typeof b === "number" ? host(a, b) : op(a, b);

const unaryScalar = (host: (x: number) => number, op: (x: Tensor) => Tensor) => (x: Scalar) =>
  typeof x === "number" ? host(x) : op(x);

/**
 * @internal Arithmetic on scalars that are numbers or tensors, so that a
 * formula is written once: on numbers it is the host's `Math` (in float64,
 * as the schedules always computed), and as soon as one operand is a tensor
 * it is littlegrad's ops (traceable by `jit`, nothing read back). `ge` gives
 * a boolean or a bool tensor, and `select` picks lazily between two
 * branches on a boolean (only the chosen one runs) or with `where` on a
 * tensor (both run).
 */
export const scalarMath = {
  add: binaryScalar((a, b) => a + b, add),
  sub: binaryScalar((a, b) => a - b, sub),
  mul: binaryScalar((a, b) => a * b, mul),
  div: binaryScalar((a, b) => a / b, div),
  min: binaryScalar(Math.min, minimum),
  max: binaryScalar(Math.max, maximum),
  neg: unaryScalar((x) => -x, neg),
  cos: unaryScalar(Math.cos, cos),
  expm1: unaryScalar(Math.expm1, expm1),
  /** A number as is; a tensor in float32 (an int32 count converted). */
  float: unaryScalar((x) => x, (x) => (x.dtype === "float32" ? x : x.astype("float32"))),
  ge: (a: Scalar, b: Scalar): boolean | Tensor =>
    typeof a === "number" && typeof b === "number" ? a >= b : ge(a, b),
  select: (cond: boolean | Tensor, a: () => Scalar, b: () => Scalar): Scalar =>
    typeof cond === "boolean" ? (cond ? a() : b()) : where(cond, a(), b()),
};

const S = scalarMath;

/**
 * @internal `schedule(step)` for a schedule that may be a user's
 * `(step: number) => number`: a number step is passed as is (the caller
 * checks the value); for a tensor step the schedule must return a float
 * tensor, and an error otherwise (or when it throws) says so, naming `op`
 * and `what` ("the learning-rate schedule").
 */
export function callSchedule(
  op: string,
  what: string,
  schedule: (step: number) => number,
  step: Scalar,
): Scalar {
  if (typeof step === "number") return schedule(step);
  const hint = `schedules must accept a tensor step when the step count is a tensor (as it ` +
    `is from init(), and always under jit): write it with tensor ops, as the built-in ` +
    `schedules are, or keep a number count in the state (eager only)`;
  let value: unknown;
  try {
    value = (schedule as unknown as (step: Tensor) => unknown)(step);
  } catch (err) {
    throw new TypeError(
      `${op}: ${what} threw on a tensor step (${step}): ${
        err instanceof Error ? err.message : String(err)
      }; ${hint}`,
      { cause: err },
    );
  }
  if (!(value instanceof Tensor)) {
    throw new TypeError(
      `${op}: ${what} returned ${describe(value)} for a tensor step (${step}), not a ` +
        `tensor; ${hint}`,
    );
  }
  if (value.dtype !== "float32" && value.dtype !== "float16") {
    throw new TypeError(
      `${op}: ${what} returned a ${value.dtype} tensor for a tensor step; it must be a float tensor`,
    );
  }
  if (shapeString(value.shape) !== shapeString(step.shape)) {
    throw new TypeError(
      `${op}: ${what} returned a tensor of shape ${shapeString(value.shape)} for a step of ` +
        `shape ${shapeString(step.shape)}; it must have the step's shape`,
    );
  }
  return value;
}

/**
 * A `Schedule` from a formula written with `scalarMath`: a number step runs
 * it on the host; a tensor step runs it with ops (temporaries released) and
 * gives a float32 tensor shaped like the step, a constant included.
 */
function schedule(formula: (step: Scalar) => Scalar): Schedule {
  return ((step: Scalar) => {
    if (typeof step === "number") return formula(step);
    if (!(step instanceof Tensor)) {
      throw new TypeError(`a schedule's step must be a number or a Tensor, got ${describe(step)}`);
    }
    return tidy(() => {
      const value = formula(step);
      if (typeof value === "number") return full(step.shape, value, { backend: step.backend });
      return value.dtype === "float32" ? value : value.astype("float32");
    });
  }) as Schedule;
}

function finite(op: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(`${op}: ${name} must be a finite number, got ${String(v)}`);
  }
  return v;
}

function steps(op: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new RangeError(`${op}: ${name} must be a non-negative integer, got ${String(v)}`);
  }
  return v;
}

/**
 * The same value at every step.
 *
 * @param value The value.
 * @returns The schedule.
 * @example
 * ```ts
 * import { optim } from "littlegrad";
 * const lr = optim.constantSchedule(0.1);
 * console.log(lr(0), lr(1000)); // 0.1 0.1
 * ```
 */
export function constantSchedule(value: number): Schedule {
  finite("optim.constantSchedule", "value", value);
  return schedule(() => value);
}

/**
 * Linear interpolation from `initValue` to `endValue` over `transitionSteps`
 * steps starting at `transitionBegin` (default 0), constant before and after
 * (optax's `linear_schedule`). Use it for a linear warmup.
 *
 * @param opts `initValue`, `endValue`, `transitionSteps`, `transitionBegin`.
 * @returns The schedule.
 * @example
 * ```ts
 * import { optim } from "littlegrad";
 * const warmup = optim.linearSchedule({ initValue: 0, endValue: 1e-3, transitionSteps: 100 });
 * console.log(warmup(0), warmup(50), warmup(200)); // 0 0.0005 0.001
 * ```
 */
export function linearSchedule(opts: {
  initValue: number;
  endValue: number;
  transitionSteps: number;
  transitionBegin?: number;
}): Schedule {
  const op = "optim.linearSchedule";
  const init = finite(op, "initValue", opts?.initValue);
  const end = finite(op, "endValue", opts.endValue);
  const n = steps(op, "transitionSteps", opts.transitionSteps);
  const begin = steps(op, "transitionBegin", opts.transitionBegin ?? 0);
  if (n === 0) return schedule(() => init);
  return schedule((step) => {
    const count = S.float(S.min(S.max(S.sub(step, begin), 0), n));
    return S.add(S.mul(init - end, S.sub(1, S.div(count, n))), end);
  });
}

/**
 * Cosine decay from `initValue` to `alpha · initValue` over `decaySteps`
 * steps, then constant (Loshchilov & Hutter's SGDR without restarts;
 * optax's `cosine_decay_schedule`):
 * `initValue · ((1 - alpha) · ½(1 + cos(π·min(step, decaySteps)/decaySteps)) + alpha)`.
 *
 * @param opts `initValue`, `decaySteps`, `alpha` (default 0).
 * @returns The schedule.
 * @example
 * ```ts
 * import { optim, tensor } from "littlegrad";
 * const lr = optim.cosineDecaySchedule({ initValue: 0.1, decaySteps: 100 });
 * console.log(lr(0), lr(50), lr(100)); // 0.1 0.05 0
 * // A tensor step (as an optimizer's count, or under jit) gives a tensor:
 * console.log(await lr(tensor(50, { dtype: "int32" })).item()); // ≈ 0.05
 * ```
 */
export function cosineDecaySchedule(opts: {
  initValue: number;
  decaySteps: number;
  alpha?: number;
}): Schedule {
  const op = "optim.cosineDecaySchedule";
  const init = finite(op, "initValue", opts?.initValue);
  const n = steps(op, "decaySteps", opts.decaySteps);
  const alpha = finite(op, "alpha", opts.alpha ?? 0);
  if (n === 0) return schedule(() => init);
  return schedule((step) => {
    const count = S.float(S.min(S.max(step, 0), n));
    const cosine = S.mul(0.5, S.add(1, S.cos(S.div(S.mul(Math.PI, count), n))));
    return S.mul(init, S.add(S.mul(1 - alpha, cosine), alpha));
  });
}

/**
 * Runs `schedules[i]` from `boundaries[i - 1]` to `boundaries[i]`, each
 * restarted from step 0 at its boundary (optax's `join_schedules`).
 *
 * @param schedules One more schedule than boundaries (built-in ones, or any
 *   `(step: number) => number`, which then takes number steps only).
 * @param boundaries Increasing step numbers.
 * @returns The joined schedule.
 * @example
 * ```ts
 * import { optim } from "littlegrad";
 * const lr = optim.joinSchedules(
 *   [optim.constantSchedule(0.1), optim.constantSchedule(0.01)],
 *   [1000],
 * );
 * console.log(lr(999), lr(1000)); // 0.1 0.01
 * ```
 */
export function joinSchedules(
  schedules: readonly ((step: number) => number)[],
  boundaries: readonly number[],
): Schedule {
  const op = "optim.joinSchedules";
  if (!Array.isArray(schedules) || !schedules.every((s) => typeof s === "function")) {
    throw new TypeError(`${op}: schedules must be an array of functions`);
  }
  if (!Array.isArray(boundaries) || boundaries.length !== schedules.length - 1) {
    throw new TypeError(
      `${op}: need one boundary fewer than schedules, got ${schedules.length} schedule(s) and ${
        Array.isArray(boundaries) ? boundaries.length : String(boundaries)
      } boundaries`,
    );
  }
  boundaries.forEach((b, i) => {
    steps(op, `boundaries[${i}]`, b);
    if (i > 0 && b < boundaries[i - 1]) {
      throw new RangeError(`${op}: boundaries must increase, got [${boundaries.join(", ")}]`);
    }
  });
  // Schedule i (0 before the first boundary) restarted at its boundary; on a
  // tensor step every schedule runs and `where` picks, nested from the last.
  const segment = (step: Scalar, i: number): Scalar =>
    callSchedule(
      op,
      `schedules[${i}]`,
      schedules[i],
      i === 0 ? step : S.sub(step, boundaries[i - 1]),
    );
  const from = (step: Scalar, i: number): Scalar =>
    i === boundaries.length
      ? segment(step, i)
      : S.select(S.ge(step, boundaries[i]), () => from(step, i + 1), () => segment(step, i));
  return schedule((step) => from(step, 0));
}

/**
 * Linear warmup from `initValue` to `peakValue` over `warmupSteps`, then
 * cosine decay to `endValue` at step `decaySteps` (which counts the warmup),
 * constant afterwards (optax's `warmup_cosine_decay_schedule`).
 *
 * @param opts `initValue`, `peakValue`, `warmupSteps`, `decaySteps`, `endValue` (default 0).
 * @returns The schedule.
 * @example
 * ```ts
 * import { optim } from "littlegrad";
 * const lr = optim.warmupCosineDecaySchedule({
 *   initValue: 0, peakValue: 1e-3, warmupSteps: 100, decaySteps: 1000,
 * });
 * console.log(lr(0), lr(100), lr(1000)); // 0 0.001 0
 * ```
 */
export function warmupCosineDecaySchedule(opts: {
  initValue: number;
  peakValue: number;
  warmupSteps: number;
  decaySteps: number;
  endValue?: number;
}): Schedule {
  const op = "optim.warmupCosineDecaySchedule";
  const init = finite(op, "initValue", opts?.initValue);
  const peak = finite(op, "peakValue", opts.peakValue);
  const warmup = steps(op, "warmupSteps", opts.warmupSteps);
  const decay = steps(op, "decaySteps", opts.decaySteps);
  const end = finite(op, "endValue", opts.endValue ?? 0);
  if (decay < warmup) {
    throw new RangeError(
      `${op}: decaySteps (${decay}) counts the warmup, so it must be >= warmupSteps (${warmup})`,
    );
  }
  const cosine = peak === 0
    ? constantSchedule(0)
    : cosineDecaySchedule({ initValue: peak, decaySteps: decay - warmup, alpha: end / peak });
  return joinSchedules([
    linearSchedule({ initValue: init, endValue: peak, transitionSteps: warmup }),
    cosine,
  ], [warmup]);
}
