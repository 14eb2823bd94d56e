/**
 * Hand-tuned reference kernels for `peers.ts`: fixed-shape WGSL written for
 * this one job (sizes baked in as constants, no bounds checks, no argument
 * buffer, bind groups made once), dispatched on a device of their own with
 * raw WebGPU calls. They show what the adapter reaches without any library
 * around the kernel; littlegrad's generic kernels are measured against them.
 * @module
 */

/** One measured figure: a median in milliseconds, or why there is none. */
export interface HandCell {
  ms: number | null;
  status?: string;
  detail?: string;
}

/** The hand-tuned reference implementations. */
export interface HandTuned {
  matmul(
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    queue: number,
    rounds: number,
    samples: number[],
    ref: (i: number) => number,
  ): Promise<HandCell>;
  add(x: Float32Array, y: Float32Array, queue: number, rounds: number): Promise<HandCell>;
  sum(x: Float32Array, exact: number, queue: number, rounds: number): Promise<HandCell>;
  chain(
    x: Float32Array,
    y: Float32Array,
    expected: Float32Array,
    steps: number,
    rounds: number,
  ): Promise<HandCell>;
}

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** Matmul register block: each invocation computes ROWS×COLS outputs; WIDTH invocations per workgroup. */
const ROWS = 16;
const COLS = 16;
const WIDTH = 8;

/**
 * `C = A·B` for row-major `A [m,k]`, `B [k,n]` with `m % ROWS == 0`,
 * `n % (COLS·WIDTH) == 0`, `k % 4 == 0`. All loads are `vec4`: a row of A
 * along k (4 k-steps at once), and 4 columns of B per k-step.
 */
function matmulSource(k: number, n: number): string {
  const rows = [...Array(ROWS).keys()];
  const cols = [...Array(COLS / 4).keys()];
  const steps = [0, 1, 2, 3];
  const lane = ["x", "y", "z", "w"];
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> C: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
const K4 = ${k / 4}u;
const N4 = ${n / 4}u;
@compute @workgroup_size(${WIDTH})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.y * ${ROWS}u;
  let col = (wid.x * ${WIDTH}u + lid.x) * ${COLS / 4}u;
${rows.map((i) => cols.map((j) => `  var c${i}_${j} = vec4<f32>();`).join(" ")).join("\n")}
  for (var k4 = 0u; k4 < K4; k4++) {
${
    steps.map((s) =>
      cols.map((j) => `    let b${s}_${j} = B[(k4 * 4u + ${s}u) * N4 + col + ${j}u];`).join("")
    )
      .join("\n")
  }
${
    rows.map((i) =>
      `    { let a = A[(row + ${i}u) * K4 + k4];\n` +
      steps.map((s) =>
        cols.map((j) => `      c${i}_${j} = fma(vec4<f32>(a.${lane[s]}), b${s}_${j}, c${i}_${j});`)
          .join("\n")
      ).join("\n") + "\n    }"
    ).join("\n")
  }
  }
${
    rows.map((i) =>
      cols.map((j) => `  C[(row + ${i}u) * N4 + col + ${j}u] = c${i}_${j};`).join("\n")
    ).join("\n")
  }
}`;
}

/** `z = x + y` over vec4s, one vec4 per invocation, on a 2-D grid of 256-wide workgroups. */
function addSource(n4: number, perRow: number): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> z: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> y: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * ${perRow}u;
  if (i < ${n4}u) { z[i] = x[i] + y[i]; }
}`;
}

/** Sum, stage 1: each of `groups` workgroups of 64 reduces a contiguous slice of vec4s. */
function sumStage1Source(n4: number, groups: number): string {
  const per = Math.ceil(n4 / (groups * 64));
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> partial: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
var<workgroup> tree: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let start = (wid.x * 64u + lid) * ${per}u;
  let end = min(start + ${per}u, ${n4}u);
  var acc = vec4<f32>();
  for (var i = start; i < end; i++) { acc += x[i]; }
  tree[lid] = acc.x + acc.y + acc.z + acc.w;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { tree[lid] += tree[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[wid.x] = tree[0]; }
}`;
}

/** Sum, stage 2: one workgroup of 64 adds up the `groups` partial sums. */
function sumStage2Source(groups: number): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> total: array<f32>;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
var<workgroup> tree: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < ${groups}u; i += 64u) { acc += partial[i]; }
  tree[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { tree[lid] += tree[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { total[0] = tree[0]; }
}`;
}

/** `out = x + y` on 16 elements (one invocation each), for the dependent chain. */
const CHAIN_SOURCE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@compute @workgroup_size(16)
fn main(@builtin(local_invocation_index) i: u32) { out[i] = x[i] + y[i]; }`;

/** Requests a device of its own; resolves to `null` where WebGPU has no adapter. */
export async function handTuned(): Promise<HandTuned | null> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return null;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });

  const upload = (data: Float32Array) => {
    const buffer = device.createBuffer({ size: data.byteLength, usage: STORAGE });
    device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    return buffer;
  };
  const empty = (bytes: number) => device.createBuffer({ size: bytes, usage: STORAGE });
  const pipeline = (code: string) =>
    device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
  const bind = (p: GPUComputePipeline, buffers: GPUBuffer[]) =>
    device.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  const read = async (buffer: GPUBuffer, count: number) => {
    const staging = device.createBuffer({
      size: count * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, count * 4);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return out;
  };
  /** Records `repeat` times the given dispatches in one pass, submits, waits; ms per repeat. */
  const run = async (
    steps: [GPUComputePipeline, GPUBindGroup, [number, number]][],
    repeat: number,
  ) => {
    const t0 = performance.now();
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let r = 0; r < repeat; r++) {
      for (const [p, bg, [x, y]] of steps) {
        pass.setPipeline(p);
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(x, y);
      }
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / repeat;
  };
  const timed = async (
    steps: [GPUComputePipeline, GPUBindGroup, [number, number]][],
    repeat: number,
    rounds: number,
  ) => {
    await run(steps, repeat); // warm-up
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) times.push(await run(steps, repeat));
    return median(times);
  };

  return {
    async matmul(a, b, m, k, n, queue, rounds, samples, ref) {
      if (m % ROWS || n % (COLS * WIDTH) || k % 4) {
        return { ms: null, status: "n/a", detail: "shape does not fit the fixed-tile kernel" };
      }
      const p = pipeline(matmulSource(k, n));
      const [bufA, bufB, bufC] = [upload(a), upload(b), empty(m * n * 4)];
      const step: [GPUComputePipeline, GPUBindGroup, [number, number]] = [
        p,
        bind(p, [bufC, bufA, bufB]),
        [n / (COLS * WIDTH), m / ROWS],
      ];
      await run([step], 1);
      const out = await read(bufC, m * n);
      const bad = samples.find((i) =>
        Math.abs(out[i] - ref(i)) > 1e-3 * Math.sqrt(k) + 1e-4 * Math.abs(ref(i))
      );
      const ms = await timed([step], queue, rounds);
      for (const buffer of [bufA, bufB, bufC]) buffer.destroy();
      return bad === undefined
        ? { ms }
        : { ms: null, status: "wrong", detail: `C[${bad}] = ${out[bad]}` };
    },
    async add(x, y, queue, rounds) {
      const n4 = x.length / 4;
      const groups = Math.ceil(n4 / 256);
      const gy = Math.ceil(groups / 65535);
      const gx = Math.ceil(groups / gy);
      const p = pipeline(addSource(n4, gx * 256));
      const [bx, by, bz] = [upload(x), upload(y), empty(x.byteLength)];
      const step: [GPUComputePipeline, GPUBindGroup, [number, number]] = [
        p,
        bind(p, [bz, bx, by]),
        [gx, gy],
      ];
      await run([step], 1);
      const out = await read(bz, x.length);
      const bad = out.findIndex((v, i) => v !== Math.fround(x[i] + y[i]));
      const ms = await timed([step], queue, rounds);
      for (const buffer of [bx, by, bz]) buffer.destroy();
      return bad < 0 ? { ms } : { ms: null, status: "wrong", detail: `z[${bad}] = ${out[bad]}` };
    },
    async sum(x, exact, queue, rounds) {
      const n4 = x.length / 4;
      const groups = 256;
      const p1 = pipeline(sumStage1Source(n4, groups));
      const p2 = pipeline(sumStage2Source(groups));
      const [bx, partial, total] = [upload(x), empty(groups * 4), empty(16)];
      const steps: [GPUComputePipeline, GPUBindGroup, [number, number]][] = [
        [p1, bind(p1, [partial, bx]), [groups, 1]],
        [p2, bind(p2, [total, partial]), [1, 1]],
      ];
      await run(steps, 1);
      const [got] = await read(total, 1);
      const ms = await timed(steps, queue, rounds);
      for (const buffer of [bx, partial, total]) buffer.destroy();
      return Math.abs(got - exact) <= 1e-2 + 1e-5 * Math.abs(exact)
        ? { ms }
        : { ms: null, status: "wrong", detail: `${got}, expected ${exact}` };
    },
    async chain(x, y, expected, steps, rounds) {
      const p = pipeline(CHAIN_SOURCE);
      const [bx, by, ping, pong] = [upload(x), upload(y), empty(64), empty(64)];
      // x → ping, then ping → pong → ping … : bind groups made once.
      const first = bind(p, [ping, bx, by]);
      const forth = bind(p, [pong, ping, by]);
      const back = bind(p, [ping, pong, by]);
      const once = async () => {
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(p);
        for (let s = 0; s < steps; s++) {
          pass.setBindGroup(0, s === 0 ? first : s % 2 ? forth : back);
          pass.dispatchWorkgroups(1);
        }
        pass.end();
        device.queue.submit([encoder.finish()]);
        return await read(steps % 2 ? ping : pong, x.length);
      };
      const out = await once();
      const bad = out.findIndex((v, i) =>
        Math.abs(v - expected[i]) > 1e-4 + 1e-5 * Math.abs(expected[i])
      );
      const times: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        await once();
        times.push(performance.now() - t0);
      }
      for (const buffer of [bx, by, ping, pong]) buffer.destroy();
      return bad < 0
        ? { ms: median(times) }
        : { ms: null, status: "wrong", detail: `x[${bad}] = ${out[bad]}` };
    },
  };
}
