import assert from "node:assert/strict";
import { availableBackends, backendInfo } from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";

Deno.test("WebGPU adapter is present when CI requires it", () => {
  const required = Deno.env.get("LITTLEGRAD_REQUIRE_WEBGPU") === "1";
  const present = availableBackends().includes("webgpu");
  console.log(
    `backends: ${availableBackends().join(", ")}; default: ${backendInfo().adapter}`,
  );
  if (required) {
    assert.ok(
      present,
      "LITTLEGRAD_REQUIRE_WEBGPU=1 but navigator.gpu found no adapter",
    );
  }
  // WebGPU on a hardware adapter; the wasm backend on a software adapter or none.
  const hardware = present && !resolveBackend("webgpu").software;
  assert.equal(backendInfo().name, hardware ? "webgpu" : "wasm");
  assert.match(
    backendInfo().reason,
    hardware ? /hardware WebGPU adapter/ : present ? /is a software one/ : /no WebGPU adapter/,
  );
  assert.deepEqual(
    [...availableBackends()].sort(),
    present ? ["cpu", "wasm", "webgpu"] : ["cpu", "wasm"],
  );
  assert.equal(availableBackends()[0], backendInfo().name, "the default comes first");
});
