/**
 * The closed set of primitives. Every op in littlegrad is one of these or a
 * composition of them. Each per-primitive table is a mapped type over
 * `Prim`, so adding a primitive makes the compiler list every table that
 * lacks it: the parameters (`PrimParamsMap`), the lowering to backend ops
 * (`LOWERING`), the implementation (`IMPL`, here), abstract evaluation
 * (`abstract_eval.ts`), the dtype policy (`DTYPE_POLICY` in `dtype.ts`) and
 * the VJP and JVP rules (`vjp_rules.ts`, `jvp_rules.ts`).
 *
 * Primitive names and backend op names are two vocabularies: a primitive is
 * what the tape records and transforms interpret; a backend op (`UnaryOp`,
 * `BinaryOp`, `TernaryOp`, `ReduceOp` in `backend.ts`) is what a kernel
 * computes. Today each elementwise and reduction primitive lowers to the
 * backend op of the same name; a fused compiler may lower one into several.
 *
 * Movement primitives (`reshape`, `transpose`, `broadcast`, `slice`,
 * `flip`) are views: they change strides and launch no kernel (a reshape of
 * a non-contiguous view copies once).
 * @module
 */

import type { BinaryOp, ReduceOp, TernaryOp, UnaryOp, View } from "./backend.ts";
import type { DType } from "./dtype.ts";
import { isContiguous } from "./backend.ts";
import { contiguousStrides, type Shape, sizeOf } from "./shape.ts";
import { abstractEval, type Aval } from "./abstract_eval.ts";

/** Unary elementwise primitives. */
export const UNARY_PRIMS = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "tanh",
  "sigmoid",
  "abs",
  "sign",
  "sin",
  "cos",
  "floor",
  "ceil",
  "round",
  "log1p",
  "expm1",
  "convert",
] as const;
/** Binary elementwise primitives (inputs of identical shape). */
export const BINARY_PRIMS = [
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "maximum",
  "minimum",
  "floordiv",
  "mod",
  "lt",
  "le",
  "eq",
  "ne",
] as const;
/** Reductions over some axes. */
export const REDUCE_PRIMS = ["sum", "prod", "max", "min"] as const;
/**
 * Every primitive, as printed in traces: the source of truth for `Prim`.
 *
 * @example
 * ```ts
 * import { PRIMS } from "littlegrad";
 * console.log(PRIMS.length, PRIMS.includes("matmul")); // 43 true
 * ```
 */
export const PRIMS = [
  ...UNARY_PRIMS,
  ...BINARY_PRIMS,
  ...REDUCE_PRIMS,
  "matmul",
  "reshape",
  "transpose",
  "broadcast",
  "where",
  "slice",
  "flip",
  "pad",
  "gather",
  "stopGradient",
] as const;

/** The name of a primitive. */
export type Prim = typeof PRIMS[number];
/** A unary elementwise primitive. */
export type UnaryPrim = typeof UNARY_PRIMS[number];
/** A binary elementwise primitive. */
export type BinaryPrim = typeof BINARY_PRIMS[number];
/** A reduction primitive. */
export type ReducePrim = typeof REDUCE_PRIMS[number];
/** An elementwise primitive: unary, binary, or `where`. */
export type ElementwisePrim = UnaryPrim | BinaryPrim | "where";

// ---- parameters -------------------------------------------------------------

/**
 * The static parameters of each primitive (its non-tensor arguments), keyed
 * by primitive. Elementwise primitives other than `convert`, and `matmul`,
 * take none (`Record<never, never>`).
 */
export type PrimParamsMap = {
  neg: Record<never, never>;
  exp: Record<never, never>;
  log: Record<never, never>;
  sqrt: Record<never, never>;
  tanh: Record<never, never>;
  sigmoid: Record<never, never>;
  abs: Record<never, never>;
  sign: Record<never, never>;
  sin: Record<never, never>;
  cos: Record<never, never>;
  floor: Record<never, never>;
  ceil: Record<never, never>;
  round: Record<never, never>;
  log1p: Record<never, never>;
  expm1: Record<never, never>;
  /** The target dtype. */
  convert: { readonly dtype: DType };
  add: Record<never, never>;
  sub: Record<never, never>;
  mul: Record<never, never>;
  div: Record<never, never>;
  pow: Record<never, never>;
  maximum: Record<never, never>;
  minimum: Record<never, never>;
  floordiv: Record<never, never>;
  mod: Record<never, never>;
  lt: Record<never, never>;
  le: Record<never, never>;
  eq: Record<never, never>;
  ne: Record<never, never>;
  where: Record<never, never>;
  /**
   * The reduced axes, sorted; the accumulation (and output) dtype when not
   * the input's: int32 for int8 and bool.
   */
  sum: { readonly axes: readonly number[]; readonly dtype?: DType };
  /** As for `sum`. */
  prod: { readonly axes: readonly number[]; readonly dtype?: DType };
  /** The reduced axes, sorted. */
  max: { readonly axes: readonly number[] };
  /** The reduced axes, sorted. */
  min: { readonly axes: readonly number[] };
  matmul: Record<never, never>;
  /** The target shape (of the same size). */
  reshape: { readonly shape: Shape };
  /** The axis permutation: output axis `i` is input axis `perm[i]`. */
  transpose: { readonly perm: readonly number[] };
  /** The target shape (NumPy broadcasting). */
  broadcast: { readonly shape: Shape };
  /**
   * The output shape, and the window read: the first index per axis and the
   * index step per axis (at least 1).
   */
  slice: {
    readonly shape: Shape;
    readonly starts: readonly number[];
    readonly steps: readonly number[];
  };
  /** The flipped axes. */
  flip: { readonly axes: readonly number[] };
  /**
   * The output shape, the window the input is written to (the first index
   * per axis and the index step per axis, at least 1), and the value of
   * every element outside it.
   */
  pad: {
    readonly shape: Shape;
    readonly starts: readonly number[];
    readonly steps: readonly number[];
    readonly fill: number;
  };
  /** The axis `gather` picks along. */
  gather: { readonly axis: number };
  /** None: the identity, through which no derivative flows. */
  stopGradient: Record<never, never>;
};

/**
 * The static parameters of primitive `P`. Without a type argument, those of
 * any primitive (the union): what an equation of unknown primitive holds.
 */
export type PrimParams<P extends Prim = Prim> = PrimParamsMap[P];

// ---- lowering to backend ops ------------------------------------------------

/** The backend op family a primitive lowers to. */
export type BackendOpOf<P extends ElementwisePrim | ReducePrim> = P extends UnaryPrim ? UnaryOp
  : P extends BinaryPrim ? BinaryOp
  : P extends "where" ? TernaryOp
  : ReduceOp;

/** The backend op each elementwise and reduction primitive runs as. */
export const LOWERING: { readonly [P in ElementwisePrim | ReducePrim]: BackendOpOf<P> } = {
  neg: "neg",
  exp: "exp",
  log: "log",
  sqrt: "sqrt",
  tanh: "tanh",
  sigmoid: "sigmoid",
  abs: "abs",
  sign: "sign",
  sin: "sin",
  cos: "cos",
  floor: "floor",
  ceil: "ceil",
  round: "round",
  log1p: "log1p",
  expm1: "expm1",
  convert: "convert",
  add: "add",
  sub: "sub",
  mul: "mul",
  div: "div",
  pow: "pow",
  maximum: "maximum",
  minimum: "minimum",
  floordiv: "floordiv",
  mod: "mod",
  lt: "lt",
  le: "le",
  eq: "eq",
  ne: "ne",
  where: "where",
  sum: "sum",
  prod: "prod",
  max: "max",
  min: "min",
};

// ---- implementation ---------------------------------------------------------

/** A fresh, contiguous view of a whole storage. */
function dense(storage: View["storage"], shape: Shape): View {
  return { storage, shape, strides: contiguousStrides(shape), offset: 0 };
}

/** A view sharing `view`'s storage with a permuted axis order. */
export function permuteView(view: View, perm: readonly number[]): View {
  return {
    storage: view.storage,
    shape: perm.map((p) => view.shape[p]),
    strides: perm.map((p) => view.strides[p]),
    offset: view.offset,
  };
}

/** A contiguous copy of `view` unless it already is contiguous. */
function contiguous(view: View): View {
  if (isContiguous(view)) return view;
  const storage = view.storage.backend.map("copy", [view], view.shape, view.storage.dtype);
  return dense(storage, view.shape);
}

/** Converts a view to `dtype` (a fresh storage). */
function convert(view: View, dtype: DType): View {
  return dense(view.storage.backend.map("convert", [view], view.shape, dtype), view.shape);
}

/**
 * Collapses the leading (batch) axes of a matmul operand into one, giving the
 * `[batch, rows, cols]` strides the kernel takes; copies first when the batch
 * axes cannot be expressed with one stride.
 */
function batched(view: View): { view: View; temp: boolean } {
  const nb = view.shape.length - 2;
  let ok = true;
  for (let i = 0; i < nb - 1; i++) {
    if (
      view.shape[i] !== 1 &&
      view.strides[i] !== view.strides[i + 1] * view.shape[i + 1]
    ) {
      ok = false;
    }
  }
  const source = ok ? view : contiguous(view);
  const batch = sizeOf(view.shape.slice(0, nb));
  const batchStride = nb === 0 ? 0 : source.strides[nb - 1];
  return {
    view: {
      storage: source.storage,
      shape: [batch, view.shape[nb], view.shape[nb + 1]],
      strides: [
        batch === 1 ? 0 : batchStride,
        source.strides[nb],
        source.strides[nb + 1],
      ],
      offset: source.offset,
    },
    temp: source !== view,
  };
}

/**
 * A primitive's forward rule: its output view from its input views, its
 * parameters, its output's shape and dtype (from abstract evaluation) and
 * its own name (so one family helper serves many primitives).
 */
export type Impl<P extends Prim = Prim> = (
  inputs: readonly View[],
  params: PrimParams<P>,
  out: Aval,
  prim: P,
) => View;

/** Elementwise primitives: the backend op they lower to, on views of one shape. */
const elementwise: Impl<ElementwisePrim> = (inputs, _params, out, prim) =>
  dense(inputs[0].storage.backend.map(LOWERING[prim], inputs, out.shape, out.dtype), out.shape);

/** Reductions: the reduced axes moved last, so each output reads one contiguous group. */
const reduce: Impl<ReducePrim> = ([x], { axes }, out, prim) => {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const arranged = permuteView(x, [...kept, ...axes]);
  const storage = x.storage.backend.reduce(
    LOWERING[prim],
    arranged,
    sizeOf(out.shape),
    sizeOf(axes.map((i) => x.shape[i])),
    out.dtype,
  );
  return dense(storage, out.shape);
};

/** Every primitive's forward rule. */
export const IMPL: { readonly [P in Prim]: Impl<P> } = {
  neg: elementwise,
  exp: elementwise,
  log: elementwise,
  sqrt: elementwise,
  tanh: elementwise,
  sigmoid: elementwise,
  abs: elementwise,
  sign: elementwise,
  sin: elementwise,
  cos: elementwise,
  floor: elementwise,
  ceil: elementwise,
  round: elementwise,
  log1p: elementwise,
  expm1: elementwise,
  convert: elementwise,
  add: elementwise,
  sub: elementwise,
  mul: elementwise,
  div: elementwise,
  pow: elementwise,
  maximum: elementwise,
  minimum: elementwise,
  floordiv: elementwise,
  mod: elementwise,
  lt: elementwise,
  le: elementwise,
  eq: elementwise,
  ne: elementwise,
  where: elementwise,
  sum: reduce,
  prod: reduce,
  max: reduce,
  min: reduce,
  matmul: (inputs, params, out) => {
    const [a, b] = inputs;
    const backend = a.storage.backend;
    if (a.storage.dtype === "float16") {
      // float16 operands are widened: the product accumulates in float32.
      const operands = inputs.map((v) => convert(v, "float32"));
      const wide = runPrimitive("matmul", operands, params);
      const narrow = convert(wide, "float16");
      for (const v of [...operands, wide]) backend.free(v.storage);
      return narrow;
    }
    const nd = a.shape.length;
    const [m, k, n] = [a.shape[nd - 2], a.shape[nd - 1], b.shape[nd - 1]];
    const A = batched(a);
    const B = batched(b);
    const storage = backend.matmul(A.view, B.view, A.view.shape[0], m, k, n);
    if (A.temp) backend.free(A.view.storage);
    if (B.temp) backend.free(B.view.storage);
    return dense(storage, out.shape);
  },
  reshape: ([x], _params, out) => {
    const source = contiguous(x);
    return {
      storage: source.storage,
      shape: out.shape,
      strides: contiguousStrides(out.shape),
      offset: source.offset,
    };
  },
  transpose: ([x], { perm }) => permuteView(x, perm),
  broadcast: ([x], _params, { shape }) => {
    const lead = shape.length - x.shape.length;
    const strides = shape.map((d, i) =>
      i < lead || (x.shape[i - lead] === 1 && d !== 1) ? 0 : x.strides[i - lead]
    );
    return { storage: x.storage, shape, strides, offset: x.offset };
  },
  // A view: move the offset to the first element and scale the strides.
  slice: ([x], { starts, steps }, out) => ({
    storage: x.storage,
    shape: out.shape,
    strides: x.strides.map((s, k) => s * steps[k]),
    offset: x.offset + x.strides.reduce((o, s, k) => o + s * starts[k], 0),
  }),
  // A view with negative strides: kernels do offset arithmetic in wrapping
  // u32, where adding 2³² - s is subtracting s.
  flip: ([x], { axes }) => ({
    storage: x.storage,
    shape: x.shape,
    strides: x.strides.map((s, k) => (axes.includes(k) ? -s : s)),
    offset: x.offset +
      x.strides.reduce((o, s, k) => o + (axes.includes(k) ? s * (x.shape[k] - 1) : 0), 0),
  }),
  pad: ([x], { starts, steps, fill }, out) =>
    dense(x.storage.backend.pad(x, out.shape, starts, steps, fill), out.shape),
  // x[..., ids[j], ...] along `axis`: the input as [pre, n, post].
  gather: ([x, indices], { axis }, out) => {
    const backend = x.storage.backend;
    const [source, ids] = [contiguous(x), contiguous(indices)];
    const pre = sizeOf(x.shape.slice(0, axis));
    const post = sizeOf(x.shape.slice(axis + 1));
    const count = sizeOf(ids.shape);
    const storage = backend.gather(source, ids, pre, x.shape[axis], post, count);
    if (source !== x) backend.free(source.storage);
    if (ids !== indices) backend.free(ids.storage);
    return dense(storage, out.shape);
  },
  // The identity: the same view (the transforms give it a zero derivative).
  stopGradient: ([x]) => x,
};

/**
 * Runs a primitive's forward rule. Inputs are assumed validated by the caller
 * (the op layer checks shapes and names the user-facing op in errors).
 */
export function runPrimitive<P extends Prim>(
  prim: P,
  inputs: readonly View[],
  params: PrimParams<P>,
  // The output's shape and dtype, from the abstract-evaluation rule (the
  // caller may have it already: a tensor is its own abstract value).
  out: Aval = abstractEval(
    prim,
    inputs.map((v) => ({ shape: v.shape, dtype: v.storage.dtype })),
    params,
  ),
): View {
  return IMPL[prim](inputs, params, out, prim);
}
