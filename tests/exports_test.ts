/**
 * Every function the op modules define is reachable from `mod.ts`, as the
 * same object: a free function added to an op module but forgotten in the
 * entry point fails here, not in a user's import.
 * @module
 */

import assert from "node:assert/strict";
import * as entry from "../mod.ts";
import * as elementwise from "../src/ops/elementwise.ts";
import * as reduce from "../src/ops/reduce.ts";
import * as movement from "../src/ops/movement.ts";
import * as indexing from "../src/ops/indexing.ts";
import * as linalg from "../src/ops/linalg.ts";
import * as losses from "../src/losses.ts";
import * as conv from "../src/conv.ts";

const OP_MODULES: Record<string, Record<string, unknown>> = {
  "src/ops/elementwise.ts": elementwise,
  "src/ops/reduce.ts": reduce,
  "src/ops/movement.ts": movement,
  "src/ops/indexing.ts": indexing,
  "src/ops/linalg.ts": linalg,
  "src/losses.ts": losses,
  "src/conv.ts": conv,
};

Deno.test("every function exported by an op module is exported from mod.ts", () => {
  const exported = entry as Record<string, unknown>;
  for (const [file, module] of Object.entries(OP_MODULES)) {
    const functions = Object.entries(module).filter(([, v]) => typeof v === "function");
    assert.ok(functions.length > 0, `${file} exports no functions`);
    const missing = functions.filter(([name, fn]) => exported[name] !== fn).map(([n]) => n);
    assert.deepEqual(missing, [], `${file}: not exported from mod.ts: ${missing.join(", ")}`);
  }
});
