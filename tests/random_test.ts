/**
 * PRNG keys: the Threefry hash against the reference implementation's
 * known-answer vectors, key derivation and samples against values printed by
 * JAX (default `jax_threefry_partitionable` mode), determinism across
 * backends, and the errors.
 */

import assert from "node:assert/strict";
import { availableBackends, random } from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

Deno.test("threefry2x32 matches the Random123 known-answer vectors", () => {
  const hex = (w: number[]) => w.map((x) => x.toString(16).padStart(8, "0"));
  // Random123 kat_vectors, "threefry2x32 20" lines (also JAX's testThreefry2x32).
  assert.deepEqual(hex(random.threefry2x32(0, 0, 0, 0)), ["6b200159", "99ba4efe"]);
  assert.deepEqual(
    hex(random.threefry2x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)),
    ["1cb996fc", "bb002be7"],
  );
  assert.deepEqual(
    hex(random.threefry2x32(0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3)),
    ["c4923a9c", "483df7a0"],
  );
});

Deno.test("key, split and foldIn derive the keys JAX derives", () => {
  assert.deepEqual(random.key(0).data, [0, 0]);
  assert.deepEqual(random.key(42).data, [0, 42]);
  assert.deepEqual(random.key(2 ** 32 + 5).data, [1, 5]);
  // jax.random.split(jax.random.PRNGKey(seed)) for seeds 0, 1, 2:
  const expected = [
    [[1797259609, 2579123966], [928981903, 3453687069]],
    [[507451445, 1853169794], [1948878966, 4237131848]],
    [[1821159224, 3364244817], [637334850, 3278974502]],
  ];
  expected.forEach((keys, seed) => {
    assert.deepEqual(random.split(random.key(seed)).map((k) => [...k.data]), keys);
  });
  // In partitionable mode, foldIn(k, i) is split(k, n)[i].
  const k = random.key(7);
  const keys = random.split(k, 5);
  keys.forEach((ki, i) => assert.deepEqual(random.foldIn(k, i).data, ki.data));
  assert.equal(random.split(k, 0).length, 0);
  assert.equal(String(random.key(3)), "Key(0, 3)");
  assert.ok(Object.isFrozen(k) && Object.isFrozen(k.data));
});

testBoth("normal and uniform draw JAX's values from the same key", async (backend) => {
  const [k1, k2] = random.split(random.key(0));
  // jax.random.normal(k1, (4, 4)) and jax.random.uniform(k2, (4, 4)).
  const normal = random.normal(k1, [4, 4]);
  assert.equal(normal.backend, backend);
  assertClose(await normal.array(), [
    [1.0040143, -0.9063372, -0.7481722, -1.1713669],
    [-0.8712328, 0.58883816, 0.72392994, -1.0255982],
    [1.661628, -1.8910251, -1.2889339, 0.13360691],
    [-1.1530392, 0.23929629, 1.7448071, 0.5050189],
  ], { atol: 1e-6, label: "normal" });
  const uniform = random.uniform(k2, [4, 4]);
  assertClose(await uniform.array(), [
    [0.00729382, 0.02089119, 0.5814265, 0.36183798],
    [0.22303772, 0.11928833, 0.12543893, 0.61683],
    [0.0950073, 0.9834225, 0.4248221, 0.8324801],
    [0.0966121, 0.22702086, 0.3545748, 0.67104137],
  ], { atol: 1e-7, label: "uniform" });
  normal.dispose();
  uniform.dispose();
});

Deno.test("the same key gives the same values on both backends; other keys differ", async () => {
  const k = random.key(11);
  const onCpu = random.normal(k, [3, 5], { backend: "cpu", mean: 1, std: 2 });
  const again = random.normal(k, [3, 5], { backend: "cpu", mean: 1, std: 2 });
  const other = random.normal(random.foldIn(k, 1), [3, 5], { backend: "cpu" });
  const a = await onCpu.data();
  assert.deepEqual(await again.data(), a);
  assert.notDeepEqual(await other.data(), a);
  if (availableBackends().includes("webgpu")) {
    const onGpu = random.normal(k, [3, 5], { backend: "webgpu", mean: 1, std: 2 });
    assert.deepEqual(await onGpu.data(), a);
    onGpu.dispose();
  }
  for (const t of [onCpu, again, other]) t.dispose();
});

Deno.test("samples have the right distribution", async () => {
  const n = 20000;
  const stats = (values: ArrayLike<number>) => {
    const xs = Array.from(values);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    return { mean, std, min: Math.min(...xs), max: Math.max(...xs) };
  };
  const z = random.normal(random.key(1), [n], { backend: "cpu", mean: 3, std: 0.5 });
  const s = stats(await z.data());
  assert.ok(Math.abs(s.mean - 3) < 0.02 && Math.abs(s.std - 0.5) < 0.02, JSON.stringify(s));
  const u = random.uniform(random.key(2), [n], { backend: "cpu", low: -2, high: 6 });
  const su = stats(await u.data());
  assert.ok(su.min >= -2 && su.max < 6, JSON.stringify(su));
  assert.ok(Math.abs(su.mean - 2) < 0.1, JSON.stringify(su));
  const b = random.bernoulli(random.key(3), 0.3, [n], { backend: "cpu" });
  const bits = Array.from(await b.data() as ArrayLike<number>);
  assert.ok(bits.every((v) => v === 0 || v === 1));
  const rate = bits.reduce((x: number, y) => x + y, 0) / n;
  assert.ok(Math.abs(rate - 0.3) < 0.02, `bernoulli rate ${rate}`);
  for (const t of [z, u, b]) t.dispose();
  // erfinv at a few points (values from mpmath).
  assertClose(
    [0.5, 0.9, 0.999, -0.3].map(random.erfinv),
    [0.4769362762044699, 1.1630871536766743, 2.326753765513525, -0.27246271472675443],
    { rtol: 1e-6, label: "erfinv" },
  );
});

Deno.test("permutation and bits are deterministic host arrays", () => {
  const p = random.permutation(random.key(5), 50);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(random.permutation(random.key(5), 50), p);
  assert.notDeepEqual(random.permutation(random.key(6), 50), p);
  assert.equal(random.permutation(random.key(0), 0).length, 0);
  const words = random.bits(random.key(0), 3);
  assert.ok(words instanceof Uint32Array && words.length === 3);
  // Element 0's word is the XOR of the two words of the hash of counter 0.
  const [a, b] = random.threefry2x32(0, 0, 0, 0);
  assert.equal(words[0], (a ^ b) >>> 0);
});

Deno.test("random functions reject bad keys, seeds and arguments", () => {
  assert.throws(() => random.key(-1), RangeError);
  assert.throws(() => random.key(1.5), /non-negative safe integer/);
  assert.throws(() => random.split(random.key(0), -1), RangeError);
  assert.throws(() => random.foldIn(random.key(0), 2 ** 32), RangeError);
  assert.throws(
    () => random.normal([0, 0] as unknown as random.Key, [2]),
    /random.normal: expected a Key \(from random.key\(seed\)\), got an array/,
  );
  assert.throws(() => random.uniform(random.key(0), [2], { low: 1, high: 0 }), RangeError);
  assert.throws(() => random.normal(random.key(0), [2], { std: -1 }), RangeError);
  assert.throws(() => random.bernoulli(random.key(0), 1.5, [2]), RangeError);
  assert.throws(() => random.normal(random.key(0), [2, -1]), TypeError);
  assert.throws(() => new random.Key(0, 2 ** 32), RangeError);
});
