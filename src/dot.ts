/**
 * The computation graph as a picture: `toDot` traces a function (or takes a
 * `vjp` pullback) and writes its tape as Graphviz DOT — one box per tensor
 * with its name, shape and optionally its values and gradient, one oval per
 * primitive — the tensor version of micrograd's `draw_dot`. Render it with
 * `dot -Tsvg graph.dot > graph.svg`.
 * @module
 */

import { type CustomStep, type Equation, Tape } from "./tape.ts";
import { backendOf, scalar } from "./ops/_operands.ts";
import { Tensor } from "./tensor.ts";
import { describe } from "./core/errors.ts";
import { tidy } from "./core/scope.ts";
import { type Pullback, reverseSweep, vjp } from "./transforms.ts";
import { flattenTree, treeTensors } from "./tree.ts";
import { shapeString } from "./shape.ts";

/** Options of `toDot`. */
export interface ToDotOptions {
  /** Names of the arguments, used to label the inputs (default `arg0`, `arg1`, …). */
  names?: readonly string[];
  /** Show the values of tensors with at most `maxValues` elements (default false). */
  values?: boolean;
  /**
   * Show each tensor's gradient: the derivative of the sum of the outputs
   * with respect to it, as micrograd's `grad` (default false; needs a function, not a pullback).
   */
  grads?: boolean;
  /** Largest tensor whose values or gradient are printed (default 8). */
  maxValues?: number;
  /** Layout direction: `"LR"` (left to right, default) or `"TB"` (top to bottom). */
  rankdir?: "LR" | "TB";
}

/** A number in at most 4 significant digits: `0.1`, `-1.235`, `1e-7`. */
function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (v === 0) return "0";
  return String(Number(v.toPrecision(4)));
}

function formatValues(values: ArrayLike<number>, shape: readonly number[]): string {
  if (shape.length === 0) return formatNumber(values[0]);
  return `[${Array.from(values, formatNumber).join(", ")}]`;
}

/** Escapes text for a Graphviz record label. */
function escapeRecord(text: string): string {
  return text.replace(/[\\{}|<>"]/g, (c) => `\\${c}`);
}

/** Escapes text for a quoted Graphviz string. */
function escapeString(text: string): string {
  return text.replace(/[\\"]/g, (c) => `\\${c}`);
}

/** Computes the cotangent of every tape variable for output seeds of ones. */
function allCotangents(tape: Tape, outputs: readonly Tensor[]): Map<number, Tensor> {
  const seeds = outputs.filter((out) => tape.isActive(out)).map((out) =>
    [out, scalar(1, backendOf(out, "toDot"), out.dtype).broadcastTo(out.shape)] as const
  );
  return reverseSweep(tape, seeds, { keepAll: true });
}

/** The DOT text of a tape; values and gradients already read back. */
function render(
  tape: Tape,
  outputs: readonly Tensor[],
  labels: Map<Tensor, string>,
  values: Map<Tensor, string>,
  grads: Map<Tensor, string>,
  rankdir: string,
): string {
  const numbers = new Map<number, number>();
  const id = (t: Tensor) => {
    if (!numbers.has(t.id)) numbers.set(t.id, numbers.size);
    return `t${numbers.get(t.id)}`;
  };
  const outputSet = new Set(outputs);
  const lines = [
    "digraph littlegrad {",
    `  graph [rankdir=${rankdir}, fontname="Helvetica", nodesep=0.25, ranksep=0.35];`,
    '  node [fontname="Helvetica", fontsize=11];',
    '  edge [color="#555555", arrowsize=0.7];',
  ];
  const declared = new Set<Tensor>();
  const declare = (t: Tensor) => {
    if (declared.has(t)) return;
    declared.add(t);
    const name = labels.get(t) ?? (tape.isActive(t) ? `%${numbers.get(t.id) ?? ""}` : "const");
    const fields = [name, `f32${shapeString(t.shape)}`];
    if (values.has(t)) fields.push(`data ${values.get(t)}`);
    if (grads.has(t)) fields.push(`grad ${grads.get(t)}`);
    const style = tape.inputs.includes(t)
      ? ', style=filled, fillcolor="#dbe8f6"'
      : outputSet.has(t)
      ? ', style=filled, fillcolor="#fde3c9"'
      : !tape.isActive(t)
      ? ', color="#999999", fontcolor="#666666"'
      : "";
    lines.push(
      `  ${id(t)} [shape=record, label="{ ${fields.map(escapeRecord).join(" | ")} }"${style}];`,
    );
  };
  for (const t of tape.inputs) {
    id(t);
    declare(t);
  }
  tape.steps.forEach((e, i) => {
    for (const x of e.inputs) {
      id(x);
      declare(x);
    }
    const produced = outputsOf(e);
    produced.forEach(id);
    const label = "pullback" in e ? escapeString(e.name) : primitiveLabel(e);
    const shape = "pullback" in e ? "box, style=rounded" : "oval";
    lines.push(`  e${i} [shape=${shape}, label="${label}", fontsize=10, margin="0.05,0.02"];`);
    e.inputs.forEach((x) => lines.push(`  ${id(x)} -> e${i};`));
    for (const t of produced) {
      lines.push(`  e${i} -> ${id(t)};`);
      declare(t);
    }
  });
  for (const t of outputs) declare(t);
  lines.push("}");
  return lines.join("\n") + "\n";
}

/** The tensors a tape step produced: an equation's output, a custom step's outputs. */
function outputsOf(step: Equation | CustomStep): readonly Tensor[] {
  return "pullback" in step ? step.outputs : [step.output];
}

/** An equation's node label: the primitive and its parameters. */
function primitiveLabel(e: Equation): string {
  const params = Object.entries(e.params)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? shapeString(v) : String(v)}`)
    .join(" ");
  return params ? `${e.prim}\\n${escapeString(params)}` : e.prim;
}

function isPullback(x: unknown): x is Pullback {
  return typeof x === "function" && (x as { tape?: unknown }).tape instanceof Tape;
}

/** Reads the values of `tensors` that have at most `max` elements. */
async function readSmall(
  tensors: Iterable<Tensor>,
  max: number,
  into: Map<Tensor, string>,
): Promise<void> {
  const work = [...new Set(tensors)].filter((t) => t.size <= max && !t.disposed);
  const data = await Promise.all(work.map((t) => t.data()));
  work.forEach((t, i) => into.set(t, formatValues(data[i], t.shape)));
}

/**
 * Graphviz DOT of a traced computation: `fn` is run once at `args` under
 * `vjp` (arguments that are trees of tensors are traced; others, like label
 * arrays, are passed through), or a `vjp` pullback's tape is drawn as it is.
 * Tensors are boxes (inputs blue, outputs orange, constants grey) with
 * their name or `%n`, their shape and optionally values and gradients;
 * primitives are ovals with their parameters. Nothing it creates outlives
 * the call.
 *
 * @param target A function, or a pullback from `vjp` (whose outputs are the
 *   variables nothing else consumes; `grads` is not available for it).
 * @param args The arguments to trace `fn` at (omit for a pullback).
 * @param opts `names`, `values`, `grads`, `maxValues`, `rankdir`.
 * @returns The DOT text.
 * @example
 * ```ts
 * import { tensor, type Tensor, toDot } from "littlegrad";
 * // A neuron, as in micrograd's README: tanh(x·w + b).
 * const neuron = (p: { w: Tensor; b: Tensor }, x: Tensor) => x.matmul(p.w).add(p.b).tanh();
 * const dot = await toDot(
 *   neuron,
 *   [{ w: tensor([[-3], [1]]), b: tensor([6.8813735]) }, tensor([[2, 0]])],
 *   { names: ["p", "x"], values: true, grads: true },
 * );
 * console.log(dot); // digraph littlegrad { ... } — pipe it to `dot -Tsvg`
 * ```
 */
export async function toDot(
  target: ((...args: never[]) => unknown) | Pullback,
  args: readonly unknown[] | ToDotOptions = [],
  opts: ToDotOptions = {},
): Promise<string> {
  if (isPullback(target)) {
    const options = (Array.isArray(args) ? opts : args) as ToDotOptions;
    return await pullbackDot(target, options);
  }
  if (typeof target !== "function") {
    throw new TypeError(`toDot: expected a function or a vjp pullback, got ${describe(target)}`);
  }
  if (!Array.isArray(args)) {
    throw new TypeError(`toDot: args must be an array of the function's arguments`);
  }
  const { names = [], values = false, grads = false, maxValues = 8, rankdir = "LR" } = opts;
  checkOptions(maxValues, rankdir);
  const isTensorTree = (a: unknown) => {
    const { leaves } = flattenTree(a);
    return leaves.length > 0 && leaves.every((l) => l.value instanceof Tensor);
  };
  const traced = args.map((a, i) => (isTensorTree(a) ? i : -1)).filter((i) => i >= 0);
  const call = (...tracedArgs: unknown[]) => {
    const full = [...args];
    traced.forEach((argIndex, j) => (full[argIndex] = tracedArgs[j]));
    return (target as (...a: unknown[]) => unknown)(...full);
  };
  const [out, pullback] = vjp(call, ...traced.map((i) => args[i]));
  const outs = treeTensors(out);
  try {
    const tape = pullback.tape;
    // Input labels: the argument's name and the leaf's path in it.
    const labels = new Map<Tensor, string>();
    let k = 0;
    traced.forEach((argIndex) => {
      const base = names[argIndex] ?? `arg${argIndex}`;
      for (const { path } of flattenTree(args[argIndex]).leaves) {
        labels.set(tape.inputs[k++], path ? `${base}.${path}` : base);
      }
    });
    const outPaths = flattenTree(out).leaves.map((l) => l.path);
    outs.forEach((t, i) => {
      if (!labels.has(t)) labels.set(t, outPaths[i] ? `out.${outPaths[i]}` : "out");
    });

    const valueText = new Map<Tensor, string>();
    const gradText = new Map<Tensor, string>();
    const all = [
      ...tape.inputs,
      ...tape.steps.flatMap((e) => [...e.inputs, ...outputsOf(e)]),
      ...outs,
    ];
    if (values) await readSmall(all, maxValues, valueText);
    if (grads) {
      const byId = new Map(all.map((t) => [t.id, t]));
      const cotangents = tidy(() => [...allCotangents(tape, outs).entries()]);
      try {
        // Read each cotangent once (add passes one tensor to both inputs), label every variable.
        const text = new Map<Tensor, string>();
        await readSmall(cotangents.map(([, g]) => g), maxValues, text);
        for (const [id, g] of cotangents) {
          const t = byId.get(id);
          if (t && text.has(g)) gradText.set(t, text.get(g)!);
        }
      } finally {
        for (const [, g] of cotangents) g.dispose();
      }
    }
    return render(tape, outs, labels, valueText, gradText, rankdir);
  } finally {
    pullback.dispose();
    for (const t of outs) t.dispose();
  }
}

function checkOptions(maxValues: number, rankdir: string): void {
  if (!Number.isInteger(maxValues) || maxValues < 0) {
    throw new RangeError(`toDot: maxValues must be a non-negative integer, got ${maxValues}`);
  }
  if (rankdir !== "LR" && rankdir !== "TB") {
    throw new RangeError(`toDot: rankdir must be "LR" or "TB", got ${String(rankdir)}`);
  }
}

async function pullbackDot(pullback: Pullback, opts: ToDotOptions): Promise<string> {
  const { names = [], values = false, maxValues = 8, rankdir = "LR" } = opts;
  checkOptions(maxValues, rankdir);
  if (opts.grads) {
    throw new TypeError(
      "toDot: grads needs the function (toDot(fn, args, { grads: true })); a pullback has no output seed",
    );
  }
  const tape = pullback.tape;
  const consumed = new Set(tape.steps.flatMap((e) => e.inputs));
  const outs = tape.steps.flatMap(outputsOf).filter((t) => !consumed.has(t));
  const labels = new Map<Tensor, string>();
  tape.inputs.forEach((t, i) => labels.set(t, names[i] ?? `in${i}`));
  outs.forEach((t, i) => labels.set(t, outs.length === 1 ? "out" : `out${i}`));
  const valueText = new Map<Tensor, string>();
  if (values) {
    const all = [...tape.inputs, ...tape.steps.flatMap((e) => [...e.inputs, ...outputsOf(e)])];
    if (all.some((t) => t.disposed)) {
      throw new ReferenceError("toDot: the pullback was disposed; its values are gone");
    }
    await readSmall(all, maxValues, valueText);
  }
  return render(tape, outs, labels, valueText, new Map(), rankdir);
}
