/**
 * Gradient checking as a feature: compares reverse-mode gradients with
 * central differences and reports where they disagree.
 * @module
 */

import { generator, randomUniform, tensor } from "./creation.ts";
import { describe, scoped, type Tensor } from "./tensor.ts";
import { flattenTree, type Tree, treeTensors } from "./tree.ts";
import { grad } from "./transforms.ts";
import { shapeString } from "./shape.ts";

/** Options of `checkGrads`. */
export interface CheckGradsOptions {
  /** Arguments to check (default: every argument). */
  argnums?: number | readonly number[];
  /** `"elements"` perturbs each element in turn; `"direction"` one random direction. */
  mode?: "elements" | "direction";
  /** Step of the central difference (default `1e-3`). */
  eps?: number;
  /** Absolute tolerance (default `5e-3`). */
  atol?: number;
  /** Relative tolerance (default `1e-2`). */
  rtol?: number;
  /** Seed of the random cotangent and direction (default 0). */
  seed?: number;
  /** In `"elements"` mode, at most this many elements per tensor, spread evenly (default 64). */
  maxElements?: number;
  /**
   * What to do at a kink, a point where the function is not differentiable
   * (`relu` at 0, `abs` at 0, `maximum` at a tie): there the central
   * difference measures the mean of the two one-sided derivatives, which
   * need not be the subgradient the rule picks (`relu'(0)` is 0, as in JAX
   * and PyTorch; central differences see 1/2). `"skip"` (the default)
   * leaves such coordinates out of the comparison and lists them in the
   * result's `kinks`; `"fail"` compares them like any other.
   */
  kinks?: "skip" | "fail";
}

/**
 * A coordinate (or the random direction) where `checkGrads` found a kink:
 * the one-sided differences disagree, and the reverse-mode value lies
 * between them (a one-sided derivative or a subgradient), so it was not
 * compared with the central difference.
 */
export interface GradCheckKink {
  /** Which argument. */
  argnum: number;
  /** Path of the tensor inside that argument's tree (`""` for a bare tensor). */
  path: string;
  /** Multi-index of the element, or `"a random direction"`. */
  where: string;
  /** The backward difference `(f(x) - f(x - h)) / h`. */
  left: number;
  /** The forward difference `(f(x + h) - f(x)) / h`. */
  right: number;
  /** The reverse-mode value. */
  got: number;
}

/** What `checkGrads` checked, when everything agreed. */
export interface GradCheckReport {
  /** Number of values compared with central differences. */
  checked: number;
  /** Kinks left out of the comparison (with `kinks: "skip"`, the default). */
  kinks: GradCheckKink[];
}

/** One disagreement found by `checkGrads`. */
export interface GradCheckFailure {
  /** Which argument. */
  argnum: number;
  /** Path of the tensor inside that argument's tree (`""` for a bare tensor). */
  path: string;
  /** Multi-index of the element, or `"direction"`. */
  where: string;
  /** Central-difference estimate. */
  expected: number;
  /** Reverse-mode value. */
  got: number;
}

/** Thrown by `checkGrads`; `message` is a readable report, `failures` the details. */
export class GradCheckError extends Error {
  /** The disagreements, in the order found. */
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

/**
 * Checks `fn`'s reverse-mode gradients against central differences at
 * `args`. A non-scalar output is reduced with a random cotangent `u`
 * (checking `u·J`); a scalar output is checked directly. Throws a
 * `GradCheckError` naming the argument, the element, the expected and
 * obtained values and the tolerances when
 * `|got - expected| > atol + rtol·|expected|` anywhere.
 *
 * Exact kinks are detected rather than failed: where the value disagrees
 * with the central difference, the one-sided differences disagree with each
 * other (the step straddles a point where the derivative jumps), and the
 * reverse-mode value lies between them, the coordinate is skipped and
 * listed in the result's `kinks` (see `opts.kinks`). A value outside that
 * range still fails.
 *
 * @param fn A pure function of tensors or trees of tensors.
 * @param args The point to check at.
 * @param opts Mode, step, tolerances, seed, kinks.
 * @returns How many values were compared, and the kinks skipped.
 * @example
 * ```ts
 * import { checkGrads, tensor, Tensor } from "littlegrad";
 * await checkGrads((x: Tensor) => x.tanh().sum(), [tensor([0.1, -0.5, 2])]);
 * const { kinks } = await checkGrads((x: Tensor) => x.relu().sum(), [tensor([-1, 0, 2])]);
 * console.log(kinks.map((k) => k.where)); // ["[1]"]: relu'(0) = 0, central differences see 0.5
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
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(
      `checkGrads: opts.seed must be a non-negative safe integer, got ${describe(seed)}`,
    );
  }
  if (kinkMode !== "skip" && kinkMode !== "fail") {
    throw new TypeError(`checkGrads: opts.kinks must be "skip" or "fail", got ${String(kinkMode)}`);
  }
  const argnums = opts.argnums === undefined
    ? args.map((_, i) => i)
    : typeof opts.argnums === "number"
    ? [opts.argnums]
    : [...opts.argnums];
  const call = fn as (...a: unknown[]) => unknown;

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

  const grads = grad(scalarFn, { argnums: argnums as number[] })(
    ...args,
  ) as Tree[];
  const failures: GradCheckFailure[] = [];
  const kinks: GradCheckKink[] = [];
  let checked = 0;
  const close = (a: number, b: number) => Math.abs(a - b) <= atol + rtol * Math.abs(b);
  /**
   * Compares `got` with the central difference `(fp - fm) / (hp + hm)`, where
   * `fp = f(x + hp)`, `f0 = f(x)`, `fm = f(x - hm)`.
   */
  const check = (
    argnum: number,
    path: string,
    where: string,
    [fp, f0, fm]: readonly number[],
    [hp, hm]: readonly number[],
    got: number,
  ) => {
    checked++;
    const expected = (fp - fm) / (hp + hm);
    if (close(got, expected)) return;
    // A kink: the one-sided differences disagree, and got is one of them or between.
    const right = (fp - f0) / hp;
    const left = (f0 - fm) / hm;
    const scale = Math.max(Math.abs(left), Math.abs(right));
    const tol = atol + rtol * scale;
    const atKink = Math.abs(right - left) > tol &&
      got >= Math.min(left, right) - tol && got <= Math.max(left, right) + tol;
    if (atKink && kinkMode === "skip") {
      checked--;
      kinks.push({ argnum, path, where, left, right, got });
    } else {
      failures.push({ argnum, path, where, expected, got });
    }
  };

  try {
    // Host copies of every differentiated leaf and of its gradient, per argument.
    const groups = await Promise.all(argnums.map(async (argnum, j) => {
      const { leaves, unflatten } = flattenTree(args[argnum]);
      const gs = treeTensors(grads[j]);
      const items = await Promise.all(leaves.map(async ({ path, value }, k) => {
        const x = value as Tensor;
        return { path, x, data: await x.data(), g: await gs[k].data() };
      }));
      return { argnum, items, unflatten };
    }));
    const temporaries: Tensor[] = [];
    const make = (data: ArrayLike<number>, like: Tensor) => {
      const t = tensor(data, { shape: like.shape, backend: like.backend, dtype: like.dtype });
      temporaries.push(t);
      return t;
    };
    try {
      if (mode === "direction") {
        // One random direction v over all leaves: compare (f(x+εv) - f(x-εv)) / 2ε with g·v.
        let predicted = 0;
        const directions = groups.map((group, gi) =>
          group.items.map((item, k) => {
            const next = generator(seed + 104729 * (gi + 1) + k);
            const v = item.data.map(() => next() * 2 - 1);
            for (let i = 0; i < v.length; i++) predicted += item.g[i] * v[i];
            return v;
          })
        );
        const shifted = (sign: number) => {
          const perturbed = [...args];
          groups.forEach((group, gi) => {
            perturbed[group.argnum] = group.unflatten(
              group.items.map((item, k) =>
                make(
                  item.data.map((x, i) => x + sign * eps * directions[gi][k][i]),
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
        check(argnums[0], "", "a random direction", values, [eps, eps], predicted);
      } else {
        // f at the point itself, for the one-sided differences.
        const base = evaluate([...args]);
        base.catch(() => {}); // awaited by every job below (there may be none)
        for (const group of groups) {
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
                  group.items.map((
                    other,
                    m,
                  ) => (m === k ? make(d, item.x) : other.x)),
                );
                return perturbed;
              };
              // The steps actually applied, after rounding to float32.
              const x = item.data[i];
              const steps = [Math.fround(x + eps) - x, x - Math.fround(x - eps)];
              jobs.push(
                Promise.all([evaluate(at(1)), base, evaluate(at(-1))]).then((values) =>
                  check(
                    group.argnum,
                    item.path,
                    unravel(i, item.x.shape),
                    values,
                    steps,
                    item.g[i],
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
    }
  } finally {
    for (const t of treeTensors(grads)) t.dispose();
    for (const c of cotangents) c.dispose();
  }

  if (failures.length > 0) {
    const lines = failures.slice(0, 10).map((f) =>
      `  argument ${f.argnum}${f.path ? ` '${f.path}'` : ""} at ${f.where}: ` +
      `central difference ${f.expected.toPrecision(6)}, reverse mode ${f.got.toPrecision(6)} ` +
      `(|diff| ${Math.abs(f.got - f.expected).toExponential(2)})`
    );
    const more = failures.length > 10 ? `\n  ... and ${failures.length - 10} more` : "";
    throw new GradCheckError(
      failures,
      `checkGrads: ${failures.length} gradient value(s) disagree with central differences ` +
        `(eps ${eps}, atol ${atol}, rtol ${rtol}, mode ${mode}):\n${lines.join("\n")}${more}` +
        `\n  shapes: ${
          args.map((a) => treeTensors(a).map((t) => shapeString(t.shape)).join(" ")).join(" | ")
        }`,
    );
  }
  return { checked, kinks };
}
