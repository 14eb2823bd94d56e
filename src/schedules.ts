/**
 * Learning-rate schedules: plain functions from the step count (0 for the
 * first update) to a number, with optax's formulas. Every optimizer takes a
 * schedule wherever it takes a learning rate.
 * @module
 */

/** A schedule: the value to use at update number `step` (counted from 0). */
export type Schedule = (step: number) => number;

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
  return () => value;
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
  if (n === 0) return () => init;
  return (step) => {
    const count = Math.min(Math.max(step - begin, 0), n);
    return (init - end) * (1 - count / n) + end;
  };
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
 * import { optim } from "littlegrad";
 * const lr = optim.cosineDecaySchedule({ initValue: 0.1, decaySteps: 100 });
 * console.log(lr(0), lr(50), lr(100)); // 0.1 0.05 0
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
  if (n === 0) return () => init;
  return (step) => {
    const count = Math.min(Math.max(step, 0), n);
    const cosine = 0.5 * (1 + Math.cos(Math.PI * count / n));
    return init * ((1 - alpha) * cosine + alpha);
  };
}

/**
 * Runs `schedules[i]` from `boundaries[i - 1]` to `boundaries[i]`, each
 * restarted from step 0 at its boundary (optax's `join_schedules`).
 *
 * @param schedules One more schedule than boundaries.
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
  schedules: readonly Schedule[],
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
  return (step) => {
    let i = 0;
    while (i < boundaries.length && step >= boundaries[i]) i++;
    return schedules[i](i === 0 ? step : step - boundaries[i - 1]);
  };
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
