/**
 * The wasm backend's gather: `out[p, j, :] = input[p, ids[j], :]` for a
 * contiguous input viewed as `[pre, n, post]` and `count` int32 indices
 * (negative ones count from the end, the rest are clamped to `[0, n)`, as
 * `Backend.gather` says). One WebAssembly function for every dtype: a row
 * of `post` elements is one `memory.copy` of its bytes, and a row of one
 * 4-byte element (the picks of `takeAlongAxis` and of a flat `take`) a
 * plain load and store, which is what makes that case fast: the reference's
 * per-row typed-array copy costs about 40 ns per element there.
 * @module
 */

import { Func, WasmModule } from "../src/wasm/encode.ts";
import { type Heap, MAX_PAGES } from "../src/wasm/heap.ts";

/**
 * `(input, ids, out, pre, n, rowBytes, count)`: byte addresses of the
 * input, the int32 indices and the output, then the sizes (`rowBytes` is
 * `post` times the element's bytes).
 */
export type GatherFn = (
  input: number,
  ids: number,
  out: number,
  pre: number,
  n: number,
  rowBytes: number,
  count: number,
) => void;

/** The gather function's body. */
function gatherFunc(): Func {
  // Parameters: input, ids, out, pre, n, rowBytes, count.
  const f = new Func(["i32", "i32", "i32", "i32", "i32", "i32", "i32"], []);
  const [input, ids, out, pre, n, rowBytes, count] = [0, 1, 2, 3, 4, 5, 6];
  const p = f.local("i32");
  const j = f.local("i32");
  const k = f.local("i32");
  const from = f.local("i32");
  const base = f.local("i32"); // the input's first byte of block p
  const last = f.local("i32"); // n - 1
  const block = f.local("i32"); // n · rowBytes
  f.get(n).i32(1).op("i32.sub").set(last);
  f.get(n).get(rowBytes).op("i32.mul").set(block);
  f.get(input).set(base);
  f.i32(0).set(p);
  f.forLoop(p, pre, 1, () => {
    f.i32(0).set(j);
    f.forLoop(j, count, 1, () => {
      // k = ids[j]; k += n if negative; clamp to [0, n - 1].
      f.get(ids).get(j).i32(4).op("i32.mul").op("i32.add").op("i32.load").set(k);
      f.get(k).get(n).op("i32.add").get(k).get(k).i32(0).op("i32.lt_s").op("select").set(k);
      f.get(k).i32(0).get(k).i32(0).op("i32.gt_s").op("select").set(k);
      f.get(last).get(k).get(k).get(last).op("i32.gt_s").op("select").set(k);
      f.get(base).get(k).get(rowBytes).op("i32.mul").op("i32.add").set(from);
      f.get(rowBytes).i32(4).op("i32.eq").if(
        () => f.get(out).get(from).op("i32.load").op("i32.store"),
        () => f.get(out).get(from).get(rowBytes).misc("memory.copy"),
      );
      f.get(out).get(rowBytes).op("i32.add").set(out);
    });
    f.get(base).get(block).op("i32.add").set(base);
  });
  return f;
}

/** Compiles the gather kernel on `heap`'s memory. */
export function createWasmGather(heap: Heap): GatherFn {
  const module = new WasmModule({ shared: true, maxPages: MAX_PAGES });
  module.addFunc("run", gatherFunc());
  return heap.instantiate(module.bytes()).run as GatherFn;
}
