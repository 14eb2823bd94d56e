/**
 * Shape arithmetic shared by every op: sizes, strides, broadcasting and axis
 * normalisation, with the error messages users see.
 * @module
 */

/** A tensor shape: one non-negative integer per axis. `[]` is a scalar. */
export type Shape = readonly number[];

/** Formats a shape the way error messages quote it: `[2,3]`. */
export function shapeString(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

/** Number of elements in a tensor of this shape (1 for a scalar). */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous tensor of this shape, in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** Throws a `TypeError` unless every entry is a non-negative integer. */
export function checkShape(op: string, shape: Shape): void {
  if (!Array.isArray(shape)) {
    throw new TypeError(
      `${op}: shape must be an array of integers, got ${String(shape)}`,
    );
  }
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) {
      throw new TypeError(
        `${op}: shape entries must be non-negative integers, got [${shape.map(String).join(",")}]`,
      );
    }
  }
}

/** NumPy broadcasting of two shapes; a `TypeError` names the op and both shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new TypeError(
        `${op}: shapes ${shapeString(a)} and ${
          shapeString(b)
        } cannot be broadcast together (axis ${i}: ${da} vs ${db})`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * A value quoted for an error message so that what is wrong with it shows:
 * numbers as themselves (`0.5`, `NaN`), anything else with its type
 * (`the string "0"`, `the boolean true`, `an array of length 2`, `null`).
 */
export function quoteValue(v: unknown): string {
  switch (typeof v) {
    case "number":
      return Object.is(v, -0) ? "-0" : String(v);
    case "string":
      return `the string ${JSON.stringify(v)}`;
    case "bigint":
      return `the bigint ${v}n`;
    case "boolean":
      return `the boolean ${v}`;
    case "undefined":
      return "undefined";
    case "symbol":
      return `the symbol ${String(v)}`;
    case "function":
      return "a function";
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  const name = Object.getPrototypeOf(v)?.constructor?.name;
  if (!name || name === "Object") return "an object";
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}

/**
 * Turns `axes` (one axis, several, or undefined for all) into sorted,
 * non-negative, distinct axes. A non-number is a `TypeError` and a
 * non-integer or out-of-range number a `RangeError`, naming the op, the
 * value and (when out of range) the rank.
 */
export function normalizeAxes(
  op: string,
  axes: number | readonly number[] | undefined,
  ndim: number,
): number[] {
  if (axes === undefined) return [...Array(ndim).keys()];
  if (typeof axes !== "number" && !Array.isArray(axes)) {
    throw new TypeError(
      `${op}: axis must be an integer or an array of integers, got ${quoteValue(axes)}`,
    );
  }
  const list: unknown[] = typeof axes === "number" ? [axes] : [...axes];
  const seen = new Set<number>();
  for (const axis of list) {
    if (typeof axis !== "number") {
      throw new TypeError(`${op}: axis must be an integer, got ${quoteValue(axis)}`);
    }
    if (!Number.isInteger(axis)) {
      throw new RangeError(`${op}: axis ${quoteValue(axis)} is not an integer`);
    }
    if (axis < -ndim || axis >= ndim) {
      throw new RangeError(
        `${op}: axis ${axis} is out of range for a tensor of rank ${ndim} (valid: ${-ndim}..${
          ndim - 1
        })`,
      );
    }
    const a = axis < 0 ? axis + ndim : axis;
    if (seen.has(a)) throw new RangeError(`${op}: axis ${axis} is repeated`);
    seen.add(a);
  }
  return [...seen].sort((x, y) => x - y);
}
