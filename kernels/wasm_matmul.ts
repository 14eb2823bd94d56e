/**
 * The wasm backend's float32 batched matmul: one WebAssembly module with
 * 128-bit SIMD, generated at run time, in the classic packed layout.
 *
 * For each batch item, the output is computed in blocks. The loop nest,
 * outermost first:
 *
 * - columns in blocks of `nc`, and the reduction in blocks of `kc`: the
 *   `kc × nc` block of B is packed into strips `nr` columns wide (each strip
 *   `kc` rows of `nr` contiguous floats, zero-padded past the last column),
 *   small enough to stay in L2;
 * - rows in blocks of `mc`: the `mc × kc` block of A is packed likewise into
 *   strips `mr` rows tall (each `kc` columns of `mr` contiguous floats);
 * - one strip of B, then one strip of A: the micro-kernel computes an
 *   `mr × nr` tile of the output in `mr · nr / 4` v128 accumulators, one
 *   broadcast element of A times `nr / 4` vectors of B per step of the
 *   reduction (relaxed SIMD's multiply-add where the runtime has it, else
 *   `f32x4.mul` then `f32x4.add`), and adds it into the output (stores it,
 *   for the first block of the reduction). Tiles past the edges of the
 *   output are computed whole from the zero padding and only their valid
 *   part is written.
 *
 * Packing reads each operand through its strides, so transposed, broadcast
 * (batch stride 0) and flipped (negative stride) operands need no copy of
 * their own. The packed blocks live in one scratch block of the heap, kept
 * across calls and grown when a larger product needs more.
 * @module
 */

import { Func, WasmModule } from "../src/wasm/encode.ts";
import { type Heap, MAX_PAGES } from "../src/wasm/heap.ts";
import { splitRange, type ThreadPool } from "../src/wasm/threads.ts";

/**
 * A 3-D strided operand in wasm memory: element `[p, r, c]` is at byte
 * `ptr + 4 * (p * strides[0] + r * strides[1] + c * strides[2])`.
 */
export interface MatmulOperand {
  readonly ptr: number;
  readonly strides: readonly [number, number, number];
}

/** The register and cache blocking (all in elements). */
interface Tiling {
  /** Rows of the micro-kernel's output tile. */
  readonly mr: number;
  /** Columns of the micro-kernel's output tile (a multiple of 4). */
  readonly nr: number;
  /** Reduction steps per packed block. */
  readonly kc: number;
  /** Rows of A per packed block (a multiple of `mr`). */
  readonly mc: number;
  /** Columns of B per packed block (a multiple of `nr`). */
  readonly nc: number;
  /** Reduction steps per iteration of the micro-kernel's loop. */
  readonly unroll: number;
  /** Whether the micro-kernel multiplies and adds with relaxed SIMD's `f32x4.relaxed_madd`. */
  readonly fused: boolean;
}

/** Whether this runtime compiles relaxed SIMD's `f32x4.relaxed_madd`. */
function hasRelaxedMadd(): boolean {
  const f = new Func(["v128"], ["v128"]);
  f.get(0).get(0).get(0).simd("f32x4.relaxed_madd");
  const module = new WasmModule({ shared: false, maxPages: 1 });
  module.addFunc("madd", f);
  return WebAssembly.validate(module.bytes() as Uint8Array<ArrayBuffer>);
}

/**
 * 3 × 12 tiles: 9 accumulators, 3 vectors of B, a vector of A and the
 * broadcast of one of its lanes fit the 15 vector registers V8 allocates on
 * x86-64. Loads count: Deno's V8 bounds-checks every access explicitly, so
 * a 4 × 8 tile (6 loads per 16 SIMD operations) runs about 10% slower than
 * 3 × 12 (6 per 18), tiles that spill (6 × 8, 4 × 12) far slower, and
 * reading A a vector at a time in the 8-step unrolled loop (30 loads per
 * 8 steps instead of 48, each broadcast a shuffle) made 1024³
 * about 25% faster on 2 threads (32.4 → 25.9 ms, 2026-12-04). A packed
 * block of A (96 × 256) is 96 KiB and one of B (256 × 264) 264 KiB, both
 * within L2.
 */
const TILING: Omit<Tiling, "fused"> = {
  mr: 3,
  nr: 12,
  kc: 256,
  mc: 96,
  nc: 264,
  unroll: 8,
};

/** Whether the runtime has relaxed SIMD's fused multiply-add (V8 has shipped it since 2023). */
export const RELAXED_MADD: boolean = hasRelaxedMadd();

/** Scratch bytes are rounded up to this (cache lines), so each region stays aligned. */
const LINE = 64;

const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

/** `dst = min(dst's operands)`: pushes `x` and `y` (i32) twice and selects the smaller. */
function emitMin(f: Func, dst: number, x: () => void, y: () => void): void {
  x();
  y();
  x();
  y();
  f.op("i32.lt_s").op("select").set(dst);
}

/** `local += value` for an i32 local, `value` pushed by `push`. */
function emitAdd(f: Func, local: number, push: () => void): void {
  f.get(local);
  push();
  f.op("i32.add").set(local);
}

/**
 * The packing function for strips `width` elements wide:
 * `pack(src, across, along, count, kc, dst)` copies `count` lines (rows of
 * A or columns of B), `across` bytes apart, of `kc` elements `along` bytes
 * apart, into strips of `width` lines: strip `s`, step `kk` holds lines
 * `s·width …` of step `kk` contiguously, zeros past `count`.
 */
function packFunc(width: number): Func {
  const f = new Func(["i32", "i32", "i32", "i32", "i32", "i32"], []);
  const [src, across, along, count, kc, dst] = [0, 1, 2, 3, 4, 5];
  const line = f.local("i32");
  const lines = f.local("i32");
  const kk = f.local("i32");
  const start = f.local("i32");
  const s = f.local("i32");
  const offset = f.local("i32");
  const rowBytes = f.local("i32");
  const stripBytes = width * 4;

  /** `for (kk = 0; kk < kc; kk++) { body(); start += along; dst += width·4 }`. */
  const steps = (body: () => void) => {
    f.i32(0).set(kk);
    f.forLoop(kk, kc, 1, () => {
      body();
      emitAdd(f, start, () => f.get(along));
      emitAdd(f, dst, () => f.i32(stripBytes));
    });
  };

  f.i32(0).set(line);
  f.forLoop(line, count, width, () => {
    emitMin(f, lines, () => f.i32(width), () => f.get(count).get(line).op("i32.sub"));
    f.get(src).get(line).get(across).op("i32.mul").op("i32.add").set(start);
    f.get(lines).i32(width).op("i32.eq").if(
      () => {
        const contiguous = width % 4 === 0;
        f.get(across).i32(4).op("i32.eq").i32(contiguous ? 1 : 0).op("i32.and").if(
          // The strip's lines are adjacent elements: copy vectors.
          () =>
            steps(() => {
              for (let v = 0; v < width / 4; v++) {
                f.get(dst).get(start).simd("v128.load", 16 * v).simd("v128.store", 16 * v);
              }
            }),
          // Any strides: one element at a time, unrolled across the strip.
          () =>
            steps(() => {
              f.get(start).set(s);
              for (let j = 0; j < width; j++) {
                f.get(dst).get(s).op("f32.load").op("f32.store", 4 * j);
                if (j + 1 < width) emitAdd(f, s, () => f.get(across));
              }
            }),
        );
      },
      // The last, partial strip: zeros, then the lines there are.
      () => {
        f.get(dst).i32(0).get(kc).i32(stripBytes).op("i32.mul").misc("memory.fill");
        f.get(lines).i32(2).op("i32.shl").set(rowBytes);
        steps(() => {
          f.get(start).set(s);
          f.i32(0).set(offset);
          f.forLoop(offset, rowBytes, 4, () => {
            f.get(dst).get(offset).op("i32.add").get(s).op("f32.load").op("f32.store");
            emitAdd(f, s, () => f.get(across));
          });
        });
      },
    );
  });
  return f;
}

/**
 * The micro-kernel `(kc, pa, pb, c, ldc, accumulate, mr, nr, tile)`: the
 * product of a packed strip of A (`pa`) and one of B (`pb`), `kc` steps
 * long, into the output tile at `c` (rows `ldc` bytes apart), added to it
 * when `accumulate`. Only `mr × nr` of the tile are written; a partial tile
 * goes through the scratch `tile` (`mr · nr` floats).
 */
function microKernel(t: Tiling): Func {
  const f = new Func(["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"], []);
  const [kc, pa, pb, c, ldc, accumulate, mr, nr, tile] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const vectors = t.nr / 4;
  const acc: number[][] = [];
  for (let r = 0; r < t.mr; r++) {
    acc.push([]);
    for (let v = 0; v < vectors; v++) acc[r].push(f.local("v128"));
  }
  const aBroadcast = f.local("v128");
  const bVectors = Array.from({ length: vectors }, () => f.local("v128"));
  const kk = f.local("i32");
  const kEnd = f.local("i32");
  const row = f.local("i32");
  const tileRow = f.local("i32");
  const i = f.local("i32");
  const j = f.local("i32");
  const rowBytes = f.local("i32");
  const x = f.local("f32");

  for (const a of acc.flat()) f.f32(0).simd("f32x4.splat").set(a);

  const aVector = f.local("v128");
  /**
   * Reduction step `u` of the loop's iteration (offsets into the packed
   * strips). With `lanes`, A is read a vector (4 consecutive packed
   * elements) at a time and each element broadcast by a shuffle, instead of
   * one broadcast load per element.
   */
  const step = (u: number, lanes: boolean) => {
    for (let v = 0; v < vectors; v++) {
      f.get(pb).simd("v128.load", 4 * (u * t.nr + 4 * v)).set(bVectors[v]);
    }
    for (let r = 0; r < t.mr; r++) {
      const e = u * t.mr + r;
      if (!lanes) f.get(pa).simd("v128.load32_splat", 4 * e).set(aBroadcast);
      else {
        if (e % 4 === 0) f.get(pa).simd("v128.load", 4 * e).set(aVector);
        const lane = e % 4;
        const bytes = Array.from({ length: 16 }, (_, i) => 4 * lane + (i % 4));
        f.get(aVector).get(aVector).shuffle(bytes).set(aBroadcast);
      }
      for (let v = 0; v < vectors; v++) {
        if (t.fused) {
          f.get(aBroadcast).get(bVectors[v]).get(acc[r][v]).simd("f32x4.relaxed_madd");
        } else {
          f.get(acc[r][v]).get(aBroadcast).get(bVectors[v]).simd("f32x4.mul").simd("f32x4.add");
        }
        f.set(acc[r][v]);
      }
    }
  };
  /** `for (; kk < end; kk += steps) { steps reduction steps }`. */
  const loop = (end: number, steps: number) =>
    f.forLoop(kk, end, steps, () => {
      // A vector at a time where the iteration's packed A is whole vectors.
      const lanes = (steps * t.mr) % 4 === 0;
      for (let u = 0; u < steps; u++) step(u, lanes);
      emitAdd(f, pa, () => f.i32(4 * steps * t.mr));
      emitAdd(f, pb, () => f.i32(4 * steps * t.nr));
    });

  f.i32(0).set(kk);
  if (t.unroll > 1) {
    f.get(kc).i32(t.unroll - 1).op("i32.sub").set(kEnd);
    loop(kEnd, t.unroll);
  }
  loop(kc, 1);

  /** Writes the accumulators to the whole tile at `c`, adding what is there if `add`. */
  const storeWhole = (add: boolean) => {
    f.get(c).set(row);
    for (let r = 0; r < t.mr; r++) {
      for (let v = 0; v < vectors; v++) {
        f.get(row);
        if (add) {
          f.get(row).simd("v128.load", 16 * v).get(acc[r][v]).simd("f32x4.add");
        } else f.get(acc[r][v]);
        f.simd("v128.store", 16 * v);
      }
      if (r + 1 < t.mr) emitAdd(f, row, () => f.get(ldc));
    }
  };

  f.get(mr).i32(t.mr).op("i32.eq").get(nr).i32(t.nr).op("i32.eq").op("i32.and").if(
    () => f.get(accumulate).if(() => storeWhole(true), () => storeWhole(false)),
    () => {
      // A partial tile: through the scratch tile, one element at a time.
      for (let r = 0; r < t.mr; r++) {
        for (let v = 0; v < vectors; v++) {
          f.get(tile).get(acc[r][v]).simd("v128.store", 4 * (r * t.nr + 4 * v));
        }
      }
      f.get(nr).i32(2).op("i32.shl").set(rowBytes);
      f.get(c).set(row);
      f.get(tile).set(tileRow);
      f.i32(0).set(i);
      f.forLoop(i, mr, 1, () => {
        f.i32(0).set(j);
        f.forLoop(j, rowBytes, 4, () => {
          f.get(tileRow).get(j).op("i32.add").op("f32.load").set(x);
          f.get(accumulate).if(() => {
            f.get(x).get(row).get(j).op("i32.add").op("f32.load").op("f32.add").set(x);
          });
          f.get(row).get(j).op("i32.add").get(x).op("f32.store");
        });
        emitAdd(f, row, () => f.get(ldc));
        emitAdd(f, tileRow, () => f.i32(4 * t.nr));
      });
    },
  );
  return f;
}

/**
 * The entry point `matmul(a, as0, as1, as2, b, bs0, bs1, bs2, out, batch,
 * m, k, n, packedA, packedB, tile)`: strides in elements, the rest byte
 * addresses and counts; the three scratch regions are large enough for
 * the blocks of this product.
 */
function matmulFunc(t: Tiling, packIndexA: number, packIndexB: number, kernelIndex: number): Func {
  const f = new Func(Array(16).fill("i32"), []);
  const [a, as0, as1, as2, b, bs0, bs1, bs2, out, batch, m, k, n, packedA, packedB, tile] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
  ];
  const [p, jc, nc, pc, kc, ic, mc, jr, nr, ir, mr, ldc] = Array.from(
    { length: 12 },
    () => f.local("i32"),
  );

  // k = 0: the sum is empty.
  f.get(k).op("i32.eqz").if(() => {
    f.get(out).i32(0).get(batch).get(m).op("i32.mul").get(n).op("i32.mul").i32(2).op("i32.shl")
      .misc("memory.fill");
    f.op("return");
  });
  for (const s of [as0, as1, as2, bs0, bs1, bs2]) f.get(s).i32(2).op("i32.shl").set(s);
  f.get(n).i32(2).op("i32.shl").set(ldc);

  f.i32(0).set(p);
  f.forLoop(p, batch, 1, () => {
    f.i32(0).set(jc);
    f.forLoop(jc, n, t.nc, () => {
      emitMin(f, nc, () => f.i32(t.nc), () => f.get(n).get(jc).op("i32.sub"));
      f.i32(0).set(pc);
      f.forLoop(pc, k, t.kc, () => {
        emitMin(f, kc, () => f.i32(t.kc), () => f.get(k).get(pc).op("i32.sub"));
        // pack(b + pc·bs1 + jc·bs2, bs2, bs1, nc, kc, packedB)
        f.get(b).get(pc).get(bs1).op("i32.mul").op("i32.add").get(jc).get(bs2).op("i32.mul")
          .op("i32.add");
        f.get(bs2).get(bs1).get(nc).get(kc).get(packedB).call(packIndexB);
        f.i32(0).set(ic);
        f.forLoop(ic, m, t.mc, () => {
          emitMin(f, mc, () => f.i32(t.mc), () => f.get(m).get(ic).op("i32.sub"));
          // pack(a + ic·as1 + pc·as2, as1, as2, mc, kc, packedA)
          f.get(a).get(ic).get(as1).op("i32.mul").op("i32.add").get(pc).get(as2).op("i32.mul")
            .op("i32.add");
          f.get(as1).get(as2).get(mc).get(kc).get(packedA).call(packIndexA);
          f.i32(0).set(jr);
          f.forLoop(jr, nc, t.nr, () => {
            emitMin(f, nr, () => f.i32(t.nr), () => f.get(nc).get(jr).op("i32.sub"));
            f.i32(0).set(ir);
            f.forLoop(ir, mc, t.mr, () => {
              emitMin(f, mr, () => f.i32(t.mr), () => f.get(mc).get(ir).op("i32.sub"));
              f.get(kc);
              f.get(packedA).get(ir).get(kc).op("i32.mul").i32(2).op("i32.shl").op("i32.add");
              f.get(packedB).get(jr).get(kc).op("i32.mul").i32(2).op("i32.shl").op("i32.add");
              // out + ((ic + ir)·n + jc + jr)·4
              f.get(out).get(ic).get(ir).op("i32.add").get(n).op("i32.mul").get(jc).op("i32.add")
                .get(jr).op("i32.add").i32(2).op("i32.shl").op("i32.add");
              f.get(ldc).get(pc).i32(0).op("i32.ne").get(mr).get(nr).get(tile).call(kernelIndex);
            });
          });
        });
      });
    });
    emitAdd(f, a, () => f.get(as0));
    emitAdd(f, b, () => f.get(bs0));
    emitAdd(f, out, () => f.get(m).get(ldc).op("i32.mul"));
  });
  return f;
}

type MatmulFn = (
  a: MatmulOperand,
  b: MatmulOperand,
  out: number,
  batch: number,
  m: number,
  k: number,
  n: number,
) => void;

/** Products of at least this many multiply-adds are split across threads. */
const PARALLEL_MACS = 1 << 18;

/** Builds the module for `t` on `heap` and wraps it with its scratch management and threading. */
function build(heap: Heap, t: Tiling, pool: ThreadPool | null): MatmulFn {
  const module = new WasmModule({ shared: true, maxPages: MAX_PAGES });
  const packA = module.addFunc(null, packFunc(t.mr));
  const packB = module.addFunc(null, packFunc(t.nr));
  const kernel = module.addFunc(null, microKernel(t));
  module.addFunc("run", matmulFunc(t, packA, packB, kernel));
  const bytes = module.bytes();
  const run = heap.instantiate(bytes).run as (...args: number[]) => void;
  const shared = pool?.register(bytes, run) ?? null;

  // One scratch block per thread, kept across calls and grown when a product needs more.
  const scratch: ({ ptr: number; size: number } | null)[] = [];
  const scratchFor = (part: number, bytes: number): number => {
    const have = scratch[part];
    if (have && have.size >= bytes) return have.ptr;
    if (have) heap.release(have.ptr, have.size);
    return (scratch[part] = heap.alloc(bytes)).ptr;
  };

  return (a, b, out, batch, m, k, n) => {
    if (batch <= 0 || m <= 0 || n <= 0) return;
    let [as0, as1, as2] = a.strides;
    const [bs0, bs1, bs2] = b.strides;
    // A batch against one B whose rows of A follow on from each other is one
    // taller product: B is packed once.
    if (batch > 1 && bs0 === 0 && as0 === m * as1) {
      m *= batch;
      batch = 1;
      as0 = 0;
    }
    const kc = Math.min(t.kc, k);
    const bytesA = roundUp(roundUp(Math.min(t.mc, m), t.mr) * kc * 4, LINE);
    const bytesB = roundUp(roundUp(Math.min(t.nc, n), t.nr) * kc * 4, LINE);
    const bytes = bytesA + bytesB + t.mr * t.nr * 4;
    /** The entry point's arguments for batch items `[p0, p1)`, rows `[r0, r1)`, on thread `part`. */
    const args = (part: number, p0: number, p1: number, r0: number, r1: number): number[] => {
      const s = scratchFor(part, bytes);
      const aPtr = a.ptr + 4 * (p0 * as0 + r0 * as1);
      const outPtr = out + 4 * (p0 * m * n + r0 * n);
      return [aPtr, as0, as1, as2, b.ptr + 4 * p0 * bs0, bs0, bs1, bs2, outPtr, p1 - p0, r1 - r0]
        .concat([k, n, s, s + bytesA, s + bytesA + bytesB]);
    };
    const threads = shared && batch * m * n * k >= PARALLEL_MACS ? pool!.threads : 1;
    if (threads <= 1) {
      run(...args(0, 0, batch, 0, m));
    } else if (batch >= threads) {
      // Whole batch items per thread.
      const slices = splitRange(batch, threads).map(([p0, p1], i) => args(i, p0, p1, 0, m));
      pool!.run(shared!, slices);
    } else {
      // Rows per thread, one batch item at a time. Every output element is
      // summed in the same order whichever thread computes it.
      for (let p = 0; p < batch; p++) {
        const slices = splitRange(m, threads, t.mr).map(([r0, r1], i) => args(i, p, p + 1, r0, r1));
        pool!.run(shared!, slices);
      }
    }
  };
}

/**
 * Builds the kernel on `heap` once; the returned function computes
 * `out[p, i, j] = Σ_kk a[p, i, kk] · b[p, kk, j]` for `a` `[batch, m, k]` and
 * `b` `[batch, k, n]` into a contiguous `[batch, m, n]` float32 block at
 * byte address `out` (which must not overlap the operands). Float32
 * accumulation; `k = 0` gives zeros. With `pool`, large products are split
 * by batch items or rows across its threads, with the same result. Not
 * reentrant: calls share scratch blocks of the heap, kept (and grown)
 * across calls.
 */
export function createWasmMatmul(
  heap: Heap,
  pool: ThreadPool | null = null,
  fused: boolean = RELAXED_MADD,
): MatmulFn {
  return build(heap, { ...TILING, fused: fused && RELAXED_MADD }, pool);
}
