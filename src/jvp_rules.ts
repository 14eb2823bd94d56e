/**
 * Jacobian-vector product rules, one per primitive: given an equation and a
 * tangent for each input (`null` for a symbolic zero: no buffer), the tangent
 * of its output (`null` when it is zero). Written with the public tensor ops,
 * so a forward-mode result is itself differentiable. The mapped type makes a
 * primitive without a rule a compile error, and each rule reads its own
 * primitive's parameters.
 *
 * At kinks and ties every rule is the transpose of its VJP rule in
 * `vjp_rules.ts` (the same Jacobian: `relu` 0 at 0, ties split evenly), so
 * forward and reverse mode never describe different derivatives; the tests
 * check `⟨u, J v⟩ = ⟨Jᵀ u, v⟩` for every primitive, ties included.
 * @module
 */

import type { Prim } from "./primitives.ts";
import { isFloat } from "./dtype.ts";
import { apply } from "./core/interpreter.ts";
import { backendOf, scalar } from "./ops/_operands.ts";
import type { Tensor } from "./tensor.ts";
import { where } from "./ops/elementwise.ts";
import { type EquationOf, VJP_RULES } from "./vjp_rules.ts";

/**
 * Output tangent from input tangents (`null`: a symbolic zero), for an
 * equation of `P` (without a type argument, of any primitive).
 */
export type JvpRule<P extends Prim = Prim> = (
  tangents: readonly (Tensor | null)[],
  eqn: EquationOf<P>,
) => Tensor | null;

/** Zeros shaped like `x` (a broadcast scalar: one tiny buffer). */
function zerosLike(x: Tensor): Tensor {
  return scalar(0, backendOf(x, "jvp"), x.dtype).broadcastTo(x.shape);
}

/** `t` or zeros like `x` when `t` is a symbolic zero. */
function orZeros(t: Tensor | null, x: Tensor): Tensor {
  return t ?? zerosLike(x);
}

/** The sum of the non-null terms, or `null` when all are zero. */
function sumOf(...terms: (Tensor | null)[]): Tensor | null {
  const present = terms.filter((t): t is Tensor => t !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a.add(b));
}

/** Piecewise constant, or not differentiable: the tangent is zero. */
const zero: JvpRule = () => null;

/** A rule linear in its only tangent: `f(t)` with `f` the primitive itself. */
const linear: JvpRule = ([t], { prim, params }) => t && apply(prim, [t], params);

/** A unary rule `t · f'(x, out)`. */
function scaled(derivative: (x: Tensor, out: Tensor) => Tensor): JvpRule {
  return ([t], { inputs: [x], output }) => t && t.mul(derivative(x, output));
}

/**
 * `maximum` and `minimum`: the chosen input's tangent, the mean of both at a
 * tie (the transpose of the VJP's even split). `wins(a, b)`: `a` chosen outright.
 */
function choiceRule(wins: (a: Tensor, b: Tensor) => Tensor): JvpRule {
  return ([ta, tb], { inputs: [a, b] }) => {
    if (!ta && !tb) return null;
    const [da, db] = [orZeros(ta, a), orZeros(tb, b)];
    return where(wins(a, b), da, where(wins(b, a), db, da.add(db).mul(0.5)));
  };
}

/** `max` and `min`: the tangent averaged over the tied extremes of each group. */
const extremeRule: JvpRule<"max" | "min"> = ([t], { inputs: [x], output, params: { axes } }) => {
  if (!t) return null;
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const mask = x.eq(output.reshape(kept));
  const count = mask.astype(t.dtype).sum(axes);
  return where(mask, t, 0).sum(axes).div(count);
};

/** The JVP rule of every primitive, each taking its own primitive's parameters. */
const RULES: { readonly [P in Prim]: JvpRule<P> } = {
  neg: linear,
  exp: scaled((_x, out) => out),
  log: ([t], { inputs: [x] }) => t && t.div(x),
  sqrt: ([t], { output }) => t && t.div(output.mul(2)),
  tanh: scaled((_x, out) => out.mul(out).neg().add(1)),
  sigmoid: scaled((_x, out) => out.mul(out.neg().add(1))),
  // sign(0) = 0: the tangent at the kink is 0, as the VJP's.
  abs: scaled((x) => x.sign()),
  sign: zero,
  sin: scaled((x) => x.cos()),
  cos: scaled((x) => x.sin().neg()),
  floor: zero,
  ceil: zero,
  round: zero,
  log1p: ([t], { inputs: [x] }) => t && t.div(x.add(1)),
  expm1: scaled((_x, out) => out.add(1)),
  // Between floats the tangent converts; to or from integers it is zero.
  convert: ([t], { output }) => (t && isFloat(output.dtype) ? t.astype(output.dtype) : null),
  add: ([ta, tb]) => sumOf(ta, tb),
  sub: ([ta, tb]) => sumOf(ta, tb && tb.neg()),
  mul: ([ta, tb], { inputs: [a, b] }) => sumOf(ta && ta.mul(b), tb && tb.mul(a)),
  div: ([ta, tb], { inputs: [_a, b], output }) =>
    sumOf(ta && ta.div(b), tb && tb.mul(output).div(b).neg()),
  // The same conventions as the VJP: b·a^(b-1) is 0 for b = 0, and the
  // exponent's derivative a^b·log a is 0 at a = 0.
  pow: ([ta, tb], { inputs: [a, b], output }) =>
    sumOf(
      ta && where(b.eq(0), 0, ta.mul(b).mul(a.pow(b.sub(1)))),
      tb && tb.mul(output).mul(where(a.eq(0), 1, a).log()),
    ),
  maximum: choiceRule((a, b) => b.lt(a)),
  minimum: choiceRule((a, b) => a.lt(b)),
  floordiv: zero,
  // a mod b = a - b·floor(a / b), with floor's derivative 0.
  mod: ([ta, tb], { inputs: [a, b] }) => sumOf(ta, tb && tb.mul(a.floorDiv(b)).neg()),
  lt: zero,
  le: zero,
  eq: zero,
  ne: zero,
  // The chosen branch's tangent; the condition has none.
  where: ([, ta, tb], { inputs: [c, a, b] }) =>
    !ta && !tb ? null : where(c, orZeros(ta, a), orZeros(tb, b)),
  sum: ([t], { params: { axes } }) => t && t.sum(axes),
  // Each element's derivative is the product of the others (the VJP rule's
  // exclusive products, with a cotangent of ones).
  prod: ([t], eqn) => {
    if (!t) return null;
    const prodVjp = VJP_RULES.prod;
    if (!prodVjp) throw new Error("internal: prod has no VJP rule");
    const [others] = prodVjp(
      scalar(1, backendOf(t, "jvp"), t.dtype)
        .broadcastTo(eqn.output.shape),
      eqn,
      [true],
    );
    return others!.mul(t).sum(eqn.params.axes);
  },
  max: extremeRule,
  min: extremeRule,
  matmul: ([ta, tb], { inputs: [a, b] }) => sumOf(ta && ta.matmul(b), tb && a.matmul(tb)),
  reshape: linear,
  transpose: linear,
  broadcast: linear,
  slice: linear,
  flip: linear,
  // What pad writes around the input is a constant: its tangent is 0.
  pad: ([t], { params }) => t && apply("pad", [t], { ...params, fill: 0 }),
  gather: ([t], { inputs: [, ids], params }) => t && apply("gather", [t, ids], params),
  // No tangent flows through stopGradient: a symbolic zero.
  stopGradient: () => null,
};

/**
 * The JVP rule of every primitive, as forward mode calls it: with an
 * equation of any primitive (see `VJP_RULES`); the entries are checked
 * against those in `RULES` above.
 */
export const JVP_RULES: { readonly [P in Prim]: JvpRule } = RULES as {
  readonly [P in Prim]: JvpRule;
};
