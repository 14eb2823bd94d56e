/**
 * The WebGPU backend.
 *
 * Recording. Ops only record dispatches into one open command encoder and
 * compute pass; the encoder is submitted when a read needs it, on `sync()`,
 * or after `FLUSH_EVERY` dispatches (so the device starts on long queues
 * while later ops are still being recorded). Nothing is submitted per op.
 *
 * Parameters. Each dispatch's parameters (sizes, offsets, strides) go into a
 * slot of one uniform "args ring": a host array that is written to the GPU
 * with a single `writeBuffer` just before the encoder is submitted. Every
 * dispatch binds the ring with a dynamic offset, so the bind group depends
 * only on the data buffers and is cached: a training loop that reuses the
 * same pooled buffers reuses its bind groups too.
 *
 * Buffers. Storage comes from a pool bucketed by size. A buffer freed while
 * the open encoder may still use it can be handed out again at once as a
 * kernel output (dispatches in a pass run in order), but not as the
 * destination of an upload: `writeBuffer` runs before the encoder's work, so
 * such buffers wait until the encoder has been submitted.
 * @module
 */

import {
  type Backend,
  type BackendMemory,
  type BinaryOp,
  type CompiledKernel,
  isContiguous,
  reduceInit,
  type ReduceOp,
  type Storage,
  type TernaryOp,
  type UnaryOp,
  type View,
} from "./backend.ts";
import { type Shape, sizeOf } from "./shape.ts";
import { convertNumber, type DType, type HostArray, hostArray, hostArrayClass } from "./dtype.ts";
import { ARGS_WORDS, MAX_LOOP_ITERATIONS, WORKGROUP } from "../kernels/common.ts";
import {
  canVectorize,
  ELEMENTWISE_RUN,
  elementwiseArgs,
  elementwiseKernel,
  elementwiseKey,
  inputLayout,
} from "../kernels/elementwise.ts";
import {
  REDUCE_GROUP,
  reduceArgs,
  reduceKernel,
  reduceKey,
  type ReduceLayout,
  type ReduceStrategy,
} from "../kernels/reduce.ts";
import {
  matmulArgs,
  matmulConfig,
  matmulGrid,
  matmulKernel,
  matmulKey,
} from "../kernels/matmul.ts";
import { FINITE_FLAG_CLEAR, finiteCheckKernel } from "../kernels/finite.ts";
import { PAD_MAX_RANK, padArgs, padKernel } from "../kernels/pad.ts";
import { gatherArgs, gatherKernel } from "../kernels/gather.ts";
import { fusedKernelSource, fusedMatmulConfig, fusedWorkgroups } from "../kernels/fused.ts";
import { type FusedKernel, literalWords, storeSizes } from "./compiler/ir.ts";

interface GpuStorage extends Storage {
  buffer: GPUBuffer;
  /** The device generation the buffer belongs to. */
  generation: number;
}

/** Dispatches recorded before the encoder is submitted without a read. */
const FLUSH_EVERY = 256;
const MAX_GROUPS = 65535;
/** Elements one workgroup of a chunked ("long") reduction handles, at least. */
const REDUCE_CHUNK = 4096;
/** Chunks a long reduction is split into, at most (per output), unless its loops would be too long. */
const REDUCE_MAX_CHUNKS = 64;
/** The longest k one matmul kernel takes (its loop takes up to 4 k-steps an iteration). */
const MATMUL_MAX_K = 4 * MAX_LOOP_ITERATIONS;
/** Bind groups kept before the cache is cleared (a safety bound; loops need few). */
const BIND_GROUP_CACHE = 4096;
const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;
const READ_USAGE = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;

/** Pool bucket for a request of `bytes`: powers of two up to 1 MiB, then whole MiB. */
function bucketBytes(bytes: number): number {
  const MiB = 1 << 20;
  if (bytes <= 16) return 16;
  if (bytes <= MiB) return 2 ** Math.ceil(Math.log2(bytes));
  return Math.ceil(bytes / MiB) * MiB;
}

/** Splits `groups` workgroups over x and y so neither exceeds the per-dimension limit. */
function grid(groups: number): [number, number, number] {
  if (groups <= MAX_GROUPS) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * Drops size-1 axes and merges adjacent axes that every view walks as one
 * (`stride[i] = stride[i+1]·shape[i+1]` for all of them), so kernels do less
 * index arithmetic. Returns the new shape and one stride list per view.
 */
function collapse(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (
      last >= 0 &&
      strides.every((s, v) => outStrides[v][last] === s[d] * shape[d])
    ) {
      outShape[last] *= shape[d];
      strides.forEach((s, v) => outStrides[v][last] = s[d]);
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, v) => outStrides[v].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

interface OpenedDevice {
  device: GPUDevice;
  description: string;
  /** The adapter is a software one (`isFallbackAdapter`). */
  software: boolean;
}

/** Requests an adapter and a device with the adapter's full buffer limits. */
async function openDevice(): Promise<OpenedDevice | null> {
  if (typeof navigator === "undefined" || !("gpu" in navigator)) return null;
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return null;
  // float16 tensors need shader-f16; without it they are refused with a clear error.
  const requiredFeatures: GPUFeatureName[] = adapter.features.has("shader-f16")
    ? ["shader-f16"]
    : [];
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      // Smaller args slots where the adapter allows it (lavapipe: 32 bytes).
      minUniformBufferOffsetAlignment: adapter.limits.minUniformBufferOffsetAlignment,
      // Fused kernels bind many buffers; the default is 8 where adapters offer more.
      maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
    },
  });
  const info = adapter.info;
  const description = info.description ||
    [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "unknown adapter";
  // Newer runtimes report it in `info`, older ones on the adapter.
  const software = Boolean(
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
  return { device, description, software };
}

/** Requests an adapter and device; resolves to `null` where WebGPU has no adapter. */
export async function createWebGPUBackend(): Promise<Backend | null> {
  const opened = await openDevice();
  return opened ? new WebGPUBackend(opened) : null;
}

/** Counters about the buffer pool, for benchmarks (not part of the public API). */
export interface PoolStats {
  /** Storage and staging buffers handed out. */
  acquired: number;
  /** Of those, how many had to be created (pool misses). */
  created: number;
  /** Bind groups created (cache misses) and dispatches recorded. */
  bindGroupsCreated: number;
  dispatches: number;
  /** Encoders submitted. */
  submits: number;
  /** Compute pipelines compiled (shader modules created). */
  pipelinesCreated: number;
}

/** Free buffers of one size and usage. */
interface Bucket {
  /** Not used by the open encoder: safe for anything. */
  clean: GPUBuffer[];
  /** Freed while the open encoder may use them: fine as kernel outputs only. */
  dirty: GPUBuffer[];
}

/**
 * Host data as the GPU buffer holds it: int8 and bool widened to i32, and
 * an odd number of float16 values padded to whole 4-byte words (writes are
 * whole words).
 */
function storedForm(data: HostArray, dtype: DType): HostArray {
  if (dtype === "int8" || dtype === "bool") return Int32Array.from(data);
  if (dtype === "float16" && data.length % 2 === 1) {
    const padded = new Float16Array(data.length + 1);
    padded.set(data);
    return padded;
  }
  return data;
}

/** Bytes one element of `dtype` takes in a GPU buffer (int8 and bool are widened). */
function elementBytes(dtype: DType): number {
  return dtype === "float16" ? 2 : 4;
}

class WebGPUBackend implements Backend {
  readonly name = "webgpu" as const;
  adapter = "";
  software = false;
  maxElements = 0;
  dtypes: readonly DType[] = [];
  #device!: GPUDevice;
  /** Bumped when a lost device is replaced; storages of older generations are gone. */
  #generation = 0;
  /** Why the device was lost, while no replacement is attached. */
  #lost: string | null = null;
  #recovery: Promise<void> = Promise.resolve();
  #pipelines = new Map<string, GPUComputePipeline>();
  /** Shaders that did not compile, by pipeline key: using one again throws at once. */
  #failedShaders = new Map<string, Error>();
  /** Compile checks in flight (error scopes not yet popped). */
  #compileChecks: Promise<void>[] = [];
  /** A compile error found since the last read or sync, which rejects the next one. */
  #compileError: Error | null = null;
  /** Bind group layouts and pipeline layouts by number of inputs. */
  #layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextBufferId = 0;
  #pool = new Map<string, Bucket>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #recorded = 0;
  /** Whether work reached the queue since the last `sync()` asked to be told when it is done. */
  #queuedSinceWait = false;
  /** That last wait. */
  #lastWait: Promise<void> = Promise.resolve();
  /** Debug mode's flag buffer: the smallest failing tag, or FINITE_FLAG_CLEAR. */
  #finiteFlag: GPUBuffer | null = null;
  /** The args ring: host copy, its GPU buffer, words used, slot alignment in words. */
  #args!: Uint32Array;
  #argsBuffer!: GPUBuffer;
  #argsUsed = 0;
  #argsAlign = 1;
  #mem: BackendMemory = {
    liveBuffers: 0,
    liveBytes: 0,
    pooledBytes: 0,
    peakBytes: 0,
  };
  readonly stats: PoolStats = {
    acquired: 0,
    created: 0,
    bindGroupsCreated: 0,
    dispatches: 0,
    submits: 0,
    pipelinesCreated: 0,
  };

  constructor(opened: OpenedDevice) {
    this.#attach(opened);
  }

  /** Starts using a (new) device: caches and pools of the old one are dropped. */
  #attach({ device, description, software }: OpenedDevice): void {
    this.#device = device;
    this.adapter = description;
    this.software = software;
    this.dtypes = device.features.has("shader-f16")
      ? ["float32", "float16", "int32", "int8", "bool"]
      : ["float32", "int32", "int8", "bool"];
    this.maxElements = Math.floor(
      Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) / 4,
    );
    this.#generation++;
    this.#lost = null;
    this.#pipelines.clear();
    this.#pool.clear();
    this.#layouts = new Map();
    this.#bindGroups.clear();
    this.#encoder = null;
    this.#pass = null;
    this.#recorded = 0;
    this.#finiteFlag = null;
    this.#mem.pooledBytes = 0;
    // A validation error here is a bug in littlegrad: make it loud.
    device.addEventListener("uncapturederror", (event) => {
      console.error(
        `littlegrad WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`,
      );
    });
    this.#argsAlign = Math.max(1, device.limits.minUniformBufferOffsetAlignment / 4);
    // Room for FLUSH_EVERY full slots, plus one binding's worth past the last offset.
    const words = FLUSH_EVERY * Math.max(ARGS_WORDS, this.#argsAlign) + ARGS_WORDS;
    this.#args = new Uint32Array(words);
    this.#argsUsed = 0;
    this.#argsBuffer = device.createBuffer({
      size: words * 4,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: "littlegrad args ring",
    });
    device.lost.then((info) => {
      if (this.#device !== device) return;
      this.#lost = `${info.reason}${info.message ? `: ${info.message}` : ""}`;
      this.#recovery = openDevice().then((opened) => {
        if (!opened) throw new Error("no WebGPU adapter is available any more");
        this.#attach(opened);
      }).catch((err) => {
        const why = err instanceof Error ? err.message : String(err);
        throw new Error(
          `WebGPU device was lost (${this.#lost}) and could not be re-acquired: ${why}`,
        );
      });
      this.#recovery.catch(() => {}); // reported through ready() and the next op
    });
  }

  /** @internal The current device (tests simulate a loss with `device.destroy()`). */
  get device(): GPUDevice {
    return this.#device;
  }

  ready(): Promise<void> {
    return this.#recovery;
  }

  assertUsable(storage?: Storage): void {
    if (this.#lost !== null) {
      throw new Error(
        `WebGPU device was lost (${this.#lost}); littlegrad is acquiring a new one: ` +
          "await deviceReady(), then recreate your tensors (their data was on the lost device)",
      );
    }
    if (storage && (storage as GpuStorage).generation !== this.#generation) {
      throw new Error(
        "this tensor's data was on a WebGPU device that was lost; recreate it " +
          "(from host data or a checkpoint) on the current device",
      );
    }
  }

  // ---- buffers ---------------------------------------------------------

  #bucket(size: number, usage: "storage" | "read"): Bucket {
    const key = `${usage}:${size}`;
    let bucket = this.#pool.get(key);
    if (!bucket) {
      bucket = { clean: [], dirty: [] };
      this.#pool.set(key, bucket);
    }
    return bucket;
  }

  /** A buffer of at least `bytes`; `forUpload` buffers must not be in use by the open encoder. */
  #acquire(bytes: number, usage: "storage" | "read", forUpload = false): GPUBuffer {
    const size = bucketBytes(bytes);
    const bucket = this.#bucket(size, usage);
    this.stats.acquired++;
    // A just-freed buffer is likely still in the CPU caches (software adapters).
    const pooled = (forUpload ? undefined : bucket.dirty.pop()) ?? bucket.clean.pop();
    if (pooled) {
      this.#mem.pooledBytes -= size;
      return pooled;
    }
    this.stats.created++;
    return this.#device.createBuffer({
      size,
      usage: usage === "storage" ? STORAGE_USAGE : READ_USAGE,
    });
  }

  #release(buffer: GPUBuffer, usage: "storage" | "read"): void {
    const bucket = this.#bucket(buffer.size, usage);
    (this.#encoder && usage === "storage" ? bucket.dirty : bucket.clean).push(buffer);
    this.#mem.pooledBytes += buffer.size;
  }

  #newStorage(elements: number, dtype: DType, forUpload = false): GpuStorage {
    this.assertUsable();
    if (elements > this.maxElements) {
      const mib = (n: number) => `${(n * 4 / 2 ** 20).toFixed(0)} MiB`;
      throw new RangeError(
        `a tensor of ${elements} ${dtype} values exceeds this adapter's storage buffer limit ` +
          `of ${this.maxElements} 32-bit values (${mib(this.maxElements)})`,
      );
    }
    const bytes = Math.max(elements, 1) * elementBytes(dtype);
    const buffer = this.#acquire(bytes, "storage", forUpload);
    this.#mem.liveBuffers++;
    this.#mem.liveBytes += buffer.size;
    this.#mem.peakBytes = Math.max(this.#mem.peakBytes, this.#mem.liveBytes);
    return {
      backend: this,
      dtype,
      size: elements,
      refs: 0,
      buffer,
      generation: this.#generation,
    };
  }

  // ---- recording -------------------------------------------------------

  /**
   * The layouts for kernels binding the args ring at 0 and then buffers with
   * `access` (one letter each, from binding 1: `w` read-write, `r` read-only).
   */
  #layout(access: string) {
    let layout = this.#layouts.get(access);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [
        {
          binding: 0,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: ARGS_WORDS * 4 },
        },
        ...[...access].map((a, i): GPUBindGroupLayoutEntry => ({
          binding: 1 + i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: a === "w" ? "storage" : "read-only-storage" },
        })),
      ];
      const group = this.#device.createBindGroupLayout({ entries });
      layout = {
        group,
        pipeline: this.#device.createPipelineLayout({ bindGroupLayouts: [group] }),
      };
      this.#layouts.set(access, layout);
    }
    return layout;
  }

  #pipeline(key: string, access: string, source: () => string): GPUComputePipeline {
    let pipeline = this.#pipelines.get(key);
    if (!pipeline) {
      const failed = this.#failedShaders.get(key);
      if (failed) throw failed;
      const device = this.#device;
      const code = source();
      // Compile errors arrive later: caught by an error scope, they reject the
      // next read or sync, and this pipeline is never used again.
      device.pushErrorScope("validation");
      const module = device.createShaderModule({ code, label: key.slice(0, 80) });
      pipeline = device.createComputePipeline({
        layout: this.#layout(access).pipeline,
        compute: { module, entryPoint: "main" },
        label: key.slice(0, 80),
      });
      const check = device.popErrorScope().then((error) => {
        if (!error || device !== this.#device) return;
        const first = code.split("\n").find((l) => l.startsWith("fn ") || l.startsWith("@compute"));
        const failure = new Error(
          `WebGPU: a littlegrad shader did not compile ('${
            first?.slice(0, 60) ?? key.slice(0, 60)
          }…'), so the work queued with it did not run and results computed since the last ` +
            `read are wrong (a littlegrad bug: please report it with this message): ${error.message.trim()}`,
        );
        this.#failedShaders.set(key, failure);
        this.#pipelines.delete(key);
        this.#compileError ??= failure;
      });
      this.#compileChecks.push(check);
      this.#pipelines.set(key, pipeline);
      this.stats.pipelinesCreated++;
    }
    return pipeline;
  }

  /** Throws (once) a compile error found since the last check. */
  async #checkCompiles(): Promise<void> {
    if (this.#compileChecks.length > 0) {
      const checks = this.#compileChecks;
      this.#compileChecks = [];
      await Promise.all(checks);
    }
    const error = this.#compileError;
    this.#compileError = null;
    if (error) throw error;
  }

  #bufferId(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) {
      id = this.#nextBufferId++;
      this.#bufferIds.set(buffer, id);
    }
    return id;
  }

  /** The bind group of `buffers` (bound with `access`) and the args ring at 0, cached. */
  #bindGroup(buffers: GPUBuffer[], access: string): GPUBindGroup {
    const key = `${access}:${buffers.map((b) => this.#bufferId(b)).join(",")}`;
    let group = this.#bindGroups.get(key);
    if (group) {
      // Least recently used first: a group used again moves to the end.
      this.#bindGroups.delete(key);
      this.#bindGroups.set(key, group);
    } else {
      if (this.#bindGroups.size >= BIND_GROUP_CACHE) {
        this.#bindGroups.delete(this.#bindGroups.keys().next().value!);
      }
      this.stats.bindGroupsCreated++;
      group = this.#device.createBindGroup({
        layout: this.#layout(access).group,
        entries: [
          { binding: 0, resource: { buffer: this.#argsBuffer, size: ARGS_WORDS * 4 } },
          ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      this.#bindGroups.set(key, group);
    }
    return group;
  }

  #computePass(): GPUComputePassEncoder {
    this.#encoder ??= this.#device.createCommandEncoder();
    this.#pass ??= this.#encoder.beginComputePass();
    return this.#pass;
  }

  /**
   * Records one dispatch of `pipeline` over `buffers` with `args` as its
   * parameters; the buffers are `[out, ...inputs]` unless `access` says
   * otherwise.
   */
  #dispatch(
    pipeline: GPUComputePipeline,
    args: readonly number[],
    buffers: GPUBuffer[],
    groups: [number, number, number],
    access = "w" + "r".repeat(buffers.length - 1),
  ): void {
    if (args.length > ARGS_WORDS) {
      throw new RangeError(
        `internal: ${args.length} kernel arguments exceed the ${ARGS_WORDS}-word args block`,
      );
    }
    const pass = this.#computePass();
    const at = this.#argsUsed;
    this.#args.set(args, at);
    this.#argsUsed += Math.ceil(args.length / this.#argsAlign) * this.#argsAlign;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.#bindGroup(buffers, access), [at * 4]);
    pass.dispatchWorkgroups(...groups);
    this.stats.dispatches++;
    if (++this.#recorded >= FLUSH_EVERY) this.#submit();
  }

  #submit(): void {
    if (!this.#encoder) return;
    this.#pass?.end();
    if (this.#argsUsed > 0) {
      this.#device.queue.writeBuffer(
        this.#argsBuffer,
        0,
        this.#args as Uint32Array<ArrayBuffer>,
        0,
        this.#argsUsed,
      );
    }
    this.#device.queue.submit([this.#encoder.finish()]);
    this.#queuedSinceWait = true;
    this.stats.submits++;
    this.#encoder = null;
    this.#pass = null;
    this.#recorded = 0;
    this.#argsUsed = 0;
    // Buffers freed while recording are now safe for uploads too.
    for (const bucket of this.#pool.values()) {
      if (bucket.dirty.length) {
        bucket.clean.push(...bucket.dirty);
        bucket.dirty.length = 0;
      }
    }
  }

  // ---- Backend ---------------------------------------------------------

  upload(data: HostArray, dtype: DType): Storage {
    const storage = this.#newStorage(data.length, dtype, true);
    if (data.length > 0) {
      const stored = storedForm(data, dtype);
      this.#device.queue.writeBuffer(storage.buffer, 0, stored as Float32Array<ArrayBuffer>);
      this.#queuedSinceWait = true;
    }
    return storage;
  }

  read(storage: Storage): Promise<HostArray> {
    const { buffer, size, dtype } = storage as GpuStorage;
    this.assertUsable(storage);
    if (size === 0) return Promise.resolve(hostArray(dtype, 0));
    const bytes = Math.ceil((size * elementBytes(dtype)) / 4) * 4;
    return this.#readBuffer(buffer, bytes, (raw) => {
      // The reverse of storedForm: narrow int8 and bool, drop float16 padding.
      if (dtype === "int8" || dtype === "bool") {
        return new (hostArrayClass(dtype))(new Int32Array(raw)) as HostArray;
      }
      return new (hostArrayClass(dtype))(raw, 0, size) as HostArray;
    });
  }

  /** Copies `bytes` of `buffer` to a staging buffer, submits, and maps it. */
  async #readBuffer<T>(
    buffer: GPUBuffer,
    bytes: number,
    convert: (b: ArrayBuffer) => T,
  ): Promise<T> {
    const staging = this.#acquire(bytes, "read");
    const generation = this.#generation;
    const device = this.#device;
    this.#pass?.end();
    this.#pass = null;
    this.#encoder ??= this.#device.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
    this.#submit();
    try {
      // Not awaited by anything else: later ops keep recording while this waits.
      await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    } catch (err) {
      // A read that fails because the device died: say so, not "validation error".
      const lost = await Promise.race([
        device.lost,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 100)),
      ]);
      if (lost !== null || generation !== this.#generation) {
        const why = lost ? `${lost.reason}${lost.message ? `: ${lost.message}` : ""}` : "replaced";
        throw new Error(`WebGPU read failed: the device was lost (${why})`);
      }
      throw err;
    }
    const result = convert(staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    this.#release(staging, "read");
    await this.#checkCompiles();
    return result;
  }

  checkFinite(storage: Storage, size: number, tag: number): undefined {
    const half = storage.dtype === "float16";
    if (size === 0 || (storage.dtype !== "float32" && !half)) return;
    if (!this.#finiteFlag) {
      this.#finiteFlag = this.#acquire(16, "storage", true);
      this.#device.queue.writeBuffer(this.#finiteFlag, 0, new Uint32Array([FINITE_FLAG_CLEAR]));
    }
    this.#dispatch(
      this.#pipeline(`finite:${half}`, "wr", () => finiteCheckKernel(half)),
      [size, tag],
      [this.#finiteFlag, (storage as GpuStorage).buffer],
      grid(Math.ceil(size / WORKGROUP)),
    );
  }

  async takeNonFinite(): Promise<number | null> {
    const flag = this.#finiteFlag;
    if (!flag) return null;
    this.#finiteFlag = null;
    const value = await this.#readBuffer(flag, 4, (b) => new Uint32Array(b)[0]);
    this.#release(flag, "storage");
    return value === FINITE_FLAG_CLEAR ? null : value;
  }

  map(
    op: UnaryOp | BinaryOp | TernaryOp,
    inputs: readonly View[],
    shape: Shape,
    dtype: DType,
  ): Storage {
    const n = sizeOf(shape);
    const out = this.#newStorage(n, dtype);
    const types = { inputs: inputs.map((v) => v.storage.dtype), out: dtype };
    if (n === 0) return out;
    const layouts = inputs.map((v) => inputLayout(v));
    const vec4 = canVectorize(layouts, inputs);
    // The vector program never needs strides; the scalar one gets collapsed axes.
    const flat = vec4
      ? { shape: [] as number[], strides: inputs.map(() => [] as number[]) }
      : collapse(shape, inputs.map((v) => v.strides));
    const ndim = flat.shape.length;
    const kinds = layouts.map((l) => l.layout);
    const pipeline = this.#pipeline(
      elementwiseKey(op, ndim, kinds, vec4, types),
      "w" + "r".repeat(inputs.length),
      () => elementwiseKernel(op, ndim, kinds, vec4, types),
    );
    const count = vec4 ? Math.ceil(n / 4) : n;
    const views = inputs.map((v, i) => ({
      offset: v.offset,
      shape: flat.shape,
      strides: flat.strides[i],
    }));
    this.#dispatch(
      pipeline,
      elementwiseArgs(count, flat.shape, views, layouts.map((l) => l.period)),
      [out.buffer, ...inputs.map((v) => (v.storage as GpuStorage).buffer)],
      grid(Math.ceil(count / (WORKGROUP * ELEMENTWISE_RUN))),
    );
    return out;
  }

  reduce(
    op: ReduceOp,
    input: View,
    outSize: number,
    reduceSize: number,
    outDtype: DType,
  ): Storage {
    const dtype = input.storage.dtype;
    if (outSize === 0 || reduceSize === 0) {
      return this.upload(hostArray(outDtype, outSize).fill(reduceInit(op, outDtype)), outDtype);
    }
    // Split the view into its kept (leading) and reduced (trailing) axes,
    // and collapse each part on its own.
    let split = input.shape.length;
    for (let size = 1; size < reduceSize;) size *= input.shape[--split];
    const kept = collapse(input.shape.slice(0, split), [input.strides.slice(0, split)]);
    const reduced = collapse(input.shape.slice(split), [input.strides.slice(split)]);
    const view = {
      offset: input.offset,
      shape: [...kept.shape, ...reduced.shape],
      strides: [...kept.strides[0], ...reduced.strides[0]],
    };
    const keptRank = kept.shape.length;
    // Long reductions with few outputs run one workgroup per chunk, then
    // reduce the partial results again.
    const strategy: ReduceStrategy = outSize >= 256 || reduceSize <= 256 ? "thread" : "workgroup";
    const dense = isContiguous(input);
    const layout: ReduceLayout = dense && input.offset % 4 === 0 && reduceSize % 4 === 0
      ? "vec4"
      : reduced.shape.length <= 1
      ? "strided"
      : "generic";
    // Chunk and slice lengths are multiples of 4 for vec4 loads.
    const roundUp = (x: number) => layout === "vec4" ? Math.ceil(x / 4) * 4 : x;
    // No invocation's loop may run past MAX_LOOP_ITERATIONS (a vec4 loop
    // takes 4 elements an iteration): longer groups get more chunks, which
    // the next pass reduces.
    const serialMax = MAX_LOOP_ITERATIONS * (layout === "vec4" ? 4 : 1);
    const chunkLength = strategy === "workgroup"
      ? roundUp(Math.min(
        Math.max(REDUCE_CHUNK, Math.ceil(reduceSize / REDUCE_MAX_CHUNKS)),
        serialMax * REDUCE_GROUP,
      ))
      : Math.min(reduceSize, serialMax);
    const chunks = Math.ceil(reduceSize / chunkLength);
    const sliceLength = roundUp(Math.ceil(chunkLength / REDUCE_GROUP));
    const ndim = view.shape.length;
    // Partial results of a float16 reduction stay float32 until the last pass.
    const types = { input: dtype, out: chunks > 1 && dtype === "float16" ? "float32" : outDtype };
    const pipeline = this.#pipeline(
      reduceKey(op, strategy, layout, ndim, keptRank, types),
      "wr",
      () => reduceKernel(op, strategy, layout, ndim, keptRank, types),
    );
    const out = this.#newStorage(outSize * chunks, types.out);
    const groups = strategy === "thread"
      ? Math.ceil((outSize * chunks) / WORKGROUP)
      : outSize * chunks;
    this.#dispatch(
      pipeline,
      reduceArgs(
        outSize,
        reduceSize,
        chunks,
        chunkLength,
        view,
        reduced.strides[0][0] ?? 0,
        sliceLength,
      ),
      [out.buffer, (input.storage as GpuStorage).buffer],
      grid(groups),
    );
    if (chunks === 1) return out;
    const partial: View = {
      storage: out,
      shape: [outSize, chunks],
      strides: [chunks, 1],
      offset: 0,
    };
    const result = this.reduce(op, partial, outSize, chunks, outDtype);
    this.free(out);
    return result;
  }

  pad(
    input: View,
    outShape: Shape,
    starts: readonly number[],
    steps: readonly number[],
    fill: number,
  ): Storage {
    const n = sizeOf(outShape);
    const dtype = input.storage.dtype;
    const out = this.#newStorage(n, dtype);
    if (n === 0) return out;
    const ndim = outShape.length;
    if (ndim > PAD_MAX_RANK) {
      throw new RangeError(`pad: tensors of rank ${ndim} exceed the kernel's ${PAD_MAX_RANK}`);
    }
    this.#dispatch(
      this.#pipeline(`pad:${ndim}:${dtype}`, "wr", () => padKernel(ndim, dtype)),
      padArgs(outShape, starts, steps, input, convertNumber(fill, dtype), dtype),
      [out.buffer, (input.storage as GpuStorage).buffer],
      grid(Math.ceil(n / WORKGROUP)),
    );
    return out;
  }

  matmul(
    a: View,
    b: View,
    batch: number,
    m: number,
    k: number,
    n: number,
  ): Storage {
    if (a.storage.dtype !== "float32" || b.storage.dtype !== "float32") {
      throw new TypeError("internal: the matmul kernel takes float32 operands");
    }
    if (k > MATMUL_MAX_K) return this.#matmulSplitK(a, b, batch, m, k, n);
    const out = this.#newStorage(batch * m * n, "float32");
    if (batch * m * n === 0) return out;
    const config = matmulConfig(a, b, m, k, n);
    const pipeline = this.#pipeline(matmulKey(config), "wrr", () => matmulKernel(config));
    const buffers = [
      out.buffer,
      (a.storage as GpuStorage).buffer,
      (b.storage as GpuStorage).buffer,
    ];
    // One launch unless the grid exceeds the per-dimension limit somewhere.
    const [gx, gy, gz] = matmulGrid(config, batch, m, n);
    for (let z = 0; z < gz; z += MAX_GROUPS) {
      for (let y = 0; y < gy; y += MAX_GROUPS) {
        for (let x = 0; x < gx; x += MAX_GROUPS) {
          this.#dispatch(
            pipeline,
            matmulArgs(m, n, k, a, b, [x, y, z]),
            buffers,
            [
              Math.min(MAX_GROUPS, gx - x),
              Math.min(MAX_GROUPS, gy - y),
              Math.min(MAX_GROUPS, gz - z),
            ],
          );
        }
      }
    }
    return out;
  }

  /**
   * A matmul whose k loop would exceed MAX_LOOP_ITERATIONS: the sum of the
   * products of k-slices of at most MATMUL_MAX_K (views: no copies).
   */
  #matmulSplitK(a: View, b: View, batch: number, m: number, k: number, n: number): Storage {
    let sum: Storage | null = null;
    for (let k0 = 0; k0 < k; k0 += MATMUL_MAX_K) {
      const len = Math.min(MATMUL_MAX_K, k - k0);
      const aPart: View = {
        ...a,
        shape: [batch, m, len],
        offset: a.offset + k0 * a.strides[2],
      };
      const bPart: View = {
        ...b,
        shape: [batch, len, n],
        offset: b.offset + k0 * b.strides[1],
      };
      const part = this.matmul(aPart, bPart, batch, m, len, n);
      if (sum === null) {
        sum = part;
        continue;
      }
      const shape = [batch * m * n];
      const dense = (storage: Storage): View => ({ storage, shape, strides: [1], offset: 0 });
      const next = this.map("add", [dense(sum), dense(part)], shape, "float32");
      this.free(sum);
      this.free(part);
      sum = next;
    }
    return sum!;
  }

  gather(
    input: View,
    indices: View,
    pre: number,
    n: number,
    post: number,
    count: number,
  ): Storage {
    const dtype = input.storage.dtype;
    const total = pre * count * post;
    const out = this.#newStorage(total, dtype);
    if (total === 0) return out;
    this.#dispatch(
      this.#pipeline(`gather:${dtype}`, "wrr", () => gatherKernel(dtype)),
      gatherArgs(pre, n, post, count, input.offset, indices.offset),
      [
        out.buffer,
        (input.storage as GpuStorage).buffer,
        (indices.storage as GpuStorage).buffer,
      ],
      grid(Math.ceil(total / WORKGROUP)),
    );
    return out;
  }

  get maxKernelBuffers(): number {
    return this.#device.limits.maxStorageBuffersPerShaderStage;
  }

  compileKernel(kernel: FusedKernel): CompiledKernel {
    const source = fusedKernelSource(kernel);
    const access = kernel.buffers.map((b) => (b.access === "write" ? "w" : "r")).join("");
    const size = sizeOf(kernel.shape);
    const sizes = storeSizes(kernel);
    const groups = kernel.matmul
      ? [1, 1, 1] as [number, number, number]
      : grid(fusedWorkgroups(kernel));
    const literals = literalWords(kernel).words;
    // Compiled now, and again on a new device after a loss (pipelines die with theirs).
    const pipeline = () => this.#pipeline(source, access, () => source);
    pipeline();
    return {
      source,
      run: (inputs, params, given = []) => {
        let next = 0;
        const outputs: GpuStorage[] = [];
        const buffers = kernel.buffers.map((b, i) => {
          if (b.access === "read") {
            const input = inputs[next++] as GpuStorage;
            this.assertUsable(input);
            return input.buffer;
          }
          // A given output of a lost device is replaced by a new one.
          const mine = given[outputs.length] as GpuStorage | undefined;
          const out = mine && mine.generation === this.#generation
            ? mine
            : this.#newStorage(sizes[i], b.dtype);
          outputs.push(out);
          return out.buffer;
        });
        if (size === 0) return outputs;
        if (!kernel.matmul) {
          this.#dispatch(pipeline(), [...params, ...literals], buffers, groups, access);
          return outputs;
        }
        // A matmul with an epilogue: launched as the matmul is, one launch
        // per part of a grid over the per-dimension limit.
        const { a, b, batch, m, k, n } = kernel.matmul;
        const [gx, gy, gz] = matmulGrid(fusedMatmulConfig(kernel), batch, m, n);
        for (let z = 0; z < gz; z += MAX_GROUPS) {
          for (let y = 0; y < gy; y += MAX_GROUPS) {
            for (let x = 0; x < gx; x += MAX_GROUPS) {
              this.#dispatch(
                pipeline(),
                [...matmulArgs(m, n, k, a, b, [x, y, z]), ...params, ...literals],
                buffers,
                [
                  Math.min(MAX_GROUPS, gx - x),
                  Math.min(MAX_GROUPS, gy - y),
                  Math.min(MAX_GROUPS, gz - z),
                ],
                access,
              );
            }
          }
        }
        return outputs;
      },
    };
  }

  free(storage: Storage): void {
    const { buffer, generation } = storage as GpuStorage;
    this.#mem.liveBuffers--;
    this.#mem.liveBytes -= buffer.size;
    // A buffer of a lost device is gone with it: never pool it.
    if (generation === this.#generation) this.#release(buffer, "storage");
  }

  trim(): number {
    // Submitting first makes every freed buffer "clean"; destroying one that
    // submitted work still uses is deferred by WebGPU until that work ends.
    this.#submit();
    let released = 0;
    for (const bucket of this.#pool.values()) {
      for (const buffer of bucket.clean) {
        released += buffer.size;
        buffer.destroy();
      }
      bucket.clean.length = 0;
    }
    this.#mem.pooledBytes -= released;
    // Cached bind groups may name the destroyed buffers: drop them all.
    this.#bindGroups.clear();
    return released;
  }

  async sync(): Promise<void> {
    this.#submit();
    // Waiting costs about 11 ms even on an idle queue: with nothing queued
    // since the last wait, that wait covers everything.
    if (this.#queuedSinceWait) {
      this.#queuedSinceWait = false;
      this.#lastWait = this.#device.queue.onSubmittedWorkDone();
    }
    await this.#lastWait;
    await this.#checkCompiles();
  }

  memory(): BackendMemory {
    return { ...this.#mem };
  }

  resetPeak(): void {
    this.#mem.peakBytes = this.#mem.liveBytes;
  }
}
