/**
 * Regression tests for the ops items of the defects issue: softplus's tail,
 * softmax over empty axes, tidy refusing async functions, free functions
 * taking plain values, errors naming the user's op, value errors saying
 * what is wrong, one implementation behind duplicated APIs, and the relu
 * kink convention with checkGrads' kink detection.
 */

import assert from "node:assert/strict";
import {
  availableBackends,
  type BackendName,
  checkGrads,
  concat,
  exp,
  grad,
  GradCheckError,
  loadSafetensors,
  matmul,
  memoryStats,
  nn,
  oneHot,
  optim,
  sgd,
  softmaxCrossEntropy,
  stopGradient,
  type Tensor,
  tensor,
  tidy,
  zeros,
} from "../mod.ts";
import * as ops from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type ErrorClass = new (...args: never[]) => Error;

/** Asserts `fn` throws a `cls` whose message matches `pattern`, leaking no tensor. */
function throwsLike(fn: () => unknown, cls: ErrorClass, pattern: RegExp): void {
  const before = memoryStats().liveTensors;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(memoryStats().liveTensors, before, "the failed call leaked tensors");
}

/** Like `throwsLike` for a promise. */
async function rejectsLike(p: Promise<unknown>, cls: ErrorClass, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const both = availableBackends().includes("webgpu") && availableBackends().includes("cpu");
const hasWebgpu = availableBackends().includes("webgpu");

// ---- 3: softplus ------------------------------------------------------------------

testBoth("softplus keeps its negative tail: float64 references, gradient sigmoid", async () => {
  const xs = [-20, -15, -10, 0, 10, 30];
  // log(1 + e^x) in float64, stably.
  const ref = xs.map((v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))));
  const x = tensor(xs);
  const y = await x.softplus().data();
  for (let i = 0; i < xs.length; i++) {
    const rel = Math.abs(y[i] - ref[i]) / ref[i];
    assert.ok(rel < 2e-6, `softplus(${xs[i]}) = ${y[i]}, float64 ${ref[i]} (relative ${rel})`);
  }
  const g = await grad((t: Tensor) => t.softplus().sum())(x).data();
  const sigmoid = xs.map((v) => 1 / (1 + Math.exp(-v)));
  for (let i = 0; i < xs.length; i++) {
    const rel = Math.abs(g[i] - sigmoid[i]) / sigmoid[i];
    assert.ok(rel < 2e-6, `softplus'(${xs[i]}) = ${g[i]}, sigmoid ${sigmoid[i]} (relative ${rel})`);
  }
  assert.equal(g[3], 0.5, "the gradient at 0 is sigmoid(0) = 1/2");
});

// ---- 7: softmax over empty axes ---------------------------------------------------

testBoth(
  "softmax and logSoftmax of empty tensors return empty results, with gradients",
  async () => {
    for (const [shape, axis] of [[[0, 3], 0], [[0, 3], 1], [[2, 0], -1], [[0], 0]] as const) {
      const x = zeros([...shape]);
      for (const op of ["softmax", "logSoftmax"] as const) {
        const y = x[op](axis);
        assert.deepEqual(y.shape, [...shape], `${op} ${shape} axis ${axis}`);
        assert.equal(y.dtype, "float32");
        assert.equal((await y.data()).length, 0);
        const g = grad((t: Tensor) => t[op](axis).sum())(x);
        assert.deepEqual(g.shape, [...shape]);
        assert.equal((await g.data()).length, 0);
      }
    }
    assert.equal(tensor(new Int32Array(0), { shape: [0, 2] }).softmax(0).dtype, "float32");
    // Non-empty tensors are unchanged.
    const low = 1 / (1 + Math.E ** 2);
    assertClose(await tensor([[1, 2], [3, 4]]).softmax(0).array(), [[low, low], [
      1 - low,
      1 - low,
    ]]);
  },
);

// ---- 9: tidy and async functions -------------------------------------------------------

Deno.test("tidy refuses an async function and leaves no unhandled rejection behind", async () => {
  const unhandled: unknown[] = [];
  const record = (e: PromiseRejectionEvent) => {
    unhandled.push(e.reason);
    e.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", record);
  try {
    throwsLike(
      () =>
        tidy(
          // deno-lint-ignore require-await
          (async () => {
            throw new Error("x"); // rejects at once, with no await
          }) as unknown as () => Tensor,
        ),
      TypeError,
      /tidy: fn returned a Promise/,
    );
    throwsLike(
      () =>
        tidy(
          (async () => {
            await 0;
            throw new Error("after an await");
          }) as unknown as () => Tensor,
        ),
      TypeError,
      /tidy: fn returned a Promise/,
    );
    // Let both promises settle and the rejection tracker run.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(unhandled, []);
  } finally {
    globalThis.removeEventListener("unhandledrejection", record);
  }
});

// ---- 11: free functions take plain values ----------------------------------------------

testBoth(
  "free functions take numbers and nested arrays; other values are a TypeError",
  async (b) => {
    const e = exp(2);
    assert.equal(e.backend, b);
    assertClose(await e.item(), Math.E ** 2, { rtol: 1e-6 });
    assert.equal(await ops.sum([1, 2, 3]).item(), 6);
    const w = tensor([[1], [2]]);
    assert.deepEqual(await matmul([[1, 2]], w).array(), [[5]]);
    assert.deepEqual(await matmul(w, [[1, 2]]).array(), [[1, 2], [2, 4]]);
    assert.deepEqual(await ops.add([1, 2], 1).array(), [2, 3]);
    assert.deepEqual(await ops.mul(2, 3).array(), 6);
    assert.deepEqual(await ops.relu([-1, 2]).array(), [0, 2]);
    assert.deepEqual(await ops.sum([[1, 2], [3, 4]], 1).array(), [3, 7]);
    assert.deepEqual(await Promise.all(ops.split([1, 2, 3, 4], 2).map((t) => t.array())), [
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(await ops.softmax([0, 0]).array(), [0.5, 0.5]);
    // A plain operand of a binary op keeps being a weak scalar.
    assert.equal(ops.add(tensor([1], { dtype: "float16" }), 2).dtype, "float16");
    for (const t of [e, w]) t.dispose();
    // Temporaries made from plain values are released: only the result stays.
    const before = memoryStats().liveTensors;
    const y = ops.mul([[1, 2]], [3, 4]);
    assert.equal(memoryStats().liveTensors, before + 1);
    assert.deepEqual(await y.array(), [[3, 8]]);
    y.dispose();

    throwsLike(() => exp("2" as never), TypeError, /^exp: expected a Tensor.*the string "2"/);
    throwsLike(() => ops.sum({} as never), TypeError, /^sum: expected a Tensor.*an object/);
    const one = tensor([1]);
    throwsLike(() => matmul(one, null as never), TypeError, /^matmul: .*null/);
    throwsLike(() => ops.add(one, "1" as never), TypeError, /^add: .*the string "1"/);
    throwsLike(() => ops.sum([[1, 2], [3]]), TypeError, /^sum: tensor: ragged/);
  },
);

Deno.test({
  name: "free functions convert plain values on the other operand's backend",
  ignore: !both,
  async fn() {
    const c = tensor([[1], [2]], { backend: "cpu" });
    const y = matmul([[1, 2]], c);
    assert.equal(y.backend, "cpu");
    assert.deepEqual(await y.array(), [[5]]);
    assert.equal(ops.add([1, 2], tensor([1], { backend: "cpu" })).backend, "cpu");
  },
});

// ---- 12: errors name the user's op ----------------------------------------------------

Deno.test({
  name: "mixing backends: the error names the user's op and the primitive underneath",
  ignore: !both,
  fn() {
    const on = (backend: BackendName, values: number[], dtype?: "int32") =>
      tensor(values, { backend, dtype });
    const g = on("webgpu", [1, 2]);
    const c = on("cpu", [1, 2]);
    const mixed = /inputs live on different backends/;
    const re = (prefix: string) => new RegExp(`^${prefix}.*${mixed.source}`);
    throwsLike(() => concat([c, g]), TypeError, re("concat: add: "));
    const cpuIds = on("cpu", [0], "int32");
    throwsLike(() => g.take(cpuIds), TypeError, re("take: gather: "));
    throwsLike(() => sgd({ w: g }, { w: c }, { lr: 0.1 }), TypeError, re("sgd: "));
    const [logits, labels] = [tensor([[1, 2]], { backend: "cpu" }), on("webgpu", [0], "int32")];
    throwsLike(
      () => softmaxCrossEntropy(logits, labels),
      TypeError,
      re("softmaxCrossEntropy: mul: "),
    );
    throwsLike(() => g.add(c), TypeError, re("add: "));
    throwsLike(() => ops.stack([g, c]), TypeError, re("stack: concat: add: "));
    const layer = { w: tensor([[1]], { backend: "cpu" }) };
    const input = tensor([[1]], { backend: "webgpu" });
    throwsLike(
      () => nn.linear(layer, input),
      TypeError,
      re("nn.linear: matmul: "),
    );
  },
});

/** The largest number of elements one tensor of the current backend holds. */
const limit = () => resolveBackend().maxElements;

testBoth("over the buffer limit: concat, oneHot and data() name themselves", async () => {
  const n = limit();
  // The first input is padded to the full length, n + 1; the second is a view (no memory).
  const parts = [tensor([1]), tensor([1]).broadcastTo([n])];
  const tooBig = /exceeds/;
  throwsLike(() => concat(parts), RangeError, /^concat: pad: .*exceeds/);
  const side = Math.ceil(Math.sqrt(n)) + 1;
  const ids = tensor([1], { dtype: "int32" }).broadcastTo([side]);
  throwsLike(() => oneHot(ids, side), RangeError, /^oneHot: eq: .*exceeds/);
  const view = tensor([1]).broadcastTo([n + 1]);
  await rejectsLike(
    view.data(),
    RangeError,
    new RegExp(`^data: copy of the view \\[${n + 1}\\]: .*${tooBig.source}`),
  );
});

Deno.test({
  name: "over the buffer limit: logsumexp names itself [webgpu]",
  ignore: !hasWebgpu,
  fn() {
    const x = tensor([1], { backend: "webgpu" }).broadcastTo([
      resolveBackend("webgpu").maxElements + 1,
    ]);
    throwsLike(() => x.logsumexp(), RangeError, /^logsumexp: sub: .*exceeds/);
  },
});

/** A safetensors file holding one I8 tensor `name` of `count` zeros. */
function i8File(name: string, count: number): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ [name]: { dtype: "I8", shape: [count], data_offsets: [0, count] } }),
  );
  const bytes = new Uint8Array(8 + header.length + count);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  return bytes;
}

Deno.test({
  name: "loadSafetensors of an entry over the buffer limit names itself and the entry [webgpu]",
  ignore: !hasWebgpu,
  fn() {
    const n = resolveBackend("webgpu").maxElements + 1;
    const bytes = i8File("big", n);
    throwsLike(
      () => loadSafetensors(bytes, { backend: "webgpu" }),
      RangeError,
      new RegExp(`^loadSafetensors: tensor 'big': shape \\[${n}\\] has ${n} elements, more than`),
    );
    // A small file still loads.
    const small = loadSafetensors(i8File("small", 3), { backend: "webgpu" }) as { small: Tensor };
    assert.deepEqual(small.small.shape, [3]);
    small.small.dispose();
  },
});

// ---- 13: what is wrong with a value ---------------------------------------------------------

testBoth("index and axis errors say what is wrong with the value", () => {
  const x = tensor([1, 2]);
  throwsLike(() => x.get(0.5), RangeError, /^get: index 0\.5 on axis 0 is not an integer$/);
  throwsLike(() => x.get(NaN), RangeError, /^get: index NaN on axis 0 is not an integer$/);
  throwsLike(() => x.get("0" as never), TypeError, /^get: .*got the string "0"$/);
  throwsLike(() => x.get(2), RangeError, /get: index 2 is out of bounds for axis 0 with size 2/);
  throwsLike(() => x.sum("0" as never), TypeError, /^sum: axis must be .*got the string "0"$/);
  throwsLike(
    () => x.sum(["0"] as never),
    TypeError,
    /^sum: axis must be an integer, got the string "0"$/,
  );
  throwsLike(() => x.sum(0.5), RangeError, /^sum: axis 0\.5 is not an integer$/);
  throwsLike(() => x.softmax(true as never), TypeError, /^softmax: .*got the boolean true$/);
  throwsLike(() => x.sum(1), RangeError, /^sum: axis 1 is out of range for a tensor of rank 1/);
  x.dispose();
});

// ---- 15: one implementation behind duplicated APIs ------------------------------------------

testBoth("sgd is one step of optim.sgd, bit for bit", async () => {
  for (const dtype of ["float32", "float16"] as const) {
    const params = { w: tensor([0.1, -2.7, 3.3333], { dtype }), b: [tensor([1e-3], { dtype })] };
    const grads = { w: tensor([0.7, 1.9, -0.123], { dtype }), b: [tensor([5.5], { dtype })] };
    const plain = sgd(params, grads, { lr: 0.37 });
    const opt = optim.sgd(0.37);
    const [updates] = opt.update(grads, opt.init(params), params);
    const stepped = optim.applyUpdates(params, updates);
    assert.deepEqual(await plain.w.data(), await stepped.w.data(), dtype);
    assert.deepEqual(await plain.b[0].data(), await stepped.b[0].data(), dtype);
    assert.equal(plain.w.dtype, dtype);
    ops.disposeTree([params, grads, plain, updates, stepped]);
  }
});

testBoth("nn.oneHot is oneHot: same values, dtypes and edge cases", async () => {
  const ids = tensor([2, 0, -1, 3, 1], { dtype: "int32" });
  for (const dtype of [undefined, "int32", "float16", "bool"] as const) {
    const a = oneHot(ids, 3, { dtype });
    const b = nn.oneHot(ids, 3, { dtype });
    assert.equal(b.dtype, a.dtype);
    assert.deepEqual(await b.data(), await a.data());
  }
  // Host ids are checked, then encoded the same way.
  assert.deepEqual(
    await nn.oneHot([2, 0], 3).data(),
    await oneHot(tensor([2, 0], { dtype: "int32" }), 3).data(),
  );
  assert.throws(() => nn.oneHot([3], 3), /nn\.oneHot: id 3 at index 0 is not in \[0, 3\)/);
  // Zero classes are allowed by both.
  assert.deepEqual(oneHot(ids, 0).shape, [5, 0]);
  assert.deepEqual(nn.oneHot(ids, 0).shape, [5, 0]);
  assert.deepEqual(nn.oneHot([], 0).shape, [0, 0]);
  assert.throws(() => nn.oneHot(ids, -1), RangeError);
  assert.throws(
    () => nn.oneHot(ids, 1.5),
    /nn\.oneHot: oneHot: count must be a non-negative integer/,
  );
  assert.throws(() => nn.oneHot([1], 1.5), /nn\.oneHot: count must be a non-negative integer/);
});

// ---- 16: the relu kink and checkGrads ----------------------------------------------------

testBoth("relu has gradient 0 at exactly 0 (as JAX, PyTorch and TensorFlow)", async () => {
  const x = tensor([0, 0.5, -0.5, 0, -0]);
  assert.deepEqual(Array.from(await grad((t: Tensor) => t.relu().sum())(x).data()), [
    0,
    1,
    0,
    0,
    0,
  ]);
  assert.deepEqual(Array.from(await ops.relu(x).data()), [0, 0.5, 0, 0, 0]);
  // NaN stays NaN; integer dtypes are kept.
  assert.ok(Number.isNaN((await tensor([NaN]).relu().data())[0]));
  const i = tensor([-3, 4], { dtype: "int8" }).relu();
  assert.equal(i.dtype, "int8");
  assert.deepEqual(Array.from(await i.data()), [0, 4]);
  // Second derivative: 0 everywhere.
  const g2 = grad((t: Tensor) => grad((u: Tensor) => u.relu().sum())(t).sum())(x);
  assert.deepEqual(Array.from(await g2.data()), [0, 0, 0, 0, 0]);
});

testBoth(
  "checkGrads skips exact kinks, lists them, and still catches wrong gradients",
  async () => {
    const relu = (t: Tensor) => t.relu().sum();
    const report = await checkGrads(relu, [tensor([-1, 0, 2, 0])]);
    assert.deepEqual(report.kinks.map((k) => `${k.mode} ${k.where}`), [
      "rev [1]",
      "rev [3]",
      "fwd a random direction",
    ]);
    assert.equal(report.checked, 2);
    assert.deepEqual(report.checkedByMode, { rev: 2, fwd: 0 });
    const [k] = report.kinks;
    assert.deepEqual([k.left, k.got], [0, 0]);
    assertClose(k.right, 1, { rtol: 1e-2 });
    // Smooth functions report no kinks.
    assert.deepEqual((await checkGrads((t: Tensor) => t.tanh(), [tensor([0, 0.5])])).kinks, []);
    // With kinks: "fail" the kink is compared with the central difference (1/2).
    await assert.rejects(
      checkGrads(relu, [tensor([-1, 0, 2])], { kinks: "fail" }),
      (e: unknown) =>
        e instanceof GradCheckError && e.failures.length === 1 && e.failures[0].where === "[1]",
    );
    // A wrong gradient is caught at a kink (3 lies outside [0, 1]) and away from one.
    const wrong = (t: Tensor) => t.relu().add(t.sub(stopGradient(t)).mul(3)).sum();
    await assert.rejects(
      checkGrads(wrong, [tensor([0, 1])]),
      (e: unknown) =>
        e instanceof GradCheckError && e.failures.map((f) => f.where).join() === "[0],[1]",
    );
    // The direction mode detects a kink too (every coordinate at 0).
    const dir = await checkGrads(relu, [tensor([0, 0, 0, 0, 0, 0])], { mode: "direction" });
    assert.deepEqual(dir.kinks.map((k) => `${k.mode} ${k.where}`), [
      "rev a random direction",
      "fwd a random direction",
    ]);
    await assert.rejects(checkGrads(relu, [tensor([0])], { kinks: "no" as never }), TypeError);
    // A bad seed is refused by checkGrads itself, not deep inside the generator.
    for (const seed of [-1, 0.5, NaN]) {
      await assert.rejects(
        checkGrads(relu, [tensor([1])], { seed }),
        (e: Error) => e instanceof RangeError && /^checkGrads: opts\.seed/.test(e.message),
      );
    }
  },
);
