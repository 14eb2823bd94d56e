/**
 * `makeTrace`: tracing from shapes alone. Checked against references
 * computed without it: the trace replayed eagerly equals the function run
 * eagerly, and errors equal the eager errors. The pool's counters show that
 * tracing launches nothing and allocates nothing; golden tests pin the
 * printed traces of an MLP loss, its gradient, a training step, a conv net
 * and a function of integer and boolean values.
 * @module
 */

import assert from "node:assert/strict";
import {
  concat,
  conv2d,
  grad,
  jvp,
  makeTrace,
  maxPool2d,
  memoryStats,
  printTrace,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  valueAndGrad,
  where,
} from "../mod.ts";
import { evalTrace } from "../src/staging.ts";
import { resolveBackend } from "../src/backends.ts";
import { assertClose, testBoth } from "./_helpers.ts";

const release = (...ts: Tensor[]) => ts.forEach((t) => t.dispose());

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

const mlpLoss = (p: Params, x: Tensor, labels: Tensor) =>
  softmaxCrossEntropy(x.matmul(p.w1).add(p.b1).relu().matmul(p.w2).add(p.b2), labels);

const trainStep = (p: Params, x: Tensor, labels: Tensor) => {
  const [loss, grads] = valueAndGrad(mlpLoss)(p, x, labels);
  return { loss, params: sgd(p, grads, { lr: 0.1 }) };
};

const convNet = (x: Tensor, w: Tensor) => maxPool2d(conv2d(x, w).relu(), 2).sum();

const intsAndBools = (a: Tensor, mask: Tensor) =>
  where(mask.logicalAnd(a.gt(0)), a.mul(2), a.floorDiv(2)).sum();

const PARAM_SPECS = {
  w1: { shape: [4, 3] },
  b1: { shape: [3] },
  w2: { shape: [3, 2] },
  b2: { shape: [2] },
};
const X_SPEC = { shape: [5, 4] };
const LABEL_SPEC = { shape: [5], dtype: "int32" as const };

/** Concrete arguments of the specs' shapes. */
function mlpArgs(): [Params, Tensor, Tensor] {
  const grid = (rows: number, cols: number, scale: number) =>
    tensor(
      Array.from(
        { length: rows },
        (_, i) => Array.from({ length: cols }, (_, j) => Math.sin(1 + i * cols + j) * scale),
      ),
    );
  return [
    {
      w1: grid(4, 3, 0.8),
      b1: tensor([0.1, -0.2, 0.05]),
      w2: grid(3, 2, 0.7),
      b2: tensor([0.02, -0.03]),
    },
    grid(5, 4, 1),
    tensor([0, 1, 1, 0, 1], { dtype: "int32" }),
  ];
}

/** The pool's counters that any kernel or buffer would move. */
function counters(): Record<string, number> {
  const backend = resolveBackend();
  const stats = (backend as unknown as { stats?: Record<string, number> }).stats ?? {};
  return { ...stats, ...backend.memory(), liveTensors: memoryStats().liveTensors };
}

testBoth("makeTrace of an MLP training step runs nothing and allocates nothing", () => {
  const before = counters();
  const trace = makeTrace(trainStep, PARAM_SPECS, X_SPEC, LABEL_SPEC);
  assert.deepEqual(counters(), before, "tracing moved a pool counter");
  // The whole step: two matmuls forward, three backward (dW2, dh, dW1: no dx).
  assert.equal(trace.equations.filter((e) => e.prim === "matmul").length, 2 + 3);
  assert.deepEqual(trace.outputPaths, ["loss", "params.w1", "params.b1", "params.w2", "params.b2"]);
  assert.deepEqual(trace.outputs.map((v) => v.shape), [[], [4, 3], [3], [3, 2], [2]]);
  assert.deepEqual(trace.inputPaths, ["0.w1", "0.b1", "0.w2", "0.b2", "1", "2"]);
  assert.equal(trace.backend, resolveBackend().name);
  assert.equal(String(trace), GOLDEN_STEP);
});

testBoth("makeTrace: the trace replayed eagerly equals the function run eagerly", async () => {
  const [p, x, labels] = mlpArgs();
  const trace = makeTrace(trainStep, p, x, labels);
  const replayed = evalTrace(trace, [p.w1, p.b1, p.w2, p.b2, x, labels]);
  const eager = trainStep(p, x, labels);
  const expected = [eager.loss, eager.params.w1, eager.params.b1, eager.params.w2, eager.params.b2];
  assert.equal(replayed.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(replayed[i].shape, expected[i].shape);
    assertClose(await replayed[i].data(), await expected[i].data(), {
      atol: 1e-6,
      label: trace.outputPaths[i],
    });
  }
  release(...replayed, ...expected, p.w1, p.b1, p.w2, p.b2, x, labels);
});

testBoth("makeTrace takes tensors or specs alike and leaks nothing", () => {
  const [p, x, labels] = mlpArgs();
  const live = memoryStats().liveTensors;
  assert.equal(
    String(makeTrace(mlpLoss, p, x, labels)),
    String(makeTrace(mlpLoss, PARAM_SPECS, X_SPEC, LABEL_SPEC)),
  );
  assert.equal(memoryStats().liveTensors, live, "makeTrace leaked tensors");
  assert.ok(!x.disposed && !p.w1.disposed, "makeTrace disposed an argument");
  release(p.w1, p.b1, p.w2, p.b2, x, labels);
});

testBoth("golden trace: an MLP loss", () => {
  assert.equal(printTrace(mlpLoss, PARAM_SPECS, X_SPEC, LABEL_SPEC), GOLDEN_LOSS);
});

testBoth("golden trace: the gradient of an MLP loss", () => {
  assert.equal(printTrace(grad(mlpLoss), PARAM_SPECS, X_SPEC, LABEL_SPEC), GOLDEN_GRAD);
});

testBoth("golden trace: a conv net", () => {
  assert.equal(
    printTrace(convNet, { shape: [1, 1, 3, 3] }, { shape: [2, 1, 2, 2] }),
    GOLDEN_CONV,
  );
});

testBoth("golden trace: integer and boolean values", () => {
  assert.equal(
    printTrace(intsAndBools, { shape: [3], dtype: "int32" }, { shape: [3], dtype: "bool" }),
    GOLDEN_INTS,
  );
});

testBoth("makeTrace: forward mode traces through as well", () => {
  const trace = makeTrace(
    (x: Tensor, v: Tensor) => jvp((y: Tensor) => y.sin(), [x], [v])[1],
    { shape: [3] },
    { shape: [3] },
  );
  // The input's alias (jvp's own), sin, and the tangent cos(x)·v.
  assert.deepEqual(trace.equations.map((e) => e.prim), ["reshape", "sin", "cos", "mul"]);
});

testBoth("makeTrace: shape errors are the eager errors, naming the user's op", () => {
  const cases: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ["matmul", (a, b) => a.matmul(b)],
    ["add", (a, b) => a.add(b)],
    ["reshape", (a) => a.reshape([7])],
    ["concat", (a, b) => concat([a, b], 0)],
    ["softmaxCrossEntropy", (a) => softmaxCrossEntropy(a, [0, 5])],
  ];
  const [a, b] = [tensor([[1, 2, 3], [4, 5, 6]]), tensor([[1, 2], [3, 4]])];
  for (const [what, fn] of cases) {
    const eager = (() => {
      try {
        release(fn(a, b));
      } catch (err) {
        return err as Error;
      }
      assert.fail(`${what}: expected the eager call to fail`);
    })();
    assert.match(eager.message, new RegExp(`^${what}: `));
    assert.throws(
      () => makeTrace(fn, { shape: [2, 3] }, { shape: [2, 2] }),
      (err: Error) => err.constructor === eager.constructor && err.message === eager.message,
      `${what}: the traced error differs from the eager one (${eager.message})`,
    );
  }
  release(a, b);
});

testBoth("makeTrace refuses to read values, naming the read", () => {
  assert.throws(
    () =>
      makeTrace((x: Tensor) => {
        void x.data();
        return x;
      }, { shape: [2] }),
    (err: Error) =>
      err instanceof TypeError && /^data: tensor %\d+ \(shape \[2\]\) is a traced value/.test(
        err.message,
      ) && /read it outside the traced function/.test(err.message),
  );
  assert.throws(
    () => makeTrace(async (x: Tensor) => x.add(await x.sum().item()), { shape: [2] }),
    /makeTrace: the function returned a Promise.*traced value/,
  );
});

testBoth("makeTrace: captured tensors and created data are constants", () => {
  const scale = tensor([2, 3]);
  const trace = makeTrace((x: Tensor) => x.mul(scale).add(tensor([1, 1])), { shape: [2] });
  assert.equal(trace.constants.length, 2);
  assert.equal(trace.constants[0].data, scale, "a captured tensor is held by reference");
  assert.deepEqual(Array.from(trace.constants[1].data as Float32Array), [1, 1]);
  assert.ok(
    String(trace).includes("%1:f32[2] = const captured\n  %2:f32[2] = const [1.0, 1.0]"),
    String(trace),
  );
  assert.ok(!scale.disposed);
  release(scale);
});

testBoth("a traced value used after its trace is a clear error", () => {
  let leaked: Tensor | undefined;
  makeTrace((x: Tensor) => (leaked = x.exp()), { shape: [2] });
  assert.throws(
    () => leaked!.add(1),
    (err: Error) =>
      err instanceof ReferenceError &&
      /^add: tensor %\d+ \(shape \[2\]\) is a traced value from makeTrace or jit .* used after its trace ended/
        .test(err.message),
  );
});

testBoth("makeTrace refuses bad specs and non-tensor outputs", () => {
  assert.throws(() => makeTrace((x: Tensor) => x, { shape: [2, -1] }), /makeTrace: argument 0/);
  assert.throws(
    () => makeTrace((x: Tensor) => x, { shape: [2], dtype: "float64" as "float32" }),
    /makeTrace: argument 0.*float64/,
  );
  assert.throws(
    () => makeTrace((x: Tensor) => ({ y: x, n: 3 }), { shape: [2] }),
    /makeTrace: output n is number \(3\); a traced function returns tensors/,
  );
});

const GOLDEN_LOSS = `{ lambda %0:f32[4,3] %1:f32[3] %2:f32[3,2] %3:f32[2] %4:f32[5,4] %5:i32[5] .
  %6:i32[2] = const [0, 1]
  %7:f32[5,3] = matmul %4 %0
  %8:f32[5,3] = broadcast[shape=[5,3]] %1
  %9:f32[5,3] = add %7 %8
  %10:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %11:bool[5,3] = le %9 %10
  %12:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %13:f32[5,3] = where %11 %12 %9
  %14:f32[5,2] = matmul %13 %2
  %15:f32[5,2] = broadcast[shape=[5,2]] %3
  %16:f32[5,2] = add %14 %15
  %17:i32[5] = reshape[shape=[5]] %5
  %18:i32[5] = reshape[shape=[5]] %17
  %19:i32[5,1] = reshape[shape=[5,1]] %18
  %20:i32[5,2] = broadcast[shape=[5,2]] %19
  %21:i32[5,2] = broadcast[shape=[5,2]] %6
  %22:bool[5,2] = eq %20 %21
  %23:f32[5,2] = convert[dtype=float32] %22
  %24:f32[5] = max[axes=[1]] %16
  %25:f32[5,1] = reshape[shape=[5,1]] %24
  %26:f32[5,1] = stopGradient %25
  %27:f32[5,2] = broadcast[shape=[5,2]] %26
  %28:f32[5,2] = sub %16 %27
  %29:f32[5,2] = exp %28
  %30:f32[5] = sum[axes=[1]] %29
  %31:f32[5,1] = reshape[shape=[5,1]] %30
  %32:f32[5,1] = log %31
  %33:f32[5,2] = broadcast[shape=[5,2]] %32
  %34:f32[5,2] = sub %28 %33
  %35:f32[5,2] = mul %23 %34
  %36:f32[5] = sum[axes=[1]] %35
  %37:f32[] = sum[axes=[0]] %36
  %38:f32[] = div %37 5.0:f32
  %39:f32[] = neg %38
  in ( %39 ) }`;
const GOLDEN_GRAD = `{ lambda %0:f32[4,3] %1:f32[3] %2:f32[3,2] %3:f32[2] %4:f32[5,4] %5:i32[5] .
  %6:i32[2] = const [0, 1]
  %7:f32[4,3] = reshape[shape=[4,3]] %0
  %8:f32[3] = reshape[shape=[3]] %1
  %9:f32[3,2] = reshape[shape=[3,2]] %2
  %10:f32[2] = reshape[shape=[2]] %3
  %11:f32[5,3] = matmul %4 %7
  %12:f32[5,3] = broadcast[shape=[5,3]] %8
  %13:f32[5,3] = add %11 %12
  %14:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %15:bool[5,3] = le %13 %14
  %16:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %17:f32[5,3] = where %15 %16 %13
  %18:f32[5,2] = matmul %17 %9
  %19:f32[5,2] = broadcast[shape=[5,2]] %10
  %20:f32[5,2] = add %18 %19
  %21:i32[5] = reshape[shape=[5]] %5
  %22:i32[5] = reshape[shape=[5]] %21
  %23:i32[5,1] = reshape[shape=[5,1]] %22
  %24:i32[5,2] = broadcast[shape=[5,2]] %23
  %25:i32[5,2] = broadcast[shape=[5,2]] %6
  %26:bool[5,2] = eq %24 %25
  %27:f32[5,2] = convert[dtype=float32] %26
  %28:f32[5] = max[axes=[1]] %20
  %29:f32[5,1] = reshape[shape=[5,1]] %28
  %30:f32[5,1] = stopGradient %29
  %31:f32[5,2] = broadcast[shape=[5,2]] %30
  %32:f32[5,2] = sub %20 %31
  %33:f32[5,2] = exp %32
  %34:f32[5] = sum[axes=[1]] %33
  %35:f32[5,1] = reshape[shape=[5,1]] %34
  %36:f32[5,1] = log %35
  %37:f32[5,2] = broadcast[shape=[5,2]] %36
  %38:f32[5,2] = sub %32 %37
  %39:f32[5,2] = mul %27 %38
  %40:f32[5] = sum[axes=[1]] %39
  %41:f32[] = sum[axes=[0]] %40
  %42:f32[] = div %41 5.0:f32
  %43:f32[] = neg %42
  %44:f32[] = neg 1.0:f32
  %45:f32[] = div %44 5.0:f32
  %46:f32[1] = reshape[shape=[1]] %45
  %47:f32[5] = broadcast[shape=[5]] %46
  %48:f32[5,1] = reshape[shape=[5,1]] %47
  %49:f32[5,2] = broadcast[shape=[5,2]] %48
  %50:f32[5,2] = mul %49 %27
  %51:f32[5,2] = neg %50
  %52:f32[5] = sum[axes=[1]] %51
  %53:f32[5,1] = reshape[shape=[5,1]] %52
  %54:f32[5,1] = div %53 %35
  %55:f32[5] = reshape[shape=[5]] %54
  %56:f32[5,1] = reshape[shape=[5,1]] %55
  %57:f32[5,2] = broadcast[shape=[5,2]] %56
  %58:f32[5,2] = mul %57 %33
  %59:f32[5,2] = add %50 %58
  %60:f32[2] = sum[axes=[0]] %59
  %61:f32[2] = reshape[shape=[2]] %60
  %62:f32[2,3] = transpose[perm=[1,0]] %9
  %63:f32[5,3] = matmul %59 %62
  %64:f32[3,5] = transpose[perm=[1,0]] %17
  %65:f32[3,2] = matmul %64 %59
  %66:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %67:f32[5,3] = where %15 %66 %63
  %68:f32[3] = sum[axes=[0]] %67
  %69:f32[3] = reshape[shape=[3]] %68
  %70:f32[4,5] = transpose[perm=[1,0]] %4
  %71:f32[4,3] = matmul %70 %67
  %72:f32[4,3] = reshape[shape=[4,3]] %71
  %73:f32[3] = reshape[shape=[3]] %69
  %74:f32[3,2] = reshape[shape=[3,2]] %65
  %75:f32[2] = reshape[shape=[2]] %61
  in ( %72 %73 %74 %75 ) }`;
const GOLDEN_STEP = `{ lambda %0:f32[4,3] %1:f32[3] %2:f32[3,2] %3:f32[2] %4:f32[5,4] %5:i32[5] .
  %6:i32[2] = const [0, 1]
  %7:f32[4,3] = reshape[shape=[4,3]] %0
  %8:f32[3] = reshape[shape=[3]] %1
  %9:f32[3,2] = reshape[shape=[3,2]] %2
  %10:f32[2] = reshape[shape=[2]] %3
  %11:f32[5,3] = matmul %4 %7
  %12:f32[5,3] = broadcast[shape=[5,3]] %8
  %13:f32[5,3] = add %11 %12
  %14:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %15:bool[5,3] = le %13 %14
  %16:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %17:f32[5,3] = where %15 %16 %13
  %18:f32[5,2] = matmul %17 %9
  %19:f32[5,2] = broadcast[shape=[5,2]] %10
  %20:f32[5,2] = add %18 %19
  %21:i32[5] = reshape[shape=[5]] %5
  %22:i32[5] = reshape[shape=[5]] %21
  %23:i32[5,1] = reshape[shape=[5,1]] %22
  %24:i32[5,2] = broadcast[shape=[5,2]] %23
  %25:i32[5,2] = broadcast[shape=[5,2]] %6
  %26:bool[5,2] = eq %24 %25
  %27:f32[5,2] = convert[dtype=float32] %26
  %28:f32[5] = max[axes=[1]] %20
  %29:f32[5,1] = reshape[shape=[5,1]] %28
  %30:f32[5,1] = stopGradient %29
  %31:f32[5,2] = broadcast[shape=[5,2]] %30
  %32:f32[5,2] = sub %20 %31
  %33:f32[5,2] = exp %32
  %34:f32[5] = sum[axes=[1]] %33
  %35:f32[5,1] = reshape[shape=[5,1]] %34
  %36:f32[5,1] = log %35
  %37:f32[5,2] = broadcast[shape=[5,2]] %36
  %38:f32[5,2] = sub %32 %37
  %39:f32[5,2] = mul %27 %38
  %40:f32[5] = sum[axes=[1]] %39
  %41:f32[] = sum[axes=[0]] %40
  %42:f32[] = div %41 5.0:f32
  %43:f32[] = neg %42
  %44:f32[] = neg 1.0:f32
  %45:f32[] = div %44 5.0:f32
  %46:f32[1] = reshape[shape=[1]] %45
  %47:f32[5] = broadcast[shape=[5]] %46
  %48:f32[5,1] = reshape[shape=[5,1]] %47
  %49:f32[5,2] = broadcast[shape=[5,2]] %48
  %50:f32[5,2] = mul %49 %27
  %51:f32[5,2] = neg %50
  %52:f32[5] = sum[axes=[1]] %51
  %53:f32[5,1] = reshape[shape=[5,1]] %52
  %54:f32[5,1] = div %53 %35
  %55:f32[5] = reshape[shape=[5]] %54
  %56:f32[5,1] = reshape[shape=[5,1]] %55
  %57:f32[5,2] = broadcast[shape=[5,2]] %56
  %58:f32[5,2] = mul %57 %33
  %59:f32[5,2] = add %50 %58
  %60:f32[2] = sum[axes=[0]] %59
  %61:f32[2] = reshape[shape=[2]] %60
  %62:f32[2,3] = transpose[perm=[1,0]] %9
  %63:f32[5,3] = matmul %59 %62
  %64:f32[3,5] = transpose[perm=[1,0]] %17
  %65:f32[3,2] = matmul %64 %59
  %66:f32[5,3] = broadcast[shape=[5,3]] 0.0:f32
  %67:f32[5,3] = where %15 %66 %63
  %68:f32[3] = sum[axes=[0]] %67
  %69:f32[3] = reshape[shape=[3]] %68
  %70:f32[4,5] = transpose[perm=[1,0]] %4
  %71:f32[4,3] = matmul %70 %67
  %72:f32[4,3] = reshape[shape=[4,3]] %71
  %73:f32[3] = reshape[shape=[3]] %69
  %74:f32[3,2] = reshape[shape=[3,2]] %65
  %75:f32[2] = reshape[shape=[2]] %61
  %76:f32[4,3] = broadcast[shape=[4,3]] -0.1:f32
  %77:f32[4,3] = mul %72 %76
  %78:f32[3] = broadcast[shape=[3]] -0.1:f32
  %79:f32[3] = mul %73 %78
  %80:f32[3,2] = broadcast[shape=[3,2]] -0.1:f32
  %81:f32[3,2] = mul %74 %80
  %82:f32[2] = broadcast[shape=[2]] -0.1:f32
  %83:f32[2] = mul %75 %82
  %84:f32[4,3] = add %0 %77
  %85:f32[3] = add %1 %79
  %86:f32[3,2] = add %2 %81
  %87:f32[2] = add %3 %83
  in ( %43 %84 %85 %86 %87 ) }`;
const GOLDEN_CONV = `{ lambda %0:f32[1,1,3,3] %1:f32[2,1,2,2] .
  %2:f32[1,1,2,2] = slice[shape=[1,1,2,2] starts=[0,0,0,0] steps=[1,1,1,1]] %0
  %3:f32[1,1,2,2] = reshape[shape=[1,1,2,2]] %2
  %4:f32[1,1,4] = reshape[shape=[1,1,4]] %3
  %5:f32[2,1,1,1] = slice[shape=[2,1,1,1] starts=[0,0,0,0] steps=[1,1,1,1]] %1
  %6:f32[2,1] = reshape[shape=[2,1]] %5
  %7:f32[1,2,1] = broadcast[shape=[1,2,1]] %6
  %8:f32[1,2,4] = matmul %7 %4
  %9:f32[1,1,2,2] = slice[shape=[1,1,2,2] starts=[0,0,0,1] steps=[1,1,1,1]] %0
  %10:f32[1,1,2,2] = reshape[shape=[1,1,2,2]] %9
  %11:f32[1,1,4] = reshape[shape=[1,1,4]] %10
  %12:f32[2,1,1,1] = slice[shape=[2,1,1,1] starts=[0,0,0,1] steps=[1,1,1,1]] %1
  %13:f32[2,1] = reshape[shape=[2,1]] %12
  %14:f32[1,2,1] = broadcast[shape=[1,2,1]] %13
  %15:f32[1,2,4] = matmul %14 %11
  %16:f32[1,2,4] = add %8 %15
  %17:f32[1,1,2,2] = slice[shape=[1,1,2,2] starts=[0,0,1,0] steps=[1,1,1,1]] %0
  %18:f32[1,1,2,2] = reshape[shape=[1,1,2,2]] %17
  %19:f32[1,1,4] = reshape[shape=[1,1,4]] %18
  %20:f32[2,1,1,1] = slice[shape=[2,1,1,1] starts=[0,0,1,0] steps=[1,1,1,1]] %1
  %21:f32[2,1] = reshape[shape=[2,1]] %20
  %22:f32[1,2,1] = broadcast[shape=[1,2,1]] %21
  %23:f32[1,2,4] = matmul %22 %19
  %24:f32[1,2,4] = add %16 %23
  %25:f32[1,1,2,2] = slice[shape=[1,1,2,2] starts=[0,0,1,1] steps=[1,1,1,1]] %0
  %26:f32[1,1,2,2] = reshape[shape=[1,1,2,2]] %25
  %27:f32[1,1,4] = reshape[shape=[1,1,4]] %26
  %28:f32[2,1,1,1] = slice[shape=[2,1,1,1] starts=[0,0,1,1] steps=[1,1,1,1]] %1
  %29:f32[2,1] = reshape[shape=[2,1]] %28
  %30:f32[1,2,1] = broadcast[shape=[1,2,1]] %29
  %31:f32[1,2,4] = matmul %30 %27
  %32:f32[1,2,4] = add %24 %31
  %33:f32[1,2,2,2] = reshape[shape=[1,2,2,2]] %32
  %34:f32[1,2,2,2] = broadcast[shape=[1,2,2,2]] 0.0:f32
  %35:bool[1,2,2,2] = le %33 %34
  %36:f32[1,2,2,2] = broadcast[shape=[1,2,2,2]] 0.0:f32
  %37:f32[1,2,2,2] = where %35 %36 %33
  %38:f32[1,2,1,1] = slice[shape=[1,2,1,1] starts=[0,0,0,0] steps=[1,1,2,2]] %37
  %39:f32[1,2,1,1] = reshape[shape=[1,2,1,1]] %38
  %40:f32[1,2,1,1] = slice[shape=[1,2,1,1] starts=[0,0,0,1] steps=[1,1,2,2]] %37
  %41:f32[1,2,1,1] = reshape[shape=[1,2,1,1]] %40
  %42:f32[1,2,1,1] = maximum %39 %41
  %43:f32[1,2,1,1] = slice[shape=[1,2,1,1] starts=[0,0,1,0] steps=[1,1,2,2]] %37
  %44:f32[1,2,1,1] = reshape[shape=[1,2,1,1]] %43
  %45:f32[1,2,1,1] = maximum %42 %44
  %46:f32[1,2,1,1] = slice[shape=[1,2,1,1] starts=[0,0,1,1] steps=[1,1,2,2]] %37
  %47:f32[1,2,1,1] = reshape[shape=[1,2,1,1]] %46
  %48:f32[1,2,1,1] = maximum %45 %47
  %49:f32[] = sum[axes=[0,1,2,3]] %48
  in ( %49 ) }`;
const GOLDEN_INTS = `{ lambda %0:i32[3] %1:bool[3] .
  %2:i32[3] = broadcast[shape=[3]] 0:i32
  %3:bool[3] = lt %2 %0
  %4:bool[3] = mul %1 %3
  %5:i32[3] = broadcast[shape=[3]] 2:i32
  %6:i32[3] = mul %0 %5
  %7:i32[3] = broadcast[shape=[3]] 2:i32
  %8:i32[3] = floordiv %0 %7
  %9:i32[3] = where %4 %6 %8
  %10:i32[] = sum[axes=[0]] %9
  in ( %10 ) }`;
