/**
 * Property-based tests (fast-check, fixed seed so CI is deterministic):
 * broadcasting, reductions over random axes, and basic indexing agree with
 * plain TypeScript references on random shapes, on both backends, and the
 * gradient of a broadcast op counts how often each input element was used.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { grad, type Tensor, tensor } from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

const SEED = 20261122;
const RUNS = 20;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const strides = (shape: number[]) => shape.map((_, i) => size(shape.slice(i + 1)));
const values = (shape: number[], salt: number) =>
  Float32Array.from({ length: size(shape) }, (_, i) => ((i * 37 + salt * 11) % 23) / 4 - 2.5);

/** A shape of rank 0–3 with axes 1–4, and a second shape that broadcasts with it. */
const broadcastPair = fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 }).chain((a) =>
  fc.tuple(
    fc.constant(a),
    fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length }).chain((ones) =>
      fc.integer({ min: 0, max: a.length }).map((drop) =>
        a.map((d, i) => (ones[i] ? 1 : d)).slice(drop)
      )
    ),
    fc.boolean(),
  ).map(([x, y, swap]) => (swap ? [y, x] : [x, y]) as [number[], number[]])
);

/** Reference broadcasting: element of `shape` at the output multi-index. */
function at(data: Float32Array, shape: number[], index: number[]): number {
  const lead = index.length - shape.length;
  const st = strides(shape);
  return data[shape.reduce((o, d, i) => o + (d === 1 ? 0 : index[lead + i]) * st[i], 0)];
}

function unravel(i: number, shape: number[]): number[] {
  return strides(shape).map((s, k) => Math.floor(i / s) % shape[k]);
}

testBoth("property: broadcasting add matches a TypeScript reference", async () => {
  await fc.assert(
    fc.asyncProperty(broadcastPair, async ([sa, sb]) => {
      const [da, db] = [values(sa, 1), values(sb, 2)];
      const out = sa.length >= sb.length
        ? sa.map((d, i) => Math.max(d, sb[i - (sa.length - sb.length)] ?? 1))
        : sb.map((d, i) => Math.max(d, sa[i - (sb.length - sa.length)] ?? 1));
      const a = tensor(da, { shape: sa });
      const b = tensor(db, { shape: sb });
      const y = a.add(b);
      assert.deepEqual(y.shape, out);
      const expected = Array.from(
        { length: size(out) },
        (_, i) => at(da, sa, unravel(i, out)) + at(db, sb, unravel(i, out)),
      );
      assertClose(await y.data(), expected);
      // d/da sum(a + b): how many output elements each element of a feeds.
      const g = grad((t: Tensor) => t.add(b).sum())(a);
      assertClose(await g.data(), new Array(size(sa)).fill(size(out) / size(sa)));
      for (const t of [a, b, y, g]) t.dispose();
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

testBoth(
  "property: sum, prod, max, min and an int32 sum over random axes match a reference",
  async () => {
    const arb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }).chain((
      shape,
    ) =>
      fc.tuple(
        fc.constant(shape),
        fc.subarray([...shape.keys()], { minLength: 1 }),
        fc.boolean(),
      )
    );
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, axes, keepdims]) => {
        const data = values(shape, 3);
        const ints = data.map((v) => Math.round(v * 1e8)); // large: int32 sums wrap
        const near1 = data.map((v) => 1 + v / 10); // products of up to 256 stay finite
        const x = tensor(data, { shape });
        const xp = tensor(near1, { shape });
        const xi = tensor(ints, { shape, dtype: "int32" });
        const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
        const n = size(outShape);
        const [sums, prods, maxes, mins] = [0, 1, -Infinity, Infinity].map((v) =>
          new Array(n).fill(v)
        );
        const intSums = new Int32Array(n);
        for (let i = 0; i < data.length; i++) {
          const idx = unravel(i, shape).map((v, k) => (axes.includes(k) ? 0 : v));
          const o = idx.reduce((acc, v, k) => acc + v * strides(outShape)[k], 0);
          sums[o] += data[i];
          prods[o] *= near1[i];
          maxes[o] = Math.max(maxes[o], data[i]);
          mins[o] = Math.min(mins[o], data[i]);
          intSums[o] += ints[i]; // Int32Array stores wrap, as int32 adds do
        }
        const results = [
          x.sum(axes, { keepdims }),
          xp.prod(axes, { keepdims }),
          x.max(axes, { keepdims }),
          x.min(axes, { keepdims }),
          xi.sum(axes, { keepdims }),
        ];
        const expectShape = keepdims ? outShape : shape.filter((_, i) => !axes.includes(i));
        for (const r of results) assert.deepEqual(r.shape, expectShape);
        assertClose(await results[0].data(), sums, { atol: 1e-4 });
        assertClose(await results[1].data(), prods, { atol: 1e-4, rtol: 1e-4 });
        assertClose(await results[2].data(), maxes);
        assertClose(await results[3].data(), mins);
        assert.equal(results[4].dtype, "int32");
        assert.deepEqual(await results[4].data(), intSums);
        for (const t of [x, xp, xi, ...results]) t.dispose();
      }),
      { seed: SEED, numRuns: RUNS },
    );
  },
);

testBoth(
  "property: get with random ranges and steps (negative too) matches Python slicing",
  async () => {
    const arb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }).chain((
      shape,
    ) =>
      fc.tuple(
        fc.constant(shape),
        fc.tuple(...shape.map((d) =>
          fc.tuple(
            fc.integer({ min: -d - 1, max: d + 1 }),
            fc.integer({ min: -d - 1, max: d + 1 }),
            fc.integer({ min: -3, max: 3 }).filter((step) => step !== 0),
          )
        )),
      )
    );
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, ranges]) => {
        const data = values(shape, 4);
        const x = tensor(data, { shape });
        // Python's slice semantics, negative steps included.
        const picks = ranges.map(([start, stop, step], k) => {
          const d = shape[k];
          const [lo, hi] = step > 0 ? [0, d] : [-1, d - 1];
          const norm = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
          const out: number[] = [];
          for (let i = norm(start); step > 0 ? i < norm(stop) : i > norm(stop); i += step) {
            out.push(i);
          }
          return out;
        });
        const y = x.get(...ranges.map((r) => [...r]));
        assert.deepEqual(y.shape, picks.map((p) => p.length));
        const expected: number[] = [];
        const walk = (k: number, offset: number) => {
          if (k === shape.length) return void expected.push(data[offset]);
          for (const i of picks[k]) walk(k + 1, offset + i * strides(shape)[k]);
        };
        walk(0, 0);
        assertClose(await y.data(), expected);
        x.dispose();
        y.dispose();
      }),
      { seed: SEED, numRuns: RUNS },
    );
  },
);
