/**
 * Every user error gets the right class and a message naming the op and the
 * offending shapes or values; failed calls leak nothing and leave the library
 * usable.
 */

import assert from "node:assert/strict";
import {
  availableBackends,
  grad,
  memoryStats,
  sgd,
  type Tensor,
  tensor,
  valueAndGrad,
  vjp,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type ErrorClass = new (...args: never[]) => Error;

/**
 * Asserts `fn` throws an instance of `cls` whose message matches every
 * pattern, and that the failed call left no tensor behind.
 */
function throwsLike(fn: () => unknown, cls: ErrorClass, ...patterns: RegExp[]): void {
  const before = memoryStats().liveTensors;
  assert.throws(fn, (e) => {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${String(e)}`);
    for (const p of patterns) {
      assert.match(e.message, p, `message ${JSON.stringify(e.message)} should match ${p}`);
    }
    return true;
  });
  assert.equal(memoryStats().liveTensors, before, "the failed call leaked tensors");
}

/** Like `throwsLike` for a promise-returning call. */
async function rejectsLike(
  fn: () => Promise<unknown>,
  cls: ErrorClass,
  ...patterns: RegExp[]
): Promise<void> {
  await assert.rejects(fn, (e) => {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${String(e)}`);
    for (const p of patterns) {
      assert.match(e.message, p, `message ${JSON.stringify(e.message)} should match ${p}`);
    }
    return true;
  });
}

/** After errors, a valid computation (with a gradient) still gives the right result. */
async function stillWorks(): Promise<void> {
  const x = tensor([[1, 2, 3], [4, 5, 6]]);
  const y = x.add(tensor([10, 20, 30]));
  assertClose(await y.array(), [[11, 22, 33], [14, 25, 36]], { label: "add afterwards" });
  const g = grad((a: Tensor) => a.mul(a).sum())(x);
  assertClose(await g.array(), [[2, 4, 6], [8, 10, 12]], { label: "grad afterwards" });
  for (const t of [x, y, g]) t.dispose();
}

// ---- shapes -----------------------------------------------------------------

testBoth("add of non-broadcastable shapes is a TypeError naming both shapes", async () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([1, 2, 3, 4]);
  throwsLike(() => a.add(b), TypeError, /add/, /\[2,3\]/, /\[4\]/, /broadcast/);
  throwsLike(() => b.add(a), TypeError, /add/, /\[4\]/, /\[2,3\]/);
  throwsLike(() => a.sub(b), TypeError, /sub/, /\[2,3\]/, /\[4\]/);
  throwsLike(() => a.mul(b), TypeError, /mul/, /\[2,3\]/, /\[4\]/);
  throwsLike(() => a.maximum(b), TypeError, /maximum/, /\[2,3\]/, /\[4\]/);
  // The inputs are intact and the library still works.
  assertClose(await a.array(), [[1, 2, 3], [4, 5, 6]], { label: "a after" });
  a.dispose();
  b.dispose();
  await stillWorks();
});

testBoth("matmul with different inner dimensions is a TypeError naming both shapes", async () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([[1, 2], [3, 4]]);
  const v = tensor([1, 2, 3, 4]);
  throwsLike(() => a.matmul(b), TypeError, /matmul/, /\[2,3\]/, /\[2,2\]/);
  throwsLike(() => a.matmul(v), TypeError, /matmul/, /\[2,3\]/, /\[4\]/);
  const batched = tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[0, 0], [0, 0]]]);
  const other = tensor([[[1, 2], [3, 4], [5, 6]]]);
  throwsLike(() => batched.matmul(other), TypeError, /matmul/, /\[3,2,2\]/, /\[1,3,2\]/);
  for (const t of [a, b, v, batched, other]) t.dispose();
  await stillWorks();
});

testBoth("a bad reduction axis is a RangeError naming the op, axis and rank", async () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  throwsLike(() => a.sum(2), RangeError, /sum/, /axis 2/, /rank 2/);
  throwsLike(() => a.sum(-3), RangeError, /sum/, /axis -3/);
  throwsLike(() => a.sum([0, 5]), RangeError, /sum/, /axis 5/);
  throwsLike(() => a.max(2), RangeError, /max/, /axis 2/);
  throwsLike(() => a.mean(7), RangeError, /mean/, /axis 7/);
  throwsLike(() => a.sum(0.5), RangeError, /sum/, /0\.5/);
  a.dispose();
  await stillWorks();
});

testBoth("reshape to a different size is a TypeError naming both shapes", async () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  throwsLike(() => a.reshape([4, 2]), TypeError, /reshape/, /\[2,3\]/, /\[4,2\]/);
  throwsLike(() => a.reshape([4, -1]), TypeError, /reshape/, /\[2,3\]/, /\[4,-1\]/);
  throwsLike(() => a.reshape([-1, -1]), TypeError, /reshape/, /-1/);
  throwsLike(() => a.reshape([7]), TypeError, /reshape/, /\[7\]/);
  a.dispose();
  await stillWorks();
});

// ---- tensor() input -------------------------------------------------------------

testBoth("a ragged nested array is a TypeError naming where", async () => {
  throwsLike(() => tensor([[1, 2], [3]]), TypeError, /tensor/, /ragged/, /\[1\]/);
  throwsLike(
    () => tensor([[1, 2], 3] as unknown as number[][]),
    TypeError,
    /tensor/,
    /ragged/,
    /\[1\]/,
  );
  throwsLike(
    () => tensor([1, [2, 3]] as unknown as number[]),
    TypeError,
    /tensor/,
    /ragged/,
    /\[1\]/,
  );
  throwsLike(
    () => tensor([[[1, 2], [3, 4]], [[5, 6], [7]]]),
    TypeError,
    /tensor/,
    /ragged/,
    /\[1,1\]/,
  );
  await stillWorks();
});

testBoth("a non-numeric element is a TypeError naming it and where", async () => {
  throwsLike(
    () => tensor([1, "a"] as unknown as number[]),
    TypeError,
    /tensor/,
    /string/,
    /\[1\]/,
    /number/,
  );
  throwsLike(
    () => tensor([[1, null]] as unknown as number[][]),
    TypeError,
    /tensor/,
    /null/,
    /\[0,1\]/,
  );
  throwsLike(
    () => tensor([[1, 2], [3, { x: 1 }]] as unknown as number[][]),
    TypeError,
    /tensor/,
    /\[1,1\]/,
  );
  throwsLike(() => tensor("abc" as unknown as number[]), TypeError, /tensor/);
  throwsLike(
    () => tensor([1, 2, 3], { shape: [2, 2] }),
    TypeError,
    /tensor/,
    /\[2,2\]/,
    /3/,
  );
  await stillWorks();
});

// ---- transforms -------------------------------------------------------------------

testBoth("valueAndGrad of a non-scalar output is a TypeError naming the shape", async () => {
  const x = tensor([1, 2, 3, 4]);
  throwsLike(
    () => valueAndGrad((a: Tensor) => a.mul(2))(x),
    TypeError,
    /valueAndGrad/,
    /scalar/,
    /\[4\]/,
  );
  x.dispose();
  await stillWorks();
});

testBoth("grad of a non-scalar output is a TypeError naming grad and the shape", async () => {
  const x = tensor([1, 2, 3, 4]);
  throwsLike(() => grad((a: Tensor) => a.mul(2))(x), TypeError, /scalar/, /\[4\]/);
  const m = tensor([[1, 2], [3, 4]]);
  throwsLike(() => grad((a: Tensor) => a.sum(0))(m), TypeError, /scalar/, /\[2\]/);
  // The message names the transform the user called.
  throwsLike(() => grad((a: Tensor) => a.mul(2))(x), TypeError, /\bgrad\b/);
  x.dispose();
  m.dispose();
  await stillWorks();
});

testBoth("grad of a function returning a non-tensor is a TypeError", async () => {
  const x = tensor([1, 2]);
  throwsLike(
    () => valueAndGrad((_a: Tensor) => 3 as unknown as Tensor)(x),
    TypeError,
    /valueAndGrad/,
    /Tensor/,
    /number/,
    /3/,
  );
  throwsLike(
    () => grad((a: Tensor) => a.sum().item() as unknown as Tensor)(x),
    TypeError,
    /Tensor/,
    /Promise/,
  );
  throwsLike(
    () => grad((_a: Tensor) => undefined as unknown as Tensor)(x),
    TypeError,
    /Tensor/,
    /undefined/,
  );
  // The message names the transform the user called.
  throwsLike(() => grad((_a: Tensor) => 3 as unknown as Tensor)(x), TypeError, /\bgrad\b/);
  x.dispose();
  await stillWorks();
});

testBoth("hasAux with a function not returning [value, aux] is a TypeError", async () => {
  const x = tensor([1, 2]);
  throwsLike(
    () => valueAndGrad((a: Tensor) => a.sum(), { hasAux: true })(x),
    TypeError,
    /valueAndGrad/,
    /hasAux/,
    /\[value, aux\]/,
  );
  x.dispose();
  await stillWorks();
});

testBoth("argnums out of range is a RangeError naming it and the argument count", async () => {
  const x = tensor([1, 2]);
  const f = (a: Tensor, b: Tensor) => a.mul(b).sum();
  throwsLike(
    () => valueAndGrad(f, { argnums: 2 })(x, x),
    RangeError,
    /valueAndGrad/,
    /argnums/,
    /\b2\b/,
  );
  throwsLike(() => grad(f, { argnums: 2 })(x, x), RangeError, /argnums/, /\b2\b/);
  throwsLike(() => grad(f, { argnums: [0, 5] })(x, x), RangeError, /argnums/, /\b5\b/);
  throwsLike(() => grad(f, { argnums: -1 })(x, x), RangeError, /argnums/, /-1/);
  throwsLike(() => grad(f, { argnums: 0.5 })(x, x), RangeError, /argnums/, /0\.5/);
  // The message names the transform the user called.
  throwsLike(() => grad(f, { argnums: 2 })(x, x), RangeError, /\bgrad\b/);
  x.dispose();
  await stillWorks();
});

testBoth("differentiating a non-tensor argument is a TypeError naming it", async () => {
  const x = tensor([1, 2]);
  throwsLike(
    () => valueAndGrad((s: number, a: Tensor) => a.mul(s).sum())(3, x),
    TypeError,
    /valueAndGrad/,
    /argument 0/,
    /number/,
  );
  throwsLike(
    () => valueAndGrad((p: { w: Tensor; n: string }) => p.w.sum())({ w: x, n: "hi" }),
    TypeError,
    /argument 0/,
    /'n'/,
    /string/,
  );
  x.dispose();
  await stillWorks();
});

testBoth("a vjp cotangent of the wrong shape is a TypeError naming both shapes", async () => {
  const x = tensor([1, 2, 3, 4]);
  const [y, pullback] = vjp((a: Tensor) => a.mul(2), x);
  const bad = tensor([1, 2]);
  throwsLike(() => pullback(bad), TypeError, /vjp/, /\[2\]/, /\[4\]/);
  throwsLike(() => pullback([bad, bad]), TypeError, /vjp/, /1/, /2/);
  pullback.dispose();
  throwsLike(() => pullback(x), ReferenceError, /vjp/, /dispose/);
  for (const t of [x, y, bad]) t.dispose();
  await stillWorks();
});

testBoth("a function that throws inside grad propagates the error unchanged", async () => {
  const x = tensor([1, 2]);
  class Boom extends Error {}
  throwsLike(
    () =>
      grad((a: Tensor) => {
        a.mul(2).exp().sum();
        throw new Boom("boom at step 3");
      })(x),
    Boom,
    /boom at step 3/,
  );
  // The trace was torn down: ops afterwards are not recorded anywhere.
  x.dispose();
  await stillWorks();
});

testBoth("sgd with mismatched gradients is a TypeError naming the shapes", async () => {
  const p = { w: tensor([1, 2, 3, 4]) };
  const g = { w: tensor([[1, 2, 3], [4, 5, 6]]) };
  throwsLike(() => sgd(p, g, { lr: 0.1 }), TypeError, /sgd/, /\[2,3\]/, /\[4\]/);
  throwsLike(() => sgd(p, p, { lr: NaN }), TypeError, /sgd/, /lr/, /NaN/);
  throwsLike(
    () => sgd(p, { v: p.w } as unknown as typeof p, { lr: 0.1 }),
    TypeError,
    /structure/,
    /\bw\b/,
    /\bv\b/,
  );
  p.w.dispose();
  g.w.dispose();
  await stillWorks();
});

// ---- disposed tensors ---------------------------------------------------------------

testBoth("using a disposed tensor is a ReferenceError saying dispose", async () => {
  const d = tensor([1, 2]);
  d.dispose();
  assert.ok(d.disposed);
  const live = tensor([5, 6]);
  const ops: [string, () => unknown][] = [
    ["live.add(d)", () => live.add(d)],
    ["d.add(1)", () => d.add(1)],
    ["d.exp()", () => d.exp()],
    ["d.sum()", () => d.sum()],
    ["d.mean()", () => d.mean()],
    ["d.reshape([2, 1])", () => d.reshape([2, 1])],
    ["d.transpose()", () => d.transpose()],
    ["d.matmul(live)", () => d.matmul(live)],
    ["grad(f)(d)", () => grad((a: Tensor) => a.sum())(d)],
  ];
  for (const [, op] of ops) throwsLike(op, ReferenceError, /dispose/, /\[2\]/);
  await rejectsLike(() => d.data(), ReferenceError, /data/, /dispose/);
  await rejectsLike(() => d.array(), ReferenceError, /dispose/);
  const d1 = tensor([3]);
  d1.dispose();
  await rejectsLike(() => d1.item(), ReferenceError, /item|data/, /dispose/);
  // dispose() is idempotent and toString() still works.
  d.dispose();
  assert.match(String(d), /disposed/);
  live.dispose();
  await stillWorks();
});

testBoth("the dispose error names the op the user called", async () => {
  const d = tensor([1, 2]);
  d.dispose();
  const live = tensor([5, 6]);
  const two = tensor(2);
  const m = tensor([[1, 2], [3, 4]]);
  const dm = tensor([[1, 2], [3, 4]]);
  dm.dispose();
  const cases: [string, RegExp, () => unknown][] = [
    ["live.add(d)", /\badd\b/, () => live.add(d)],
    ["d.exp()", /\bexp\b/, () => d.exp()],
    ["d.sum()", /\bsum\b/, () => d.sum()],
    ["d.add(1)", /\badd\b/, () => d.add(1)],
    ["d.mul(two)", /\bmul\b/, () => d.mul(two)],
    ["dm.matmul(m)", /\bmatmul\b/, () => dm.matmul(m)],
    ["m.matmul(dm)", /\bmatmul\b/, () => m.matmul(dm)],
  ];
  const wrong: string[] = [];
  for (const [name, pattern, op] of cases) {
    throwsLike(op, ReferenceError, /dispose/);
    try {
      op();
    } catch (e) {
      const message = (e as Error).message;
      if (!pattern.test(message)) wrong.push(`${name}: ${JSON.stringify(message)}`);
    }
  }
  assert.deepEqual(wrong, [], `messages not naming the op:\n${wrong.join("\n")}`);
  for (const t of [live, two, m]) t.dispose();
  await stillWorks();
});

// ---- backends -------------------------------------------------------------------

Deno.test({
  name: "mixing webgpu and cpu tensors is a TypeError naming both backends",
  ignore: !(availableBackends().includes("webgpu") && availableBackends().includes("cpu")),
  async fn() {
    const g = tensor([1, 2], { backend: "webgpu" });
    const c = tensor([3, 4], { backend: "cpu" });
    throwsLike(() => g.add(c), TypeError, /add/, /webgpu/, /cpu/);
    throwsLike(() => c.mul(g), TypeError, /mul/, /cpu/, /webgpu/);
    const m = tensor([[1], [2]], { backend: "cpu" });
    throwsLike(() => g.matmul(m), TypeError, /matmul/, /webgpu/, /cpu/);
    throwsLike(
      () => grad((a: Tensor) => a.mul(c).sum())(g),
      TypeError,
      /mul/,
      /webgpu/,
      /cpu/,
    );
    // Each still works on its own backend.
    const g2 = g.add(g);
    const c2 = c.add(c);
    assertClose(await g2.array(), [2, 4], { label: "webgpu" });
    assertClose(await c2.array(), [6, 8], { label: "cpu" });
    for (const t of [g, c, m, g2, c2]) t.dispose();
  },
});

// ---- reading -----------------------------------------------------------------------

testBoth("item() on a multi-element tensor is a TypeError naming the shape", async () => {
  const x = tensor([[1, 2], [3, 4]]);
  await rejectsLike(() => x.item(), TypeError, /item/, /\[2,2\]/, /4 elements/);
  const e = tensor([]);
  await rejectsLike(() => e.item(), TypeError, /item/, /\[0\]/);
  // A one-element tensor of any rank works.
  const one = tensor([[7]]);
  assert.equal(await one.item(), 7);
  for (const t of [x, e, one]) t.dispose();
  await stillWorks();
});
