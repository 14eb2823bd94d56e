/**
 * A character-level language model, trained on this repository's README.
 *
 * The multilayer perceptron of Bengio et al. (2003), as in Karpathy's
 * makemore: the previous `CONTEXT` characters are looked up in a table of
 * learned character embeddings (`nn.embedding`, a gather whose gradient
 * scatter-adds), concatenated, passed through one `tanh` hidden layer, and
 * mapped to logits over the next character; the loss is softmax
 * cross-entropy against `int32` targets, in nats per character.
 *
 * The corpus is `README.md` (so the example needs `--allow-read`),
 * lower-cased, with runs of spaces and of table dashes shortened and every
 * character outside a small alphabet mapped to one "other" symbol. Every
 * position of the text is one window (context → next character); 10% of the
 * windows, in randomly chosen blocks of consecutive text, are held out for
 * validation. Training is AdamW on minibatches drawn with `random` keys, with
 * a warmup + cosine learning-rate schedule. The losses are compared with two
 * baselines that ignore the context: a uniform guess (log of the vocabulary
 * size) and the empirical unigram entropy of the training characters.
 *
 * Then the model writes: starting from a prompt, each next character is drawn
 * from the softmax of the logits (at a temperature) with the Gumbel-max trick,
 * as `jax.random.categorical` draws, entirely on the device: the sampled
 * `int32` ids feed the next step's embedding lookup without a read back, and
 * the text is read once at the end.
 *
 * It prints progress lines, the losses, the samples and memory statistics,
 * and draws the training and validation loss curves with the baselines into
 * `charlm.svg`. The last line of the training report reads
 * `validation loss: 1.234 nats/char (unigram baseline 2.951) after N steps in T s`.
 *
 * Run it with `deno run --allow-read=. --allow-write=charlm.svg examples/charlm.ts`.
 * Flags: `--quick` (a short run for tests and CI), `--steps N`,
 * `--backend cpu|webgpu`, `--seed N`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  backendInfo,
  type BackendName,
  concat,
  disposeTree,
  initializers,
  memoryStats,
  nn,
  optim,
  random,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  tidy,
  useBackend,
  valueAndGrad,
} from "../mod.ts";
import { axes, type Frame, frameRect, r, ticks } from "./_plot.ts";

// ---- settings ----------------------------------------------------------------

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    steps: { type: "string" },
    backend: { type: "string" },
    seed: { type: "string", default: "0" },
  },
});
const intFlag = (name: string, value: string | undefined, fallback: number, min = 1) => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}, got ${value}`);
    Deno.exit(2);
  }
  return n;
};

const STEPS = intFlag("steps", flags.steps, flags.quick ? 600 : 2000);
const SEED = intFlag("seed", flags.seed, 0, 0);
const CONTEXT = 8; // characters of context
const EMBED = 16; // size of a character's embedding
const HIDDEN = 256; // tanh units
const BATCH = 128;
const PEAK_LR = 1e-2;
const WEIGHT_DECAY = 0.1; // decoupled (AdamW); the corpus is small and the model overfits it without
const VALIDATION_FRACTION = 0.1;
const BLOCK = 128; // validation windows are held out in blocks of this many characters
const LOG_EVERY = 10; // read the minibatch loss back every this many steps
const EVALS = 20; // validation loss evaluations over the run
const SAMPLES = 2; // sampled texts, drawn side by side
const SAMPLE_LENGTH = 250; // characters each
const TEMPERATURE = 0.8;
const PROMPT = "the tensors ";
const CORPUS = new URL("../README.md", import.meta.url);
const FIGURE = "charlm.svg";

if (flags.backend !== undefined) {
  if (flags.backend !== "webgpu" && flags.backend !== "cpu") {
    console.error(`--backend must be webgpu or cpu, got ${flags.backend}`);
    Deno.exit(2);
  }
  useBackend(flags.backend as BackendName);
}
const { name: backend, adapter } = backendInfo();
console.log(`backend: ${backend} (${adapter})`);

// ---- text --------------------------------------------------------------------

/**
 * The alphabet: lower-case letters, digits, space, newline and a little
 * punctuation. Index 0 is "other": every character not listed (capitals are
 * lower-cased first) becomes it, shown as `·` when printed.
 */
const OTHER = "·";
const ALPHABET = [OTHER, ..."\n abcdefghijklmnopqrstuvwxyz0123456789.,:;()-'`|"];
const VOCAB = ALPHABET.length;
const ID = new Map(ALPHABET.map((c, i) => [c, i]));

/**
 * Normalises text: lower case, runs of spaces and tabs as one space (the
 * README's tables pad their cells), runs of more than three dashes as three
 * (table rules), and at most two newlines in a row.
 */
function normalise(text: string): string {
  return text
    .toLowerCase()
    .replace(/\r\n?/g, "\n")
    .replace(/[ \t]+/g, " ")
    .replace(/-{4,}/g, "---")
    .replace(/\n{3,}/g, "\n\n");
}

/** Character ids, one per UTF-16 code unit of `text` (outside the alphabet: 0). */
function encode(text: string): Int32Array {
  return Int32Array.from(text, (c) => ID.get(c) ?? 0);
}

const decode = (ids: ArrayLike<number>) => Array.from(ids, (i) => ALPHABET[i]).join("");

const text = normalise(await Deno.readTextFile(CORPUS));
// The text starts after CONTEXT newlines, so its first characters are targets too.
const ids = encode("\n".repeat(CONTEXT) + text);
const windows = ids.length - CONTEXT; // window w: ids[w, w + CONTEXT) → ids[w + CONTEXT]

const [splitKey, initKey, batchKey, sampleKey] = random.split(random.key(SEED), 4);

// Whole blocks of consecutive windows go to validation, so a validation
// target is rarely inside the context of a training window.
const blocks = Math.ceil(windows / BLOCK);
const heldOut = new Set(
  random.permutation(splitKey, blocks).slice(0, Math.round(blocks * VALIDATION_FRACTION)),
);
const trainWindows: number[] = [];
const validWindows: number[] = [];
for (let w = 0; w < windows; w++) {
  (heldOut.has(Math.floor(w / BLOCK)) ? validWindows : trainWindows).push(w);
}

/**
 * The windows as device tensors, as makemore builds them: contexts
 * `[n, CONTEXT]` and next characters `[n]`, both `int32`.
 */
function windowTensors(list: number[]): { x: Tensor; y: Tensor } {
  const x = new Int32Array(list.length * CONTEXT);
  const y = new Int32Array(list.length);
  list.forEach((w, row) => {
    x.set(ids.subarray(w, w + CONTEXT), row * CONTEXT);
    y[row] = ids[w + CONTEXT];
  });
  return { x: tensor(x, { shape: [list.length, CONTEXT] }), y: tensor(y) };
}

const train = windowTensors(trainWindows);
const valid = windowTensors(validWindows);

// Baselines that ignore the context: a uniform guess, and the unigram
// distribution of the training targets (its entropy; and its cross-entropy
// on the validation targets, the loss such a model would get there).
const counts = new Float64Array(VOCAB);
for (const w of trainWindows) counts[ids[w + CONTEXT]]++;
const uniformLoss = Math.log(VOCAB);
const unigramEntropy = -counts.reduce(
  (s, c) => (c ? s + (c / trainWindows.length) * Math.log(c / trainWindows.length) : s),
  0,
);
const unigramValidLoss = -validWindows.reduce(
  (s, w) => s + Math.log((counts[ids[w + CONTEXT]] + 1) / (trainWindows.length + VOCAB)),
  0,
) / validWindows.length;
const otherShare = ids.filter((i) => i === 0).length / ids.length;

console.log(
  `data: ${CORPUS.pathname.split("/").at(-1)}, ${thousands(text.length)} characters after ` +
    `normalising, ${VOCAB} symbols (${(100 * otherShare).toFixed(1)}% "other"); ` +
    `${thousands(trainWindows.length)} training and ${
      thousands(validWindows.length)
    } validation windows of ${CONTEXT} → 1`,
);
console.log(
  `baselines: uniform log ${VOCAB} = ${uniformLoss.toFixed(3)}, unigram entropy ` +
    `${unigramEntropy.toFixed(3)} nats/char (unigram on validation: ${
      unigramValidLoss.toFixed(3)
    })`,
);

// ---- model -------------------------------------------------------------------

type Params = { embed: nn.EmbeddingParams; hidden: nn.LinearParams; out: nn.LinearParams };

function initParams(key: random.Key): Params {
  const [e, h, o] = random.split(key, 3);
  return {
    embed: nn.initEmbedding(e, VOCAB, EMBED),
    hidden: nn.initLinear(h, CONTEXT * EMBED, HIDDEN),
    // Small output weights: the first predictions are near uniform, so the
    // loss starts near log(VOCAB) instead of far above it.
    out: nn.initLinear(o, HIDDEN, VOCAB, { wInit: initializers.normal(0.01) }),
  };
}

/** Logits `[n, VOCAB]` for contexts `x` (`int32`, `[n, CONTEXT]`). */
function forward(p: Params, x: Tensor): Tensor {
  const e = nn.embedding(p.embed, x); // [n, CONTEXT, EMBED]
  const h = nn.linear(p.hidden, e.reshape([x.shape[0], CONTEXT * EMBED])).tanh();
  return nn.linear(p.out, h);
}

const loss = (p: Params, x: Tensor, y: Tensor) => softmaxCrossEntropy(forward(p, x), y);

// ---- progress ----------------------------------------------------------------

function thousands(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

const interactive = Deno.stdout.isTerminal();
const encoder = new TextEncoder();

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

const schedule = optim.warmupCosineDecaySchedule({
  initValue: 0,
  peakValue: PEAK_LR,
  warmupSteps: Math.min(100, Math.floor(STEPS / 10)),
  decaySteps: STEPS,
  endValue: PEAK_LR / 20,
});
const optimizer = optim.adamw(schedule, { weightDecay: WEIGHT_DECAY });
let params = initParams(initKey);
let state = optimizer.init(params);
const lossAndGrad = valueAndGrad(loss);

/** A loss read back from the device: the step it belongs to and its value. */
type LossAt = { step: number; loss: number };
const trainLosses: LossAt[] = []; // minibatch losses, every LOG_EVERY steps
const validLosses: LossAt[] = [];
let pending: Promise<void>[] = []; // reads in flight
const liveBytes: number[] = [];

/** Starts reading `value` (disposing it after) into `list` at `step`, without waiting. */
function record(value: Tensor, list: LossAt[], step: number): void {
  pending.push(
    value.item().then((v) => {
      value.dispose();
      list.push({ step, loss: v });
    }),
  );
}

/** The mean loss over a whole set of windows, as a tensor (not read yet). */
const lossOn = (p: Params, set: { x: Tensor; y: Tensor }) => tidy(() => loss(p, set.x, set.y));

/** The latest value in a list of losses, for progress lines. */
const latest = (list: LossAt[]) =>
  list.length ? list.reduce((a, b) => (b.step > a.step ? b : a)).loss.toFixed(4) : "…";

const evalEvery = Math.max(1, Math.round(STEPS / EVALS));
const reportEvery = Math.max(1, Math.round(STEPS / 10));
record(lossOn(params, valid), validLosses, 0);
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;

for (let step = 1; step <= STEPS; step++) {
  // A minibatch: BATCH windows drawn uniformly (with replacement) from the
  // training set, picked on the device with `take`.
  const words = random.bits(random.foldIn(batchKey, step), BATCH);
  const rows = tensor(
    Int32Array.from(words, (w) => Math.floor((w / 2 ** 32) * trainWindows.length)),
  );
  const x = train.x.take(rows, 0);
  const y = train.y.take(rows, 0);

  // One step: gradients, optimizer update, new params; dispose what was replaced.
  const [value, grads] = lossAndGrad(params, x, y);
  const [updates, nextState] = optimizer.update(grads, state, params);
  const nextParams = optim.applyUpdates(params, updates);
  disposeTree([rows, x, y, grads, updates, params, state]);
  [params, state] = [nextParams, nextState];

  // Reading a value waits for the device, so read the loss only every few
  // steps, and without waiting for it: keep at most two reads in flight.
  if (step % LOG_EVERY === 0) record(value, trainLosses, step);
  else value.dispose();
  if (step % evalEvery === 0 || step === STEPS) record(lossOn(params, valid), validLosses, step);
  while (pending.length > 2) await pending.shift();

  if (step % reportEvery === 0 || step === STEPS) {
    await Promise.all(pending);
    pending = [];
    liveBytes.push(memoryStats().liveBytes); // should not grow during training
    report(
      `step ${String(step).padStart(String(STEPS).length)}/${STEPS}  ` +
        `train ${latest(trainLosses)}  validation ${latest(validLosses)}  ` +
        `${thousands((step * BATCH) / elapsed())} samples/s  ${elapsed().toFixed(1)}s`,
    );
  } else if (step % LOG_EVERY === 0) {
    await progress(
      `step ${step}/${STEPS} ${bar(step / STEPS)}  loss ${latest(trainLosses)}  ` +
        `${thousands((step * BATCH) / elapsed())} samples/s`,
    );
  }
}
await Promise.all(pending);
const trainSeconds = elapsed();
const throughput = (STEPS * BATCH) / trainSeconds;

// ---- evaluation --------------------------------------------------------------

const trainLossTensor = lossOn(params, train);
const validLossTensor = lossOn(params, valid);
const [trainLoss, validLoss] = await Promise.all([
  trainLossTensor.item(),
  validLossTensor.item(),
]);
disposeTree([trainLossTensor, validLossTensor]);
console.log(
  `training loss ${trainLoss.toFixed(3)}, validation loss ${validLoss.toFixed(3)} nats/char ` +
    `(${(validLoss / Math.LN2).toFixed(2)} bits/char); uniform ${uniformLoss.toFixed(3)}, ` +
    `unigram ${unigramEntropy.toFixed(3)}; ${thousands(throughput)} samples/s`,
);

// ---- sampling ----------------------------------------------------------------

/**
 * `SAMPLES` continuations of `prompt`, `length` characters each, drawn on the
 * device. Each character is `argmax(logits / T + g)` with Gumbel noise
 * `g = -log(-log u)`, which picks class i with probability softmax(logits / T)ᵢ
 * (what `jax.random.categorical` does); the new `int32` ids join the context
 * with `slice` and `concat`, and nothing is read until the end.
 */
async function sample(p: Params, key: random.Key, prompt: string, length: number) {
  const start = encode(prompt.padStart(CONTEXT, "\n").slice(-CONTEXT));
  let context = tensor(
    Int32Array.from({ length: SAMPLES * CONTEXT }, (_, i) => start[i % CONTEXT]),
    {
      shape: [SAMPLES, CONTEXT],
    },
  );
  const drawn: Tensor[] = [];
  for (let i = 0; i < length; i++) {
    const u = random.uniform(random.foldIn(key, i), [SAMPLES, VOCAB], { low: 1.1754944e-38 });
    const [next, nextContext] = tidy(() => {
      const gumbel = u.log().neg().log().neg();
      const next = forward(p, context).div(TEMPERATURE).add(gumbel).argmax(-1, { keepdims: true });
      return [next, concat([context.slice([0, 1]), next], 1)];
    });
    disposeTree([u, context]);
    drawn.push(next);
    context = nextContext;
  }
  const all = concat(drawn, 1); // [SAMPLES, length]
  const values = await all.data();
  disposeTree([drawn, all, context]);
  return Array.from(
    { length: SAMPLES },
    (_, s) => decode(values.subarray(s * length, (s + 1) * length) as Int32Array),
  );
}

const sampleStart = performance.now();
const samples = await sample(params, sampleKey, PROMPT, SAMPLE_LENGTH);
const sampleSeconds = (performance.now() - sampleStart) / 1000;
console.log(
  `\n${SAMPLES} samples of ${SAMPLE_LENGTH} characters at temperature ${TEMPERATURE}, ` +
    `prompt ${JSON.stringify(PROMPT)} (${sampleSeconds.toFixed(1)}s):`,
);
for (const s of samples) console.log(`\n${PROMPT}${s}`);
console.log();

disposeTree([params, state, train, valid]);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
console.log(
  `memory: ${mib(liveBytes[0])} of live tensors at the first report, ${
    mib(liveBytes[liveBytes.length - 1])
  } at the last; peak ${
    mib(memoryStats().peakBytes)
  }; ${memoryStats().liveTensors} tensors left after disposing everything`,
);

// ---- the picture -------------------------------------------------------------

const COLORS = {
  batch: "#9dbbe0",
  train: "#2f6fb3",
  valid: "#e0772b",
  baseline: "#777",
  ink: "#333",
};

/** Losses against steps: minibatch losses, their moving average, validation, baselines. */
function lossPanel(f: Frame): string {
  const batch = [...trainLosses].sort((a, b) => a.step - b.step);
  const valid = [...validLosses].sort((a, b) => a.step - b.step);
  const all = [...batch, ...valid].map((l) => l.loss);
  const yLo = Math.max(0, Math.floor(Math.min(...all) * 2) / 2 - 0.5);
  const yHi = Math.ceil(Math.max(uniformLoss, ...all) * 2) / 2;
  const sx = (step: number) => f.left + (step / STEPS) * f.width;
  const sy = (v: number) => f.top + f.height - ((Math.min(v, yHi) - yLo) / (yHi - yLo)) * f.height;
  const path = (points: LossAt[]) =>
    points.map((p, i) => `${i ? "L" : "M"}${r(sx(p.step))},${r(sy(p.loss))}`).join(" ");
  // A centred moving average over 9 reads shows the trend of the noisy minibatch losses.
  const smooth = batch.map((p, i) => {
    const window = batch.slice(Math.max(0, i - 4), i + 5);
    return { step: p.step, loss: window.reduce((sum, w) => sum + w.loss, 0) / window.length };
  });
  const baseline = (v: number, label: string) =>
    `<line x1="${f.left}" y1="${r(sy(v))}" x2="${f.left + f.width}" y2="${
      r(sy(v))
    }" stroke="${COLORS.baseline}" stroke-dasharray="4 3"/>` +
    `<text x="${f.left + f.width - 4}" y="${
      r(sy(v)) + 14
    }" text-anchor="end" fill="${COLORS.baseline}">${label} ${v.toFixed(3)}</text>`;
  const legend = [
    [COLORS.batch, "minibatch loss"],
    [COLORS.train, "minibatch loss, moving average"],
    [COLORS.valid, "validation loss"],
  ].map(([color, label], i) => {
    const y = f.top + f.height - 52 + i * 18; // bottom left, below the curves
    return `<line x1="${f.left + 12}" y1="${y - 4}" x2="${f.left + 36}" y2="${
      y - 4
    }" stroke="${color}" stroke-width="2"/>` +
      `<text x="${f.left + 42}" y="${y}">${label}</text>`;
  });
  return [
    axes(
      f,
      ticks(0, STEPS, 5).map((s) => ({ at: sx(s), label: thousands(s) })),
      ticks(yLo, yHi, 6).map((v) => ({ at: sy(v), label: v.toFixed(1) })),
      "training step",
      "cross-entropy (nats/char)",
    ),
    frameRect(f),
    baseline(uniformLoss, `uniform (log ${VOCAB})`),
    baseline(unigramEntropy, "unigram entropy"),
    `<path d="${path(batch)}" fill="none" stroke="${COLORS.batch}" stroke-width="1"/>`,
    `<path d="${path(smooth)}" fill="none" stroke="${COLORS.train}" stroke-width="2"/>`,
    `<path d="${path(valid)}" fill="none" stroke="${COLORS.valid}" stroke-width="2"/>`,
    ...valid.map((p) =>
      `<circle cx="${r(sx(p.step))}" cy="${r(sy(p.loss))}" r="2.5" fill="${COLORS.valid}"/>`
    ),
    ...legend,
  ].join("\n");
}

const escapeXml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The samples, each wrapped into lines of `width` characters, a blank line between them. */
function samplePanel(left: number, top: number, width: number): string {
  const rows: string[] = [];
  for (const sample of samples) {
    if (rows.length) rows.push("");
    const flat = (PROMPT + sample).replace(/\n/g, "↵");
    for (let i = 0; i < flat.length; i += width) rows.push(flat.slice(i, i + width));
  }
  return rows.map((row, i) =>
    `<text x="${left}" y="${
      top + i * 16
    }" font-family="ui-monospace, Menlo, Consolas, monospace" ` +
    `xml:space="preserve">${escapeXml(row)}</text>`
  ).join("\n");
}

function figure(): string {
  const top = 100;
  const a: Frame = { left: 74, top, width: 460, height: 280 };
  const columns = 44;
  const lines = SAMPLES * (Math.ceil((PROMPT.length + SAMPLE_LENGTH) / columns) + 1);
  const bLeft = a.left + a.width + 50;
  const width = bLeft + columns * 7.3 + 30;
  const height = Math.max(top + a.height + 60, top + lines * 16 + 30);
  const subtitle = [
    `README.md, ${thousands(text.length)} characters, ${VOCAB} symbols`,
    `${CONTEXT} characters of context → embeddings of ${EMBED} → tanh ${HIDDEN} → ${VOCAB} logits`,
    `AdamW, batch ${BATCH}, ${thousands(STEPS)} steps`,
  ].join(" · ");
  const result = `validation ${validLoss.toFixed(3)} nats/char (unigram ${
    unigramEntropy.toFixed(3)
  }) · ${trainSeconds.toFixed(1)} s · ${thousands(throughput)} samples/s · ${backend} (${adapter})`;
  const heading = (x: number, label: string) =>
    `<text x="${x}" y="${top - 14}" font-size="13" font-weight="600">${label}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12" fill="${COLORS.ink}">
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="30" font-size="19" font-weight="600">A character-level language model of this README, learned by littlegrad</text>
<text x="20" y="52" fill="#777">${escapeXml(subtitle)}</text>
<text x="20" y="70" fill="#777">${escapeXml(result)}</text>
${heading(a.left, "(a) Loss per character")}
${heading(bLeft, `(b) Samples at temperature ${TEMPERATURE} (↵ is a newline)`)}
${lossPanel(a)}
${samplePanel(bLeft, top + 4, columns)}
</svg>
`;
}

await Deno.writeTextFile(FIGURE, figure());
console.log(`wrote ${FIGURE}`);
console.log(
  `validation loss: ${validLoss.toFixed(3)} nats/char (unigram baseline ${
    unigramEntropy.toFixed(3)
  }) after ${STEPS} steps in ${trainSeconds.toFixed(1)} s`,
);
