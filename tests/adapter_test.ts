import assert from "node:assert/strict";
import { availableBackends, backendInfo } from "../mod.ts";

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
  assert.equal(backendInfo().name, present ? "webgpu" : "cpu");
});
