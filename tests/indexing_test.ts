/**
 * Basic indexing (`get`), `pad`, `concat`, `stack`, `split`: values against
 * plain TypeScript, gradient checks on both backends, and errors.
 */

import assert from "node:assert/strict";
import { arange, checkGrads, concat, randomNormal, stack, type Tensor, tensor } from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

const n = (shape: number[], seed: number) => randomNormal(shape, { seed });

const GRAD_CASES: { name: string; fn: (...xs: Tensor[]) => Tensor; inputs: () => Tensor[] }[] = [
  { name: "get an integer", fn: (x) => x.get(1), inputs: () => [n([3, 4], 1)] },
  {
    name: "slice with steps, one of them negative",
    fn: (x) => x.slice([1, 3], [3, null], { steps: [1, -2] }),
    inputs: () => [n([3, 4], 11)],
  },
  {
    name: "get a negative integer and a range",
    fn: (x) => x.get(-1, [1, 3]),
    inputs: () => [n([3, 4], 2)],
  },
  {
    name: "get with steps",
    fn: (x) => x.get([null, null, 2], [1, null, 2]),
    inputs: () => [n([5, 6], 3)],
  },
  {
    name: "get with ellipsis and new axis",
    fn: (x) => x.get("...", null, 0),
    inputs: () => [n([2, 3, 4], 4)],
  },
  {
    name: "overlapping gets sum their gradients",
    fn: (x) => x.get([0, 3]).mul(x.get([1, 4])),
    inputs: () => [n([4], 5)],
  },
  { name: "pad", fn: (x) => x.pad([[1, 2], [0, 1]], 0.5), inputs: () => [n([2, 3], 6)] },
  { name: "flip", fn: (x) => x.flip(1).mul(x), inputs: () => [n([2, 3], 12)] },
  {
    name: "get with a negative step",
    fn: (x) => x.get([], [null, null, -2]).exp(),
    inputs: () => [n([2, 5], 13)],
  },
  {
    name: "concat axis 1",
    fn: (a, b) => concat([a, b, a], 1),
    inputs: () => [n([2, 3], 7), n([2, 1], 8)],
  },
  {
    name: "stack axis 0",
    fn: (a, b) => stack([a, b]),
    inputs: () => [n([2, 3], 9), n([2, 3], 10)],
  },
  {
    name: "split then recombine",
    fn: (x) => {
      const [a, b, c] = x.split([1, 3], 1);
      return a.mul(2).sum().add(b.square().sum()).add(c.exp().sum());
    },
    inputs: () => [n([2, 5], 11)],
  },
];

for (const c of GRAD_CASES) {
  testBoth(`gradient check: ${c.name}`, async () => {
    const xs = c.inputs();
    await checkGrads(c.fn, xs);
    for (const x of xs) x.dispose();
  });
}

testBoth("get follows NumPy's basic indexing", async () => {
  const x = arange(24).reshape([2, 3, 4]);
  // x[1, :, -1], x[:, 1:3, ::3], x[..., 2], x[None, 0, -2:]
  assert.deepEqual(await x.get(1, [], -1).array(), [15, 19, 23]);
  assert.deepEqual(await x.get([], [1, 3], [null, null, 3]).array(), [[[4, 7], [8, 11]], [
    [16, 19],
    [20, 23],
  ]]);
  assert.deepEqual(await x.get("...", 2).array(), [[2, 6, 10], [14, 18, 22]]);
  assert.deepEqual(await x.get(null, 0, [-2, null]).array(), [[[4, 5, 6, 7], [8, 9, 10, 11]]]);
  assert.deepEqual(x.get([5, 9]).shape, [0, 3, 4]); // out-of-range ranges clamp, like Python
  assert.deepEqual(await x.get(0, 0, [10, 1]).array(), []);
  assert.equal(await x.get(1, 2, 3).item(), 23);
  // x[::-1, 2, ::-3] and flips (views with negative strides)
  assert.deepEqual(await x.get([null, null, -1], 2, [null, null, -3]).array(), [[23, 20], [11, 8]]);
  assert.deepEqual(await x.flip([0, 2]).get(0, 0).array(), [15, 14, 13, 12]);
  assert.deepEqual(await x.flip().reshape([24]).get([0, 3]).array(), [23, 22, 21]);
});

testBoth("pad, concat, stack and split values", async () => {
  assert.deepEqual(await tensor([1, 2]).pad([2, 1]).array(), [0, 0, 1, 2, 0]);
  assert.deepEqual(await tensor([[1]]).pad([[0, 1], [1, 0]], -1).array(), [[-1, 1], [-1, -1]]);
  assert.deepEqual(await concat([tensor([1]), tensor([2, 3])]).array(), [1, 2, 3]);
  assert.deepEqual(await stack([tensor([1, 2]), tensor([3, 4])], -1).array(), [[1, 3], [2, 4]]);
  const parts = arange(6).reshape([2, 3]).split(3, 1);
  assert.deepEqual(await Promise.all(parts.map((p) => p.array())), [[[0], [3]], [[1], [4]], [[2], [
    5,
  ]]]);
  assertClose(
    await concat([tensor(new Float32Array(0), { shape: [0, 2] }), tensor([[1, 2]])]).array(),
    [[1, 2]],
  );
});

testBoth("indexing errors name the op and the values", () => {
  const x = arange(6).reshape([2, 3]);
  const throwsWith = (fn: () => unknown, type: ErrorConstructor, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof type && re.test((e as Error).message));
  throwsWith(() => x.get(2), RangeError, /get: index 2 is out of bounds for axis 0 with size 2/);
  throwsWith(() => x.get(0, 0, 0), RangeError, /get: 3 indices for a tensor of rank 2/);
  throwsWith(() => x.get([0, 2, 0]), RangeError, /step 0/);
  throwsWith(() => x.get("...", "..."), TypeError, /at most one/);
  throwsWith(() => x.pad([[1, 1]]), RangeError, /pad: widths must be 2 pairs/);
  throwsWith(() => concat([x, tensor([1, 2])]), TypeError, /concat: shapes \[2,3\], \[2\]/);
  throwsWith(() => stack([x, x.transpose()]), TypeError, /stack: all shapes must be equal/);
  throwsWith(() => x.split(2, 1), RangeError, /split: axis 1 of size 3 cannot be split into 2/);
});

testBoth("slice is lax.slice: per-axis start, stop and step, as a view", async () => {
  const x = arange(12).reshape([3, 4]);
  assert.deepEqual(await x.slice([1, 0], [3, 4], { steps: [1, 2] }).array(), [[4, 6], [8, 10]]);
  assert.deepEqual(await x.slice([-1]).array(), [[8, 9, 10, 11]]); // axes not named are whole
  assert.deepEqual(await x.slice([0, 3], [null, 0], { steps: [1, -1] }).array(), [
    [3, 2, 1],
    [7, 6, 5],
    [11, 10, 9],
  ]);
  assert.deepEqual(x.slice([5], [9]).shape, [0, 4]); // out of range: empty, as in Python
  assert.throws(() => x.slice([0, 0, 0]), /slice: starts must be an array of at most 2 entries/);
  assert.throws(
    () => x.slice([0], [1, 2]),
    /slice: starts, stops and steps must have the same length/,
  );
});
