/**
 * Checkpoints in the safetensors format: round trips of parameter trees,
 * files from an independent encoder (a few lines of Python using only the
 * standard library) and our files read by an independent decoder, corrupt
 * and truncated files rejected with a clear error and nothing allocated, and
 * the file helpers.
 *
 * The Python tests need python3 and `--allow-run=python3`; without them they
 * are reported as ignored. The file test needs `--allow-write` for
 * `tests/_tmp/` (the test task grants both).
 */

import assert from "node:assert/strict";
import {
  disposeTree,
  flattenTree,
  initializers,
  loadSafetensors,
  loadSafetensorsFile,
  memoryStats,
  nn,
  random,
  readSafetensorsHeader,
  SafetensorsError,
  saveSafetensors,
  saveSafetensorsFile,
  type Tensor,
  tensor,
  type Tree,
} from "../mod.ts";
import { testBoth } from "./_helpers.ts";

/** Paths, shapes and values of every leaf, for comparing trees. */
async function describeTree(tree: unknown) {
  const out: [string, number[], number[]][] = [];
  for (const { path, value } of flattenTree(tree).leaves) {
    const t = value as Tensor;
    out.push([path, [...t.shape], Array.from(await t.data())]);
  }
  return out;
}

function sampleParams() {
  const [k1, k2] = random.split(random.key(0));
  return {
    layers: nn.initMlp(k1, [3, 4, 2], { bInit: initializers.normal(0.1) }).layers,
    embed: nn.initEmbedding(k2, 5, 2),
    norm: nn.initLayerNorm(2),
    step: tensor(7), // a scalar
    empty: tensor([]), // zero elements
  };
}

// ---- round trip --------------------------------------------------------------------

testBoth("a parameter tree round-trips through safetensors bytes", async (backend) => {
  const params = sampleParams();
  const bytes = await saveSafetensors(params, { metadata: { format: "pt", note: "ünïcode ✓" } });
  const loaded = loadSafetensors(bytes);
  assert.deepEqual(await describeTree(loaded), await describeTree(params));
  assert.ok(Array.isArray((loaded as { layers: unknown }).layers), "layers loads as an array");
  assert.equal(
    flattenTree(loaded).leaves.every((l) => (l.value as Tensor).backend === backend),
    true,
  );

  const header = readSafetensorsHeader(bytes);
  assert.deepEqual(header.metadata, { format: "pt", note: "ünïcode ✓" });
  assert.deepEqual(header.tensors.map((t) => t.name), [
    "layers.0.w",
    "layers.0.b",
    "layers.1.w",
    "layers.1.b",
    "embed.table",
    "norm.scale",
    "norm.bias",
    "step",
    "empty",
  ]);
  assert.deepEqual(header.tensors[0], {
    name: "layers.0.w",
    dtype: "F32",
    shape: [3, 4],
    dataOffsets: [0, 48],
  });
  // The header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
  assert.equal((header.dataStart - 8) % 8, 0);
  assert.equal(bytes[header.dataStart - 1] === 0x20 || bytes[header.dataStart - 1] === 0x7d, true);
  // Loading onto the other backend works too.
  const onCpu = loadSafetensors(bytes, { backend: "cpu" });
  assert.equal((flattenTree(onCpu).leaves[0].value as Tensor).backend, "cpu");
  disposeTree([params, loaded, onCpu]);
});

testBoth("saving rejects what safetensors cannot name", async () => {
  const t = tensor([1]);
  await assert.rejects(saveSafetensors(t), /a bare tensor has no name/);
  await assert.rejects(saveSafetensors({ a: t, b: 3 }), /leaf 'b' is number \(3\)/);
  await assert.rejects(
    saveSafetensors({ "a.b": t, a: { b: t } }),
    /two leaves are both named 'a.b'/,
  );
  await assert.rejects(
    saveSafetensors({ a: t }, { metadata: { n: 1 as unknown as string } }),
    /strings/,
  );
  const gone = tensor([2]);
  gone.dispose();
  await assert.rejects(saveSafetensors({ gone }), /used after dispose/);
  t.dispose();
});

// ---- an independent encoder and decoder ----------------------------------------------

const python = await (async () => {
  try {
    const status = await new Deno.Command("python3", {
      args: ["-c", "import json, struct"],
      stdout: "null",
      stderr: "null",
    }).output();
    return status.success;
  } catch {
    return false; // not installed, or no --allow-run=python3
  }
})();

async function runPython(script: string, input?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    stdin: input ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input) {
    const writer = child.stdin.getWriter();
    await writer.write(input);
    await writer.close();
  }
  const { success, stdout, stderr } = await child.output();
  if (!success) throw new Error(`python3 failed: ${new TextDecoder().decode(stderr)}`);
  return stdout;
}

/** Writes a safetensors file with struct and json only (no padding, tensors sorted by name). */
const PYTHON_ENCODER = `
import json, struct, sys
tensors = [
    ("net.2.weight", "F32", [2, 2], [1.5, -2.0, 3.25, 0.0]),
    ("net.0.weight", "F64", [3], [0.1, 0.2, 0.3]),
    ("net.0.bias", "F16", [2], [0.5, -1.25]),
    ("embed.table", "BF16", [2], [1.0, -3.5]),
    ("layers.1.w", "F32", [1, 2], [7.0, 8.0]),
    ("layers.0.w", "F32", [2, 1], [5.0, 6.0]),
    ("scalar", "F32", [], [42.0]),
]
formats = {"F32": "<%df", "F64": "<%dd", "F16": "<%de"}
header = {"__metadata__": {"format": "pt"}}
data = b""
for name, dtype, shape, values in sorted(tensors):
    if dtype == "BF16":  # the top two bytes of each little-endian float32
        raw = b"".join(struct.pack("<f", v)[2:] for v in values)
    else:
        raw = struct.pack(formats[dtype] % len(values), *values)
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
encoded = json.dumps(header).encode("utf-8")
sys.stdout.buffer.write(struct.pack("<Q", len(encoded)) + encoded + data)
`;

/** Reads a safetensors file with struct and json only; prints names, shapes and values. */
const PYTHON_DECODER = `
import json, struct, sys
b = sys.stdin.buffer.read()
(n,) = struct.unpack("<Q", b[:8])
text = b[8:8 + n].decode("utf-8")
assert text.startswith("{") and n % 8 == 0, "header must start with { and be padded to 8 bytes"
header = json.loads(text)
out = {"__metadata__": header.pop("__metadata__", {})}
end = 0
for name, info in header.items():
    assert info["dtype"] == "F32", info
    s, e = info["data_offsets"]
    raw = b[8 + n + s:8 + n + e]
    count = len(raw) // 4
    out[name] = {"shape": info["shape"], "values": list(struct.unpack("<%df" % count, raw))}
    end = max(end, e)
assert 8 + n + end == len(b), "data must end where the file ends"
json.dump(out, sys.stdout)
`;

Deno.test({
  name: "a file written by Python's struct module loads correctly",
  ignore: !python,
  async fn() {
    const bytes = await runPython(PYTHON_ENCODER);
    const before = memoryStats().liveTensors;
    const tree = loadSafetensors(bytes, { backend: "cpu" }) as Record<string, Tree>;
    assert.deepEqual(Object.keys(tree).sort(), ["embed", "layers", "net", "scalar"]);
    // layers.0 and layers.1 make an array; net.0 and net.2 (PyTorch Sequential style) an object.
    assert.ok(Array.isArray(tree.layers));
    assert.ok(!Array.isArray(tree.net));
    const byPath = Object.fromEntries(
      (await describeTree(tree)).map(([path, shape, values]) => [path, { shape, values }]),
    );
    assert.deepEqual(byPath, {
      "embed.table": { shape: [2], values: [1, -3.5] },
      "layers.0.w": { shape: [2, 1], values: [5, 6] },
      "layers.1.w": { shape: [1, 2], values: [7, 8] },
      "net.0.bias": { shape: [2], values: [0.5, -1.25] },
      "net.0.weight": { shape: [3], values: [0.1, 0.2, 0.3].map(Math.fround) },
      "net.2.weight": { shape: [2, 2], values: [1.5, -2, 3.25, 0] },
      "scalar": { shape: [], values: [42] },
    });
    assert.deepEqual(readSafetensorsHeader(bytes).metadata, { format: "pt" });
    assert.equal(memoryStats().liveTensors - before, 7);
    disposeTree(tree);
  },
});

Deno.test({
  name: "Python's struct module reads the files we write",
  ignore: !python,
  async fn() {
    const params = {
      layers: [{ w: tensor([[1, 2], [3, 4]], { backend: "cpu" }) }, {
        w: tensor([[0.1], [-7]], { backend: "cpu" }),
      }],
      s: tensor(2.5, { backend: "cpu" }),
    };
    const bytes = await saveSafetensors(params, { metadata: { epoch: "3" } });
    const decoded = JSON.parse(new TextDecoder().decode(await runPython(PYTHON_DECODER, bytes)));
    assert.deepEqual(decoded, {
      __metadata__: { epoch: "3" },
      "layers.0.w": { shape: [2, 2], values: [1, 2, 3, 4] },
      "layers.1.w": { shape: [2, 1], values: [Math.fround(0.1), -7] },
      "s": { shape: [], values: [2.5] },
    });
    disposeTree(params);
  },
});

// ---- corrupt and truncated files -------------------------------------------------------

/** A file from a header (object or raw text) and data bytes, as a hand-made writer would. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (...values: number[]) => new Uint8Array(new Float32Array(values).buffer);

Deno.test("corrupt or truncated files throw a SafetensorsError and allocate nothing", async () => {
  const good = await saveSafetensors({
    a: tensor([1, 2, 3], { backend: "cpu" }),
    b: tensor([4], { backend: "cpu" }),
  });
  const headerLength = new DataView(good.buffer).getUint32(0, true);
  const withLength = (n: number, hi = 0) => {
    const copy = good.slice();
    new DataView(copy.buffer).setUint32(0, n, true);
    new DataView(copy.buffer).setUint32(4, hi, true);
    return copy;
  };
  const invalidUtf8 = craft("{}");
  invalidUtf8[9] = 0xff;
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty file", new Uint8Array(0), /file is 0 bytes, too short for the 8-byte header length/],
    ["truncated length", good.slice(0, 5), /too short/],
    [
      "truncated header",
      good.slice(0, 20),
      /truncated: the header is \d+ bytes, but only 12 follow/,
    ],
    [
      "truncated data",
      good.slice(0, good.length - 2),
      /truncated: tensor 'b' ends at data byte 16, but the file has only 14 bytes of data/,
    ],
    ["trailing bytes", new Uint8Array([...good, 0, 0, 0, 0]), /4 unexpected trailing bytes/],
    ["huge header length", withLength(0, 1 << 20), /over the 100 MB limit/],
    ["header length too long", withLength(headerLength + 100), /truncated: the header is/],
    ["not UTF-8", invalidUtf8, /not valid UTF-8/],
    ["not JSON", craft("{not json"), /not valid JSON/],
    ["not an object", craft("[1, 2]"), /must be a JSON object starting with '\{'/],
    ["null", craft("null"), /must be a JSON object/],
    [
      "entry not an object",
      craft({ a: 3 }),
      /tensor 'a': expected \{ dtype, shape, data_offsets \}/,
    ],
    [
      "unknown dtype",
      craft({ a: { dtype: "F31", shape: [1], data_offsets: [0, 4] } }, f32(1)),
      /unknown dtype "F31"/,
    ],
    [
      "unsupported dtype",
      craft({ a: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /tensor 'a' has dtype I64; littlegrad loads F32, F16, BF16, F64 only/,
    ],
    [
      "bad shape",
      craft({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, f32(1)),
      /shape must be an array of non-negative integers/,
    ],
    [
      "bad offsets",
      craft({ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, f32(1)),
      /data_offsets must be \[begin, end\]/,
    ],
    [
      "size mismatch",
      craft({ a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(20)),
      /tensor 'a' \(F32\[2,3\]\) needs 24 bytes, but its data_offsets \[0, 20\] span 20/,
    ],
    [
      "gap",
      craft({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, f32(0, 1)),
      /starts at data byte 4, leaving a gap after byte 0/,
    ],
    [
      "overlap",
      craft({
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
      }, f32(1, 2)),
      /overlapping the tensor before it/,
    ],
    ["metadata not strings", craft({ __metadata__: { n: 1 } }), /__metadata__ 'n' is not a string/],
    [
      "name conflict",
      craft({
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        "a.b": { dtype: "F32", shape: [1], data_offsets: [4, 8] },
      }, f32(1, 2)),
      /tensor 'a' is also a prefix of 'a.b'/,
    ],
    [
      "empty name component",
      craft({ "a..b": { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, f32(1)),
      /'a..b' is not a pytree path/,
    ],
  ];
  const before = memoryStats();
  for (const [label, bytes, message] of cases) {
    assert.throws(() => loadSafetensors(bytes, { backend: "cpu" }), (err: unknown) => {
      assert.ok(err instanceof SafetensorsError, `${label}: ${String(err)}`);
      assert.match(err.message, message, label);
      assert.match(err.message, /^loadSafetensors: /, label);
      return true;
    });
  }
  const after = memoryStats();
  assert.equal(after.liveTensors, before.liveTensors, "a failed load allocated tensors");
  assert.equal(after.liveBytes, before.liveBytes);
  assert.throws(() => loadSafetensors([1, 2] as unknown as Uint8Array), TypeError);
  // Spaces after the JSON are allowed (the spec's padding), as are tensors in any order.
  const padded = craft(
    '{"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, "a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}   ',
    f32(1, 2),
  );
  const tree = loadSafetensors(padded, { backend: "cpu" }) as { a: Tensor; b: Tensor };
  assert.deepEqual([await tree.a.item(), await tree.b.item()], [1, 2]);
  disposeTree(tree);
});

// ---- files -------------------------------------------------------------------------

const tmpDir = new URL("./_tmp/", import.meta.url);
const canWrite =
  (await Deno.permissions.query({ name: "write", path: tmpDir })).state === "granted";

Deno.test({
  name: "saveSafetensorsFile and loadSafetensorsFile write and read a file",
  ignore: !canWrite,
  async fn() {
    await Deno.mkdir(tmpDir, { recursive: true });
    const path = new URL("mlp.safetensors", tmpDir);
    try {
      const params = nn.initMlp(random.key(1), [4, 3, 2], { backend: "cpu" });
      await saveSafetensorsFile(params, path, { metadata: { format: "pt" } });
      const loaded = await loadSafetensorsFile(path, { backend: "cpu" });
      assert.deepEqual(await describeTree(loaded), await describeTree(params));
      await Deno.writeFile(path, (await Deno.readFile(path)).slice(0, 30));
      await assert.rejects(
        loadSafetensorsFile(path),
        (err: Error) =>
          err instanceof SafetensorsError &&
          err.message.startsWith(`loadSafetensorsFile(${path}): truncated`),
      );
      disposeTree([params, loaded]);
    } finally {
      await Deno.remove(tmpDir, { recursive: true });
    }
  },
});
