/**
 * Debug-mode kernel: flags non-finite values. Each invocation looks at one
 * element; if its exponent bits are all ones (Inf or NaN — tested on the bits,
 * which no fast-math assumption can optimise away) it lowers the flag to the
 * op's tag with `atomicMin`, so the flag ends up naming the first op, in
 * program order, whose output was not finite.
 * @module
 */

import { arg, ARGS_DECL, FLAT_INDEX, WORKGROUP } from "./common.ts";

/** Value of the flag when every checked output was finite. */
export const FINITE_FLAG_CLEAR = 0xffffffff;

/**
 * WGSL source. Bindings: args `[n, tag]`, flag (atomic), the values, read
 * as 32-bit words: one float32, or two float16 (`half`; `n` counts halves).
 */
export function finiteCheckKernel(half = false): string {
  const test = half
    ? `(w & 0x7c00u) == 0x7c00u || (2u * i + 1u < ${arg(0)} && (w & 0x7c000000u) == 0x7c000000u)`
    : "(w & 0x7f800000u) == 0x7f800000u";
  return /* wgsl */ `
${ARGS_DECL}
@group(0) @binding(1) var<storage, read_write> flag: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> values: array<u32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= ${half ? `(${arg(0)} + 1u) / 2u` : arg(0)}) { return; }
  let w = values[i];
  if (${test}) {
    atomicMin(&flag[0], ${arg(1)});
  }
}
`;
}
