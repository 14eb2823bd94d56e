/**
 * The `pad` kernel: writes a (strided) input into a larger output on a
 * lattice — along each axis the input's element `j` lands at
 * `start + j·step` — and fills every other element with a constant. It is
 * both constant padding (`step` 1) and the gradient of a strided slice.
 * One invocation per output element.
 * @module
 */

import {
  arg,
  ARGS_DECL,
  computeType,
  FLAT_INDEX,
  header,
  loadAs,
  storageType,
  storeAs,
  WORKGROUP,
} from "./common.ts";

/** Largest rank the kernel's args block holds (5 words per axis plus 3). */
export const PAD_MAX_RANK = 12;

/**
 * `args` layout: `[n, fill (bits of the compute type), inputOffset, then per
 * axis: outExtent, start, step, inExtent, inStride]`. `fill` must already be
 * converted to the dtype (an integer for integer types).
 */
export function padArgs(
  outShape: readonly number[],
  starts: readonly number[],
  steps: readonly number[],
  input: { shape: readonly number[]; strides: readonly number[]; offset: number },
  fill: number,
  dtype: string,
): number[] {
  const n = outShape.reduce((a, b) => a * b, 1);
  const words = computeType(dtype) === "f32" ? new Float32Array([fill]) : new Int32Array([fill]);
  const bits = new Uint32Array(words.buffer)[0];
  const args = [n, bits, input.offset];
  outShape.forEach((d, k) => args.push(d, starts[k], steps[k], input.shape[k], input.strides[k]));
  return args;
}

/** WGSL source for rank `ndim` and one dtype. Bindings: args, out, input. */
export function padKernel(ndim: number, dtype: string): string {
  const t = computeType(dtype);
  const axes = [...Array(ndim).keys()].reverse().map((k) => {
    const at = 3 + 5 * k;
    return `
    {
      let extent = ${arg(at)};
      let idx = rem % extent;
      rem = rem / extent;
      let start = ${arg(at + 1)};
      let step = ${arg(at + 2)};
      let j = (idx - start) / step;
      inside = inside && idx >= start && (idx - start) % step == 0u && j < ${arg(at + 3)};
      offset = offset + j * ${arg(at + 4)};
    }`;
  }).join("");
  return /* wgsl */ `
${header([dtype])}
${ARGS_DECL}
@group(0) @binding(1) var<storage, read_write> out: array<${storageType(dtype)}>;
@group(0) @binding(2) var<storage, read> in0: array<${storageType(dtype)}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= ${arg(0)}) { return; }
  var rem = i;
  var inside = true;
  var offset = ${arg(2)};${axes}
  // Index only when inside: outside the lattice the offset is meaningless.
  var value = bitcast<${t}>(${arg(1)});
  if (inside) { value = ${loadAs("in0[offset]", dtype, t, false)}; }
  out[i] = ${storeAs("value", t, dtype, false)};
}
`;
}
