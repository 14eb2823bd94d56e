/**
 * Two moons: littlegrad's "hello world".
 *
 * Generates the classic two-moons dataset (two interleaved half circles),
 * trains a small multilayer perceptron (2 → 16 → 16 → 2, tanh, softmax
 * cross-entropy) on it with full-batch gradient descent, and draws the
 * learned decision boundary and the loss curve into `moons.svg`.
 *
 * Everything runs on the default backend: WebGPU when Deno finds an adapter,
 * the CPU reference backend otherwise. The training loop shows littlegrad's
 * habits:
 *
 * - gradients come from a pure function, `valueAndGrad(loss)`, which frees
 *   its own temporaries;
 * - tensors are immutable and there is no garbage collection of GPU memory,
 *   so each step disposes the parameters, gradients and loss it replaces,
 *   and memory stays flat;
 * - reading a value back waits for the GPU, so the loss is read only every
 *   few steps, and without stopping the loop to wait for each read.
 *
 * Run it with `deno task demo`. It exits with code 1 if the model does not
 * reach 95% training accuracy.
 *
 * @module
 */

import {
  backendInfo,
  disposeTree,
  memoryStats,
  randomNormal,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  tidy,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { axes, type Frame, frameRect, r, ticks } from "./_plot.ts";

// ---- settings ----------------------------------------------------------------

const POINTS = 200; // dataset size, half per moon
const NOISE = 0.1; // standard deviation of the Gaussian noise
const SEED = 7;
const LAYERS = [2, 16, 16, 2]; // input, hidden, hidden, classes
const STEPS = 1000;
const LEARNING_RATE = 0.5;
const LOG_EVERY = 10; // read the loss back every this many steps
const REPORT_EVERY = 100; // print progress every this many steps
const GRID = 60; // the decision boundary is sampled on GRID × GRID points
const OUTPUT = "moons.svg";

// ---- data --------------------------------------------------------------------

/** mulberry32: a tiny seeded generator of floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Points `[x1, x2]` with their class (0: upper moon, 1: lower moon). */
interface Dataset {
  points: [number, number][];
  labels: number[];
}

/**
 * The two-moons dataset, as in scikit-learn's `make_moons`: the upper half
 * circle of radius 1 around (0, 0) and the lower one around (1, 0.5), with
 * Gaussian noise of standard deviation `noise` added to each coordinate.
 */
function makeMoons(n: number, noise: number, seed: number): Dataset {
  const random = mulberry32(seed);
  const gaussian = () =>
    // Box–Muller
    Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const points: [number, number][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i < n / 2 ? 0 : 1;
    const angle = Math.PI * random();
    const [x1, x2] = label === 0
      ? [Math.cos(angle), Math.sin(angle)]
      : [1 - Math.cos(angle), 0.5 - Math.sin(angle)];
    points.push([x1 + noise * gaussian(), x2 + noise * gaussian()]);
    labels.push(label);
  }
  return { points, labels };
}

/** A rectangle of the plane: `x1 ≤ x ≤ x2`, `y1 ≤ y ≤ y2`. */
interface Bounds {
  x1: number;
  x2: number;
  y1: number;
  y2: number;
}

/** The points' extent in both axes, widened by `pad`. */
function plotBounds(points: [number, number][], pad: number): Bounds {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return {
    x1: Math.min(...xs) - pad,
    x2: Math.max(...xs) + pad,
    y1: Math.min(...ys) - pad,
    y2: Math.max(...ys) + pad,
  };
}

/** The centres of a `size` × `size` grid of cells over `b`, row by row from the top. */
function gridPoints(b: Bounds, size: number): [number, number][] {
  const points: [number, number][] = [];
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      points.push([
        b.x1 + (col + 0.5) * (b.x2 - b.x1) / size,
        b.y2 - (row + 0.5) * (b.y2 - b.y1) / size,
      ]);
    }
  }
  return points;
}

// ---- model -------------------------------------------------------------------

/**
 * One dense layer's parameters. (A type alias, not an interface: `sgd` takes
 * any tree of tensors, and only type aliases get the implicit index signature
 * that tree type needs.)
 */
type Layer = { w: Tensor; b: Tensor };

/** Weights drawn with variance 1 / fan-in (suits tanh), zero biases. */
function initMlp(sizes: number[], seed: number): Layer[] {
  return sizes.slice(1).map((fanOut, i) => ({
    w: randomNormal([sizes[i], fanOut], {
      seed: seed + i,
      std: 1 / Math.sqrt(sizes[i]),
    }),
    b: zeros([fanOut]),
  }));
}

/** The MLP: logits `[n, classes]` for points `x` of shape `[n, 2]`. */
function mlp(params: Layer[], x: Tensor): Tensor {
  return params.reduce((h, { w, b }, i) => {
    const z = h.matmul(w).add(b);
    return i < params.length - 1 ? z.tanh() : z;
  }, x);
}

/** The training objective: mean softmax cross-entropy. */
function loss(params: Layer[], x: Tensor, labels: Tensor): Tensor {
  return softmaxCrossEntropy(mlp(params, x), labels);
}

/**
 * The model's probability of class 1 at each point, read back to the CPU.
 *
 * Outside a transform, `tidy` releases the intermediate tensors of the
 * forward pass and keeps only what it returns.
 */
async function predict(
  params: Layer[],
  points: [number, number][],
): Promise<Float32Array> {
  const x = tensor(points);
  const probs = tidy(() => mlp(params, x).softmax());
  const values = await probs.data(); // [p(class 0), p(class 1)] per row
  probs.dispose();
  x.dispose();
  return (values as Float32Array).filter((_, i) => i % 2 === 1);
}

// ---- training ----------------------------------------------------------------

const { name: backend, adapter } = backendInfo();
console.log(`backend: ${backend} (${adapter})`);

const data = makeMoons(POINTS, NOISE, SEED);
const x = tensor(data.points);
const labels = tensor(data.labels, { dtype: "int32" });
let params = initMlp(LAYERS, SEED);

/** The loss a step (counted from 1) computed, before its update. */
type LossAt = { step: number; loss: number };

const lossAndGrad = valueAndGrad(loss);
const history: LossAt[] = [];
const reads: Promise<LossAt>[] = [];
const memory: { step: number; bytes: number }[] = []; // should stay flat
const interactive = Deno.stdout.isTerminal(); // then redraw a single line
const encoder = new TextEncoder();
const started = performance.now();
const seconds = () => (performance.now() - started) / 1000;

for (let step = 1; step <= STEPS; step++) {
  const [value, grads] = lossAndGrad(params, x, labels);
  const next = sgd(params, grads, { lr: LEARNING_RATE });
  disposeTree([params, grads]);
  params = next;

  // Awaiting a read stalls the CPU until the GPU has run every queued step.
  // Instead, start a read of the loss every LOG_EVERY steps, keep training,
  // and collect the finished reads every REPORT_EVERY steps.
  if (step === 1 || step % LOG_EVERY === 0 || step === STEPS) {
    reads.push(
      value.item().then((loss) => {
        value.dispose();
        return { step, loss };
      }),
    );
  } else value.dispose();

  if (step % REPORT_EVERY === 0 || step === STEPS) {
    history.push(...await Promise.all(reads.splice(0)));
    memory.push({ step, bytes: memoryStats().liveBytes });
    const { loss } = history[history.length - 1];
    const line = `step ${String(step).padStart(String(STEPS).length)}/${STEPS}` +
      `  loss ${loss.toFixed(4)}  ${seconds().toFixed(1)}s`;
    if (interactive) {
      await Deno.stdout.write(encoder.encode(`\r${line}`));
    } else console.log(line);
  }
}
if (interactive) console.log();
const trainSeconds = seconds();

// ---- evaluation --------------------------------------------------------------

const predicted = Array.from(
  await predict(params, data.points),
  (p) => p > 0.5 ? 1 : 0,
);
const correct = predicted.filter((label, i) => label === data.labels[i]).length;
const accuracy = correct / POINTS;
console.log(
  `accuracy: ${(100 * accuracy).toFixed(1)}% (${correct}/${POINTS})` +
    ` after ${STEPS} steps in ${trainSeconds.toFixed(1)}s`,
);

// The model's probability of class 1 over the whole plot, in one forward pass.
const bounds = plotBounds(data.points, 0.3);
const surface = await predict(params, gridPoints(bounds, GRID));

disposeTree([params, x, labels]);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const [first, last] = [memory[0], memory[memory.length - 1]];
console.log(
  `memory: ${kib(first.bytes)} of live tensors at step ${first.step}, ` +
    `${kib(last.bytes)} at step ${last.step}; ` +
    `${memoryStats().liveTensors} tensors left after disposing everything`,
);

// ---- the picture -------------------------------------------------------------

const COLORS = {
  class0: "#2f6fb3",
  class1: "#e0772b",
  soft0: [201, 222, 244], // region colours at full confidence
  soft1: [251, 221, 195],
  ink: "#333",
  grid: "#e6e6e6",
};

/** Region colour for probability `p` of class 1: soft blue → white → soft orange. */
function regionColor(p: number): string {
  const [from, t] = p < 0.5 ? [COLORS.soft0, 1 - 2 * p] : [COLORS.soft1, 2 * p - 1];
  const level = Math.round(t * 12) / 12; // few distinct colours: smaller file
  const mix = from.map((c) => Math.round(255 + (c - 255) * level ** 0.7));
  return `rgb(${mix.join(",")})`;
}

/**
 * The p = 0.5 contour of a row-major GRID × GRID field (marching squares), as
 * segments between cell centres in grid coordinates (col, row).
 */
function contour(field: Float32Array, size: number): [number, number][][] {
  const segments: [number, number][][] = [];
  const at = (col: number, row: number) => field[row * size + col] - 0.5;
  for (let row = 0; row < size - 1; row++) {
    for (let col = 0; col < size - 1; col++) {
      const corners: [number, number][] = [
        [col, row],
        [col + 1, row],
        [col + 1, row + 1],
        [col, row + 1],
      ];
      const crossings: [number, number][] = [];
      for (let k = 0; k < 4; k++) {
        const [ca, ra] = corners[k];
        const [cb, rb] = corners[(k + 1) % 4];
        const [va, vb] = [at(ca, ra), at(cb, rb)];
        if ((va < 0) !== (vb < 0)) {
          const t = va / (va - vb);
          crossings.push([ca + t * (cb - ca), ra + t * (rb - ra)]);
        }
      }
      for (let k = 0; k + 1 < crossings.length; k += 2) {
        segments.push([crossings[k], crossings[k + 1]]);
      }
    }
  }
  return segments;
}

/** What the figure shows. */
interface Results {
  data: Dataset;
  /** The predicted class of each data point. */
  predicted: number[];
  accuracy: number;
  /** The plotted region of the plane. */
  bounds: Bounds;
  /** p(class 1) at the GRID × GRID cell centres over `bounds`, row by row. */
  surface: Float32Array;
  history: LossAt[];
  backend: string;
}

/** Panel (a): predicted class regions, the p = ½ boundary, and the data. */
function boundaryPanel(f: Frame, { data, predicted, bounds: b, surface }: Results): string {
  const sx = (v: number) => f.left + (v - b.x1) / (b.x2 - b.x1) * f.width;
  const sy = (v: number) => f.top + (b.y2 - v) / (b.y2 - b.y1) * f.height;

  // Cells, merging runs of equal colour along each row.
  const edgeX = (col: number) => Math.round(f.left + col * f.width / GRID);
  const edgeY = (row: number) => Math.round(f.top + row * f.height / GRID);
  const cells: string[] = [];
  for (let row = 0; row < GRID; row++) {
    const colors = Array.from(
      surface.subarray(row * GRID, (row + 1) * GRID),
      regionColor,
    );
    for (let start = 0, col = 1; col <= GRID; col++) {
      if (col < GRID && colors[col] === colors[start]) continue;
      cells.push(
        `<rect x="${edgeX(start)}" y="${edgeY(row)}" width="${edgeX(col) - edgeX(start)}" height="${
          edgeY(row + 1) - edgeY(row)
        }" fill="${colors[start]}"/>`,
      );
      start = col;
    }
  }

  // The boundary, through cell centres.
  const gx = (col: number) => f.left + (col + 0.5) * f.width / GRID;
  const gy = (row: number) => f.top + (row + 0.5) * f.height / GRID;
  const path = contour(surface, GRID)
    .map(([[c1, r1], [c2, r2]]) => `M${r(gx(c1))} ${r(gy(r1))}L${r(gx(c2))} ${r(gy(r2))}`)
    .join("");

  // The data, coloured by true label; misclassified points get a black ring.
  const dots = data.points.map(([px, py], i) => {
    const label = data.labels[i];
    const wrong = predicted[i] !== label;
    return `<circle cx="${r(sx(px))}" cy="${r(sy(py))}" r="4" fill="${
      label ? COLORS.class1 : COLORS.class0
    }" stroke="${wrong ? "#000" : "#fff"}" stroke-width="${wrong ? 2 : 1}"/>`;
  });

  const format = (v: number) => String(Math.round(v * 10) / 10);
  return [
    `<g shape-rendering="crispEdges">\n${cells.join("\n")}\n</g>`,
    `<path d="${path}" fill="none" stroke="#444" stroke-opacity="0.8" stroke-width="1.5" stroke-linecap="round"/>`,
    `<g>\n${dots.join("\n")}\n</g>`,
    frameRect(f),
    axes(
      f,
      ticks(b.x1, b.x2).map((v) => ({ at: sx(v), label: format(v) })),
      ticks(b.y1, b.y2).map((v) => ({ at: sy(v), label: format(v) })),
      "x₁",
      "x₂",
      false,
    ),
  ].join("\n");
}

/** Panel (b): the loss against the step, on a log scale. */
function lossPanel(f: Frame, history: LossAt[]): string {
  const losses = history.map((h) => h.loss);
  const lo = Math.floor(Math.log10(Math.min(...losses)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...losses))));
  const sx = (step: number) => f.left + step / STEPS * f.width;
  const sy = (loss: number) => f.top + (hi - Math.log10(loss)) / (hi - lo) * f.height;
  const decades = Array.from({ length: hi - lo + 1 }, (_, k) => 10 ** (lo + k));
  const minor = decades.slice(0, -1).flatMap((d) =>
    [2, 3, 4, 5, 6, 7, 8, 9].map((m) =>
      `<line x1="${f.left}" y1="${r(sy(m * d))}" x2="${f.left + f.width}" y2="${
        r(sy(m * d))
      }" stroke="#f2f2f2"/>`
    )
  );
  const line = history
    .map((h, k) => `${k ? "L" : "M"}${r(sx(h.step))} ${r(sy(h.loss))}`)
    .join("");
  const last = history[history.length - 1];
  const [lastX, lastY] = [r(sx(last.step)), r(sy(last.loss))];
  return [
    ...minor,
    axes(
      f,
      ticks(0, STEPS).map((s) => ({ at: sx(s), label: String(s) })),
      decades.map((d) => ({ at: sy(d), label: String(+d.toPrecision(1)) })),
      "step",
      "cross-entropy loss (log scale)",
      true,
    ),
    `<path d="${line}" fill="none" stroke="${COLORS.class0}" stroke-width="2" stroke-linejoin="round"/>`,
    `<circle cx="${lastX}" cy="${lastY}" r="3.5" fill="${COLORS.class0}"/>`,
    `<text x="${lastX - 6}" y="${lastY - 10}" text-anchor="end" fill="${COLORS.class0}">${
      last.loss.toFixed(4)
    }</text>`,
    frameRect(f),
  ].join("\n");
}

/** The whole figure: a title, a subtitle and the two panels side by side. */
function figure(results: Results): string {
  const { x1, x2, y1, y2 } = results.bounds;
  const top = 104;
  const height = Math.round(440 * (y2 - y1) / (x2 - x1)); // equal axis scales
  const a: Frame = { left: 64, top, width: 440, height };
  const b: Frame = { left: 600, top, width: 380, height };
  const svgWidth = b.left + b.width + 30;
  const svgHeight = top + height + 60;
  const subtitle = [
    `${POINTS} points, noise ${NOISE}`,
    `MLP ${LAYERS.join("–")} with tanh`,
    `${STEPS} full-batch SGD steps, lr ${LEARNING_RATE}`,
    results.backend,
    `training accuracy ${(100 * results.accuracy).toFixed(1)}%`,
  ].join(" · ");
  const legend = `<g transform="translate(${a.left + a.width - 255} ${top - 14})">
<circle r="4.5" fill="${COLORS.class0}"/><text x="9" y="4">class 0</text>
<circle cx="62" r="4.5" fill="${COLORS.class1}"/><text x="71" y="4">class 1</text>
<line x1="124" x2="144" stroke="#444" stroke-width="1.5"/><text x="150" y="4">boundary p = ½</text>
</g>`;
  const heading = (f: Frame, text: string) =>
    `<text x="${f.left}" y="${top - 10}" font-size="13" font-weight="600">${text}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${svgWidth}" height="${svgHeight}" viewBox="0 0 ${svgWidth} ${svgHeight}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12" fill="${COLORS.ink}">
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="32" font-size="19" font-weight="600">Two moons, learned by littlegrad</text>
<text x="20" y="56" fill="#777">${subtitle}</text>
${heading(a, "(a) Decision boundary")}
${legend}
${heading(b, "(b) Training loss")}
${boundaryPanel(a, results)}
${lossPanel(b, results.history)}
</svg>
`;
}

// ---- output --------------------------------------------------------------------

const svg = figure({
  data,
  predicted,
  accuracy,
  bounds,
  surface,
  history,
  backend,
});
await Deno.writeTextFile(OUTPUT, svg);
console.log(`wrote ${OUTPUT}`);

if (accuracy < 0.95) {
  console.error(
    `accuracy ${(100 * accuracy).toFixed(1)}% is below the 95% target`,
  );
  Deno.exit(1);
}
