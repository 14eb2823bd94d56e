/**
 * Optimizers under `jit`: the step count is an int32 scalar tensor, so a
 * whole training step (gradients, Adam's bias corrections, a schedule, the
 * update) traces once and replays for every later step, matching the same
 * steps run eagerly — bitwise on the CPU backend, within 1e-6 on WebGPU.
 * Also: a number count (a hand-built state) keeps working eagerly and
 * stays a number; schedules give tensors for tensor steps; bad counts and
 * host-only schedules fail with errors that name the optimizer.
 * @module
 */

import assert from "node:assert/strict";
import {
  disposeTree,
  jit,
  memoryStats,
  optim,
  randomNormal,
  Tensor,
  tensor,
  tidy,
  treeTensors,
  valueAndGrad,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

// ---- the problem: a small tanh regression -------------------------------------------

type Params = { w1: Tensor; b1: Tensor; w2: Tensor };

function problem(): { params: Params; x: Tensor; y: Tensor } {
  return {
    params: {
      w1: randomNormal([4, 8], { seed: 1, std: 0.5 }),
      b1: randomNormal([8], { seed: 2, std: 0.1 }),
      w2: randomNormal([8, 1], { seed: 3, std: 0.5 }),
    },
    x: randomNormal([16, 4], { seed: 4 }),
    y: randomNormal([16, 1], { seed: 5 }),
  };
}

const lossFn = (p: Params, x: Tensor, y: Tensor) =>
  x.matmul(p.w1).add(p.b1).tanh().matmul(p.w2).sub(y).pow(2).mean();

/** One whole training step, the function `jit` traces. */
function trainStep(opt: optim.GradientTransformation<unknown>) {
  return (params: Params, state: unknown, x: Tensor, y: Tensor) => {
    const [loss, grads] = valueAndGrad(lossFn)(params, x, y);
    const [updates, next] = opt.update(grads, state, params);
    return [optim.applyUpdates(params, updates), next, loss] as [Params, unknown, Tensor];
  };
}

type Step = (p: Params, s: unknown, x: Tensor, y: Tensor) => [Params, unknown, Tensor];

/** Runs `steps` steps of `step` from `params` and `state`, disposing what each replaces. */
function train(
  step: Step,
  params: Params,
  state: unknown,
  data: { x: Tensor; y: Tensor },
  steps: number,
  onStep?: (i: number, state: unknown) => void,
): { params: Params; state: unknown; loss: Tensor } {
  let loss = tensor(0);
  for (let i = 0; i < steps; i++) {
    const [p, s, l] = step(params, state, data.x, data.y);
    disposeTree([params, state, loss]);
    [params, state, loss] = [p, s, l];
    onStep?.(i, state);
  }
  return { params, state, loss };
}

/** Every step count in a state tree (the tensors and numbers under a `count` key). */
function counts(state: unknown): (Tensor | number)[] {
  if (Array.isArray(state)) return state.flatMap(counts);
  if (state === null || typeof state !== "object") return [];
  return Object.entries(state).flatMap(([k, v]) =>
    k === "count" ? [v as Tensor | number] : counts(v)
  );
}

async function countValue(count: Tensor | number): Promise<number> {
  if (typeof count === "number") return count;
  assert.equal(count.dtype, "int32");
  assert.deepEqual(count.shape, []);
  return await count.item();
}

/** A check for `assert.throws`: a `TypeError` whose message matches `pattern`. */
const typeError = (pattern: RegExp) => (err: unknown) =>
  err instanceof TypeError && pattern.test(err.message);

async function data(tree: unknown): Promise<number[][]> {
  return await Promise.all(treeTensors(tree).map(async (t) => Array.from(await t.data())));
}

/**
 * Trains `steps` steps jitted and eagerly (the same function; eager under
 * `tidy`, so gradients and updates are released) from the same start, and
 * checks one trace, the final counts, and the parameters: bitwise on the
 * CPU backend, within 1e-6 on WebGPU (the replay runs the same kernels, but
 * a fusing compiler may round differently).
 */
async function jitMatchesEager(
  backend: string,
  opt: optim.GradientTransformation<unknown>,
  steps: number,
): Promise<void> {
  const { params, x, y } = problem();
  const step = trainStep(opt);
  const jitted = jit(step);
  let live = 0;
  const compiled = train(jitted, params, opt.init(params), { x, y }, steps, (i) => {
    if (i === 2) live = memoryStats().liveTensors;
  });
  assert.equal(memoryStats().liveTensors, live, "the jitted loop keeps memory constant");
  assert.deepEqual(
    { traces: jitted.stats.traces, compiles: jitted.stats.compiles, hits: jitted.stats.cacheHits },
    { traces: 1, compiles: 1, hits: steps - 1 },
    `jitted stats: ${JSON.stringify(jitted.stats)}`,
  );
  const start = problem().params;
  const eager = train(
    (p, s, a, b) => tidy(() => step(p, s, a, b)),
    start,
    opt.init(start),
    { x, y },
    steps,
  );
  for (const run of [compiled, eager]) {
    const found = await Promise.all(counts(run.state).map(countValue));
    assert.ok(found.length > 0 && found.every((c) => c === steps), `counts ${found}`);
    assert.ok(counts(run.state).every((c) => c instanceof Tensor), "counts stay tensors");
  }
  const [got, want] = [await data(compiled.params), await data(eager.params)];
  if (backend === "cpu") {
    assert.deepEqual(got, want, "jit replays eager bitwise on the CPU backend");
    assert.deepEqual(await compiled.loss.data(), await eager.loss.data(), "final loss");
  } else {
    assertClose(got, want, { atol: 1e-6, rtol: 1e-6, label: "params, jit vs eager" });
    assertClose(await compiled.loss.item(), await eager.loss.item(), {
      atol: 1e-6,
      rtol: 1e-6,
      label: "final loss",
    });
  }
  // It trained: the loss went down.
  const initial = lossFn(problem().params, x, y);
  assert.ok((await eager.loss.item()) < (await initial.item()) / 2, "the loss at least halved");
  disposeTree([compiled, eager, initial, x, y]);
}

// ---- 1: Adam with a warmup + cosine decay schedule ------------------------------------

// 1,000 steps on the CPU backend (about 1 ms a step jitted); 200 on WebGPU,
// where the software adapter takes about 10-15 ms a step (jitted or eager).
const stepsOn = (backend: string, cpu: number, webgpu: number) => backend === "cpu" ? cpu : webgpu;

testBoth(
  "jit: adam with a warmup-cosine schedule traces once and matches eager over many steps",
  async (backend) => {
    const steps = stepsOn(backend, 1000, 200);
    const schedule = optim.warmupCosineDecaySchedule({
      initValue: 0,
      peakValue: 0.05,
      warmupSteps: steps / 20,
      decaySteps: (steps * 4) / 5, // the last fifth runs at endValue
      endValue: 1e-3,
    });
    await jitMatchesEager(backend, optim.adam(schedule), steps);
  },
);

testBoth("jit: adamw with a cosine decay schedule traces once and matches eager", async (b) => {
  const schedule = optim.cosineDecaySchedule({ initValue: 0.05, decaySteps: 80, alpha: 0.1 });
  await jitMatchesEager(b, optim.adamw(schedule, { weightDecay: 0.01 }), 100);
});

// ---- 2: SGD with momentum and a linear warmup ------------------------------------------

testBoth(
  "jit: sgd with momentum and a linear warmup schedule traces once and matches eager",
  async (backend) => {
    const warmup = optim.linearSchedule({
      initValue: 0,
      endValue: 0.1,
      transitionSteps: 20,
      transitionBegin: 5,
    });
    await jitMatchesEager(backend, optim.sgd(warmup, { momentum: 0.9, nesterov: true }), 100);
  },
);

// ---- 3: number counts and tensor counts, eagerly -----------------------------------------

testBoth(
  "eager: a number count stays a number, a tensor count a tensor, with the same parameters",
  async () => {
    const schedule = optim.cosineDecaySchedule({ initValue: 0.05, decaySteps: 8, alpha: 0.2 });
    const opt = optim.adam(schedule);
    const steps = 10; // past the end of the decay
    const { params, x, y } = problem();
    const step = trainStep(opt);
    const eager: Step = (p, s, a, b) => tidy(() => step(p, s, a, b));

    // A tensor count, from init.
    const withTensor = train(eager, params, opt.init(params), { x, y }, steps);
    const tensorCounts = counts(withTensor.state);
    assert.equal(tensorCounts.length, 2); // scaleByAdam's and scaleByLearningRate's
    for (const c of tensorCounts) {
      assert.ok(c instanceof Tensor);
      assert.equal(await countValue(c), steps);
    }

    // A number count: a hand-built state (as an old saved one would be).
    const start = problem().params;
    const [adamState, lrState] = opt.init(start) as [optim.AdamState, optim.CountState];
    disposeTree([adamState.count, lrState.count]);
    const handBuilt = [{ ...adamState, count: 0 }, { count: 0 }];
    const withNumber = train(eager, start, handBuilt, { x, y }, steps, (i, state) => {
      assert.deepEqual(counts(state), [i + 1, i + 1], "number counts stay numbers");
    });
    assert.deepEqual(counts(withNumber.state), [steps, steps]);

    // The host computes the scalars in float64, the ops in float32: equal to
    // float32 rounding.
    assertClose(await data(withNumber.params), await data(withTensor.params), {
      atol: 1e-6,
      rtol: 1e-5,
      label: "number count vs tensor count",
    });
    disposeTree([withTensor, withNumber, x, y]);
  },
);

testBoth("a user's (step: number) => number schedule works with a number count", async () => {
  const builtIn = optim.cosineDecaySchedule({ initValue: 0.05, decaySteps: 8 });
  const hostOnly = (step: number) => builtIn(step); // a plain function of a number
  const { params, x, y } = problem();
  const run = (opt: optim.GradientTransformation<unknown>) => {
    const start = problem().params;
    const [adamState, lrState] = opt.init(start) as [optim.AdamState, optim.CountState];
    disposeTree([adamState.count, lrState.count]);
    const state = [{ ...adamState, count: 0 }, { count: 0 }];
    const step = trainStep(opt);
    return train((p, s, a, b) => tidy(() => step(p, s, a, b)), start, state, { x, y }, 6);
  };
  const [mine, theirs] = [run(optim.adam(hostOnly)), run(optim.adam(builtIn))];
  assert.deepEqual(await data(mine.params), await data(theirs.params), "the same host arithmetic");

  // With a tensor count (init's, and always under jit) it cannot run, and says so.
  const opt = optim.adam((step: number) => 0.05 * 0.9 ** step);
  const state = opt.init(params);
  const [, grads] = valueAndGrad(lossFn)(params, x, y);
  const message =
    /^optim\.adam: optim\.scaleByLearningRate: the learning-rate schedule threw on a tensor step \(Tensor\(int32\[\], \w+\)\): a Tensor used as a number: .*; schedules must accept a tensor step when the step count is a tensor/;
  assert.throws(() => opt.update(grads, state, params), typeError(message));
  assert.throws(() => jit(trainStep(opt))(params, state, x, y), typeError(message));
  // One that returns a number for a tensor (string concatenation gives NaN) is refused too.
  const concatenating = optim.sgd((step: number) => 0.1 / (1 + step));
  const sgdState = concatenating.init(params);
  assert.throws(
    () => concatenating.update(grads, sgdState, params),
    typeError(
      /^optim\.sgd: optim\.scaleByLearningRate: the learning-rate schedule returned number \(NaN\) for a tensor step .*, not a tensor; schedules must accept a tensor step/,
    ),
  );
  disposeTree([mine, theirs, params, x, y, state, grads, sgdState]);
});

// ---- 4: bad counts ---------------------------------------------------------------------

testBoth("a bad count is refused with an error naming the optimizer and the count", () => {
  const { params, x, y } = problem();
  const [, grads] = valueAndGrad(lossFn)(params, x, y);
  const cases: [unknown, RegExp][] = [
    [tensor(3), /got Tensor\(float32\[\], \w+\)$/],
    [tensor([1, 2], { dtype: "int32" }), /got Tensor\(int32\[2\], \w+\)$/],
    [-1, /got -1$/],
    [1.5, /got 1\.5$/],
    ["3", /got string \(3\)$/],
  ];
  const adam = optim.adam(0.1);
  const sgd = optim.sgd(optim.constantSchedule(0.1), { momentum: 0.9 });
  for (const [count, tail] of cases) {
    const [adamState, lrState] = adam.init(params) as [optim.AdamState, optim.CountState];
    assert.throws(
      () => adam.update(grads, [{ ...adamState, count }, lrState], params),
      (err: Error) =>
        err instanceof TypeError &&
        /^optim\.adam: optim\.scaleByAdam: state\.count must be /.test(err.message) &&
        tail.test(err.message),
      `adam, count ${String(count)}`,
    );
    const [trace] = sgd.init(params) as [optim.TraceState, optim.CountState];
    assert.throws(
      () => sgd.update(grads, [trace, { count }], params),
      (err: Error) =>
        err instanceof TypeError &&
        /^optim\.sgd: optim\.scaleByLearningRate: state\.count must be /.test(err.message) &&
        tail.test(err.message),
      `sgd, count ${String(count)}`,
    );
    disposeTree([adamState, lrState, trace, count]);
  }
  assert.throws(
    () => adam.update(grads, adam.init(params).map(() => ({})), params),
    /optim\.adam: optim\.scaleByAdam: state must be the object init\(\) returned/,
  );
  disposeTree([params, x, y, grads]);
});

// ---- schedules on tensor steps -----------------------------------------------------------

testBoth("schedules take a tensor step and give a float32 tensor of the same value", async () => {
  const schedules: [string, optim.Schedule][] = [
    ["constant", optim.constantSchedule(0.3)],
    ["linear", optim.linearSchedule({ initValue: 1, endValue: 0.2, transitionSteps: 8 })],
    [
      "linear, late",
      optim.linearSchedule({ initValue: 1, endValue: 0.2, transitionSteps: 8, transitionBegin: 2 }),
    ],
    ["linear, no steps", optim.linearSchedule({ initValue: 1, endValue: 0, transitionSteps: 0 })],
    ["cosine", optim.cosineDecaySchedule({ initValue: 2, decaySteps: 10, alpha: 0.1 })],
    [
      "warmup cosine",
      optim.warmupCosineDecaySchedule({
        initValue: 0,
        peakValue: 1,
        warmupSteps: 4,
        decaySteps: 14,
        endValue: 0.1,
      }),
    ],
    [
      "joined",
      optim.joinSchedules([
        optim.constantSchedule(0.1),
        optim.linearSchedule({ initValue: 1, endValue: 0, transitionSteps: 4 }),
        optim.constantSchedule(0.01),
      ], [3, 6]),
    ],
  ];
  const steps = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 14, 20, 1000];
  for (const [name, schedule] of schedules) {
    const host = steps.map((t) => schedule(t));
    assert.ok(host.every((v) => typeof v === "number"), `${name}: numbers for number steps`);
    const before = memoryStats().liveTensors;
    const device: number[] = [];
    for (const t of steps) {
      const step = tensor(t, { dtype: "int32" });
      const value = schedule(step);
      assert.ok(value instanceof Tensor, `${name}(${t}) is a tensor`);
      assert.equal(value.dtype, "float32");
      assert.deepEqual(value.shape, []);
      device.push(await value.item());
      disposeTree([step, value]);
    }
    assertClose(device, host, { atol: 1e-6, rtol: 1e-6, label: name });
    // A float step and a vector of steps work the same way, and nothing leaks.
    const floats = tensor(steps);
    const vector = schedule(floats);
    assert.deepEqual(vector.shape, [steps.length]);
    assertClose(await vector.data(), host, { atol: 1e-6, rtol: 1e-6, label: `${name}, vector` });
    disposeTree([floats, vector]);
    assert.equal(memoryStats().liveTensors, before, `${name}: temporaries released`);
  }
  // A joined schedule with a host-only part cannot take a tensor step, and says which part.
  const joined = optim.joinSchedules([optim.constantSchedule(1), (t: number) => 2 * t], [5]);
  assert.equal(joined(7), 4);
  const seven = tensor(7, { dtype: "int32" });
  assert.throws(
    () => joined(seven),
    typeError(
      /^optim\.joinSchedules: schedules\[1\] threw on a tensor step .*schedules must accept a tensor step/,
    ),
  );
  seven.dispose();
});
