/**
 * Movement primitives as index arithmetic: each maps an `Address` (how a
 * value's elements are found) to the address of the moved value, so views
 * never cut a fused kernel. The formulas are those of the eager views
 * (`IMPL` in `primitives.ts`); a reshape that strides cannot express adds
 * a view instead of copying.
 * @module
 */

import type { Prim, PrimParams } from "../primitives.ts";
import { contiguousStrides, type Shape, sizeOf } from "../shape.ts";
import type { Trace, TraceValue } from "../staging.ts";
import { type Address, denseView, type StridedView } from "./ir.ts";

/** The primitives that only move data: they never launch a kernel of their own. */
export const MOVEMENT_PRIMS: ReadonlySet<Prim> = new Set<Prim>([
  "reshape",
  "transpose",
  "broadcast",
  "slice",
  "flip",
  "stopGradient",
]);

/**
 * For `trace`: the id of the value whose storage `v` shares, through
 * movement primitives (a view's base; `v`'s own id if it is not a view).
 */
export function viewBase(trace: Trace): (v: TraceValue) => number {
  const producer = new Map(trace.equations.map((e) => [e.output.id, e]));
  return (v) => {
    let e = producer.get(v.id);
    while (e && MOVEMENT_PRIMS.has(e.prim)) {
      v = e.inputs[0];
      e = producer.get(v.id);
    }
    return v.id;
  };
}

/**
 * Strides for `view` reshaped to `shape` without moving data, or null when
 * no strides do (NumPy's no-copy reshape: each group of old axes that
 * merges into new ones must be contiguous within itself).
 */
function reshapeStrides(view: StridedView, shape: Shape): number[] | null {
  const old = view.shape.map((d, i) => [d, view.strides[i]]).filter(([d]) => d !== 1);
  const out: number[] = new Array(shape.length).fill(0);
  let i = 0;
  let j = 0;
  while (j < shape.length) {
    if (shape[j] === 1) {
      out[j++] = 0;
      continue;
    }
    // The smallest run of old axes [i, i2) and new axes [j, j2) of equal size.
    let [i2, j2] = [i + 1, j + 1];
    let [a, b] = [old[i]?.[0] ?? 1, shape[j]];
    while (a !== b) {
      if (a < b) a *= old[i2++]?.[0] ?? NaN;
      else b *= shape[j2++] ?? NaN;
      if (Number.isNaN(a) || Number.isNaN(b)) return null;
    }
    // The old run must be contiguous within itself.
    for (let k = i; k < i2 - 1; k++) {
      if (old[k][1] !== old[k + 1][1] * old[k + 1][0]) return null;
    }
    // New strides: row-major within the run, ending at the run's last stride.
    let stride = old[i2 - 1][1];
    for (let k = j2 - 1; k >= j; k--) {
      out[k] = shape[k] === 1 ? 0 : stride;
      stride *= shape[k];
    }
    [i, j] = [i2, j2];
  }
  return i === old.length ? out : null;
}

/** `view` after one movement primitive (whose output has `shape`). */
function moveView(
  view: StridedView,
  prim: Prim,
  params: PrimParams,
  shape: Shape,
): StridedView | null {
  switch (prim) {
    case "transpose": {
      const { perm } = params as PrimParams<"transpose">;
      return {
        shape,
        strides: perm.map((p) => view.strides[p]),
        offset: view.offset,
      };
    }
    case "broadcast": {
      const lead = shape.length - view.shape.length;
      const strides = shape.map((d, i) =>
        i < lead || (view.shape[i - lead] === 1 && d !== 1) ? 0 : view.strides[i - lead]
      );
      return { shape, strides, offset: view.offset };
    }
    case "slice": {
      const { starts, steps } = params as PrimParams<"slice">;
      return {
        shape,
        strides: view.strides.map((s, k) => s * steps[k]),
        offset: view.offset + view.strides.reduce((o, s, k) => o + s * starts[k], 0),
      };
    }
    case "flip": {
      const { axes } = params as PrimParams<"flip">;
      return {
        shape,
        strides: view.strides.map((s, k) => (axes.includes(k) ? -s : s)),
        offset: view.offset +
          view.strides.reduce((o, s, k) => o + (axes.includes(k) ? s * (view.shape[k] - 1) : 0), 0),
      };
    }
    case "reshape": {
      const strides = reshapeStrides(view, shape);
      return strides ? { shape, strides, offset: view.offset } : null;
    }
    case "stopGradient":
      return view;
    default:
      throw new TypeError(`internal: ${prim} is not a movement primitive`);
  }
}

/** `address` after one movement primitive whose output has `shape`. */
export function moveAddress(
  address: Address,
  prim: Prim,
  params: PrimParams,
  shape: Shape,
): Address {
  const top = address[address.length - 1];
  const moved = moveView(top, prim, params, shape);
  if (moved) return [...address.slice(0, -1), moved];
  // Not expressible with strides: read the old view in row-major order.
  if (sizeOf(shape) !== sizeOf(top.shape)) throw new RangeError("internal: reshape size differs");
  return [...address, { shape, strides: contiguousStrides(shape), offset: 0 }];
}

/** The address of a contiguous buffer holding a value of `shape`. */
export function bufferAddress(shape: Shape): Address {
  return [denseView(shape)];
}
