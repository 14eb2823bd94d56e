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
 * kernels computed.
 *
 * A kernel may contain reductions, all over one reduce space (the same
 * input shape and axes; the outputs are the kept elements): nodes in the
 * `"reduce"` space run once per reduced element, the `"reduced"` node of
 * reduction k is its result, and the nodes in the `"out"` space run once
 * per output. The reductions run in order, so a later one's input may use
 * an earlier one's result broadcast along the reduced axes (softmax: the
 * maximum, then the sum of `exp(x - max)`), and a store may be in either
 * space: a reduce-space store writes a whole row (softmax's result) after
 * the last reduction. `kernelPhases` gives renderers that order.
 * @module
 */

import type { BinaryOp, ReduceOp, TernaryOp, UnaryOp } from "../backend.ts";
import type { DType } from "../dtype.ts";
import { contiguousStrides, type Shape, sizeOf } from "../shape.ts";

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
  /** Reduction `reduction`'s result (or the matmul's, reduction 0) for this output element. */
  | { readonly kind: "reduced"; readonly reduction: number; readonly dtype: DType };

/** One reduction of a kernel. */
export interface KernelReduction {
  readonly op: ReduceOp;
  /** The node reduced (in the `"reduce"` space). */
  readonly input: number;
  /** The result's dtype (the accumulation happens in its compute kind, as eager). */
  readonly dtype: DType;
}

/** A kernel's reductions and the space they reduce. */
export interface KernelReduce {
  /** The reduced tensor's shape (the `"reduce"` space). */
  readonly inputShape: Shape;
  /** The reduced axes of `inputShape`, sorted. */
  readonly axes: readonly number[];
  /** The reductions, in the order they run (a later one may use an earlier one's result). */
  readonly reductions: readonly KernelReduction[];
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

/** One store of a kernel. */
export interface KernelStore {
  readonly node: number;
  readonly buffer: number;
  readonly space: Space;
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
  /**
   * What is stored: node `node` into write buffer `buffer`, at each index of
   * its space: an output (contiguous over `shape`), or a reduced element
   * (contiguous over the reduce space's `inputShape`).
   */
  readonly stores: readonly KernelStore[];
  /** The reductions, if the kernel has any. */
  readonly reduce: KernelReduce | null;
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

/**
 * Per buffer of `kernel`, the elements written to it (over the outputs, or
 * over the reduce space for a row store); 0 for a buffer it reads.
 */
export function storeSizes(kernel: FusedKernel): number[] {
  const sizes = kernel.buffers.map(() => 0);
  for (const s of kernel.stores) {
    sizes[s.buffer] = s.space === "reduce"
      ? sizeOf(kernel.reduce!.inputShape)
      : sizeOf(kernel.shape);
  }
  return sizes;
}

/** How many `"op"` nodes a kernel has (the measure its size cap uses). */
export function opCount(kernel: FusedKernel): number {
  return kernel.nodes.filter((n) => n.kind === "op").length;
}

/**
 * The order a renderer evaluates a kernel with reductions in, per output:
 * for each reduction k, the out-space nodes its loop needs that are not
 * computed yet (`before[k]`), then its loop over the nodes of `loop[k]`
 * (reduce-space loads and ops, in order), then its `"reduced"` nodes
 * (`reduced[k]`); then the remaining out-space nodes (`after`) and the
 * out-space stores; then, if there are reduce-space stores, one more loop
 * over the reduce space computing `storeLoop`. Parameters and literals
 * are not listed (they are computed once, first).
 */
export interface KernelPhases {
  readonly before: readonly (readonly number[])[];
  readonly loop: readonly (readonly number[])[];
  readonly reduced: readonly (readonly number[])[];
  readonly after: readonly number[];
  readonly storeLoop: readonly number[];
}

/** The phases of a kernel with reductions (see `KernelPhases`). */
export function kernelPhases(kernel: FusedKernel): KernelPhases {
  const { nodes } = kernel;
  const reductions = kernel.reduce?.reductions ?? [];
  const done = new Uint8Array(nodes.length);
  /** The nodes of `space` that `roots` need and are not done, in order (marked done). */
  const closure = (roots: readonly number[], space: Space, limit: number): number[] => {
    const seen = new Set<number>();
    const stack = [...roots];
    while (stack.length > 0) {
      const i = stack.pop()!;
      const n = nodes[i];
      if (seen.has(i) || done[i]) continue;
      if (n.kind === "reduced") {
        if (n.reduction >= limit) {
          throw new Error(`internal: reduction ${n.reduction} used before its loop ran`);
        }
        continue;
      }
      if (n.kind !== "load" && n.kind !== "op") continue;
      if (n.space !== space) {
        if (space === "out") throw new Error("internal: an output node reads a reduced element");
        continue; // an out-space value, evaluated before the loop
      }
      seen.add(i);
      if (n.kind === "op") stack.push(...n.args);
    }
    const list = [...seen].sort((a, b) => a - b);
    if (space === "out") { for (const i of list) done[i] = 1; }
    return list;
  };
  /** The out-space nodes that reduce-space `list` reads. */
  const outArgs = (list: readonly number[]) =>
    list.flatMap((i) => {
      const n = nodes[i];
      return n.kind === "op" ? n.args.filter((a) => nodeSpace(nodes[a]) === "out") : [];
    });
  const before: number[][] = [];
  const loop: number[][] = [];
  const reduced: number[][] = reductions.map(() => []);
  nodes.forEach((n, i) => {
    if (n.kind === "reduced" && n.reduction < reduced.length) reduced[n.reduction].push(i);
  });
  reductions.forEach((r, k) => {
    const inner = closure([r.input], "reduce", k);
    before.push(closure(outArgs(inner), "out", k));
    loop.push(inner);
  });
  const rowStores = kernel.stores.filter((s) => s.space === "reduce").map((s) => s.node);
  const storeLoop = closure(rowStores, "reduce", reductions.length);
  const remaining = nodes.flatMap((n, i) =>
    (n.kind === "load" || n.kind === "op") && n.space === "out" ? [i] : []
  );
  const after = closure(remaining, "out", reductions.length);
  return { before, loop, reduced, after, storeLoop };
}

/** The space a node is evaluated in (constants and reduction results: per output). */
function nodeSpace(n: KernelNode): Space {
  return n.kind === "load" || n.kind === "op" ? n.space : "out";
}
