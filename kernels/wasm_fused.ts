/**
 * The WebAssembly renderer of fused kernels (the IR of
 * `src/compiler/ir.ts`; `kernels/fused.ts` is the WGSL one). The wasm
 * backend runs its eager elementwise ops and reductions through it too, as
 * one-op kernels, so eager and `jit` share one code generator.
 *
 * A kernel becomes one function `run(buf0, …, bufN, params)` of byte
 * addresses. Its iteration space is walked by a loop nest whose pointers
 * advance by the loads' strides (axes that every access walks contiguously
 * are merged first); the innermost loop handles four elements at a time
 * with 128-bit SIMD when every load steps by 0 or 1 element, every value
 * is 32-bit and every op has a SIMD form. Loads through stacked views (a
 * reshape of a non-contiguous view) find their elements by division from
 * the flat index instead, one at a time.
 *
 * Semantics are the CPU reference backend's (`src/backend_cpu.ts`): IEEE
 * float32 arithmetic (WebAssembly never contracts or reorders), and the
 * reference's own float64 functions, imported, for the transcendental ops
 * other than `exp`, `sigmoid`, `tanh` and `log` (SIMD polynomials within a
 * few ulp, `wasm_math.ts`), so any other elementwise result is bitwise the
 * reference's. Reductions accumulate in float32 (the reference in float64)
 * in a fixed order.
 * @module
 */

import type { BinaryOp, UnaryOp } from "../src/backend.ts";
import { reduceInit } from "../src/backend.ts";
import { FLOAT_BINARY, FLOAT_UNARY, INT_BINARY, INT_UNARY } from "../src/backend_cpu.ts";
import {
  type Address,
  denseView,
  type FusedKernel,
  type KernelNode,
  kernelPhases,
  type KernelReduction,
  type KernelStore,
  type StridedView,
} from "../src/compiler/ir.ts";
import { convertNumber, type DType, isFloat } from "../src/dtype.ts";
import { contiguousStrides, type Shape, sizeOf } from "../src/shape.ts";
import { Func, type Op, type SimdOp, type ValType, WasmModule } from "../src/wasm/encode.ts";
import { type Heap, MAX_PAGES } from "../src/wasm/heap.ts";
import {
  expFunc,
  logFunc,
  sigmoidFunc,
  SIMD_MATH,
  type SimdMathOp,
  tanhFunc,
} from "./wasm_math.ts";

/** A compiled kernel: call with the buffers' byte addresses and the parameter block's. */
export type WasmKernelFn = (...addresses: number[]) => void;

/** Bytes per element of a dtype's stored form. */
export function elementBytes(dtype: DType): number {
  return dtype === "float32" || dtype === "int32" ? 4 : dtype === "float16" ? 2 : 1;
}

/** The compute kind of values of `dtype`. */
const kindOf = (dtype: DType): "f32" | "i32" => isFloat(dtype) ? "f32" : "i32";

/** Float ops computed by wasm instructions (the rest call the reference's functions). */
const F32_NATIVE: Partial<Record<string, Op>> = {
  add: "f32.add",
  sub: "f32.sub",
  mul: "f32.mul",
  div: "f32.div",
  maximum: "f32.max",
  minimum: "f32.min",
  neg: "f32.neg",
  abs: "f32.abs",
  sqrt: "f32.sqrt",
  floor: "f32.floor",
  ceil: "f32.ceil",
  round: "f32.nearest",
  lt: "f32.lt",
  le: "f32.le",
  eq: "f32.eq",
  ne: "f32.ne",
};
const I32_NATIVE: Partial<Record<string, Op>> = {
  add: "i32.add",
  sub: "i32.sub",
  mul: "i32.mul",
  lt: "i32.lt_s",
  le: "i32.le_s",
  eq: "i32.eq",
  ne: "i32.ne",
};
/** SIMD forms of ops on four 32-bit lanes. */
const F32X4: Partial<Record<string, SimdOp>> = {
  add: "f32x4.add",
  sub: "f32x4.sub",
  mul: "f32x4.mul",
  div: "f32x4.div",
  maximum: "f32x4.max",
  minimum: "f32x4.min",
  neg: "f32x4.neg",
  abs: "f32x4.abs",
  sqrt: "f32x4.sqrt",
  floor: "f32x4.floor",
  ceil: "f32x4.ceil",
  round: "f32x4.nearest",
};
const I32X4: Partial<Record<string, SimdOp>> = {
  add: "i32x4.add",
  sub: "i32x4.sub",
  mul: "i32x4.mul",
  maximum: "i32x4.max_s",
  minimum: "i32x4.min_s",
  neg: "i32x4.neg",
  abs: "i32x4.abs",
};

/** Whether the vector loop can compute `node`. */
function vectorizable(node: KernelNode, nodes: readonly KernelNode[]): boolean {
  if (node.dtype !== "float32" && node.dtype !== "int32") return false;
  if (node.kind !== "op") return true;
  if (node.op === "copy" || node.op === "convert") return true;
  const last = nodes[node.args[node.args.length - 1]];
  if (kindOf(last.dtype) !== kindOf(node.dtype)) return false;
  if (kindOf(node.dtype) === "f32" && isSimdMath(node.op)) return true;
  return (kindOf(node.dtype) === "f32" ? F32X4 : I32X4)[node.op] !== undefined;
}

/** Whether `op` has a SIMD function in `wasm_math.ts`. */
function isSimdMath(op: string): op is SimdMathOp {
  return (SIMD_MATH as readonly string[]).includes(op);
}

/** Whether a node is computed once per output (not per element of a loop, not a constant). */
function isPerOutput(n: KernelNode): boolean {
  return n.kind === "reduced" || ((n.kind === "load" || n.kind === "op") && n.space === "out");
}

/** Strides of `address`'s top view, when it is the only one (else null). */
function singleStrides(address: Address): readonly number[] | null {
  return address.length === 1 ? address[0].strides : null;
}

/**
 * Merges the axes of `shape` that every stride vector walks as one (and
 * drops axes of size 1): the loop nest's extents and each vector's strides.
 */
export function collapse(
  shape: Shape,
  vectors: readonly (readonly number[])[],
): { extents: number[]; strides: number[][] } {
  const axes = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  const extents: number[] = [];
  const strides: number[][] = vectors.map(() => []);
  for (const a of axes) {
    const last = extents.length - 1;
    const merge = last >= 0 &&
      vectors.every((v, j) => strides[j][last] === v[a] * shape[a]);
    if (merge) {
      extents[last] *= shape[a];
      vectors.forEach((v, j) => (strides[j][last] = v[a]));
    } else {
      extents.push(shape[a]);
      vectors.forEach((v, j) => strides[j].push(v[a]));
    }
  }
  if (extents.length === 0) {
    extents.push(1);
    strides.forEach((s) => s.push(0));
  }
  return { extents, strides };
}

/** A rendered kernel. */
export interface RenderedWasmKernel {
  /** `run(buf0, …, bufN, params, begin, end)`: the outermost loop's iterations `[begin, end)`. */
  run: WasmKernelFn;
  /** A short description of the loops. */
  source: string;
  /** The outermost loop's extent: `run(…, 0, outer)` computes the whole kernel. */
  outer: number;
  /** The module's bytes, when it imports nothing but the memory (it can run on any thread). */
  bytes: Uint8Array | null;
}

/** Renders `kernel` (without a matmul) and instantiates it on `heap`. */
export function renderWasmKernel(kernel: FusedKernel, heap: Heap): RenderedWasmKernel {
  if (kernel.matmul) throw new Error("internal: renderWasmKernel takes no matmul kernel");
  const r = new Renderer(kernel);
  const bytes = r.module.bytes();
  const exports = heap.instantiate(bytes, r.host);
  return {
    run: exports.run as WasmKernelFn,
    source: r.describe(),
    outer: r.outer,
    bytes: Object.keys(r.host).length === 0 ? bytes : null,
  };
}

/** The state of one rendering. */
class Renderer {
  readonly module = new WasmModule({ shared: true, maxPages: MAX_PAGES });
  readonly host: Record<string, (...args: number[]) => number> = {};
  private readonly imports = new Map<string, number>();
  private readonly f: Func;
  private readonly nodes: readonly KernelNode[];
  /** Each node's scalar local (its stored form: f32 for floats, i32 otherwise). */
  private readonly scalar: number[] = [];
  /** Each node's vector local, in the vector loop. */
  private readonly vector: number[] = [];
  private readonly paramsPtr: number;
  /** The locals holding the outermost loop's range (the last two parameters). */
  private readonly begin: number;
  private readonly end: number;
  /** The outermost loop's extent. */
  outer = 1;
  private readonly notes: string[] = [];
  /** Function indices of the SIMD math functions the kernel calls. */
  private readonly math = new Map<SimdMathOp, number>();

  constructor(private readonly kernel: FusedKernel) {
    this.nodes = kernel.nodes;
    this.declareImports();
    // The SIMD math functions the kernel's float ops use (defined before `run`).
    const math = new Set(
      this.nodes.flatMap((n) =>
        n.kind === "op" && isSimdMath(n.op) && isFloat(this.nodes[n.args[0]].dtype) ? [n.op] : []
      ),
    );
    if (math.size > 0) {
      const exp = this.module.addFunc(null, expFunc());
      this.math.set("exp", exp);
      if (math.has("sigmoid")) {
        this.math.set("sigmoid", this.module.addFunc(null, sigmoidFunc(exp)));
      }
      if (math.has("tanh")) this.math.set("tanh", this.module.addFunc(null, tanhFunc(exp)));
      if (math.has("log")) this.math.set("log", this.module.addFunc(null, logFunc()));
    }
    const params: ValType[] = [...kernel.buffers.map(() => "i32" as const), "i32", "i32", "i32"];
    this.f = new Func(params, []);
    this.paramsPtr = kernel.buffers.length;
    this.begin = kernel.buffers.length + 1;
    this.end = kernel.buffers.length + 2;
    this.nodes.forEach((n) => {
      this.scalar.push(this.f.local(kindOf(n.dtype)));
      this.vector.push(-1);
    });
    if (kernel.reduce) this.renderReduction();
    else this.renderElementwise();
    this.module.addFunc("run", this.f);
  }

  describe(): string {
    return `wasm kernel over [${this.kernel.shape.join(", ")}]: ${this.notes.join("; ")}`;
  }

  /** Imports the reference functions the kernel's non-native ops need (before any function). */
  private declareImports(): void {
    const need = (key: string, fn: (...a: number[]) => number, int: boolean, arity: number) => {
      if (this.imports.has(key)) return;
      const t: ValType = int ? "i32" : "f64";
      const params: ValType[] = Array.from({ length: arity }, () => t);
      // Integer results wrap to 32 bits as the reference's Int32Array does.
      this.host[key] = int ? (...a: number[]) => fn(...a) | 0 : fn;
      const result: ValType = key === "f16bits" ? "i32" : t;
      this.imports.set(key, this.module.importFunc("host", key, params, [result]));
    };
    if (this.kernel.buffers.some((b) => b.access === "write" && b.dtype === "float16")) {
      need("f16bits", f16ToBits, false, 1);
    }
    for (const n of this.nodes) {
      if (n.dtype === "float16") need("f16round", Math.f16round, false, 1);
      if (n.kind === "load" && n.dtype === "float16") need("f16load", f16FromBits, false, 1);
      if (n.kind !== "op" || n.op === "where") continue;
      const last = this.nodes[n.args[n.args.length - 1]];
      const float = isFloat(last.dtype);
      if ((float ? F32_NATIVE : I32_NATIVE)[n.op] || n.op === "copy" || n.op === "convert") {
        continue;
      }
      if (float && isSimdMath(n.op)) continue;
      if (!float && ["neg", "abs", "maximum", "minimum"].includes(n.op)) continue;
      const table = n.args.length === 1
        ? (float ? FLOAT_UNARY : INT_UNARY)[n.op as UnaryOp]
        : (float ? FLOAT_BINARY : INT_BINARY)[n.op as BinaryOp];
      if (!table) {
        throw new TypeError(`internal: no ${float ? "float" : "integer"} rule for '${n.op}'`);
      }
      need(`${float ? "f" : "i"}_${n.op}`, table, !float, n.args.length);
    }
  }

  // ---- values -----------------------------------------------------------

  /** Pushes node `i`'s value converted to compute kind `to`. */
  private pushAs(i: number, to: "f32" | "i32"): void {
    this.f.get(this.scalar[i]);
    const from = kindOf(this.nodes[i].dtype);
    if (from === "i32" && to === "f32") this.f.op("f32.convert_i32_s");
    if (from === "f32" && to === "i32") this.f.misc("i32.trunc_sat_f32_s");
  }

  /** Converts the compute-kind value on the stack to `dtype`'s stored form (`convertNumber`). */
  private storeAs(from: "f32" | "i32", dtype: DType): void {
    const f = this.f;
    if (dtype === "float32" || dtype === "float16") {
      if (from === "i32") f.op("f32.convert_i32_s");
      if (dtype === "float16") {
        f.op("f64.promote_f32").call(this.imports.get("f16round")!).op("f32.demote_f64");
      }
    } else if (dtype === "bool") {
      if (from === "f32") f.f32(0).op("f32.ne");
      else f.i32(0).op("i32.ne");
    } else {
      if (from === "f32") f.misc("i32.trunc_sat_f32_s");
      if (dtype === "int8") f.op("i32.extend8_s");
    }
  }

  /** Loads the element at the byte address on the stack as `dtype`'s stored form. */
  private loadScalar(dtype: DType): void {
    const f = this.f;
    if (dtype === "float32") f.op("f32.load");
    else if (dtype === "int32") f.op("i32.load");
    else if (dtype === "int8") f.op("i32.load8_s");
    else if (dtype === "bool") f.op("i32.load8_u");
    else {f.op("i32.load16_u").op("f64.convert_i32_s").call(this.imports.get("f16load")!).op(
        "f32.demote_f64",
      );}
  }

  /** Evaluates node `i` (not a load) into its scalar local. */
  private emitScalar(i: number): void {
    const n = this.nodes[i];
    const f = this.f;
    switch (n.kind) {
      case "param":
        f.get(this.paramsPtr).op(kindOf(n.dtype) === "f32" ? "f32.load" : "i32.load", n.slot * 4);
        break;
      case "literal": {
        if (n.dtype === "float32") f.f32(n.value);
        else if (n.dtype === "float16") f.f32(Math.f16round(n.value));
        else f.i32(convertNumber(n.value, n.dtype));
        break;
      }
      case "op":
        this.emitOp(n);
        break;
      case "load":
      case "reduced":
        throw new Error("internal: emitScalar of a load or a reduction");
    }
    f.set(this.scalar[i]);
  }

  private emitOp(n: KernelNode & { kind: "op" }): void {
    const f = this.f;
    const last = this.nodes[n.args[n.args.length - 1]];
    const kind = kindOf(last.dtype);
    if (n.op === "where") {
      this.pushAs(n.args[1], kind);
      this.pushAs(n.args[2], kind);
      f.get(this.scalar[n.args[0]]);
      f.op("select");
      this.storeAs(kind, n.dtype);
      return;
    }
    for (const a of n.args) this.pushAs(a, kind);
    const compare = ["lt", "le", "eq", "ne"].includes(n.op);
    const native = (kind === "f32" ? F32_NATIVE : I32_NATIVE)[n.op];
    if (n.op === "copy" || n.op === "convert") {
      // The value as it is, converted on store.
    } else if (native) {
      f.op(native);
    } else if (kind === "f32" && isSimdMath(n.op)) {
      f.simd("f32x4.splat").call(this.math.get(n.op)!).simd("f32x4.extract_lane", 0);
    } else if (kind === "i32" && (n.op === "neg" || n.op === "abs")) {
      const x = this.f.local("i32");
      f.set(x);
      if (n.op === "neg") f.i32(0).get(x).op("i32.sub");
      else f.i32(0).get(x).op("i32.sub").get(x).get(x).i32(0).op("i32.lt_s").op("select");
    } else if (kind === "i32" && (n.op === "maximum" || n.op === "minimum")) {
      const [a, b] = [this.f.local("i32"), this.f.local("i32")];
      f.set(b).set(a).get(a).get(b).get(a).get(b).op(n.op === "maximum" ? "i32.gt_s" : "i32.lt_s")
        .op("select");
    } else if (kind === "f32") {
      // The reference's float64 function: the arguments are promoted, the result rounded.
      const tmp = n.args.map(() => this.f.local("f32"));
      for (let k = tmp.length - 1; k >= 0; k--) f.set(tmp[k]);
      for (const t of tmp) f.get(t).op("f64.promote_f32");
      f.call(this.imports.get(`f_${n.op}`)!).op("f32.demote_f64");
    } else {
      f.call(this.imports.get(`i_${n.op}`)!);
    }
    this.storeAs(compare ? "i32" : kind, n.dtype);
  }

  /** The vector form of node `i` into its vector local (loads excepted). */
  private emitVector(i: number): void {
    const n = this.nodes[i];
    const f = this.f;
    if (this.vector[i] < 0) this.vector[i] = f.local("v128");
    const int = kindOf(n.dtype) === "i32";
    if (n.kind === "param" || n.kind === "literal") {
      f.get(this.scalar[i]).simd(int ? "i32x4.splat" : "f32x4.splat");
    } else if (n.kind === "op") {
      for (const a of n.args) f.get(this.vector[a]);
      const from = kindOf(this.nodes[n.args[n.args.length - 1]].dtype);
      if (n.op === "copy" || n.op === "convert") {
        if (from === "i32" && !int) f.simd("f32x4.convert_i32x4_s");
        if (from === "f32" && int) f.simd("i32x4.trunc_sat_f32x4_s");
      } else if (!int && isSimdMath(n.op)) f.call(this.math.get(n.op)!);
      else f.simd((int ? I32X4 : F32X4)[n.op]!);
    } else throw new Error("internal: emitVector of a load or a reduction");
    f.set(this.vector[i]);
  }

  // ---- loop nests ---------------------------------------------------------

  /**
   * A loop nest over `extents` keeping one byte pointer per stride vector
   * (`starts[j]` is a local holding vector j's pointer before the nest, and
   * `bytes[j]` its element size). `body(pointers, width)` emits one step for
   * `width` consecutive innermost elements at the pointer locals; with
   * `vector` the innermost loop takes 4 elements per step, then the rest.
   * With `range`, the outermost loop runs over `[begin, end)` of the
   * locals `range` names rather than over its whole extent.
   */
  private loopNest(
    extents: readonly number[],
    strides: readonly (readonly number[])[],
    bytes: readonly number[],
    starts: readonly number[],
    vector: boolean,
    body: (pointers: readonly number[], width: 1 | 4) => void,
    range?: { begin: number; end: number },
  ): void {
    const f = this.f;
    const level = (d: number, ptrs: readonly number[]) => {
      const inner = d === extents.length - 1;
      const ranged = d === 0 && range !== undefined;
      const c = f.local("i32");
      const end = f.local("i32");
      const own = ptrs.map(() => f.local("i32"));
      ptrs.forEach((p, j) => {
        f.get(p);
        if (ranged && strides[j][0] !== 0) {
          f.get(range.begin).i32(strides[j][0] * bytes[j]).op("i32.mul").op("i32.add");
        }
        f.set(own[j]);
      });
      const step = (width: number) => {
        strides.forEach((s, j) => {
          if (s[d] === 0) return;
          f.get(own[j]).i32(s[d] * bytes[j] * width).op("i32.add").set(own[j]);
        });
      };
      const pushEnd = () => ranged ? f.get(range.end) : f.i32(extents[d]);
      if (ranged) f.get(range.begin).set(c);
      else f.i32(0).set(c);
      if (inner && vector && (ranged || extents[d] >= 4)) {
        pushEnd();
        f.i32(3).op("i32.sub").set(end);
        f.forLoop(c, end, 4, () => {
          body(own, 4);
          step(4);
        });
      }
      pushEnd();
      f.set(end);
      f.forLoop(c, end, 1, () => {
        if (inner) body(own, 1);
        else level(d + 1, own);
        step(1);
      });
    };
    level(0, starts);
  }

  /** Pushes a byte address: the load's through its stacked views, from flat index local `o`. */
  private stackedAddress(n: KernelNode & { kind: "load" }, digits: (f: Func) => number[]): void {
    const f = this.f;
    const ds = digits(f);
    const offset = f.local("i32");
    // The top view: Σ digit·stride + offset over the iteration digits.
    const dot = (view: Address[number], ds: readonly number[]) => {
      f.i32(view.offset);
      view.shape.forEach((d, k) => {
        if (d === 1 || view.strides[k] === 0) return;
        f.get(ds[k]).i32(view.strides[k]).op("i32.mul").op("i32.add");
      });
      f.set(offset);
    };
    const address = n.address;
    dot(address[address.length - 1], ds);
    for (let k = address.length - 2; k >= 0; k--) {
      dot(address[k], this.digitsOf(offset, address[k].shape));
    }
    f.get(n.buffer).get(offset).i32(elementBytes(n.dtype)).op("i32.mul").op("i32.add");
  }

  /** Locals holding the row-major digits of the index in local `flat` over `shape`. */
  private digitsOf(flat: number, shape: Shape): number[] {
    const f = this.f;
    const strides = contiguousStrides(shape);
    return shape.map((d, k) => {
      const x = f.local("i32");
      if (d === 1) f.i32(0).set(x);
      else f.get(flat).i32(strides[k]).op("i32.div_u").i32(d).op("i32.rem_u").set(x);
      return x;
    });
  }

  // ---- the two kinds of kernel ------------------------------------------

  /** Emits parameter and literal nodes once, before the loops (splatted too, for a vector loop). */
  private emitConstants(vector: boolean): void {
    this.nodes.forEach((n, i) => {
      if (n.kind !== "param" && n.kind !== "literal") return;
      this.emitScalar(i);
      if (vector && vectorizable(n, this.nodes)) this.emitVector(i);
    });
  }

  /**
   * Emits the loads and ops of `list` in order for one step of `width`
   * elements, loads through `loadAt(node, width)` (which pushes the loaded value).
   */
  private emitNodes(
    list: readonly number[],
    width: 1 | 4,
    loadAt: (i: number, n: KernelNode & { kind: "load" }) => void,
  ): void {
    for (const i of list) {
      const n = this.nodes[i];
      if (n.kind === "load") {
        loadAt(i, n);
        if (width === 4) {
          if (this.vector[i] < 0) this.vector[i] = this.f.local("v128");
          this.f.set(this.vector[i]);
        } else this.f.set(this.scalar[i]);
      } else if (n.kind === "op") {
        if (width === 4) this.emitVector(i);
        else this.emitScalar(i);
      }
    }
  }

  /** The loads and ops of `space`, in order. */
  private spaceNodes(space: "out" | "reduce"): number[] {
    return this.nodes.flatMap((n, i) =>
      (n.kind === "load" || n.kind === "op") && n.space === space ? [i] : []
    );
  }

  private renderElementwise(): void {
    const f = this.f;
    const { kernel, nodes } = this;
    const shape = kernel.shape;
    const loads = nodes.map((n, i) => [n, i] as const).filter(([n]) => n.kind === "load") as [
      KernelNode & { kind: "load" },
      number,
    ][];
    const simple = loads.filter(([n]) => singleStrides(n.address) !== null);
    const stacked = loads.some(([n]) => singleStrides(n.address) === null);
    // Stride vectors: each single-view load, the stores (dense), and the flat index.
    const dense = contiguousStrides(shape);
    const vectors = [...simple.map(([n]) => n.address[0].strides), dense, dense];
    const { extents, strides } = collapse(shape, vectors);
    const bytes = [...simple.map(([n]) => elementBytes(n.dtype)), 1, 1];
    const starts = [
      ...simple.map(([n]) => {
        const p = f.local("i32");
        f.get(n.buffer).i32(n.address[0].offset * elementBytes(n.dtype)).op("i32.add").set(p);
        return p;
      }),
      f.local("i32"), // the output's element index (times 1 byte)
      f.local("i32"), // the flat index for stacked loads (the same)
    ];
    const inner = extents.length - 1;
    const vector = !stacked &&
      simple.every((_, j) => strides[j][inner] === 0 || strides[j][inner] === 1) &&
      nodes.every((n) => n.kind === "reduced" || vectorizable(n, nodes)) &&
      kernel.stores.every((s) => elementBytes(kernel.buffers[s.buffer].dtype) === 4);
    this.emitConstants(vector);
    this.notes.push(
      `loops [${extents.join(", ")}]${vector ? ", 4-wide SIMD inner loop" : ""}` +
        (stacked ? ", stacked views by division" : ""),
    );
    const index = simple.length;
    this.outer = extents[0];
    const range = { begin: this.begin, end: this.end };
    this.loopNest(extents, strides, bytes, starts, vector, (ptrs, width) => {
      this.emitNodes(this.spaceNodes("out"), width, (i, n) => {
        const j = simple.findIndex(([, k]) => k === i);
        if (j < 0) {
          this.stackedAddress(n, () => this.digitsOf(ptrs[index + 1], shape));
          this.loadScalar(n.dtype);
          return;
        }
        f.get(ptrs[j]);
        if (width === 1) this.loadScalar(n.dtype);
        else f.simd(strides[j][inner] === 0 ? "v128.load32_splat" : "v128.load");
      });
      for (const s of kernel.stores) {
        const dtype = kernel.buffers[s.buffer].dtype;
        const b = elementBytes(dtype);
        f.get(s.buffer).get(ptrs[index]).i32(b).op("i32.mul").op("i32.add");
        if (width === 4) f.get(this.vector[s.node]).simd("v128.store");
        else {
          f.get(this.scalar[s.node]);
          this.storeScalar(dtype);
        }
      }
    }, range);
  }

  /** Stores the stored-form value on the stack (address below it) as `dtype`. */
  private storeScalar(dtype: DType): void {
    if (dtype === "float32") this.f.op("f32.store");
    else if (dtype === "int32") this.f.op("i32.store");
    else if (dtype === "float16") {
      this.f.op("f64.promote_f32").call(this.imports.get("f16bits")!).op("i32.store16");
    } else this.f.op("i32.store8");
  }

  /**
   * Kernels with reductions: per output, each reduction's loop over the
   * reduce space (after the out-space values it reads), then the out-space
   * values and stores, then a loop storing whole rows if there are
   * reduce-space stores (`kernelPhases` gives the order).
   */
  private renderReduction(): void {
    const f = this.f;
    const { kernel, nodes } = this;
    const red = kernel.reduce!;
    const { inputShape, axes } = red;
    const kept = inputShape.map((_, a) => a).filter((a) => !axes.includes(a));
    const keptShape = kept.map((a) => inputShape[a]);
    const outSize = sizeOf(kernel.shape);
    const phases = kernelPhases(kernel);
    const rowStores = kernel.stores.filter((s) => s.space === "reduce");
    const loops = red.reductions.map((r, k) => this.planLoop(phases.loop[k], [], r));
    const storeLoop = rowStores.length > 0
      ? this.planLoop(phases.storeLoop, rowStores, null)
      : null;
    const all = storeLoop ? [...loops, storeLoop] : loops;
    this.emitConstants(all.some((l) => l.vector));
    this.notes.push(
      `${outSize} outputs × ${red.reductions.length} reduction loop(s) [${loops[0].extents}]` +
        (loops.some((l) => l.vector) ? ", 4-wide SIMD accumulators" : "") +
        (storeLoop ? `, a row store loop${storeLoop.vector ? " (4-wide)" : ""}` : "") +
        (all.some((l) => l.stacked) ? ", stacked views by division" : ""),
    );
    const accs = red.reductions.map((r) => {
      const kind = kindOf(nodes[r.input].dtype);
      return { kind, acc: f.local(kind), vacc: f.local("v128") };
    });
    const o = f.local("i32");
    const outEnd = f.local("i32");
    const keptDigits = kept.map(() => f.local("i32"));

    this.outer = outSize;
    f.get(this.begin).set(o).get(this.end).set(outEnd);
    f.forLoop(o, outEnd, 1, () => {
      this.digitsOf(o, keptShape).forEach((d, k) => f.get(d).set(keptDigits[k]));
      red.reductions.forEach((r, k) => {
        this.emitOut(phases.before[k], o);
        const { kind, acc, vacc } = accs[k];
        const init = reduceInit(r.op, r.dtype);
        const pushInit = () => kind === "f32" ? f.f32(init) : f.i32(init);
        pushInit();
        f.set(acc);
        if (loops[k].vector) {
          pushInit();
          f.simd(kind === "f32" ? "f32x4.splat" : "i32x4.splat").set(vacc);
        }
        this.emitLoop(loops[k], keptDigits, (width) => {
          if (width === 4) {
            this.combine(r.op, kind, () => f.get(vacc), () => f.get(this.vector[r.input]), true);
            f.set(vacc);
          } else {
            this.combine(r.op, kind, () => f.get(acc), () => this.pushAs(r.input, kind), false);
            f.set(acc);
          }
        });
        if (loops[k].vector) {
          // The four lanes, combined in a fixed order, then the scalar tail's result.
          for (let lane = 0; lane < 4; lane++) {
            this.combine(r.op, kind, () => f.get(acc), () =>
              f.get(vacc).simd(
                kind === "f32" ? "f32x4.extract_lane" : "i32x4.extract_lane",
                lane,
              ), false);
            f.set(acc);
          }
        }
        for (const i of phases.reduced[k]) {
          f.get(acc);
          this.storeAs(kind, nodes[i].dtype);
          f.set(this.scalar[i]);
        }
      });
      this.emitOut(phases.after, o);
      for (const s of kernel.stores) {
        if (s.space !== "out") continue;
        const dtype = kernel.buffers[s.buffer].dtype;
        f.get(s.buffer).get(o).i32(elementBytes(dtype)).op("i32.mul").op("i32.add");
        f.get(this.scalar[s.node]);
        this.storeScalar(dtype);
      }
      if (storeLoop) {
        this.emitLoop(storeLoop, keptDigits, (width, ptrs) => {
          rowStores.forEach((s, j) => {
            const dtype = kernel.buffers[s.buffer].dtype;
            f.get(ptrs[storeLoop.simple.length + j]);
            if (width === 4) f.get(this.vector[s.node]).simd("v128.store");
            else {
              f.get(this.scalar[s.node]);
              this.storeScalar(dtype);
            }
          });
        });
      }
    });
  }

  /** Combines the two accumulator values `a` and `b` push, by reduction `op`. */
  private combine(
    op: KernelReduction["op"],
    kind: "f32" | "i32",
    a: () => void,
    b: () => void,
    vec: boolean,
  ): void {
    const f = this.f;
    a();
    b();
    if (vec) {
      const t = kind === "f32" ? F32X4 : I32X4;
      f.simd(t[{ sum: "add", prod: "mul", max: "maximum", min: "minimum" }[op]]!);
    } else if (op === "sum") f.op(kind === "f32" ? "f32.add" : "i32.add");
    else if (op === "prod") f.op(kind === "f32" ? "f32.mul" : "i32.mul");
    else if (kind === "f32") f.op(op === "max" ? "f32.max" : "f32.min");
    else {
      const [x, y] = [f.local("i32"), f.local("i32")];
      f.set(y).set(x).get(x).get(y).get(x).get(y).op(op === "max" ? "i32.gt_s" : "i32.lt_s")
        .op("select");
    }
  }

  /**
   * How one loop over the reduce space walks memory: the single-view loads
   * of `list` and the row `stores` advance pointers by their strides (merged
   * axes first); stacked loads find their elements from the flat index.
   * SIMD where every pointer steps by 0 or 1 element, every value is 32-bit
   * and every op has a SIMD form.
   */
  private planLoop(
    list: readonly number[],
    stores: readonly KernelStore[],
    reduction: KernelReduction | null,
  ): ReduceLoop {
    const { kernel, nodes } = this;
    const { inputShape, axes } = kernel.reduce!;
    const reducedShape = axes.map((a) => inputShape[a]);
    const loads = list.flatMap((i) => {
      const n = nodes[i];
      return n.kind === "load" ? [[n, i] as const] : [];
    });
    const simple = loads.filter(([n]) => singleStrides(n.address) !== null);
    const stacked = loads.some(([n]) => singleStrides(n.address) === null);
    const row = denseView(inputShape);
    const views: StridedView[] = [
      ...simple.map(([n]) => n.address[0]),
      ...stores.map(() => row),
    ];
    const { extents, strides } = collapse(reducedShape, [
      ...views.map((v) => axes.map((a) => v.strides[a])),
      contiguousStrides(reducedShape),
    ]);
    const inner = extents.length - 1;
    const storeBytes = stores.map((s) => elementBytes(kernel.buffers[s.buffer].dtype));
    // What each step reads that the loop does not compute: per-output values
    // (splatted before the loop) and constants (splatted once, if vectorisable),
    // as operands, as the reduction's input, or as a stored value.
    const computed = new Set(list);
    const reads = new Set<number>([
      ...list.flatMap((i) => {
        const n = nodes[i];
        return n.kind === "op" ? n.args : [];
      }),
      ...(reduction ? [reduction.input] : []),
      ...stores.map((s) => s.node),
    ].filter((a) => !computed.has(a)));
    const outer = [...reads].filter((a) => isPerOutput(nodes[a]));
    const vector = !stacked && [...reads].every((a) => vectorizable(nodes[a], nodes)) &&
      views.every((_, j) => strides[j][inner] === 0 || strides[j][inner] === 1) &&
      stores.every((_, j) => strides[simple.length + j][inner] === 1 && storeBytes[j] === 4) &&
      list.every((i) => vectorizable(nodes[i], nodes));
    return {
      list,
      outer,
      simple: simple.map(([n, i]) => ({ node: i, buffer: n.buffer, dtype: n.dtype })),
      views,
      buffers: [...simple.map(([n]) => n.buffer), ...stores.map((s) => s.buffer)],
      bytes: [...simple.map(([n]) => elementBytes(n.dtype)), ...storeBytes, 1],
      extents,
      strides,
      vector,
      stacked,
    };
  }

  /**
   * Emits one loop of `plan` for the output whose kept digits are in
   * `keptDigits`; `after(width, pointers)` ends each step (accumulate, or store).
   */
  private emitLoop(
    plan: ReduceLoop,
    keptDigits: readonly number[],
    after: (width: 1 | 4, pointers: readonly number[]) => void,
  ): void {
    const f = this.f;
    const { inputShape, axes } = this.kernel.reduce!;
    const kept = inputShape.map((_, a) => a).filter((a) => !axes.includes(a));
    const reducedShape = axes.map((a) => inputShape[a]);
    const inner = plan.extents.length - 1;
    // Each pointer's start: its view at the kept digits; then the flat index.
    const starts = plan.views.map((v, j) => {
      const p = f.local("i32");
      f.get(plan.buffers[j]).i32(v.offset);
      kept.forEach((a, k) => {
        if (inputShape[a] === 1 || v.strides[a] === 0) return;
        f.get(keptDigits[k]).i32(v.strides[a]).op("i32.mul").op("i32.add");
      });
      f.i32(plan.bytes[j]).op("i32.mul").op("i32.add").set(p);
      return p;
    });
    const flat = f.local("i32");
    f.i32(0).set(flat);
    starts.push(flat);
    if (plan.vector) {
      for (const a of plan.outer) {
        if (this.vector[a] < 0) this.vector[a] = f.local("v128");
        const int = kindOf(this.nodes[a].dtype) === "i32";
        f.get(this.scalar[a]).simd(int ? "i32x4.splat" : "f32x4.splat").set(this.vector[a]);
      }
    }
    this.loopNest(plan.extents, plan.strides, plan.bytes, starts, plan.vector, (ptrs, width) => {
      this.emitNodes(plan.list, width, (i, n) => {
        const j = plan.simple.findIndex((s) => s.node === i);
        if (j < 0) {
          this.stackedAddress(n, () => {
            const rd = this.digitsOf(ptrs[ptrs.length - 1], reducedShape);
            return inputShape.map((_, a) =>
              axes.includes(a) ? rd[axes.indexOf(a)] : keptDigits[kept.indexOf(a)]
            );
          });
          this.loadScalar(n.dtype);
          return;
        }
        f.get(ptrs[j]);
        if (width === 1) this.loadScalar(n.dtype);
        else f.simd(plan.strides[j][inner] === 0 ? "v128.load32_splat" : "v128.load");
      });
      after(width, ptrs);
    });
  }

  /** Emits out-space nodes of `list` (loads at output `o`), one at a time. */
  private emitOut(list: readonly number[], o: number): void {
    const f = this.f;
    const shape = this.kernel.shape;
    this.emitNodes(list, 1, (_, n) => {
      if (singleStrides(n.address) && n.address[0].strides.length === shape.length) {
        const v = n.address[0];
        const ds = this.digitsOf(o, shape);
        f.get(n.buffer).i32(v.offset);
        shape.forEach((d, k) => {
          if (d === 1 || v.strides[k] === 0) return;
          f.get(ds[k]).i32(v.strides[k]).op("i32.mul").op("i32.add");
        });
        f.i32(elementBytes(n.dtype)).op("i32.mul").op("i32.add");
      } else this.stackedAddress(n, () => this.digitsOf(o, shape));
      this.loadScalar(n.dtype);
    });
  }
}

/** A planned loop over the reduce space (see `Renderer.planLoop`). */
interface ReduceLoop {
  /** The reduce-space nodes computed per element. */
  list: readonly number[];
  /** The per-output values they read (loads and ops of the out space, reductions' results). */
  outer: readonly number[];
  /** Its single-view loads: pointers 0.. (then the row stores' pointers). */
  simple: readonly { node: number; buffer: number; dtype: DType }[];
  /** The views the pointers walk: the loads', then each row store's dense one. */
  views: readonly StridedView[];
  /** Per view, the local holding its buffer's address. */
  buffers: readonly number[];
  /** Per pointer, its element size (the last: the flat index, 1). */
  bytes: readonly number[];
  extents: readonly number[];
  strides: readonly (readonly number[])[];
  vector: boolean;
  stacked: boolean;
}

/** A float16 value from its bits. */
function f16FromBits(bits: number): number {
  F16_BITS[0] = bits;
  return F16_VALUE[0];
}
/** The bits of `x` rounded to float16. */
function f16ToBits(x: number): number {
  F16_VALUE[0] = x;
  return F16_BITS[0];
}
const F16_BITS = new Uint16Array(1);
const F16_VALUE = new Float16Array(F16_BITS.buffer);
