/**
 * Checkpoints in the safetensors format: round trips of parameter trees and
 * of every dtype (bit-exact), the loading rules for the file dtypes
 * littlegrad has no dtype of its own for, files from an independent encoder (a few lines of Python using only the
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
  availableBackends,
  disposeTree,
  type DType,
  flattenTree,
  type HostArray,
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
import { resolveBackend } from "../src/backends.ts";
import { testBoth } from "./_helpers.ts";

/** Paths, dtypes, shapes and values of every leaf, for comparing trees. */
async function describeTree(tree: unknown) {
  const out: [string, DType, number[], number[]][] = [];
  for (const { path, value } of flattenTree(tree).leaves) {
    const t = value as Tensor;
    out.push([path, t.dtype, [...t.shape], Array.from(await t.data())]);
  }
  return out;
}

/** The bytes of a host array, for bit-exact comparisons (NaN payloads and -0 included). */
const bytesOf = (a: HostArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

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

/**
 * Values at the edges of each dtype: ±0, ±Infinity, NaN (also with payloads,
 * written as bits), the largest and smallest magnitudes, the integer limits.
 */
function extremes(): Record<DType, HostArray> {
  const f32 = new Float32Array(11);
  f32.set([0, -0, 1.5, Infinity, -Infinity, NaN, 3.4028234663852886e38, 1e-45]);
  new Uint32Array(f32.buffer, 32).set([0x7fc00001, 0xffc12345, 0x7f800001]);
  const f16 = new Float16Array(11);
  f16.set([0, -0, 0.5, Infinity, -Infinity, NaN, 65504, 2 ** -24]);
  new Uint16Array(f16.buffer, 16).set([0x7e01, 0xfe00, 0x7c01]);
  return {
    float32: f32,
    float16: f16,
    int32: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -1, 1, 123456789]),
    int8: new Int8Array([-128, 127, 0, -1, 1, 42]),
    bool: new Uint8Array([1, 0, 0, 1, 1, 0]),
  };
}

const SAVED_AS: Record<DType, string> = {
  float32: "F32",
  float16: "F16",
  int32: "I32",
  int8: "I8",
  bool: "BOOL",
};

testBoth("every dtype round-trips bit-exactly, as its own safetensors dtype", async (backend) => {
  const f16 = resolveBackend(backend).dtypes.includes("float16");
  const dtypes = (Object.keys(SAVED_AS) as DType[]).filter((d) => d !== "float16" || f16);
  const values = extremes();
  const tree: Record<string, Tensor> = {};
  for (const dtype of dtypes) {
    tree[dtype] = tensor(values[dtype], { dtype });
    tree[`${dtype}_scalar`] = tensor(values[dtype].subarray(1, 2), { shape: [], dtype });
    tree[`${dtype}_empty`] = tensor(values[dtype].subarray(0, 0), { shape: [0, 3], dtype });
  }
  tree.int8_matrix = tensor(values.int8, { shape: [2, 3], dtype: "int8" });
  const bytes = await saveSafetensors(tree);

  // The file: each dtype's name and size, and the little-endian bytes themselves.
  const header = readSafetensorsHeader(bytes);
  for (const entry of header.tensors) {
    const t = tree[entry.name];
    assert.equal(entry.dtype, SAVED_AS[t.dtype], entry.name);
    assert.deepEqual(entry.shape, [...t.shape], entry.name);
    const [begin, end] = entry.dataOffsets;
    const source = await t.data();
    assert.equal(end - begin, source.byteLength, entry.name);
    assert.deepEqual(
      bytes.subarray(header.dataStart + begin, header.dataStart + end),
      bytesOf(source),
      entry.name,
    );
  }

  // Loading gives the same dtypes, shapes and bits, on this backend and on the CPU.
  for (const target of [backend, "cpu" as const]) {
    const loaded = loadSafetensors(bytes, { backend: target }) as Record<string, Tensor>;
    assert.deepEqual(Object.keys(loaded), Object.keys(tree));
    for (const [name, t] of Object.entries(tree)) {
      const got = loaded[name];
      assert.equal(got.backend, target, name);
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      const data = await got.data();
      assert.equal(data.constructor, (await t.data()).constructor, name);
      assert.deepEqual(bytesOf(data), bytesOf(await t.data()), `${name} on ${target}`);
    }
    disposeTree(loaded);
  }
  disposeTree(tree);
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
    ("half", "F16", [5], [65504.0, -0.0, float("inf"), float("-inf"), 2.0 ** -24]),
    ("ints.i32", "I32", [3], [-2**31, 0, 2**31 - 1]),
    ("ints.i8", "I8", [2, 2], [-128, 127, 0, -1]),
    ("ints.u8", "U8", [2], [0, 255]),
    ("ints.i16", "I16", [2], [-32768, 32767]),
    ("ints.u16", "U16", [2], [0, 65535]),
    ("ints.i64", "I64", [2], [-2**31, 2**31 - 1]),
    ("ints.u32", "U32", [2], [0, 2**31 - 1]),
    ("ints.u64", "U64", [1], [2**31 - 1]),
    ("mask", "BOOL", [3], [1, 0, 1]),
]
formats = {"F32": "<%df", "F64": "<%dd", "F16": "<%de", "I32": "<%di", "I8": "<%db", "U8": "<%dB",
           "I16": "<%dh", "U16": "<%dH", "I64": "<%dq", "U32": "<%dI", "U64": "<%dQ", "BOOL": "<%dB"}
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

/**
 * Reads a safetensors file with struct and json only; prints names, dtypes,
 * shapes and values (non-finite floats as the strings "nan", "inf", "-inf").
 */
const PYTHON_DECODER = `
import json, math, struct, sys
formats = {"F32": "f", "F16": "e", "I32": "i", "I8": "b", "BOOL": "B"}
sizes = {"F32": 4, "F16": 2, "I32": 4, "I8": 1, "BOOL": 1}
b = sys.stdin.buffer.read()
(n,) = struct.unpack("<Q", b[:8])
text = b[8:8 + n].decode("utf-8")
assert text.startswith("{") and n % 8 == 0, "header must start with { and be padded to 8 bytes"
header = json.loads(text)
out = {"__metadata__": header.pop("__metadata__", {})}
end = 0
for name, info in header.items():
    dtype = info["dtype"]
    s, e = info["data_offsets"]
    raw = b[8 + n + s:8 + n + e]
    count = len(raw) // sizes[dtype]
    values = list(struct.unpack("<%d%s" % (count, formats[dtype]), raw))
    if dtype == "BOOL":
        assert all(v in (0, 1) for v in values), values
    values = [v if isinstance(v, int) or math.isfinite(v) else str(v) for v in values]
    out[name] = {"dtype": dtype, "shape": info["shape"], "values": values}
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
    assert.deepEqual(Object.keys(tree).sort(), [
      "embed",
      "half",
      "ints",
      "layers",
      "mask",
      "net",
      "scalar",
    ]);
    // layers.0 and layers.1 make an array; net.0 and net.2 (PyTorch Sequential style) an object.
    assert.ok(Array.isArray(tree.layers));
    assert.ok(!Array.isArray(tree.net));
    const byPath = Object.fromEntries(
      (await describeTree(tree)).map((
        [path, dtype, shape, values],
      ) => [path, { dtype, shape, values }]),
    );
    const int32 = 2 ** 31 - 1;
    assert.deepEqual(byPath, {
      "embed.table": { dtype: "float32", shape: [2], values: [1, -3.5] },
      "layers.0.w": { dtype: "float32", shape: [2, 1], values: [5, 6] },
      "layers.1.w": { dtype: "float32", shape: [1, 2], values: [7, 8] },
      "net.0.bias": { dtype: "float16", shape: [2], values: [0.5, -1.25] },
      "net.0.weight": { dtype: "float32", shape: [3], values: [0.1, 0.2, 0.3].map(Math.fround) },
      "net.2.weight": { dtype: "float32", shape: [2, 2], values: [1.5, -2, 3.25, 0] },
      "scalar": { dtype: "float32", shape: [], values: [42] },
      "half": { dtype: "float16", shape: [5], values: [65504, -0, Infinity, -Infinity, 2 ** -24] },
      "ints.i32": { dtype: "int32", shape: [3], values: [-int32 - 1, 0, int32] },
      "ints.i8": { dtype: "int8", shape: [2, 2], values: [-128, 127, 0, -1] },
      "ints.u8": { dtype: "int32", shape: [2], values: [0, 255] },
      "ints.i16": { dtype: "int32", shape: [2], values: [-32768, 32767] },
      "ints.u16": { dtype: "int32", shape: [2], values: [0, 65535] },
      "ints.i64": { dtype: "int32", shape: [2], values: [-int32 - 1, int32] },
      "ints.u32": { dtype: "int32", shape: [2], values: [0, int32] },
      "ints.u64": { dtype: "int32", shape: [1], values: [int32] },
      "mask": { dtype: "bool", shape: [3], values: [1, 0, 1] },
    });
    assert.deepEqual(readSafetensorsHeader(bytes).metadata, { format: "pt" });
    assert.equal(memoryStats().liveTensors - before, 17);
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
      f: tensor([NaN, Infinity, -Infinity, -0, 3.4028234663852886e38], { backend: "cpu" }),
      h: tensor(new Float16Array([NaN, Infinity, -0, 65504, 2 ** -24, 0.1]), { backend: "cpu" }),
      i: tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, -1]), { backend: "cpu" }),
      b: tensor(new Int8Array([-128, 127, -1, 0]), { shape: [2, 2], backend: "cpu" }),
      m: tensor([[true, false, true]], { backend: "cpu" }),
    };
    const bytes = await saveSafetensors(params, { metadata: { epoch: "3" } });
    const decoded = JSON.parse(new TextDecoder().decode(await runPython(PYTHON_DECODER, bytes)));
    assert.deepEqual(decoded, {
      __metadata__: { epoch: "3" },
      "layers.0.w": { dtype: "F32", shape: [2, 2], values: [1, 2, 3, 4] },
      "layers.1.w": { dtype: "F32", shape: [2, 1], values: [Math.fround(0.1), -7] },
      "s": { dtype: "F32", shape: [], values: [2.5] },
      "f": { dtype: "F32", shape: [5], values: ["nan", "inf", "-inf", -0, 3.4028234663852886e38] },
      "h": {
        dtype: "F16",
        shape: [6],
        values: ["nan", "inf", -0, 65504, 2 ** -24, new Float16Array([0.1])[0]],
      },
      "i": { dtype: "I32", shape: [3], values: [-(2 ** 31), 2 ** 31 - 1, -1] },
      "b": { dtype: "I8", shape: [2, 2], values: [-128, 127, -1, 0] },
      "m": { dtype: "BOOL", shape: [1, 3], values: [1, 0, 1] },
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
const i64 = (...values: bigint[]) => new Uint8Array(new BigInt64Array(values).buffer);

Deno.test("other file dtypes load as float32 or int32, converted as documented", async () => {
  const u8 = (...values: number[]) => new Uint8Array(values);
  const typed = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const parts: [string, string, number[], Uint8Array, DType, number[]][] = [
    // name, file dtype, shape, bytes, loaded dtype, loaded values
    [
      "bf16",
      "BF16",
      [4],
      typed(new Uint16Array([0x3f80, 0xc060, 0x7f80, 0x7fc0])),
      "float32",
      [1, -3.5, Infinity, NaN],
    ],
    [
      "f64",
      "F64",
      [4],
      typed(new Float64Array([0.1, -0, 1e300, NaN])),
      "float32",
      [Math.fround(0.1), -0, Infinity, NaN],
    ],
    [
      "e4m3",
      "F8_E4M3",
      [6],
      u8(0x38, 0x7e, 0x7f, 0x01, 0xc0, 0x80),
      "float32",
      [1, 448, NaN, 2 ** -9, -2, -0],
    ],
    [
      "e5m2",
      "F8_E5M2",
      [5],
      u8(0x3c, 0x7c, 0x7f, 0x01, 0xfb),
      "float32",
      [1, Infinity, NaN, 2 ** -16, -57344],
    ],
    ["u8", "U8", [3], u8(0, 128, 255), "int32", [0, 128, 255]],
    ["i16", "I16", [2], typed(new Int16Array([-32768, 32767])), "int32", [-32768, 32767]],
    ["u16", "U16", [2], typed(new Uint16Array([0, 65535])), "int32", [0, 65535]],
    ["i64", "I64", [3], i64(-(2n ** 31n), 2n ** 31n - 1n, -1n), "int32", [
      -(2 ** 31),
      2 ** 31 - 1,
      -1,
    ]],
    ["u32", "U32", [2], typed(new Uint32Array([0, 2 ** 31 - 1])), "int32", [0, 2 ** 31 - 1]],
    ["u64", "U64", [1], typed(new BigUint64Array([2n ** 31n - 1n])), "int32", [2 ** 31 - 1]],
  ];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, dtype, shape, bytes] of parts) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
  }
  const file = craft(header, new Uint8Array(parts.flatMap(([, , , bytes]) => [...bytes])));
  const tree = loadSafetensors(file, { backend: "cpu" }) as Record<string, Tensor>;
  for (const [name, , shape, , dtype, values] of parts) {
    assert.equal(tree[name].dtype, dtype, name);
    assert.deepEqual(tree[name].shape, shape, name);
    assert.deepEqual(Array.from(await tree[name].data()), values, name);
  }
  disposeTree(tree);
});

Deno.test({
  name: "an F16 tensor on an adapter without shader-f16 is refused before anything is allocated",
  ignore: !availableBackends().includes("webgpu"),
  fn() {
    const gpu = resolveBackend("webgpu") as { dtypes: readonly DType[] };
    const saved = gpu.dtypes;
    const file = craft({
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      h: { dtype: "F16", shape: [2], data_offsets: [4, 8] },
    }, new Uint8Array([...f32(1), ...new Uint8Array(new Float16Array([1, 2]).buffer)]));
    gpu.dtypes = saved.filter((d) => d !== "float16"); // as an adapter without shader-f16
    try {
      const before = memoryStats();
      assert.throws(
        () => loadSafetensors(file, { backend: "webgpu" }),
        (err: unknown) => {
          assert.ok(err instanceof TypeError, String(err));
          assert.match(
            err.message,
            /^loadSafetensors: tensor 'h': dtype float16 needs the WebGPU feature 'shader-f16'/,
          );
          return true;
        },
      );
      assert.equal(memoryStats().liveTensors, before.liveTensors);
    } finally {
      gpu.dtypes = saved;
    }
    // The CPU backend emulates float16, so the same file loads there.
    const tree = loadSafetensors(file, { backend: "cpu" }) as Record<string, Tensor>;
    assert.equal(tree.h.dtype, "float16");
    disposeTree(tree);
  },
});

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
      /unknown dtype "F31" \(littlegrad reads BOOL, U8, I8, .*F64, I64, U64\)/,
    ],
    [
      "bad BOOL byte",
      craft({
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        m: { dtype: "BOOL", shape: [3], data_offsets: [4, 7] },
      }, new Uint8Array([...f32(1), 1, 2, 0])),
      /tensor 'm' \(BOOL\) has the byte 2 at flat index 1; BOOL bytes must be 0 or 1/,
    ],
    [
      "I64 above int32",
      craft({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, i64(5n, 2n ** 31n)),
      /tensor 'ids' \(I64\) has the value 2147483648 at flat index 1, outside int32's range \[-2147483648, 2147483647\]; littlegrad loads I64 as int32 only when every value fits/,
    ],
    [
      "I64 below int32",
      craft({ ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, i64(-(2n ** 31n) - 1n)),
      /tensor 'ids' \(I64\) has the value -2147483649 at flat index 0/,
    ],
    [
      "U32 above int32",
      craft(
        { u: { dtype: "U32", shape: [2], data_offsets: [0, 8] } },
        new Uint8Array(new Uint32Array([7, 2 ** 31]).buffer),
      ),
      /tensor 'u' \(U32\) has the value 2147483648 at flat index 1/,
    ],
    [
      "U64 above int32",
      craft(
        { u: { dtype: "U64", shape: [1], data_offsets: [0, 8] } },
        new Uint8Array(new BigUint64Array([2n ** 64n - 1n]).buffer),
      ),
      /tensor 'u' \(U64\) has the value 18446744073709551615 at flat index 0/,
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
