/**
 * littlegrad can be imported by URL with no permission but the import
 * itself: the repository is served on 127.0.0.1 and a child `deno run`,
 * allowed nothing but `--allow-import=127.0.0.1:PORT`, imports `mod.ts` by
 * http:// URL, trains a few steps and prints its losses.
 */

import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

Deno.test("mod.ts imported by http:// URL trains with no other permission", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (!/^\/(mod\.ts|src\/(\w+\/)*\w+\.ts|kernels\/[\w]+\.ts)$/.test(path)) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(new URL(`.${path}`, root));
      return new Response(body, { headers: { "content-type": "application/typescript" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const host = `127.0.0.1:${server.addr.port}`;
  const script = `
    import { backendInfo, disposeTree, sgd, tensor, valueAndGrad } from "http://${host}/mod.ts";
    const loss = (p, x, y) => x.matmul(p.w).add(p.b).tanh().sub(y).pow(2).mean();
    const x = tensor([[0, 1], [1, 0], [1, 1], [0, 0]]);
    const y = tensor([[1], [-1], [0], [0]]);
    let params = { w: tensor([[0.1], [-0.2]]), b: tensor([0]) };
    const losses = [];
    for (let i = 0; i < 20; i++) {
      const [value, grads] = valueAndGrad(loss)(params, x, y);
      const next = sgd(params, grads, { lr: 0.5 });
      losses.push(value);
      disposeTree([params, grads]);
      params = next;
    }
    const first = await losses[0].item();
    const last = await losses.at(-1).item();
    console.log(JSON.stringify({ backend: backendInfo().name, first, last }));
  `;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-lock", `--allow-import=${host}`, "-"],
      cwd: "/",
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(script));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `child failed:\n${err}`);
    const result = JSON.parse(out.trim().split("\n").at(-1)!);
    assert.ok(["webgpu", "wasm", "cpu"].includes(result.backend));
    assert.ok(Number.isFinite(result.first) && Number.isFinite(result.last));
    assert.ok(result.last < result.first * 0.5, `loss fell: ${result.first} → ${result.last}`);
    console.log(`child (${result.backend}): loss ${result.first} → ${result.last}`);
  } finally {
    await server.shutdown();
  }
});
