/**
 * `jit`, checked against the function run eagerly (bitwise: the program
 * replays the same kernels), on both backends: caching and retrace reasons,
 * dynamic numbers with weak typing, static arguments, captured tensors,
 * refusals at trace time, composition with grad/jvp/vmap, and memory.
 * @module
 */

import assert from "node:assert/strict";
import {
  checkpoint,
  debugNans,
  grad,
  hvp,
  jit,
  jvp,
  memoryStats,
  NonFiniteError,
  randomNormal,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  valueAndGrad,
  vmap,
  where,
} from "../mod.ts";
import { testBoth } from "./_helpers.ts";

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

const loss = (p: Params, x: Tensor, labels: Tensor) =>
  softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);

const trainStep = (p: Params, x: Tensor, labels: Tensor) => {
  const [value, grads] = valueAndGrad(loss)(p, x, labels);
  return { loss: value, params: sgd(p, grads, { lr: 0.1 }) };
};

function mlp(inputs: number, hidden: number): { p: Params; x: Tensor; labels: Tensor } {
  return {
    p: {
      w1: randomNormal([inputs, hidden], { seed: 1, std: 0.3 }),
      b1: randomNormal([hidden], { seed: 2, std: 0.1 }),
      w2: randomNormal([hidden, 3], { seed: 3, std: 0.3 }),
      b2: randomNormal([3], { seed: 4, std: 0.1 }),
    },
    x: randomNormal([6, inputs], { seed: 5 }),
    labels: tensor([0, 1, 2, 2, 1, 0], { dtype: "int32" }),
  };
}

const release = (...ts: Tensor[]) => ts.forEach((t) => t.dispose());
const same = async (a: Tensor, b: Tensor, label: string) => {
  assert.deepEqual(a.shape, b.shape, label);
  assert.equal(a.dtype, b.dtype, label);
  assert.deepEqual(await a.data(), await b.data(), label);
};

testBoth("jit of an MLP training step equals eager bitwise, over several steps", async () => {
  const { p, x, labels } = mlp(8, 5);
  const step = jit(trainStep);
  let [eager, compiled] = [p, p];
  for (let i = 0; i < 4; i++) {
    const e = trainStep(eager, x, labels);
    const c = step(compiled, x, labels);
    await same(c.loss, e.loss, `loss at step ${i}`);
    for (const k of ["w1", "b1", "w2", "b2"] as const) {
      await same(c.params[k], e.params[k], `${k} at step ${i}`);
    }
    [eager, compiled] = [e.params, c.params];
    release(e.loss, c.loss);
  }
  assert.deepEqual(
    { traces: step.stats.traces, compiles: step.stats.compiles, hits: step.stats.cacheHits },
    { traces: 1, compiles: 1, hits: 3 },
  );
});

testBoth("jit retraces on a new signature and says why", () => {
  const { p, x, labels } = mlp(8, 5);
  const step = jit(trainStep);
  step(p, x, labels);
  assert.equal(step.stats.lastRetrace, "first call");
  const wider = mlp(8, 7);
  step(wider.p, wider.x, wider.labels);
  assert.equal(
    step.stats.lastRetrace,
    "argument 0 at 'w1': float32 shape [8,5] on " +
      `${x.backend} → float32 shape [8,7] on ${x.backend}`,
  );
  step(p, x, labels);
  assert.equal(step.stats.traces, 2, "a signature seen before is cached");
  step(p, x.astype("float16").astype("float32"), labels);
  assert.equal(step.stats.traces, 2, "same shapes and dtypes: cached");
});

testBoth("jit: numbers are dynamic (no retrace) and weakly typed as in eager", async () => {
  const scale = jit((x: Tensor, s: number) => x.mul(s).add(s));
  const x = tensor([1, 2, 4]);
  for (const s of [0.5, 0.25, -3.75]) {
    await same(scale(x, s), x.mul(s).add(s), `s = ${s}`);
  }
  assert.equal(scale.stats.traces, 1, "new values of a number do not retrace");
  // A number types like its kind: an integer keeps an int tensor int, a
  // fraction makes it float, and float16 stays float16.
  const ints = tensor([1, 2], { dtype: "int32" });
  await same(scale(ints, 3), ints.mul(3).add(3), "int × integer");
  await same(scale(ints, 2.5), ints.mul(2.5).add(2.5), "int × fraction");
  assert.equal(scale.stats.lastRetrace, "argument 1: number (int8) → number (float)");
  const half = x.astype("float16");
  await same(scale(half, 0.1), half.mul(0.1).add(0.1), "float16 × number");
  const small = tensor([1, 2], { dtype: "int8" });
  assert.throws(() => small.add(300), RangeError);
  assert.throws(() => jit((a: Tensor, n: number) => a.add(n))(small, 300), RangeError);
});

testBoth(
  "jit: staticArgnums bake values in; JavaScript arithmetic on a traced number is refused",
  async () => {
    const x = tensor([1, 2]);
    const twice = (a: Tensor, n: number) => a.mul(n * 2);
    assert.throws(
      () => jit(twice)(x, 3),
      (err: Error) =>
        err instanceof TypeError && /^a Tensor used as a number: .*staticArgnums/.test(err.message),
    );
    const fixed = jit(twice, { staticArgnums: 1 });
    assert.deepEqual(await fixed(x, 3).array(), [6, 12]);
    assert.deepEqual(await fixed(x, 3).array(), [6, 12]);
    assert.equal(fixed.stats.traces, 1);
    assert.deepEqual(await fixed(x, 4).array(), [8, 16]);
    assert.equal(fixed.stats.lastRetrace, "argument 1: static 3 → static 4");
    assert.throws(
      () => jit(twice, { staticArgnums: 0 })(x, 3),
      /static argument 0 contains a tensor: pass tensors as dynamic arguments/,
    );
  },
);

testBoth("jit refuses reads and non-tensor leaves at trace time, naming what to do", () => {
  const x = tensor([1, 2]);
  assert.throws(
    () =>
      jit((a: Tensor) => {
        void a.sum().item();
        return a;
      })(x),
    /traced value: while makeTrace or jit traces a function.*read it outside/,
  );
  assert.throws(
    () => jit((a: Tensor, f: () => number) => a.mul(f()))(x, () => 2),
    /^TypeError: jit: argument 1 is function .*mark the argument with staticArgnums/,
  );
});

testBoth(
  "jit: captured tensors are read at each call; a disposed one is a clear error",
  async () => {
    const w = tensor([1, 2]);
    const f = jit(function scaled(x: Tensor) {
      return x.mul(w);
    });
    assert.deepEqual(await f(tensor([3, 3])).array(), [3, 6]);
    w.dispose();
    assert.throws(
      () => f(tensor([3, 3])),
      (err: Error) =>
        err instanceof ReferenceError &&
        /^scaled: a tensor the traced function captured \(shape \[2\]\) was disposed/.test(
          err.message,
        ),
    );
  },
);

testBoth("jit composes with grad, jvp and vmap, and nests", async () => {
  const f = (x: Tensor, w: Tensor) => x.mul(w).tanh().sum();
  const x = tensor([0.1, -0.4, 0.9]);
  const w = tensor([1.5, 0.5, -2]);
  const jf = jit(f);
  await same(grad(jf)(x, w), grad(f)(x, w), "grad(jit f)");
  await same(jit(grad(f))(x, w), grad(f)(x, w), "jit(grad f)");
  const v = tensor([1, 0, 2]);
  await same(jvp(jf, [x, w], [v, null])[1], jvp(f, [x, w], [v, null])[1], "jvp(jit f)");
  const xs = tensor([[0.1, 0.2, 0.3], [1, -1, 0.5]]);
  const batched = vmap(f, { inAxes: [0, null] })(xs, w);
  await same(vmap(jf, { inAxes: [0, null] })(xs, w), batched, "vmap(jit f)");
  await same(jit(vmap(f, { inAxes: [0, null] }))(xs, w), batched, "jit(vmap f)");
  const outer = jit((a: Tensor) => jf(a, w).mul(2));
  await same(outer(x), f(x, w).mul(2), "jit inside jit");
});

testBoth("jit under debugNans names the primitive that produced a NaN", async () => {
  const f = jit((x: Tensor) => x.log().sum());
  debugNans(true);
  try {
    await assert.rejects(
      async () => {
        const y = f(tensor([1, -1]));
        await y.data();
      },
      (err: Error) => err instanceof NonFiniteError && /debugNans: log/.test(err.message),
    );
  } finally {
    debugNans(false);
  }
});

testBoth("jitted calls leak nothing and trace lazily", () => {
  const { p, x, labels } = mlp(8, 5);
  const step = jit(trainStep);
  assert.equal(step.stats.traces, 0, "nothing is traced before the first call");
  const first = step(p, x, labels);
  release(first.loss, ...Object.values(first.params));
  const live = memoryStats().liveTensors;
  for (let i = 0; i < 3; i++) {
    const out = step(p, x, labels);
    release(out.loss, ...Object.values(out.params));
  }
  assert.equal(memoryStats().liveTensors, live, "a warm call leaked tensors");
  assert.match(String(step.trace(p, x, labels)), /= matmul /);
});

testBoth("a Tensor is not a number: JavaScript arithmetic on it throws", () => {
  const x = tensor([1]);
  assert.throws(() => (x as unknown as number) * 2, /^TypeError: a Tensor used as a number/);
  assert.throws(() => (x as unknown as number) > 0, TypeError);
  assert.match(`${x}`, /^Tensor\(float32\[1\], /);
  x.dispose();
});

testBoth("jit: a traced number used as an axis or a shape says to make it static", async () => {
  const x = tensor([[1, 2], [3, 4]]);
  assert.throws(
    () => jit((a: Tensor, k: number) => a.sum(k))(x, 1),
    /^TypeError: sum: axis must be .* \(jit traces number arguments as scalar tensors: .*staticArgnums\)$/,
  );
  assert.throws(
    () => jit((a: Tensor, n: number) => a.reshape([n]))(x, 4),
    /^TypeError: reshape: .*staticArgnums\)$/,
  );
  const summed = jit((a: Tensor, k: number) => a.sum(k), { staticArgnums: 1 });
  assert.deepEqual(await summed(x, 1).array(), [3, 7]);
  x.dispose();
});

testBoth(
  "jit: numbers of every kind type and round as in eager (big integers, -0, masks)",
  async () => {
    const x = tensor([1, 2, 3]);
    const add = jit((a: Tensor, n: number) => a.add(n));
    for (const n of [3e9, 2 ** 53, 1e40, -0, 0, 0.5, -1e30, Infinity, NaN]) {
      await same(add(x, n), x.add(n), `x + ${n}`);
    }
    const div = jit((a: Tensor, n: number) => a.div(n));
    await same(div(x, -0), x.div(-0), "x / -0 is -Infinity");
    const ints = tensor([1, 2], { dtype: "int32" });
    assert.throws(() => ints.add(3e9), RangeError);
    assert.throws(() => add(ints, 3e9), RangeError);
    // A mask value far below float32's range of integers.
    const logits = tensor([[1, 2, 3]]);
    const mask = tensor([[1, 1, 0]], { dtype: "bool" });
    const masked = (l: Tensor, m: Tensor, fill: number) => where(m, l, fill).softmax(-1);
    await same(jit(masked)(logits, mask, -1e30), masked(logits, mask, -1e30), "masked softmax");
  },
);

testBoth("jit: static values and tree structures are keyed exactly", async () => {
  const x = tensor([1, 2]);
  const scale = jit((a: Tensor, s: number) => a.div(s), { staticArgnums: 1 });
  for (const s of [Infinity, NaN, -Infinity, 0, -0]) await same(scale(x, s), x.div(s), `x / ${s}`);
  const apply = jit((a: Tensor, f: (t: Tensor) => Tensor) => f(a), { staticArgnums: 1 });
  await same(apply(x, (t) => t.exp()), x.exp(), "first lambda");
  await same(apply(x, (t) => t.neg()), x.neg(), "a second lambda is a new key");
  const count = jit((a: Tensor, xs: unknown[]) => a.add(xs.length));
  await same(count(x, [[]]), x.add(1), "[[]]");
  await same(count(x, [[], []]), x.add(2), "[[], []] is another structure");
});

testBoth("jit inside jit keeps numbers weakly typed", async () => {
  const inner = jit((a: Tensor, s: number) => a.mul(s));
  const outer = jit((a: Tensor, s: number) => inner(a, s));
  const half = tensor([1, 2]).astype("float16");
  await same(outer(half, 0.5), half.mul(0.5), "float16 × number");
  const small = tensor([1, 2], { dtype: "int8" });
  await same(outer(small, 3), small.mul(3), "int8 × integer");
});

testBoth(
  "a Tensor in string concatenation gives its description; the jit hint is only for traced values",
  () => {
    const x = tensor([1]);
    assert.equal("x: " + x, `x: ${x}`);
    assert.throws(() => -(x as unknown as number), (err: Error) => !/jit/.test(err.message));
    assert.throws(
      () => jit((a: Tensor, n: number) => a.mul(n).reshape([5]))(x, 2),
      (err: Error) => !/staticArgnums/.test(err.message),
      "an unrelated error gets no hint",
    );
    x.dispose();
  },
);

testBoth(
  "jit returns numbers and other non-tensor results as they are, and vmap inside it passes numbers through",
  async () => {
    const x = tensor([1, 2]);
    const f = jit((a: Tensor, n: number) => ({ y: a.mul(n), n, tag: "scaled" }));
    const live = memoryStats().liveTensors;
    for (const n of [2.5, 3.5]) {
      const r = f(x, n);
      assert.equal(r.n, n, "a number argument returned comes back as the call's number");
      assert.equal(r.tag, "scaled");
      assert.deepEqual(await r.y.array(), [n, 2 * n]);
      r.y.dispose();
    }
    assert.equal(memoryStats().liveTensors, live, "nothing leaked");
    const rows = tensor([[1, 2], [3, 4]]);
    const g = (r: Tensor, s: number) => vmap((e: Tensor, k: number) => e.mul(k).sum())(r, s);
    await same(jit(g)(rows, 2), g(rows, 2), "jit(vmap) with a number argument");
    x.dispose();
  },
);

testBoth("inside jit a traced number is still a number to grad, hvp and checkpoint", async () => {
  const x = tensor([1, 2]);
  const f = (a: Tensor, s: number) => a.pow(3).sum().mul(s);
  assert.throws(
    () => jit(grad(f, { argnums: 1 }))(x, 3.5),
    /argument 1 is a number \(traced by jit\)/,
  );
  const [eagerH, eagerS] = hvp(f, [x, 3], [tensor([1, 1]), null]);
  const [jitH, jitS] = jit((a: Tensor, s: number) => hvp(f, [a, s], [tensor([1, 1]), null]))(x, 3);
  await same(jitH as Tensor, eagerH as Tensor, "hvp inside jit");
  assert.equal(eagerS, null);
  assert.equal(jitS, null, "the number is held fixed, as in eager mode");
  const saved = checkpoint((a: Tensor, s: number) => a.tanh().mul(s));
  const g = (a: Tensor, s: number) => grad((z: Tensor) => saved(z, s).sum())(a);
  await same(jit(g)(x, 3), g(x, 3), "checkpoint with a number inside jit");
});
