/**
 * Work too long for one kernel loop, and elementwise results the backends
 * must agree on to the last bits that matter.
 *
 * Mesa's software adapter ends every shader loop after 65,535 iterations
 * without a word, so a reduction whose invocations each summed more than that
 * (a long thread-per-output group, or a chunk split over a workgroup whose
 * slices were that long) or a matmul with k beyond 4·65,535 came back short.
 * Each case below exceeded that limit before the backends split such work;
 * each is checked against the exact answer on every backend.
 * @module
 */

import assert from "node:assert/strict";
import { availableBackends, ones, tensor, useBackend } from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

testBoth(
  "sum over 70,000 elements per output, 256 outputs (one invocation per output)",
  async () => {
    // Broadcast: stride 0 throughout; thread-per-output strategy.
    const out = await ones([1]).broadcastTo([256, 70_000]).sum(1).data();
    assert.equal(out.length, 256);
    assert.ok(out.every((v) => v === 70_000), `got ${out[0]} per row`);
  },
);

testBoth("sum of a transposed view over 70,000 rows (strided loads)", async () => {
  const x = ones([70_000, 256]);
  const out = await x.transpose().sum(1).data();
  x.dispose();
  assert.ok(out.every((v) => v === 70_000), `got ${out[0]} per column`);
});

/**
 * Cases long enough that only the WebGPU backend runs them in test time (the
 * CPU reference takes tens of seconds); registered as ignored, never silently
 * skipped, where WebGPU is missing.
 */
function webgpuTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: `${name} [webgpu]`,
    ignore: !availableBackends().includes("webgpu"),
    async fn() {
      useBackend("webgpu");
      try {
        await fn();
      } finally {
        useBackend(availableBackends()[0]);
      }
    },
  });
}

webgpuTest("sum and mean of 3e8 broadcast elements (a workgroup per chunk)", async () => {
  const x = ones([1]).broadcastTo([300_000, 1_000]);
  assert.equal(await x.sum().item(), 3e8);
  assert.equal(await x.mean().item(), 1);
});

webgpuTest("sum over 65,537 columns of 65,536 rows", async () => {
  const out = await ones([1]).broadcastTo([65_536, 65_537]).sum(1).data();
  assert.equal(out.length, 65_536);
  assert.ok(out.every((v) => v === 65_537), `got ${out[0]} per row`);
});

testBoth("matmul with k = 300,000 (beyond one kernel's k loop)", async () => {
  const k = 300_000;
  const a = ones([2, k]).mul(tensor([[0.5], [0.25]]));
  const b = ones([k, 3]);
  assertClose(await a.matmul(b).data(), [k / 2, k / 2, k / 2, k / 4, k / 4, k / 4], {
    rtol: 1e-6,
    label: "matmul",
  });
});

testBoth("tanh is accurate for small |x| (no cancellation)", async () => {
  const xs = [1e-8, -1e-8, 1e-6, 1e-4, 0.01, 0.05, 0.3, -0.7, 2, 9, -20, 0];
  const got = await tensor(xs).tanh().data();
  // Within a few float32 ulps of the float64 value, relative.
  assertClose(got, xs.map(Math.tanh), { atol: 0, rtol: 5e-7, label: "tanh" });
});

testBoth("sign(NaN) is NaN (NumPy), sign(±0) is 0", async () => {
  // Eight elements, so the vec4 path runs too; and a strided (scalar) view.
  const x = tensor([NaN, -3, 0, 2, -0, NaN, 1e-30, -Infinity]);
  assertClose(await x.sign().data(), [NaN, -1, 0, 1, 0, NaN, 1, -1], { label: "sign" });
  assertClose(await x.get([0, null, 2]).sign().data(), [NaN, 0, 0, 1], { label: "strided" });
  assertClose(await x.astype("float16").sign().data(), [NaN, -1, 0, 1, 0, NaN, 0, -1], {
    label: "float16",
  });
});
