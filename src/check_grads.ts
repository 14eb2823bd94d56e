/**
 * Gradient checking as a feature: compares reverse-mode gradients (`grad`)
 * and forward-mode directional derivatives (`jvp`) with central differences
 * and reports where they disagree.
 * @module
 */

import { generator, randomUniform, tensor } from "./creation.ts";
import { isFloat } from "./dtype.ts";
import { jvp } from "./jvp.ts";
import { describe } from "./core/errors.ts";
import { scoped } from "./core/scope.ts";
import { Tensor } from "./tensor.ts";
import { flattenTree, type Tree, treeTensors } from "./tree.ts";
import { grad } from "./transforms.ts";
import { shapeString } from "./shape.ts";

/** A mode of differentiation `checkGrads` checks: reverse (`grad`) or forward (`jvp`). */
type GradCheckMode = "rev" | "fwd";

/** Options of `checkGrads`. */
export interface CheckGradsOptions {
  /** Arguments to check (default: every argument). */
  argnums?: number | readonly number[];
  /**
   * Modes of differentiation to check, in this order (default
   * `["rev", "fwd"]`, as JAX's `check_grads(modes=("fwd", "rev"))`).
   * `"rev"` checks `grad` (a vector-Jacobian product); `"fwd"` checks
   * `jvp` along random directions, comparing every output element. The
   * first mode that disagrees throws; later modes are not checked.
   */
  modes?: "rev" | "fwd" | readonly ("rev" | "fwd")[];
  /**
   * How finely to check. `"elements"` (the default): reverse mode perturbs
   * each element in turn, forward mode takes one random direction per
   * tensor (so a failure names the tensor). `"direction"`: one random
   * direction over all checked tensors, for each mode.
   */
  mode?: "elements" | "direction";
  /** Step of the central difference (default `1e-3`). */
  eps?: number;
  /** Absolute tolerance (default `5e-3`). */
  atol?: number;
  /** Relative tolerance (default `1e-2`). */
  rtol?: number;
  /** Seed of the random cotangent and directions (default 0). */
  seed?: number;
  /** In `"elements"` mode, at most this many elements per tensor, spread evenly (default 64). */
  maxElements?: number;
  /**
   * What to do at a kink, a point where the function is not differentiable
   * (`relu` at 0, `abs` at 0, `maximum` at a tie): there the central
   * difference measures the mean of the two one-sided derivatives, which
   * need not be the subgradient the rule picks (`relu'(0)` is 0, as in JAX
   * and PyTorch; central differences see 1/2). `"skip"` (the default)
   * leaves such values out of the comparison and lists them in the
   * result's `kinks`; `"fail"` compares them like any other.
   */
  kinks?: "skip" | "fail";
}

/**
 * A value where `checkGrads` found a kink: the one-sided differences
 * disagree, and the derivative computed lies between them (a one-sided
 * derivative or a subgradient), so it was not compared with the central
 * difference.
 */
export interface GradCheckKink {
  /** The mode whose value this is: `"rev"` (`grad`) or `"fwd"` (`jvp`). */
  mode: "rev" | "fwd";
  /** Which argument (in `"direction"` mode, the first checked). */
  argnum: number;
  /** Path of the tensor inside that argument's tree (`""` for a bare tensor). */
  path: string;
  /**
   * Reverse mode: the multi-index of the element, or `"a random direction"`.
   * Forward mode: `"a random direction"`, followed by the output element
   * (`"a random direction, output [1,0]"`) unless the output is one scalar.
   */
  where: string;
  /** The backward difference `(f(x) - f(x - h)) / h`. */
  left: number;
  /** The forward difference `(f(x + h) - f(x)) / h`. */
  right: number;
  /** The value the mode computed. */
  got: number;
}

/** What `checkGrads` checked, when everything agreed. */
export interface GradCheckReport {
  /** Number of values compared with central differences, over all modes. */
  checked: number;
  /** That number for each mode (0 for a mode not checked). */
  checkedByMode: { rev: number; fwd: number };
  /** Kinks left out of the comparison (with `kinks: "skip"`, the default), over all modes. */
  kinks: GradCheckKink[];
}

/** One disagreement found by `checkGrads`. */
export interface GradCheckFailure {
  /** The mode that disagreed: `"rev"` (`grad`) or `"fwd"` (`jvp`). */
  mode: "rev" | "fwd";
  /** Which argument (in `"direction"` mode, the first checked). */
  argnum: number;
  /** Path of the tensor inside that argument's tree (`""` for a bare tensor). */
  path: string;
  /** Where, as in `GradCheckKink.where`. */
  where: string;
  /** Central-difference estimate. */
  expected: number;
  /** The value the mode computed. */
  got: number;
}

/** Thrown by `checkGrads`; `message` is a readable report, `failures` the details. */
export class GradCheckError extends Error {
  /** The disagreements, in the order found (all of one mode). */
  readonly failures: GradCheckFailure[];
  /**
   * Creates the error from the disagreements found and the report text.
   * @param failures The disagreements.
   * @param report The message.
   */
  constructor(failures: GradCheckFailure[], report: string) {
    super(report);
    this.failures = failures;
    this.name = "GradCheckError";
  }
}

function unravel(i: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return `[${idx.join(",")}]`;
}

const MODE_NAMES: Record<GradCheckMode, string> = { rev: "reverse mode", fwd: "forward mode" };

/** The settings every mode's check shares. */
interface Setup {
  call: (...a: unknown[]) => unknown;
  args: readonly unknown[];
  argnums: number[];
  mode: "elements" | "direction";
  eps: number;
  atol: number;
  rtol: number;
  seed: number;
  maxElements: number;
  kinkMode: "skip" | "fail";
}

/** One differentiated leaf of an argument's tree, with its value on the host. */
interface Item {
  path: string;
  x: Tensor;
  /** A float tensor (the leaves forward mode perturbs). */
  float: boolean;
  data: ArrayLike<number>;
}

/** The differentiated leaves of one argument, and how to rebuild the argument. */
interface Group {
  argnum: number;
  items: Item[];
  unflatten: (values: readonly unknown[]) => unknown;
}

/** What one mode's check found. */
interface Outcome {
  checked: number;
  kinks: GradCheckKink[];
  failures: GradCheckFailure[];
}

/**
 * Collects the comparisons of one mode: `compare` checks a computed value
 * against the central difference `(fp - fm) / (hp + hm)`, where
 * `fp = f(x + hp)`, `f0 = f(x)`, `fm = f(x - hm)`, and sorts it into
 * agreed, kink or failure.
 */
function comparator(setup: Setup, mode: GradCheckMode) {
  const { atol, rtol, kinkMode } = setup;
  const outcome: Outcome = { checked: 0, kinks: [], failures: [] };
  const close = (a: number, b: number) => Math.abs(a - b) <= atol + rtol * Math.abs(b);
  const compare = (
    argnum: number,
    path: string,
    where: string,
    [fp, f0, fm]: readonly number[],
    [hp, hm]: readonly number[],
    got: number,
  ) => {
    const expected = (fp - fm) / (hp + hm);
    if (close(got, expected)) {
      outcome.checked++;
      return;
    }
    // A kink: the one-sided differences disagree, and got is one of them or between.
    const right = (fp - f0) / hp;
    const left = (f0 - fm) / hm;
    const scale = Math.max(Math.abs(left), Math.abs(right));
    const tol = atol + rtol * scale;
    const atKink = Math.abs(right - left) > tol &&
      got >= Math.min(left, right) - tol && got <= Math.max(left, right) + tol;
    if (atKink && kinkMode === "skip") {
      outcome.kinks.push({ mode, argnum, path, where, left, right, got });
    } else {
      outcome.checked++;
      outcome.failures.push({ mode, argnum, path, where, expected, got });
    }
  };
  return { outcome, compare };
}

/** `fn` at `args`, its tensor leaves on the host (with paths and shapes); nothing is kept. */
async function outputsAt(
  setup: Setup,
  args: readonly unknown[],
): Promise<{ path: string; shape: number[]; data: ArrayLike<number> }[]> {
  const out = scoped(() => setup.call(...args), (o) => treeTensors(o));
  const { leaves } = flattenTree(out);
  try {
    return await Promise.all(
      leaves.filter((l) => l.value instanceof Tensor).map(async ({ path, value }) => {
        const t = value as Tensor;
        return { path, shape: [...t.shape], data: await t.data() };
      }),
    );
  } finally {
    for (const t of treeTensors(out)) t.dispose();
  }
}

/** Reverse mode: `grad` of the output reduced with a random cotangent. */
async function checkReverse(setup: Setup, groups: Group[]): Promise<Outcome> {
  const { call, args, argnums, mode, eps, seed, maxElements } = setup;
  const { outcome, compare } = comparator(setup, "rev");

  // Scalarise the output with fixed random cotangents.
  const probe = scoped(() => call(...args), (out) => treeTensors(out));
  const outs = treeTensors(probe);
  // A scalar output is checked as is (so reported values are its gradient);
  // other outputs are reduced with a random cotangent.
  const cotangents = outs.map((o, i) =>
    o.ndim === 0 ? tensor(1, { backend: o.backend }) : randomUniform(o.shape, {
      seed: seed + 7919 * (i + 1),
      low: -1,
      high: 1,
      backend: o.backend,
    })
  );
  for (const o of outs) o.dispose();
  const scalarFn = (...a: unknown[]) => {
    const leaves = treeTensors(call(...a));
    return leaves.map((o, i) => o.mul(cotangents[i]).sum()).reduce((x, y) => x.add(y));
  };
  const evaluate = (a: unknown[]): Promise<number> => {
    const value = scoped(() => scalarFn(...a), (t) => [t]);
    return value.item().finally(() => value.dispose());
  };

  let grads: Tree[] = [];
  const temporaries: Tensor[] = [];
  const make = (data: ArrayLike<number>, like: Tensor) => {
    const t = tensor(data, { shape: like.shape, backend: like.backend, dtype: like.dtype });
    temporaries.push(t);
    return t;
  };
  try {
    grads = grad(scalarFn, { argnums })(...args) as Tree[];
    // The gradient of every differentiated leaf, on the host.
    const g = await Promise.all(
      groups.map((_, j) => Promise.all(treeTensors(grads[j]).map((t) => t.data()))),
    );
    if (mode === "direction") {
      // One random direction v over all leaves: compare (f(x+εv) - f(x-εv)) / 2ε with g·v.
      let predicted = 0;
      const directions = groups.map((group, gi) =>
        group.items.map((item, k) => {
          const next = generator(seed + 104729 * (gi + 1) + k);
          const v = Array.from(item.data, () => next() * 2 - 1);
          for (let i = 0; i < v.length; i++) predicted += g[gi][k][i] * v[i];
          return v;
        })
      );
      const shifted = (sign: number) => {
        const perturbed = [...args];
        groups.forEach((group, gi) => {
          perturbed[group.argnum] = group.unflatten(
            group.items.map((item, k) =>
              make(
                Array.from(item.data, (x, i) => x + sign * eps * directions[gi][k][i]),
                item.x,
              )
            ),
          );
        });
        return perturbed;
      };
      const values = await Promise.all([
        evaluate(shifted(1)),
        evaluate([...args]),
        evaluate(shifted(-1)),
      ]);
      compare(argnums[0], "", "a random direction", values, [eps, eps], predicted);
    } else {
      // f at the point itself, for the one-sided differences.
      const base = evaluate([...args]);
      base.catch(() => {}); // awaited by every job below (there may be none)
      for (const [gi, group] of groups.entries()) {
        for (const [k, item] of group.items.entries()) {
          const n = item.data.length;
          const stride = Math.max(1, Math.ceil(n / maxElements));
          const jobs: Promise<void>[] = [];
          for (let i = 0; i < n; i += stride) {
            const at = (sign: number) => {
              const d = new Float32Array(item.data);
              d[i] += sign * eps;
              const perturbed = [...args];
              perturbed[group.argnum] = group.unflatten(
                group.items.map((other, m) => (m === k ? make(d, item.x) : other.x)),
              );
              return perturbed;
            };
            // The steps actually applied, after rounding to float32.
            const x = item.data[i];
            const steps = [Math.fround(x + eps) - x, x - Math.fround(x - eps)];
            jobs.push(
              Promise.all([evaluate(at(1)), base, evaluate(at(-1))]).then((values) =>
                compare(
                  group.argnum,
                  item.path,
                  unravel(i, item.x.shape),
                  values,
                  steps,
                  g[gi][k][i],
                )
              ),
            );
          }
          await Promise.all(jobs);
        }
      }
    }
  } finally {
    for (const t of temporaries) t.dispose();
    for (const t of treeTensors(grads)) t.dispose();
    for (const c of cotangents) c.dispose();
  }
  return outcome;
}

/**
 * Forward mode: `jvp` along a random direction `v` (one per differentiated
 * float tensor in `"elements"` mode, one over all of them in `"direction"`
 * mode), every float output element of `J·v` against
 * `(f(x + εv) - f(x - εv)) / 2ε`.
 */
async function checkForward(setup: Setup, groups: Group[]): Promise<Outcome> {
  const { call, args, argnums, mode, eps, seed } = setup;
  const { outcome, compare } = comparator(setup, "fwd");
  // Each run perturbs a set of leaves (group gi, item k) together along one direction.
  type Member = { gi: number; k: number; item: Item };
  const perturbable: Member[] = groups.flatMap((group, gi) =>
    group.items.map((item, k) => ({ gi, k, item }))
      .filter(({ item }) => item.float && item.data.length > 0)
  );
  const runs = mode === "direction"
    ? (perturbable.length > 0 ? [{ argnum: argnums[0], path: "", members: perturbable }] : [])
    : perturbable.map((m) => ({ argnum: groups[m.gi].argnum, path: m.item.path, members: [m] }));

  /** One run: its jvp and central differences, all enqueued before anything is read back. */
  const check = async (run: (typeof runs)[number]): Promise<() => void> => {
    const temporaries: Tensor[] = [];
    const make = (data: ArrayLike<number>, like: Tensor, dtype = like.dtype) => {
      const t = tensor(data, { shape: like.shape, backend: like.backend, dtype });
      temporaries.push(t);
      return t;
    };
    try {
      // x ± εv, stored in each tensor's dtype. The tangent is the step actually
      // taken, ((x + εv) - (x - εv)) / 2ε after that rounding, so rounding the
      // perturbed points does not count as an error of the derivative.
      const steps = new Map<string, { plus: Tensor; minus: Tensor; tangent: Tensor }>();
      for (const { gi, k, item } of run.members) {
        const next = generator(seed + 15485863 + 104729 * (gi + 1) + k);
        const v = Array.from(item.data, () => next() * 2 - 1);
        const p = Array.from(item.data, (x, i) => x + eps * v[i]);
        const m = Array.from(item.data, (x, i) => x - eps * v[i]);
        const plus = make(p, item.x);
        const minus = make(m, item.x);
        // float32 rounds on the host as in the tensor; float16 is read back.
        const [pr, mr] = item.x.dtype === "float32"
          ? [Float32Array.from(p), Float32Array.from(m)]
          : await Promise.all([plus.data(), minus.data()]);
        const tangent = make(Array.from(pr, (x, i) => (x - mr[i]) / (2 * eps)), item.x, "float32");
        steps.set(`${gi}/${k}`, { plus, minus, tangent });
      }
      /** The arguments with the perturbed leaves replaced by `pick`'s choice. */
      const withSteps = (pick: "plus" | "minus") =>
        args.map((arg, a) => {
          const gi = groups.findIndex((g) => g.argnum === a);
          if (gi < 0) return arg;
          const group = groups[gi];
          return group.unflatten(
            group.items.map((item, k) => steps.get(`${gi}/${k}`)?.[pick] ?? item.x),
          );
        });
      // The tangents: the step on perturbed leaves, a symbolic zero (null) elsewhere.
      const tangents = args.map((arg, a) => {
        const gi = groups.findIndex((g) => g.argnum === a);
        const { leaves, unflatten } = flattenTree(arg);
        return unflatten(leaves.map((_, k) => steps.get(`${gi}/${k}`)?.tangent ?? null));
      });

      const [primal, tangentOut] = jvp(call, args, tangents);
      const outputTangents = treeTensors(tangentOut);
      const pending = Promise.all(
        flattenTree(primal).leaves.map((leaf, i) => ({ ...leaf, tangent: outputTangents[i] }))
          .filter(({ value }) => value instanceof Tensor && isFloat(value.dtype))
          .map(async ({ path, value, tangent }) => {
            const t = value as Tensor;
            const [data, df] = await Promise.all([t.data(), tangent.data()]);
            return { path, shape: [...t.shape], data, df };
          }),
      );
      const [f0, fp, fm] = await Promise.all([
        pending.finally(() => {
          for (const t of [...treeTensors(primal), ...outputTangents]) t.dispose();
        }),
        outputsAt(setup, withSteps("plus")),
        outputsAt(setup, withSteps("minus")),
      ]);
      const single = f0.length === 1 && f0[0].shape.length === 0;
      // The comparisons, made later in run order (runs finish in any order).
      return () => {
        for (const out of f0) {
          const plus = fp.find((o) => o.path === out.path)!.data;
          const minus = fm.find((o) => o.path === out.path)!.data;
          for (let i = 0; i < out.data.length; i++) {
            const at = single
              ? ""
              : `, output${out.path ? ` '${out.path}'` : ""} ${unravel(i, out.shape)}`;
            compare(
              run.argnum,
              run.path,
              `a random direction${at}`,
              [plus[i], out.data[i], minus[i]],
              [eps, eps],
              out.df[i],
            );
          }
        }
      };
    } finally {
      for (const t of temporaries) t.dispose();
    }
  };
  // A few runs at a time, so their readbacks overlap; results are compared in run order.
  const batch = 8;
  for (let r = 0; r < runs.length; r += batch) {
    for (const compareAll of await Promise.all(runs.slice(r, r + batch).map(check))) compareAll();
  }
  return outcome;
}

/**
 * Checks `fn`'s derivatives against central differences at `args`: reverse
 * mode (`grad`) and forward mode (`jvp`), or those in `opts.modes`.
 *
 * - Reverse mode: a non-scalar output is reduced with a random cotangent
 *   `u` (checking `u·J`); a scalar output is checked directly, so the
 *   values compared are its gradient. `"elements"` mode perturbs each
 *   element (up to `maxElements` per tensor); `"direction"` mode compares
 *   `g·v` for one random direction `v`.
 * - Forward mode: `J·v` from one `jvp` along a random direction `v` (per
 *   float tensor, or one over all of them in `"direction"` mode), every
 *   float output element against central differences of that output.
 *
 * Throws a `GradCheckError` naming the mode, the argument and its tree
 * path, the element or direction, the expected and obtained values and the
 * tolerances when `|got - expected| > atol + rtol·|expected|` anywhere; the
 * modes are checked in order and the first that disagrees throws.
 *
 * Exact kinks are detected rather than failed: where the value disagrees
 * with the central difference, the one-sided differences disagree with each
 * other (the step straddles a point where the derivative jumps), and the
 * computed value lies between them, it is skipped and listed in the
 * result's `kinks`, tagged with its mode (see `opts.kinks`). A value
 * outside that range still fails.
 *
 * @param fn A pure function of tensors or trees of tensors.
 * @param args The point to check at.
 * @param opts Modes, granularity, step, tolerances, seed, kinks.
 * @returns How many values were compared (in all, and per mode), and the kinks skipped.
 * @example
 * ```ts
 * import { checkGrads, GradCheckError, stopGradient, tensor, type Tensor } from "littlegrad";
 * import assert from "node:assert/strict";
 *
 * // Both modes by default: 3 gradient elements, and one jvp along a random direction.
 * const report = await checkGrads((x: Tensor) => x.tanh().sum(), [tensor([0.1, -0.5, 2])]);
 * assert.deepEqual(report.checkedByMode, { rev: 3, fwd: 1 });
 *
 * // relu'(0) = 0, where central differences see 1/2: a kink, in each mode.
 * const { kinks } = await checkGrads((x: Tensor) => x.relu().sum(), [tensor([-1, 0, 2])]);
 * assert.deepEqual(kinks.map((k) => `${k.mode} ${k.where}`), [
 *   "rev [1]",
 *   "fwd a random direction",
 * ]);
 *
 * // Forward mode only, on a non-scalar output: each output element is compared.
 * const fwd = await checkGrads((x: Tensor) => x.sin().mul(x), [tensor([0.3, 1.2])], {
 *   modes: ["fwd"],
 * });
 * assert.deepEqual(fwd.checkedByMode, { rev: 0, fwd: 2 });
 *
 * // x·stopGradient(x) has derivative 2x, but both modes see x: the error names the mode.
 * await assert.rejects(
 *   checkGrads((x: Tensor) => x.mul(stopGradient(x)).sum(), [tensor([1, 2])], { modes: "fwd" }),
 *   (e: unknown) => e instanceof GradCheckError && e.failures[0].mode === "fwd",
 * );
 * ```
 */
export async function checkGrads(
  fn: (...args: never[]) => unknown,
  args: readonly unknown[],
  opts: CheckGradsOptions = {},
): Promise<GradCheckReport> {
  const {
    mode = "elements",
    eps = 1e-3,
    atol = 5e-3,
    rtol = 1e-2,
    seed = 0,
    maxElements = 64,
    kinks: kinkMode = "skip",
  } = opts;
  if (typeof fn !== "function") {
    throw new TypeError(`checkGrads: expected a function, got ${describe(fn)}`);
  }
  if (!Array.isArray(args)) {
    throw new TypeError(
      `checkGrads: args must be an array (one entry per argument), got ${describe(args)}`,
    );
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(
      `checkGrads: opts.seed must be a non-negative safe integer, got ${describe(seed)}`,
    );
  }
  if (kinkMode !== "skip" && kinkMode !== "fail") {
    throw new TypeError(`checkGrads: opts.kinks must be "skip" or "fail", got ${String(kinkMode)}`);
  }
  if (mode !== "elements" && mode !== "direction") {
    throw new TypeError(
      `checkGrads: opts.mode must be "elements" or "direction", got ${describe(mode)}`,
    );
  }
  const modes: GradCheckMode[] = opts.modes === undefined
    ? ["rev", "fwd"]
    : typeof opts.modes === "string"
    ? [opts.modes]
    : Array.isArray(opts.modes)
    ? [...opts.modes]
    : [];
  if (
    modes.length === 0 || modes.some((m) => m !== "rev" && m !== "fwd") ||
    new Set(modes).size !== modes.length
  ) {
    throw new TypeError(
      `checkGrads: opts.modes must be a non-empty list of "rev" and "fwd" without repeats, got ${
        describe(opts.modes)
      }`,
    );
  }
  const argnums = opts.argnums === undefined
    ? args.map((_, i) => i)
    : typeof opts.argnums === "number"
    ? [opts.argnums]
    : [...opts.argnums];
  for (const a of argnums) {
    if (!Number.isInteger(a) || a < 0 || a >= args.length) {
      throw new RangeError(
        `checkGrads: opts.argnums has ${describe(a)}, but there are ${args.length} argument(s)`,
      );
    }
  }
  const setup: Setup = {
    call: fn as (...a: unknown[]) => unknown,
    args,
    argnums,
    mode,
    eps,
    atol,
    rtol,
    seed,
    maxElements,
    kinkMode,
  };

  // Host copies of every differentiated leaf, per argument.
  const groups: Group[] = await Promise.all(argnums.map(async (argnum) => {
    const { leaves, unflatten } = flattenTree(args[argnum]);
    const items = await Promise.all(leaves.map(async ({ path, value }) => {
      const x = value as Tensor;
      const float = value instanceof Tensor && isFloat(value.dtype);
      // Reverse mode reads every leaf (and fails on one that is not a tensor, as grad does).
      const data = float || modes.includes("rev") ? await x.data() : [];
      return { path, x, float, data };
    }));
    return { argnum, items, unflatten: unflatten as Group["unflatten"] };
  }));

  const checkedByMode: Record<GradCheckMode, number> = { rev: 0, fwd: 0 };
  const kinks: GradCheckKink[] = [];
  for (const [m, current] of modes.entries()) {
    const outcome = current === "rev"
      ? await checkReverse(setup, groups)
      : await checkForward(setup, groups);
    checkedByMode[current] = outcome.checked;
    kinks.push(...outcome.kinks);
    const { failures } = outcome;
    if (failures.length === 0) continue;
    const name = MODE_NAMES[current];
    const lines = failures.slice(0, 10).map((f) =>
      `  argument ${f.argnum}${f.path ? ` '${f.path}'` : ""} at ${f.where}: ` +
      `central difference ${f.expected.toPrecision(6)}, ${name} ${f.got.toPrecision(6)} ` +
      `(|diff| ${Math.abs(f.got - f.expected).toExponential(2)})`
    );
    const more = failures.length > 10 ? `\n  ... and ${failures.length - 10} more` : "";
    const rest = modes.slice(m + 1).map((r) => MODE_NAMES[r]);
    const skipped = rest.length > 0 ? `\n  (${rest.join(", ")} not checked)` : "";
    throw new GradCheckError(
      failures,
      `checkGrads: ${failures.length} ${name} value(s) disagree with central differences ` +
        `(${current === "rev" ? "grad" : "jvp"}; eps ${eps}, atol ${atol}, rtol ${rtol}, ` +
        `mode ${mode}):\n${lines.join("\n")}${more}` +
        `\n  shapes: ${
          args.map((a) => treeTensors(a).map((t) => shapeString(t.shape)).join(" ")).join(" | ")
        }${skipped}`,
    );
  }
  const checked = checkedByMode.rev + checkedByMode.fwd;
  return { checked, checkedByMode, kinks };
}
