/**
 * `checkGrads` in forward mode (`modes`), on every backend: it catches a
 * wrong JVP that reverse mode cannot see (and the other way round), names
 * the mode, argument, tree path and output element, detects kinks, counts
 * what it compared, skips integer values, releases everything, and refuses
 * bad options clearly.
 *
 * A wrong rule is injected by replacing one entry of the rule table for the
 * length of a test (restored afterwards), so the reference — central
 * differences of the unchanged primal computation — is computed without it.
 * @module
 */

import assert from "node:assert/strict";
import {
  checkGrads,
  GradCheckError,
  type GradCheckFailure,
  memoryStats,
  stopGradient,
  type Tensor,
  tensor,
} from "../mod.ts";
import { JVP_RULES, type JvpRule } from "../src/jvp_rules.ts";
import { VJP_RULES, type VjpRule } from "../src/vjp_rules.ts";
import type { Prim } from "../src/primitives.ts";
import { assertClose, testBoth } from "./_helpers.ts";

/** Runs `body` with `table[prim]` replaced by `rule`, then puts the rule back. */
async function withRule<R>(
  table: { readonly [P in Prim]: R },
  prim: Prim,
  rule: R,
  body: () => Promise<void>,
): Promise<void> {
  const rules = table as { [P in Prim]: R };
  const saved = rules[prim];
  rules[prim] = rule;
  try {
    await body();
  } finally {
    rules[prim] = saved;
  }
}

/** sin's JVP, doubled: forward mode wrong, reverse mode right. */
const doubledSinJvp: JvpRule = ([t], { inputs: [x] }) => t && t.mul(x.cos()).mul(2);
/** sin's VJP, doubled: reverse mode wrong, forward mode right. */
const doubledSinVjp: VjpRule = (g, { inputs: [x] }) => [g.mul(x.cos()).mul(2)];

const x3 = [0.3, -0.8, 1.1];

/** Catches the GradCheckError of `run`, failing the test if there is none. */
async function failureOf(run: Promise<unknown>): Promise<GradCheckError> {
  let caught: unknown = null;
  try {
    await run;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof GradCheckError, `expected a GradCheckError, got ${caught}`);
  return caught;
}

testBoth("checkGrads checks forward mode by default, and catches a wrong JVP there", async () => {
  const f = (x: Tensor) => x.sin();
  const x = tensor(x3);
  // The real rules pass in both modes: 3 gradient elements, 3 output elements of J·v.
  const report = await checkGrads(f, [x]);
  assert.deepEqual(report.checkedByMode, { rev: 3, fwd: 3 });
  assert.equal(report.checked, 6);
  assert.deepEqual(report.kinks, []);
  await withRule(JVP_RULES, "sin", doubledSinJvp, async () => {
    // Reverse mode does not use the JVP rule.
    assert.deepEqual((await checkGrads(f, [x], { modes: ["rev"] })).checkedByMode, {
      rev: 3,
      fwd: 0,
    });
    const before = memoryStats().liveTensors;
    const e = await failureOf(checkGrads(f, [x]));
    assert.equal(memoryStats().liveTensors, before, "no leak on failure");
    assert.equal(e.failures.length, 3);
    for (const [i, fail] of e.failures.entries()) {
      assert.equal(fail.mode, "fwd");
      assert.equal(fail.argnum, 0);
      assert.equal(fail.path, "");
      assert.equal(fail.where, `a random direction, output [${i}]`);
      // The doubled rule against the true derivative cos(x)·v.
      assert.ok(Math.abs(fail.expected) > 1e-2, "a direction component that is not ~0");
      assertClose(fail.got, 2 * fail.expected, { rtol: 1e-2, label: "got = 2·expected" });
    }
    assert.match(e.message, /^checkGrads: 3 forward mode value\(s\) disagree/);
    assert.match(e.message, /\(jvp; eps 0\.001/);
    assert.match(e.message, /argument 0 at a random direction, output \[0\]: central difference/);
    assert.match(e.message, /forward mode -?\d/);
    assert.doesNotMatch(e.message, /not checked/, "forward mode is the last mode");
  });
  // Restored: passes again.
  await checkGrads(f, [x], { modes: "fwd" });
});

testBoth(
  "a wrong VJP fails in reverse mode, which runs first; forward mode alone passes",
  async () => {
    const f = (x: Tensor) => x.sin().sum();
    const x = tensor(x3);
    await withRule(VJP_RULES, "sin", doubledSinVjp, async () => {
      const e = await failureOf(checkGrads(f, [x]));
      assert.ok(e.failures.every((fl: GradCheckFailure) => fl.mode === "rev"));
      assert.deepEqual(e.failures.map((fl) => fl.where), ["[0]", "[1]", "[2]"]);
      // A scalar output: the values are the gradient itself, 2·cos(x) against cos(x).
      for (const [i, fail] of e.failures.entries()) {
        assertClose(fail.expected, Math.cos(x3[i]), { rtol: 1e-2, label: "central difference" });
        assertClose(fail.got, 2 * Math.cos(x3[i]), { rtol: 1e-5, label: "reverse mode" });
      }
      assert.match(e.message, /reverse mode value\(s\) disagree/);
      assert.match(e.message, /\n {2}\(forward mode not checked\)$/);
      // Forward mode does not use the VJP rule.
      const fwd = await checkGrads(f, [x], { modes: ["fwd"] });
      assert.deepEqual(fwd.checkedByMode, { rev: 0, fwd: 1 });
      // In the order given: forward mode passes, then reverse mode fails.
      const late = await failureOf(checkGrads(f, [x], { modes: ["fwd", "rev"] }));
      assert.equal(late.failures[0].mode, "rev");
      assert.doesNotMatch(late.message, /not checked/);
    });
  },
);

testBoth("a forward-mode failure names the argument, the tree path and the output", async () => {
  const f = (scale: Tensor, p: { layer: { w: Tensor } }) => ({
    a: p.layer.w.sin().mul(scale),
    b: p.layer.w.cos().sum(),
  });
  const scale = tensor(1.5);
  const p = { layer: { w: tensor([[0.2, -0.4], [0.9, 0.6]]) } };
  await withRule(JVP_RULES, "sin", doubledSinJvp, async () => {
    const e = await failureOf(checkGrads(f, [scale, p], { modes: "fwd" }));
    // One direction per tensor: scale's tangent goes through mul, not through sin's rule.
    assert.ok(e.failures.length > 0);
    for (const fail of e.failures) {
      assert.equal(fail.argnum, 1);
      assert.equal(fail.path, "layer.w");
      assert.match(fail.where, /^a random direction, output 'a' \[[01],[01]\]$/);
    }
    assert.equal(e.failures.length, 4, "every element of output 'a', none of 'b'");
    assert.match(e.message, /argument 1 'layer\.w' at a random direction, output 'a' \[0,0\]/);
    // "direction" mode: one direction over both arguments, named by the first.
    const one = await failureOf(checkGrads(f, [scale, p], { modes: "fwd", mode: "direction" }));
    assert.ok(one.failures.every((fl) => fl.argnum === 0 && fl.path === ""));
    assert.match(one.message, /mode direction/);
  });
});

testBoth(
  "forward mode counts one jvp per tensor (elements) or one in all (direction)",
  async () => {
    // Output [2,3]: each jvp compares 6 values.
    const f = (a: Tensor, b: Tensor) => a.mul(b).tanh();
    const a = tensor([0.5, -1, 0.25]);
    const b = tensor([[0.3, 0.1, -0.7], [1.2, -0.4, 0.8]]);
    const elements = await checkGrads(f, [a, b]);
    assert.deepEqual(elements.checkedByMode, { rev: 3 + 6, fwd: 2 * 6 });
    const direction = await checkGrads(f, [a, b], { mode: "direction" });
    assert.deepEqual(direction.checkedByMode, { rev: 1, fwd: 6 });
    const first = await checkGrads(f, [a, b], { argnums: 1, modes: ["fwd"] });
    assert.deepEqual(first.checkedByMode, { rev: 0, fwd: 6 });
  },
);

testBoth("forward mode skips integer inputs and outputs, and leaves nothing behind", async () => {
  const f = (x: Tensor, ids: Tensor) => [x.take(ids, 0).tanh(), x.argmax()];
  const x = tensor([0.3, -0.8, 1.1]);
  const ids = tensor([2, 0, 2, 1], { dtype: "int32" });
  const before = memoryStats().liveTensors;
  // ids (int32) takes no direction; argmax's output (int32) is not compared.
  const report = await checkGrads(f, [x, ids], { modes: ["fwd"] });
  assert.deepEqual(report.checkedByMode, { rev: 0, fwd: 4 });
  assert.equal(memoryStats().liveTensors, before, "forward mode leaks nothing");
  // float16 inputs: a larger step (float16 rounds 1e-3 away).
  const h = tensor([0.5, -1.25, 2], { dtype: "float16" });
  const half = await checkGrads((t: Tensor) => t.mul(t).mean(), [h], {
    modes: "fwd",
    eps: 0.0625,
    atol: 2e-2,
    rtol: 2e-2,
  });
  assert.deepEqual(half.checkedByMode, { rev: 0, fwd: 1 });
});

testBoth("forward mode detects kinks, and still fails a value outside them", async () => {
  const relu = (t: Tensor) => t.relu().sum();
  const x = tensor([-1, 0, 2]);
  const { kinks, checkedByMode } = await checkGrads(relu, [x], { modes: ["fwd"] });
  assert.deepEqual(checkedByMode, { rev: 0, fwd: 0 });
  assert.equal(kinks.length, 1);
  const [k] = kinks;
  assert.deepEqual([k.mode, k.argnum, k.path, k.where], ["fwd", 0, "", "a random direction"]);
  // relu'(0) = 0: got is the one-sided difference on the side where relu is flat.
  assert.ok(k.got >= Math.min(k.left, k.right) - 1e-6 && k.got <= Math.max(k.left, k.right) + 1e-6);
  assert.ok(Math.abs(k.right - k.left) > 0.05, "the one-sided differences disagree");
  // kinks: "fail" compares it with the central difference.
  const e = await failureOf(checkGrads(relu, [x], { modes: ["fwd"], kinks: "fail" }));
  assert.deepEqual(e.failures.map((fl) => [fl.mode, fl.where]), [["fwd", "a random direction"]]);
  // Both modes: each reports its kink.
  const both = await checkGrads(relu, [x]);
  assert.deepEqual(both.kinks.map((kk) => `${kk.mode} ${kk.where}`), [
    "rev [1]",
    "fwd a random direction",
  ]);
  // A derivative outside the one-sided differences fails at a kink too: the
  // added term is 0 in value but has derivative 3 (stopGradient has none).
  const wrong = (t: Tensor) => t.relu().add(t.sub(stopGradient(t)).mul(3)).sum();
  const w = await failureOf(checkGrads(wrong, [x], { modes: ["fwd"] }));
  assert.equal(w.failures[0].mode, "fwd");
});

Deno.test("checkGrads refuses bad modes and argnums, naming the option", async () => {
  const f = (x: Tensor) => x.sum();
  const x = tensor([1, 2]);
  for (const modes of [[], ["fwd", "fwd"], ["sideways"], "both", 3]) {
    await assert.rejects(
      checkGrads(f, [x], { modes: modes as never }),
      (e: Error) => e instanceof TypeError && /^checkGrads: opts\.modes must be/.test(e.message),
      `modes ${JSON.stringify(modes)}`,
    );
  }
  for (const argnums of [1, [0, -1], 0.5]) {
    await assert.rejects(
      checkGrads(f, [x], { argnums }),
      (e: Error) => e instanceof RangeError && /^checkGrads: opts\.argnums has/.test(e.message),
      `argnums ${JSON.stringify(argnums)}`,
    );
  }
  await assert.rejects(
    checkGrads(f, [x], { mode: "elementz" as never }),
    (e: Error) => e instanceof TypeError && /^checkGrads: opts\.mode must be/.test(e.message),
  );
  await assert.rejects(checkGrads("f" as never, [x]), TypeError);
  await assert.rejects(checkGrads(f, x as never), TypeError);
});
