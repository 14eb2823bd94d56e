/**
 * The closed set of primitives. Every op in littlegrad is one of these or a
 * composition of them; each primitive has a forward rule here (shape rule and
 * backend call, on views) and a VJP rule in `vjp_rules.ts`.
 *
 * Movement primitives (`reshape`, `transpose`, `broadcast`) are views: they
 * change strides and launch no kernel (a reshape of a non-contiguous view
 * copies once).
 * @module
 */

import type { BinaryOp, ReduceOp, TernaryOp, UnaryOp, View } from "./backend.ts";
import type { DType } from "./dtype.ts";
import { isContiguous } from "./backend.ts";
import { contiguousStrides, type Shape, sizeOf } from "./shape.ts";
import { abstractEval } from "./abstract_eval.ts";

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
] as const satisfies readonly UnaryOp[];
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
] as const satisfies readonly BinaryOp[];
/** Every primitive, as printed in traces. */
export const PRIMS: readonly Prim[] = [
  ...UNARY_PRIMS,
  ...BINARY_PRIMS,
  "sum",
  "prod",
  "max",
  "min",
  "matmul",
  "reshape",
  "transpose",
  "broadcast",
  "where",
  "slice",
  "flip",
  "pad",
  "gather",
];

/** The name of a primitive. */
export type Prim =
  | Exclude<UnaryOp, "copy">
  | BinaryOp
  | TernaryOp
  | ReduceOp
  | "matmul"
  | "reshape"
  | "transpose"
  | "broadcast"
  | "slice"
  | "flip"
  | "pad"
  | "gather";

/** Static parameters of an equation (the non-tensor arguments of a primitive). */
export interface PrimParams {
  /** Target dtype (`convert`), or the accumulation dtype of `sum` and `prod` (int32 for int8 and bool). */
  dtype?: DType;
  /** Reduced axes (`sum`, `prod`, `max`, `min`), sorted; flipped axes (`flip`). */
  axes?: readonly number[];
  /** Target shape (`reshape`, `broadcast`). */
  shape?: Shape;
  /** Axis permutation (`transpose`). */
  perm?: readonly number[];
  /** First index per axis (`slice`: read from; `pad`: write to). */
  starts?: readonly number[];
  /** Index step per axis, at least 1 (`slice`, `pad`). */
  steps?: readonly number[];
  /** The axis `gather` picks along. */
  axis?: number;
  /** Value of the elements `pad` does not write. */
  fill?: number;
}

const UNARY = new Set<string>(UNARY_PRIMS);
const BINARY = new Set<string>(BINARY_PRIMS);

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
 * Runs a primitive's forward rule. Inputs are assumed validated by the caller
 * (the op layer checks shapes and names the user-facing op in errors).
 */
export function runPrimitive(
  prim: Prim,
  inputs: readonly View[],
  params: PrimParams,
): View {
  const x = inputs[0];
  const backend = x.storage.backend;
  // The output's shape and dtype, from the abstract-evaluation rule.
  const out = abstractEval(
    prim,
    inputs.map((v) => ({ shape: v.shape, dtype: v.storage.dtype })),
    params,
  );
  if (UNARY.has(prim) || BINARY.has(prim) || prim === "where") {
    return dense(backend.map(prim as UnaryOp, inputs, out.shape, out.dtype), out.shape);
  }
  switch (prim) {
    case "sum":
    case "prod":
    case "max":
    case "min": {
      const axes = params.axes!;
      const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
      const arranged = permuteView(x, [...kept, ...axes]);
      const storage = backend.reduce(
        prim,
        arranged,
        sizeOf(out.shape),
        sizeOf(axes.map((i) => x.shape[i])),
        out.dtype,
      );
      return dense(storage, out.shape);
    }
    case "matmul": {
      if (x.storage.dtype === "float16") {
        // float16 operands are widened: the product accumulates in float32.
        const operands = inputs.map((v) => convert(v, "float32"));
        const wide = runPrimitive("matmul", operands, params);
        const narrow = convert(wide, "float16");
        for (const v of [...operands, wide]) backend.free(v.storage);
        return narrow;
      }
      const [a, b] = inputs;
      const nd = a.shape.length;
      const [m, k, n] = [a.shape[nd - 2], a.shape[nd - 1], b.shape[nd - 1]];
      const A = batched(a);
      const B = batched(b);
      const storage = backend.matmul(A.view, B.view, A.view.shape[0], m, k, n);
      if (A.temp) backend.free(A.view.storage);
      if (B.temp) backend.free(B.view.storage);
      return dense(storage, out.shape);
    }
    case "reshape": {
      const source = contiguous(x);
      return {
        storage: source.storage,
        shape: out.shape,
        strides: contiguousStrides(out.shape),
        offset: source.offset,
      };
    }
    case "transpose":
      return permuteView(x, params.perm!);
    case "slice": {
      // A view: move the offset to the first element and scale the strides.
      const starts = params.starts!;
      const steps = params.steps!;
      return {
        storage: x.storage,
        shape: out.shape,
        strides: x.strides.map((s, k) => s * steps[k]),
        offset: x.offset + x.strides.reduce((o, s, k) => o + s * starts[k], 0),
      };
    }
    case "flip": {
      // A view with negative strides: kernels do offset arithmetic in
      // wrapping u32, where adding 2³² - s is subtracting s.
      const axes = params.axes!;
      return {
        storage: x.storage,
        shape: x.shape,
        strides: x.strides.map((s, k) => (axes.includes(k) ? -s : s)),
        offset: x.offset +
          x.strides.reduce((o, s, k) => o + (axes.includes(k) ? s * (x.shape[k] - 1) : 0), 0),
      };
    }
    case "pad": {
      return dense(
        backend.pad(x, out.shape, params.starts!, params.steps!, params.fill ?? 0),
        out.shape,
      );
    }
    case "gather": {
      // x[..., ids[j], ...] along `axis`: the input as [pre, n, post].
      const axis = params.axis!;
      const [source, ids] = [contiguous(x), contiguous(inputs[1])];
      const pre = sizeOf(x.shape.slice(0, axis));
      const post = sizeOf(x.shape.slice(axis + 1));
      const count = sizeOf(ids.shape);
      const storage = backend.gather(source, ids, pre, x.shape[axis], post, count);
      if (source !== x) backend.free(source.storage);
      if (ids !== inputs[1]) backend.free(ids.storage);
      return dense(storage, out.shape);
    }
    case "broadcast": {
      const shape = out.shape;
      const lead = shape.length - x.shape.length;
      const strides = shape.map((d, i) =>
        i < lead || (x.shape[i - lead] === 1 && d !== 1) ? 0 : x.strides[i - lead]
      );
      return { storage: x.storage, shape, strides, offset: x.offset };
    }
  }
  throw new Error(`internal: no forward rule for primitive '${prim}'`);
}
