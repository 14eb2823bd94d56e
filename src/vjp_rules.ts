/**
 * Vector-Jacobian product rules, one per primitive, written with the public
 * tensor ops — so the backward pass is itself traced, and `grad(grad(f))`
 * works. The mapped type makes a primitive without a rule a compile error,
 * and each rule reads its own primitive's parameters.
 * @module
 */

import type { Equation } from "./tape.ts";
import type { Prim, PrimParams } from "./primitives.ts";
import { isFloat } from "./dtype.ts";
import { apply } from "./core/interpreter.ts";
import { clampIndices } from "./ops/_indexing.ts";
import { oneHot } from "./ops/indexing.ts";
import { scan } from "./ops/_reduce.ts";
import type { Tensor } from "./tensor.ts";
import { where } from "./ops/elementwise.ts";

/**
 * An equation of primitive `P`, with `P`'s parameters (`EquationOf<Prim>`
 * is any equation).
 */
export type EquationOf<P extends Prim> =
  & Omit<Equation, "prim" | "params">
  & { readonly prim: P; readonly params: PrimParams<P> };

/**
 * Given the output cotangent `g` of an equation of `P`, returns one
 * cotangent per input (`null` where the input needs none: `wants[i]` is
 * false, or the primitive is not differentiable in it).
 */
export type VjpRule<P extends Prim = Prim> = (
  g: Tensor,
  eqn: EquationOf<P>,
  wants: readonly boolean[],
) => (Tensor | null)[];

/** Sums `g` over the axes a `broadcast` expanded, back to `shape`. */
function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  const lead = g.ndim - shape.length;
  const axes = g.shape.map((_, i) => i).filter((i) =>
    i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)
  );
  return g.sum(axes).reshape(shape);
}

/** Swaps the last two axes. */
function mT(x: Tensor): Tensor {
  const perm = [...x.shape.keys()];
  [perm[x.ndim - 2], perm[x.ndim - 1]] = [perm[x.ndim - 1], perm[x.ndim - 2]];
  return x.transpose(perm);
}

const noGradient: VjpRule = (_g, eqn) => eqn.inputs.map(() => null);

/** `max` and `min`: the gradient goes to the extremes, split evenly among ties. */
const extremeRule: VjpRule<"max" | "min"> = (g, { inputs: [x], output, params: { axes } }) => {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const mask = x.eq(output.reshape(kept));
  const count = mask.astype(g.dtype).sum(axes, { keepdims: true });
  return [where(mask, g.reshape(kept).div(count), 0)];
};

/**
 * `maximum` and `minimum`: the gradient goes to the chosen input, and ties
 * split it evenly (the mean of the one-sided derivatives). `wins(a, b)` says
 * where `a` is chosen outright.
 */
function choiceRule(wins: (a: Tensor, b: Tensor) => Tensor): VjpRule {
  return (g, { inputs: [a, b] }, [wa, wb]) => {
    const tie = a.eq(b);
    const half = where(tie, g.mul(0.5), 0);
    return [
      wa ? where(wins(a, b), g, half) : null,
      wb ? where(wins(b, a), g, half) : null,
    ];
  };
}

/** The VJP rule of every primitive, each taking its own primitive's parameters. */
const RULES: { readonly [P in Prim]: VjpRule<P> | null } = {
  neg: (g) => [g.neg()],
  exp: (g, { output }) => [g.mul(output)],
  log: (g, { inputs: [x] }) => [g.div(x)],
  sqrt: (g, { output }) => [g.div(output.mul(2))],
  tanh: (g, { output }) => [g.mul(output.mul(output).neg().add(1))],
  sigmoid: (g, { output }) => [g.mul(output.mul(output.neg().add(1)))],
  abs: (g, { inputs: [x] }) => [g.mul(x.sign())],
  sign: noGradient,
  sin: (g, { inputs: [x] }) => [g.mul(x.cos())],
  cos: (g, { inputs: [x] }) => [g.mul(x.sin()).neg()],
  // Piecewise constant: zero almost everywhere (and what central differences see).
  floor: noGradient,
  ceil: noGradient,
  round: noGradient,
  log1p: (g, { inputs: [x] }) => [g.div(x.add(1))],
  expm1: (g, { output }) => [g.mul(output.add(1))],
  // Between floats the cotangent converts back; integer inputs get none.
  convert: (g, { inputs: [x] }) => [isFloat(x.dtype) ? g.astype(x.dtype) : null],
  add: (g, _e, [wa, wb]) => [wa ? g : null, wb ? g : null],
  sub: (g, _e, [wa, wb]) => [wa ? g : null, wb ? g.neg() : null],
  mul: (
    g,
    { inputs: [a, b] },
    [wa, wb],
  ) => [wa ? g.mul(b) : null, wb ? g.mul(a) : null],
  div: (g, { inputs: [_a, b], output }, [wa, wb]) => [
    wa ? g.div(b) : null,
    wb ? g.mul(output).div(b).neg() : null,
  ],
  pow: (g, { inputs: [a, b], output }, [wa, wb]) => [
    // d/da a^b = b·a^(b-1), which is 0 for b = 0 even at a = 0 (not 0·inf).
    wa ? where(b.eq(0), 0, g.mul(b).mul(a.pow(b.sub(1)))) : null,
    // d/db a^b = a^b·log a, taken as 0 at a = 0 (as JAX and PyTorch do: the
    // limit for b > 0), not 0·(-inf). The log reads 1 where a = 0, so no
    // -inf exists even in the branch not taken, and grad of grad stays finite.
    wb ? g.mul(output).mul(where(a.eq(0), 1, a).log()) : null,
  ],
  maximum: choiceRule((a, b) => b.lt(a)),
  minimum: choiceRule((a, b) => a.lt(b)),
  floordiv: noGradient,
  // a mod b = a - b·floor(a / b), with floor's derivative 0.
  mod: (g, { inputs: [a, b] }, [wa, wb]) => [
    wa ? g : null,
    wb ? g.mul(a.floorDiv(b)).neg() : null,
  ],
  lt: noGradient,
  le: noGradient,
  eq: noGradient,
  ne: noGradient,
  // The condition gets no gradient; each branch gets g where it was chosen.
  where: (g, { inputs: [c] }, [, wa, wb]) => [
    null,
    wa ? where(c, g, 0) : null,
    wb ? where(c, 0, g) : null,
  ],
  sum: (g, { inputs: [x], params: { axes } }) => {
    const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    return [g.reshape(kept).broadcastTo(x.shape)];
  },
  prod: (g, { inputs: [x], params: { axes } }) => {
    // Each element's derivative is the product of the others: the exclusive
    // products from the left times those from the right, over the reduced
    // axes moved last and flattened. No division, so zeros are exact, and the
    // rule is a polynomial of x: every derivative order is right.
    const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
    const perm = [...keptAxes, ...axes];
    const inverse = perm.map((_, k) => perm.indexOf(k));
    const lead = keptAxes.map((i) => x.shape[i]);
    const n = axes.reduce((p, i) => p * x.shape[i], 1);
    const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    if (n === 0) return [g.reshape(kept).broadcastTo(x.shape)]; // an empty input
    const rows = x.transpose(perm).reshape([...lead, n]);
    const last = lead.length;
    const exclusive = (t: Tensor) => {
      const widths = t.shape.map((_, k): [number, number] => (k === last ? [1, 0] : [0, 0]));
      const head = t.slice(t.shape.map(() => 0), t.shape.map((d, k) => (k === last ? d - 1 : d)));
      return scan(head.pad(widths, 1), last, "mul");
    };
    const others = exclusive(rows).mul(exclusive(rows.flip(last)).flip(last));
    return [
      others.reshape(perm.map((i) => x.shape[i])).transpose(inverse).mul(g.reshape(kept)),
    ];
  },
  max: extremeRule,
  min: extremeRule,
  matmul: (g, { inputs: [a, b] }, [wa, wb]) => [
    wa ? g.matmul(mT(b)) : null,
    wb ? mT(a).matmul(g) : null,
  ],
  reshape: (g, { inputs: [x] }) => [g.reshape(x.shape)],
  transpose: (g, { params: { perm } }) => {
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    return [g.transpose(inverse)];
  },
  broadcast: (g, { inputs: [x] }) => [unbroadcast(g, x.shape)],
  // Scatter-add as a matmul: a one-hot [n, count] matrix times the
  // cotangent [pre, count, post] sums each picked slice back into its row.
  // Deterministic (no atomics), and itself differentiable.
  gather: (g, { inputs: [x, ids], params: { axis } }) => {
    const n = x.shape[axis];
    const hot = oneHot(clampIndices(ids.reshape([ids.size]), n), n, { dtype: g.dtype });
    const pre = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const post = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const cot = g.reshape([pre, ids.size, post]);
    return [hot.transpose().matmul(cot).reshape(x.shape), null];
  },
  // No cotangent flows back through stopGradient: null means the tape does
  // not record it at all, so nothing downstream computes a cotangent for it.
  stopGradient: null,
  // A strided slice and a pad onto the same lattice are each other's transpose.
  slice: (g, { inputs: [x], params: { starts, steps } }) => [
    apply("pad", [g], { shape: x.shape, starts, steps, fill: 0 }),
  ],
  flip: (g, { params: { axes } }) => [apply("flip", [g], { axes })],
  pad: (g, { inputs: [x], params: { starts, steps } }) => [
    apply("slice", [g], { shape: x.shape, starts, steps }),
  ],
};

/**
 * The VJP rule of every primitive, as the transforms call it: with an
 * equation of any primitive. `apply` records each primitive with its own
 * parameters, so `VJP_RULES[eqn.prim]` receives the parameters it reads;
 * the entries are checked against those in `RULES` above.
 */
export const VJP_RULES: { readonly [P in Prim]: VjpRule | null } = RULES as {
  readonly [P in Prim]: VjpRule | null;
};
