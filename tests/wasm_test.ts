/**
 * The wasm backend's own promises, beyond the suite every backend runs:
 * IEEE operations are bitwise the CPU reference's on the SIMD loop, its
 * scalar tail and strided views; `exp`, `sigmoid`, `tanh` and `log`, written in SIMD, stay
 * within a few ulp of the correctly rounded value over the float32 range;
 * and freed memory is reused.
 */

import assert from "node:assert/strict";
import { memoryStats, pad, type Tensor, tensor, tidy, where } from "../mod.ts";
import { ulps } from "./_helpers.ts";
import { apply } from "../src/core/interpreter.ts";
import { generator } from "../src/creation.ts";

/** Values with the special cases every elementwise path must keep. */
function specials(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 8;
  }
  const odd = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 3.4e38, -3.4e38, 0.5, -2.5];
  odd.forEach((v, i) => i * 3 < n && (out[i * 3] = v));
  return out;
}

/** The float32 bits of `t`, every NaN as one pattern (a NaN's sign and payload carry no meaning). */
async function bits(t: Tensor): Promise<number[]> {
  const data = new Float32Array(await t.data() as Float32Array);
  t.dispose();
  return Array.from(new Uint32Array(data.buffer), (b, i) => Number.isNaN(data[i]) ? 0x7fc00000 : b);
}

Deno.test("wasm: IEEE ops are bitwise the reference's on SIMD loops, scalar tails and views", async () => {
  const ops: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ["add", (a, b) => a.add(b)],
    ["sub", (a, b) => a.sub(b)],
    ["mul", (a, b) => a.mul(b)],
    ["div", (a, b) => a.div(b)],
    ["maximum", (a, b) => a.maximum(b)],
    ["minimum", (a, b) => a.minimum(b)],
    ["sqrt", (a) => a.abs().sqrt()],
    ["floor", (a) => a.floor()],
    ["round", (a) => a.round()],
    ["neg", (a) => a.neg()],
    ["lt as float", (a, b) => a.lt(b).astype("float32")],
    ["where", (a, b) => where(a.gt(b), a, b)],
    ["int32 round trip", (a, b) => a.astype("int32").add(b.astype("int32")).astype("float32")],
    ["transposed", (a, b) => a.transpose().mul(b.transpose())],
    ["row broadcast", (a, b) => a.add(b.get(0))],
    ["column broadcast", (a, b) => a.mul(b.get([null, null], [0, 1]))],
    ["flipped", (a, b) => a.flip(1).sub(b)],
    ["strided slice", (a, b) => a.get([null, null, 2]).mul(b.get([null, null, 2]))],
  ];
  for (const cols of [1, 3, 4, 7, 9, 64]) {
    const shape = [5, cols];
    const a = specials(5 * cols, 1 + cols);
    const b = specials(5 * cols, 99 + cols);
    for (const [name, f] of ops) {
      const run = (backend: "wasm" | "cpu") =>
        bits(f(tensor(a, { shape, backend }), tensor(b, { shape, backend })));
      assert.deepEqual(await run("wasm"), await run("cpu"), `${name} on [5, ${cols}]`);
    }
  }
});

/** Asserts that `y[i]` is within `bound` ulp of `ref(xs[i])` rounded to float32, naming the worst. */
function assertUlps(
  op: string,
  xs: Float32Array,
  y: ArrayLike<number>,
  ref: (v: number) => number,
  bound: number,
): void {
  let worst = 0;
  let at = 0;
  for (let i = 0; i < xs.length; i++) {
    const u = ulps(y[i], Math.fround(ref(xs[i])));
    if (u > worst) [worst, at] = [u, i];
  }
  assert.ok(worst <= bound, `${op}(${xs[at]}) = ${y[at]}: ${worst} ulp from ${ref(xs[at])}`);
}

Deno.test("wasm: exp and sigmoid are within 2 and 3 ulp of the rounded float64 result", async () => {
  const n = 1 << 16;
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i++) xs[i] = -110 + (220 * i) / n;
  xs.set([NaN, Infinity, -Infinity, 0, -0, 1e-30, 88.72, 88.73, -87.4, -103.97, -15.67]);
  const x = tensor(xs, { backend: "wasm" });
  const sigmoid = (v: number) => v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
  for (const [op, ref, bound] of [["exp", Math.exp, 2], ["sigmoid", sigmoid, 3]] as const) {
    assertUlps(op, xs, await x[op]().data(), ref, bound);
  }
  assert.deepEqual(Array.from((await x.exp().data()).slice(0, 5)), [NaN, Infinity, 0, 1, 1]);
  x.dispose();
});

Deno.test("wasm: log and tanh are within 2 and 4 ulp of the rounded float64 result", async () => {
  const n = 1 << 16;
  const sweep = (from: number, to: number, at: (v: number) => number = (v) => v) =>
    Float32Array.from({ length: n }, (_, i) => at(from + ((to - from) * i) / n));
  // Every binade of the positive floats (subnormals too), and densely around 1.
  const logArgs = [sweep(-149, 128, (e) => 2 ** e), sweep(0.5, 2)];
  // Both signs around 0 down to 2^-40, and ±12 (where tanh is ±1).
  const tanhArgs = [sweep(-12, 12), sweep(-40, 0, (e) => 2 ** e), sweep(-40, 0, (e) => -(2 ** e))];
  for (
    const [op, ref, sets, bound] of [
      ["log", Math.log, logArgs, 2],
      ["tanh", Math.tanh, tanhArgs, 4],
    ] as const
  ) {
    for (const xs of sets) {
      assertUlps(op, xs, await tensor(xs, { backend: "wasm" })[op]().data(), ref, bound);
    }
  }
  const special = tensor([NaN, Infinity, -Infinity, 0, -0, -1, 1], { backend: "wasm" });
  assert.deepEqual(Array.from(await special.log().data()), [
    NaN,
    Infinity,
    NaN,
    -Infinity,
    -Infinity,
    NaN,
    0,
  ]);
  const t = await special.tanh().data();
  assert.deepEqual(Array.from(t.slice(0, 4)), [NaN, 1, -1, 0]);
  assert.ok(Object.is(t[4], -0), "tanh(-0) is -0");
  special.dispose();
});

Deno.test("wasm: freed blocks are reused, so repeated work does not grow memory", async () => {
  const x = tensor(specials(1 << 16, 5), { backend: "wasm" });
  const total = () => memoryStats().liveBytes + memoryStats().pooledBytes;
  let warm = 0;
  for (let i = 0; i < 20; i++) {
    const a = x.mul(2);
    const e = a.exp();
    const s = e.sum();
    await s.data();
    [a, e, s].forEach((t) => t.dispose());
    if (i === 2) warm = total();
  }
  assert.equal(total(), warm);
  x.dispose();
});

Deno.test("wasm: pad and take of strided views equal the reference, in every dtype", async () => {
  type Backend = "wasm" | "cpu";
  const ids = (values: number[], backend: Backend) => tensor(values, { dtype: "int32", backend });
  const cases: [string, (x: Tensor, backend: Backend) => Tensor][] = [
    ["pad transposed", (x) => pad(x.transpose(), [[1, 2], [0, 3]], x.dtype === "bool" ? 1 : 7)],
    ["pad flipped", (x) => pad(x.flip(0), [[2, 0], [1, 1]])],
    ["pad strided slice", (x) => pad(x.get([1, null, 2], [null, null, 3]), [[1, 1], [2, 2]])],
    ["pad column broadcast", (x) => pad(x.get([null, null], [0, 1]).broadcastTo([6, 5]), [1, 1])],
    // Steps above 1 (a strided slice's transpose: element by element), rank 3
    // (the odometer carries over two axes) and rank 0.
    [
      "pad with steps",
      (x) => apply("pad", [x], { shape: [13, 16], starts: [1, 2], steps: [2, 2], fill: 1 }),
    ],
    ["pad rank 3", (x) => pad(x.reshape([3, 2, 7]), [[1, 0], [2, 1], [0, 2]])],
    ["pad rank 3 with steps", (x) =>
      apply("pad", [x.reshape([2, 3, 7])], {
        shape: [3, 7, 9],
        starts: [1, 0, 1],
        steps: [1, 3, 1],
        fill: 0,
      })],
    [
      "pad rank 0",
      (x) => apply("pad", [x.get(2, 3)], { shape: [], starts: [], steps: [], fill: 0 }),
    ],
    ["take rows of a transposed copy", (x, b) => x.transpose().take(ids([3, -1, 0, 40, -9], b), 0)],
    ["take scalars", (x, b) => x.take(ids([0, 5, -2, 100, -100, 17], b))],
  ];
  for (const dtype of ["float32", "int32", "float16", "int8", "bool"] as const) {
    const values = Array.from(
      { length: 6 * 7 },
      (_, i) => dtype === "bool" ? +(i % 3 === 0) : i - 9,
    );
    for (const [name, f] of cases) {
      const run = async (backend: Backend) => {
        const x = tensor(values, { shape: [6, 7], dtype, backend });
        // Measured synchronously, so nothing else is freed in between: the
        // result's bytes alone (a leaked dense copy would add to them).
        const live = memoryStats().liveBytes;
        const y = tidy(() => f(x, backend));
        const grown = memoryStats().liveBytes - live;
        const out = { shape: y.shape, dtype: y.dtype, data: Array.from(await y.data()), grown };
        x.dispose();
        y.dispose();
        return out;
      };
      assert.deepEqual(await run("wasm"), await run("cpu"), `${name}, ${dtype}`);
    }
  }
});

Deno.test("wasm: pad is byte for byte the reference on 600 random shapes, views, steps and fills", async () => {
  const uniform = generator(12345);
  const int = (lo: number, hi: number) => lo + Math.floor(uniform() * (hi - lo + 1));
  const dtypes = ["float32", "int32", "float16", "int8", "bool"] as const;
  // Fills that round, overflow, wrap or are special in some dtype.
  const fills = [0, -0, 1, -1, 2.5, NaN, Infinity, -Infinity, 6e-5, 70000, 127, 128, -129, 2 ** 31];
  const views: ((x: Tensor) => Tensor)[] = [
    (x) => x,
    (x) => x.ndim >= 2 ? x.transpose() : x,
    (x) => x.ndim >= 1 ? x.flip(0) : x,
    (x) => x.ndim >= 1 && x.shape[0] > 1 ? x.get([1, null]) : x, // contiguous, with an offset
    (x) => x.ndim >= 1 ? x.get([null, null, 2]) : x,
  ];
  for (let trial = 0; trial < 600; trial++) {
    const dtype = dtypes[int(0, 4)];
    const rank = uniform() < 0.1 ? int(5, 7) : int(0, 4);
    const shape = Array.from(
      { length: rank },
      () => uniform() < 0.08 ? 0 : int(1, rank > 4 ? 2 : 5),
    );
    const view = views[int(0, views.length - 1)];
    const fill = fills[int(0, fills.length - 1)];
    const starts = shape.map(() => int(0, 3));
    const steps = shape.map(() => uniform() < 0.5 ? 1 : int(1, 3));
    const extra = shape.map(() => int(0, 3));
    const run = async (backend: "wasm" | "cpu") => {
      const n = shape.reduce((a, d) => a * d, 1);
      const values = Array.from(
        { length: n },
        (_, i) =>
          dtype === "bool"
            ? +(i % 3 !== 1)
            : ((i * 37) % 201) - 100 + (dtype.startsWith("float") ? 0.25 : 0),
      );
      const x = tensor(values, { shape, dtype, backend });
      const live = memoryStats().liveBytes;
      const y = tidy(() => {
        const v = view(x);
        const outShape = v.shape.map((d, k) =>
          starts[k] + (d === 0 ? 0 : (d - 1) * steps[k] + 1) + extra[k]
        );
        return apply("pad", [v], { shape: outShape, starts, steps, fill });
      });
      const grown = memoryStats().liveBytes - live;
      const data = await y.data() as unknown as ArrayBufferView;
      const bytes = Array.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      const out = { shape: y.shape, dtype: y.dtype, bytes, grown };
      x.dispose();
      y.dispose();
      return out;
    };
    assert.deepEqual(
      await run("wasm"),
      await run("cpu"),
      `trial ${trial}: ${dtype} ${JSON.stringify({ shape, starts, steps, extra, fill })}`,
    );
  }
});
