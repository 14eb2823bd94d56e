/**
 * Issue 4, reliability: memory over long runs, errors for every bad input,
 * the NaN/Inf debug mode, numerical stability, device loss, determinism.
 */

import assert from "node:assert/strict";
import {
  availableBackends,
  debugNans,
  deviceReady,
  disposeTree,
  type DType,
  grad,
  memoryStats,
  NonFiniteError,
  randomNormal,
  randomUniform,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  tidy,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import { assertClose, gc, settleGarbage, testBoth } from "./_helpers.ts";

type Mlp = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };
const mlpLoss = (p: Mlp, x: Tensor, y: Tensor) =>
  x.matmul(p.w1).add(p.b1).tanh().matmul(p.w2).add(p.b2).sub(y).pow(2).mean();
const initMlp = (seed: number): Mlp => ({
  w1: randomNormal([3, 8], { seed, std: 0.5 }),
  b1: zeros([8]),
  w2: randomNormal([8, 1], { seed: seed + 1, std: 0.5 }),
  b2: zeros([1]),
});

/** Trains `steps` steps and returns the final loss and params, disposing everything else. */
function train(steps: number, seed = 1, after?: (step: number) => void) {
  let params = initMlp(seed);
  const x = randomUniform([16, 3], { seed: seed + 2, low: -1, high: 1 });
  const y = randomUniform([16, 1], { seed: seed + 3, low: -1, high: 1 });
  const step = valueAndGrad(mlpLoss);
  let loss: Tensor | undefined;
  for (let i = 0; i < steps; i++) {
    const [value, grads] = step(params, x, y);
    const next = sgd(params, grads, { lr: 0.1 });
    disposeTree([grads, params, loss]);
    params = next;
    loss = value;
    after?.(i);
  }
  disposeTree([x, y]);
  return { loss: loss!, params };
}

const counters = () => {
  const { liveTensors, liveBuffers, liveBytes } = memoryStats();
  return { liveTensors, liveBuffers, liveBytes };
};

// ---- memory ---------------------------------------------------------------------

testBoth("1,000 training steps keep live memory flat and stop allocating", async () => {
  const snapshots: { live: ReturnType<typeof counters>; total: number }[] = [];
  const snapshot = () =>
    snapshots.push({
      live: counters(),
      total: memoryStats().pooledBytes + memoryStats().liveBytes,
    });
  const { loss, params } = train(1000, 1, (i) => {
    if (i === 300 || i === 999) snapshot(); // 300: past every submit phase
  });
  assert.deepEqual(snapshots[1].live, snapshots[0].live);
  // Once warm, every buffer comes from the pool: live + pooled does not grow.
  assert.equal(snapshots[1].total, snapshots[0].total);
  assert.ok((await loss.item()) < 0.2, "the loss went down");
  disposeTree([loss, params]);
});

testBoth("10,000 tiny ops in a loop do not grow memory", async () => {
  const x = tensor([1, 2, 3, 4]);
  let acc = x.add(0);
  let warm: ReturnType<typeof counters> | undefined;
  let total = 0;
  for (let i = 0; i < 10_000; i++) {
    const next = tidy(() => acc.mul(0.5).add(x));
    acc.dispose();
    acc = next;
    if (i === 1000) {
      warm = counters();
      total = memoryStats().liveBytes + memoryStats().pooledBytes;
    }
  }
  assert.deepEqual(counters(), warm);
  assert.equal(memoryStats().liveBytes + memoryStats().pooledBytes, total);
  assertClose(await acc.array(), [2, 4, 6, 8], { rtol: 1e-5 });
  disposeTree([x, acc]);
});

Deno.test({
  name: "a tensor dropped without dispose() is reclaimed by the garbage collector",
  ignore: !gc,
  async fn() {
    await settleGarbage();
    const before = counters();
    (() => {
      for (let i = 0; i < 50; i++) tensor([i, i + 1, i + 2]).mul(2); // never disposed
    })();
    assert.ok(counters().liveTensors >= before.liveTensors + 50);
    // Finalizers run when V8 gets to them: a few collections may be needed
    // (one CI run still held 1 of the 50 after the first two).
    for (let round = 0; round < 20 && counters().liveTensors > before.liveTensors; round++) {
      await settleGarbage();
    }
    assert.deepEqual(counters(), before);
  },
});

testBoth("a grad that throws midway releases its tape", () => {
  const x = tensor([1, 2, 3]);
  const before = counters();
  const f = (t: Tensor) => {
    const y = t.mul(2).exp().sum();
    if (y) throw new Error("boom");
    return y;
  };
  assert.throws(() => grad(f)(x), /boom/);
  assert.deepEqual(counters(), before);
  x.dispose();
});

// ---- errors ---------------------------------------------------------------------

/** Asserts `fn` throws `type` with a message matching every pattern. */
function throwsWith(fn: () => unknown, type: ErrorConstructor, ...patterns: RegExp[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    for (const p of patterns) assert.match((e as Error).message, p);
    return true;
  });
}

testBoth("bad shapes and dtypes get errors naming the op and the values", async () => {
  throwsWith(() => zeros([2, NaN]), TypeError, /zeros/, /NaN/);
  throwsWith(() => zeros([2, -1]), TypeError, /zeros/, /-1/);
  throwsWith(() => zeros([1.5]), TypeError, /zeros/, /1\.5/);
  throwsWith(() => tensor([1, 2.5], { dtype: "int32" }), RangeError, /tensor/, /int32/, /2\.5/);
  throwsWith(() => tensor([1, 300], { dtype: "int8" }), RangeError, /tensor/, /300/, /-128, 127/);
  throwsWith(
    () => tensor([1], { dtype: "complex64" as "int32" }),
    TypeError,
    /tensor/,
    /complex64/,
  );
  throwsWith(() => tensor([[1, 2], [3]]), TypeError, /tensor/, /ragged/);
  throwsWith(() => tensor([1, "a" as unknown as number]), TypeError, /tensor/, /string/);
  throwsWith(() => tensor([1, 2]).reshape([3]), TypeError, /reshape/, /\[2\]/, /\[3\]/);
  throwsWith(() => tensor([1, 2]).sum(2), RangeError, /sum/, /axis 2/);
  throwsWith(() => tensor([[1, 2]]).matmul(tensor([[1, 2]])), TypeError, /matmul/, /\[1,2\]/);
  throwsWith(() => tensor([1, 2]).add(tensor([1, 2, 3])), TypeError, /add/, /\[2\]/, /\[3\]/);
  // The library keeps working after every one of these.
  assertClose(await tensor([1, 2]).add(1).array(), [2, 3]);
});

testBoth("a tensor larger than the backend can hold is refused before allocating", () => {
  const max = resolveBackend().maxElements;
  throwsWith(() => zeros([max + 1]), RangeError, /zeros/, new RegExp(`${max + 1}`));
  const big = tensor([1]).broadcastTo([max + 1]); // a view: no memory
  throwsWith(() => big.mul(2), RangeError, /mul/, /limit|hold/);
  big.dispose();
});

testBoth("a tensor leaked out of a transform gets a 'leaked tracer' error", () => {
  let leaked: Tensor | undefined;
  const g = grad((x: Tensor) => {
    leaked = x.mul(3);
    return leaked.sum();
  })(tensor([1, 2]));
  throwsWith(() => leaked!.add(1), ReferenceError, /add/, /leaked tracer/, /hasAux/);
  let inner: Tensor | undefined;
  const kept = tidy(() => {
    inner = tensor([1]).add(1);
    return inner.mul(2);
  });
  throwsWith(() => inner!.exp(), ReferenceError, /exp/, /tidy/);
  disposeTree([g, kept]);
});

// ---- numerical safety -------------------------------------------------------------

testBoth("debugNans names the first op that produced NaN or Inf", async (backend) => {
  debugNans(true);
  try {
    const x = tensor([1, -1, 2]);
    const run = async () => {
      const y = x.mul(2).log().exp().sum(); // log(-2) is the first NaN
      return await y.item();
    };
    // CPU throws at the op; WebGPU at the next read. Either way: names `log`.
    await assert.rejects(run, (e: unknown) => {
      assert.ok(e instanceof NonFiniteError, String(e));
      assert.match((e as Error).message, /debugNans: log /);
      assert.match((e as Error).message, /shape \[3\]/);
      return true;
    });
    // Finite work passes, and the library keeps working.
    assertClose(await x.mul(2).exp().log().array(), [2, -2, 4], { rtol: 1e-5 });
    // A NaN in a backward pass is caught too (d/dx sqrt(x) at 0 is Inf).
    await assert.rejects(async () => {
      const g = grad((t: Tensor) => t.sqrt().sum())(tensor([0, 1]));
      await g.data();
    }, /debugNans: div /);
    x.dispose();
  } finally {
    debugNans(false);
  }
  assert.ok(["cpu", "wasm", "webgpu"].includes(backend));
});

testBoth("softmax, logSoftmax, cross-entropy and sigmoid are stable at ±1e4", async () => {
  const logits = tensor([[1e4, 0, -1e4], [-1e4, -1e4, 1e4]]);
  assertClose(await logits.softmax().array(), [[1, 0, 0], [0, 0, 1]]);
  assertClose(await logits.logSoftmax().array(), [[0, -1e4, -2e4], [-2e4, -2e4, 0]]);
  const [loss, g] = valueAndGrad((l: Tensor) => softmaxCrossEntropy(l, [2, 0]))(logits);
  assertClose(await loss.item(), 2e4, { rtol: 1e-6 }); // both rows: -log p = 2e4
  assertClose(await g.array(), [[0.5, 0, -0.5], [-0.5, 0, 0.5]]);
  const s = tensor([-1e4, 1e4]);
  assertClose(await s.sigmoid().array(), [0, 1]);
  const gs = grad((t: Tensor) => t.sigmoid().sum())(s);
  assertClose(await gs.array(), [0, 0]);
  disposeTree([logits, loss, g, s, gs]);
});

// ---- determinism --------------------------------------------------------------------

testBoth("the same seed gives bit-identical training on one backend", async () => {
  const a = train(30, 7);
  const b = train(30, 7);
  assert.deepEqual(await a.loss.data(), await b.loss.data());
  assert.deepEqual(await a.params.w1.data(), await b.params.w1.data());
  disposeTree([a, b]);
});

Deno.test({
  name: "WebGPU and CPU training agree within the documented tolerance",
  ignore: !availableBackends().includes("webgpu"),
  async fn() {
    const results = [];
    for (const backend of ["webgpu", "cpu"] as const) {
      const { useBackend } = await import("../mod.ts");
      useBackend(backend);
      const r = train(30, 7);
      results.push({ loss: await r.loss.item(), w1: await r.params.w1.data() });
      disposeTree(r);
    }
    (await import("../mod.ts")).useBackend(availableBackends()[0]);
    assertClose(results[0].loss, results[1].loss, { rtol: 1e-4, atol: 1e-6 });
    assertClose(results[0].w1, results[1].w1, { rtol: 1e-4, atol: 1e-5 });
  },
});

// ---- device loss ---------------------------------------------------------------------

Deno.test({
  name: "a lost WebGPU device: clear errors, then recovery on a new device",
  ignore: !availableBackends().includes("webgpu"),
  async fn() {
    const backend = resolveBackend("webgpu") as unknown as { device: GPUDevice };
    const x = tensor([1, 2, 3], { backend: "webgpu" });
    const pending = x.add(1);
    backend.device.destroy();
    await assert.rejects(() => pending.data(), /lost/);
    await deviceReady();
    assert.throws(() => x.mul(2), /lost/);
    assert.throws(() => x.mul(2), /recreate/);
    const fresh = tensor([1, 2, 3], { backend: "webgpu" });
    assertClose(await fresh.mul(2).array(), [2, 4, 6]);
    const g = grad((t: Tensor) => t.pow(2).sum())(fresh);
    assertClose(await g.array(), [2, 4, 6]);
    disposeTree([x, pending, fresh, g]);
  },
});

// ---- found in review ----------------------------------------------------------------

testBoth(
  "grad(grad(f)) when the inner function ends in an op whose VJP uses its output",
  async () => {
    // d/dx_i of sum_j d/dx_j exp(sum x) = n·exp(sum x)
    const x = tensor([0.5, 0.25]);
    const g = grad((t: Tensor) => grad((y: Tensor) => y.sum().exp())(t).sum())(x);
    assertClose(await g.array(), [2 * Math.exp(0.75), 2 * Math.exp(0.75)], { rtol: 1e-5 });
    // The gradient of a norm: d/dx |∇|x||² = 0 (|∇|x|| = 1 everywhere).
    const h = grad((t: Tensor) => grad((y: Tensor) => y.square().sum().sqrt())(t).square().sum())(
      tensor([3, 4]),
    );
    assertClose(await h.array(), [0, 0], { atol: 1e-6 });
    const withAux = grad((t: Tensor) => {
      const [inner] = grad((y: Tensor) => [y.sum().sigmoid(), y], { hasAux: true })(t);
      return inner.sum();
    })(tensor([0.5]));
    const s = 1 / (1 + Math.exp(-0.5));
    assertClose(await withAux.array(), [s * (1 - s) * (1 - 2 * s)], { rtol: 1e-5 });
    disposeTree([x, g, h, withAux]);
  },
);

testBoth(
  "validation found in review: pad pairs, get ranges, split points, minimum operands",
  () => {
    const throwsWith = (fn: () => unknown, type: ErrorConstructor, re: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof type && re.test((e as Error).message));
    throwsWith(
      () => tensor([1, 2]).pad([[1]] as unknown as [number, number][]),
      RangeError,
      /pad: widths/,
    );
    throwsWith(
      () => tensor([1, 2]).pad([1, 2, 3] as unknown as [number, number]),
      RangeError,
      /pad/,
    );
    throwsWith(() => tensor([1, 2, 3]).get([0, 3, 1, 99]), TypeError, /get: a range is/);
    throwsWith(() => tensor([1, 2, 3]).split([1.5]), RangeError, /split: split points/);
    throwsWith(
      () => tensor([1, 2]).minimum("a" as unknown as number),
      TypeError,
      /minimum: expected/,
    );
    throwsWith(() => tensor([1, 2]).minimum(tensor([1, 2, 3])), TypeError, /minimum: shapes/);
    throwsWith(() => tensor([1, 2]).clip(0, tensor([1, 2, 3])), TypeError, /clip: shapes/);
    throwsWith(
      () => randomNormal([2, 4, 5]).matmul(randomNormal([3, 5, 6])),
      TypeError,
      /matmul: the batch axes of \[2,4,5\] and \[3,5,6\]/,
    );
  },
);

Deno.test({
  name: "float16 on an adapter without shader-f16 is a TypeError naming the feature",
  ignore: !availableBackends().includes("webgpu"),
  async fn() {
    const gpu = resolveBackend("webgpu") as { dtypes: readonly DType[] };
    const saved = gpu.dtypes;
    gpu.dtypes = saved.filter((d) => d !== "float16"); // as an adapter without shader-f16
    try {
      const x = tensor([1, 2], { backend: "webgpu" });
      throwsWith(
        () => tensor([1], { dtype: "float16", backend: "webgpu" }),
        TypeError,
        /tensor/,
        /shader-f16/,
      );
      throwsWith(
        () => zeros([2], { dtype: "float16", backend: "webgpu" }),
        TypeError,
        /zeros/,
        /shader-f16/,
      );
      throwsWith(() => x.astype("float16"), TypeError, /astype/, /float16/, /shader-f16/);
      // Everything else keeps working, and the CPU backend emulates float16.
      assertClose(await x.astype("int32").add(1).array(), [2, 3]);
      x.dispose();
    } finally {
      gpu.dtypes = saved;
    }
    const h = tensor([1, 2], { dtype: "float16", backend: "cpu" });
    assert.equal(h.mul(2).dtype, "float16");
    h.dispose();
  },
});
