/**
 * Zero-size dimensions: every op NumPy allows on them works (and gives
 * NumPy's shape and values), and reductions without an identity refuse
 * clearly, on both backends.
 */

import assert from "node:assert/strict";
import { concat, grad, type Tensor, tensor, zeros } from "../mod.ts";
import { testBoth } from "./_helpers.ts";

testBoth("reductions over an empty axis give their identity or a clear error", async () => {
  const e = zeros([0, 3]);
  assert.deepEqual(await e.sum(0).array(), [0, 0, 0]);
  assert.deepEqual(await e.prod(0).array(), [1, 1, 1]);
  assert.deepEqual(await e.astype("int32").sum(0).array(), [0, 0, 0]);
  assert.deepEqual(await e.logsumexp(0).array(), [-Infinity, -Infinity, -Infinity]);
  assert.deepEqual(e.mean(1).shape, [0]); // reducing the non-empty axis: an empty result
  assert.deepEqual(e.min(1).shape, [0]);
  assert.deepEqual(e.argmax(1).shape, [0]);
  assert.throws(
    () => e.max(0),
    (err: Error) => err instanceof RangeError && /max: .*empty axis.*\[0,3\]/.test(err.message),
  );
  assert.throws(() => e.min(), /min: cannot reduce over an empty axis/);
  assert.throws(() => e.argmax(0), /argmax: axis 0 of shape \[0,3\] is empty/);
});

testBoth("elementwise, shape, indexing and joining ops keep zero-size shapes", async () => {
  const e = zeros([0, 3]);
  assert.deepEqual(e.add(tensor([1, 2, 3])).shape, [0, 3]);
  assert.deepEqual(e.gt(0).shape, [0, 3]);
  assert.equal(e.gt(0).dtype, "bool");
  assert.deepEqual(e.astype("int8").shape, [0, 3]);
  assert.deepEqual(e.reshape([3, 0]).shape, [3, 0]);
  assert.deepEqual(e.reshape([-1]).shape, [0]);
  assert.throws(() => e.reshape([0, -1]), /reshape: cannot infer the -1 in \[0,-1\]/); // as NumPy
  assert.deepEqual(e.transpose().shape, [3, 0]);
  assert.deepEqual(e.get([1, null]).shape, [0, 3]);
  assert.deepEqual(e.cumsum(0).shape, [0, 3]);
  assert.deepEqual(e.cumsum(1).shape, [0, 3]);
  assert.deepEqual(e.softmax(1).shape, [0, 3]);
  assert.deepEqual(e.take([0, 2], 1).shape, [0, 2]);
  assert.deepEqual(tensor([1, 2]).take([], 0).shape, [0]);
  assert.deepEqual(await e.pad([[1, 0], [0, 0]]).array(), [[0, 0, 0]]);
  assert.deepEqual(await concat([e, tensor([[1, 2, 3]])], 0).array(), [[1, 2, 3]]);
  assert.equal(await e.format(), "tensor([], shape=[0,3], dtype=float32)");
  assert.deepEqual(await e.data(), new Float32Array(0));
});

testBoth("matmul with a zero-size axis: empty, or zeros when k is 0", async () => {
  assert.deepEqual(zeros([0, 3]).matmul(zeros([3, 2])).shape, [0, 2]);
  assert.deepEqual(await zeros([2, 0]).matmul(zeros([0, 2])).array(), [[0, 0], [0, 0]]);
});

testBoth("gradients of zero-size inputs are zero-size", async () => {
  const e = zeros([0, 3]);
  for (
    const f of [
      (x: Tensor) => x.sum(),
      (x: Tensor) => x.prod(),
      (x: Tensor) => x.square().mean(1).sum(),
    ]
  ) {
    const g = grad(f)(e);
    assert.deepEqual(g.shape, [0, 3]);
    assert.equal((await g.data()).length, 0);
  }
});
