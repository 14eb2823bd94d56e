/**
 * Test helpers: run a test on every backend, compare arrays with tolerances.
 * A backend that is missing is reported as an ignored test, never silently
 * skipped; with LITTLEGRAD_REQUIRE_WEBGPU=1 (set by CI) a missing WebGPU
 * adapter fails the run (see adapter_test.ts).
 * @module
 */

import { availableBackends, type BackendName, useBackend } from "../mod.ts";

/** V8's collector, exposed by the test task's `--v8-flags=--expose-gc`. */
export const gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/**
 * Collects garbage and lets finalizers run, so tensors earlier tests dropped
 * without `dispose()` are released (by littlegrad's FinalizationRegistry)
 * before a test snapshots memory counters, not in the middle of it.
 */
export async function settleGarbage(): Promise<void> {
  if (!gc) return;
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** Every backend the tests cover. */
export const BACKENDS: readonly BackendName[] = ["webgpu", "wasm", "cpu"];

/**
 * Registers `fn` once per backend as `name [backend]`, with that backend as
 * the default while it runs.
 */
export function testBoth(
  name: string,
  fn: (backend: BackendName) => void | Promise<void>,
): void {
  for (const backend of BACKENDS) {
    Deno.test({
      name: `${name} [${backend}]`,
      ignore: !availableBackends().includes(backend),
      async fn() {
        useBackend(backend);
        await settleGarbage();
        try {
          await fn(backend);
        } finally {
          useBackend(availableBackends()[0]);
        }
      },
    });
  }
}

/** Flattens nested arrays / typed arrays / numbers into a plain number list. */
export function flat(x: unknown): number[] {
  if (typeof x === "number") return [x];
  if (ArrayBuffer.isView(x)) return Array.from(x as Float32Array);
  if (Array.isArray(x)) return x.flatMap(flat);
  throw new TypeError(`flat: unexpected ${typeof x}`);
}

/**
 * Asserts `actual` and `expected` have the same length and agree elementwise
 * within `atol + rtol·|expected|` (NaN matches NaN, ±Infinity must match).
 */
export function assertClose(
  actual: unknown,
  expected: unknown,
  { atol = 1e-5, rtol = 1e-4, label = "" }: {
    atol?: number;
    rtol?: number;
    label?: string;
  } = {},
): void {
  const a = flat(actual);
  const e = flat(expected);
  if (a.length !== e.length) {
    throw new Error(
      `${label}: length ${a.length} differs from expected ${e.length}`,
    );
  }
  for (let i = 0; i < a.length; i++) {
    const ok = Number.isNaN(e[i])
      ? Number.isNaN(a[i])
      : !Number.isFinite(e[i])
      ? a[i] === e[i]
      : Math.abs(a[i] - e[i]) <= atol + rtol * Math.abs(e[i]);
    if (!ok) {
      throw new Error(
        `${label}: element ${i} is ${a[i]}, expected ${e[i]} (atol ${atol}, rtol ${rtol})\n` +
          `  actual:   [${a.slice(0, 12).join(", ")}${a.length > 12 ? ", ..." : ""}]\n` +
          `  expected: [${e.slice(0, 12).join(", ")}${e.length > 12 ? ", ..." : ""}]`,
      );
    }
  }
}

/** Distance in float32 units in the last place (0 for equal values, and for NaN with NaN). */
export function ulps(a: number, b: number): number {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0;
  if (Object.is(a, b)) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  // Map the sign-magnitude bits onto a monotonic integer line.
  const line = (i: number) => (i < 0 ? -(i & 0x7fffffff) : i);
  return Math.abs(line(bits[0]) - line(bits[1]));
}
