/**
 * Checkpoints in the safetensors format (https://github.com/huggingface/safetensors),
 * which PyTorch, JAX/Flax and Hugging Face tools read and write:
 *
 * - 8 bytes: `N`, the header's length, an unsigned little-endian 64-bit integer;
 * - `N` bytes: a UTF-8 JSON object mapping each tensor's name to
 *   `{ "dtype": "F32", "shape": [...], "data_offsets": [begin, end] }`, with
 *   an optional `"__metadata__"` object of strings; trailing spaces pad it
 *   (to a multiple of 8 bytes, as the reference writer does);
 * - the data: every tensor's bytes, row-major, little-endian, where
 *   `data_offsets` (relative to the start of the data) say, covering the data
 *   exactly with no gap or overlap.
 *
 * Tensors keep their dtype: littlegrad saves `float32`, `float16`, `int32`,
 * `int8` and `bool` tensors as `F32`, `F16`, `I32`, `I8` and `BOOL` (one
 * byte per element, 0 or 1), and loads the file's dtypes as follows:
 *
 * | file dtype | loads as | |
 * |---|---|---|
 * | `F32`, `F16`, `I32`, `I8`, `BOOL` | `float32`, `float16`, `int32`, `int8`, `bool` | bit-exact (a `BOOL` byte other than 0 or 1 is an error) |
 * | `BF16`, `F64`, `F8_E4M3`, `F8_E5M2` | `float32` | converted (`F64` rounds to nearest) |
 * | `U8`, `I16`, `U16` | `int32` | exact: every value fits |
 * | `I64`, `U32`, `U64` | `int32` | exact when every value fits in int32, else an error naming the tensor |
 *
 * A `float16` tensor needs a backend that stores float16: on a WebGPU
 * adapter without `shader-f16` loading one throws the usual `TypeError`
 * (load it with `{ backend: "cpu" }` and `astype("float32")` instead).
 *
 * Names are pytree paths (`layers.0.w`), so a tree of parameters saves as a
 * flat file and loads back as the same tree: nested objects, with arrays
 * where the keys of a level are exactly `0 … n-1`.
 *
 * The core works on bytes (`saveSafetensors`, `loadSafetensors`) and needs no
 * permission; the `…File` helpers read or write a file. Loading validates the
 * whole file before creating any tensor: a corrupt or truncated file throws a
 * `SafetensorsError` saying what is wrong, and allocates nothing.
 * @module
 */

import { checkCapacity } from "./backend.ts";
import { type BackendName, resolveBackend } from "./backends.ts";
import { tensor } from "./creation.ts";
import { type DType, type HostArray, hostArray } from "./dtype.ts";
import { checkBackendDType } from "./ops/_operands.ts";
import { Tensor } from "./tensor.ts";
import { describe, named } from "./core/errors.ts";
import { flattenTree, type Tree } from "./tree.ts";
import { shapeString, sizeOf } from "./shape.ts";

/** A file that is not valid safetensors, or cannot be loaded. */
export class SafetensorsError extends Error {
  /**
   * Creates the error.
   * @param message What is wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  /** The tensor's name, a pytree path such as `layers.0.w`. */
  name: string;
  /** The safetensors dtype as the file names it, e.g. `"F32"` or `"I64"`. */
  dtype: string;
  /** The tensor's shape. */
  shape: number[];
  /** `[begin, end)` byte offsets of its data, relative to the data section. */
  dataOffsets: [number, number];
}

/** The parsed header of a safetensors file. */
export interface SafetensorsHeader {
  /** The `__metadata__` strings (empty when absent). */
  metadata: Record<string, string>;
  /** The tensors, in the order of their data. */
  tensors: SafetensorsEntry[];
  /** Where the data section starts in the file (8 + header length). */
  dataStart: number;
}

/** Element sizes of the safetensors dtypes littlegrad reads (every one loads: `LOADS_AS`). */
const ITEM_SIZE: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};
/** The safetensors dtype each littlegrad dtype is saved as. */
const SAVED_AS: Record<DType, string> = {
  float32: "F32",
  float16: "F16",
  int32: "I32",
  int8: "I8",
  bool: "BOOL",
};
/** The dtype each loadable safetensors dtype loads as (see the module doc). */
const LOADS_AS: Record<string, DType> = {
  F32: "float32",
  F16: "float16",
  I32: "int32",
  I8: "int8",
  BOOL: "bool",
  BF16: "float32",
  F64: "float32",
  F8_E4M3: "float32",
  F8_E5M2: "float32",
  U8: "int32",
  I16: "int32",
  U16: "int32",
  I64: "int32",
  U32: "int32",
  U64: "int32",
};
/** The reference implementation's limit on the header size. */
const MAX_HEADER = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---- saving ----------------------------------------------------------------------

/** Options of `saveSafetensors`. */
export interface SaveSafetensorsOptions {
  /** Strings stored in the header's `__metadata__` (e.g. `{ format: "pt" }`). */
  metadata?: Record<string, string>;
}

/**
 * Serialises a tree of tensors to safetensors bytes. Names are the leaves'
 * pytree paths. Each tensor keeps its dtype: `float32`, `float16`, `int32`,
 * `int8` and `bool` are saved as `F32`, `F16`, `I32`, `I8` and `BOOL` (one
 * byte per element, 0 or 1), little-endian. Reads every tensor back from its
 * backend, so it is async.
 *
 * @param tree A tree (object or array) of tensors.
 * @param opts `metadata`.
 * @returns The file's bytes.
 * @example
 * ```ts
 * import { loadSafetensors, readSafetensorsHeader, saveSafetensors, tensor } from "littlegrad";
 * const bytes = await saveSafetensors({
 *   layers: [{ w: tensor([[1, 2]]), b: tensor([0]) }],
 *   labels: tensor([3, 1], { dtype: "int32" }),
 *   mask: tensor([true, false]),
 * });
 * console.log(readSafetensorsHeader(bytes).tensors.map((t) => t.dtype)); // ["F32", "F32", "I32", "BOOL"]
 * const tree = loadSafetensors(bytes) as { layers: { w: unknown }[] };
 * console.log(Object.keys(tree.layers[0])); // ["w", "b"]
 * ```
 */
export async function saveSafetensors(
  tree: unknown,
  opts: SaveSafetensorsOptions = {},
): Promise<Uint8Array> {
  const op = "saveSafetensors";
  const { leaves } = flattenTree(tree);
  if (leaves.length === 1 && leaves[0].path === "" && leaves[0].value instanceof Tensor) {
    throw new TypeError(
      `${op}: a bare tensor has no name; wrap it in an object, e.g. { weight: t }`,
    );
  }
  const names = new Set<string>();
  const tensors = leaves.map(({ path, value }) => {
    if (!(value instanceof Tensor)) {
      throw new TypeError(
        `${op}: leaf '${path}' is ${describe(value)}; only tensors can be saved`,
      );
    }
    if (path === "__metadata__") {
      throw new TypeError(`${op}: '__metadata__' is reserved; use opts.metadata`);
    }
    if (names.has(path)) {
      throw new TypeError(
        `${op}: two leaves are both named '${path}' (a key containing '.' collides with a nested path)`,
      );
    }
    names.add(path);
    value.view(op); // a disposed tensor is named before anything is read
    return { name: path, tensor: value };
  });
  const metadata = opts.metadata;
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new TypeError(`${op}: opts.metadata must be an object of strings`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new TypeError(`${op}: metadata '${k}' is ${describe(v)}; values must be strings`);
      }
    }
  }
  const data = await Promise.all(tensors.map(({ tensor }) => tensor.data()));

  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  tensors.forEach(({ name, tensor }, i) => {
    const bytes = data[i].byteLength;
    header[name] = {
      dtype: SAVED_AS[tensor.dtype],
      shape: [...tensor.shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  });
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }

  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true); // the high 32 bits stay 0
  out.set(json, 8);
  let at = 8 + json.length;
  for (const values of data) {
    const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    copyLittleEndian(raw, out.subarray(at, at + raw.length), values.BYTES_PER_ELEMENT);
    at += values.byteLength;
  }
  return out;
}

/**
 * Copies elements of `size` bytes between host order and little-endian
 * (the file's order): a plain copy on little-endian hosts, byte-swapped on
 * big-endian ones. Bit-exact either way, NaN payloads included.
 */
function copyLittleEndian(from: Uint8Array, to: Uint8Array, size: number): void {
  if (LITTLE_ENDIAN || size === 1) {
    to.set(from);
    return;
  }
  for (let i = 0; i < from.length; i += size) {
    for (let j = 0; j < size; j++) to[i + j] = from[i + size - 1 - j];
  }
}

// ---- loading ---------------------------------------------------------------------

function fail(source: string, message: string): never {
  throw new SafetensorsError(`${source}: ${message}`);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Parses and validates the header and the layout of the data. */
function parseHeader(bytes: unknown, source: string): SafetensorsHeader {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${source}: expected a Uint8Array of file bytes, got ${describe(bytes)}`);
  }
  if (bytes.length < 8) {
    fail(source, `file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (headerLength > MAX_HEADER) {
    fail(source, `header length ${headerLength} is over the 100 MB limit (a corrupt file?)`);
  }
  if (8 + headerLength > bytes.length) {
    fail(
      source,
      `truncated: the header is ${headerLength} bytes, but only ${
        bytes.length - 8
      } follow the length`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    fail(source, "the header is not valid UTF-8");
  }
  if (!text.startsWith("{")) fail(source, "the header must be a JSON object starting with '{'");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    fail(source, `the header is not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    fail(source, "the header must be a JSON object");
  }

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (info === null || typeof info !== "object" || Array.isArray(info)) {
        fail(source, "__metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string") fail(source, `__metadata__ '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (info === null || typeof info !== "object" || Array.isArray(info)) {
      fail(source, `tensor '${name}': expected { dtype, shape, data_offsets }`);
    }
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in ITEM_SIZE)) {
      fail(
        source,
        `tensor '${name}': unknown dtype ${JSON.stringify(dtype)} (littlegrad reads ${
          Object.keys(ITEM_SIZE).join(", ")
        })`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(
        source,
        `tensor '${name}': shape must be an array of non-negative integers, got ${
          JSON.stringify(shape)
        }`,
      );
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) ||
      offsets[0] > offsets[1]
    ) {
      fail(
        source,
        `tensor '${name}': data_offsets must be [begin, end] with 0 <= begin <= end, got ${
          JSON.stringify(offsets)
        }`,
      );
    }
    const needed = sizeOf(shape) * ITEM_SIZE[dtype];
    if (offsets[1] - offsets[0] !== needed) {
      fail(
        source,
        `tensor '${name}' (${dtype}${
          shapeString(shape)
        }) needs ${needed} bytes, but its data_offsets [${offsets.join(", ")}] span ${
          offsets[1] - offsets[0]
        }`,
      );
    }
    tensors.push({ name, dtype, shape, dataOffsets: [offsets[0], offsets[1]] });
  }

  // The data must be covered exactly, in some order, with no gap or overlap.
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  tensors.sort((a, b) =>
    a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]
  );
  let expected = 0;
  for (const t of tensors) {
    const [begin, end] = t.dataOffsets;
    if (begin !== expected) {
      fail(
        source,
        begin > expected
          ? `tensor '${t.name}' starts at data byte ${begin}, leaving a gap after byte ${expected}`
          : `tensor '${t.name}' starts at data byte ${begin}, overlapping the tensor before it (which ends at ${expected})`,
      );
    }
    if (end > dataLength) {
      fail(
        source,
        `truncated: tensor '${t.name}' ends at data byte ${end}, but the file has only ${dataLength} bytes of data`,
      );
    }
    expected = end;
  }
  if (expected !== dataLength) {
    fail(
      source,
      `the data section has ${dataLength} bytes but the tensors cover ${expected} (${
        dataLength - expected
      } unexpected trailing bytes)`,
    );
  }
  return { metadata, tensors, dataStart };
}

/**
 * Decodes one tensor's bytes to the host array of the dtype it loads as
 * (`LOADS_AS`), throwing a `SafetensorsError` for a value that dtype cannot
 * hold exactly (a `BOOL` byte other than 0/1, a 64-bit or unsigned integer
 * outside int32).
 */
function decode(
  bytes: Uint8Array,
  at: number,
  entry: SafetensorsEntry,
  source: string,
): HostArray {
  const n = sizeOf(entry.shape);
  const dtype = LOADS_AS[entry.dtype];
  const out = hostArray(dtype, n);
  const length = entry.dataOffsets[1] - entry.dataOffsets[0];
  const raw = bytes.subarray(at, at + length);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, length);
  const outOfRange = (value: bigint | number, i: number): never =>
    fail(
      source,
      `tensor '${entry.name}' (${entry.dtype}) has the value ${value} at flat index ${i}, ` +
        `outside int32's range [-2147483648, 2147483647]; littlegrad loads ${entry.dtype} ` +
        "as int32 only when every value fits",
    );
  switch (entry.dtype) {
    case "F32":
    case "F16":
    case "I32":
    case "I8":
      // Bit-exact: the bytes themselves, in host order.
      copyLittleEndian(raw, new Uint8Array(out.buffer), ITEM_SIZE[entry.dtype]);
      break;
    case "BOOL":
      for (let i = 0; i < n; i++) {
        if (raw[i] > 1) {
          fail(
            source,
            `tensor '${entry.name}' (BOOL) has the byte ${raw[i]} at flat index ${i}; ` +
              "BOOL bytes must be 0 or 1",
          );
        }
      }
      out.set(raw);
      break;
    case "F64":
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case "BF16": {
      const word = new Uint32Array(1);
      const asFloat = new Float32Array(word.buffer);
      for (let i = 0; i < n; i++) {
        word[0] = view.getUint16(2 * i, true) << 16; // bfloat16 is float32's top half
        out[i] = asFloat[0];
      }
      break;
    }
    case "F8_E5M2": // float16's top byte
      for (let i = 0; i < n; i++) out[i] = halfToFloat(raw[i] << 8);
      break;
    case "F8_E4M3": // the "fn" variant: no infinities, S.1111.111 is NaN
      for (let i = 0; i < n; i++) {
        const sign = raw[i] & 0x80 ? -1 : 1;
        const exponent = (raw[i] >> 3) & 0xf;
        const mantissa = raw[i] & 0x7;
        out[i] = exponent === 0xf && mantissa === 0x7
          ? Number.NaN
          : exponent === 0
          ? sign * mantissa * 2 ** -9
          : sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
      }
      break;
    case "U8":
      out.set(raw);
      break;
    case "I16":
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case "U16":
      for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
      break;
    case "U32":
      for (let i = 0; i < n; i++) {
        const v = view.getUint32(4 * i, true);
        if (v > 0x7fffffff) outOfRange(v, i);
        out[i] = v;
      }
      break;
    case "I64":
    case "U64":
      for (let i = 0; i < n; i++) {
        const v = entry.dtype === "I64"
          ? view.getBigInt64(8 * i, true)
          : view.getBigUint64(8 * i, true);
        if (v < -0x80000000n || v > 0x7fffffffn) outOfRange(v, i);
        out[i] = Number(v);
      }
      break;
  }
  return out;
}

/** An IEEE 754 half-precision bit pattern as a number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

type Node = Map<string, Node | SafetensorsEntry>;

/** Builds the nested structure of names, checking they form a tree. */
function nameTree(entries: SafetensorsEntry[], source: string): Node {
  const root: Node = new Map();
  for (const entry of entries) {
    const parts = entry.name.split(".");
    if (parts.some((p) => p === "")) {
      fail(source, `tensor name '${entry.name}' is not a pytree path (empty component)`);
    }
    let node = root;
    parts.forEach((part, i) => {
      const child = node.get(part);
      if (i === parts.length - 1) {
        if (child !== undefined) {
          fail(source, `tensor '${entry.name}' is also a prefix of '${firstLeaf(child)}'`);
        }
        node.set(part, entry);
        return;
      }
      if (child === undefined) {
        const next: Node = new Map();
        node.set(part, next);
        node = next;
      } else if (child instanceof Map) {
        node = child;
      } else {
        fail(source, `tensor '${child.name}' is also a prefix of '${entry.name}'`);
      }
    });
  }
  return root;
}

function firstLeaf(x: Node | SafetensorsEntry): string {
  return x instanceof Map ? firstLeaf(x.values().next().value!) : x.name;
}

/** A level whose keys are exactly 0 … n-1 (in any order) becomes an array. */
function isArrayLevel(node: Node): boolean {
  const keys = [...node.keys()];
  return keys.length > 0 &&
    keys.every((k) => /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < keys.length);
}

/** Options of `loadSafetensors`. */
export interface LoadSafetensorsOptions {
  /** Backend of the loaded tensors (default: the current default backend). */
  backend?: BackendName;
}

/**
 * Reads the header of safetensors bytes without loading any tensor:
 * metadata, names, dtypes, shapes and offsets. Validates the whole layout.
 *
 * @param bytes The file's bytes.
 * @returns The parsed header.
 * @example
 * ```ts
 * import { readSafetensorsHeader, saveSafetensors, tensor } from "littlegrad";
 * const bytes = await saveSafetensors({ w: tensor([1, 2]) }, { metadata: { step: "100" } });
 * const header = readSafetensorsHeader(bytes);
 * console.log(header.metadata, header.tensors[0]);
 * // { step: "100" } { name: "w", dtype: "F32", shape: [2], dataOffsets: [0, 8] }
 * ```
 */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  return parseHeader(bytes, "readSafetensorsHeader");
}

/**
 * Loads safetensors bytes as a tree of tensors. `F32`, `F16`, `I32`, `I8`
 * and `BOOL` load bit-exact as `float32`, `float16`, `int32`, `int8` and
 * `bool`; `BF16`, `F64`, `F8_E4M3` and `F8_E5M2` are converted to
 * `float32`; `U8`, `I16` and `U16` load as `int32` exactly; `I64`, `U32`
 * and `U64` load as `int32` when every value fits (else a
 * `SafetensorsError` names the tensor and the value). Names are split at
 * dots into nested objects; a level whose keys are `0 … n-1` becomes an
 * array. Nothing is allocated unless the whole file is valid and loadable.
 *
 * @param bytes The file's bytes.
 * @param opts `backend`.
 * @returns The tree of new tensors (the caller owns them).
 * @throws {SafetensorsError} When the bytes are not a valid safetensors file,
 * hold a dtype littlegrad cannot load, a `BOOL` byte other than 0/1, or a
 * 64-bit or unsigned integer outside int32.
 * @throws {TypeError} When a tensor's dtype is `F16` and the backend cannot
 * store float16 (a WebGPU adapter without `shader-f16`).
 * @example
 * ```ts
 * import { loadSafetensors, saveSafetensors, type Tensor, tensor } from "littlegrad";
 * const bytes = await saveSafetensors({
 *   layers: [{ w: tensor([1, 2]) }],
 *   ids: tensor(new Int8Array([-128, 127])),
 * });
 * const params = loadSafetensors(bytes) as { layers: { w: Tensor }[]; ids: Tensor };
 * console.log(await params.layers[0].w.array()); // [1, 2]
 * console.log(params.ids.dtype, await params.ids.data()); // "int8" Int8Array(2) [ -128, 127 ]
 * ```
 */
export function loadSafetensors(bytes: Uint8Array, opts: LoadSafetensorsOptions = {}): Tree {
  return load(bytes, opts, "loadSafetensors");
}

function load(bytes: Uint8Array, opts: LoadSafetensorsOptions, source: string): Tree {
  const header = parseHeader(bytes, source);
  const backend = resolveBackend(opts.backend);
  for (const t of header.tensors) {
    // A float16 tensor on an adapter without shader-f16: the usual TypeError, naming the tensor.
    checkBackendDType(`${source}: tensor '${t.name}'`, backend, LOADS_AS[t.dtype]);
    // Likewise a tensor larger than the backend holds, before anything is decoded or allocated.
    checkCapacity(`${source}: tensor '${t.name}'`, t.shape, backend);
  }
  const root = nameTree(header.tensors, source);
  // Decode (and range-check) all data, then create the tensors: a value that
  // does not fit throws before anything is allocated.
  const decoded = new Map(
    header.tensors.map((t) => [t, decode(bytes, header.dataStart + t.dataOffsets[0], t, source)]),
  );
  // Tensors made so far, released if a later one fails (a lost device, say).
  const made: Tensor[] = [];
  const build = (node: Node): Tree => {
    const children = [...node.entries()].map(([k, child]): [string, Tree] => [
      k,
      child instanceof Map ? build(child) : named(`${source}: tensor '${child.name}'`, () => {
        const t = tensor(decoded.get(child)!, {
          shape: child.shape,
          dtype: LOADS_AS[child.dtype],
          backend: opts.backend,
        });
        made.push(t);
        return t;
      }),
    ]);
    if (isArrayLevel(node)) {
      const arr: Tree[] = [];
      for (const [k, v] of children) arr[Number(k)] = v;
      return arr;
    }
    return Object.fromEntries(children);
  };
  try {
    return build(root);
  } catch (err) {
    for (const t of made) t.dispose();
    throw err;
  }
}

// ---- files -----------------------------------------------------------------------

/**
 * Saves a tree of tensors to a safetensors file (needs `--allow-write` for
 * the path).
 *
 * @param tree A tree of tensors.
 * @param path The file to write.
 * @param opts `metadata`.
 * @example
 * ```ts ignore
 * import { nn, random, saveSafetensorsFile } from "littlegrad";
 * await saveSafetensorsFile(nn.initMlp(random.key(0), [784, 128, 10]), "mlp.safetensors");
 * ```
 */
export async function saveSafetensorsFile(
  tree: unknown,
  path: string | URL,
  opts: SaveSafetensorsOptions = {},
): Promise<void> {
  await Deno.writeFile(path, await saveSafetensors(tree, opts));
}

/**
 * Loads a safetensors file as a tree of tensors (needs `--allow-read` for
 * the path). Errors name the file.
 *
 * @param path The file to read.
 * @param opts `backend`.
 * @returns The tree of new tensors.
 * @throws {SafetensorsError} When the file is not valid safetensors.
 * @example
 * ```ts ignore
 * import { loadSafetensorsFile, nn } from "littlegrad";
 * const params = await loadSafetensorsFile("mlp.safetensors") as nn.MlpParams;
 * ```
 */
export async function loadSafetensorsFile(
  path: string | URL,
  opts: LoadSafetensorsOptions = {},
): Promise<Tree> {
  const bytes = await Deno.readFile(path);
  return load(bytes, opts, `loadSafetensorsFile(${String(path)})`);
}
