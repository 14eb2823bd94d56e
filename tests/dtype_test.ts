/**
 * Element types: JAX promotion (weak scalars included), `astype`'s
 * conversion table (NaN, infinities, saturation, int8 wrap, bool, float16
 * rounding and overflow) with bitwise agreement between backends, integer
 * wrap-around, Python-rule floorDiv/mod, comparisons and logical ops,
 * integer reductions, argmax/argmin, cumsum, host arrays, formatting,
 * dtype inference, gradient errors for integer inputs and outputs, and
 * gradient checks of prod, minimum, mod, casts and float16.
 */

import assert from "node:assert/strict";
import {
  arange,
  availableBackends,
  checkGrads,
  type DType,
  DTYPES,
  full,
  grad,
  ones,
  printTrace,
  promoteTypes,
  randomNormal,
  randomUniform,
  type Tensor,
  tensor,
  where,
  zeros,
} from "../mod.ts";
import { assertClose, testBoth } from "./_helpers.ts";

const INT_MAX = 2 ** 31 - 1;
const INT_MIN = -(2 ** 31);

/** The values of `t` as plain numbers (`-0` and NaN preserved for `deepEqual`). */
const values = async (t: Tensor) => Array.from(await t.data());
/** The bytes of a host array, for bitwise comparisons. */
const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
/** Rounds to the nearest float16 (ties to even). */
const f16 = (x: number) => new Float16Array([x])[0];
const i32 = (xs: number[]) => tensor(xs, { dtype: "int32" });
const i8 = (xs: number[]) => tensor(xs, { dtype: "int8" });

// ---- promotion -------------------------------------------------------------

/** JAX's table restricted to littlegrad's dtypes, row × column. */
const PROMOTION: Record<DType, Record<DType, DType>> = {
  bool: { bool: "bool", int8: "int8", int32: "int32", float16: "float16", float32: "float32" },
  int8: { bool: "int8", int8: "int8", int32: "int32", float16: "float16", float32: "float32" },
  int32: { bool: "int32", int8: "int32", int32: "int32", float16: "float16", float32: "float32" },
  float16: {
    bool: "float16",
    int8: "float16",
    int32: "float16",
    float16: "float16",
    float32: "float32",
  },
  float32: {
    bool: "float32",
    int8: "float32",
    int32: "float32",
    float16: "float32",
    float32: "float32",
  },
};

Deno.test("promoteTypes follows JAX's table for every pair of dtypes", () => {
  assert.deepEqual([...DTYPES].sort(), ["bool", "float16", "float32", "int32", "int8"]);
  for (const a of DTYPES) {
    for (const b of DTYPES) {
      assert.equal(promoteTypes(a, b), PROMOTION[a][b], `${a} + ${b}`);
      assert.equal(promoteTypes(a, b), promoteTypes(b, a), `${a} + ${b} symmetric`);
    }
  }
});

testBoth("binary ops compute in the promoted dtype for every pair", async () => {
  const make = (d: DType) => tensor([1, 0], { dtype: d });
  for (const a of DTYPES) {
    for (const b of DTYPES) {
      const y = make(a).add(make(b));
      assert.equal(y.dtype, PROMOTION[a][b], `${a} + ${b}`);
      // bool + bool is a logical or; everything else adds.
      assert.deepEqual(await values(y), a === "bool" && b === "bool" ? [1, 0] : [2, 0]);
      const m = make(a).mul(make(b));
      assert.equal(m.dtype, PROMOTION[a][b], `${a} * ${b}`);
    }
  }
});

testBoth("plain numbers are weak: they take the tensor's dtype", async () => {
  const cases: [DType, number, DType, number[]][] = [
    ["bool", 1, "int32", [2, 1]],
    ["bool", 1.5, "float32", [2.5, 1.5]],
    ["int8", 1, "int8", [-128, 1]], // 127 + 1 wraps
    ["int8", -128, "int8", [-1, -128]],
    ["int8", 1.5, "float32", [128.5, 1.5]],
    ["int32", 1, "int32", [INT_MIN, 1]],
    ["int32", 0.5, "float32", [INT_MAX + 0.5, 0.5]],
    ["float16", 2.5, "float16", [f16(129.5), 2.5]],
    ["float16", 1e6, "float16", [Infinity, Infinity]],
    ["float32", 1, "float32", [128, 1]],
  ];
  for (const [dtype, k, want, expected] of cases) {
    const x = dtype === "bool"
      ? tensor([true, false])
      : tensor([dtype === "int32" ? INT_MAX : 127, 0], { dtype });
    const y = x.add(k);
    assert.equal(y.dtype, want, `${dtype} + ${k}`);
    if (want === "float32" && dtype === "int32") {
      assertClose(await y.data(), expected, { label: `${dtype} + ${k}` });
    } else {
      assert.deepEqual(await values(y), expected, `${dtype} + ${k}`);
    }
  }
  assert.equal(tensor([1], { dtype: "float16" }).mul(2.5).dtype, "float16");
  assert.equal(tensor([true]).mul(2).dtype, "int32");
  // A number on the left (where's branches) is weak too.
  assert.equal(where(tensor([true]), 1, i8([3])).dtype, "int8");
  assert.equal(where(tensor([true]), 1, 0).dtype, "int32");
  assert.equal(where(tensor([true]), 1.5, 0).dtype, "float32");
});

testBoth("a number that does not fit the integer dtype is a RangeError", () => {
  assert.throws(() => i8([1]).add(300), (e: Error) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /add: the number 300 does not fit the tensor's dtype int8/);
    return true;
  });
  assert.throws(() => i8([1]).mul(-129), RangeError);
  assert.throws(() => i32([1]).add(2 ** 31), /does not fit the tensor's dtype int32/);
  assert.throws(() => tensor([true]).add(2 ** 31), /int32/);
  assert.throws(() => where(tensor([true]), i8([1]), 300), RangeError);
  // Non-integers go to float32 rather than failing.
  assert.equal(i8([1]).add(300.5).dtype, "float32");
});

// ---- astype ----------------------------------------------------------------

const FLOATS = [
  NaN,
  Infinity,
  -Infinity,
  0,
  -0,
  1.5,
  -1.5,
  2.5,
  0.7,
  -0.7,
  3e9,
  -3e9,
  300,
  -129.7,
  65504,
  65519,
  65520,
  1 / 3,
  1e-8,
  127.9,
  -128.9,
  2049,
  2051,
];

/** Hand-computed conversions of FLOATS (as float32) to each dtype. */
const FROM_FLOAT32: Record<Exclude<DType, "float32">, number[]> = {
  int32: [
    0,
    INT_MAX,
    INT_MIN,
    0,
    0,
    1,
    -1,
    2,
    0,
    0,
    INT_MAX,
    INT_MIN,
    300,
    -129,
    65504,
    65519,
    65520,
    0,
    0,
    127,
    -128,
    2049,
    2051,
  ],
  // Saturate to int32 first, then keep the low 8 bits.
  int8: [0, -1, 0, 0, 0, 1, -1, 2, 0, 0, -1, 0, 44, 127, -32, -17, -16, 0, 0, 127, -128, 1, 3],
  bool: [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  float16: [
    NaN,
    Infinity,
    -Infinity,
    0,
    -0,
    1.5,
    -1.5,
    2.5,
    0.7001953125,
    -0.7001953125,
    Infinity,
    -Infinity,
    300,
    -129.75,
    65504,
    65504,
    Infinity, // 65520 is the tie with 2^16: rounds to even, overflows
    0.333251953125,
    0, // below half the smallest subnormal
    127.875,
    -128.875,
    2048, // tie: to even
    2052, // tie: to even
  ],
};

testBoth("astype from float32 follows the documented table", async () => {
  const x = tensor(FLOATS);
  for (const [dtype, expected] of Object.entries(FROM_FLOAT32)) {
    const y = x.astype(dtype as DType);
    assert.equal(y.dtype, dtype);
    assert.deepEqual(y.shape, [FLOATS.length]);
    assert.deepEqual(await values(y), expected, `float32 -> ${dtype}`);
  }
  // The same dtype is a view with the same values.
  assert.deepEqual(await values(x.astype("float32")), Array.from(new Float32Array(FLOATS)));
});

testBoth("astype from integer, bool and float16 tensors", async () => {
  const ints = i32([INT_MAX, INT_MIN, 16777217, -200, 200, 70000, 0, -1]);
  assert.deepEqual(await values(ints.astype("float32")), [
    2 ** 31,
    INT_MIN,
    16777216,
    -200,
    200,
    70000,
    0,
    -1,
  ]);
  assert.deepEqual(await values(ints.astype("float16")), [
    Infinity,
    -Infinity,
    Infinity,
    -200,
    200,
    Infinity,
    0,
    -1,
  ]);
  assert.deepEqual(await values(ints.astype("int8")), [-1, 0, 1, 56, -56, 112, 0, -1]);
  assert.deepEqual(await values(ints.astype("bool")), [1, 1, 1, 1, 1, 1, 0, 1]);

  const small = i8([-128, 127, 0, -1]);
  assert.deepEqual(await values(small.astype("int32")), [-128, 127, 0, -1]);
  assert.deepEqual(await values(small.astype("float16")), [-128, 127, 0, -1]);
  assert.deepEqual(await values(small.astype("float32")), [-128, 127, 0, -1]);
  assert.deepEqual(await values(small.astype("bool")), [1, 1, 0, 1]);

  const flags = tensor([true, false]);
  for (const d of ["int8", "int32", "float16", "float32"] as const) {
    const y = flags.astype(d);
    assert.equal(y.dtype, d);
    assert.deepEqual(await values(y), [1, 0], `bool -> ${d}`);
  }

  const half = tensor([65504, -65504, 0.5, NaN, -Infinity, 2048, -0.999], { dtype: "float16" });
  assert.deepEqual(await values(half.astype("int32")), [65504, -65504, 0, 0, INT_MIN, 2048, 0]);
  assert.deepEqual(await values(half.astype("int8")), [-32, 32, 0, 0, 0, 0, 0]);
  assert.deepEqual(await values(half.astype("bool")), [1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(await values(half.astype("float32")), [
    65504,
    -65504,
    0.5,
    NaN,
    -Infinity,
    2048,
    f16(-0.999),
  ]);
  assert.throws(() => flags.astype("float64" as DType), /astype: unknown dtype "float64"/);
});

Deno.test({
  name: "astype gives bitwise identical results on webgpu and cpu",
  ignore: !availableBackends().includes("webgpu"),
  async fn() {
    // Deterministic mix of specials, ties, large and tiny values.
    let s = 12345;
    const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const data = new Float32Array(256);
    for (let i = 0; i < data.length; i++) {
      const r = rand();
      data[i] = i < FLOATS.length
        ? FLOATS[i]
        : r < 0.3
        ? (rand() - 0.5) * 2 ** (rand() * 70 - 30)
        : r < 0.6
        ? Math.round((rand() - 0.5) * 600) / 4
        : (rand() - 0.5) * 1e5;
    }
    const ints = Int32Array.from(data, (v) => (Number.isFinite(v) ? Math.trunc(v * 977) | 0 : 7));
    const sources: [string, (b: "webgpu" | "cpu") => Tensor][] = [
      ["float32", (b) => tensor(data, { backend: b })],
      ["float16", (b) => tensor(data, { backend: b, dtype: "float16" })],
      ["int32", (b) => tensor(ints, { backend: b })],
      ["int8", (b) => tensor(Int8Array.from(ints), { backend: b })],
    ];
    for (const [name, make] of sources) {
      const [gpu, cpu] = [make("webgpu"), make("cpu")];
      for (const d of DTYPES) {
        const [a, b] = [await gpu.astype(d).data(), await cpu.astype(d).data()];
        assert.equal(a.constructor, b.constructor);
        assert.deepEqual(bytes(a), bytes(b), `${name} -> ${d}`);
      }
    }
  },
});

// ---- integer arithmetic ------------------------------------------------------

testBoth("int32 and int8 arithmetic wraps around", async () => {
  assert.deepEqual(await values(i32([INT_MAX, INT_MIN, 5]).add(i32([1, -1, -7]))), [
    INT_MIN,
    INT_MAX,
    -2,
  ]);
  assert.deepEqual(await values(i32([INT_MIN]).sub(1)), [INT_MAX]);
  const a = [65536, 123456789, -7, 46341, INT_MIN];
  const b = [65536, 987654321, 3, 46341, -1];
  const m = i32(a).mul(i32(b));
  assert.equal(m.dtype, "int32");
  assert.deepEqual(await values(m), a.map((v, i) => Math.imul(v, b[i])));
  const n = i32([INT_MIN, 5, 0, INT_MAX]).neg();
  assert.deepEqual(await values(n), [INT_MIN, -5, 0, -INT_MAX]);

  assert.deepEqual(await values(i8([127, -128]).add(i8([1, -1]))), [-128, 127]);
  assert.deepEqual(await values(i8([16, -128, 11]).mul(i8([16, -1, 12]))), [0, -128, -124]);
  assert.deepEqual(await values(i8([-128, 3]).neg()), [-128, -3]);
  assert.equal(i8([1]).neg().dtype, "int8");
});

testBoth("integer dtype rules of unary ops, div and pow", async () => {
  const x = i8([7, -7, 2]);
  const q = x.div(i8([2, 2, 0]));
  assert.equal(q.dtype, "float32");
  assert.deepEqual(await values(q), [3.5, -3.5, Infinity]);
  const p = i32([2, -2, 3]).pow(2);
  assert.equal(p.dtype, "float32");
  assert.deepEqual(await values(p), [4, 4, 9]);
  const e = i32([0, 1]).exp();
  assert.equal(e.dtype, "float32");
  assertClose(await e.data(), [1, Math.E]);
  assert.equal(tensor([true]).sqrt().dtype, "float32");
  assert.equal(tensor([1], { dtype: "float16" }).exp().dtype, "float16");
  for (const op of ["floor", "ceil", "round"] as const) {
    const y = i32([INT_MAX, -3, 16777217])[op]();
    assert.equal(y.dtype, "int32", op);
    assert.deepEqual(await values(y), [INT_MAX, -3, 16777217], op);
  }
  // abs wraps at INT_MIN; sign, clip and relu keep the integer dtype.
  assert.deepEqual(await values(i32([INT_MIN, -5, 6]).abs()), [INT_MIN, 5, 6]);
  const sg = i8([-7, 0, 9]).sign();
  assert.equal(sg.dtype, "int8");
  assert.deepEqual(await values(sg), [-1, 0, 1]);
  const cl = i8([-100, 0, 100]).clip(-5, 5);
  assert.equal(cl.dtype, "int8");
  assert.deepEqual(await values(cl), [-5, 0, 5]);
  assert.deepEqual(await values(i8([-3, 4]).relu()), [0, 4]);
  assert.equal(await i32([1, 2, 3, 4]).var().item(), 1.25);
  assert.throws(
    () => tensor([true]).neg(),
    (e: Error) => e instanceof TypeError && /neg/.test(e.message),
  );
  assert.throws(
    () => tensor([true]).sub(tensor([false])),
    (e: Error) => e instanceof TypeError && /sub/.test(e.message),
  );
});

/** Python's `a // b` and `a % b` on integers, with 0 for a zero divisor and int32 wrap. */
function pyIntDivMod(a: number, b: number): [number, number] {
  if (b === 0) return [0, 0];
  return [Math.floor(a / b) | 0, (((a % b) + b) % b) | 0];
}

/** Python's float `a // b` and `a % b` in float64 (NumPy's results for a zero divisor). */
function pyFloatDivMod(a: number, b: number): [number, number] {
  if (b === 0) return [a / b, NaN];
  const q = Math.floor(a / b);
  return [q, a - b * q];
}

testBoth("integer floorDiv and mod follow Python's sign rules", async () => {
  const a = [7, -7, 7, -7, 0, 5, -5, INT_MIN, INT_MIN, INT_MAX, INT_MIN, 1, -1, 3, 100, -100];
  const b = [2, 2, -2, -2, 3, 0, 0, -1, 1, -1, 0, INT_MIN, INT_MIN, INT_MAX, 7, 7];
  const q = i32(a).floorDiv(i32(b));
  const r = i32(a).mod(i32(b));
  assert.equal(q.dtype, "int32");
  assert.equal(r.dtype, "int32");
  assert.deepEqual(await values(q), a.map((v, i) => pyIntDivMod(v, b[i])[0]));
  assert.deepEqual(await values(r), a.map((v, i) => pyIntDivMod(v, b[i])[1]));
  // Spot checks of the reference itself.
  assert.deepEqual(pyIntDivMod(-7, 2), [-4, 1]);
  assert.deepEqual(pyIntDivMod(7, -2), [-4, -1]);
  assert.deepEqual(pyIntDivMod(INT_MIN, -1), [INT_MIN, 0]);

  // int8: -128 // -1 wraps to -128.
  const q8 = i8([-128, 7, -7, 5]).floorDiv(i8([-1, 0, 3, -3]));
  assert.equal(q8.dtype, "int8");
  assert.deepEqual(await values(q8), [-128, 0, -3, -2]);
  assert.deepEqual(await values(i8([-128, 7, -7, 5]).mod(i8([-1, 0, 3, -3]))), [0, 0, 2, -1]);
  // Weak scalars and broadcasting.
  assert.deepEqual(await values(i32([7, -7]).floorDiv(2)), [3, -4]);
  assert.deepEqual(await values(i32([7, -7]).mod(3)), [1, 2]);
  assert.deepEqual(await values(tensor([true, false]).floorDiv(tensor([true, true]))), [1, 0]);
});

testBoth("float floorDiv and mod follow Python's sign rules", async () => {
  const a = [7.5, -7.5, 7.5, -7.5, 1, -1, 0, 5.25, -0.5, 3, -3, 1e-8, -1e-3];
  const b = [2, 2, -2, -2, 0, 0, 0, 0.5, 4, 1.5, 1.5, 1, 0.25];
  const [x, y] = [tensor(a), tensor(b)];
  const q = x.floorDiv(y);
  const r = x.mod(y);
  assert.equal(q.dtype, "float32");
  assertClose(await q.data(), a.map((v, i) => pyFloatDivMod(v, b[i])[0]), { label: "floorDiv" });
  assertClose(await r.data(), a.map((v, i) => pyFloatDivMod(v, b[i])[1]), {
    atol: 1e-6,
    label: "mod",
  });
  // Non-representable divisors: compare with the float64 rule on the float32 inputs.
  const c = new Float32Array([5, -5, 5.7, -5.7]);
  const d = new Float32Array([0.3, 0.3, -0.7, -0.7]);
  assertClose(
    await tensor(c).mod(tensor(d)).data(),
    Array.from(c, (v, i) => pyFloatDivMod(v, d[i])[1]),
    { atol: 1e-5, label: "mod of non-representable values" },
  );
  assert.deepEqual(await values(tensor([-7.5]).floorDiv(2)), [-4]);
  assert.equal(tensor([1], { dtype: "float16" }).mod(i32([3])).dtype, "float16");
  assert.equal(i8([1]).mod(1.5).dtype, "float32");
  // An infinite divisor: Python keeps a same-signed dividend (quotient 0) and
  // otherwise gives the divisor (quotient -1), as NumPy does.
  const fin = tensor([5, -5, 5, -5, 0]);
  const inf = tensor([Infinity, Infinity, -Infinity, -Infinity, Infinity]);
  assertClose(await fin.mod(inf).data(), [5, Infinity, -Infinity, -5, 0], { label: "mod by inf" });
  assertClose(await fin.floorDiv(inf).data(), [0, -1, -1, 0, 0], { label: "floorDiv by inf" });
});

// ---- comparisons, logical ops, where -------------------------------------------

testBoth("comparisons give bool and compare in the promoted dtype", async () => {
  const a = tensor([1, 2, NaN, -0, 3, Infinity]);
  const b = tensor([2, 2, NaN, 0, 1, Infinity]);
  const table: [string, Tensor, number[]][] = [
    ["lt", a.lt(b), [1, 0, 0, 0, 0, 0]],
    ["le", a.le(b), [1, 1, 0, 1, 0, 1]],
    ["gt", a.gt(b), [0, 0, 0, 0, 1, 0]],
    ["ge", a.ge(b), [0, 1, 0, 1, 1, 1]],
    ["eq", a.eq(b), [0, 1, 0, 1, 0, 1]],
    ["ne", a.ne(b), [1, 0, 1, 0, 1, 0]],
  ];
  for (const [op, y, expected] of table) {
    assert.equal(y.dtype, "bool", op);
    const data = await y.data();
    assert.ok(data instanceof Uint8Array, op);
    assert.deepEqual(Array.from(data), expected, op);
  }
  // int32 compares exactly (not through float32, where these two are equal).
  const big = i32([16777217, 16777217]);
  assert.deepEqual(await values(big.eq(i32([16777216, 16777217]))), [0, 1]);
  assert.deepEqual(await values(big.gt(16777216)), [1, 1]);
  // Mixed dtypes, weak numbers, broadcasting.
  assert.deepEqual(await values(i8([1, 2, 3]).lt(tensor([1.5, 1.5, 3], { dtype: "float16" }))), [
    1,
    0,
    0,
  ]);
  assert.deepEqual(await values(i8([1, 2, 3]).lt(1.5)), [1, 0, 0]);
  const grid = i32([0, 1, 2]).reshape([3, 1]).lt(i32([1, 2]));
  assert.equal(grid.dtype, "bool");
  assert.deepEqual(await grid.array(), [[1, 1], [0, 1], [0, 0]]);
  assert.deepEqual(await values(tensor([true, false]).eq(tensor([true, true]))), [1, 0]);
});

testBoth("logical ops give bool; non-zero (NaN included) is true", async () => {
  const x = tensor([0, NaN, 1, 2, -0, 0]);
  const y = i8([1, 1, 0, -3, 5, 0]);
  const and = x.logicalAnd(y);
  const or = x.logicalOr(y);
  const not = x.logicalNot();
  for (const t of [and, or, not]) assert.equal(t.dtype, "bool");
  assert.deepEqual(await values(and), [0, 1, 0, 1, 0, 0]);
  assert.deepEqual(await values(or), [1, 1, 1, 1, 1, 0]);
  assert.deepEqual(await values(not), [1, 0, 0, 0, 1, 1]);
  assert.deepEqual(await values(x.logicalOr(0)), [0, 1, 1, 1, 0, 0]);
  assert.deepEqual(await values(x.logicalAnd(1)), [0, 1, 1, 1, 0, 0]);
  assert.deepEqual(await values(tensor([true, false]).logicalNot()), [0, 1]);
  assert.deepEqual(await values(i32([INT_MIN, 0]).logicalNot()), [0, 1]);
});

testBoth("where takes bool, float and integer conditions", async () => {
  const a = i8([1, 2, 3, 4, 5]);
  const b = tensor(-1, { dtype: "float16" });
  const fromBool = where(tensor([true, false, true, false, false]), a, b);
  assert.equal(fromBool.dtype, "float16");
  assert.deepEqual(await values(fromBool), [1, -1, 3, -1, -1]);
  // Float condition: 0 and -0 false, NaN and everything else true.
  const fromFloat = where(tensor([0, NaN, -0, 2.5, -1e-30]), a, b);
  assert.deepEqual(await values(fromFloat), [-1, 2, -1, 4, 5]);
  const fromInt = where(i32([0, INT_MIN, 1, 0, -1]), a, 0);
  assert.equal(fromInt.dtype, "int8");
  assert.deepEqual(await values(fromInt), [0, 2, 3, 0, 5]);
  // A broadcast number condition.
  assert.deepEqual(await values(where(1, a, 9)), [1, 2, 3, 4, 5]);
  const two = where(tensor([[true], [false]]), i32([1, 2]), tensor([10.5, 20.5]));
  assert.equal(two.dtype, "float32");
  assert.deepEqual(await two.array(), [[1, 2], [10.5, 20.5]]);
});

// ---- reductions ------------------------------------------------------------------

testBoth("integer reductions: dtypes, accumulation and wrap-around", async () => {
  const s8 = i8([100, 100, 100, -128]);
  const s = s8.sum();
  assert.equal(s.dtype, "int32");
  assert.equal(await s.item(), 172);
  assert.equal(s8.max().dtype, "int8");
  assert.equal(await s8.max().item(), 100);
  assert.equal(await s8.min().item(), -128);
  const p8 = i8([-128, -128, -128]).prod();
  assert.equal(p8.dtype, "int32");
  assert.equal(await p8.item(), -2097152);
  assert.equal(await i8([10, 20, 30]).prod().item(), 6000);

  assert.equal(await i32([INT_MAX, 1]).sum().item(), INT_MIN);
  assert.equal(await i32([65536, 65536]).prod().item(), 0);
  assert.equal(await i32([46341, 46341, 3]).prod().item(), Math.imul(Math.imul(46341, 46341), 3));
  const wide = i32([INT_MIN, INT_MAX, 0, -5, 16777217, 16777216]).reshape([2, 3]);
  assert.deepEqual(await values(wide.max(1)), [INT_MAX, 16777217]);
  assert.deepEqual(await values(wide.min(1)), [INT_MIN, -5]);
  assert.deepEqual(await values(wide.max(0)), [-5, INT_MAX, 16777216]);
  assert.deepEqual(wide.min(0, { keepdims: true }).shape, [1, 3]);
  assert.equal(wide.max().dtype, "int32");

  const flags = tensor([[true, false, true], [false, false, true]]);
  assert.equal(flags.sum().dtype, "int32");
  assert.deepEqual(await values(flags.sum(1)), [2, 1]);
  assert.deepEqual(await values(flags.prod(1)), [0, 0]);
  assert.equal(flags.prod().dtype, "int32");
  assert.equal(flags.max().dtype, "bool");
  assert.deepEqual(await values(flags.max(0)), [1, 0, 1]);
  assert.deepEqual(await values(flags.min(0)), [0, 0, 1]);

  const m = i32([1, 2, 4, 5]).reshape([2, 2]).mean(1);
  assert.equal(m.dtype, "float32");
  assert.deepEqual(await values(m), [1.5, 4.5]);
  assert.equal(i8([1]).mean().dtype, "float32");
  assert.equal(tensor([1], { dtype: "float16" }).mean().dtype, "float16");
});

testBoth("empty reductions: sum and prod give the identity, max and min raise", async () => {
  const e32 = tensor([], { dtype: "int32" });
  assert.deepEqual(await values(e32.sum()), [0]);
  assert.deepEqual(await values(e32.prod()), [1]);
  assert.equal(e32.sum().dtype, "int32");
  const e8 = tensor(new Int8Array(0), { shape: [2, 0] });
  assert.equal(e8.sum(1).dtype, "int32");
  assert.equal(e8.prod(1).dtype, "int32");
  assert.deepEqual(await values(e8.sum(1)), [0, 0]);
  assert.deepEqual(await values(e8.prod(1)), [1, 1]);
  assert.deepEqual(await values(tensor([]).prod()), [1]);
  assert.deepEqual(await values(tensor([true]).reshape([1, 1]).sum([])), [1]);
  for (const op of ["max", "min", "argmax", "argmin"] as const) {
    assert.throws(() => e8[op](1), (e: Error) => e instanceof RangeError && e.message.includes(op));
  }
  assert.throws(() => e32.max(), RangeError);
  // Reducing a non-empty axis of a zero-size tensor is fine.
  const m = e8.max(0);
  assert.equal(m.dtype, "int8");
  assert.deepEqual(m.shape, [0]);
  assert.ok(Number.isNaN(await e32.mean().item()));
});

testBoth("argmax and argmin: int32, first index on ties, NaN is the extreme", async () => {
  const x = tensor([[1, NaN, 3, NaN], [2, 5, 5, 1], [-1, -3, -3, NaN], [4, 4, 4, 4]]);
  const hi = x.argmax(1);
  const lo = x.argmin(1);
  assert.equal(hi.dtype, "int32");
  assert.equal(lo.dtype, "int32");
  assert.deepEqual(await values(hi), [1, 1, 3, 0]);
  assert.deepEqual(await values(lo), [1, 3, 3, 0]);
  assert.deepEqual(await values(x.argmax(0)), [3, 0, 1, 0]);
  assert.deepEqual(await values(x.argmin(0)), [2, 0, 2, 0]);
  assert.deepEqual(x.argmax(0, { keepdims: true }).shape, [1, 4]);
  assert.deepEqual(await values(i8([1, 3, 3, -128, -128, 0]).reshape([2, 3]).argmax(1)), [1, 2]);
  assert.deepEqual(await values(i8([1, 3, 3, -128, -128, 0]).reshape([2, 3]).argmin(1)), [0, 0]);
  assert.deepEqual(
    await values(tensor([[false, true, true], [false, false, false]]).argmax(1)),
    [1, 0],
  );
  assert.deepEqual(
    await values(i32([INT_MAX, INT_MAX - 1, INT_MIN, INT_MIN + 1]).argmin()),
    [2],
  );
  assert.deepEqual(
    await values(i32([INT_MAX - 1, INT_MAX, INT_MIN, INT_MIN + 1]).argmax()),
    [1],
  );
  const h = tensor([0.5, 2, 2, -1], { dtype: "float16" });
  assert.deepEqual(await values(h.argmax()), [1]);
  assert.deepEqual(await values(h.argmin()), [3]);
});

testBoth("cumsum is exact for integers and matches a float reference", async () => {
  const big = [2 ** 30, 2 ** 30 - 1, -(2 ** 30), 3, 5, 2 ** 29 + 1, -(2 ** 29), 7, 1];
  const c = i32(big).cumsum();
  assert.equal(c.dtype, "int32");
  let acc = 0;
  assert.deepEqual(await values(c), big.map((v) => (acc += v)));
  // Exact beyond 2^24, where float32 would round.
  assert.equal((await values(c))[1], INT_MAX);
  // Wraps like the rest of int32.
  assert.deepEqual(await values(i32([2 ** 30, 2 ** 30]).cumsum()), [2 ** 30, INT_MIN]);
  const c8 = i8([100, 100, 100, -128]).cumsum();
  assert.equal(c8.dtype, "int32");
  assert.deepEqual(await values(c8), [100, 200, 300, 172]);
  const cb = tensor([true, false, true, true, true]).cumsum();
  assert.equal(cb.dtype, "int32");
  assert.deepEqual(await values(cb), [1, 1, 2, 3, 4]);
  // 2-D along each axis.
  const m = i32([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).reshape([3, 4]);
  assert.deepEqual(await m.cumsum(0).array(), [[1, 2, 3, 4], [6, 8, 10, 12], [15, 18, 21, 24]]);
  assert.deepEqual(await m.cumsum(1).array(), [[1, 3, 6, 10], [5, 11, 18, 26], [9, 19, 30, 42]]);
  // Floats.
  const f = Array.from({ length: 11 }, (_, i) => Math.sin(i * 1.7) * 3);
  const cf = tensor(f).cumsum();
  assert.equal(cf.dtype, "float32");
  let fa = 0;
  assertClose(await cf.data(), f.map((v) => (fa += v)), { label: "float cumsum" });
  assert.equal(tensor(f, { dtype: "float16" }).cumsum().dtype, "float16");
  assert.deepEqual(await values(tensor([5]).cumsum()), [5]);
});

// ---- host arrays, formatting, creation -----------------------------------------

testBoth("data() returns the typed array of the dtype", async () => {
  const classes: [DType, unknown][] = [
    ["float32", Float32Array],
    ["float16", Float16Array],
    ["int32", Int32Array],
    ["int8", Int8Array],
    ["bool", Uint8Array],
  ];
  for (const [dtype, cls] of classes) {
    const x = tensor([[1, 0, 1], [0, 1, 1]], { dtype });
    assert.equal((await x.data()).constructor, cls, dtype);
    // A strided view is copied into the same class.
    const t = x.transpose();
    const data = await t.data();
    assert.equal(data.constructor, cls, `${dtype} transposed`);
    assert.deepEqual(Array.from(data), [1, 0, 0, 1, 1, 1]);
    assert.equal(x.astype(dtype).dtype, dtype);
  }
  assert.equal(await i32([INT_MIN]).item(), INT_MIN);
  assert.equal(await tensor([true]).sum().item(), 1);
  assert.deepEqual(await tensor([[true], [false]]).array(), [[1], [0]]);
});

testBoth("format() prints integers without decimals and bools as true/false", async () => {
  assert.equal(
    await i32([1, -22, INT_MAX]).format(),
    "tensor([         1,        -22, 2147483647], shape=[3], dtype=int32)",
  );
  assert.equal(
    await tensor([[1, -2], [3, 4]], { dtype: "int8" }).format(),
    "tensor([[ 1, -2],\n        [ 3,  4]], shape=[2,2], dtype=int8)",
  );
  assert.equal(await tensor(5, { dtype: "int8" }).format(), "tensor(5, shape=[], dtype=int8)");
  assert.equal(
    await tensor([[true], [false]]).format(),
    "tensor([[ true],\n        [false]], shape=[2,1], dtype=bool)",
  );
  assert.equal(
    await tensor([1, 0]).gt(0).format(),
    "tensor([ true, false], shape=[2], dtype=bool)",
  );
  assert.equal(
    await tensor([1.5, -2], { dtype: "float16" }).format(),
    "tensor([ 1.5000, -2.0000], shape=[2], dtype=float16)",
  );
});

testBoth("tensor() infers dtypes and rejects values the dtype cannot hold", () => {
  const inferred: [Tensor, DType][] = [
    [tensor([1, 2]), "float32"],
    [tensor(3), "float32"],
    [tensor(true), "bool"],
    [tensor([true, false]), "bool"],
    [tensor([[true], [false]]), "bool"],
    [tensor([1, true] as unknown as number[]), "float32"],
    [tensor(new Float32Array(2)), "float32"],
    [tensor(new Float16Array(2)), "float16"],
    [tensor(new Int32Array(2)), "int32"],
    [tensor(new Int8Array(2)), "int8"],
    [tensor(new Uint8Array(2)), "float32"],
    [tensor([1, 2], { dtype: "int32" }), "int32"],
    [tensor(new Int32Array(2), { dtype: "float32" }), "float32"],
    [tensor(new Uint8Array([0, 1]), { dtype: "bool" }), "bool"],
    [tensor([0, 1], { dtype: "bool" }), "bool"],
  ];
  for (const [t, dtype] of inferred) assert.equal(t.dtype, dtype);
  assert.deepEqual(tensor(true).shape, []);
  const bad: [() => unknown, RegExp][] = [
    [() => tensor([1.5], { dtype: "int32" }), /value 1.5 at flat index 0 .*int32/],
    [() => tensor([1, 128], { dtype: "int8" }), /value 128 at flat index 1 .*\[-128, 127\]/],
    [() => tensor([-129], { dtype: "int8" }), /-129/],
    [() => tensor([2 ** 31], { dtype: "int32" }), /2147483648/],
    [() => tensor([NaN], { dtype: "int32" }), /NaN/],
    [() => tensor([2], { dtype: "bool" }), /a boolean/],
    [() => tensor(new Uint8Array([0, 2]), { dtype: "bool" }), /value 2 at flat index 1/],
    [() => tensor(new Float32Array([0.5]), { dtype: "int8" }), /0.5/],
  ];
  for (const [fn, message] of bad) {
    assert.throws(fn, (e: Error) => e instanceof RangeError && message.test(e.message));
  }
  assert.throws(() => tensor([1], { dtype: "uint8" as DType }), TypeError);
});

// ---- gradients ---------------------------------------------------------------------

testBoth("grad of an integer or bool input is a TypeError naming it", () => {
  const f = (x: Tensor) => x.astype("float32").sum();
  assert.throws(() => grad(f)(i32([1])), (e: Error) => {
    assert.ok(e instanceof TypeError);
    assert.match(e.message, /grad: argument 0 has dtype int32/);
    return true;
  });
  assert.throws(
    () =>
      grad((_x: Tensor, y: Tensor) => y.astype("float32").sum(), { argnums: 1 })(
        tensor([1]),
        i8([1]),
      ),
    /argument 1 has dtype int8/,
  );
  assert.throws(
    () => grad((p: { w: Tensor; n: Tensor }) => p.w.sum())({ w: tensor([1]), n: i8([1]) }),
    (e: Error) => e instanceof TypeError && /argument 0 at 'n' has dtype int8/.test(e.message),
  );
  assert.throws(
    () => grad((p: Tensor[]) => p[0].sum())([tensor([1]), tensor([true])]),
    /argument 0 at '1' has dtype bool/,
  );
  // An integer argument outside argnums is fine.
  const g = grad((x: Tensor, k: Tensor) => x.mul(k.astype("float32")).sum())(
    tensor([1, 2]),
    i32([3, 4]),
  );
  assert.equal(g.dtype, "float32");
});

testBoth("grad of a function returning an integer is a TypeError", () => {
  assert.throws(
    () => grad((x: Tensor) => x.astype("int32").sum())(tensor([1.5])),
    (e: Error) =>
      e instanceof TypeError && /must return a float32 or float16 scalar.*int32/.test(e.message),
  );
  assert.throws(() => grad((x: Tensor) => x.gt(0).max())(tensor([1.5])), /dtype bool/);
  assert.throws(() => grad((x: Tensor) => x.argmax())(tensor([1.5, 2])), /dtype int32/);
});

testBoth("integer-valued ops pass no gradient", async () => {
  // d/dx [int(x)·x] = int(x): the cast contributes nothing.
  const g = grad((x: Tensor) => x.astype("int32").astype("float32").mul(x).sum())(
    tensor([1.5, 2.7, -3.2]),
  );
  assert.deepEqual(await values(g), [1, 2, -3]);
  const h = grad((x: Tensor) => x.argmax().astype("float32").add(x.sum()))(tensor([1, 3, 2]));
  assert.deepEqual(await values(h), [1, 1, 1]);
  const k = grad((x: Tensor) => where(x.gt(0), x, x.mul(2)).sum())(tensor([1, -1]));
  assert.deepEqual(await values(k), [1, 2]);
});

testBoth("prod: zero-safe gradient equals the product of the others", async () => {
  const rows = [[0.5, -1.2, 2.0], [0, 1.5, -0.7], [0, 0, 1.3], [1.1, 0.9, 0]];
  const x = tensor(rows);
  const p = x.prod(1);
  assertClose(await p.data(), rows.map((r) => r.reduce((a, b) => a * b, 1)));
  const g = grad((t: Tensor) => t.prod(1).sum())(x);
  const others = rows.map((r) => r.map((_, j) => r.reduce((a, v, k) => (k === j ? a : a * v), 1)));
  assertClose(await g.data(), others, { label: "prod gradient" });
  // Rows with one zero: only the zero gets a gradient; two zeros: none.
  assert.deepEqual((await g.array() as number[][])[2], [0, 0, 0]);
  assertClose((await g.array() as number[][])[1], [-1.05, 0, 0]);
  await checkGrads((t: Tensor) => t.prod(1), [x]);
  await checkGrads((t: Tensor) => t.prod(0), [tensor([[0.5, 2], [-1.5, 0], [1.2, 0.8]])]);
  await checkGrads((t: Tensor) => t.prod(), [tensor([0.9, -1.1, 1.3, 0.7])]);
  await checkGrads((t: Tensor) => t.prod(1, { keepdims: true }).mul(t), [x]);
});

testBoth("minimum: ties split the gradient evenly", async () => {
  const a = tensor([1, 2, 3, -1]);
  const b = tensor([1, 3, 2, -1]);
  const y = a.minimum(b);
  assert.deepEqual(await values(y), [1, 2, 2, -1]);
  const [ga, gb] = grad((u: Tensor, v: Tensor) => u.minimum(v).sum(), { argnums: [0, 1] })(a, b);
  assert.deepEqual(await values(ga), [0.5, 1, 0, 0.5]);
  assert.deepEqual(await values(gb), [0.5, 0, 1, 0.5]);
  const gm = grad((x: Tensor) => x.min())(tensor([2, 1, 1, 3]));
  assert.deepEqual(await values(gm), [0, 0.5, 0.5, 0]);
  assert.deepEqual(await values(i8([1, -5]).minimum(i8([0, 3]))), [0, -5]);
  assert.equal(i8([1]).minimum(1).dtype, "int8");
  await checkGrads((u: Tensor, v: Tensor) => u.minimum(v), [
    tensor([[0.3, -1.2], [2.0, 0.1]]),
    tensor([0.5, -1.5]),
  ]);
  await checkGrads((x: Tensor) => x.min(0), [tensor([[0.3, -1.2], [2.0, 0.1], [-0.4, 0.6]])]);
});

testBoth("mod: gradient w.r.t. both arguments away from the jumps", async () => {
  const a = tensor([5.3, -2.7, 1.2, -4.1]);
  const b = tensor([2.1, 1.7, -0.9, -1.3]);
  const [ga, gb] = grad((u: Tensor, v: Tensor) => u.mod(v).sum(), { argnums: [0, 1] })(a, b);
  assert.deepEqual(await values(ga), [1, 1, 1, 1]);
  // d/db (a - b·floor(a/b)) = -floor(a/b).
  assert.deepEqual(await values(gb), [-2, 2, 2, -3]);
  await checkGrads((u: Tensor, v: Tensor) => u.mod(v), [a, b]);
  await checkGrads((u: Tensor) => u.mod(1.5), [tensor([0.4, -2.2, 3.7])]);
  const gd = grad((u: Tensor) => u.floorDiv(2).sum())(tensor([0.4, -2.2]));
  assert.deepEqual(await values(gd), [0, 0]);
});

testBoth("gradients flow through casts between float types", async () => {
  const xs = [0.1, 1 / 3, 2.7, -1e-3, 1000.3];
  const chain = (x: Tensor) => x.astype("float16").astype("float32").square().sum();
  const g = grad(chain)(tensor(xs));
  assert.equal(g.dtype, "float32");
  // The f16-rounded path: 2·f16(x), exactly.
  assert.deepEqual(await values(g), xs.map((v) => 2 * f16(v)));
  const direct = grad((x: Tensor) => x.square().sum())(tensor(xs.map(f16)));
  assert.deepEqual(await values(g), await values(direct));
  // A float16 input gets a float16 gradient.
  const h = grad((x: Tensor) => x.astype("float32").square().sum())(
    tensor([0.5, -1.25, 3], { dtype: "float16" }),
  );
  assert.equal(h.dtype, "float16");
  assert.deepEqual(await values(h), [1, -2.5, 6]);
});

testBoth("float16: mean's gradient, and checkGrads on float16 inputs", async () => {
  const x = tensor([0.25, 0.5, -0.75, 1.25, 2], { dtype: "float16" });
  const m = x.mean();
  assert.equal(m.dtype, "float16");
  assert.equal(await m.item(), f16(3.25 / 5));
  const g = grad((t: Tensor) => t.mean())(x);
  assert.equal(g.dtype, "float16");
  assert.deepEqual(await values(g), new Array(5).fill(f16(0.2)));
  await checkGrads((t: Tensor) => t.mul(t).mean(), [x], { eps: 0.0625, atol: 2e-2, rtol: 2e-2 });
});

testBoth("float16 arithmetic stays float16 and matches float32 within f16 rounding", async (b) => {
  const a = [0.1, -2.5, 3.14159, 100.7, -0.001, 7];
  const c = [1.7, 0.3, -2.2, 0.05, 4, -7];
  const x = tensor(a, { dtype: "float16" });
  const y = tensor(c, { dtype: "float16" });
  const [ah, ch] = [a.map(f16), c.map(f16)];
  const cases: [string, Tensor, number[]][] = [
    ["add", x.add(y), ah.map((v, i) => v + ch[i])],
    ["sub", x.sub(y), ah.map((v, i) => v - ch[i])],
    ["mul", x.mul(y), ah.map((v, i) => v * ch[i])],
    ["div", x.div(y), ah.map((v, i) => v / ch[i])],
    ["maximum", x.maximum(y), ah.map((v, i) => Math.max(v, ch[i]))],
    ["tanh", x.tanh(), ah.map(Math.tanh)],
    ["exp", x.mul(0.1).exp(), ah.map((v) => Math.exp(f16(v * f16(0.1))))],
    ["mul 2.5", x.mul(2.5), ah.map((v) => v * 2.5)],
  ];
  for (const [op, t, expected] of cases) {
    assert.equal(t.dtype, "float16", op);
    // Computed in f32, rounded once to f16: within one f16 rounding.
    assertClose(await t.data(), expected.map(f16), { rtol: 1e-3, atol: 1e-4, label: op });
  }
  // And the same on the CPU backend (f16 tolerance).
  if (b === "webgpu") {
    const xc = tensor(a, { dtype: "float16", backend: "cpu" });
    const yc = tensor(c, { dtype: "float16", backend: "cpu" });
    assertClose(await x.mul(y).add(x).tanh().data(), await xc.mul(yc).add(xc).tanh().data(), {
      rtol: 2e-3,
      atol: 1e-3,
      label: "webgpu vs cpu",
    });
  }
  const mm = x.reshape([2, 3]).matmul(y.reshape([3, 2]));
  assert.equal(mm.dtype, "float16");
  assert.equal(x.add(tensor([1, 2, 3, 4, 5, 6])).dtype, "float32");
  assert.equal(x.add(i32([1, 2, 3, 4, 5, 6])).dtype, "float16");
});

testBoth("float16 sum and matmul accumulate in float32", async () => {
  const s = ones([5000], { dtype: "float16" }).sum();
  assert.equal(s.dtype, "float16");
  assert.equal(await s.item(), 5000); // an f16 accumulator would stop at 2048
  assert.equal(await ones([5000], { dtype: "float16" }).mean().item(), 1);
  const mm = ones([1, 3000], { dtype: "float16" }).matmul(ones([3000, 1], { dtype: "float16" }));
  assert.equal(mm.dtype, "float16");
  assert.equal(await mm.item(), 3000);
});

testBoth("printTrace shows every dtype", () => {
  const text = printTrace(
    (x: Tensor) => x.astype("float16").mul(2).astype("int32").astype("int8").astype("bool"),
    tensor([1, 2]),
  );
  assert.match(text, /\{ lambda %0:f32\[2\] \./);
  assert.match(text, /%\d+:f16\[2\] = convert\[dtype=float16\] %0/);
  assert.match(text, /:f16\[2\] = mul /);
  assert.match(text, /:i32\[2\] = convert\[dtype=int32\]/);
  assert.match(text, /:i8\[2\] = convert\[dtype=int8\]/);
  assert.match(text, /:bool\[2\] = convert\[dtype=bool\]/);
  const sum = printTrace((x: Tensor) => x.astype("float16").sum(), tensor([1, 2]));
  assert.match(sum, /:f16\[\] = sum\[axes=\[0\]\]/);
});

testBoth(
  "creation functions keep integers above 2^24 exact and random ones refuse int dtypes",
  async () => {
    assert.deepEqual(await arange(2 ** 25, 2 ** 25 + 3, 1, { dtype: "int32" }).array(), [
      2 ** 25,
      2 ** 25 + 1,
      2 ** 25 + 2,
    ]);
    assert.deepEqual(await full([2], 2 ** 30 + 1, { dtype: "int32" }).array(), [
      2 ** 30 + 1,
      2 ** 30 + 1,
    ]);
    assert.equal(zeros([2], { dtype: "bool" }).dtype, "bool");
    assert.equal(randomNormal([2], { dtype: "float16" }).dtype, "float16");
    assert.throws(
      () => randomNormal([2], { dtype: "int32" }),
      /randomNormal: dtype must be float32 or float16, got int32/,
    );
    assert.throws(
      () => randomUniform([2], { dtype: "bool" }),
      /randomUniform: dtype must be float32 or float16, got bool/,
    );
  },
);

testBoth("float16 mean and var are computed in float32 and rounded once", async () => {
  const many = full([5000], 30, { dtype: "float16" }); // the sum, 150000, overflows float16
  assert.equal(many.mean().dtype, "float16");
  assert.equal(await many.mean().item(), 30);
  assert.equal(await many.var().item(), 0);
  // More elements than float16's largest finite value: the count itself would be inf.
  assert.equal(await full([70000], 1, { dtype: "float16" }).mean().item(), 1);
  assertClose(await full([70000], 0.001, { dtype: "float16" }).std().item(), 0, { atol: 1e-6 });
});

testBoth("errors name the op the user called, and pad checks its fill like other numbers", () => {
  const small = tensor([1, 0], { dtype: "int8" });
  assert.throws(() => small.gt(300), /^RangeError: gt: the number 300 does not fit/);
  assert.throws(() => small.ge(300), /^RangeError: ge: the number 300/);
  assert.throws(() => tensor([1, 2]).gt(tensor([1, 2, 3])), /^TypeError: gt: shapes/);
  assert.throws(() => small.clip(-300, 2), /^RangeError: clip: the number -300/);
  assert.throws(() => small.pad([1, 1], 300), /pad: the fill value 300 does not fit dtype int8/);
  assert.throws(() => small.pad([1, 1], 2.7), /pad: the fill value 2.7 does not fit/);
  assert.throws(
    () => tensor([true]).pad([1, 0], 2),
    /pad: the fill value 2 does not fit dtype bool/,
  );
});

testBoth("pow of zero to a negative power is IEEE's infinity on both backends", async () => {
  const zeros = tensor([0, -0, 0, -0]);
  assert.deepEqual(await zeros.pow(tensor([-1, -1, -2, -3])).array(), [
    Infinity,
    -Infinity,
    Infinity,
    -Infinity,
  ]);
  assert.deepEqual(await tensor([0], { dtype: "int32" }).pow(-1).array(), [Infinity]);
});

testBoth("isnan, isinf, isfinite and logicalXor give bool for every dtype", async () => {
  const x = tensor([1, NaN, Infinity, -Infinity, 0, -2]);
  for (const t of [x, x.astype("float16")]) {
    assert.equal(t.isnan().dtype, "bool");
    assert.deepEqual(Array.from(await t.isnan().data()), [0, 1, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(await t.isinf().data()), [0, 0, 1, 1, 0, 0]);
    assert.deepEqual(Array.from(await t.isfinite().data()), [1, 0, 0, 0, 1, 1]);
  }
  for (const t of [i32([1, -2]), tensor([true, false])]) {
    assert.deepEqual(Array.from(await t.isnan().data()), [0, 0]);
    assert.deepEqual(Array.from(await t.isinf().data()), [0, 0]);
    assert.deepEqual(Array.from(await t.isfinite().data()), [1, 1]);
  }
  const xor = tensor([true, true, false, false]).logicalXor(tensor([true, false, true, false]));
  assert.equal(xor.dtype, "bool");
  assert.deepEqual(Array.from(await xor.data()), [0, 1, 1, 0]);
  assert.deepEqual(Array.from(await tensor([2, 0, NaN]).logicalXor(1).data()), [0, 1, 0]);
});
