/**
 * The WebAssembly SIMD matmul (`kernels/wasm_matmul.ts`) against a float64
 * triple loop: shapes around and past every blocking edge, strided,
 * transposed, flipped and broadcast operands, batches, k = 0, and the
 * scratch block staying put across calls.
 */

import assert from "node:assert/strict";
import { createWasmMatmul, type MatmulOperand } from "../kernels/wasm_matmul.ts";
import { Heap } from "../src/wasm/heap.ts";

type Strides = readonly [number, number, number];

/** A small deterministic generator (xorshift32) of floats in [-1, 1). */
function randoms(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 31 - 1;
  };
}

/** How an operand `[batch, rows, cols]` lies in memory. */
type Layout = "row" | "col" | "padded" | "flipRows" | "flipCols" | "broadcast";

/** The element strides of `layout` for `[batch, rows, cols]`. */
function stridesOf(layout: Layout, rows: number, cols: number): Strides {
  const size = rows * cols;
  switch (layout) {
    case "row":
      return [size, cols, 1];
    case "col":
      return [size, 1, rows];
    case "padded":
      return [rows * (cols + 3) + 5, cols + 3, 1];
    case "flipRows":
      return [size, -cols, 1];
    case "flipCols":
      return [-size, cols, -1];
    case "broadcast":
      return [0, cols, 1];
  }
}

/** An operand in `heap`: its memory filled with random floats, read back through its strides. */
function operand(
  heap: Heap,
  [batch, rows, cols]: readonly [number, number, number],
  strides: Strides,
  next: () => number,
): { op: MatmulOperand; at: (p: number, r: number, c: number) => number } {
  let lo = 0;
  let hi = 0;
  [batch, rows, cols].forEach((extent, axis) => {
    const reach = (Math.max(extent, 1) - 1) * strides[axis];
    if (reach < 0) lo += reach;
    else hi += reach;
  });
  const elements = hi - lo + 1;
  const { ptr: base } = heap.alloc(elements * 4);
  const view = new Float32Array(heap.buffer, base, elements);
  for (let i = 0; i < elements; i++) view[i] = next();
  const origin = -lo;
  const ptr = base + 4 * origin;
  const at = (p: number, r: number, c: number) =>
    view[origin + p * strides[0] + r * strides[1] + c * strides[2]];
  return { op: { ptr, strides }, at };
}

/** Guard floats written around the output, which must survive. */
const GUARD = 16;

/** Multiplies on the wasm kernel and in float64, and compares within 1e-5 of Σ|a||b|. */
function check(
  matmul: ReturnType<typeof createWasmMatmul>,
  heap: Heap,
  [batch, m, k, n]: readonly [number, number, number, number],
  layoutA: Layout,
  layoutB: Layout,
  seed = 1,
): void {
  const next = randoms(seed * 7919 + batch * 31 + m * 17 + k * 13 + n);
  const a = operand(heap, [batch, m, k], stridesOf(layoutA, m, k), next);
  const b = operand(heap, [batch, k, n], stridesOf(layoutB, k, n), next);
  const size = batch * m * n;
  const { ptr } = heap.alloc((size + 2 * GUARD) * 4);
  const outPtr = ptr + 4 * GUARD;
  const full = new Float32Array(heap.buffer, ptr, size + 2 * GUARD);
  full.fill(NaN);
  full.fill(12345, 0, GUARD);
  full.fill(12345, GUARD + size);

  matmul(a.op, b.op, outPtr, batch, m, k, n);

  const label = `${batch}x${m}x${k}x${n} a:${layoutA} b:${layoutB}`;
  const out = new Float32Array(heap.buffer, outPtr, size);
  for (let p = 0; p < batch; p++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        let scale = 0;
        for (let kk = 0; kk < k; kk++) {
          const x = a.at(p, i, kk) * b.at(p, kk, j);
          sum += x;
          scale += Math.abs(x);
        }
        const got = out[(p * m + i) * n + j];
        const err = Math.abs(got - sum);
        if (!(err <= 1e-5 * scale + 1e-30)) {
          assert.fail(`${label}: out[${p},${i},${j}] = ${got}, expected ${sum} (Σ|ab| ${scale})`);
        }
      }
    }
  }
  for (let g = 0; g < GUARD; g++) {
    assert.equal(full[g], 12345, `${label}: wrote before the output`);
    assert.equal(full[GUARD + size + g], 12345, `${label}: wrote past the output`);
  }
}

const SHAPES: readonly (readonly [number, number, number, number])[] = [
  [1, 1, 1, 1],
  [1, 1, 37, 1],
  [1, 7, 13, 5],
  [1, 1, 300, 9],
  [1, 9, 300, 1],
  [1, 3, 8, 12],
  [1, 4, 8, 8],
  [1, 5, 9, 17],
  [1, 6, 9, 24],
  [1, 64, 64, 64],
  [1, 65, 257, 263],
  [1, 128, 784, 128],
  [1, 3, 1000, 70],
  [1, 100, 20, 530],
  [2, 33, 19, 31],
];

Deno.test("wasm matmul: row-major shapes across the tile and block edges", () => {
  const heap = new Heap();
  const matmul = createWasmMatmul(heap);
  for (const shape of SHAPES) check(matmul, heap, shape, "row", "row");
});

Deno.test("wasm matmul: transposed, padded and flipped operands", () => {
  const heap = new Heap();
  const matmul = createWasmMatmul(heap);
  const layouts: Layout[] = ["row", "col", "padded", "flipRows", "flipCols"];
  for (
    const shape of [[1, 7, 13, 5], [2, 19, 70, 21], [1, 64, 64, 64], [1, 66, 300, 40]] as const
  ) {
    for (const la of layouts) {
      for (const lb of layouts) check(matmul, heap, shape, la, lb);
    }
  }
});

Deno.test("wasm matmul: batches with a broadcast operand", () => {
  const heap = new Heap();
  const matmul = createWasmMatmul(heap);
  for (const shape of [[3, 7, 13, 5], [3, 64, 64, 64], [3, 33, 300, 70], [4, 1, 9, 1]] as const) {
    check(matmul, heap, shape, "row", "broadcast");
    check(matmul, heap, shape, "broadcast", "row");
    check(matmul, heap, shape, "col", "broadcast");
    check(matmul, heap, shape, "broadcast", "col");
    check(matmul, heap, shape, "padded", "broadcast");
    check(matmul, heap, shape, "flipCols", "flipRows");
  }
});

Deno.test("wasm matmul: k = 0 gives zeros, empty outputs are left alone", () => {
  const heap = new Heap();
  const matmul = createWasmMatmul(heap);
  check(matmul, heap, [1, 5, 0, 7], "row", "row");
  check(matmul, heap, [3, 4, 0, 9], "col", "broadcast");
  for (const [batch, m, n] of [[0, 3, 3], [1, 0, 3], [1, 3, 0]]) {
    const { ptr } = heap.alloc(64);
    const out = new Float32Array(heap.buffer, ptr, 16).fill(7);
    const a = { ptr, strides: [0, 1, 1] } as const;
    matmul(a, a, ptr, batch, m, 4, n);
    assert.ok(out.every((x) => x === 7));
  }
});

Deno.test("wasm matmul: the scratch block is allocated once for a size, grown for larger", () => {
  const heap = new Heap();
  const matmul = createWasmMatmul(heap);
  let allocations = 0;
  const alloc = heap.alloc.bind(heap);
  const run = (m: number, k: number, n: number) => {
    const a = alloc(m * k * 4).ptr;
    const b = alloc(k * n * 4).ptr;
    const out = alloc(m * n * 4).ptr;
    heap.alloc = (bytes) => (allocations++, alloc(bytes));
    matmul({ ptr: a, strides: [0, k, 1] }, { ptr: b, strides: [0, n, 1] }, out, 1, m, k, n);
    heap.alloc = alloc;
  };
  run(16, 16, 16);
  assert.equal(allocations, 1);
  for (let i = 0; i < 5; i++) run(16, 16, 16);
  run(8, 8, 8);
  assert.equal(allocations, 1);
  run(100, 300, 100);
  assert.equal(allocations, 2);
  run(100, 300, 100);
  run(16, 16, 16);
  assert.equal(allocations, 2);
});
