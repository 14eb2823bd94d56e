/**
 * toDot: the DOT text of a traced computation (structure, labels, values,
 * gradients equal to micrograd's for its README neuron and to `grad`),
 * pullbacks, memory, errors, and rendering with Graphviz when `dot` is
 * installed (`--allow-run=dot`; reported as ignored otherwise).
 */

import assert from "node:assert/strict";
import {
  checkpoint,
  grad,
  memoryStats,
  printTrace,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  toDot,
  vjp,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type Neuron = { w: Tensor; b: Tensor };
const neuron = (p: Neuron, x: Tensor) => x.matmul(p.w).add(p.b).tanh();
const neuronArgs = () =>
  [{ w: tensor([[-3], [1]]), b: tensor([6.881373587019543]) }, tensor([[2, 0]])] as const;

testBoth("toDot draws tensors and primitives in trace order", async () => {
  const [p, x] = neuronArgs();
  const dot = await toDot(neuron, [p, x], { names: ["p", "x"] });
  assert.equal(
    dot,
    `digraph littlegrad {
  graph [rankdir=LR, fontname="Helvetica", nodesep=0.25, ranksep=0.35];
  node [fontname="Helvetica", fontsize=11];
  edge [color="#555555", arrowsize=0.7];
  t0 [shape=record, label="{ p.w | f32[2,1] }", style=filled, fillcolor="#dbe8f6"];
  t1 [shape=record, label="{ p.b | f32[1] }", style=filled, fillcolor="#dbe8f6"];
  t2 [shape=record, label="{ x | f32[1,2] }", style=filled, fillcolor="#dbe8f6"];
  e0 [shape=oval, label="matmul", fontsize=10, margin="0.05,0.02"];
  t2 -> e0;
  t0 -> e0;
  e0 -> t3;
  t3 [shape=record, label="{ %3 | f32[1,1] }"];
  e1 [shape=oval, label="broadcast\\nshape=[1,1]", fontsize=10, margin="0.05,0.02"];
  t1 -> e1;
  e1 -> t4;
  t4 [shape=record, label="{ %4 | f32[1,1] }"];
  e2 [shape=oval, label="add", fontsize=10, margin="0.05,0.02"];
  t3 -> e2;
  t4 -> e2;
  e2 -> t5;
  t5 [shape=record, label="{ %5 | f32[1,1] }"];
  e3 [shape=oval, label="tanh", fontsize=10, margin="0.05,0.02"];
  t5 -> e3;
  e3 -> t6;
  t6 [shape=record, label="{ out | f32[1,1] }", style=filled, fillcolor="#fde3c9"];
}
`,
  );
  // Intermediate names are the %n of printTrace.
  const trace = printTrace(neuron, p, x);
  assert.match(trace, /%3:f32\[1,1\] = matmul %2 %0/);
  assert.match(trace, /%5:f32\[1,1\] = add %3 %4/);
  for (const t of [p.w, p.b, x]) t.dispose();
});

testBoth("toDot shows values and micrograd's gradients for its README neuron", async () => {
  const [p, x] = neuronArgs();
  const before = memoryStats().liveTensors;
  const dot = await toDot(neuron, [p, x], { names: ["p", "x"], values: true, grads: true });
  assert.equal(memoryStats().liveTensors, before, "toDot leaked tensors");
  // micrograd: o = 0.7071, x1.grad = -1.5, x2.grad = 0.5, w1.grad = 1, w2.grad = 0, b.grad = 0.5.
  assert.match(dot, /label="\{ x \| f32\[1,2\] \| data \[2, 0\] \| grad \[-1.5, 0.5\] \}"/);
  assert.match(dot, /label="\{ p.w \| f32\[2,1\] \| data \[-3, 1\] \| grad \[1, 0\] \}"/);
  assert.match(dot, /label="\{ p.b \| f32\[1\] \| data \[6.881\] \| grad \[0.5\] \}"/);
  assert.match(dot, /label="\{ %5 \| f32\[1,1\] \| data \[0.8814\] \| grad \[0.5\] \}"/);
  assert.match(dot, /label="\{ out \| f32\[1,1\] \| data \[0.7071\] \| grad \[1\] \}"/);
  // The same gradients as grad().
  const g = grad((q: Neuron) => neuron(q, x).sum())(p);
  assertClose(await g.w.array(), [[1], [0]], { label: "w" });
  assertClose(await g.b.array(), [0.5], { label: "b" });
  for (const t of [p.w, p.b, x, g.w, g.b]) t.dispose();
});

testBoth(
  "constants are drawn, non-tensor arguments pass through, large values are left out",
  async () => {
    const w = tensor([[1, -1, 0.5], [2, 0, 1]]);
    const x = tensor([[1, 2], [3, 4], [5, 6], [7, 8]]);
    const loss = (w: Tensor, x: Tensor, labels: number[]) =>
      softmaxCrossEntropy(x.matmul(w).mul(2), labels);
    const dot = await toDot(loss, [w, x, [0, 2, 1, 1]], {
      names: ["w", "x", "labels"],
      values: true,
      maxValues: 6,
    });
    assert.match(dot, /label="\{ w \| f32\[2,3\] \| data \[1, -1, 0.5, 2, 0, 1\] \}"/);
    assert.match(dot, /label="\{ x \| f32\[4,2\] \}"/, "8 values are more than maxValues");
    assert.match(dot, /label="\{ const \| f32\[4,3\] \}", color="#999999"/);
    assert.match(dot, /label="sum\\naxes=\[1\]"/);
    assert.match(dot, /label="\{ out \| f32\[\] \| data [0-9.]+ \}"/);
    assert.doesNotMatch(dot, /labels/, "the label array is not a traced input");
    w.dispose();
    x.dispose();
  },
);

testBoth("toDot draws a vjp pullback's tape", async () => {
  const a = tensor([1, 2]);
  const [y, pullback] = vjp((t: Tensor) => t.mul(t).sum(), a);
  const dot = await toDot(pullback, { names: ["a"], values: true });
  assert.match(dot, /label="\{ a \| f32\[2\] \| data \[1, 2\] \}"/);
  assert.match(dot, /label="\{ out \| f32\[\] \| data 5 \}"/);
  await assert.rejects(toDot(pullback, { grads: true }), /grads needs the function/);
  pullback.dispose();
  await assert.rejects(toDot(pullback, { values: true }), /the pullback was disposed/);
  y.dispose();
  a.dispose();
});

testBoth("toDot rejects what it cannot draw", async () => {
  await assert.rejects(toDot(3 as never, []), /expected a function or a vjp pullback/);
  await assert.rejects(toDot((x: Tensor) => x, {} as never), /args must be an array/);
  const x = tensor([1]);
  await assert.rejects(
    toDot((t: Tensor) => t.exp(), [x], { rankdir: "RL" as never }),
    /rankdir must be "LR" or "TB"/,
  );
  x.dispose();
});

const hasDot = await (async () => {
  try {
    return (await new Deno.Command("dot", { args: ["-V"], stderr: "null" }).output()).success;
  } catch {
    return false; // Graphviz not installed, or no --allow-run=dot
  }
})();

Deno.test({
  name: "Graphviz renders toDot's output",
  ignore: !hasDot,
  async fn() {
    const [p, x] = neuronArgs();
    const dot = await toDot(neuron, [p, x], { values: true, grads: true, rankdir: "TB" });
    const child = new Deno.Command("dot", {
      args: ["-Tsvg"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(dot));
    await writer.close();
    const { success, stdout, stderr } = await child.output();
    assert.ok(success, new TextDecoder().decode(stderr));
    const svg = new TextDecoder().decode(stdout);
    assert.match(svg, /<svg/);
    assert.match(svg, />tanh</);
    assert.match(svg, /grad \[&#45;1.5, 0.5\]/);
    for (const t of [p.w, p.b, x]) t.dispose();
  },
});

testBoth(
  "toDot draws a custom step (checkpoint) as one node connected to its inputs and outputs",
  async () => {
    const layer = checkpoint((h: Tensor) => h.tanh().mul(2));
    const x = tensor([0.5, -1]);
    const dot = await toDot((z: Tensor) => layer(z.mul(3)).exp(), [x], { grads: true });
    assert.match(dot, /e(\d+) \[shape=box, style=rounded, label="checkpoint\(fn\)"/);
    const node = dot.match(/e(\d+) \[shape=box/)![1];
    assert.match(dot, new RegExp(`t\\d+ -> e${node};`), "the checkpoint has an input edge");
    assert.match(dot, new RegExp(`e${node} -> t\\d+;`), "and an output edge");
    assert.doesNotMatch(dot, /label="tanh"/, "its inside is not drawn");
    // The gradient reaches the input through the custom step.
    // d/dx exp(2·tanh(3x)) at 0.5 is 6.627.
    assert.match(dot, /label="\{ arg0 \| f32\[2\] \| grad \[6\.627, /);
    x.dispose();
  },
);
