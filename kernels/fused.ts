/**
 * The WGSL renderer of `jit`'s fused kernels (the IR in
 * `src/compiler/ir.ts`). Shapes, strides and literals are constants of the
 * program (a jitted program is compiled per argument signature); traced
 * numbers are read from the `args` block, so one pipeline serves every
 * call. Each node becomes one `let` (or a block assigning a `var`), in the
 * IR's order: no recursion, whatever the kernel's size.
 *
 * Bindings: the `args` block at 0, then the kernel's buffers in order from 1.
 * Elementwise kernels run one element per invocation. Kernels with a
 * reduction run one invocation per output (`"thread"`, short reductions
 * with many outputs) or one workgroup of `FUSED_REDUCE_GROUP` per output
 * (`"workgroup"`), then the epilogue once per output.
 * @module
 */

import {
  type Address,
  type FusedKernel,
  isDense,
  type KernelNode,
  kernelPhases,
  literalWords,
} from "../src/compiler/ir.ts";
import type { DType } from "../src/dtype.ts";
import { contiguousStrides, sizeOf } from "../src/shape.ts";
import {
  arg,
  ARGS_DECL,
  computeType,
  FLAT_INDEX,
  header,
  loadAs,
  MAX_LOOP_ITERATIONS,
  storageType,
  storeAs,
  WORKGROUP,
} from "./common.ts";
import { ELEMENTWISE_EXPR } from "./elementwise.ts";
import { combiner, REDUCE_INIT } from "./reduce.ts";
import { MATMUL_ARGS, type MatmulConfig, matmulConfig, matmulKernel } from "./matmul.ts";

/** Invocations per workgroup of a fused reduction's `"workgroup"` strategy. */
export const FUSED_REDUCE_GROUP = 64;

/** How a fused kernel with a reduction spreads its work. */
export type FusedStrategy = "elementwise" | "thread" | "workgroup";

/** The strategy `fusedKernelSource` uses for `kernel`. */
export function fusedStrategy(kernel: FusedKernel): FusedStrategy {
  if (!kernel.reduce) return "elementwise";
  const { inputShape, axes } = kernel.reduce;
  const reduceSize = sizeOf(axes.map((a) => inputShape[a]));
  const outSize = sizeOf(kernel.shape);
  return reduceSize <= MAX_LOOP_ITERATIONS && (outSize >= 256 || reduceSize <= 256)
    ? "thread"
    : "workgroup";
}

/** Workgroups a launch of `kernel` needs (before splitting over the grid's dimensions). */
export function fusedWorkgroups(kernel: FusedKernel): number {
  const outSize = sizeOf(kernel.shape);
  return fusedStrategy(kernel) === "workgroup" ? outSize : Math.ceil(outSize / WORKGROUP);
}

/** The matmul program a kernel with a matmul uses. */
export function fusedMatmulConfig(kernel: FusedKernel): MatmulConfig {
  const { a, b, m, k, n } = kernel.matmul!;
  return matmulConfig(a, b, m, k, n);
}

/** Where a kernel's parameter block starts in `args` (after a matmul's own words). */
export function fusedArgBase(kernel: FusedKernel): number {
  return kernel.matmul ? MATMUL_ARGS : 0;
}

/** A literal of `dtype`'s stored form, read from its parameter-block word. */
function literal(slot: number, dtype: DType): string {
  const type = storageType(dtype);
  if (type === "i32") return `bitcast<i32>(${arg(slot)})`;
  const f = `bitcast<f32>(${arg(slot)})`;
  return type === "f16" ? `f16(${f})` : f;
}

/** The digits of a row-major index `flat` (a u32 expression) over `shape`, as i32 expressions. */
function digits(flat: string, shape: readonly number[]): string[] {
  const strides = contiguousStrides(shape);
  return shape.map((d, i) => d === 1 ? "0i" : `i32((${flat} / ${strides[i]}u) % ${d}u)`);
}

/** `Σ digit·stride + offset` as an i32 expression. */
function dot(ds: readonly string[], view: Address[number]): string {
  const terms = [`${view.offset}i`];
  view.shape.forEach((d, i) => {
    if (d !== 1 && view.strides[i] !== 0) terms.push(`${ds[i]} * ${view.strides[i]}i`);
  });
  return terms.join(" + ");
}

/**
 * Statements giving the element offset of `address` at the iteration digits
 * `ds` in `name` (an i32), or null where the address is the dense index
 * `dense` itself.
 */
function addressCode(
  name: string,
  address: Address,
  ds: readonly string[],
  dense: string | null,
): { code: string; at: string } {
  const top = address[address.length - 1];
  if (dense !== null && address.length === 1 && isDense(top)) {
    return { code: "", at: dense };
  }
  const lines = [`let ${name}_${address.length - 1} = ${dot(ds, top)};`];
  for (let k = address.length - 2; k >= 0; k--) {
    const lin = `u32(${name}_${k + 1})`;
    lines.push(`let ${name}_${k} = ${dot(digits(lin, address[k].shape), address[k])};`);
  }
  return { code: lines.join(" "), at: `u32(${name}_0)` };
}

/** `x` (an f32 expression) XOR the zero word `k`: the same value, opaque to the compiler. */
function opaque(x: string, k: number): string {
  return `bitcast<f32>(bitcast<u32>(${x}) ^ lg_zero${k})`;
}

/**
 * Whether a float operand of `op` must go through `opaque`. Every one does,
 * except the operands of an add or a multiply that are loads, parameters or
 * literals (unknown values: no identity the compiler could use changes an
 * add's or a multiply's result) or the results of the same op (a chain of
 * adds or of multiplies). An add of a product always hides the product,
 * so no multiply-add is ever contracted into an FMA. Hiding fewer operands
 * matters for compile time: lavapipe compiles a 1,000-add kernel about 4×
 * faster without them.
 */
function mustHide(op: string, operand: KernelNode): boolean {
  if (op !== "add" && op !== "mul") return true;
  if (operand.kind === "load" || operand.kind === "param" || operand.kind === "literal") {
    return false;
  }
  return !(operand.kind === "op" && operand.op === op);
}

/** WGSL source of a fused kernel. */
export function fusedKernelSource(kernel: FusedKernel): string {
  const { nodes, buffers, reduce } = kernel;
  const base = fusedArgBase(kernel);
  const strategy = fusedStrategy(kernel);
  const outSize = sizeOf(kernel.shape);
  const dtypes = [...buffers.map((b) => b.dtype), ...nodes.map((n) => n.dtype)];
  if (reduce) dtypes.push(...reduce.reductions.map((r) => r.dtype));
  const decls = buffers.map((b, i) =>
    (kernel.matmul && i < 2)
      ? ""
      : `@group(0) @binding(${i + 1}) var<storage, ${
        b.access === "write" ? "read_write" : "read"
      }> ` +
        `buf${i}: array<${storageType(b.dtype)}>;`
  ).join("\n");

  // Iteration digits: per output (the out space) and per reduced element.
  const outDigits = digits("o", kernel.shape);
  let reduceDigits: string[] = [];
  let reduceSize = 1;
  if (reduce) {
    const { inputShape, axes } = reduce;
    const reducedShape = axes.map((a) => inputShape[a]);
    reduceSize = sizeOf(reducedShape);
    const kept = inputShape.map((_, a) => a).filter((a) => !axes.includes(a));
    const keptDigits = digits("o", kept.map((a) => inputShape[a]));
    const rDigits = digits("r", reducedShape);
    reduceDigits = inputShape.map((_, a) =>
      axes.includes(a) ? rDigits[axes.indexOf(a)] : keptDigits[kept.indexOf(a)]
    );
  }

  const valueType = (n: KernelNode) => storageType(n.dtype);
  const literals = literalWords(kernel);
  const emit = (i: number): string => {
    const n = nodes[i];
    switch (n.kind) {
      case "param": {
        const bits = arg(base + n.slot);
        return `let v${i} = bitcast<${valueType(n)}>(${bits});`;
      }
      case "literal":
        return `let v${i} = ${literal(base + literals.slotOf.get(i)!, n.dtype)};`;
      case "load": {
        const ds = n.space === "reduce" ? reduceDigits : outDigits;
        const a = addressCode(`a${i}`, n.address, ds, n.space === "out" ? "o" : null);
        return `${a.code} let v${i} = buf${n.buffer}[${a.at}];`;
      }
      case "op": {
        const last = nodes[n.args[n.args.length - 1]];
        const compute = computeType(last.dtype);
        const names = ["a", "b", "c"];
        // Float operands go through an XOR with a zero word: opaque to the compiler.
        const lets = n.args.map((a, k) => {
          const value = loadAs(`v${a}`, nodes[a].dtype, compute, false);
          const hide = compute === "f32" && mustHide(n.op, nodes[a]);
          return `let ${names[k]} = ${hide ? opaque(value, k) : value};`;
        });
        const expr = storeAs(ELEMENTWISE_EXPR[n.op](false, compute), compute, n.dtype, false);
        return `var v${i}: ${valueType(n)}; { ${lets.join(" ")} v${i} = ${expr}; }`;
      }
      case "reduced": {
        // A reduction's accumulator, stored as its dtype; a matmul's float32 product.
        if (!reduce) return `let v${i} = acc;`;
        const r = reduce.reductions[n.reduction];
        const t = computeType(nodes[r.input].dtype);
        return `let v${i} = ${storeAs(`acc${n.reduction}`, t, n.dtype, false)};`;
      }
    }
  };
  const constants: string[] = [];
  nodes.forEach((n, i) => {
    if (n.kind === "param" || n.kind === "literal") constants.push(emit(i));
  });
  constants.unshift(
    ...[0, 1, 2].map((k) => `let lg_zero${k} = ${arg(base + literals.zero + k)};`),
  );
  const consts = constants.map((l) => `  ${l}`).join("\n");
  const indent = (lines: readonly string[], pad: string) => lines.map((l) => pad + l).join("\n");
  const outStores = kernel.stores.filter((s) => s.space === "out")
    .map((s) => `buf${s.buffer}[o] = v${s.node};`);

  if (kernel.matmul) {
    const perOutput = nodes.flatMap((n, i) =>
      n.kind === "param" || n.kind === "literal" ? [] : [emit(i)]
    );
    const module = `${
      header(dtypes)
    }\n${decls}\n\nfn lg_epilogue(o: u32, acc: f32) {\n${consts}\n  {\n${
      indent([...perOutput, ...outStores], "    ")
    }\n  }\n}`;
    return matmulKernel(fusedMatmulConfig(kernel), { module, a: 1, b: 2 });
  }
  const preamble = `${header(dtypes)}\n${ARGS_DECL}\n${decls}`;
  // One invocation per output (elementwise, and the "thread" reductions, whose loops run in it).
  const perInvocation = (body: string) => /* wgsl */ `
${preamble}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = ${FLAT_INDEX};
  if (o >= ${outSize}u) { return; }
${consts}
${body}
}
`;
  if (strategy === "elementwise") {
    const body = nodes.flatMap((n, i) =>
      n.kind === "param" || n.kind === "literal" ? [] : [emit(i)]
    );
    return perInvocation(`  {\n${indent([...body, ...outStores], "    ")}\n  }`);
  }

  // Reductions, in order: each loop after the out-space values it reads.
  const phases = kernelPhases(kernel);
  const red = reduce!;
  const G = FUSED_REDUCE_GROUP;
  const group = strategy === "workgroup";
  const [first, step] = group ? ["lid", `${G}u`] : ["0u", "1u"];
  const lines: string[] = [];
  const shared: string[] = [];
  red.reductions.forEach((r, k) => {
    const t = computeType(nodes[r.input].dtype);
    const combine = combiner(r.op, t, false);
    const loaded = loadAs(`v${r.input}`, nodes[r.input].dtype, t, false);
    const input = t === "f32" ? opaque(loaded, 0) : loaded;
    lines.push(...phases.before[k].map(emit));
    lines.push(`var acc${k}: ${t} = ${REDUCE_INIT[r.op][t]};`);
    lines.push(`for (var r = ${first}; r < ${reduceSize}u; r += ${step}) {`);
    lines.push(...phases.loop[k].map((i) => `  ${emit(i)}`));
    lines.push(`  acc${k} = ${combine(`acc${k}`, input)};`, "}");
    if (group) {
      // A tree over the workgroup's partial results; every invocation reads the total.
      shared.push(`var<workgroup> partial${k}: array<${t}, ${G}>;`);
      lines.push(
        `partial${k}[lid] = acc${k};`,
        "workgroupBarrier();",
        `for (var s = ${G / 2}u; s > 0u; s >>= 1u) {`,
        `  if (lid < s) { partial${k}[lid] = ${
          combine(`partial${k}[lid]`, `partial${k}[lid + s]`)
        }; }`,
        "  workgroupBarrier();",
        "}",
        `acc${k} = partial${k}[0];`,
      );
    }
    lines.push(...phases.reduced[k].map(emit));
  });
  lines.push(...phases.after.map(emit));
  if (outStores.length > 0) {
    lines.push(
      ...(group ? [`if (lid == 0u) {`, ...outStores.map((l) => `  ${l}`), "}"] : outStores),
    );
  }
  const rowStores = kernel.stores.filter((s) => s.space === "reduce");
  if (rowStores.length > 0) {
    // Whole rows: the reduce space's elements, stored at their row-major index.
    const strides = contiguousStrides(red.inputShape);
    const at = reduceDigits.map((d, a) => red.inputShape[a] === 1 ? "" : ` + ${d} * ${strides[a]}i`)
      .join("");
    lines.push(`for (var r = ${first}; r < ${reduceSize}u; r += ${step}) {`);
    lines.push(...phases.storeLoop.map((i) => `  ${emit(i)}`));
    lines.push(`  let at = u32(0i${at});`);
    lines.push(...rowStores.map((st) => `  buf${st.buffer}[at] = v${st.node};`), "}");
  }
  if (!group) return perInvocation(indent(lines, "  "));
  return /* wgsl */ `
${preamble}
${shared.join("\n")}

@compute @workgroup_size(${G})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = wid.x + wid.y * nwg.x;
  if (o >= ${outSize}u) { return; }
${consts}
${indent(lines, "  ")}
}
`;
}
