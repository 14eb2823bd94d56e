/**
 * The fused-kernel IR: what `jit`'s scheduler (`schedule.ts`) produces and
 * a backend's renderer turns into code (WGSL today, `kernels/fused.ts`;
 * WebAssembly next). It says nothing about any target language.
 *
 * A kernel computes one or more contiguous outputs over an iteration space
 * (`shape`, row-major), one element per index. Its body is a list of nodes
 * in topological order (`args` name earlier nodes), each a scalar value
 * with the semantics of the eager op it came from: a node's value is what
 * eager mode would have stored for that element (float16 rounded, int8
 * wrapped, bool as 0 or 1), so a fused kernel computes what the separate
 * kernels computed. A kernel may contain one reduction: nodes in the
 * `"reduce"` space run once per reduced element (the reduction's input),
 * the `"reduced"` node is the reduction's result, and the nodes in the
 * `"out"` space run once per output (its epilogue).
 * @module
 */

import type { BinaryOp, ReduceOp, TernaryOp, UnaryOp } from "../backend.ts";
import type { DType } from "../dtype.ts";
import { contiguousStrides, type Shape } from "../shape.ts";

/**
 * A strided view: index `i` of `shape` is at `offset + Σ i[d]·strides[d]`
 * of whatever lies below it (a buffer, or the row-major order of the view
 * below).
 */
export interface StridedView {
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * How a load finds its element: views from the buffer's (first) to the
 * iteration space's (last). The last view maps the iteration index to a
 * position; each view below reads that position as a row-major index of
 * its own shape. One view is the common case; a reshape of a view that is
 * not contiguous adds one.
 */
export type Address = readonly StridedView[];

/** Where a node is evaluated: per output element, or per reduced element. */
export type Space = "out" | "reduce";

/** One scalar value of a kernel. */
export type KernelNode =
  /** An element of buffer `buffer` (of `dtype`), found through `address`. */
  | {
    readonly kind: "load";
    readonly buffer: number;
    readonly address: Address;
    readonly dtype: DType;
    readonly space: Space;
  }
  /** Dynamic scalar `slot` of the parameter block (a traced number). */
  | { readonly kind: "param"; readonly slot: number; readonly dtype: DType }
  /** A constant. */
  | { readonly kind: "literal"; readonly value: number; readonly dtype: DType }
  /**
   * An elementwise backend op on earlier nodes: computed in the kind (float
   * or integer) of its last argument and stored as `dtype`, as `Backend.map`.
   */
  | {
    readonly kind: "op";
    readonly op: UnaryOp | BinaryOp | TernaryOp;
    readonly args: readonly number[];
    readonly dtype: DType;
    readonly space: Space;
  }
  /** The kernel's reduction (or matmul) result for this output element. */
  | { readonly kind: "reduced"; readonly dtype: DType };

/** The reduction a kernel performs. */
export interface KernelReduction {
  readonly op: ReduceOp;
  /** The node reduced (in the `"reduce"` space). */
  readonly input: number;
  /** The reduced tensor's shape (the `"reduce"` space). */
  readonly inputShape: Shape;
  /** The reduced axes of `inputShape`, sorted. */
  readonly axes: readonly number[];
  /** The result's dtype (the accumulation happens in its compute kind, as eager). */
  readonly dtype: DType;
}

/**
 * The matmul a kernel performs: `[batch, m, k] · [batch, k, n]` of float32
 * buffers 0 and 1, read through 3-D views (a batch stride of 0 broadcasts).
 * Its result is the `"reduced"` node, and the kernel's other nodes are its
 * epilogue, over the `[batch, m, n]` outputs in row-major order.
 */
export interface KernelMatmul {
  readonly a: StridedView;
  readonly b: StridedView;
  readonly batch: number;
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

/** A buffer a kernel binds: read, or written (an output, contiguous over `shape`). */
export interface KernelBuffer {
  readonly dtype: DType;
  readonly access: "read" | "write";
}

/** One fused kernel. */
export interface FusedKernel {
  /** The iteration space: the outputs' shape. */
  readonly shape: Shape;
  /** The buffers bound, inputs and outputs, in binding order. */
  readonly buffers: readonly KernelBuffer[];
  /** Dynamic scalars read from the parameter block. */
  readonly params: number;
  /** The body, in topological order. */
  readonly nodes: readonly KernelNode[];
  /** What is stored: node `node` into write buffer `buffer`, at each index. */
  readonly stores: readonly { readonly node: number; readonly buffer: number }[];
  /** The reduction, if the kernel has one. */
  readonly reduce: KernelReduction | null;
  /** The matmul, if the kernel is one with an epilogue (then `reduce` is null). */
  readonly matmul: KernelMatmul | null;
}

/** The view of a whole contiguous tensor of `shape`. */
export function denseView(shape: Shape): StridedView {
  return { shape, strides: contiguousStrides(shape), offset: 0 };
}

/** Whether `view` is the dense view of its shape. */
export function isDense(view: StridedView): boolean {
  if (view.offset !== 0) return false;
  const dense = contiguousStrides(view.shape);
  return view.shape.every((d, i) => d === 1 || view.strides[i] === dense[i]);
}

/**
 * The kernel's literals as parameter-block words after its dynamic scalars,
 * one word per distinct bit pattern, then three words holding 0 (`zero`,
 * the first one's slot). A literal is never a constant of the generated code, so no shader
 * compiler can fold it (a division by a literal 0, or a comparison with a
 * literal NaN, folded under fast-math assumptions, would not give eager's
 * result); and renderers pass each float operand of an op through an XOR
 * with the zero word of its position, which no compiler can see through, so
 * none folds within or across ops (`x - x` into 0, which is NaN for an
 * infinite x; `a·b + c` into a fused multiply-add): every op computes and
 * rounds as the eager kernel, which reads its operands from memory, did.
 */
export function literalWords(
  kernel: FusedKernel,
): { words: number[]; slotOf: Map<number, number>; zero: number } {
  const words: number[] = [];
  const slotOf = new Map<number, number>();
  const bySlot = new Map<number, number>();
  const view = new DataView(new ArrayBuffer(4));
  kernel.nodes.forEach((n, i) => {
    if (n.kind !== "literal") return;
    if (n.dtype === "float32" || n.dtype === "float16") view.setFloat32(0, n.value, true);
    else view.setInt32(0, n.value, true);
    const bits = view.getUint32(0, true);
    let slot = bySlot.get(bits);
    if (slot === undefined) {
      slot = kernel.params + words.length;
      words.push(bits);
      bySlot.set(bits, slot);
    }
    slotOf.set(i, slot);
  });
  words.push(0, 0, 0);
  return { words, slotOf, zero: kernel.params + words.length - 3 };
}

/** How many `"op"` nodes a kernel has (the measure its size cap uses). */
export function opCount(kernel: FusedKernel): number {
  return kernel.nodes.filter((n) => n.kind === "op").length;
}
