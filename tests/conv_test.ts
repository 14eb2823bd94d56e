/**
 * conv2d and pooling: values against a direct loop reference in float64,
 * gradient checks for input and weights on both backends, and errors.
 */

import assert from "node:assert/strict";
import {
  arange,
  avgPool2d,
  checkGrads,
  conv2d,
  debugNans,
  maxPool2d,
  randomNormal,
  type Tensor,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

type Opts = { stride?: number; padding?: number; dilation?: number; groups?: number };

/** Direct-loop NCHW convolution in float64. */
function convReference(
  x: ArrayLike<number>,
  [n, c, h, w]: number[],
  k: ArrayLike<number>,
  [o, cg, kh, kw]: number[],
  { stride = 1, padding = 0, dilation = 1, groups = 1 }: Opts,
): { data: number[]; shape: number[] } {
  const oh = Math.floor((h + 2 * padding - dilation * (kh - 1) - 1) / stride) + 1;
  const ow = Math.floor((w + 2 * padding - dilation * (kw - 1) - 1) / stride) + 1;
  const og = o / groups;
  const out: number[] = [];
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let y = 0; y < oh; y++) {
        for (let xx = 0; xx < ow; xx++) {
          let acc = 0;
          for (let ic = 0; ic < cg; ic++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const iy = y * stride + i * dilation - padding;
                const ix = xx * stride + j * dilation - padding;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                const cin = g * cg + ic;
                acc += x[((b * c + cin) * h + iy) * w + ix] * k[((oc * cg + ic) * kh + i) * kw + j];
              }
            }
          }
          out.push(acc);
        }
      }
    }
  }
  return { data: out, shape: [n, o, oh, ow] };
}

/** Direct-loop pooling in float64 (padding with -inf for max, 0 for average). */
function poolReference(
  x: ArrayLike<number>,
  [n, c, h, w]: number[],
  k: number,
  stride: number,
  padding: number,
  kind: "max" | "avg",
): number[] {
  const oh = Math.floor((h + 2 * padding - k) / stride) + 1;
  const ow = Math.floor((w + 2 * padding - k) / stride) + 1;
  const out: number[] = [];
  for (let p = 0; p < n * c; p++) {
    for (let y = 0; y < oh; y++) {
      for (let xx = 0; xx < ow; xx++) {
        let acc = kind === "max" ? -Infinity : 0;
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const iy = y * stride + i - padding;
            const ix = xx * stride + j - padding;
            const v = iy < 0 || iy >= h || ix < 0 || ix >= w
              ? (kind === "max" ? -Infinity : 0)
              : x[(p * h + iy) * w + ix];
            acc = kind === "max" ? Math.max(acc, v) : acc + v;
          }
        }
        out.push(kind === "max" ? acc : acc / (k * k));
      }
    }
  }
  return out;
}

const CONFIGS: { name: string; x: number[]; w: number[]; opts: Opts }[] = [
  { name: "3×3", x: [2, 3, 6, 5], w: [4, 3, 3, 3], opts: {} },
  {
    name: "stride 2, padding 1",
    x: [1, 2, 7, 6],
    w: [3, 2, 3, 3],
    opts: { stride: 2, padding: 1 },
  },
  { name: "dilation 2", x: [1, 2, 7, 7], w: [2, 2, 3, 3], opts: { dilation: 2 } },
  { name: "groups 2", x: [2, 4, 5, 5], w: [6, 2, 3, 3], opts: { groups: 2, padding: 1 } },
  { name: "1×1 kernel, 2×1 window", x: [1, 3, 4, 4], w: [2, 3, 2, 1], opts: { stride: 1 } },
];

for (const cfg of CONFIGS) {
  testBoth(`conv2d ${cfg.name}: values match a direct loop`, async () => {
    const x = randomNormal(cfg.x, { seed: 1 });
    const w = randomNormal(cfg.w, { seed: 2 });
    const y = conv2d(x, w, cfg.opts);
    const ref = convReference(await x.data(), cfg.x, await w.data(), cfg.w, cfg.opts);
    assert.deepEqual(y.shape, ref.shape);
    assertClose(await y.data(), ref.data, { atol: 1e-4, rtol: 1e-4, label: cfg.name });
    for (const t of [x, w, y]) t.dispose();
  });
}

for (const cfg of CONFIGS.slice(1, 4)) {
  testBoth(`gradient check: conv2d ${cfg.name} (input and weights)`, async () => {
    const small = { ...cfg, x: [1, cfg.x[1], Math.min(cfg.x[2], 5), Math.min(cfg.x[3], 5)] };
    const x = randomNormal(small.x, { seed: 3 });
    const w = randomNormal(small.w, { seed: 4 });
    await checkGrads((a: Tensor, b: Tensor) => conv2d(a, b, small.opts), [x, w], {
      maxElements: 24,
    });
    x.dispose();
    w.dispose();
  });
}

testBoth("pooling: values match a direct loop", async () => {
  const shape = [2, 2, 5, 6];
  const x = randomNormal(shape, { seed: 5 });
  const host = await x.data();
  for (const [k, stride, padding] of [[2, 2, 0], [3, 1, 1], [3, 2, 1]]) {
    const mp = maxPool2d(x, k, { stride, padding });
    const ap = avgPool2d(x, k, { stride, padding });
    assertClose(await mp.data(), poolReference(host, shape, k, stride, padding, "max"), {
      label: `max ${k}/${stride}/${padding}`,
    });
    assertClose(await ap.data(), poolReference(host, shape, k, stride, padding, "avg"), {
      atol: 1e-5,
      label: `avg ${k}/${stride}/${padding}`,
    });
    mp.dispose();
    ap.dispose();
  }
  x.dispose();
});

testBoth("gradient check: maxPool2d and avgPool2d", async () => {
  const x = randomNormal([1, 2, 4, 4], { seed: 6 });
  await checkGrads((t: Tensor) => maxPool2d(t, 2), [x]);
  await checkGrads((t: Tensor) => avgPool2d(t, 3, { stride: 1, padding: 1 }), [x]);
  x.dispose();
});

testBoth("conv2d and pooling errors name the op and the shapes", () => {
  const x = randomNormal([1, 4, 5, 5], { seed: 7 });
  assert.throws(
    () => conv2d(x, randomNormal([2, 3, 3, 3])),
    /conv2d: input \[1,4,5,5\] and weight \[2,3,3,3\]/,
  );
  assert.throws(() => conv2d(x.reshape([4, 25]), x), /conv2d: expected input \[n, c, h, w\]/);
  assert.throws(() => conv2d(x, randomNormal([2, 4, 7, 7])), /does not fit an input of 5/);
  assert.throws(
    () => conv2d(x, randomNormal([2, 4, 3, 3]), { stride: 0 }),
    /stride must be integers ≥ 1/,
  );
  assert.throws(() => maxPool2d(x, 6), /maxPool2d: a window of 6/);
  assert.throws(() => maxPool2d(x, 1, { padding: 1 }), /more than half the window/);
  assert.throws(() => conv2d(null as unknown as Tensor, x), /conv2d: expected tensors/);
});

testBoth("maxPool2d with padding passes debugNans (no -inf padding)", async () => {
  debugNans(true);
  try {
    const y = maxPool2d(arange(16).reshape([1, 1, 4, 4]), 2, { padding: 1 });
    assert.deepEqual(await y.array(), [[[[0, 2, 3], [8, 10, 11], [12, 14, 15]]]]);
    y.dispose();
  } finally {
    debugNans(false);
  }
});
