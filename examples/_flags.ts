/**
 * Command-line flags shared by the examples: checked numbers and the
 * backend choice. A bad flag prints why and exits with code 2.
 * @module
 */

import { type BackendInfo, backendInfo, useBackend } from "../mod.ts";

/** Prints `message` and exits with code 2 (a bad flag). */
export function fail(message: string): never {
  console.error(message);
  Deno.exit(2);
}

/** The integer flag `--name` (its text `value`), `fallback` when absent, at least `min`. */
export function intFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  min = 1,
): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got ${value}`);
  return n;
}

/** The number flag `--name`, `fallback` when absent, at least 0. */
export function numberFlag(name: string, value: string | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n < 0) fail(`--${name} must be a number >= 0, got ${value}`);
  return n;
}

/** Uses the backend `--backend` names (if given) and prints the one in use. */
export function backendFlag(value: string | undefined): BackendInfo {
  if (value !== undefined) {
    if (value !== "webgpu" && value !== "wasm" && value !== "cpu") {
      fail(`--backend must be webgpu, wasm or cpu, got ${value}`);
    }
    useBackend(value);
  }
  const info = backendInfo();
  console.log(`backend: ${info.name} (${info.adapter})`);
  return info;
}
