/**
 * Element types. Only `float32` is implemented today; the union already names
 * the types that come next so that signatures do not change when they land.
 * @module
 */

/** The element type of a tensor. */
export type DType = "float32" | "float16" | "int32" | "bool";

/** The element types this version can store and compute with. */
export const SUPPORTED_DTYPES: readonly DType[] = ["float32"];

/** Throws a `TypeError` naming the op unless `dtype` is implemented. */
export function checkDType(op: string, dtype: DType): void {
  if (!SUPPORTED_DTYPES.includes(dtype)) {
    throw new TypeError(
      `${op}: dtype '${dtype}' is not supported yet (supported: ${SUPPORTED_DTYPES.join(", ")})`,
    );
  }
}
