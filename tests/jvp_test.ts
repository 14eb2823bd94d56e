/**
 * The `jvp` transform and `hvp`, on every backend, against references
 * computed without them: central differences of the function along the
 * tangent, the double-VJP identity (reverse mode's `⟨Jᵀu, v⟩`), exact
 * Hessians of quadratics, and the nested-perturbation example that a
 * confused implementation gets wrong.
 * @module
 */

import assert from "node:assert/strict";
import {
  grad,
  hessian,
  hvp,
  jacfwd,
  jacrev,
  jvp,
  memoryStats,
  Tensor,
  tensor,
  vjp,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

/** Functions of one float32 argument (composites, broadcasting, a gather, a reduction). */
const FUNCTIONS: Record<string, { fn: (x: Tensor) => Tensor; x: number[][] }> = {
  "tanh · x, summed over an axis": {
    fn: (x) => x.tanh().mul(x).sum(1),
    x: [[0.1, -0.5, 2], [0.7, 0.3, -1.2]],
  },
  "broadcast bias, softmax": {
    fn: (x) => x.add(tensor([0.5, -0.25, 1])).softmax(-1),
    x: [[0.1, -0.5, 2], [0.7, 0.3, -1.2]],
  },
  "matmul with itself transposed, relu": {
    fn: (x) => x.matmul(x.transpose()).sub(0.2).relu(),
    x: [[0.1, -0.5, 2], [0.7, 0.3, -1.2]],
  },
  "take rows, logsumexp": {
    fn: (x) => x.take(tensor([1, 0, 1], { dtype: "int32" }), 0).logsumexp(1),
    x: [[0.1, -0.5, 2], [0.7, 0.3, -1.2]],
  },
  "maximum, prod, cumsum": {
    fn: (x) => x.maximum(0.2).prod(0).cumsum(),
    x: [[0.9, -0.5, 2], [0.7, 0.3, -1.2]],
  },
};

const V = [[0.3, -0.2, 0.5], [-0.4, 0.1, 0.25]];
const U = (n: number) => Array.from({ length: n }, (_, i) => ((i * 7) % 5) / 5 - 0.4);

for (const [name, { fn, x }] of Object.entries(FUNCTIONS)) {
  testBoth(`jvp of ${name}: central differences and the double-VJP identity`, async () => {
    const [y, dy] = jvp(fn, [tensor(x)], [tensor(V)]);
    assertClose(await y.data(), await fn(tensor(x)).data(), { label: `${name}: value` });
    // Central differences along v.
    const eps = 1e-3;
    const shifted = (s: number) => fn(tensor(x).add(tensor(V).mul(s * eps)));
    const central = shifted(1).sub(shifted(-1)).div(2 * eps);
    assertClose(await dy.data(), await central.data(), {
      atol: 5e-3,
      rtol: 1e-2,
      label: `${name}: jvp vs central differences`,
    });
    // ⟨u, J v⟩ = ⟨Jᵀ u, v⟩ with reverse mode.
    const [out, pullback] = vjp(fn, tensor(x));
    const u = tensor(U(out.size)).reshape(out.shape);
    const [ju] = pullback(u) as [Tensor];
    const reverse = await ju.mul(tensor(V)).sum().item();
    const forward = await dy.mul(u).sum().item();
    assert.ok(
      Math.abs(forward - reverse) < 1e-4 + 1e-3 * Math.abs(reverse),
      `${forward} vs ${reverse}`,
    );
    pullback.dispose();
  });
}

testBoth("jvp on pytrees, with a symbolic zero tangent and an integer argument", async () => {
  const f = (p: { w: Tensor; b: Tensor }, x: Tensor, ids: Tensor) =>
    x.matmul(p.w).add(p.b).take(ids, 1).tanh();
  const p = { w: tensor([[0.5, -1], [0.25, 2]]), b: tensor([0.1, -0.2]) };
  const x = tensor([[1, 2], [3, -1]]);
  const ids = tensor([1, 1, 0], { dtype: "int32" });
  // Only w moves: the tangent of b and x is a symbolic zero, ids takes null.
  const dw = tensor([[1, 0], [0, 1]]);
  const [, dy] = jvp(f, [p, x, ids], [{ w: dw, b: null }, null, null]);
  const eps = 1e-3;
  const at = (s: number) => f({ w: p.w.add(dw.mul(s * eps)), b: p.b }, x, ids);
  assertClose(await dy.data(), await at(1).sub(at(-1)).div(2 * eps).data(), {
    atol: 5e-3,
    rtol: 1e-2,
  });
  // No tangent at all: the output tangent is zeros.
  const [, none] = jvp(f, [p, x, ids], [{ w: null, b: null }, null, null]);
  assert.deepEqual(Array.from(await none.data()), [0, 0, 0, 0, 0, 0]);
});

testBoth(
  "grad and jvp of an inner jvp whose rules use the output (tanh, exp) match central differences",
  async () => {
    // The inner rules read the equation's output (tanh' = 1 - out², exp' = out):
    // the outer level must already know that output when the rule's ops run.
    const v = tensor([1, 2, -0.5]);
    const x0 = [0.5, -1, 0.25];
    for (
      const [name, f] of [["tanh", (y: Tensor) => y.tanh()], [
        "exp",
        (y: Tensor) => y.exp(),
      ]] as const
    ) {
      const inner = (x: Tensor) => (jvp(f, [x], [v])[1] as Tensor).sum();
      const eps = 1e-3;
      const expected: number[] = [];
      for (let i = 0; i < 3; i++) {
        const [p, m] = [[...x0], [...x0]];
        p[i] += eps;
        m[i] -= eps;
        expected.push(
          ((await inner(tensor(p)).item()) - (await inner(tensor(m)).item())) / (2 * eps),
        );
      }
      const g = grad(inner)(tensor(x0));
      assertClose(await g.data(), expected, {
        atol: 2e-3,
        rtol: 2e-3,
        label: `grad of jvp of ${name}`,
      });
      const basis = [tensor([1, 0, 0]), tensor([0, 1, 0]), tensor([0, 0, 1])];
      const forward = await Promise.all(
        basis.map(async (e) => await (jvp(inner, [tensor(x0)], [e])[1] as Tensor).item()),
      );
      assertClose(forward, expected, { atol: 2e-3, rtol: 2e-3, label: `jvp of jvp of ${name}` });
    }
  },
);

testBoth("nested jvp does not confuse perturbations: D(x ↦ x·D(y ↦ x + y)(1))(1) = 1", async () => {
  const inner = (x: Tensor) => {
    const [, d] = jvp((y: Tensor) => x.add(y), [tensor(1)], [tensor(1)]);
    return x.mul(d);
  };
  const [, d] = jvp(inner, [tensor(1)], [tensor(1)]);
  assert.equal(await d.item(), 1); // a confused implementation gives 2
  // Second derivatives by forward over forward: d²/dx² x³ at 2 is 12.
  const cube = (x: Tensor) => x.pow(3);
  const first = (x: Tensor) => jvp(cube, [x], [tensor(1)])[1];
  const [, second] = jvp(first, [tensor(2)], [tensor(1)]);
  assertClose([await second.item()], [12], { rtol: 1e-5 });
});

testBoth("hvp (forward over reverse) and grad of jvp equal exact second derivatives", async () => {
  // f(x) = ½ xᵀAx + sin(x₀): H = (A + Aᵀ)/2 + diag(-sin x₀, 0, 0).
  const A = [[2, 1, 0], [1, 3, -1], [0, -1, 4]];
  const f = (x: Tensor) =>
    x.reshape([1, 3]).matmul(tensor(A)).matmul(x.reshape([3, 1])).sum().mul(0.5)
      .add(x.get(0).sin());
  const x = [0.5, -1, 2];
  const v = [1, 0.5, -2];
  const [hv] = hvp(f, [tensor(x)], [tensor(v)]) as [Tensor];
  const exact = A.map((row, i) =>
    row.reduce((s, a, j) => s + a * v[j], 0) - (i === 0 ? Math.sin(x[0]) * v[0] : 0)
  );
  assertClose(await hv.data(), exact, { rtol: 1e-5, label: "hvp" });
  // Reverse over forward: the gradient of x ↦ ⟨∇f(x), v⟩ computed with jvp.
  const directional = (x: Tensor) => jvp(f, [x], [tensor(v)])[1];
  assertClose(await grad(directional)(tensor(x)).data(), exact, { rtol: 1e-5, label: "grad(jvp)" });
});

testBoth("jvp releases everything but its results, and refuses bad input clearly", async () => {
  const f = (x: Tensor) => x.exp().mul(x).sum();
  const x = tensor([1, 2, 3]);
  const v = tensor([1, 1, 1]);
  const [short, ints, one] = [tensor([1, 1]), tensor([1], { dtype: "int32" }), tensor([1])];
  const before = memoryStats().liveTensors;
  for (let i = 0; i < 3; i++) {
    const [y, dy] = jvp(f, [x], [v]);
    y.dispose();
    dy.dispose();
  }
  assert.equal(memoryStats().liveTensors, before);
  // A passed-through input gets its own handle: disposing the results leaves x and v alive.
  const [same, dsame] = jvp((a: Tensor) => a, [x], [v]);
  assert.notEqual(same, x);
  assert.notEqual(dsame, v);
  same.dispose();
  dsame.dispose();
  assert.deepEqual(Array.from(await x.data()), [1, 2, 3]);
  assert.throws(
    () => jvp(f, [x], [short]),
    (e: Error) =>
      e instanceof TypeError &&
      /^jvp: the tangent of primal 0 has shape \[2\], its primal \[3\]/.test(e.message),
  );
  assert.throws(
    () => jvp(f, [x], []),
    (e: Error) => e instanceof TypeError && /1 primal\(s\) but 0/.test(e.message),
  );
  assert.throws(
    () => jvp(f, [ints], [one]),
    (e: Error) => e instanceof TypeError && /dtype int32/.test(e.message),
  );
  assert.throws(
    () => jvp((a: Tensor) => a.sum().item() as unknown as Tensor, [x], [v]),
    (e: Error) => e instanceof TypeError && /Promise/.test(e.message),
  );
  assert.throws(() => jvp(f, [x], ["a"]), TypeError);
  assert.equal(memoryStats().liveTensors, before);
});

testBoth(
  "jacfwd equals jacrev and central differences; hessian of a quadratic is exact",
  async () => {
    const W = tensor([[0.5, -1, 0.25], [2, 0.1, -0.3]]);
    const fns: [string, (x: Tensor, s: Tensor) => Tensor][] = [
      ["tanh of a matmul", (x, s) => W.matmul(x).tanh().mul(s)],
      ["softmax", (x, s) => x.mul(s).softmax()],
      ["a reduction to a scalar", (x, s) => x.exp().sum().mul(s)],
    ];
    const x = tensor([0.3, -0.8, 1.1]);
    const s = tensor(1.5);
    for (const [name, f] of fns) {
      const forward = jacfwd(f)(x, s);
      const reverse = jacrev(f)(x, s);
      assert.deepEqual(forward.shape, reverse.shape, name);
      assertClose(await forward.data(), await reverse.data(), { rtol: 1e-5, label: name });
      // Column j by central differences.
      const y = f(x, s);
      const eps = 1e-3;
      const columns: number[][] = [];
      for (let j = 0; j < x.size; j++) {
        const e = tensor([0, 1, 2].map((k) => (k === j ? eps : 0)));
        columns.push(Array.from(await f(x.add(e), s).sub(f(x.sub(e), s)).div(2 * eps).data()));
      }
      const central = Array.from({ length: y.size }, (_, i) => columns.map((c) => c[i]));
      assertClose(await forward.data(), central.flat(), { atol: 5e-3, rtol: 1e-2, label: name });
    }
    // argnums: the Jacobian with respect to the scalar argument.
    const ds = jacfwd(fns[0][1], { argnums: 1 })(x, s);
    assert.deepEqual(ds.shape, [2]);
    assertClose(await ds.data(), await W.matmul(x).tanh().data(), { rtol: 1e-5 });
    // f(x) = ½ xᵀAx with A symmetric: the Hessian is A, exactly.
    const A = tensor([[2, 1, 0], [1, 3, -1], [0, -1, 4]]);
    const quadratic = (z: Tensor) =>
      z.reshape([1, 3]).matmul(A).matmul(z.reshape([3, 1])).sum().mul(0.5);
    assertClose(await hessian(quadratic)(x).data(), await A.data(), { atol: 1e-6, rtol: 1e-6 });
    assert.throws(() => jacfwd(fns[0][1], { argnums: 2 })(x, s), RangeError);
    assert.throws(() => jacrev(fns[0][1])(tensor([1], { dtype: "int32" }), s), TypeError);
  },
);

testBoth("Jacobians of empty inputs or outputs are empty, and leave nothing behind", async () => {
  const f = (x: Tensor) => x.sum().mul(tensor([1, 2]));
  const empty = tensor([]);
  const before = memoryStats().liveTensors;
  const forward = jacfwd(f)(empty);
  const reverse = jacrev((x: Tensor) => x.mul(2))(empty);
  assert.deepEqual(forward.shape, [2, 0]);
  assert.deepEqual(reverse.shape, [0, 0]);
  assert.equal((await forward.data()).length, 0);
  forward.dispose();
  reverse.dispose();
  assert.equal(memoryStats().liveTensors, before);
  const x = tensor([1, 2, 3]);
  const start = memoryStats().liveTensors;
  jacfwd(f)(x).dispose();
  jacrev(f)(x).dispose();
  hessian((z: Tensor) => z.pow(3).sum())(x).dispose();
  assert.equal(memoryStats().liveTensors, start, "Jacobians of [3] leave nothing behind");
});

testBoth("jacfwd and hessian close over pytree arguments they do not differentiate", async () => {
  const f = (x: Tensor, p: { w: Tensor; b: Tensor }) => x.mul(p.w).add(p.b).tanh().mul(x.sum());
  const p = { w: tensor([0.5, -1]), b: tensor([0.1, 0.2]) };
  const x = tensor([0.3, 0.7]);
  const forward = jacfwd(f)(x, p);
  const reverse = jacrev(f)(x, p);
  assertClose(await forward.data(), await reverse.data(), {
    atol: 1e-6,
    label: "jacfwd vs jacrev",
  });
  const h = hessian((z: Tensor, q: { w: Tensor; b: Tensor }) => f(z, q).sum())(x, p);
  assert.deepEqual(h.shape, [2, 2]);
  const hv = await h.array() as number[][];
  assertClose(hv[0][1], hv[1][0], { atol: 1e-5, label: "the Hessian is symmetric" });
});

testBoth("hvp holds arguments without float tensors fixed (integer indices)", async () => {
  const f = (w: Tensor, x: Tensor, ids: Tensor) => w.mul(x).take(ids, 0).square().sum();
  const [w, x, ids] = [tensor([1, 2, 3]), tensor([1, 0.5, 2]), tensor([0, 2], { dtype: "int32" })];
  const v = tensor([1, 0, 1]);
  const [hw, hx, hi] = hvp(f, [w, x, ids], [v, null, null]);
  const closed = hvp((z: Tensor) => f(z, x, ids), [w], [v])[0] as Tensor;
  assert.deepEqual(await (hw as Tensor).array(), await closed.array());
  assert.deepEqual(await (hw as Tensor).array(), [2, 0, 8], "H_ww·v = 2x²·v on the picked entries");
  assert.ok(hx instanceof Tensor, "a float argument with a null vector still gets its cross terms");
  assert.equal(hi, null, "the integer argument is held fixed");
});

testBoth("hvp on pytrees differentiates only the float leaves", async () => {
  const f = (p: { w: Tensor; idx: Tensor; s: number }) => p.w.pow(3).take(p.idx, 0).sum().mul(p.s);
  const p = { w: tensor([1, 2]), idx: tensor([0, 1], { dtype: "int32" }), s: 2 };
  const [hv] = hvp(f, [p], [{ w: tensor([1, 1]), idx: null, s: null }]) as {
    w: Tensor;
    idx: null;
  }[];
  assert.deepEqual(await hv.w.array(), [12, 24], "H = diag(6·s·w) = diag(12, 24)");
  assert.equal(hv.idx, null);
});
