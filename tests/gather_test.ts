/**
 * Gathering: `take` (numpy.take: negative indices wrap, out-of-range ones
 * clamp), `takeAlongAxis`, `oneHot` and `nn.embedding`, against plain
 * TypeScript references on both backends; the scatter-add gradient with
 * repeated indices, second derivatives through a gather, zero-size index
 * lists, and a fast-check property over random shapes, axes and indices.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { checkGrads, type DType, grad, nn, oneHot, type Tensor, tensor } from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

const SEED = 20261122;
const RUNS = 20;

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const values = async (t: Tensor) => Array.from(await t.data());
const i32 = (xs: number[]) => tensor(xs, { dtype: "int32" });

/** Distinct, exactly representable values: element i is i·0.5 - 3. */
const iota = (shape: number[]) => Float32Array.from({ length: size(shape) }, (_, i) => i * 0.5 - 3);

/** How `take` reads index `i` on an axis of length `n`. */
const wrapClamp = (i: number, n: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n - 1);

/**
 * numpy.take reference: `data` of `shape`, flat `ids` of shape `idShape`,
 * along `axis`. Returns the flat result and its shape.
 */
function takeRef(
  data: ArrayLike<number>,
  shape: number[],
  ids: number[],
  idShape: number[],
  axis: number,
): { out: number[]; shape: number[] } {
  const pre = size(shape.slice(0, axis));
  const n = shape[axis];
  const post = size(shape.slice(axis + 1));
  const out: number[] = [];
  for (let p = 0; p < pre; p++) {
    for (const i of ids) {
      const j = wrapClamp(i, n);
      for (let q = 0; q < post; q++) out.push(data[(p * n + j) * post + q]);
    }
  }
  return { out, shape: [...shape.slice(0, axis), ...idShape, ...shape.slice(axis + 1)] };
}

testBoth("take along each axis of a 3-D tensor matches numpy.take", async () => {
  const shape = [3, 4, 5];
  const data = iota(shape);
  const x = tensor(data, { shape });
  for (let axis = 0; axis < 3; axis++) {
    const n = shape[axis];
    const ids = [n - 1, 0, 1, n - 1, 0];
    for (const a of [axis, axis - 3]) {
      const y = x.take(ids, a);
      const ref = takeRef(data, shape, ids, [ids.length], axis);
      assert.deepEqual(y.shape, ref.shape, `axis ${a}`);
      assert.equal(y.dtype, "float32");
      assert.deepEqual(await values(y), ref.out, `axis ${a}`);
    }
  }
  // A single index keeps the axis (as a length-1 axis).
  assert.deepEqual(x.take([2], 1).shape, [3, 1, 5]);
  // A scalar index tensor drops it.
  const s = x.take(tensor(2, { dtype: "int32" }), 1);
  assert.deepEqual(s.shape, [3, 5]);
  assert.deepEqual(await values(s), takeRef(data, shape, [2], [], 1).out);
});

testBoth("take with no axis reads the flattened tensor", async () => {
  const data = iota([3, 4]);
  const x = tensor(data, { shape: [3, 4] });
  const y = x.take([0, 11, 5, -1, 5]);
  assert.deepEqual(y.shape, [5]);
  assert.deepEqual(await values(y), [data[0], data[11], data[5], data[11], data[5]]);
  const m = x.take(i32([1, 2, 3, 4, 5, 6]).reshape([2, 3]));
  assert.deepEqual(m.shape, [2, 3]);
  assert.deepEqual(await m.array(), [[data[1], data[2], data[3]], [data[4], data[5], data[6]]]);
  // Of a non-contiguous view.
  const t = x.transpose().take([0, 1, 4]);
  assert.deepEqual(await values(t), [data[0], data[4], data[5]]);
});

testBoth("negative indices wrap and out-of-range indices clamp", async () => {
  const x = tensor([10, 20, 30, 40]);
  const ids = [-1, -4, -5, -100, 3, 4, 100, 2 ** 31 - 1, -(2 ** 31 - 1), 0];
  const expected = [40, 10, 10, 10, 40, 40, 40, 40, 10, 10];
  assert.deepEqual(await values(x.take(ids, 0)), expected);
  // The int32 extremes in an index tensor (INT_MIN + n must not wrap).
  const extremes = tensor([-(2 ** 31), 2 ** 31 - 1, -(2 ** 31) + 3], { dtype: "int32" });
  assert.deepEqual(await values(x.take(extremes, 0)), [10, 40, 10]);
  // Host indices take the whole int32 range, INT_MIN included; beyond it is an error.
  assert.deepEqual(await values(x.take(new Int32Array([-(2 ** 31)]), 0)), [10]);
  assert.deepEqual(await values(x.take([-(2 ** 31)], 0)), [10]);
  assert.throws(
    () => x.take([2 ** 31], 0),
    /take: index 2147483648 at position 0 is not an int32 integer/,
  );
  const table = tensor([[1, 2], [3, 4], [5, 6]]);
  assert.deepEqual(await table.take([-1], 1).array(), [[2], [4], [6]]);
  assert.deepEqual(await table.take([7, -7], 0).array(), [[5, 6], [1, 2]]);
});

testBoth("indices as a 2-D int32 tensor, number[], Int32Array or int8 tensor", async () => {
  const shape = [4, 3];
  const data = iota(shape);
  const x = tensor(data, { shape });
  const flat = [3, 0, 0, 2, 1, 3];
  const ref0 = takeRef(data, shape, flat, [2, 3], 0);
  const y = x.take(i32(flat).reshape([2, 3]), 0);
  assert.deepEqual(y.shape, [2, 3, 3]);
  assert.deepEqual(await values(y), ref0.out);
  const ref1 = takeRef(data, shape, [2, 0, 1, 2], [2, 2], 1);
  const z = x.take(i32([2, 0, 1, 2]).reshape([2, 2]), 1);
  assert.deepEqual(z.shape, [4, 2, 2]);
  assert.deepEqual(await values(z), ref1.out);
  const ref = takeRef(data, shape, flat, [6], 0).out;
  assert.deepEqual(await values(x.take(flat, 0)), ref);
  assert.deepEqual(await values(x.take(Int32Array.from(flat), 0)), ref);
  assert.deepEqual(await values(x.take(tensor(Int8Array.from(flat)), 0)), ref);
  assert.deepEqual(await values(x.take(i32(flat), 0)), ref);
});

testBoth("non-integer indices are a TypeError naming take and the dtype", () => {
  const x = tensor([1, 2, 3]);
  for (const dtype of ["float32", "float16", "bool"] as DType[]) {
    assert.throws(() => x.take(tensor([0, 1], { dtype }), 0), (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(
        e.message,
        new RegExp(`^take: indices must be an integer tensor, got ${dtype}\\[2\\]`),
      );
      return true;
    });
  }
  assert.throws(() => x.take([0.5], 0), /take: index 0.5 at position 0 is not an int32 integer/);
  assert.throws(() => x.take([0, 2 ** 32], 0), /take: index 4294967296 at position 1/);
  assert.throws(() => x.take("0" as unknown as number[], 0), /take: indices must be a Tensor/);
  assert.throws(() => x.take([0], 1), /take/);
  assert.throws(
    () => tensor([[1, 2], [3, 4]]).takeAlongAxis(tensor([[0], [1]]), 1),
    /takeAlongAxis: indices must be an integer tensor, got float32/,
  );
});

testBoth("take of int32, int8 and bool tensors copies values exactly", async () => {
  const big = [2 ** 31 - 1, -(2 ** 31), 16777217, -16777217];
  const x = i32(big);
  const y = x.take([3, 2, 1, 0, 2], 0);
  assert.equal(y.dtype, "int32");
  assert.deepEqual(await values(y), [big[3], big[2], big[1], big[0], big[2]]);
  const b = tensor([[true, false], [false, true]]);
  const c = b.take([1, 1, 0], 0);
  assert.equal(c.dtype, "bool");
  const data = await c.data();
  assert.ok(data instanceof Uint8Array);
  assert.deepEqual(Array.from(data), [0, 1, 0, 1, 1, 0]);
  const s = tensor([-128, 127, 5], { dtype: "int8" }).take([1, 0, -1]);
  assert.equal(s.dtype, "int8");
  assert.deepEqual(await values(s), [127, -128, 5]);
  const h = tensor([0.1, 65504, -2], { dtype: "float16" }).take([2, 1, 0]);
  assert.equal(h.dtype, "float16");
  assert.deepEqual(await values(h), [-2, 65504, new Float16Array([0.1])[0]]);
});

testBoth("take's gradient scatter-adds over repeated indices", async () => {
  const x = tensor([[1, 2], [3, 4], [5, 6]]);
  const w = tensor([[1, 10], [100, 1000], [-1, -2], [0.5, 0.25]]);
  // Rows 2, 0, 2, 2 picked; cotangent w.
  const g = grad((t: Tensor) => t.take([2, 0, -1, 7], 0).mul(w).sum())(x);
  assert.deepEqual(await g.array(), [[100, 1000], [0, 0], [0.5, 8.25]]);
  // Along axis 1, with a 2-D index tensor.
  const ids = i32([1, 1, 0, 1]).reshape([2, 2]);
  const g1 = grad((t: Tensor) => t.take(ids, 1).sum())(x);
  assert.deepEqual(await g1.array(), [[1, 3], [1, 3], [1, 3]]);
  const gf = grad((t: Tensor) => t.take([5, 5, 0]).sum())(x);
  assert.deepEqual(await gf.array(), [[1, 0], [0, 0], [0, 2]]);
  // float16: the cotangent stays float16.
  const gh = grad((t: Tensor) => t.take([0, 0, 0, 3, 3]).sum())(
    tensor([1.5, -2.25, 3, 0.1], { dtype: "float16" }),
  );
  assert.equal(gh.dtype, "float16");
  assert.deepEqual(await values(gh), [3, 0, 0, 2]);
  await checkGrads((t: Tensor) => t.take([2, 0, 2, 1, 2], 0), [x]);
  await checkGrads((t: Tensor) => t.take(ids, 1).square(), [x]);
  await checkGrads((t: Tensor) => t.take([-1, 3, 3]).tanh(), [x]);
});

testBoth("second derivatives through take", async () => {
  const x = tensor([0.5, -1.2, 2.0, 0.3]);
  const ids = [1, 1, 3, 0, 1];
  // d/dx sum(take(x)^2) = 2·count·x; its derivative is diagonal 2·count.
  const df = (t: Tensor) => grad((u: Tensor) => u.take(ids, 0).square().sum())(t);
  assertClose(await df(x).data(), [2 * 0.5, 3 * 2 * -1.2, 0, 2 * 0.3]);
  await checkGrads(df, [x]);
  const d2 = grad((t: Tensor) => df(t).sum())(x);
  assertClose(await d2.data(), [2, 6, 0, 2]);
  // Through a cubic, where the second derivative depends on x.
  await checkGrads(
    (t: Tensor) => grad((u: Tensor) => u.take(i32([2, 0, 2]), 0).pow(3).sum())(t),
    [x],
  );
});

testBoth("takeAlongAxis picks per-row labels", async () => {
  const logits = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
  const labels = i32([2, 0, 1]).reshape([3, 1]);
  const picked = logits.takeAlongAxis(labels, 1);
  assert.deepEqual(picked.shape, [3, 1]);
  assert.deepEqual(await picked.array(), [[3], [4], [8]]);
  // Several per row, negative and clamped.
  const many = logits.takeAlongAxis(i32([0, -1, 5, 1, 1, 2]).reshape([3, 2]), 1);
  assert.deepEqual(await many.array(), [[1, 3], [6, 5], [8, 9]]);
  const small = logits.takeAlongAxis(tensor([[1], [0], [2]], { dtype: "int8" }), 1);
  assert.deepEqual(await small.array(), [[2], [4], [9]]);
  // Along axis 0.
  const cols = logits.takeAlongAxis(i32([2, 0, 1]).reshape([1, 3]), 0);
  assert.deepEqual(await cols.array(), [[7, 2, 6]]);
  // 3-D along the middle axis.
  const data = iota([2, 3, 2]);
  const x = tensor(data, { shape: [2, 3, 2] });
  const idx = i32([2, 0, 1, 1]).reshape([2, 1, 2]);
  const y = x.takeAlongAxis(idx, 1);
  assert.deepEqual(y.shape, [2, 1, 2]);
  assert.deepEqual(await values(y), [data[4], data[1], data[8], data[9]]);
  // Gradient: the picked entries get the cotangent (repeats accumulate).
  const g = grad((t: Tensor) => t.takeAlongAxis(i32([1, 1, 0, 2]).reshape([2, 2]), 1).sum())(
    tensor([[1, 2, 3], [4, 5, 6]]),
  );
  assert.deepEqual(await g.array(), [[0, 2, 0], [1, 0, 1]]);
  await checkGrads((t: Tensor) => t.takeAlongAxis(labels, 1), [logits]);
});

testBoth("takeAlongAxis rejects indices of the wrong shape", () => {
  const x = tensor([[1, 2, 3], [4, 5, 6]]);
  const bad = [
    i32([0, 1]), // rank 1
    i32([0, 1, 2]).reshape([3, 1]), // 3 rows, not 2
    i32([0, 1, 0, 1]).reshape([2, 1, 2]), // rank 3
  ];
  for (const ids of bad) {
    assert.throws(() => x.takeAlongAxis(ids, 1), (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(
        e.message,
        /^takeAlongAxis: indices must be a tensor of shape \[2,3\] except along axis 1/,
      );
      return true;
    });
  }
  assert.throws(() => x.takeAlongAxis([[0], [1]] as unknown as Tensor, 1), TypeError);
  assert.throws(() => x.takeAlongAxis(i32([0, 1]).reshape([2, 1]), 2), /takeAlongAxis/);
  // A different length along the axis itself is fine.
  assert.deepEqual(x.takeAlongAxis(i32([0, 1, 2, 0, 1, 2, 0, 1]).reshape([2, 4]), 1).shape, [2, 4]);
});

testBoth("oneHot: values, dtype option and out-of-range ids", async () => {
  const ids = i32([2, 0, -1, 3, 1]);
  const h = oneHot(ids, 3);
  assert.equal(h.dtype, "float32");
  assert.deepEqual(h.shape, [5, 3]);
  assert.deepEqual(await h.array(), [[0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 1, 0]]);
  for (const dtype of ["int32", "int8", "bool", "float16"] as DType[]) {
    const t = oneHot(ids, 3, { dtype });
    assert.equal(t.dtype, dtype);
    assert.deepEqual(await values(t), await values(h), dtype);
  }
  const m = oneHot(i32([1, 0, 0, 1]).reshape([2, 2]), 2);
  assert.deepEqual(m.shape, [2, 2, 2]);
  assert.deepEqual(await m.array(), [[[0, 1], [1, 0]], [[1, 0], [0, 1]]]);
  assert.deepEqual(await oneHot(tensor([1, 0], { dtype: "int8" }), 2).array(), [[0, 1], [1, 0]]);
  assert.deepEqual(
    await values(oneHot(i32([2 ** 31 - 1, -(2 ** 31), 3]), 3)),
    new Array(9).fill(0),
  );
  assert.deepEqual(oneHot(i32([1]), 0).shape, [1, 0]);
  assert.throws(() => oneHot(ids, -1), RangeError);
  assert.throws(() => oneHot(ids, 2.5), /count must be a non-negative integer/);
  assert.throws(
    () => oneHot(tensor([1, 0]), 2),
    /oneHot: indices must be an integer tensor, got float32/,
  );
  assert.throws(
    () => oneHot([1, 0] as unknown as Tensor, 2),
    /oneHot: ids must be an integer Tensor/,
  );
});

testBoth("nn.embedding with an int32 id tensor", async () => {
  const table = tensor([[0, 1], [10, 11], [20, 21], [30, 31]]);
  const ids = i32([3, 1, 3, 0, 2, 2]).reshape([2, 3]);
  const e = nn.embedding({ table }, ids);
  assert.deepEqual(e.shape, [2, 3, 2]);
  assert.deepEqual(await e.array(), [[[30, 31], [10, 11], [30, 31]], [[0, 1], [20, 21], [20, 21]]]);
  // Host ids are checked, tensor ids clamped.
  assert.throws(() => nn.embedding({ table }, [4]), /nn\.embedding/);
  assert.deepEqual(await nn.embedding({ table }, i32([9])).array(), [[30, 31]]);
  const g = grad((p: { table: Tensor }) => nn.embedding(p, ids).sum())({ table });
  assert.deepEqual(await g.table.array(), [[1, 1], [1, 1], [2, 2], [2, 2]]);
});

testBoth("zero-size gathers have the right shape", async () => {
  const x = tensor(iota([3, 4]), { shape: [3, 4] });
  const a = x.take([], 0);
  assert.deepEqual(a.shape, [0, 4]);
  assert.equal((await a.data()).length, 0);
  const b = x.take(new Int32Array(0), 1);
  assert.deepEqual(b.shape, [3, 0]);
  assert.equal((await b.data()).length, 0);
  const c = x.take(tensor(new Int32Array(0), { shape: [2, 0] }), 1);
  assert.deepEqual(c.shape, [3, 2, 0]);
  assert.deepEqual(x.take([]).shape, [0]);
  assert.equal(i32([1, 2]).take([], 0).dtype, "int32");
  // Gathering from an empty axis is impossible unless nothing is gathered.
  const empty = tensor(new Float32Array(0), { shape: [0, 2] });
  assert.deepEqual(empty.take([], 0).shape, [0, 2]);
  assert.throws(
    () => empty.take([0], 0),
    (e: Error) => e instanceof RangeError && /take/.test(e.message),
  );
  // Its gradient is all zeros.
  const g = grad((t: Tensor) => t.take([], 0).sum().add(t.sum().mul(0)))(x);
  assert.deepEqual(await values(g), new Array(12).fill(0));
  assert.deepEqual(oneHot(tensor(new Int32Array(0)), 3).shape, [0, 3]);
});

testBoth("property: take matches numpy.take on random shapes, axes and indices", async () => {
  const arb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }).chain((
    shape,
  ) =>
    fc.record({
      shape: fc.constant(shape),
      axis: fc.option(fc.integer({ min: -shape.length, max: shape.length - 1 }), {
        nil: undefined,
      }),
      idShape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
      seed: fc.integer({ min: 0, max: 1000 }),
      dtype: fc.constantFrom<DType>("float32", "int32"),
    })
  );
  await fc.assert(
    fc.asyncProperty(arb, async ({ shape, axis, idShape, seed, dtype }) => {
      const data = Float32Array.from(iota(shape), (v, i) => (dtype === "int32" ? i - 5 : v));
      const x = tensor(data, { shape, dtype });
      const flat = axis === undefined;
      const [refShape, a] = flat
        ? [[size(shape)], 0]
        : [shape, axis < 0 ? axis + shape.length : axis];
      const n = refShape[a];
      // Indices in [-n - 2, n + 2): some wrap, some clamp.
      const ids = Array.from(
        { length: size(idShape) },
        (_, i) => ((seed + i * 7919) % (2 * n + 4)) - n - 2,
      );
      const idx = tensor(Int32Array.from(ids), { shape: idShape });
      const y = flat ? x.take(idx) : x.take(idx, axis);
      const ref = takeRef(data, refShape, ids, idShape, a);
      assert.deepEqual(y.shape, ref.shape);
      assert.equal(y.dtype, dtype);
      assert.deepEqual(await values(y), ref.out);
      // The gradient counts how often each element was picked.
      if (dtype === "float32" && ids.length > 0) {
        const g = grad((t: Tensor) => (flat ? t.take(idx) : t.take(idx, axis)).sum())(x);
        const counts = new Array(size(shape)).fill(0);
        const positions = takeRef(
          Float32Array.from({ length: size(shape) }, (_, i) => i),
          refShape,
          ids,
          idShape,
          a,
        );
        for (const p of positions.out) counts[p]++;
        assert.deepEqual(await values(g), counts);
        g.dispose();
      }
      for (const t of [x, idx, y]) t.dispose();
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

Deno.test("the numpy.take reference itself", () => {
  const { out, shape } = takeRef(iota([2, 3]), [2, 3], [-1, 5, 0], [3], 1);
  assert.deepEqual(shape, [2, 3]);
  assert.deepEqual(out, [-2, -2, -3, -0.5, -0.5, -1.5]);
});
