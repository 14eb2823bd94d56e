/**
 * Elementwise kernel template: one WGSL program per (op, rank, input layout),
 * generated on demand and cached by the backend under `elementwiseKey`.
 * @module
 */

import { FLAT_INDEX, stridedOffset, WGSL_HELPERS, WORKGROUP } from "./common.ts";

/** How a kernel addresses one input: dense, a single broadcast value, or strided. */
export type InputLayout = "dense" | "scalar" | "strided";

/** WGSL expression for each elementwise op over inputs `a` (and `b`). */
export const ELEMENTWISE_EXPR: Record<string, string> = {
  copy: "a",
  neg: "-a",
  exp: "exp(a)",
  log: "log(a)",
  sqrt: "sqrt(a)",
  tanh: "lg_tanh(a)",
  sigmoid: "lg_sigmoid(a)",
  abs: "abs(a)",
  sign: "sign(a)",
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  pow: "lg_pow(a, b)",
  maximum: "lg_max(a, b)",
  lt: "select(0.0, 1.0, a < b)",
  eq: "select(0.0, 1.0, a == b)",
};

/**
 * Layout of the `args` array the kernel reads:
 * `[n, shape[0..ndim), then per input: offset, strides[0..ndim)]`.
 */
export function elementwiseMeta(
  n: number,
  shape: readonly number[],
  inputs: readonly { offset: number; strides: readonly number[] }[],
): Uint32Array {
  const nd = shape.length;
  const meta = new Uint32Array(1 + nd + inputs.length * (1 + nd));
  meta[0] = n;
  meta.set(shape, 1);
  inputs.forEach((input, i) => {
    const at = 1 + nd + i * (1 + nd);
    meta[at] = input.offset;
    meta.set(input.strides, at + 1);
  });
  return meta;
}

/** Cache key of the program `elementwiseKernel` makes. */
export function elementwiseKey(
  op: string,
  ndim: number,
  layouts: readonly InputLayout[],
): string {
  return `ew:${op}:${ndim}:${layouts.join(",")}`;
}

/** WGSL source of an elementwise kernel. Bindings: args, out, then inputs. */
export function elementwiseKernel(
  op: string,
  ndim: number,
  layouts: readonly InputLayout[],
): string {
  const names = ["a", "b"];
  const decls = layouts.map((_, i) =>
    `@group(0) @binding(${i + 2}) var<storage, read> in${i}: array<f32>;`
  ).join("\n");
  const loads = layouts.map((layout, i) => {
    const at = 1 + ndim + i * (1 + ndim);
    if (layout === "dense") {
      return `  let ${names[i]} = in${i}[args[${at}u] + i];`;
    }
    if (layout === "scalar") return `  let ${names[i]} = in${i}[args[${at}u]];`;
    return stridedOffset(
      ndim,
      "i",
      "1u",
      `${at + 1}u`,
      `args[${at}u]`,
      `off${i}`,
    ) +
      `\n  let ${names[i]} = in${i}[off${i}];`;
  }).join("\n");
  return /* wgsl */ `
${WGSL_HELPERS}
@group(0) @binding(0) var<storage, read> args: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${decls}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= args[0]) { return; }
${loads}
  out[i] = ${ELEMENTWISE_EXPR[op]};
}
`;
}
