/**
 * How errors name what the user called: `named` and `withOpName` prefix an
 * error's message with the public op it passed through
 * (`concat: add: inputs live on different backends ...`), `describe` words a
 * bad argument. Every layer (ops, losses, layers, optimizers, loaders) uses
 * these; they depend only on `debug_nans.ts` (whose errors keep their
 * message). `composite`, which also scopes the op's temporaries, is in
 * `scope.ts`.
 * @module
 */

import { NonFiniteError } from "./debug_nans.ts";

/**
 * @internal Runs `fn` on behalf of the public op `op`. An error thrown inside
 * it (by a primitive, a backend, or another op `fn` is built from) whose
 * message does not already start with `op:` gets `op: ` prefixed, so the
 * message names what the user called and, after it, the piece underneath
 * that failed: `concat: add: inputs live on different backends ...`. The
 * error keeps its class. This is the one mechanism every composite op, loss,
 * layer, optimizer and loader uses to name itself in errors.
 */
export function named<T>(op: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw withOpName(op, err);
  }
}

/**
 * @internal `err` with `op: ` prefixed to its message, as `named` does (for
 * async code, which `named` cannot wrap). Errors that are not `Error`s and
 * debug-mode `NonFiniteError`s (which name the producing primitive on
 * purpose) are returned unchanged.
 */
export function withOpName(op: string, err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof NonFiniteError) return err;
  const old = err.message;
  if (old.startsWith(`${op}:`)) return err;
  const message = `${op}: ${old}`;
  try {
    Object.defineProperty(err, "message", { value: message, writable: true, configurable: true });
    // The stack was rendered with the old message; keep the two consistent.
    if (old !== "" && typeof err.stack === "string" && err.stack.includes(old)) {
      err.stack = err.stack.replace(old, () => message);
    }
  } catch {
    // A frozen error keeps its message.
  }
  return err;
}

/** @internal Short description of a value for error messages. */
export function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") {
    return (x as object).constructor?.name ?? "an object";
  }
  return `${typeof x} (${String(x)})`;
}

/**
 * @internal Refuses an options argument that is not a plain object: a
 * shape or a dtype passed where `{ shape }` or `{ dtype }` belongs would
 * otherwise be ignored without a word (untyped callers get no compile-time
 * check).
 */
export function checkOptions(op: string, opts: unknown): void {
  if (opts !== null && typeof opts === "object" && !Array.isArray(opts)) return;
  const hint = Array.isArray(opts)
    ? op === "tensor"
      ? `; for a shape write tensor(data, { shape: ${JSON.stringify(opts)} })`
      : op === "arange"
      ? ""
      : "; the shape goes before the options"
    : typeof opts === "string"
    ? `; for a dtype write { dtype: ${JSON.stringify(opts)} }`
    : "";
  throw new TypeError(
    `${op}: options must be an object such as { dtype, backend }, got ${
      Array.isArray(opts) ? `the array ${JSON.stringify(opts)}` : describe(opts)
    }${hint}`,
  );
}
