/**
 * Draws a computation graph, micrograd-style: the single neuron of
 * micrograd's README, `tanh(x·w + b)`, traced by `toDot` with values and
 * gradients, written to `graph.dot` and rendered to `graph.svg` with
 * Graphviz's `dot` when it is installed (`apt-get install -y graphviz`).
 *
 * Run it with `deno task graph`.
 * @module
 */

import { type Tensor, tensor, toDot } from "../mod.ts";

const neuron = (p: { w: Tensor; b: Tensor }, x: Tensor) => x.matmul(p.w).add(p.b).tanh();

const params = { w: tensor([[-3], [1]]), b: tensor([6.8813735870195432]) };
const x = tensor([[2, 0]]);
const dot = await toDot(neuron, [params, x], { names: ["p", "x"], values: true, grads: true });
await Deno.writeTextFile("graph.dot", dot);
console.log("wrote graph.dot");

try {
  const { success, stderr } = await new Deno.Command("dot", {
    args: ["-Tsvg", "graph.dot", "-o", "graph.svg"],
  }).output();
  if (!success) throw new Error(new TextDecoder().decode(stderr));
  console.log("wrote graph.svg");
} catch (err) {
  const missing = err instanceof Deno.errors.NotFound;
  console.log(
    missing
      ? "Graphviz's dot is not installed (apt-get install -y graphviz); render graph.dot elsewhere"
      : `could not run dot: ${(err as Error).message}`,
  );
}
