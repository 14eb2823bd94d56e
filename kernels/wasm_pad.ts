/**
 * The wasm backend's pad (`Backend.pad`): a contiguous output filled with
 * one value, into which a contiguous input is written so that along every
 * axis `k` input element `j` lands at `starts[k] + j·steps[k]`. One
 * WebAssembly function for every dtype and rank: it fills the output 4
 * bytes at a time with the fill value's bit pattern (repeated to 4 bytes),
 * then walks the input one innermost row at a time with an odometer over
 * the outer axes kept in a small parameter block, copying each row with
 * one `memory.copy` when its elements stay adjacent (step 1) or element by
 * element otherwise.
 * @module
 */

import { convertNumber, type DType, hostArrayClass } from "../src/dtype.ts";
import { contiguousStrides, sizeOf } from "../src/shape.ts";
import { Func, WasmModule } from "../src/wasm/encode.ts";
import { type Heap, MAX_PAGES } from "../src/wasm/heap.ts";
import { elementBytes } from "./wasm_fused.ts";

/**
 * `(src, dst, outBytes, pattern, bytes, rowElems, rowStep, rows, outer, params)`:
 * byte addresses of the input and output, the output's size in bytes, the
 * fill pattern (4 bytes), the element size, the innermost row's length and
 * step in the output (in bytes), the number of rows, the number of outer
 * axes, and the byte address of the parameter block: the first output
 * byte, then per outer axis its extent, its output step in bytes and a
 * counter (zero on entry).
 */
type PadFn = (
  src: number,
  dst: number,
  outBytes: number,
  pattern: number,
  bytes: number,
  rowElems: number,
  rowStep: number,
  rows: number,
  outer: number,
  params: number,
) => void;

/** Words of the parameter block per outer axis: extent, step, counter. */
const AXIS_WORDS = 3;

function padFunc(): Func {
  const f = new Func(Array(10).fill("i32"), []);
  const [src, dst, outBytes, pattern, bytes, rowElems, rowStep, rows, outer, params] = [
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
  ];
  const p = f.local("i32");
  const end = f.local("i32");
  const at = f.local("i32");
  const r = f.local("i32");
  const j = f.local("i32");
  const k = f.local("i32");
  const axis = f.local("i32"); // byte address of axis k's words
  const to = f.local("i32");
  const rowBytes = f.local("i32");

  // Fill: whole words, then the last 0–3 bytes from the pattern's low bytes.
  // `end` counts bytes from dst (not an address, which could wrap at 4 GiB).
  f.get(dst).set(p);
  f.get(outBytes).set(end);
  f.block(() =>
    f.loop(() => {
      f.get(p).get(dst).op("i32.sub").i32(4).op("i32.add").get(end).op("i32.gt_u").brIf(1);
      f.get(p).get(pattern).op("i32.store");
      f.get(p).i32(4).op("i32.add").set(p).br(0);
    })
  );
  f.block(() =>
    f.loop(() => {
      f.get(p).get(dst).op("i32.sub").get(end).op("i32.ge_u").brIf(1);
      f.get(p).get(pattern).get(p).get(dst).op("i32.sub").i32(3).op("i32.shl").op("i32.shr_u")
        .op("i32.store8");
      f.get(p).i32(1).op("i32.add").set(p).br(0);
    })
  );

  // Rows.
  f.get(params).op("i32.load").get(dst).op("i32.add").set(at);
  f.get(rowElems).get(bytes).op("i32.mul").set(rowBytes);
  f.i32(0).set(r);
  f.forLoop(r, rows, 1, () => {
    f.get(rowStep).get(bytes).op("i32.eq").if(
      () => f.get(at).get(src).get(rowBytes).misc("memory.copy"),
      () => {
        // Element by element: j is the byte offset in the input row.
        f.get(at).set(to);
        f.i32(0).set(j);
        f.block(() =>
          f.loop(() => {
            f.get(j).get(rowBytes).op("i32.ge_u").brIf(1);
            f.get(bytes).i32(4).op("i32.eq").if(
              () => f.get(to).get(src).get(j).op("i32.add").op("i32.load").op("i32.store"),
              () =>
                f.get(bytes).i32(2).op("i32.eq").if(
                  () =>
                    f.get(to).get(src).get(j).op("i32.add").op("i32.load16_u").op("i32.store16"),
                  () => f.get(to).get(src).get(j).op("i32.add").op("i32.load8_u").op("i32.store8"),
                ),
            );
            f.get(to).get(rowStep).op("i32.add").set(to);
            f.get(j).get(bytes).op("i32.add").set(j).br(0);
          })
        );
      },
    );
    f.get(src).get(rowBytes).op("i32.add").set(src);
    // The odometer: the innermost outer axis first; an axis that wraps
    // steps back over its extent and carries into the next one out.
    f.get(outer).i32(1).op("i32.sub").set(k);
    f.block(() =>
      f.loop(() => {
        f.get(k).i32(0).op("i32.lt_s").brIf(1);
        f.get(params).i32(4).op("i32.add").get(k).i32(4 * AXIS_WORDS).op("i32.mul")
          .op("i32.add").set(axis);
        // counter += 1; at += step
        f.get(axis).get(axis).op("i32.load", 8).i32(1).op("i32.add").op("i32.store", 8);
        f.get(at).get(axis).op("i32.load", 4).op("i32.add").set(at);
        f.get(axis).op("i32.load", 8).get(axis).op("i32.load").op("i32.lt_s").brIf(1);
        // wrapped: at -= step · extent; counter = 0; carry
        f.get(at).get(axis).op("i32.load", 4).get(axis).op("i32.load").op("i32.mul")
          .op("i32.sub").set(at);
        f.get(axis).i32(0).op("i32.store", 8);
        f.get(k).i32(1).op("i32.sub").set(k).br(0);
      })
    );
  });
  return f;
}

/** The pad kernel on `heap`'s memory: `Backend.pad` on byte addresses. */
export type WasmPad = (
  src: number,
  dst: number,
  dtype: DType,
  fill: number,
  inShape: readonly number[],
  outShape: readonly number[],
  starts: readonly number[],
  steps: readonly number[],
) => void;

/**
 * Compiles the pad kernel. The returned function writes the parameter
 * block into a scratch block of the heap (kept, grown when a higher rank
 * needs more) and runs the kernel on a contiguous input at `src`.
 */
export function createWasmPad(heap: Heap): WasmPad {
  const module = new WasmModule({ shared: true, maxPages: MAX_PAGES });
  module.addFunc("run", padFunc());
  const run = heap.instantiate(module.bytes()).run as PadFn;
  let scratch: { ptr: number; size: number } | null = null;
  return (src, dst, dtype, fill, inShape, outShape, starts, steps) => {
    const bytes = elementBytes(dtype);
    // The fill value's stored bits, repeated to 4 bytes.
    const Host = hostArrayClass(dtype);
    const pattern = new Int32Array(new Host(4 / bytes).fill(convertNumber(fill, dtype)).buffer)[0];
    // Rank 0 is rank 1 of one element.
    const nd = Math.max(1, outShape.length);
    const shapeIn = inShape.length ? inShape : [1];
    const shapeOut = outShape.length ? outShape : [1];
    const start = starts.length ? starts : [0];
    const step = steps.length ? steps : [1];
    const outStrides = contiguousStrides(shapeOut);
    const need = 4 * (1 + AXIS_WORDS * (nd - 1));
    if (!scratch || scratch.size < need) {
      if (scratch) heap.release(scratch.ptr, scratch.size);
      scratch = heap.alloc(Math.max(need, 64));
    }
    const words = new Int32Array(heap.buffer, scratch.ptr, need / 4);
    let first = 0;
    for (let k = 0; k < nd; k++) first += start[k] * outStrides[k] * bytes;
    words[0] = first;
    for (let k = 0; k < nd - 1; k++) {
      words[1 + AXIS_WORDS * k] = shapeIn[k];
      words[2 + AXIS_WORDS * k] = step[k] * outStrides[k] * bytes;
      words[3 + AXIS_WORDS * k] = 0;
    }
    const inCount = sizeOf(shapeIn);
    const rowElems = shapeIn[nd - 1];
    const rows = inCount === 0 ? 0 : inCount / rowElems;
    const rowStep = step[nd - 1] * outStrides[nd - 1] * bytes;
    const outBytes = sizeOf(shapeOut) * bytes;
    run(src, dst, outBytes, pattern, bytes, rowElems, rowStep, rows, nd - 1, scratch.ptr);
  };
}
