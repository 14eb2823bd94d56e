/**
 * `customVjp`, `straightThrough` and `checkpoint`, each checked against a
 * reference computed without it: the analytic gradient of the custom rule,
 * central differences of the custom gradient (second order), the plain
 * function's gradients (bitwise, for checkpoint), and peak memory with and
 * without checkpointing.
 * @module
 */

import assert from "node:assert/strict";
import {
  checkpoint,
  customVjp,
  grad,
  jit,
  jvp,
  memoryStats,
  randomNormal,
  resetPeakMemory,
  straightThrough,
  type Tensor,
  tensor,
  valueAndGrad,
  vjp,
  vmap,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

const release = (...ts: Tensor[]) => ts.forEach((t) => t.dispose());

/** x² with a hand-written rule 2·x·g (the residual is x). */
const square = customVjp((x: Tensor) => x.square(), {
  fwd: (x: Tensor) => [x.square(), x],
  bwd: (x: Tensor, g: Tensor) => [g.mul(x).mul(2)],
});

testBoth("customVjp: grad, vjp and valueAndGrad use the rule", async () => {
  // A deliberately different rule shows it is the one used: 3·g instead of 2x·g.
  const scaled = customVjp((x: Tensor) => x.square(), {
    fwd: (x: Tensor) => [x.square(), null],
    bwd: (_: null, g: Tensor) => [g.mul(3)],
  });
  const x = tensor([1, -2]);
  assert.deepEqual(await grad((z: Tensor) => scaled(z).sum())(x).array(), [3, 3]);
  const [v, g] = valueAndGrad((z: Tensor) => scaled(z).sum())(x);
  assert.deepEqual([await v.item(), await g.array()], [5, [3, 3]]);
  const [y, pullback] = vjp(scaled, x);
  const [dx] = pullback(tensor([1, 10])) as Tensor[];
  assert.deepEqual(await dx.array(), [3, 30]);
  assert.deepEqual(await y.array(), [1, 4], "the forward value is fwd's");
  pullback.dispose();
  release(x, v, g, y, dx);
});

testBoth("customVjp: the gradient of a custom gradient (bwd written with public ops)", async () => {
  const x = tensor([3, -0.5]);
  const first = grad((z: Tensor) => square(z).sum());
  assert.deepEqual(await first(x).array(), [6, -1]);
  // d/dx of Σ 2x (through bwd's ops, with the residual x traced by the outer grad) = 2.
  assert.deepEqual(await grad((z: Tensor) => first(z).sum())(x).array(), [2, 2]);
  x.dispose();
});

testBoth("customVjp: forward mode and vmap differentiate the function itself", async () => {
  const [, t] = jvp(square, [tensor([3])], [tensor([1])]);
  assert.deepEqual(await t.array(), [6]);
  const perExample = vmap(grad((z: Tensor) => square(z).sum()))(tensor([[1, 2], [3, 4]]));
  assert.deepEqual(await perExample.array(), [[2, 4], [6, 8]]);
  // Outside any transform the function runs as it is.
  assert.deepEqual(await square(tensor([4])).array(), [16]);
});

testBoth("customVjp on pytrees, several arguments, and a null cotangent", async () => {
  const f = customVjp((p: { a: Tensor; b: Tensor }, k: Tensor) => p.a.mul(p.b).add(k), {
    fwd: (p: { a: Tensor; b: Tensor }, k: Tensor) => [p.a.mul(p.b).add(k), p],
    bwd: (p: { a: Tensor; b: Tensor }, g: Tensor) => [{ a: g.mul(p.b), b: g.mul(p.a) }, null],
  });
  const p = { a: tensor([1, 2]), b: tensor([3, 4]) };
  const k = tensor([0.5, 0.5]);
  const [gp, gk] = grad((p: { a: Tensor; b: Tensor }, k: Tensor) => f(p, k).sum(), {
    argnums: [0, 1],
  })(p, k);
  assert.deepEqual(await (gp as { a: Tensor }).a.array(), [3, 4]);
  assert.deepEqual(await (gp as { b: Tensor }).b.array(), [1, 2]);
  assert.deepEqual(await (gk as Tensor).array(), [0, 0], "a null cotangent is zero");
});

testBoth("customVjp refuses a bwd of the wrong length or shape, naming the function", () => {
  const x = tensor([1, 2]);
  const short = customVjp(function twice(z: Tensor) {
    return z.mul(2);
  }, { fwd: (z: Tensor) => [z.mul(2), null], bwd: () => [] });
  assert.throws(
    () => grad((z: Tensor) => short(z).sum())(x),
    /twice: bwd must return one cotangent per argument \(1\)/,
  );
  const wrong = customVjp((z: Tensor) => z.mul(2), {
    fwd: (z: Tensor) => [z.mul(2), null],
    bwd: (_: null, g: Tensor) => [g.sum()],
  }, { name: "doubled" });
  assert.throws(
    () => grad((z: Tensor) => wrong(z).sum())(x),
    /doubled: bwd's cotangent for argument 0 must be a tensor of shape \[2\], got shape \[\]/,
  );
  x.dispose();
});

testBoth("straightThrough passes the gradient a rounding step lacks", async () => {
  const quantize = straightThrough((x: Tensor) => x.mul(4).round().div(4));
  const plain = (x: Tensor) => x.mul(4).round().div(4);
  const loss = (q: (x: Tensor) => Tensor) => (w: Tensor) => q(w).sub(0.3).square().sum();
  const w = tensor([0.9, -0.2]);
  // Plain rounding has gradient 0 almost everywhere: training could not move w.
  assert.deepEqual(await grad(loss(plain))(w).array(), [0, 0]);
  // The estimator passes 2·(q(w) − 0.3): q = [1, -0.25].
  assertClose(await grad(loss(quantize))(w).array(), [1.4, -1.1], { atol: 1e-6 });
  assert.deepEqual(await quantize(w).array(), [1, -0.25], "the forward pass still quantises");
  w.dispose();
});

/**
 * The checkpoint tests' network: 8 layers of width 128 on a batch of 128,
 * its weights and input, one layer, and the loss of the layers applied by `f`.
 */
function deepNet() {
  const [layers, width, batch] = [8, 128, 128];
  const ws = Array.from(
    { length: layers },
    (_, i) => randomNormal([width, width], { seed: i, std: 0.08 }),
  );
  const x = randomNormal([batch, width], { seed: 99 });
  const layer = (w: Tensor, h: Tensor) => h.matmul(w).tanh().mul(1.5).sigmoid();
  const net = (f: typeof layer) => (ws: Tensor[]) => ws.reduce((h, w) => f(w, h), x).sum();
  return { layers, width, ws, x, layer, net };
}

testBoth("checkpoint: bitwise-equal gradients at under 60% of the peak memory", async () => {
  const { layers, ws, x, layer, net } = deepNet();
  const saved = checkpoint(layer);
  const run = async (f: typeof layer) => {
    resetPeakMemory();
    const base = memoryStats().peakBytes;
    const [value, grads] = valueAndGrad(net(f))(ws);
    const peak = memoryStats().peakBytes - base;
    const data = await Promise.all((grads as Tensor[]).map((g) => g.data()));
    const v = await value.item();
    release(value, ...(grads as Tensor[]));
    return { peak, data, v };
  };
  const live = memoryStats().liveTensors;
  const plain = await run(layer);
  const remat = await run(saved);
  assert.equal(memoryStats().liveTensors, live, "checkpointing leaked tensors");
  assert.equal(remat.v, plain.v);
  for (let i = 0; i < layers; i++) {
    assert.deepEqual(remat.data[i], plain.data[i], `layer ${i}: the gradients differ`);
  }
  assert.ok(
    remat.peak <= 0.6 * plain.peak,
    `peak ${remat.peak} bytes with checkpoints vs ${plain.peak} without (limit 60%)`,
  );
  release(...ws, x);
});

testBoth(
  "custom rules at every level: an outer grad uses the rule, and residuals stay connected",
  async () => {
    const ste = straightThrough((x: Tensor) => x.round());
    const x = tensor([0.4, 1.6, 2.2]);
    // d/dx [v + Σg] with v = Σ ste(x), g = ∂v/∂x = 1: the outer grad uses the identity rule too.
    const outer = grad((z: Tensor) => {
      const [v, g] = valueAndGrad((y: Tensor) => ste(y).sum())(z);
      return v.add(g.sum());
    })(x);
    assert.deepEqual(await outer.array(), [1, 1, 1]);
    // A residual computed in fwd (exp(x)): the second derivative of exp is exp.
    const cexp = customVjp((z: Tensor) => z.exp(), {
      fwd: (z: Tensor) => {
        const y = z.exp();
        return [y, y];
      },
      bwd: (y: Tensor, g: Tensor) => [g.mul(y)],
    });
    const second = grad((z: Tensor) => grad((y: Tensor) => cexp(y).sum())(z).sum())(x);
    assertClose(await second.data(), [0.4, 1.6, 2.2].map(Math.exp), { atol: 1e-5 });
  },
);

testBoth("grad of jvp of a custom function differentiates the function itself", async () => {
  const cube = (y: Tensor) => y.pow(3);
  const custom = customVjp(cube, {
    fwd: (y: Tensor) => [cube(y), y],
    bwd: (y: Tensor, g: Tensor) => [g.mul(y.square()).mul(3)],
  });
  const x = tensor([1, 2, 3]);
  for (const f of [custom, checkpoint(cube)]) {
    const g = grad((z: Tensor) => (jvp(f, [z], [tensor([1, 1, 1])])[1] as Tensor).sum())(x);
    assert.deepEqual(await g.array(), [6, 12, 18], "d/dx of 3x² is 6x");
  }
});

testBoth("checkpoint under grad of grad, and with numbers, int tensors and strings", async () => {
  const x = tensor([0.3, 0.6, 1.1]);
  const f = (z: Tensor) => z.exp().tanh();
  const plain = grad((z: Tensor) => grad((y: Tensor) => f(y).sum())(z).sum())(x);
  const saved = checkpoint(f);
  const remat = grad((z: Tensor) => grad((y: Tensor) => saved(y).sum())(z).sum())(x);
  assert.deepEqual(await remat.data(), await plain.data());
  const ids = tensor([2, 0], { dtype: "int32" });
  const g = (p: { x: Tensor; act: string }, i: Tensor, s: number) =>
    (p.act === "tanh" ? p.x.tanh() : p.x).take(i, 0).mul(s);
  const expected = grad((z: Tensor) => g({ x: z, act: "tanh" }, ids, 3).sum())(x);
  const got = grad((z: Tensor) => checkpoint(g)({ x: z, act: "tanh" }, ids, 3).sum())(x);
  assert.deepEqual(await got.data(), await expected.data());
});

testBoth("customVjp refuses a bwd cotangent whose tree is not the argument's", () => {
  const x = tensor([1, 2]);
  const bare = customVjp((p: { w: Tensor }) => p.w.mul(2), {
    fwd: (p: { w: Tensor }) => [p.w.mul(2), null],
    bwd: (_: null, g: Tensor) => [g.mul(2)], // should be { w: ... }
  }, { name: "scale" });
  assert.throws(
    () => grad((z: Tensor) => bare({ w: z }).sum())(x),
    /scale: bwd's cotangent for argument 0 has the leaves \[''\], but the argument's tensors are at \['w'\]/,
  );
  x.dispose();
});

testBoth("a custom rule inside vmap or jit is used by a grad outside it", async () => {
  const ste = straightThrough((x: Tensor) => x.round());
  const f = (e: Tensor) => ste(e).mul(e);
  const plain = (e: Tensor) => e.round().mul(e);
  const x = tensor([0.4, 1.6, 2.2, -0.7]);
  // The reference: eager, with no vmap or jit. x + round(x); plain round gives round(x).
  const expected = await grad((z: Tensor) => f(z).sum())(x).array();
  assert.deepEqual(
    expected,
    [0.4, 1.6, 2.2, -0.7].map((v) => Math.fround(Math.fround(v) + Math.round(v))),
  );
  assert.notDeepEqual(await grad((z: Tensor) => plain(z).sum())(x).array(), expected);
  const ways: [string, (z: Tensor) => Tensor][] = [
    ["grad(vmap f)", (z) => vmap(f)(z)],
    ["grad(jit f)", (z) => jit(f)(z)],
    ["grad(jit(vmap f))", (z) => jit(vmap(f))(z)],
    ["grad(vmap(jit f))", (z) => vmap(jit(f))(z)],
  ];
  for (const [what, g] of ways) {
    const [value, dx] = valueAndGrad((z: Tensor) => g(z).sum())(x);
    assert.deepEqual(await dx.array(), expected, what);
    assert.equal(await value.item(), await f(x).sum().item(), `${what}: the value`);
  }
  // A shared argument (inAxes null) gets the sum of the examples' cotangents:
  // checked against a loop over the examples, each differentiated eagerly.
  const h = (e: Tensor, w: Tensor) => ste(e.mul(w)).mul(w).sum();
  const xs = tensor([[0.4, 1.6, 2.2], [0.1, 0.2, 0.3]]);
  const w = tensor([1, 2, 3]);
  const loop = [0, 1].map((i) => grad((v: Tensor) => h(xs.get(i), v))(w));
  const summed = await loop[0].add(loop[1]).data();
  for (const batched of [vmap(h, { inAxes: [0, null] }), jit(vmap(h, { inAxes: [0, null] }))]) {
    const [gx, gw] = grad((a: Tensor, v: Tensor) => batched(a, v).sum(), { argnums: [0, 1] })(
      xs,
      w,
    ) as Tensor[];
    assertClose(await gw.data(), summed, { atol: 1e-6 });
    const rows = [0, 1].map((i) => grad((e: Tensor) => h(e, w))(xs.get(i)));
    assertClose(await gx.data(), [...await rows[0].data(), ...await rows[1].data()], {
      atol: 1e-6,
    });
  }
});

testBoth(
  "checkpoint inside jit or vmap under grad: the same gradients, and the memory saving under jit",
  async () => {
    const { layers, width, ws, x, layer, net } = deepNet();
    const run = async (loss: (ws: Tensor[]) => Tensor) => {
      resetPeakMemory();
      const base = memoryStats().peakBytes;
      const [value, grads] = valueAndGrad(loss)(ws);
      const peak = memoryStats().peakBytes - base;
      const data = await Promise.all((grads as Tensor[]).map((g) => g.data()));
      release(value, ...(grads as Tensor[]));
      return { peak, data };
    };
    const live = memoryStats().liveTensors;
    const plain = await run(net(layer));
    const jitted = await run(jit(net(checkpoint(layer))));
    assert.equal(memoryStats().liveTensors, live, "checkpointing under jit leaked tensors");
    for (let i = 0; i < layers; i++) {
      assert.deepEqual(jitted.data[i], plain.data[i], `layer ${i}: the gradients differ`);
    }
    assert.ok(
      jitted.peak <= 0.6 * plain.peak,
      `peak ${jitted.peak} bytes with checkpoints under jit vs ${plain.peak} eager without (limit 60%)`,
    );
    // Under vmap: per-example layers over 4 examples, against the plain vmap.
    const xs = randomNormal([4, 3, width], { seed: 7 });
    const perExample = (f: typeof layer) => (ws: Tensor[]) =>
      vmap((e: Tensor) => ws.slice(0, 3).reduce((h, w) => f(w, h), e))(xs).sum();
    const a = grad(perExample(layer))(ws) as Tensor[];
    const b = grad(perExample(checkpoint(layer)))(ws) as Tensor[];
    for (let i = 0; i < 3; i++) assertClose(await b[i].data(), await a[i].data(), { atol: 1e-6 });
    release(...a, ...b, ...ws, x, xs);
  },
);

testBoth(
  "custom functions that return their argument, or another custom function's result, under jit and vmap",
  async () => {
    // The identity with a rule 2·g: f(x) = twice(x) + x has the gradient 3.
    const twice = customVjp((x: Tensor) => x, {
      fwd: (x: Tensor) => [x, null],
      bwd: (_: null, g: Tensor) => [g.mul(2)],
    });
    const f = (x: Tensor) => twice(x).add(x).sum();
    const x = tensor([0.5, -1.5]);
    for (const g of [f, jit(f), (z: Tensor) => vmap(f)(z.reshape([2, 1])).sum()]) {
      assert.deepEqual(await grad(g)(x).array(), [3, 3]);
    }
    // A custom function whose result is another's: the outer rule (3·g) wins.
    const ste = straightThrough((z: Tensor) => z.round());
    const outer = customVjp((z: Tensor) => ste(z), {
      fwd: (z: Tensor) => [ste(z), null],
      bwd: (_: null, g: Tensor) => [g.mul(3)],
    });
    const o = (z: Tensor) => outer(z).mul(z).sum();
    const expected = [0.5 * 3 + 0, -1.5 * 3 - 2]; // 3x + round(x), halves to even
    for (const g of [o, jit(o), (z: Tensor) => vmap(o)(z.reshape([2, 1])).sum()]) {
      assert.deepEqual(await grad(g)(x).array(), expected);
    }
    // Without a tape the regions compute the functions themselves.
    assert.deepEqual(await jit(vmap((z: Tensor) => outer(z).mul(z)))(x).array(), [0, 3]);
    // Forward mode differentiates the function itself, under jit too: round' = 0.
    const [, t] = jvp(jit(o), [x], [tensor([1, 1])]);
    assert.deepEqual(await t.item(), -2);
  },
);

testBoth(
  "a custom function that reads a traced value it was not given is a clear error under grad of jit or vmap",
  async () => {
    const x = tensor([0.4, 1.6]);
    const f = (z: Tensor) => {
      const w = z.mul(2); // a value of the trace, captured by the custom function
      const scale = customVjp((y: Tensor) => y.mul(w), {
        fwd: (y: Tensor) => [y.mul(w), null],
        bwd: (_: null, g: Tensor) => [g.mul(w)],
      }, { name: "scaleByW" });
      return scale(z).sum();
    };
    assertClose(await grad(f)(x).data(), [0.8, 3.2], { atol: 1e-6 }); // eagerly w is data
    for (const g of [jit(f), (z: Tensor) => vmap(f)(z.reshape([2, 1])).sum()]) {
      assert.throws(
        () => grad(g)(x),
        /scaleByW: the function uses a traced value it was not given as an argument \(shape \[\d*\]\).*pass that value as an argument/,
      );
    }
    // Without a grad outside, the rule is not needed and nothing fails.
    assertClose(await jit(f)(x).data(), [0.4 * 0.8 + 1.6 * 3.2], { atol: 1e-5 });
    x.dispose();
  },
);

testBoth(
  "second order through a custom rule whose residual is (or derives from) the output",
  async () => {
    const x = tensor([0.5]);
    for (const residual of [(y: Tensor) => y, (y: Tensor) => y.mul(1), (y: Tensor) => y.add(0)]) {
      const f = customVjp((z: Tensor) => z.exp(), {
        fwd: (z: Tensor) => {
          const y = z.exp();
          return [y, residual(y)];
        },
        bwd: (r: Tensor, g: Tensor) => [g.mul(r).mul(2)],
      });
      // d/dx of the custom gradient 2·e^x is 2·e^x.
      const g2 = grad((z: Tensor) => grad((y: Tensor) => f(y).sum())(z).sum())(x);
      assertClose(await g2.data(), [2 * Math.exp(0.5)], { atol: 1e-5 });
    }
  },
);

testBoth(
  "a custom rule taken by a grad inside jit, under another grad, is refused; checkpoint and captured data are fine",
  async () => {
    const ste = straightThrough((x: Tensor) => x.round());
    const x = tensor([0.4, 1.6]);
    assert.throws(
      () => grad((z: Tensor) => jit(grad((y: Tensor) => ste(y).mul(y).sum()))(z).sum())(x),
      /straightThrough\(.*\): a custom gradient .* taken by grad inside vmap or jit, under another grad outside it, is not supported yet.*one side/,
    );
    // Checkpoint's forward pass is the function's own: an outer grad loses nothing.
    const f = (y: Tensor) => y.exp().tanh();
    const inner = (g: (y: Tensor) => Tensor) => (z: Tensor) =>
      grad((y: Tensor) => g(y).sum())(z).sum();
    assert.deepEqual(
      await grad((z: Tensor) => jit(inner(checkpoint(f)))(z))(x).data(),
      await grad(inner(f))(x).data(),
    );
    const data = tensor([0.4, 1.6]);
    const g = grad(jit((p: Tensor) => p.mul(ste(data)).sum()))(tensor([1, 1]));
    assert.deepEqual(await g.array(), [0, 2], "ste of captured data: nothing to lose");
    x.dispose();
  },
);
