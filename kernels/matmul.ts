/**
 * Batched matmul template: register blocking. Each invocation computes a
 * block of `rows × cols` outputs, kept in `vec4` accumulators; a workgroup is
 * a row of `width` invocations side by side, so it covers `rows` rows and
 * `cols · width` columns, and every invocation of a workgroup reads the same
 * rows of A. There is no shared memory: on the software adapters this
 * library is tuned on, every load costs about the same wherever it comes
 * from, so what counts is the number of loads per multiply-add, which the
 * register block divides by `rows` (for B) and `cols` (for A).
 *
 * Operands are read through their strides, so a transposed operand needs no
 * copy; how each is read is part of the kernel's key:
 *
 * - A `"k4"`: rows contiguous along k, read as `vec4` (4 k-steps at once);
 *   A `"m4"`: A is stored transposed (contiguous along m), read as `vec4`
 *   (4 rows at once);
 * - B `"n4"`: rows contiguous along n, read as `vec4` (4 columns at once);
 *   B `"k4"`: B is stored transposed (contiguous along k), read as `vec4`
 *   (4 k-steps at once);
 * - `"any"`: scalar loads through both strides, for everything else (odd
 *   sizes, unaligned offsets, broadcast operands).
 *
 * When the shape divides the tile (`fitRows`, `fitCols`), loads and stores
 * skip their bounds checks; otherwise rows and columns past the edge are
 * clamped on load (so every load stays in bounds) and skipped on store.
 * @module
 */

import { arg, ARGS_DECL } from "./common.ts";

/** How a kernel reads operand A (`[m, k]`). */
export type ALayout = "k4" | "m4" | "any";
/** How a kernel reads operand B (`[k, n]`). */
export type BLayout = "n4" | "k4" | "any";

/** Everything that selects one matmul program. */
export interface MatmulConfig {
  /** Output rows per invocation (a multiple of 4). */
  rows: number;
  /** Output columns per invocation (a multiple of 4). */
  cols: number;
  /** Invocations per workgroup, side by side along the columns. */
  width: number;
  a: ALayout;
  b: BLayout;
  /** `m` is a multiple of `rows`. */
  fitRows: boolean;
  /** `n` is a multiple of `cols · width`. */
  fitCols: boolean;
  /** `n` is a multiple of 4, so output rows can be written as `vec4`. */
  out4: boolean;
}

/** A strided operand as the backend passes it: `[batch, rows, cols]` strides. */
interface Operand {
  offset: number;
  strides: readonly number[];
}

const aligned = (...xs: number[]) => xs.every((x) => x % 4 === 0);

/**
 * Picks the program for `[batch, m, k] · [batch, k, n]`: the widest loads the
 * operands' layouts allow, and a register block no bigger than the output.
 */
export function matmulConfig(
  a: Operand,
  b: Operand,
  m: number,
  k: number,
  n: number,
): MatmulConfig {
  const [aBatch, aRow, aCol] = a.strides;
  const [bBatch, bRow, bCol] = b.strides;
  const aLayout: ALayout = aCol === 1 && aligned(k, aRow, aBatch, a.offset)
    ? "k4"
    : aRow === 1 && aligned(m, aCol, aBatch, a.offset)
    ? "m4"
    : "any";
  const bLayout: BLayout = bCol === 1 && aligned(n, bRow, bBatch, b.offset)
    ? "n4"
    : bRow === 1 && aligned(k, bCol, bBatch, b.offset)
    ? "k4"
    : "any";
  // The 16×16 block gives the most multiply-adds per load; small outputs get
  // smaller blocks so that the few invocations there are still fill the tile,
  // and tiny products (dominated by launch cost) the 4×4 block, which also
  // compiles in a fraction of the time.
  const tiny = m * n * k <= 1 << 16;
  const rows = tiny ? 4 : m >= 64 ? 16 : m > 4 ? 8 : 4;
  const cols = tiny ? 4 : n >= 64 ? 16 : n > 8 ? 8 : 4;
  const width = Math.max(1, Math.min(8, 2 ** Math.floor(Math.log2(Math.ceil(n / cols)))));
  return {
    rows,
    cols,
    width,
    a: aLayout,
    b: bLayout,
    fitRows: m % rows === 0,
    fitCols: n % (cols * width) === 0,
    out4: n % 4 === 0,
  };
}

/** Cache key of the program `matmulKernel(config)` makes. */
export function matmulKey(c: MatmulConfig): string {
  return `mm:${c.rows}x${c.cols}x${c.width}:${c.a}:${c.b}:${c.fitRows ? "r" : ""}${
    c.fitCols ? "c" : ""
  }${c.out4 ? "4" : ""}`;
}

/**
 * Workgroups needed for an output of `batch × m × n`: `[column blocks, row
 * blocks, batch]`. The backend splits a grid larger than the per-dimension
 * limit into several launches, passing each one's first block in `args`.
 */
export function matmulGrid(
  c: MatmulConfig,
  batch: number,
  m: number,
  n: number,
): [number, number, number] {
  return [Math.ceil(n / (c.cols * c.width)), Math.ceil(m / c.rows), batch];
}

/**
 * `args` layout: `[m, n, k, aOffset, aBatchStride, aRowStride, aColStride,
 * bOffset, bBatchStride, bRowStride, bColStride, firstColumnBlock,
 * firstRowBlock, firstBatch]`; the last three place a launch that covers
 * part of the grid.
 */
export function matmulArgs(
  m: number,
  n: number,
  k: number,
  a: Operand,
  b: Operand,
  first: readonly [number, number, number] = [0, 0, 0],
): number[] {
  return [m, n, k, a.offset, ...a.strides, b.offset, ...b.strides, ...first];
}

/** Words of `args` a matmul program reads (`matmulArgs`); a fused epilogue's follow. */
export const MATMUL_ARGS = 14;

/**
 * A fused epilogue (`kernels/fused.ts`): instead of storing each product,
 * the program calls `lg_epilogue(o, value)` with the output's flat index.
 */
export interface MatmulEpilogue {
  /** Module-scope WGSL: helpers, the epilogue's buffers and `fn lg_epilogue(o: u32, acc: f32)`. */
  readonly module: string;
  /** Bindings of A and B. */
  readonly a: number;
  readonly b: number;
}

const range = (n: number) => [...Array(n).keys()];
const LANE = ["x", "y", "z", "w"];

/**
 * WGSL source of a matmul program. Bindings: args, out, A, B; or, with an
 * epilogue, args, A and B where it says, and the epilogue's own.
 */
export function matmulKernel(c: MatmulConfig, epilogue?: MatmulEpilogue): string {
  const R = range(c.rows);
  const G = range(c.cols / 4); // column groups of 4
  const cols = range(c.cols);
  const a4 = c.a !== "any";
  const b4 = c.b !== "any";
  // k-steps per iteration of the main loop: 4 when an operand reads 4 k-steps at once.
  const step = c.a === "k4" || c.b === "k4" ? 4 : 1;

  // Row and column indices this invocation reads, clamped unless the tile fits.
  const rowIndex = (i: number) => c.fitRows ? `row0 + ${i}u` : `min(row0 + ${i}u, m - 1u)`;
  const colIndex = (j: number) => c.fitCols ? `col0 + ${j}u` : `min(col0 + ${j}u, n - 1u)`;

  // Per-invocation bases, computed once before the k loop.
  const setup: string[] = [];
  if (c.a === "k4") {
    for (const i of R) setup.push(`  let ar${i} = (aBase + (${rowIndex(i)}) * aRow) / 4u;`);
  } else if (c.a === "m4") {
    for (const g of range(c.rows / 4)) {
      setup.push(`  let ar${g} = (aBase / 4u) + (${rowIndex(4 * g)}) / 4u;`);
    }
  } else {
    for (const i of R) setup.push(`  let ar${i} = aBase + (${rowIndex(i)}) * aRow;`);
  }
  if (c.b === "n4") {
    for (const g of G) setup.push(`  let bc${g} = (bBase / 4u) + (${colIndex(4 * g)}) / 4u;`);
  } else if (c.b === "k4") {
    for (const j of cols) setup.push(`  let bc${j} = (bBase + (${colIndex(j)}) * bCol) / 4u;`);
  } else {
    for (const j of cols) setup.push(`  let bc${j} = bBase + (${colIndex(j)}) * bCol;`);
  }

  /**
   * Loads for the k-steps `kk + s`, s < `steps`, as WGSL statements defining
   * `a{i}_{s}` (f32) and `b{s}_{g}` (vec4 of 4 columns).
   */
  const loads = (steps: number): string[] => {
    const out: string[] = [];
    const S = range(steps);
    // A
    if (c.a === "k4") {
      for (const i of R) {
        out.push(`let av${i} = A[ar${i} + kk / 4u];`);
        for (const s of S) out.push(`let a${i}_${s} = av${i}.${LANE[s]};`);
      }
    } else if (c.a === "m4") {
      for (const s of S) {
        for (const g of range(c.rows / 4)) {
          out.push(`let av${g}_${s} = A[ar${g} + (kk + ${s}u) * aCol4];`);
          for (const t of range(4)) out.push(`let a${4 * g + t}_${s} = av${g}_${s}.${LANE[t]};`);
        }
      }
    } else {
      for (const s of S) {
        for (const i of R) out.push(`let a${i}_${s} = A[ar${i} + (kk + ${s}u) * aCol];`);
      }
    }
    // B
    if (c.b === "n4") {
      for (const s of S) {
        for (const g of G) out.push(`let b${s}_${g} = B[bc${g} + (kk + ${s}u) * bRow4];`);
      }
    } else if (c.b === "k4") {
      for (const j of cols) out.push(`let bv${j} = B[bc${j} + kk / 4u];`);
      for (const s of S) {
        for (const g of G) {
          const parts = range(4).map((t) => `bv${4 * g + t}.${LANE[s]}`).join(", ");
          out.push(`let b${s}_${g} = vec4<f32>(${parts});`);
        }
      }
    } else {
      for (const s of S) {
        for (const g of G) {
          const parts = range(4).map((t) => `B[bc${4 * g + t} + (kk + ${s}u) * bRow]`).join(", ");
          out.push(`let b${s}_${g} = vec4<f32>(${parts});`);
        }
      }
    }
    return out;
  };
  const fmas = (steps: number): string[] =>
    range(steps).flatMap((s) =>
      R.flatMap((i) =>
        G.map((g) => `acc${i}_${g} = fma(vec4<f32>(a${i}_${s}), b${s}_${g}, acc${i}_${g});`)
      )
    );
  const body = (steps: number) =>
    [...loads(steps), ...fmas(steps)].map((l) => `    ${l}`).join("\n");

  // The main loop takes `step` k-steps at a time; a k4 layout implies k % 4 == 0.
  const loop = step === 4
    ? `  for (var kk = 0u; kk < k; kk += 4u) {\n${body(4)}\n  }`
    : `  var kk = 0u;\n  for (; kk + 4u <= k; kk += 4u) {\n${body(4)}\n  }\n` +
      `  for (; kk < k; kk++) {\n${body(1)}\n  }`;

  // Stores: rows past m and columns past n are skipped unless the tile fits.
  // A fused epilogue is called from one loop over the tile, not once per
  // element, so the shader compiler compiles it once (inlined at 32 sites,
  // a large epilogue made lavapipe take ~250 ms per pipeline).
  const tile = c.rows * c.cols;
  const epilogueLoop = epilogue
    ? [
      `  var lg_tile: array<f32, ${tile}>;`,
      ...R.flatMap((i) =>
        G.flatMap((g) =>
          range(4).map((t) => `  lg_tile[${i * c.cols + 4 * g + t}] = acc${i}_${g}.${LANE[t]};`)
        )
      ),
      `  for (var t = 0u; t < ${tile}u; t++) {`,
      `    let row = row0 + t / ${c.cols}u;`,
      `    let col = col0 + t % ${c.cols}u;`,
      ...(c.fitRows && c.fitCols ? [] : [
        `    if (${
          [c.fitRows ? "" : "row >= m", c.fitCols ? "" : "col >= n"].filter(Boolean)
            .join(" || ")
        }) { continue; }`,
      ]),
      `    lg_epilogue(outBase + row * n + col, lg_tile[t]);`,
      "  }",
    ].join("\n")
    : "";
  const stores = epilogue ? epilogueLoop : R.map((i) => {
    const rowOk = c.fitRows ? "" : `row0 + ${i}u < m`;
    const lines = G.map((g) => {
      if (c.out4) {
        const colOk = c.fitCols ? "" : `col0 + ${4 * g}u < n`;
        const cond = [rowOk, colOk].filter(Boolean).join(" && ");
        const store = `out4[(outBase + (row0 + ${i}u) * n + col0 + ${
          4 * g
        }u) / 4u] = acc${i}_${g};`;
        return cond ? `  if (${cond}) { ${store} }` : `  ${store}`;
      }
      return range(4).map((t) => {
        const colOk = `col0 + ${4 * g + t}u < n`;
        const cond = [rowOk, colOk].filter(Boolean).join(" && ");
        return `  if (${cond}) { out[outBase + (row0 + ${i}u) * n + col0 + ${
          4 * g + t
        }u] = acc${i}_${g}.${LANE[t]}; }`;
      }).join("\n");
    });
    return lines.join("\n");
  }).join("\n");

  // `enable` directives must open the module, before the args declaration.
  const enable = epilogue?.module.match(/^\s*(enable [^;]+;)/)?.[1] ?? "";
  const outDecl = epilogue
    ? epilogue.module.replace(enable, "")
    : `@group(0) @binding(1) var<storage, read_write> ${
      c.out4 ? "out4: array<vec4<f32>>" : "out: array<f32>"
    };`;
  return /* wgsl */ `${enable}
${ARGS_DECL}
${outDecl}
@group(0) @binding(${epilogue?.a ?? 2}) var<storage, read> A: array<${a4 ? "vec4<f32>" : "f32"}>;
@group(0) @binding(${epilogue?.b ?? 3}) var<storage, read> B: array<${b4 ? "vec4<f32>" : "f32"}>;

@compute @workgroup_size(${c.width}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m = ${arg(0)};
  let n = ${arg(1)};
  let k = ${arg(2)};
  let batch = wid.z + ${arg(13)};
  let aBase = ${arg(3)} + batch * ${arg(4)};
  let aRow = ${arg(5)};
  let aCol = ${arg(6)};
  let aCol4 = aCol / 4u;
  let bBase = ${arg(7)} + batch * ${arg(8)};
  let bRow = ${arg(9)};
  let bRow4 = bRow / 4u;
  let bCol = ${arg(10)};
  let row0 = (wid.y + ${arg(12)}) * ${c.rows}u;
  let col0 = ((wid.x + ${arg(11)}) * ${c.width}u + lid.x) * ${c.cols}u;
  let outBase = batch * m * n;
${setup.join("\n")}
${R.map((i) => G.map((g) => `  var acc${i}_${g} = vec4<f32>();`).join(" ")).join("\n")}
${loop}
${stores}
}
`;
}
