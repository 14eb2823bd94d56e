/**
 * Optimizers: a few steps on both backends compared with the published
 * update formulas evaluated in float64 here (PyTorch's SGD, Kingma & Ba's
 * Adam, Loshchilov & Hutter's AdamW, optax's clipping and schedules), plus
 * the first steps worked out by hand, state pytrees, purity and memory.
 */

import assert from "node:assert/strict";
import {
  disposeTree,
  flattenTree,
  memoryStats,
  optim,
  sgd,
  type Tensor,
  tensor,
  treeTensors,
  valueAndGrad,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

// ---- the problem: a separable quadratic, gradient 1.5·p + 0.2 ------------------------

type Params = { layer: { w: Tensor; b: Tensor }; s: Tensor };
const INITIAL = [1, -2, 0.5, 3, 0.1, -0.3, 2]; // w (2×2), b, s flattened in tree order

function makeParams(): Params {
  return {
    layer: { w: tensor([[1, -2], [0.5, 3]]), b: tensor([0.1, -0.3]) },
    s: tensor([2]),
  };
}

const loss = (p: Params) =>
  treeTensors(p)
    .map((x) => x.pow(2).mul(0.75).add(x.mul(0.2)).sum())
    .reduce((a, b) => a.add(b));
const lossAndGrad = valueAndGrad(loss);
const gradOf = (p: number) => 1.5 * p + 0.2;

/** A state's step count as a number: an int32 scalar tensor (from init) is read back. */
async function countOf(count: Tensor | number): Promise<number> {
  if (typeof count === "number") return count;
  assert.equal(count.dtype, "int32");
  assert.deepEqual(count.shape, []);
  return await count.item();
}

async function values(tree: unknown): Promise<number[]> {
  const out: number[] = [];
  for (const t of treeTensors(tree)) out.push(...await t.data());
  return out;
}

/** Runs `steps` optimizer steps from INITIAL and returns the final params. */
async function run(opt: optim.GradientTransformation<unknown>, steps: number): Promise<number[]> {
  let params = makeParams();
  let state = opt.init(params);
  for (let i = 0; i < steps; i++) {
    const [value, grads] = lossAndGrad(params);
    const [updates, nextState] = opt.update(grads, state, params);
    const next = optim.applyUpdates(params, updates);
    disposeTree([value, grads, updates, params, state]);
    [params, state] = [next, nextState];
  }
  const out = await values(params);
  disposeTree([params, state]);
  return out;
}

// ---- references: the published formulas, in float64 -----------------------------------

/** PyTorch's SGD (dampening 0): g += λp; b = μb + g; step g + μb (Nesterov) or b. */
function sgdReference(
  steps: number,
  lr: (t: number) => number,
  { momentum = 0, nesterov = false, weightDecay = 0 } = {},
): number[] {
  return INITIAL.map((p0) => {
    let p = p0;
    let buf = 0;
    for (let t = 0; t < steps; t++) {
      let g = gradOf(p) + weightDecay * p;
      if (momentum > 0) {
        buf = momentum * buf + g;
        g = nesterov ? g + momentum * buf : buf;
      }
      p -= lr(t) * g;
    }
    return p;
  });
}

/** Adam (Kingma & Ba, Algorithm 1); AdamW adds λp to the step (decoupled decay). */
function adamReference(
  steps: number,
  lr: (t: number) => number,
  { b1 = 0.9, b2 = 0.999, eps = 1e-8, weightDecay = 0 } = {},
): number[] {
  return INITIAL.map((p0) => {
    let [p, m, v] = [p0, 0, 0];
    for (let t = 1; t <= steps; t++) {
      const g = gradOf(p);
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const mHat = m / (1 - b1 ** t);
      const vHat = v / (1 - b2 ** t);
      p -= lr(t - 1) * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * p);
    }
    return p;
  });
}

const TOL = { atol: 1e-5, rtol: 1e-4 };

// ---- SGD -------------------------------------------------------------------------

testBoth(
  "optim.sgd: plain, momentum, Nesterov and weight decay match PyTorch's formulas",
  async () => {
    const lr = () => 0.1;
    // Step 1 by hand for p = 1: g = 1.7, so p = 1 - 0.1·1.7 = 0.83.
    assertClose((await run(optim.sgd(0.1), 1))[0], 0.83, { label: "one plain step" });
    // Nesterov's first step is -lr·(1 + μ)·g: 1 - 0.1·1.9·1.7 = 0.677.
    assertClose(
      (await run(optim.sgd(0.1, { momentum: 0.9, nesterov: true }), 1))[0],
      0.677,
      { label: "one Nesterov step" },
    );
    assertClose(await run(optim.sgd(0.1), 3), sgdReference(3, lr), { ...TOL, label: "plain" });
    assertClose(
      await run(optim.sgd(0.1, { momentum: 0.9 }), 4),
      sgdReference(4, lr, { momentum: 0.9 }),
      { ...TOL, label: "momentum" },
    );
    assertClose(
      await run(optim.sgd(0.1, { momentum: 0.9, nesterov: true }), 4),
      sgdReference(4, lr, { momentum: 0.9, nesterov: true }),
      { ...TOL, label: "nesterov" },
    );
    assertClose(
      await run(optim.sgd(0.1, { momentum: 0.5, weightDecay: 0.01 }), 3),
      sgdReference(3, lr, { momentum: 0.5, weightDecay: 0.01 }),
      { ...TOL, label: "weight decay" },
    );
  },
);

testBoth("optim.sgd agrees with the one-step sgd function", async () => {
  const params = makeParams();
  const [value, grads] = lossAndGrad(params);
  const plain = sgd(params, grads, { lr: 0.3 });
  const opt = optim.sgd(0.3);
  const state = opt.init(params);
  const [updates, next] = opt.update(grads, state, params);
  const stepped = optim.applyUpdates(params, updates);
  assertClose(await values(stepped), await values(plain), { label: "sgd" });
  const [counted] = next as [optim.CountState];
  assert.deepEqual(Object.keys(counted), ["count"]);
  assert.equal(await countOf(counted.count), 1);
  disposeTree([params, value, grads, plain, state, updates, next, stepped]);
});

// ---- Adam and AdamW --------------------------------------------------------------

testBoth("optim.adam and optim.adamw match the published algorithms", async () => {
  // The first Adam step is -lr·g/(|g| + ε) ≈ -lr·sign(g) for every element.
  const first = await run(optim.adam(0.01), 1);
  assertClose(first, INITIAL.map((p) => p - 0.01 * Math.sign(gradOf(p))), {
    ...TOL,
    label: "first adam step",
  });
  const lr = () => 0.05;
  assertClose(await run(optim.adam(0.05), 5), adamReference(5, lr), { ...TOL, label: "adam" });
  assertClose(
    await run(optim.adam(0.05, { b1: 0.5, b2: 0.9, eps: 1e-3 }), 4),
    adamReference(4, lr, { b1: 0.5, b2: 0.9, eps: 1e-3 }),
    { ...TOL, label: "adam, other hyperparameters" },
  );
  assertClose(
    await run(optim.adamw(0.05, { weightDecay: 0.1 }), 4),
    adamReference(4, lr, { weightDecay: 0.1 }),
    { ...TOL, label: "adamw" },
  );
});

// ---- schedules -------------------------------------------------------------------

Deno.test("schedules follow optax's formulas", () => {
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  const constant = optim.constantSchedule(0.3);
  [0, 1, 1e6].forEach((t) => close(constant(t), 0.3));

  const linear = optim.linearSchedule({
    initValue: 1,
    endValue: 0.2,
    transitionSteps: 8,
    transitionBegin: 2,
  });
  [[0, 1], [2, 1], [4, 0.8], [10, 0.2], [99, 0.2]].forEach(([t, v]) => close(linear(t), v));

  const cosine = optim.cosineDecaySchedule({ initValue: 2, decaySteps: 10, alpha: 0.1 });
  for (const t of [0, 3, 5, 10, 20]) {
    const c = 0.5 * (1 + Math.cos(Math.PI * Math.min(t, 10) / 10));
    close(cosine(t), 2 * (0.9 * c + 0.1));
  }
  close(cosine(5), 2 * (0.9 * 0.5 + 0.1));

  const warm = optim.warmupCosineDecaySchedule({
    initValue: 0,
    peakValue: 1,
    warmupSteps: 4,
    decaySteps: 14,
    endValue: 0.1,
  });
  close(warm(0), 0);
  close(warm(2), 0.5);
  close(warm(4), 1);
  close(warm(9), 0.1 + 0.9 * 0.5); // halfway through the 10 decay steps
  close(warm(14), 0.1);
  close(warm(100), 0.1);

  const joined = optim.joinSchedules([(t) => t, (t) => 100 + t], [5]);
  assert.deepEqual([0, 4, 5, 7].map(joined), [0, 4, 100, 102]);
  assert.throws(() =>
    optim.warmupCosineDecaySchedule({
      initValue: 0,
      peakValue: 1,
      warmupSteps: 10,
      decaySteps: 5,
    }), /decaySteps \(5\) counts the warmup/);
  assert.throws(() => optim.joinSchedules([constant], [3]), /one boundary fewer/);
});

testBoth("optimizers take a schedule for the learning rate, counted from step 0", async () => {
  const schedule = optim.linearSchedule({ initValue: 0.2, endValue: 0.05, transitionSteps: 3 });
  assertClose(
    await run(optim.sgd(schedule, { momentum: 0.9 }), 4),
    sgdReference(4, schedule, {
      momentum: 0.9,
    }),
    { ...TOL, label: "sgd with a schedule" },
  );
  assertClose(await run(optim.adam(schedule), 4), adamReference(4, schedule), {
    ...TOL,
    label: "adam with a schedule",
  });
});

// ---- clipping and chains -------------------------------------------------------------

testBoth("clipByGlobalNorm scales only updates whose global norm exceeds the limit", async () => {
  const clip = optim.clipByGlobalNorm(5);
  const small = { a: tensor([3]), b: tensor([[0, 4]]) }; // norm 5: untouched
  const big = { a: tensor([6]), b: tensor([[0, 8]]) }; // norm 10: halved
  const [u1] = clip.update(small, clip.init(small));
  const [u2] = clip.update(big, clip.init(big));
  assertClose(await values(u1), [3, 0, 4], { label: "at the limit" });
  assertClose(await values(u2), [3, 0, 4], { label: "clipped" });
  assertClose(await optim.globalNorm(big).item(), 10, { label: "globalNorm" });
  disposeTree([small, big, u1, u2]);
});

testBoth("chain(clipByGlobalNorm, sgd) clips before stepping", async () => {
  // Gradients at INITIAL have norm ≈ 6.51; clip to 1, then step with lr 0.5.
  const grads0 = INITIAL.map(gradOf);
  const norm = Math.hypot(...grads0);
  const expected = INITIAL.map((p, i) => p - 0.5 * grads0[i] / norm);
  const opt = optim.chain(optim.clipByGlobalNorm(1), optim.sgd(0.5));
  assertClose(await run(opt, 1), expected, { ...TOL, label: "clip then sgd" });
  // Below the limit the chain is plain SGD.
  const loose = optim.chain(optim.clipByGlobalNorm(100), optim.sgd(0.1));
  assertClose(await run(loose, 3), sgdReference(3, () => 0.1), { ...TOL, label: "no clip" });
});

// ---- state pytrees, purity, memory ---------------------------------------------------

testBoth("optimizer states are pytrees shaped like the params", async () => {
  const params = makeParams();
  const paths = flattenTree(params).leaves.map((l) => l.path);
  const opt = optim.chain(
    optim.clipByGlobalNorm(1),
    optim.adamw(1e-3),
    optim.trace({ decay: 0.9 }),
  );
  const state = opt.init(params) as unknown[];
  assert.equal(state.length, 3);
  assert.deepEqual(state[0], {});
  const [adamState, decay, lr] = state[1] as [optim.AdamState, unknown, optim.CountState];
  assert.equal(await countOf(adamState.count), 0);
  assert.deepEqual(decay, {});
  assert.deepEqual(Object.keys(lr), ["count"]);
  assert.equal(await countOf(lr.count), 0);
  for (const moments of [adamState.mu, adamState.nu, (state[2] as optim.TraceState).trace]) {
    const leaves = flattenTree(moments).leaves;
    assert.deepEqual(leaves.map((l) => l.path), paths);
    const shapes = leaves.map((l) => (l.value as Tensor).shape);
    assert.deepEqual(shapes, treeTensors(params).map((t) => t.shape));
    assert.deepEqual(await values(moments), INITIAL.map(() => 0));
  }
  // Updating advances the counts and keeps the structure.
  const [value, grads] = lossAndGrad(params);
  const [updates, next] = opt.update(grads, state, params);
  assert.deepEqual(flattenTree(updates).leaves.map((l) => l.path), paths);
  assert.equal(await countOf(((next[1] as unknown[])[0] as optim.AdamState).count), 1);
  const nextLr = (next[1] as unknown[])[2] as optim.CountState;
  assert.deepEqual(Object.keys(nextLr), ["count"]);
  assert.equal(await countOf(nextLr.count), 1);
  disposeTree([params, state, value, grads, updates, next]);
});

testBoth("update is pure: inputs are untouched and every output tensor is new", async () => {
  const params = makeParams();
  const opt = optim.sgd(0.1, { momentum: 0.9, weightDecay: 0.1 });
  const state = opt.init(params);
  const [value, grads] = lossAndGrad(params);
  const before = await values([params, grads, state]);
  const inputs = new Set(treeTensors([params, grads, state]));
  const [updates, next] = opt.update(grads, state, params);
  const outputs = treeTensors([updates, next]);
  assert.ok(outputs.every((t) => !inputs.has(t) && !t.disposed));
  assert.equal(new Set(outputs).size, outputs.length);
  assert.deepEqual(await values([params, grads, state]), before);
  // The caller may dispose the old state and grads: the new ones stay valid.
  disposeTree([state, grads]);
  assert.equal((await values(updates)).length, 7);
  disposeTree([params, value, updates, next]);
});

testBoth("a training loop with adamw and clipping runs in constant memory", () => {
  const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adamw(0.01));
  let params = makeParams();
  let state = opt.init(params);
  let atStep3 = 0;
  for (let i = 1; i <= 20; i++) {
    const [value, grads] = lossAndGrad(params);
    const [updates, nextState] = opt.update(grads, state, params);
    const next = optim.applyUpdates(params, updates);
    disposeTree([value, grads, updates, params, state]);
    [params, state] = [next, nextState];
    if (i === 3) atStep3 = memoryStats().liveTensors;
  }
  assert.equal(memoryStats().liveTensors, atStep3);
  disposeTree([params, state]);
});

testBoth("optimizer errors name the problem", () => {
  const params = makeParams();
  const opt = optim.adam(0.1);
  const state = opt.init(params);
  const wrong = { layer: { w: tensor([[1, 2]]), b: tensor([0, 0]) }, s: tensor([1]) };
  assert.throws(
    () => opt.update(wrong, state, params),
    /optim.scaleByAdam: state.mu at 'layer.w' has shape \[2,2\], but the updates have \[1,2\]/,
  );
  const other = { w: tensor([1]) };
  assert.throws(() => opt.update(other, state, params), /do not have the structure of the updates/);
  assert.throws(() => opt.update(params, [], params), /state must be the array init\(\) returned/);
  const decay = optim.adamw(0.1);
  assert.throws(() => decay.update(params, decay.init(params)), /needs the current params/);
  assert.throws(() => optim.sgd(0.1, { nesterov: true }), /Nesterov momentum needs momentum > 0/);
  assert.throws(() => optim.sgd(Number.NaN), RangeError);
  assert.throws(() => optim.adam(0.1, { b1: 1 }), /b1 and b2 must be in \[0, 1\)/);
  assert.throws(() => optim.clipByGlobalNorm(0), RangeError);
  assert.throws(() => optim.chain({} as never), /argument 0 is not a GradientTransformation/);
  const bad = optim.sgd(() => Number.NaN);
  // A number count (a hand-built state) checks the value on the host...
  assert.throws(() => bad.update(params, [{ count: 0 }]), /learning rate at step 0/);
  // ...a tensor count (from init) needs a schedule that takes a tensor step.
  const badState = bad.init(params);
  assert.throws(
    () => bad.update(params, badState),
    /optim\.sgd: optim\.scaleByLearningRate: the learning-rate schedule returned number \(NaN\) for a tensor step .*schedules must accept a tensor step/,
  );
  disposeTree([params, state, wrong, other, badState]);
});
