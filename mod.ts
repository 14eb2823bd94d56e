/**
 * littlegrad: a small, fast, honest autograd library for Deno, on WebGPU.
 *
 * Tensors live on the GPU (WebGPU, built into Deno) or on a CPU reference
 * backend with the same semantics. `grad` traces a pure function into a tape
 * and replays it in reverse; `sgd` returns new parameters. No tensor has a
 * mutable `.grad`.
 *
 * For training: `nn` (layers as pure functions over parameter pytrees),
 * `initializers`, `random` (JAX-style PRNG keys), `optim` (optax-style
 * optimizers, clipping, schedules), safetensors checkpoints
 * (`saveSafetensors`, `loadSafetensors`) and `toDot` (the traced graph as
 * Graphviz DOT).
 *
 * @example
 * ```ts
 * import { sgd, tensor, Tensor, valueAndGrad } from "littlegrad";
 *
 * const loss = (p: { w: Tensor; b: Tensor }, x: Tensor, y: Tensor) =>
 *   x.matmul(p.w).add(p.b).tanh().sub(y).pow(2).mean();
 *
 * const x = tensor([[0, 1], [1, 0], [1, 1], [0, 0]]);
 * const y = tensor([[1], [-1], [0], [0]]);
 * let params = { w: tensor([[0.1], [-0.2]]), b: tensor([0]) };
 * const step = valueAndGrad(loss); // differentiates argument 0
 * for (let i = 0; i < 100; i++) {
 *   const [value, grads] = step(params, x, y);
 *   const next = sgd(params, grads, { lr: 0.5 });
 *   if (i % 50 === 0) console.log(await value.item());
 *   for (const t of [value, params.w, params.b, grads.w, grads.b]) t.dispose();
 *   params = next;
 * }
 * ```
 * @module
 */

export { type NestedArray, Tensor } from "./src/tensor.ts";
export { tidy } from "./src/core/scope.ts";
export { debugNans, NonFiniteError } from "./src/core/debug_nans.ts";
export {
  arange,
  type CreateOptions,
  full,
  ones,
  randomNormal,
  type RandomOptions,
  randomUniform,
  tensor,
  type TensorOptions,
  zeros,
} from "./src/creation.ts";
export {
  abs,
  add,
  astype,
  ceil,
  clip,
  cos,
  div,
  eq,
  exp,
  expm1,
  floor,
  floorDiv,
  ge,
  gelu,
  gt,
  le,
  leakyRelu,
  log,
  log1p,
  lt,
  maximum,
  minimum,
  mod,
  mul,
  ne,
  neg,
  pow,
  relu,
  round,
  sigmoid,
  sign,
  sin,
  softplus,
  sqrt,
  square,
  sub,
  tanh,
  where,
} from "./src/ops/elementwise.ts";
export {
  argmax,
  argmin,
  type Axis,
  cumprod,
  cumsum,
  logSoftmax,
  logsumexp,
  max,
  mean,
  min,
  prod,
  type ReduceOptions,
  softmax,
  std,
  sum,
  variance,
} from "./src/ops/reduce.ts";
export {
  broadcastTo,
  concat,
  expandDims,
  flatten,
  pad,
  reshape,
  split,
  squeeze,
  stack,
  stopGradient,
  transpose,
} from "./src/ops/movement.ts";
export { oneHot, take } from "./src/ops/indexing.ts";
export { matmul } from "./src/ops/linalg.ts";
export type { Index } from "./src/ops/_indexing.ts";
export type { BinaryFn, NestedValues, TensorLike } from "./src/ops/_lift.ts";
export { mse, softmaxCrossEntropy } from "./src/losses.ts";
export {
  avgPool2d,
  conv2d,
  type Conv2dOptions,
  maxPool2d,
  type Pool2dOptions,
  type Size2,
} from "./src/conv.ts";
export {
  type AuxOf,
  grad,
  type GradOptions,
  type GradsOf,
  type Pullback,
  valueAndGrad,
  type ValueOf,
  vjp,
} from "./src/transforms.ts";
export { vmap, type VmapOptions } from "./src/vmap.ts";
export { jit, type JitOptions, type JitStats, type Jitted, type Lowered } from "./src/jit.ts";
export {
  checkpoint,
  customVjp,
  type CustomVjpOptions,
  type CustomVjpRules,
  straightThrough,
} from "./src/custom.ts";
export {
  makeTrace,
  printTrace,
  type SpecsOf,
  type TensorSpec,
  type Trace,
  type TraceConstant,
  type TraceEquation,
  type TraceRegion,
  type TraceValue,
} from "./src/staging.ts";
export { hessian, hvp, jacfwd, type JacobianOptions, jacrev, jvp } from "./src/jvp.ts";
export { sgd, type SgdOptions } from "./src/optim.ts";
export * as optim from "./src/optimizers.ts";
export * as random from "./src/random.ts";
export * as initializers from "./src/initializers.ts";
export * as nn from "./src/layers.ts";
export {
  loadSafetensors,
  loadSafetensorsFile,
  type LoadSafetensorsOptions,
  readSafetensorsHeader,
  type SafetensorsEntry,
  SafetensorsError,
  type SafetensorsHeader,
  saveSafetensors,
  saveSafetensorsFile,
  type SaveSafetensorsOptions,
} from "./src/safetensors.ts";
export { toDot, type ToDotOptions } from "./src/dot.ts";
export {
  checkGrads,
  type CheckGradsOptions,
  GradCheckError,
  type GradCheckFailure,
  type GradCheckKink,
  type GradCheckReport,
} from "./src/check_grads.ts";
export {
  disposeTree,
  flattenTree,
  type Leaf,
  type Tree,
  treeMap,
  treeTensors,
} from "./src/tree.ts";
export { type MemoryStats, memoryStats, resetPeakMemory, sync, trimMemory } from "./src/memory.ts";
export {
  availableBackends,
  type BackendInfo,
  backendInfo,
  type BackendName,
  deviceReady,
  useBackend,
  type UseBackendOptions,
} from "./src/backends.ts";
export { type DType, DTYPES, type HostArray, promoteTypes } from "./src/dtype.ts";
export type { Shape } from "./src/shape.ts";
export type { CustomStep, Equation, Tape } from "./src/tape.ts";
export { type Prim, type PrimParams, type PrimParamsMap, PRIMS } from "./src/primitives.ts";
export type { BinaryOp, ReduceOp, TernaryOp, UnaryOp } from "./src/backend.ts";
