/**
 * Debug mode for NaN and Inf (`debugNans`, like JAX's `debug_nans`): the
 * eager evaluator checks every primitive's output while it is on, and reads
 * report a check that failed on the GPU. Depends on nothing in the core but
 * types: the interpreter (`interpreter.ts`) calls `checkFinite`, reads
 * (`tensor.ts`, `memory.ts`) call `reportNonFinite`.
 * @module
 */

import type { Backend, View } from "../backend.ts";
import type { Prim } from "../primitives.ts";
import { shapeString } from "../shape.ts";
import type { Tensor } from "../tensor.ts";

let debugNansEnabled = false;
let debugTag = 0;
/** Descriptions of ops whose finiteness check is still pending on the GPU, by tag. */
const pendingChecks = new Map<number, string>();

/**
 * Thrown in `debugNans` mode when an op produces NaN or ±Inf; the message
 * names the first such op.
 */
export class NonFiniteError extends Error {
  /**
   * Creates the error for the op described by `op`.
   * @param op The op and its shapes, as printed in the message.
   */
  constructor(op: string) {
    super(`debugNans: ${op} produced NaN or Inf`);
    this.name = "NonFiniteError";
  }
}

/**
 * Turns the NaN/Inf debug mode on or off (like JAX's `debug_nans`). When on,
 * every op's output is checked: on the CPU backend the op that produces a NaN
 * or ±Inf throws a `NonFiniteError` at once; on WebGPU the checks run on the
 * GPU and the next read (`data`, `array`, `item`, `sync`) throws, naming the
 * first op in program order whose output was not finite. Costs one extra
 * small kernel per op.
 *
 * @param enabled `true` to check every op, `false` to stop.
 * @example
 * ```ts
 * import { debugNans, tensor } from "littlegrad";
 * debugNans(true);
 * try {
 *   await tensor([1, -1]).log().sum().item();
 * } catch (err) {
 *   console.log((err as Error).message); // debugNans: log (output %2, shape [2]; ...) produced NaN or Inf
 * }
 * debugNans(false);
 * ```
 */
export function debugNans(enabled: boolean): void {
  debugNansEnabled = enabled;
}

/** @internal Whether `debugNans` mode is on. */
export function debuggingNans(): boolean {
  return debugNansEnabled;
}

/**
 * @internal Checks the output `out` of `prim` (its data in `view`): throws a
 * `NonFiniteError` at once when the backend can tell synchronously (CPU),
 * else remembers the op for `reportNonFinite`.
 */
export function checkFinite(prim: Prim, inputs: readonly Tensor[], out: Tensor, view: View): void {
  const tag = ++debugTag;
  const what = `${prim} (output %${out.id}, shape ${shapeString(out.shape)}; inputs ${
    inputs.map((t) => `%${t.id} ${shapeString(t.shape)}`).join(", ")
  })`;
  const finite = view.storage.backend.checkFinite(view.storage, view.storage.size, tag);
  if (finite === false) {
    out.dispose();
    throw new NonFiniteError(what);
  }
  if (finite === undefined) pendingChecks.set(tag, what);
}

/** @internal Throws for a failed deferred check on `backend`, if any. */
export async function reportNonFinite(backend: Backend): Promise<void> {
  if (pendingChecks.size === 0) return;
  const tag = await backend.takeNonFinite();
  const what = tag === null ? undefined : pendingChecks.get(tag);
  pendingChecks.clear();
  if (what !== undefined) throw new NonFiniteError(what);
}
