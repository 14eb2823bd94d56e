/**
 * Regression tests for the transforms, creation and random items of the
 * defects issue: pow's exponent gradient at a zero base (2), repeated argnums
 * (6), nothing leaking when a transform fails (8), refused async functions
 * never crashing the process later (9), sizes checked before allocating
 * (10), tensor() refusing non-numeric array-likes (13) and one seeded
 * generator behind randomNormal/randomUniform and random.* (14).
 */

import assert from "node:assert/strict";
import {
  arange,
  availableBackends,
  checkGrads,
  debugNans,
  full,
  grad,
  initializers,
  memoryStats,
  ones,
  random,
  randomNormal,
  randomUniform,
  sync,
  type Tensor,
  tensor,
  valueAndGrad,
  vjp,
  zeros,
} from "../mod.ts";
import { resolveBackend } from "../src/backends.ts";
import { generator } from "../src/creation.ts";
import { assertClose, testBoth } from "./_helpers.ts";

// ---- 2: pow's gradient with respect to the exponent at a zero base ----------------------------

testBoth("pow: the exponent's gradient is 0 where the base is 0 (as JAX and PyTorch)", async () => {
  const base = tensor([0, 0, 1.5]);
  const g = grad((y: Tensor) => base.pow(y).sum())(tensor([2, 0.5, 2]));
  assertClose(await g.array(), [0, 0, 1.5 ** 2 * Math.log(1.5)], { label: "d/dy" });
  // The base's gradient is unchanged: b·a^(b-1).
  const ga = grad((a: Tensor) => a.pow(tensor([2, 3, 2])).sum())(base);
  assertClose(await ga.array(), [0, 0, 3], { label: "d/da" });
});

testBoth(
  "pow: a scalar exponent broadcast over a base with zeros gets a finite gradient",
  async () => {
    const base = tensor([0, 1, 2]);
    const f = (y: Tensor) => base.pow(y).sum();
    const [value, g] = valueAndGrad(f)(tensor(2));
    assert.equal(await value.item(), 5);
    assertClose(await g.item(), 4 * Math.log(2), { label: "d/dy" });
    // Differentiable again: d²/dy² Σ a^y = Σ a^y·log²a, still 0 at a = 0.
    const g2 = grad((y: Tensor) => grad(f)(y))(tensor(2));
    assertClose(await g2.item(), 4 * Math.log(2) ** 2, { label: "d²/dy²", rtol: 1e-3 });
    // The mixed derivative d²/(da dy) at a = 0 is finite too.
    const mixed = grad((a: Tensor) => grad((y: Tensor) => a.pow(y).sum())(tensor(2)))(base);
    for (const v of await mixed.data()) assert.ok(Number.isFinite(v), `mixed: ${v}`);
  },
);

testBoth("pow: both gradients agree with central differences away from 0", async () => {
  await checkGrads(
    (a: Tensor, b: Tensor) => a.pow(b),
    [tensor([0.5, 1.5, 2.5, 0.8]), tensor([-1, 0.5, 2, 3])],
  );
});

// ---- 6: repeated argnums ----------------------------------------------------------------------

testBoth("argnums naming an argument twice is a RangeError for grad and valueAndGrad", () => {
  const f = (a: Tensor, b: Tensor) => a.mul(b).sum();
  assert.throws(
    () => grad(f, { argnums: [0, 0] }),
    (e: Error) =>
      e instanceof RangeError &&
      /^grad: argnums \[0, 0\] names argument 0 more than once/.test(e.message),
  );
  assert.throws(
    () => valueAndGrad(f, { argnums: [1, 0, 1] }),
    (e: Error) =>
      e instanceof RangeError &&
      /^valueAndGrad: argnums \[1, 0, 1\] names argument 1 more than once/.test(e.message),
  );
  assert.throws(
    () => grad(f, { argnums: [0, 0], hasAux: true }),
    /^RangeError: grad: argnums \[0, 0\]/,
  );
  assert.throws(() => grad(f, { argnums: "0" as never }), TypeError);
  // Distinct positions still work.
  const [ga, gb] = grad(f, { argnums: [1, 0] })(tensor([1, 2]), tensor([3, 4]));
  assert.deepEqual(ga.shape, [2]);
  assert.deepEqual(gb.shape, [2]);
});

// ---- 8: nothing leaks when a transform fails --------------------------------------------------

/** Calls `call` `times` times, each expected to throw, and returns the live-tensor growth. */
function leakOf(call: () => unknown, times = 4): number {
  const before = memoryStats().liveTensors;
  for (let i = 0; i < times; i++) {
    assert.throws(call);
  }
  return memoryStats().liveTensors - before;
}

testBoth("valueAndGrad and grad leak nothing when the forward or backward pass throws", () => {
  const x = tensor([1, 2, 3]);
  // The function disposes an intermediate its backward pass needs (exp's VJP uses its output).
  const disposesOwn = (a: Tensor) => {
    const e = a.exp();
    const s = e.sum();
    e.dispose();
    return s;
  };
  const withAux = (a: Tensor) => [disposesOwn(a), { twice: a.mul(2), both: [a.add(1)] }];
  const forwardThrows = (a: Tensor) => {
    a.mul(2).exp();
    throw new Error("boom");
  };
  const cases: [string, () => unknown][] = [
    ["valueAndGrad, backward throws", () => valueAndGrad(disposesOwn)(x)],
    ["grad, backward throws", () => grad(disposesOwn)(x)],
    ["valueAndGrad hasAux, backward throws", () => valueAndGrad(withAux, { hasAux: true })(x)],
    ["grad hasAux, backward throws", () => grad(withAux, { hasAux: true })(x)],
    ["forward throws", () => valueAndGrad(forwardThrows)(x)],
    ["non-scalar value", () => grad((a: Tensor) => a.mul(2))(x)],
    ["integer value", () => grad((a: Tensor) => a.sum().astype("int32"))(x)],
    ["hasAux not a pair", () => grad((a: Tensor) => a.sum(), { hasAux: true })(x)],
    ["a number", () =>
      grad((a: Tensor) => {
        a.mul(3);
        return 1;
      })(x)],
    ["vjp, output not a tensor", () => vjp((a: Tensor) => [a.exp(), "no"], x)],
  ];
  for (const [label, call] of cases) assert.equal(leakOf(call), 0, label);
  // Inside an outer transform the inner failure is released with the outer call.
  const before = memoryStats().liveTensors;
  const outer = grad((a: Tensor) => {
    assert.throws(() => grad(disposesOwn)(a));
    return a.mul(a).sum();
  })(x);
  assert.equal(memoryStats().liveTensors - before, 1, "only the outer gradient");
  outer.dispose();
  x.dispose();
});

testBoth(
  "valueAndGrad leaks nothing when debugNans fires in the backward pass",
  async (backend) => {
    const x = tensor([0, 1]);
    const before = memoryStats().liveTensors;
    debugNans(true);
    try {
      for (let i = 0; i < 3; i++) {
        // sqrt(0) is finite; its gradient 1/(2·sqrt(0)) is not.
        try {
          const [value, g] = valueAndGrad((a: Tensor) => [a.sqrt().sum(), a.mul(2)], {
            hasAux: true,
          })(x);
          // WebGPU checks on the device: the call returns, and the next read throws.
          assert.equal(backend, "webgpu", "the CPU backend throws in the backward pass");
          value[0].dispose();
          (value[1] as Tensor).dispose();
          g.dispose();
        } catch (err) {
          assert.equal((err as Error).name, "NonFiniteError");
        }
      }
      await sync().catch((err) => assert.equal(err.name, "NonFiniteError"));
    } finally {
      debugNans(false);
    }
    assert.equal(memoryStats().liveTensors - before, 0);
    x.dispose();
  },
);

// ---- 9: refused promises never crash the process later ----------------------------------------

/** Runs `body`, then lets several ticks pass, and returns the unhandled rejections seen. */
async function unhandledDuring(body: () => void): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    seen.push(e.reason);
  };
  globalThis.addEventListener("unhandledrejection", listener);
  // The listener stays while the ticks pass even if the body fails, so a
  // dropped promise fails this test rather than crash the test runner.
  let failure: unknown = null;
  try {
    body();
  } catch (err) {
    failure = err;
  }
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 1));
  globalThis.removeEventListener("unhandledrejection", listener);
  if (failure) throw failure;
  return seen;
}

testBoth("grad, valueAndGrad and vjp refuse async functions without a later crash", async () => {
  const x = tensor([1, 2]);
  // deno-lint-ignore require-await
  const rejectsNow = async (_a: Tensor): Promise<Tensor> => {
    throw new Error("rejected at once");
  };
  const rejectsLater = async (a: Tensor): Promise<Tensor> => {
    await null;
    await new Promise((resolve) => setTimeout(resolve, 0));
    throw new Error(`rejected later ${a.shape}`);
  };
  const before = memoryStats().liveTensors;
  for (const fn of [rejectsNow, rejectsLater]) {
    const seen = await unhandledDuring(() => {
      for (
        const [op, call] of [
          ["grad", () => grad(fn as never)(x)],
          ["valueAndGrad", () => valueAndGrad(fn as never)(x)],
          ["grad", () => grad(fn as never, { hasAux: true })(x)],
          ["vjp", () => vjp(fn, x)],
        ] as const
      ) {
        assert.throws(
          call,
          (e: Error) =>
            e instanceof TypeError &&
            e.message.startsWith(
              `${op}: the function returned a Promise, not a Tensor; ${op} only works`,
            ),
        );
      }
    });
    assert.deepEqual(seen, [], `${fn.name}: no unhandled rejection`);
  }
  // A promise inside the returned tree, as an argument, or as a cotangent is refused too.
  const seen = await unhandledDuring(() => {
    assert.throws(
      () => grad((_a: Tensor) => [Promise.reject(new Error("value")), 1], { hasAux: true })(x),
      TypeError,
    );
    assert.throws(() => vjp((a: Tensor) => ({ y: a, p: Promise.reject(new Error("p")) }), x));
    assert.throws(() => grad((a: Tensor) => a.sum())(Promise.reject(new Error("arg")) as never));
    assert.throws(() => grad(Promise.reject(new Error("fn")) as never)(x), TypeError);
    assert.throws(() => tensor(Promise.reject(new Error("data")) as never), TypeError);
    assert.throws(() => random.normal(Promise.reject(new Error("key")) as never, [2]), TypeError);
    const [y, pullback] = vjp((a: Tensor) => a.mul(2), x);
    assert.throws(() => pullback(Promise.reject(new Error("cotangent")) as never), TypeError);
    pullback.dispose();
    y.dispose();
  });
  assert.deepEqual(seen, [], "no unhandled rejection");
  assert.equal(memoryStats().liveTensors - before, 0, "no leak");
  x.dispose();
});

// ---- 10: sizes are checked before anything is allocated ---------------------------------------

/** Asserts `call` throws a RangeError whose message starts with `prefix` and names the limit. */
function refusedTooBig(call: () => unknown, prefix: string): void {
  const backend = resolveBackend();
  assert.throws(call, (e: Error) => {
    assert.ok(e instanceof RangeError, `${prefix}: ${e}`);
    assert.ok(e.message.startsWith(prefix), e.message);
    assert.match(
      e.message,
      new RegExp(
        `more than the ${backend.name} backend can hold in one tensor \\(${backend.maxElements} values`,
      ),
    );
    return true;
  });
}

testBoth("every creation function refuses a size over the backend's limit at once", () => {
  const n = resolveBackend().maxElements + 1;
  const k = random.key(0);
  refusedTooBig(() => arange(1e12), "arange: shape [1000000000000] has 1000000000000 elements");
  refusedTooBig(() => arange(2e9), "arange: shape [2000000000] has 2000000000 elements");
  refusedTooBig(() => arange(0, n / 2, 0.5), `arange: shape [${n}]`);
  refusedTooBig(() => zeros([n]), `zeros: shape [${n}]`);
  refusedTooBig(() => ones([2, n]), `ones: shape [2,${n}]`);
  refusedTooBig(() => full([n], 3), `full: shape [${n}]`);
  refusedTooBig(() => tensor({ length: n } as never), `tensor: shape [${n}]`);
  // Shape inference sees the size before a value is copied (one row, shared).
  const row = new Array(32769).fill(0);
  refusedTooBig(
    () => tensor(new Array(65536).fill(row)),
    "tensor: shape [65536,32769] has 2147549184 elements",
  );
  refusedTooBig(() => randomNormal([n]), `randomNormal: shape [${n}]`);
  refusedTooBig(() => randomUniform([n], { seed: 3 }), `randomUniform: shape [${n}]`);
  refusedTooBig(() => random.normal(k, [n]), `random.normal: shape [${n}]`);
  refusedTooBig(() => random.uniform(k, [1, n]), `random.uniform: shape [1,${n}]`);
  refusedTooBig(() => random.bernoulli(k, 0.5, [n]), `random.bernoulli: shape [${n}]`);
  refusedTooBig(() => initializers.glorotNormal()(k, [n, 1]), `random.normal: shape [${n},1]`);
  refusedTooBig(() => initializers.heUniform()(k, [n, 1]), `random.uniform: shape [${n},1]`);
  refusedTooBig(() => initializers.zeros(k, [n]), `full: shape [${n}]`);
  // The WebGPU limit of the issue (33554432 values on llvmpipe) is below 4e7.
  if (resolveBackend().maxElements < 4e7) {
    refusedTooBig(() => random.normal(k, [40_000_000]), "random.normal: shape [40000000]");
  }
});

Deno.test("host-only random results are limited to 2^30 values", () => {
  const k = random.key(0);
  assert.throws(() => random.bits(k, 2 ** 30 + 1), /^RangeError: random.bits: count must be/);
  assert.throws(
    () => random.permutation(k, 2 ** 30 + 1),
    /^RangeError: random.permutation: n must be an integer in \[0, 1073741824\]/,
  );
  assert.equal(resolveBackend("cpu").maxElements, 2 ** 30);
});

// ---- 13: tensor() refuses non-numeric array-likes ---------------------------------------------

testBoth("tensor refuses array-likes whose elements are not numbers", async () => {
  const refused = (data: unknown, message: RegExp) =>
    assert.throws(() => tensor(data as never), (e: Error) => {
      assert.ok(e instanceof TypeError, String(e));
      assert.match(e.message, message);
      return true;
    });
  refused({ length: 2 }, /^tensor: element 0 of the array-like Object is undefined/);
  refused({ 0: "a", length: 1 }, /^tensor: element 0 of the array-like Object is string \(a\)/);
  refused({ 0: 1, 1: null, length: 2 }, /^tensor: element 1 of the array-like Object is null/);
  refused(new String("ab"), /^tensor: expected a number, .* got a String object \("ab"\)/);
  refused({ length: -1 }, /^tensor: an array-like Object needs a non-negative integer length/);
  refused({ length: "2" }, /needs a non-negative integer length, got string \(2\)/);
  refused(new DataView(new ArrayBuffer(8)), /^tensor: a DataView holds no numbers/);
  refused(new BigInt64Array(2), /^tensor: a BigInt64Array holds no numbers/);
  // What was accepted stays accepted.
  assert.deepEqual(await tensor({ 0: 1, 1: 2.5, length: 2 } as never).array(), [1, 2.5]);
  assert.deepEqual(await tensor({ 0: true, 1: 0, length: 2 } as never).array(), [1, 0]);
  assert.deepEqual(
    await tensor({ 0: 1, 1: 2, 2: 3, 3: 4, length: 4 } as never, { shape: [2, 2] }).array(),
    [[1, 2], [3, 4]],
  );
  const ints = tensor(new Int32Array([1, 2]));
  assert.equal(ints.dtype, "int32");
  assert.equal(tensor([true, false]).dtype, "bool");
  assert.deepEqual(await tensor(new Uint8Array([3, 4])).array(), [3, 4]);
});

testBoth(
  "creation functions refuse options that are not an object (a shape or dtype there)",
  async () => {
    const refused = (f: () => unknown, message: RegExp) =>
      assert.throws(f, (e: Error) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(e.message, message);
        return true;
      });
    // The shape as the second argument was ignored: a flat [4] tensor came back.
    refused(
      () => tensor([1, 2, 3, 4], [2, 2] as never),
      /^tensor: options must be an object .* got the array \[2,2\]; for a shape write tensor\(data, \{ shape: \[2,2\] \}\)$/,
    );
    refused(() => tensor(new Float32Array(4), null as never), /^tensor: options .* got null$/);
    refused(
      () => zeros([2], "int32" as never),
      /^zeros: .* for a dtype write \{ dtype: "int32" \}$/,
    );
    refused(() => ones([2], [3] as never), /^ones: .* the shape goes before the options$/);
    refused(
      () => random.uniform(random.key(0), [2], "float16" as never),
      /^random\.uniform: .* "float16"/,
    );
    refused(
      () => random.normal(random.key(0), [2], [3] as never),
      /^random\.normal: .* the array \[3\]/,
    );
    refused(
      () => full([2], 1, 5 as never),
      /^full: options must be an object .* got number \(5\)$/,
    );
    refused(() => arange(3, undefined, 1, "int32" as never), /^arange: .* \{ dtype: "int32" \}$/);
    refused(() => randomNormal([2], [1] as never), /^randomNormal: .* got the array \[1\]/);
    refused(() => randomUniform([2], "x" as never), /^randomUniform: options/);
    // Objects, and no options at all, are taken as before.
    assert.deepEqual(await tensor([1, 2, 3, 4], { shape: [2, 2] }).array(), [[1, 2], [3, 4]]);
    assert.deepEqual(await tensor([1, 2], undefined).array(), [1, 2]);
    assert.equal(zeros([2], { dtype: "int32" }).dtype, "int32");
  },
);

// ---- 14: one seeded generator ------------------------------------------------------------------

testBoth(
  "randomNormal and randomUniform draw random.*'s values from random.key(seed)",
  async () => {
    for (const seed of [0, 1, 7, 2 ** 32, 2 ** 40 + 3]) {
      const k = random.key(seed);
      assert.deepEqual(
        await randomNormal([5], { seed, mean: 1, std: 2 }).data(),
        await random.normal(k, [5], { mean: 1, std: 2 }).data(),
        `normal, seed ${seed}`,
      );
      assert.deepEqual(
        await randomUniform([2, 3], { seed, low: -1, high: 3 }).data(),
        await random.uniform(k, [2, 3], { low: -1, high: 3 }).data(),
        `uniform, seed ${seed}`,
      );
    }
    // No seed means seed 0.
    assert.deepEqual(
      await randomNormal([4]).data(),
      await random.normal(random.key(0), [4]).data(),
    );
    // Seeds that used to alias now differ.
    const values = async (seed: number) => Array.from(await randomNormal([6], { seed }).data());
    assert.notDeepEqual(await values(0), await values(2 ** 32));
    assert.notDeepEqual(await values(1), await values(2));
    // float16 rounds the same draws.
    const half = randomNormal([4], { seed: 3, dtype: "float16" });
    assert.equal(half.dtype, "float16");
    assertClose(await half.data(), await random.normal(random.key(3), [4]).data(), {
      rtol: 1e-3,
      atol: 1e-3,
    });
  },
);

Deno.test("randomNormal and randomUniform give the same values on every backend", async () => {
  const normals = await randomNormal([3, 4], { seed: 11, backend: "cpu" }).data();
  const uniforms = await randomUniform([3, 4], { seed: 11, backend: "cpu" }).data();
  assert.notDeepEqual(Array.from(normals), Array.from(uniforms));
  for (const backend of availableBackends()) {
    assert.deepEqual(await randomNormal([3, 4], { seed: 11, backend }).data(), normals, backend);
    assert.deepEqual(await randomUniform([3, 4], { seed: 11, backend }).data(), uniforms, backend);
  }
});

Deno.test("randomNormal and randomUniform refuse the seeds random.key refuses", () => {
  for (const op of [randomNormal, randomUniform]) {
    const name = op.name;
    for (const seed of [-0.5, -1, 1.5, 2 ** 53, NaN, Infinity]) {
      assert.throws(
        () => op([2], { seed }),
        (e: Error) =>
          e instanceof RangeError &&
          e.message === `${name}: seed must be a non-negative safe integer, got ${seed}`,
        `${name} seed ${seed}`,
      );
      assert.throws(() => random.key(seed), RangeError);
    }
    for (const seed of ["x", "1", null, 1n]) {
      assert.throws(
        () => op([2], { seed: seed as never }),
        (e: Error) =>
          e instanceof TypeError && e.message.startsWith(`${name}: seed must be a non-negative`),
        `${name} seed ${String(seed)}`,
      );
      assert.throws(() => random.key(seed as never), TypeError);
    }
  }
  assert.throws(() => randomUniform([2], { low: 1, high: 0 }), /^RangeError: randomUniform: need/);
  assert.throws(() => randomNormal([2], { std: -1 }), /^RangeError: randomNormal: need/);
});

Deno.test("checkGrads' direction generator is the Threefry stream of random.key(seed)", async () => {
  const next = generator(5);
  const expected = await random.uniform(random.key(5), [6], { backend: "cpu" }).data();
  assert.deepEqual(Array.from({ length: 6 }, next), Array.from(expected));
});
