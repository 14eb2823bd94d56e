/**
 * Batched matmul kernel: register blocking, each invocation computes a 4×4
 * block of the output and a workgroup of 8×8 invocations a 32×32 tile. Both
 * operands are read through strides, so transposed or broadcast operands need
 * no copy. Out-of-range rows and columns are clamped on load and skipped on
 * store, so any shape works.
 * @module
 */

/** Output tile edge of one workgroup. */
export const MATMUL_TILE = 32;

/**
 * `args` layout: `[m, n, k, aOffset, aBatchStride, aRowStride, aColStride,
 * bOffset, bBatchStride, bRowStride, bColStride]`.
 */
export function matmulMeta(
  m: number,
  n: number,
  k: number,
  a: { offset: number; strides: readonly number[] },
  b: { offset: number; strides: readonly number[] },
): Uint32Array {
  return new Uint32Array([
    m,
    n,
    k,
    a.offset,
    ...a.strides,
    b.offset,
    ...b.strides,
  ]);
}

/** WGSL source of the matmul kernel. Bindings: args, out, a, b. */
export function matmulKernel(): string {
  const rows = [0, 1, 2, 3];
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> args: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m = args[0];
  let n = args[1];
  let k = args[2];
  let row0 = (wid.y * 8u + lid.y) * 4u;
  let col0 = (wid.x * 8u + lid.x) * 4u;
  let aBase = args[3] + wid.z * args[4];
  let bBase = args[7] + wid.z * args[8];
  let aRow = args[5];
  let aCol = args[6];
  let bRow = args[9];
  let bCol = args[10];
${
    rows.map((i) => `  let ra${i} = aBase + min(row0 + ${i}u, m - 1u) * aRow;`)
      .join("\n")
  }
${
    rows.map((j) => `  let cb${j} = bBase + min(col0 + ${j}u, n - 1u) * bCol;`)
      .join("\n")
  }
${rows.map((i) => `  var acc${i} = vec4<f32>(0.0);`).join("\n")}
  for (var kk = 0u; kk < k; kk = kk + 1u) {
    let bk = kk * bRow;
    let b = vec4<f32>(B[cb0 + bk], B[cb1 + bk], B[cb2 + bk], B[cb3 + bk]);
    let ak = kk * aCol;
${rows.map((i) => `    acc${i} = acc${i} + A[ra${i} + ak] * b;`).join("\n")}
  }
  let outBase = wid.z * m * n;
${
    rows.map((i) =>
      `  if (row0 + ${i}u < m) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (col0 + j < n) { out[outBase + (row0 + ${i}u) * n + col0 + j] = acc${i}[j]; }
    }
  }`
    ).join("\n")
  }
}
`;
}
