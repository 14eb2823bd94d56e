/**
 * The WebGPU backend. Ops only record dispatches into one open command
 * encoder; the encoder is submitted when a read needs it or after
 * `FLUSH_EVERY` dispatches. Buffers come from a pool bucketed by size; a
 * buffer freed while the open encoder may still use it is held back until
 * that encoder has been submitted, so queue writes never race recorded work.
 * @module
 */

import {
  type Backend,
  type BackendMemory,
  type BinaryOp,
  isContiguous,
  type ReduceOp,
  type Storage,
  type UnaryOp,
  type View,
} from "./backend.ts";
import { type Shape, sizeOf } from "./shape.ts";
import { WORKGROUP } from "../kernels/common.ts";
import {
  elementwiseKernel,
  elementwiseKey,
  elementwiseMeta,
  type InputLayout,
} from "../kernels/elementwise.ts";
import { reduceKernel, reduceKey, reduceMeta, type ReduceStrategy } from "../kernels/reduce.ts";
import { MATMUL_TILE, matmulKernel, matmulMeta } from "../kernels/matmul.ts";
import { FINITE_FLAG_CLEAR, finiteCheckKernel } from "../kernels/finite.ts";

interface GpuStorage extends Storage {
  buffer: GPUBuffer;
  /** The device generation the buffer belongs to. */
  generation: number;
}

/** Dispatches recorded before the encoder is submitted without a read. */
const FLUSH_EVERY = 256;
const MAX_GROUPS = 65535;
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
function grid(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [groups, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}

interface OpenedDevice {
  device: GPUDevice;
  description: string;
}

/** Requests an adapter and a device with the adapter's full buffer limits. */
async function openDevice(): Promise<OpenedDevice | null> {
  if (typeof navigator === "undefined" || !("gpu" in navigator)) return null;
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return null;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  const info = adapter.info;
  const description = info.description ||
    [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "unknown adapter";
  return { device, description };
}

/** Requests an adapter and device; resolves to `null` where WebGPU has no adapter. */
export async function createWebGPUBackend(): Promise<Backend | null> {
  const opened = await openDevice();
  return opened ? new WebGPUBackend(opened) : null;
}

class WebGPUBackend implements Backend {
  readonly name = "webgpu" as const;
  adapter = "";
  maxElements = 0;
  #device!: GPUDevice;
  /** Bumped when a lost device is replaced; storages of older generations are gone. */
  #generation = 0;
  /** Why the device was lost, while no replacement is attached. */
  #lost: string | null = null;
  #recovery: Promise<void> = Promise.resolve();
  #pipelines = new Map<string, GPUComputePipeline>();
  #pool = new Map<string, GPUBuffer[]>();
  #heldBack: { buffer: GPUBuffer; usage: "storage" | "read" }[] = [];
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #recorded = 0;
  #finiteFlag: GPUBuffer | null = null;
  #mem: BackendMemory = {
    liveBuffers: 0,
    liveBytes: 0,
    pooledBytes: 0,
    peakBytes: 0,
  };

  constructor(opened: OpenedDevice) {
    this.#attach(opened);
  }

  /** Starts using a (new) device: caches and pools of the old one are dropped. */
  #attach({ device, description }: OpenedDevice): void {
    this.#device = device;
    this.adapter = description;
    this.maxElements = Math.floor(
      Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) / 4,
    );
    this.#generation++;
    this.#lost = null;
    this.#pipelines.clear();
    this.#pool.clear();
    this.#heldBack = [];
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

  #acquire(bytes: number, usage: "storage" | "read"): GPUBuffer {
    const size = bucketBytes(bytes);
    const free = this.#pool.get(`${usage}:${size}`);
    const pooled = free?.pop();
    if (pooled) {
      this.#mem.pooledBytes -= size;
      return pooled;
    }
    return this.#device.createBuffer({
      size,
      usage: usage === "storage" ? STORAGE_USAGE : READ_USAGE,
    });
  }

  #release(buffer: GPUBuffer, usage: "storage" | "read"): void {
    if (this.#encoder) {
      // Held back until the open encoder is submitted; counted as pooled.
      this.#heldBack.push({ buffer, usage });
      this.#mem.pooledBytes += buffer.size;
      return;
    }
    const key = `${usage}:${buffer.size}`;
    const list = this.#pool.get(key) ?? [];
    list.push(buffer);
    this.#pool.set(key, list);
    this.#mem.pooledBytes += buffer.size;
  }

  #newStorage(elements: number): GpuStorage {
    this.assertUsable();
    if (elements > this.maxElements) {
      const mib = (n: number) => `${(n * 4 / 2 ** 20).toFixed(0)} MiB`;
      throw new RangeError(
        `a tensor of ${elements} float32 values (${mib(elements)}) exceeds this adapter's ` +
          `storage buffer limit of ${this.maxElements} values (${mib(this.maxElements)})`,
      );
    }
    const buffer = this.#acquire(Math.max(elements, 1) * 4, "storage");
    this.#mem.liveBuffers++;
    this.#mem.liveBytes += buffer.size;
    this.#mem.peakBytes = Math.max(this.#mem.peakBytes, this.#mem.liveBytes);
    return { backend: this, size: elements, refs: 0, buffer, generation: this.#generation };
  }

  /** A small storage buffer holding kernel parameters, released after recording. */
  #metaBuffer(meta: Uint32Array): GPUBuffer {
    const buffer = this.#acquire(meta.byteLength, "storage");
    this.#device.queue.writeBuffer(buffer, 0, meta as Uint32Array<ArrayBuffer>);
    return buffer;
  }

  // ---- recording -------------------------------------------------------

  #pipeline(key: string, source: () => string): GPUComputePipeline {
    let pipeline = this.#pipelines.get(key);
    if (!pipeline) {
      const module = this.#device.createShaderModule({
        code: source(),
        label: key,
      });
      pipeline = this.#device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label: key,
      });
      this.#pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  #computePass(): GPUComputePassEncoder {
    this.#encoder ??= this.#device.createCommandEncoder();
    this.#pass ??= this.#encoder.beginComputePass();
    return this.#pass;
  }

  #dispatch(
    pipeline: GPUComputePipeline,
    meta: Uint32Array,
    buffers: GPUBuffer[],
    groups: [number, number, number],
  ): void {
    const metaBuffer = this.#metaBuffer(meta);
    const bindGroup = this.#device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [metaBuffer, ...buffers].map((buffer, binding) => ({
        binding,
        resource: { buffer },
      })),
    });
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...groups);
    this.#release(metaBuffer, "storage");
    if (++this.#recorded >= FLUSH_EVERY) this.#submit();
  }

  #submit(): void {
    if (!this.#encoder) return;
    this.#pass?.end();
    this.#device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#pass = null;
    this.#recorded = 0;
    const held = this.#heldBack;
    this.#heldBack = [];
    for (const { buffer, usage } of held) {
      this.#mem.pooledBytes -= buffer.size;
      this.#release(buffer, usage);
    }
  }

  // ---- Backend ---------------------------------------------------------

  upload(data: Float32Array): Storage {
    const storage = this.#newStorage(data.length);
    if (data.length > 0) {
      this.#device.queue.writeBuffer(
        storage.buffer,
        0,
        data as Float32Array<ArrayBuffer>,
      );
    }
    return storage;
  }

  read(storage: Storage): Promise<Float32Array> {
    const { buffer, size } = storage as GpuStorage;
    this.assertUsable(storage);
    if (size === 0) return Promise.resolve(new Float32Array(0));
    return this.#readBuffer(buffer, size * 4, (bytes) => new Float32Array(bytes));
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
    return result;
  }

  checkFinite(storage: Storage, size: number, tag: number): undefined {
    if (size === 0) return;
    if (!this.#finiteFlag) {
      this.#finiteFlag = this.#acquire(16, "storage");
      this.#device.queue.writeBuffer(this.#finiteFlag, 0, new Uint32Array([FINITE_FLAG_CLEAR]));
    }
    const pipeline = this.#pipeline("finite", finiteCheckKernel);
    const [x, y] = grid(Math.ceil(size / WORKGROUP));
    this.#dispatch(
      pipeline,
      new Uint32Array([size, tag]),
      [this.#finiteFlag, (storage as GpuStorage).buffer],
      [x, y, 1],
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

  map(op: UnaryOp | BinaryOp, inputs: readonly View[], shape: Shape): Storage {
    const n = sizeOf(shape);
    const out = this.#newStorage(n);
    if (n === 0) return out;
    const layouts: InputLayout[] = inputs.map((v) =>
      isContiguous(v) ? "dense" : v.strides.every((s) => s === 0) ? "scalar" : "strided"
    );
    const ndim = shape.length;
    const pipeline = this.#pipeline(
      elementwiseKey(op, ndim, layouts),
      () => elementwiseKernel(op, ndim, layouts),
    );
    const meta = elementwiseMeta(n, shape, inputs);
    const [x, y] = grid(Math.ceil(n / WORKGROUP));
    this.#dispatch(
      pipeline,
      meta,
      [out.buffer, ...inputs.map((v) => (v.storage as GpuStorage).buffer)],
      [x, y, 1],
    );
    return out;
  }

  reduce(
    op: ReduceOp,
    input: View,
    outSize: number,
    reduceSize: number,
  ): Storage {
    if (outSize === 0 || reduceSize === 0) {
      return this.upload(
        new Float32Array(outSize).fill(op === "sum" ? 0 : -Infinity),
      );
    }
    // Long reductions with few outputs are split into chunks for parallelism,
    // then the partial results are reduced again.
    const chunks = outSize < 64 && reduceSize > 8192
      ? Math.min(1024, Math.ceil(reduceSize / 4096))
      : 1;
    const chunkLength = Math.ceil(reduceSize / chunks);
    const strategy: ReduceStrategy = chunkLength < 128 ? "thread" : "workgroup";
    const dense = isContiguous(input);
    const ndim = input.shape.length;
    const pipeline = this.#pipeline(
      reduceKey(op, strategy, ndim, dense),
      () => reduceKernel(op, strategy, ndim, dense),
    );
    const out = this.#newStorage(outSize * chunks);
    const meta = reduceMeta(outSize, reduceSize, chunks, chunkLength, input);
    const groups = strategy === "thread"
      ? Math.ceil((outSize * chunks) / WORKGROUP)
      : outSize * chunks;
    const [x, y] = grid(groups);
    this.#dispatch(pipeline, meta, [
      out.buffer,
      (input.storage as GpuStorage).buffer,
    ], [x, y, 1]);
    if (chunks === 1) return out;
    const partial: View = {
      storage: out,
      shape: [outSize, chunks],
      strides: [chunks, 1],
      offset: 0,
    };
    const result = this.reduce(op, partial, outSize, chunks);
    this.free(out);
    return result;
  }

  matmul(
    a: View,
    b: View,
    batch: number,
    m: number,
    k: number,
    n: number,
  ): Storage {
    const out = this.#newStorage(batch * m * n);
    if (batch * m * n === 0) return out;
    if (batch > MAX_GROUPS) {
      throw new RangeError(
        `matmul: batch of ${batch} exceeds the WebGPU limit of ${MAX_GROUPS}`,
      );
    }
    const pipeline = this.#pipeline("matmul", matmulKernel);
    this.#dispatch(
      pipeline,
      matmulMeta(m, n, k, a, b),
      [
        out.buffer,
        (a.storage as GpuStorage).buffer,
        (b.storage as GpuStorage).buffer,
      ],
      [Math.ceil(n / MATMUL_TILE), Math.ceil(m / MATMUL_TILE), batch],
    );
    return out;
  }

  free(storage: Storage): void {
    const { buffer, generation } = storage as GpuStorage;
    this.#mem.liveBuffers--;
    this.#mem.liveBytes -= buffer.size;
    // A buffer of a lost device is gone with it: never pool it.
    if (generation === this.#generation) this.#release(buffer, "storage");
  }

  async sync(): Promise<void> {
    this.#submit();
    await this.#device.queue.onSubmittedWorkDone();
  }

  memory(): BackendMemory {
    return { ...this.#mem };
  }
}
