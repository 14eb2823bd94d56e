/**
 * Behaviour of the function transforms (grad, valueAndGrad, vjp, printTrace),
 * stopGradient, sgd and checkGrads, on every backend.
 */

import assert from "node:assert/strict";
import {
  checkGrads,
  grad,
  GradCheckError,
  memoryStats,
  printTrace,
  randomNormal,
  sgd,
  stopGradient,
  type Tensor,
  tensor,
  treeTensors,
  valueAndGrad,
  vjp,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

/** Disposes every tensor in the given trees. */
function release(...trees: unknown[]): void {
  for (const t of treeTensors(trees)) t.dispose();
}

// ---- pytrees ----------------------------------------------------------------

type Layer = { w: Tensor; b: Tensor };
type Params = { layers: Layer[] };

/** Two linear layers, no activation: loss = sum((x·W1 + b1)·W2 + b2). */
const linearLoss = (p: Params, x: Tensor) => {
  const [l1, l2] = p.layers;
  return x.matmul(l1.w).add(l1.b).matmul(l2.w).add(l2.b).sum();
};

function linearParams(): Params {
  return {
    layers: [
      { w: tensor([[0.5, -1], [2, 0.25]]), b: tensor([0.1, -0.2]) },
      { w: tensor([[1.5], [-0.5]]), b: tensor([0.3]) },
    ],
  };
}

testBoth("grad on a pytree of nested objects and arrays", async () => {
  const params = linearParams();
  const x = tensor([[1, 2]]);
  const g = grad(linearLoss)(params, x) as Params;

  // Same tree structure and shapes as the parameters.
  assert.deepEqual(Object.keys(g), ["layers"]);
  assert.ok(Array.isArray(g.layers));
  assert.equal(g.layers.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(Object.keys(g.layers[i]), ["w", "b"]);
    assert.deepEqual(g.layers[i].w.shape, params.layers[i].w.shape);
    assert.deepEqual(g.layers[i].b.shape, params.layers[i].b.shape);
  }

  // By hand: h = x·W1 + b1 = [1*0.5 + 2*2 + 0.1, 1*-1 + 2*0.25 - 0.2] = [4.6, -0.7].
  // dL/db2 = 1, dL/dW2 = hᵀ, dL/dh = W2ᵀ = [1.5, -0.5] = dL/db1, dL/dW1 = xᵀ·W2ᵀ.
  assertClose(await g.layers[1].b.array(), [1], { label: "b2" });
  assertClose(await g.layers[1].w.array(), [[4.6], [-0.7]], { label: "W2" });
  assertClose(await g.layers[0].b.array(), [1.5, -0.5], { label: "b1" });
  assertClose(await g.layers[0].w.array(), [[1.5, -0.5], [3, -1]], {
    label: "W1",
  });
  release(params, x, g);
});

testBoth("valueAndGrad on a pytree returns the value and the grads", async () => {
  const params = linearParams();
  const x = tensor([[1, 2]]);
  const [value, g] = valueAndGrad(linearLoss)(params, x);
  // y = h·W2 + b2 = 4.6*1.5 + -0.7*-0.5 + 0.3 = 7.55
  assert.deepEqual(value.shape, []);
  assertClose(await value.item(), 7.55, { label: "value" });
  assertClose(await g.layers[0].w.array(), [[1.5, -0.5], [3, -1]], {
    label: "W1",
  });
  assertClose(await g.layers[1].w.array(), [[4.6], [-0.7]], { label: "W2" });
  // The parameters are untouched and still usable.
  assertClose(await params.layers[0].w.array(), [[0.5, -1], [2, 0.25]], {
    label: "W1 after",
  });
  release(params, x, value, g);
});

testBoth("grad on a tree with nested arrays and a scalar leaf", async () => {
  // f(p) = sum(a²) + 3·sum(c[0]) + sum(c[1].d · s), s a shape-[] leaf
  const p = {
    a: tensor([1, -2]),
    c: [tensor([[1, 2], [3, 4]]), { d: tensor([5, 6, 7]) }] as const,
    s: tensor(2),
  };
  const f = (q: typeof p) => q.a.pow(2).sum().add(q.c[0].sum().mul(3)).add(q.c[1].d.mul(q.s).sum());
  const g = grad(f)(p);
  assert.deepEqual(g.a.shape, [2]);
  assert.deepEqual(g.c[0].shape, [2, 2]);
  assert.deepEqual(g.c[1].d.shape, [3]);
  assert.deepEqual(g.s.shape, []);
  assert.ok(Array.isArray(g.c));
  assertClose(await g.a.array(), [2, -4], { label: "a" });
  assertClose(await g.c[0].array(), [[3, 3], [3, 3]], { label: "c.0" });
  assertClose(await g.c[1].d.array(), [2, 2, 2], { label: "c.1.d" });
  assertClose(await g.s.item(), 18, { label: "s" });
  release(p, g);
});

// ---- argnums ----------------------------------------------------------------

const prod = (a: Tensor, b: Tensor) => a.mul(b).sum();

testBoth("argnums as a number differentiates that argument only", async () => {
  const a = tensor([1, 2, 3]);
  const b = tensor([4, 5, 6]);
  const gb = grad(prod, { argnums: 1 })(a, b);
  assert.ok(!Array.isArray(gb), "a single argnum gives a single gradient");
  assert.deepEqual(gb.shape, [3]);
  assertClose(await gb.array(), [1, 2, 3], { label: "d/db" });
  const ga = grad(prod, { argnums: 0 })(a, b);
  assertClose(await ga.array(), [4, 5, 6], { label: "d/da" });
  const gDefault = grad(prod)(a, b);
  assertClose(await gDefault.array(), [4, 5, 6], { label: "default argnums" });
  release(a, b, ga, gb, gDefault);
});

testBoth("argnums as an array returns a tuple", async () => {
  const a = tensor([1, 2, 3]);
  const b = tensor([4, 5, 6]);
  const both = grad(prod, { argnums: [0, 1] })(a, b);
  assert.ok(Array.isArray(both));
  assert.equal(both.length, 2);
  assertClose(await both[0].array(), [4, 5, 6], { label: "d/da" });
  assertClose(await both[1].array(), [1, 2, 3], { label: "d/db" });

  const reversed = grad(prod, { argnums: [1, 0] })(a, b);
  assertClose(await reversed[0].array(), [1, 2, 3], { label: "[1,0][0]" });
  assertClose(await reversed[1].array(), [4, 5, 6], { label: "[1,0][1]" });

  const one = grad(prod, { argnums: [1] })(a, b);
  assert.ok(Array.isArray(one), "[1] gives a 1-tuple");
  assert.equal(one.length, 1);
  assertClose(await one[0].array(), [1, 2, 3], { label: "[1][0]" });

  const [value, vg] = valueAndGrad(prod, { argnums: [0, 1] })(a, b);
  assertClose(await value.item(), 32, { label: "value" });
  assert.equal(vg.length, 2);
  assertClose(await vg[1].array(), [1, 2, 3], { label: "valueAndGrad d/db" });
  release(a, b, both, reversed, one, value, vg);
});

testBoth("non-differentiated arguments may be numbers and strings", async () => {
  const f = (scale: number, x: Tensor, mode: string, y: Tensor) => {
    const s = mode === "double" ? scale * 2 : scale;
    return x.mul(s).mul(y).sum();
  };
  const x = tensor([1, -1]);
  const y = tensor([3, 4]);
  const gx = grad(f, { argnums: 1 })(3, x, "double", y);
  assertClose(await gx.array(), [18, 24], { label: "d/dx" });
  const [gx2, gy2] = grad(f, { argnums: [1, 3] })(0.5, x, "plain", y);
  assertClose(await gx2.array(), [1.5, 2], { label: "d/dx plain" });
  assertClose(await gy2.array(), [0.5, -0.5], { label: "d/dy plain" });
  // Non-differentiated tensor arguments are untouched.
  assertClose(await y.array(), [3, 4], { label: "y after" });
  release(x, y, gx, gx2, gy2);
});

// ---- hasAux -----------------------------------------------------------------

testBoth("valueAndGrad with hasAux returns [[value, aux], grads]", async () => {
  const f = (x: Tensor) => {
    const h = x.tanh();
    const doubled = x.mul(2);
    return [h.sum(), { h, doubled, note: "aux", n: 7 }] as const;
  };
  const x = tensor([0.5, -1]);
  const [[value, aux], g] = valueAndGrad(f, { hasAux: true })(x);
  const t = [Math.tanh(0.5), Math.tanh(-1)];
  assertClose(await value.item(), t[0] + t[1], { label: "value" });
  assertClose(await g.array(), t.map((v) => 1 - v * v), { label: "grad" });
  // Aux tensors are alive and correct after the call; other leaves pass through.
  assert.equal(aux.note, "aux");
  assert.equal(aux.n, 7);
  assert.ok(!aux.h.disposed && !aux.doubled.disposed);
  assertClose(await aux.h.array(), t, { label: "aux.h" });
  assertClose(await aux.doubled.array(), [1, -2], { label: "aux.doubled" });
  // ...and usable in further computation.
  const more = aux.h.add(aux.doubled);
  assertClose(await more.array(), [t[0] + 1, t[1] - 2], { label: "aux use" });
  release(x, value, aux, g, more);
});

testBoth("grad with hasAux returns [grads, aux]", async () => {
  const f = (p: { w: Tensor }, x: Tensor) => {
    const pred = x.mul(p.w);
    return [pred.pow(2).sum(), pred];
  };
  const p = { w: tensor([2, 3]) };
  const x = tensor([1, -1]);
  const [g, pred] = grad(f, { hasAux: true })(p, x);
  // pred = [2, -3]; d/dw sum((x·w)²) = 2·x²·w = [4, 6]
  assertClose(await g.w.array(), [4, 6], { label: "grad w" });
  assertClose(await pred.array(), [2, -3], { label: "aux pred" });
  const pred2 = pred.mul(pred);
  assertClose(await pred2.array(), [4, 9], { label: "aux use" });
  release(p, x, g, pred, pred2);
});

testBoth("hasAux does not leak: only value, aux and grads survive", () => {
  const f = (x: Tensor) => {
    const h = x.exp();
    return [h.sum(), h];
  };
  const x = tensor([0, 1]);
  const before = memoryStats().liveTensors;
  const [[value, aux], g] = valueAndGrad(f, { hasAux: true })(x);
  assert.equal(memoryStats().liveTensors, before + 3);
  release(value, aux, g);
  assert.equal(memoryStats().liveTensors, before);
  x.dispose();
});

testBoth("grad with hasAux: the aux may contain the value itself", async () => {
  // A common pattern: return the loss in the aux for logging.
  const f = (x: Tensor) => {
    const loss = x.pow(2).sum();
    return [loss, { loss, n: x.size }] as const;
  };
  const x = tensor([1, 2]);
  const [g, aux] = grad(f, { hasAux: true })(x);
  assertClose(await g.array(), [2, 4], { label: "grad" });
  assert.equal(aux.n, 2);
  assert.ok(!aux.loss.disposed, "grad disposed the aux tensor it returned");
  assertClose(await aux.loss.item(), 5, { label: "aux.loss" });
  release(x, g, aux);
});

testBoth("grad never disposes a tensor the caller owns", async () => {
  // A constant function returning a closed-over tensor: the gradient is 0,
  // and the caller's tensor must survive the call.
  const k = tensor(3);
  const x = tensor([1, 2]);
  const g = grad((_a: Tensor) => k)(x);
  assertClose(await g.array(), [0, 0], { label: "grad of a constant" });
  assert.ok(!k.disposed, "grad disposed the caller's tensor k");
  // Same when the returned tensor is a non-differentiated argument.
  const c = tensor(5);
  const g2 = grad((_a: Tensor, b: Tensor) => b, { argnums: 0 })(x, c);
  assertClose(await g2.array(), [0, 0], { label: "grad w.r.t. an unused argument" });
  assert.ok(!c.disposed, "grad disposed the caller's argument c");
  release(k, x, g, c, g2);
});

// ---- vjp --------------------------------------------------------------------

testBoth("vjp with a non-scalar output and a given cotangent", async () => {
  const x = tensor([[1, 2], [3, 4]]);
  const [y, pullback] = vjp((a: Tensor) => a.mul(a).add(a), x);
  assert.deepEqual(y.shape, [2, 2]);
  assertClose(await y.array(), [[2, 6], [12, 20]], { label: "y" });
  const c = tensor([[1, 0.5], [-1, 2]]);
  const cts = pullback(c);
  assert.equal(cts.length, 1);
  const dx = cts[0] as Tensor;
  assert.deepEqual(dx.shape, [2, 2]);
  // c · (2x + 1)
  assertClose(await dx.array(), [[3, 2.5], [-7, 18]], { label: "dx" });
  // Calling it again gives the same answer.
  const again = pullback(c)[0] as Tensor;
  assertClose(await again.array(), [[3, 2.5], [-7, 18]], { label: "again" });
  pullback.dispose();
  release(x, y, c, dx, again);
});

testBoth("vjp of a function returning one tensor twice sums both cotangents", async () => {
  const x = tensor([1, 2]);
  for (
    const f of [(u: Tensor) => [u, u], (u: Tensor) => {
      const v = u.mul(1);
      return [v, v];
    }]
  ) {
    const [ys, pullback] = vjp(f, x);
    const [a, b] = [tensor([10, 20]), tensor([100, 200])];
    const [dx] = pullback([a, b]) as Tensor[];
    assert.deepEqual(await dx.array(), [110, 220], "the second cotangent was dropped");
    pullback.dispose();
    release(...(ys as Tensor[]), a, b, dx);
  }
  release(x);
});

testBoth("vjp with several primals and a tree output", async () => {
  const x = tensor([0.5, -1]);
  const w = tensor([2, 3]);
  const f = (a: Tensor, b: Tensor) => ({
    prod: a.mul(b),
    rest: [a.exp(), b.sum()],
  });
  const [out, pullback] = vjp(f, x, w);
  assertClose(await out.prod.array(), [1, -3], { label: "prod" });
  assertClose(await out.rest[1].item(), 5, { label: "sum" });
  const ct = {
    prod: tensor([1, 2]),
    rest: [tensor([10, 20]), tensor(4)],
  };
  const [dx, dw] = pullback(ct) as Tensor[];
  // dx = ct.prod·w + ct.rest[0]·exp(x); dw = ct.prod·x + ct.rest[1]
  assertClose(
    await dx.array(),
    [1 * 2 + 10 * Math.exp(0.5), 2 * 3 + 20 * Math.exp(-1)],
    { label: "dx", rtol: 1e-4 },
  );
  assertClose(await dw.array(), [0.5 + 4, -2 + 4], { label: "dw" });
  pullback.dispose();
  release(x, w, out, ct, dx, dw);
});

testBoth("pullback.dispose() releases the residuals and is idempotent", () => {
  const x = tensor([1, 2, 3]);
  const before = memoryStats().liveTensors;
  const [y, pullback] = vjp((a: Tensor) => a.tanh().mul(a).exp(), x);
  assert.ok(memoryStats().liveTensors > before + 1, "residuals are kept");
  pullback.dispose();
  assert.equal(memoryStats().liveTensors, before + 1, "only the output left");
  pullback.dispose(); // idempotent
  assert.equal(memoryStats().liveTensors, before + 1);
  const c = tensor([1, 1, 1]);
  assert.throws(
    () => pullback(c),
    (e) => e instanceof ReferenceError && /dispose/.test(e.message),
  );
  assert.ok(!y.disposed, "the output survives the pullback's dispose");
  release(x, y, c);
});

testBoth("vjp pullback supports `using`", () => {
  const x = tensor([1, 2]);
  const before = memoryStats().liveTensors;
  {
    const [y, pullback] = vjp((a: Tensor) => a.mul(a).sum(), x);
    using _pb = pullback;
    y.dispose();
  }
  assert.equal(memoryStats().liveTensors, before);
  x.dispose();
});

// ---- fan-out and repeated arguments -----------------------------------------

testBoth("a value used several times gets the sum of its gradients", async () => {
  const x = tensor([-2, 0, 0.5, 3]);
  const g = grad((a: Tensor) => a.mul(a).add(a).sum())(x);
  assertClose(await g.array(), [-3, 1, 2, 7], { label: "x*x + x" });
  // x used four times through different paths: x + x·x + x·2 + exp(x)
  const g2 = grad((a: Tensor) => a.add(a.mul(a)).add(a.mul(2)).add(a.exp()).sum())(x);
  assertClose(
    await g2.array(),
    [-2, 0, 0.5, 3].map((v) => 1 + 2 * v + 2 + Math.exp(v)),
    { label: "four uses", rtol: 1e-4 },
  );
  // An intermediate used twice.
  const g3 = grad((a: Tensor) => {
    const t = a.tanh();
    return t.mul(t).sum();
  })(x);
  assertClose(
    await g3.array(),
    [-2, 0, 0.5, 3].map((v) => {
      const t = Math.tanh(v);
      return 2 * t * (1 - t * t);
    }),
    { label: "t*t" },
  );
  release(x, g, g2, g3);
});

testBoth("the same tensor passed as two arguments", async () => {
  const x = tensor([1, 2, 3]);
  const [ga, gb] = grad(prod, { argnums: [0, 1] })(x, x);
  assertClose(await ga.array(), [1, 2, 3], { label: "d/da" });
  assertClose(await gb.array(), [1, 2, 3], { label: "d/db" });
  assert.notEqual(ga, gb, "two gradient tensors, not one object");
  assert.notEqual(ga, x);
  const g0 = grad(prod)(x, x);
  assertClose(await g0.array(), [1, 2, 3], { label: "argnums 0 only" });
  // Same tensor twice inside one tree.
  const gt = grad((p: { a: Tensor; b: Tensor }) => p.a.mul(p.b).sum())({
    a: x,
    b: x,
  });
  assertClose(await gt.a.array(), [1, 2, 3], { label: "tree a" });
  assertClose(await gt.b.array(), [1, 2, 3], { label: "tree b" });
  // Disposing one gradient leaves the other and x intact.
  ga.dispose();
  assertClose(await gb.array(), [1, 2, 3], { label: "gb after ga.dispose" });
  assertClose(await x.array(), [1, 2, 3], { label: "x after" });
  release(x, gb, g0, gt);
});

testBoth("an unused argument gets a zero gradient", async () => {
  const x = tensor([1, 2]);
  const y = tensor([[3, 4]]);
  const [gx, gy] = grad((a: Tensor, _b: Tensor) => a.sum(), {
    argnums: [0, 1],
  })(x, y);
  assertClose(await gx.array(), [1, 1], { label: "gx" });
  assert.deepEqual(gy.shape, [1, 2]);
  assertClose(await gy.array(), [[0, 0]], { label: "gy" });
  release(x, y, gx, gy);
});

// ---- broadcasting -------------------------------------------------------------

testBoth("broadcasting is undone in gradients", async () => {
  const x = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
  const w = tensor([[1, 0, -1], [2, 1, 0], [0, 3, 1], [1, 1, 1]]);
  const b = tensor([0.5, -0.5, 1]);
  // f(b) = sum((x + b) · w): df/db_j = Σ_i w_ij
  const gb = grad((bias: Tensor) => x.add(bias).mul(w).sum())(b);
  assert.deepEqual(gb.shape, [3]);
  assertClose(await gb.array(), [4, 5, 1], { label: "bias [3]" });
  // A nonlinear version: f(b) = sum((x + b)²) → 2 Σ_i (x_ij + b_j)
  const gb2 = grad((bias: Tensor) => x.add(bias).pow(2).sum())(b);
  assertClose(
    await gb2.array(),
    [
      2 * (22 + 4 * 0.5),
      2 * (26 + 4 * -0.5),
      2 * (30 + 4 * 1),
    ],
    { label: "bias [3], squared" },
  );
  // A [1,3] bias (a size-1 leading axis).
  const b13 = tensor([[0.5, -0.5, 1]]);
  const gb13 = grad((bias: Tensor) => bias.add(x).mul(w).sum())(b13);
  assert.deepEqual(gb13.shape, [1, 3]);
  assertClose(await gb13.array(), [[4, 5, 1]], { label: "bias [1,3]" });
  // A [4,1] column broadcast along rows.
  const col = tensor([[1], [2], [3], [4]]);
  const gcol = grad((c: Tensor) => x.mul(c).sum())(col);
  assert.deepEqual(gcol.shape, [4, 1]);
  assertClose(await gcol.array(), [[6], [15], [24], [33]], { label: "[4,1]" });
  release(x, w, b, gb, gb2, b13, gb13, col, gcol);
});

testBoth("scalar-shaped parameters get a reduced gradient", async () => {
  const x = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
  const s11 = tensor([[2]]);
  const g11 = grad((s: Tensor) => x.mul(s).sum())(s11);
  assert.deepEqual(g11.shape, [1, 1]);
  assertClose(await g11.array(), [[78]], { label: "[1,1]" });
  const s0 = tensor(2);
  const g0 = grad((s: Tensor) => s.mul(x).pow(2).sum())(s0);
  // d/ds Σ (s x)² = 2 s Σ x² = 4 · 650
  assert.deepEqual(g0.shape, []);
  assertClose(await g0.item(), 2600, { label: "[]" });
  // Both at once: gradient w.r.t. x is not reduced.
  const [gx, gs] = grad((a: Tensor, s: Tensor) => a.mul(s).sum(), {
    argnums: [0, 1],
  })(x, s11);
  assert.deepEqual(gx.shape, [4, 3]);
  assertClose(await gx.data(), new Array(12).fill(2), { label: "gx" });
  assertClose(await gs.array(), [[78]], { label: "gs" });
  release(x, s11, g11, s0, g0, gx, gs);
});

// ---- higher order -------------------------------------------------------------

testBoth("grad(grad(f)) of tanh is -2·tanh·(1 - tanh²)", async () => {
  const f = (x: Tensor) => x.tanh().sum();
  const d2 = grad((x: Tensor) => grad(f)(x).sum());
  const xs = [-1.5, -0.2, 0, 0.5, 2];
  const x = tensor(xs);
  const g = d2(x);
  assertClose(
    await g.array(),
    xs.map((v) => {
      const t = Math.tanh(v);
      return -2 * t * (1 - t * t);
    }),
    { label: "tanh''", atol: 1e-5 },
  );
  release(x, g);
});

testBoth("grad(grad(f)) of x³ is 6x", async () => {
  const f = (x: Tensor) => x.pow(3).sum();
  const xs = [-2, -0.5, 0.5, 1, 3];
  const x = tensor(xs);
  const g1 = grad(f)(x);
  assertClose(await g1.array(), xs.map((v) => 3 * v * v), { label: "3x²" });
  const g2 = grad((a: Tensor) => grad(f)(a).sum())(x);
  assertClose(await g2.array(), xs.map((v) => 6 * v), { label: "6x" });
  release(x, g1, g2);
});

testBoth("mixed partial derivative of a function of two variables", async () => {
  // f(x, y) = Σ tanh(x·y); ∂f/∂x = y(1 - t²); ∂²f/∂y∂x = (1 - t²)(1 - 2xyt)
  const f = (x: Tensor, y: Tensor) => x.mul(y).tanh().sum();
  const dfdx = grad(f, { argnums: 0 });
  const mixed = grad((x: Tensor, y: Tensor) => dfdx(x, y).sum(), {
    argnums: 1,
  });
  const xs = [0.3, -0.7, 1.2];
  const ys = [0.5, 0.8, -0.4];
  const x = tensor(xs);
  const y = tensor(ys);
  const g = mixed(x, y);
  const expected = xs.map((xv, i) => {
    const t = Math.tanh(xv * ys[i]);
    return (1 - t * t) * (1 - 2 * xv * ys[i] * t);
  });
  assertClose(await g.array(), expected, { label: "∂²f/∂y∂x" });
  // And the other order gives the same (symmetry of second derivatives).
  const dfdy = grad(f, { argnums: 1 });
  const mixed2 = grad((a: Tensor, b: Tensor) => dfdy(a, b).sum(), {
    argnums: 0,
  });
  const g2 = mixed2(x, y);
  assertClose(await g2.array(), expected, { label: "∂²f/∂x∂y" });
  // A polynomial: f = Σ x²y → ∂²f/∂y∂x = 2x
  const poly = (a: Tensor, b: Tensor) => a.mul(a).mul(b).sum();
  const g3 = grad(
    (a: Tensor, b: Tensor) => grad(poly)(a, b).sum(),
    { argnums: 1 },
  )(x, y);
  assertClose(await g3.array(), xs.map((v) => 2 * v), { label: "2x" });
  release(x, y, g, g2, g3);
});

testBoth("third derivative of x⁴ is 24x", async () => {
  const f = (x: Tensor) => x.pow(4).sum();
  const d1 = grad(f);
  const d2 = grad((x: Tensor) => d1(x).sum());
  const d3 = grad((x: Tensor) => d2(x).sum());
  const xs = [-1.5, 0.5, 1, 2];
  const x = tensor(xs);
  const g2 = d2(x);
  assertClose(await g2.array(), xs.map((v) => 12 * v * v), { label: "12x²" });
  const g3 = d3(x);
  assertClose(await g3.array(), xs.map((v) => 24 * v), { label: "24x" });
  release(x, g2, g3);
});

testBoth("nested grad releases every temporary", () => {
  const f = (x: Tensor) => x.tanh().mul(x).sum();
  const d2 = grad((x: Tensor) => grad(f)(x).sum());
  const x = tensor([0.5, -1]);
  const before = memoryStats().liveTensors;
  const g = d2(x);
  assert.equal(memoryStats().liveTensors, before + 1);
  g.dispose();
  x.dispose();
});

// ---- stopGradient -------------------------------------------------------------

testBoth("stopGradient blocks the gradient but keeps the value", async () => {
  const x = tensor([3, -1, 0.5]);
  const s = stopGradient(x);
  assertClose(await s.array(), [3, -1, 0.5], { label: "value" });
  const g = grad((a: Tensor) => a.mul(stopGradient(a)).sum())(x);
  assertClose(await g.array(), [3, -1, 0.5], { label: "x·sg(x)" });
  const g2 = grad((a: Tensor) => stopGradient(a.mul(2)).add(a).sum())(x);
  assertClose(await g2.array(), [1, 1, 1], { label: "sg(2x) + x" });
  const g3 = grad((a: Tensor) => stopGradient(a).exp().sum())(x);
  assertClose(await g3.array(), [0, 0, 0], { label: "exp(sg(x))" });
  // Disposing the stopGradient view leaves x alive.
  s.dispose();
  assertClose(await x.array(), [3, -1, 0.5], { label: "x after" });
  release(x, g, g2, g3);
});

// ---- sgd ----------------------------------------------------------------------

testBoth("sgd returns a new tree and leaves params and grads unchanged", async () => {
  const params = {
    layers: [
      { w: tensor([[1, 2], [3, 4]]), b: tensor([0.5, -0.5]) },
      { w: tensor([[1], [-1]]), b: tensor([0]) },
    ],
  };
  const grads = {
    layers: [
      { w: tensor([[10, 20], [-10, 0]]), b: tensor([1, 1]) },
      { w: tensor([[2], [4]]), b: tensor([-3]) },
    ],
  };
  const next = sgd(params, grads, { lr: 0.1 });
  assert.notEqual(next, params);
  assert.ok(Array.isArray(next.layers));
  assert.equal(next.layers.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.notEqual(next.layers[i].w, params.layers[i].w);
    assert.notEqual(next.layers[i].b, params.layers[i].b);
    assert.deepEqual(next.layers[i].w.shape, params.layers[i].w.shape);
    assert.deepEqual(next.layers[i].b.shape, params.layers[i].b.shape);
  }
  assertClose(await next.layers[0].w.array(), [[0, 0], [4, 4]], { label: "w0" });
  assertClose(await next.layers[0].b.array(), [0.4, -0.6], { label: "b0" });
  assertClose(await next.layers[1].w.array(), [[0.8], [-1.4]], { label: "w1" });
  assertClose(await next.layers[1].b.array(), [0.3], { label: "b1" });
  // The old parameters and the grads still read their original values.
  assertClose(await params.layers[0].w.array(), [[1, 2], [3, 4]], {
    label: "old w0",
  });
  assertClose(await params.layers[0].b.array(), [0.5, -0.5], {
    label: "old b0",
  });
  assertClose(await params.layers[1].w.array(), [[1], [-1]], {
    label: "old w1",
  });
  assertClose(await params.layers[1].b.array(), [0], { label: "old b1" });
  assertClose(await grads.layers[0].w.array(), [[10, 20], [-10, 0]], {
    label: "grads w0",
  });
  // Disposing the old tree does not affect the new one.
  release(params, grads);
  assertClose(await next.layers[0].w.array(), [[0, 0], [4, 4]], {
    label: "w0 after old disposed",
  });
  release(next);
});

testBoth("sgd creates only the new parameters", () => {
  const params = { w: tensor([1, 2]), b: tensor(3) };
  const grads = { w: tensor([1, 1]), b: tensor(1) };
  const before = memoryStats().liveTensors;
  const next = sgd(params, grads, { lr: 0.5 });
  assert.equal(memoryStats().liveTensors, before + 2);
  release(params, grads, next);
});

testBoth("sgd on gradients from grad trains a linear model", async () => {
  const x = tensor([[1, 0], [0, 1], [1, 1]]);
  const y = tensor([[2], [-1], [1]]);
  let p = { w: tensor([[0], [0]]), b: tensor([0]) };
  const loss = (q: typeof p) => x.matmul(q.w).add(q.b).sub(y).pow(2).mean();
  const first = loss(p);
  const l0 = await first.item();
  first.dispose();
  for (let i = 0; i < 30; i++) {
    const g = grad(loss)(p);
    const next = sgd(p, g, { lr: 0.3 });
    release(p, g);
    p = next;
  }
  const last = loss(p);
  const l1 = await last.item();
  assert.ok(l1 < l0 / 10, `loss went from ${l0} to ${l1}`);
  release(x, y, p, last);
});

// ---- checkGrads ---------------------------------------------------------------

type Mlp = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };
const mlpLoss = (p: Mlp, x: Tensor, y: Tensor) =>
  x.matmul(p.w1).add(p.b1).tanh().matmul(p.w2).add(p.b2).sub(y).pow(2).mean();

function mlpSetup() {
  const params: Mlp = {
    w1: randomNormal([2, 3], { seed: 1, std: 0.8 }),
    b1: randomNormal([3], { seed: 2, std: 0.3 }),
    w2: randomNormal([3, 1], { seed: 3, std: 0.8 }),
    b2: randomNormal([1], { seed: 4, std: 0.3 }),
  };
  const x = tensor([[0.5, -1], [1, 0.25], [-0.3, 0.8], [0, 1]]);
  const y = tensor([[1], [-1], [0.5], [0]]);
  return { params, x, y };
}

testBoth("checkGrads passes on a 2-layer MLP loss (elements mode)", async () => {
  const { params, x, y } = mlpSetup();
  const before = memoryStats().liveTensors;
  await checkGrads(mlpLoss, [params, x, y], { mode: "elements" });
  // All arguments, including the data.
  await checkGrads(mlpLoss, [params, x, y], { argnums: [0, 1] });
  assert.equal(memoryStats().liveTensors, before, "checkGrads leaks nothing");
  release(params, x, y);
});

testBoth("checkGrads passes on a 2-layer MLP loss (direction mode)", async () => {
  const { params, x, y } = mlpSetup();
  await checkGrads(mlpLoss, [params, x, y], { argnums: 0, mode: "direction" });
  await checkGrads(mlpLoss, [params, x, y], {
    argnums: 0,
    mode: "direction",
    seed: 5,
  });
  release(params, x, y);
});

testBoth("checkGrads handles a non-scalar output", async () => {
  const x = tensor([[0.2, -0.4], [1, 0.5]]);
  const w = tensor([[1, -1], [0.5, 2]]);
  await checkGrads((a: Tensor, b: Tensor) => a.matmul(b).tanh(), [x, w]);
  release(x, w);
});

testBoth("checkGrads throws a GradCheckError for a wrong gradient", async () => {
  // Reverse mode sees x·stopGradient(x) as having gradient x; the function's
  // true derivative (what central differences measure) is 2x.
  const f = (x: Tensor) => x.mul(stopGradient(x)).sum();
  const x = tensor([1, 2, 3]);
  const before = memoryStats().liveTensors;
  await assert.rejects(
    () => checkGrads(f, [x]),
    (e) => {
      assert.ok(e instanceof GradCheckError, `got ${e}`);
      assert.equal(e.name, "GradCheckError");
      assert.match(e.message, /argument 0/);
      assert.match(e.message, /central difference/);
      assert.match(e.message, /reverse mode/);
      assert.equal(e.failures.length, 3);
      // The output is a scalar, so the reported values are the gradients
      // themselves: x (reverse mode) against 2x (central differences).
      for (const [i, fail] of e.failures.entries()) {
        assert.equal(fail.argnum, 0);
        assert.equal(fail.path, "");
        assert.equal(fail.where, `[${i}]`);
        assertClose(fail.got, i + 1, { label: "reverse mode" });
        assertClose(fail.expected, 2 * (i + 1), { label: "central difference", rtol: 1e-2 });
      }
      return true;
    },
  );
  await assert.rejects(
    () => checkGrads(f, [x], { mode: "direction" }),
    (e) => e instanceof GradCheckError && /direction/.test(e.message),
  );
  assert.equal(memoryStats().liveTensors, before, "no leak on failure");
  x.dispose();
});

testBoth("a GradCheckError names the argument and the tree path", async () => {
  const f = (scale: Tensor, p: { layer: { w: Tensor } }) =>
    p.layer.w.mul(stopGradient(p.layer.w)).mul(scale).sum();
  const scale = tensor(1);
  const p = { layer: { w: tensor([[1, 2], [3, 4]]) } };
  await assert.rejects(
    () => checkGrads(f, [scale, p], { argnums: 1 }),
    (e) => {
      assert.ok(e instanceof GradCheckError);
      assert.match(e.message, /argument 1 'layer\.w'/);
      assert.match(e.message, /\[1,0\]/, "names the element");
      assert.ok(e.failures.every((fl) => fl.path === "layer.w"));
      return true;
    },
  );
  release(scale, p);
});

// ---- printTrace -------------------------------------------------------------

testBoth("printTrace lists the primitives", () => {
  const w = tensor([[1, 2], [3, 4]]);
  const x = tensor([[0.5, -0.5]]);
  const before = memoryStats().liveTensors;
  const text = printTrace(
    (a: Tensor, b: Tensor) => a.matmul(b).tanh().exp().sum(),
    x,
    w,
  );
  assert.equal(typeof text, "string");
  for (const prim of ["matmul", "tanh", "exp", "sum"]) {
    assert.match(text, new RegExp(`\\b${prim}\\b`), `${prim} in:\n${text}`);
  }
  assert.match(text, /f32\[1,2\]/, "shapes are printed");
  assert.equal(memoryStats().liveTensors, before, "printTrace leaks nothing");
  release(w, x);
});

testBoth("printTrace never disposes a tensor the caller owns", () => {
  const k = tensor([7, 7]);
  const x = tensor([1, 2]);
  const text = printTrace((_a: Tensor) => k, x);
  assert.equal(typeof text, "string");
  assert.ok(!k.disposed, "printTrace disposed the caller's tensor k returned by fn");
  release(k, x);
});
