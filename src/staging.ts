/**
 * Tracing from shapes alone: `makeTrace` runs a function under a staging
 * evaluator that computes every primitive's output shape and dtype (its
 * abstract-evaluation rule) and records the equation, without running a
 * kernel or allocating a device buffer. The result is the function's IR, a
 * `Trace`: inputs, constants, equations and outputs. `jit` compiles it and
 * `printTrace` prints it.
 * @module
 */

import type { Backend, Storage } from "./backend.ts";
import { checkCapacity } from "./backend.ts";
import { type BackendName, resolveBackend } from "./backends.ts";
import {
  checkDType,
  type DType,
  type HostArray,
  isFloat,
  shortName,
  type WeakKind,
  weakStorageDType,
} from "./dtype.ts";
import { abstractEval } from "./abstract_eval.ts";
import type { Prim, PrimParams } from "./primitives.ts";
import { checkShape, contiguousStrides, type Shape, shapeString } from "./shape.ts";
import type { CustomRule } from "./custom.ts";
import {
  abstractStorages,
  alias,
  apply,
  currentEvaluator,
  type Evaluator,
  hostTensor,
  isolateTrace,
  leakedTracer,
  setEvaluator,
  weakTensors,
} from "./core/interpreter.ts";
import { closeScope, openScope, scoped } from "./core/scope.ts";
import { describe } from "./core/errors.ts";
import { Tensor } from "./tensor.ts";
import { flattenTree, isNode } from "./tree.ts";

/** The shape and dtype of a traced argument, standing in for a tensor. */
export interface TensorSpec {
  /** Size of each axis. */
  readonly shape: Shape;
  /** Element type (default `float32`). */
  readonly dtype?: DType;
  /** Where the traced program would run (default: the current backend). */
  readonly backend?: BackendName;
}

/** One value of a trace: an input, a constant or an equation's output. */
export interface TraceValue {
  /** Position in the trace, from 0 (inputs first). */
  readonly id: number;
  /** Size of each axis. */
  readonly shape: Shape;
  /** Element type. */
  readonly dtype: DType;
}

/** One equation of a trace: `output = prim(...inputs; params)`. */
export interface TraceEquation {
  /** The primitive applied. */
  readonly prim: Prim;
  /** Its operands. */
  readonly inputs: readonly TraceValue[];
  /** The value it defines. */
  readonly output: TraceValue;
  /** Its static parameters. */
  readonly params: PrimParams;
}

/**
 * A value the traced function did not receive as an argument: host data it
 * created (`tensor([...])`, a number operand), or a tensor it captured from
 * the enclosing scope (held by reference, not copied).
 */
export interface TraceConstant {
  /** The value in the trace. */
  readonly value: TraceValue;
  /** The host data, or the captured tensor. */
  readonly data: HostArray | Tensor;
}

/**
 * A call of a function with a custom rule (`customVjp`, `checkpoint`) that
 * ran while the trace was made: the equations `start` to `end` (exclusive)
 * are the function's own. The trace keeps the rule with it, so a transform
 * that replays the trace (`grad` of a `jit`, `vmap` under `grad`) still
 * uses the custom gradient. Compilers see the equations.
 */
export interface TraceRegion {
  /** The function's name, as in errors. */
  readonly name: string;
  /** Index of the region's first equation. */
  readonly start: number;
  /** Index after its last equation. */
  readonly end: number;
  /** The call's tensor arguments. */
  readonly inputs: readonly TraceValue[];
  /** Its tensor results. */
  readonly outputs: readonly TraceValue[];
}

/** @internal What a trace keeps of a region's custom call. */
export interface RegionRule {
  /** The rule, over flat lists of tensors. */
  readonly rule: CustomRule;
  /**
   * The call on new inputs: `body` computes the function itself (from the
   * region's equations), used where no tape needs the rule.
   */
  readonly call: (
    inputs: readonly Tensor[],
    body: (inputs: readonly Tensor[]) => Tensor[],
  ) => Tensor[];
}

const regionRules = new WeakMap<TraceRegion, RegionRule>();

/** The IR of a function traced by `makeTrace`. */
export interface Trace {
  /** The function's tensor arguments, flattened, with their paths (`"0.w"`). */
  readonly inputs: readonly TraceValue[];
  /** Paths of the inputs in the argument list, e.g. `"0.w1"`. */
  readonly inputPaths: readonly string[];
  /** Host data and captured tensors the equations use. */
  readonly constants: readonly TraceConstant[];
  /** Every primitive applied, in execution (topological) order. */
  readonly equations: readonly TraceEquation[];
  /** The calls with custom rules, in the order they finished (see `TraceRegion`). */
  readonly regions: readonly TraceRegion[];
  /** The function's results, flattened. */
  readonly outputs: readonly TraceValue[];
  /** Paths of the outputs in the result tree (`""` for a bare tensor). */
  readonly outputPaths: readonly string[];
  /** The backend the traced program targets. */
  readonly backend: BackendName;
  /**
   * The trace as text, one equation a line:
   * `%3:f32[4,1] = matmul %2 %0`. Scalar constants print inline (`2.0:f32`).
   */
  toString(): string;
}

/** Maps argument types to what `makeTrace` accepts for them: tensors may be specs. */
export type SpecsOf<T> = T extends Tensor ? Tensor | TensorSpec
  : T extends readonly unknown[] ? { [K in keyof T]: SpecsOf<T[K]> }
  : T extends object ? { [K in keyof T]: SpecsOf<T[K]> }
  : T;

interface Value {
  readonly id: number;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly backend: Backend;
}

/**
 * The stagings whose traces are being made, and which one made each value:
 * a trace made inside another (a `vmap` inside a traced function) may use
 * the outer trace's values, as constants; a value of a finished trace is a
 * leaked tracer.
 */
const active = new Set<Staging>();
const owners = new WeakMap<Storage, Staging>();

/** Whether `storage` is a value of a trace still being made. */
function isLive(storage: Storage): boolean {
  const owner = owners.get(storage);
  return owner !== undefined && active.has(owner);
}

/** The staging evaluator: records each primitive instead of running it. */
class Staging implements Evaluator {
  readonly values = new Map<Storage, Value>();
  readonly equations: { prim: Prim; inputs: Value[]; output: Value; params: PrimParams }[] = [];
  readonly constants: { value: Value; data: HostArray | Tensor }[] = [];
  readonly regions: (Omit<TraceRegion, "inputs" | "outputs"> & RegionRule & {
    inputs: Value[];
    outputs: Value[];
  })[] = [];
  readonly #captured = new Map<Tensor, Value>();
  #count = 0;
  refused: Error | null = null;

  /** A new tensor with no data, standing for a value of the trace. */
  fresh(shape: Shape, dtype: DType, backend: Backend): [Tensor, Value] {
    const storage: Storage = { backend, dtype, size: 0, refs: 0 };
    abstractStorages.add(storage);
    owners.set(storage, this);
    const value = { id: this.#count++, shape, dtype, backend };
    this.values.set(storage, value);
    const t = new Tensor({ storage, shape, strides: contiguousStrides(shape), offset: 0 });
    return [t, value];
  }

  /** The trace value of an operand: captured tensors become constants. */
  valueOf(t: Tensor, op: string): Value {
    const storage = t.view(op).storage; // a disposed tensor is named here
    const own = this.values.get(storage);
    if (own) return own;
    if (abstractStorages.has(storage) && !isLive(storage)) throw leakedTracer(op, t);
    let value = this.#captured.get(t);
    if (!value) {
      value = { id: this.#count++, shape: t.shape, dtype: t.dtype, backend: storage.backend };
      this.#captured.set(t, value);
      this.constants.push({ value, data: t });
    }
    return value;
  }

  apply(prim: Prim, inputs: readonly Tensor[], params: PrimParams): Tensor {
    const values = inputs.map((t) => this.valueOf(t, prim));
    const backend = values[0].backend;
    if (values.some((v) => v.backend !== backend)) {
      throw new TypeError(
        `${prim}: inputs live on different backends (${
          values.map((v) => v.backend.name).join(", ")
        }); move them to one backend first`,
      );
    }
    const out = abstractEval(prim, values, params);
    checkCapacity(prim, out.shape, backend);
    const [t, output] = this.fresh(out.shape, out.dtype, backend);
    this.equations.push({ prim, inputs: values, output, params });
    return t;
  }

  constant(host: HostArray, dtype: DType, shape: Shape, backend: Backend): Tensor {
    const [t, value] = this.fresh(shape, dtype, backend);
    this.constants.push({ value, data: host });
    return t;
  }

  refuseRead(err: Error): void {
    this.refused ??= err;
  }
}

/**
 * @internal Runs `fn` on `inputs`; while a trace is being made, also
 * records the call as a region of it (see `TraceRegion`), so that replaying
 * the trace applies `call` again. A rule whose function reads a traced
 * value it was not given cannot be replayed (its `fwd` would read that
 * value of a finished trace): its region's rule says so when used.
 */
export function stageRegion(
  rule: CustomRule,
  inputs: readonly Tensor[],
  fn: (inputs: readonly Tensor[]) => Tensor[],
  invoke: (
    rule: CustomRule,
    inputs: readonly Tensor[],
    body: (ts: readonly Tensor[]) => Tensor[],
  ) => Tensor[],
): Tensor[] {
  const staging = currentEvaluator();
  if (!(staging instanceof Staging)) return fn(inputs);
  const start = staging.equations.length;
  const firstConstant = staging.constants.length;
  const ins = inputs.map((t) => staging.valueOf(t, rule.name));
  // Each result a value of its own, made inside the region (a result that
  // is an argument or an outer value becomes an alias of it), so replaying
  // the call changes no other use of that value.
  const results = fn(inputs);
  const made = new Set(staging.equations.slice(start).map((e) => e.output));
  const outputs = results.map((t) => {
    const value = staging.valueOf(t, rule.name);
    const fresh = made.has(value) ? t : alias(t);
    made.delete(value);
    return fresh;
  });
  const outs = outputs.map((t) => staging.valueOf(t, rule.name));
  const end = staging.equations.length;
  // A rule checked before (replayed from a trace, or batched from a checked
  // one) needs no check; a user's rule does: values its function reads that
  // are neither its arguments, nor made inside, nor data would be read by
  // its fwd after this trace ended (a captured tensor with data is fine).
  let captured: Value | undefined;
  if (!rule.checked) {
    const own = new Set<Value>(ins);
    for (const c of staging.constants.slice(firstConstant)) own.add(c.value);
    for (const c of staging.constants) {
      if (c.data instanceof Tensor && !c.data.isTraced) own.add(c.value);
    }
    for (const e of staging.equations.slice(start, end)) {
      captured ??= e.inputs.find((v) => !own.has(v));
      own.add(e.output);
    }
  }
  const replayable: CustomRule = captured === undefined ? { ...rule, checked: true } : {
    ...rule,
    checked: true,
    fwd: () => {
      throw new TypeError(
        `${rule.name}: the function uses a traced value it was not given as an argument ` +
          `(shape ${shapeString(captured.shape)}), so its custom rule cannot run again when ` +
          "the trace is differentiated; pass that value as an argument",
      );
    },
  };
  staging.regions.push({
    name: rule.name,
    start,
    end,
    inputs: ins,
    outputs: outs,
    rule: replayable,
    call: (inputs, body) => invoke(replayable, inputs, body),
  });
  return outputs;
}

/**
 * @internal Stands for a plain number in `makeTrace`'s arguments: it becomes
 * a traced scalar that is weakly typed like a number of `kind` (`jit`'s
 * dynamic numbers), on `backend`.
 */
export class WeakNumber {
  constructor(readonly kind: WeakKind, readonly backend: BackendName) {}
}

/** Whether `x` is a `{ shape, dtype?, backend? }` spec rather than a tree node. */
function isSpec(x: unknown): x is TensorSpec {
  if (x === null || typeof x !== "object" || Object.getPrototypeOf(x) !== Object.prototype) {
    return false;
  }
  const keys = Object.keys(x);
  return Array.isArray((x as TensorSpec).shape) &&
    keys.every((k) => k === "shape" || k === "dtype" || k === "backend");
}

/** Replaces tensors and specs in `args` by fresh trace inputs. */
function stageArguments(
  staging: Staging,
  args: readonly unknown[],
  plainSpecs: boolean,
): { args: unknown[]; inputs: Value[]; paths: string[] } {
  const inputs: Value[] = [];
  const paths: string[] = [];
  const walk = (node: unknown, path: string): unknown => {
    let shape: Shape, dtype: DType, backend: Backend;
    if (node instanceof Tensor) {
      const storage = node.view("makeTrace").storage; // a disposed argument is named here
      if (abstractStorages.has(storage) && !isLive(storage)) {
        throw leakedTracer(`makeTrace: argument ${path}`, node);
      }
      [shape, dtype, backend] = [node.shape, node.dtype, resolveBackend(node.backend)];
    } else if (node instanceof WeakNumber) {
      const dtype = weakStorageDType(node.kind);
      const [t, value] = staging.fresh([], dtype, resolveBackend(node.backend));
      weakTensors.set(t, node.kind);
      inputs.push(value);
      paths.push(path);
      return t;
    } else if (node instanceof AbstractArg || (plainSpecs && isSpec(node))) {
      const spec = node instanceof AbstractArg ? node.spec : node;
      checkShape(`makeTrace: argument ${path}`, spec.shape);
      dtype = spec.dtype ?? "float32";
      checkDType(`makeTrace: argument ${path}`, dtype);
      [shape, backend] = [[...spec.shape], resolveBackend(spec.backend)];
    } else if (Array.isArray(node)) {
      return node.map((child, i) => walk(child, `${path}.${i}`));
    } else if (isNode(node)) {
      return Object.fromEntries(
        Object.entries(node).map(([k, child]) => [k, walk(child, `${path}.${k}`)]),
      );
    } else return node; // numbers, strings, functions: passed through as they are
    const [t, value] = staging.fresh(shape, dtype, backend);
    // A number traced by an enclosing trace stays a weakly typed number.
    const weak = node instanceof Tensor ? weakTensors.get(node) : undefined;
    if (weak) weakTensors.set(t, weak);
    inputs.push(value);
    paths.push(path);
    return t;
  };
  return { args: args.map((a, i) => walk(a, String(i))), inputs, paths };
}

/**
 * Traces `fn` from the shapes and dtypes of its arguments alone and returns
 * its IR: the inputs, every primitive applied with its output shape and
 * dtype, the constants it created or captured, and its outputs. Nothing is
 * computed: no kernel runs and no device buffer is allocated, so a whole
 * training step traces in microseconds per op. Transforms inside `fn`
 * (`grad`, `jvp`, ...) are traced through, so their equations appear too.
 *
 * Arguments may be tensors (only their shape, dtype and backend are used)
 * or specs `{ shape, dtype?, backend? }`, in any pytree; other leaves
 * (numbers, strings) are passed to `fn` unchanged. `fn` must be synchronous
 * and must not read values (`data`, `item`, `array`): those have no data
 * while tracing. Errors raised by ops while tracing are the same as when
 * they run eagerly.
 *
 * @param fn The function to trace; it returns a tensor or a pytree of tensors.
 * @param specs Its arguments, with tensors optionally replaced by specs.
 * @returns The trace; `String(trace)` prints it.
 * @example
 * ```ts
 * import { makeTrace, Tensor } from "littlegrad";
 * const trace = makeTrace(
 *   (w: Tensor, x: Tensor) => x.matmul(w).relu().sum(),
 *   { shape: [3, 2] },
 *   { shape: [4, 3] },
 * );
 * console.log(trace.equations.map((e) => e.prim));
 * // ["matmul", "broadcast", "le", "broadcast", "where", "sum"]
 * console.log(String(trace));
 * ```
 */
export function makeTrace<A extends unknown[]>(
  fn: (...args: A) => unknown,
  ...specs: SpecsOf<A>
): Trace {
  return traceFunction(fn, specs as unknown[], true);
}

/**
 * @internal Stands for a tensor of `spec`'s shape and dtype in
 * `traceFunction`'s arguments (where a plain `{ shape }` object is data).
 */
export class AbstractArg {
  constructor(readonly spec: TensorSpec) {}
}

/**
 * @internal `makeTrace`, for the transforms built on it: with `plainSpecs`
 * false, only `AbstractArg`s, tensors and `WeakNumber`s are traced, and
 * plain objects are passed through (a user's `{ shape: [12] }` config).
 */
export function traceFunction<A extends unknown[]>(
  fn: (...args: A) => unknown,
  specs: readonly unknown[],
  plainSpecs: boolean,
): Trace {
  const staging = new Staging();
  const restoreLevels = isolateTrace();
  const restoreEvaluator = setEvaluator(staging);
  const scope = openScope("trace");
  active.add(staging);
  try {
    const staged = stageArguments(staging, specs, plainSpecs);
    const result = fn(...staged.args as A);
    if (result instanceof Promise) {
      result.catch(() => {}); // its rejection (a refused read, say) is reported here
      throw new TypeError(
        "makeTrace: the function returned a Promise; a traced function must be synchronous " +
          "(read values outside it)" + (staging.refused ? ` (${staging.refused.message})` : ""),
      );
    }
    if (staging.refused) throw staging.refused;
    const { leaves } = flattenTree(result);
    const outputs = leaves.map((leaf) => {
      if (!(leaf.value instanceof Tensor)) {
        throw new TypeError(
          `makeTrace: output ${leaf.path || "value"} is ${describe(leaf.value)}; ` +
            "a traced function returns tensors (in any pytree)",
        );
      }
      return staging.valueOf(leaf.value, "makeTrace");
    });
    return buildTrace(staging, staged.inputs, staged.paths, outputs, leaves.map((l) => l.path));
  } finally {
    active.delete(staging);
    closeScope(scope);
    restoreEvaluator();
    restoreLevels();
  }
}

function buildTrace(
  staging: Staging,
  inputs: Value[],
  inputPaths: string[],
  outputs: Value[],
  outputPaths: string[],
): Trace {
  const plain = (v: Value): TraceValue => ({ id: v.id, shape: v.shape, dtype: v.dtype });
  const known = new Map<Value, TraceValue>();
  const of = (v: Value) => known.get(v) ?? known.set(v, plain(v)).get(v)!;
  const trace: Trace = {
    inputs: inputs.map(of),
    inputPaths,
    constants: staging.constants.map((c) => ({ value: of(c.value), data: c.data })),
    equations: staging.equations.map((e) => ({
      prim: e.prim,
      inputs: e.inputs.map(of),
      output: of(e.output),
      params: e.params,
    })),
    regions: staging.regions.map(({ rule, call, ...r }) => {
      const region = { ...r, inputs: r.inputs.map(of), outputs: r.outputs.map(of) };
      regionRules.set(region, { rule, call });
      return region;
    }),
    outputs: outputs.map(of),
    outputPaths,
    backend: (inputs[0] ?? staging.constants[0]?.value)?.backend.name ?? resolveBackend().name,
    toString: () => formatTrace(trace),
  };
  return trace;
}

/** One value as printed in a trace: `2.0` (a float), `3`, `true`. */
function formatValue(v: number, dtype: DType): string {
  if (dtype === "bool") return v ? "true" : "false";
  if (!isFloat(dtype)) return String(v);
  return Number.isInteger(v) ? v.toFixed(1) : shortest(v);
}

/** The fewest digits that read back as the same float32 (`0.1`, not `0.10000000149011612`). */
function shortest(v: number): string {
  for (let digits = 1; digits < 17; digits++) {
    const text = String(Number(v.toPrecision(digits)));
    if (Math.fround(Number(text)) === v) return text;
  }
  return String(v);
}

/** Prints a trace; values are numbered in order of first appearance. */
function formatTrace(trace: Trace): string {
  const inline = new Map<TraceValue, string>();
  const defined: TraceConstant[] = [];
  for (const c of trace.constants) {
    if (!(c.data instanceof Tensor) && c.data.length === 1 && c.value.shape.length === 0) {
      inline.set(
        c.value,
        `${formatValue(Number(c.data[0]), c.value.dtype)}:${shortName(c.value.dtype)}`,
      );
    } else defined.push(c);
  }
  const numbers = new Map<TraceValue, number>();
  const name = (v: TraceValue) => {
    const lit = inline.get(v);
    if (lit) return lit;
    if (!numbers.has(v)) numbers.set(v, numbers.size);
    return `%${numbers.get(v)}`;
  };
  const typed = (v: TraceValue) => `${name(v)}:${shortName(v.dtype)}${shapeString(v.shape)}`;
  const lines = [`{ lambda ${trace.inputs.map(typed).join(" ")} .`];
  for (const c of defined) {
    const what = c.data instanceof Tensor
      ? "captured"
      : c.data.length <= 8
      ? `[${Array.from(c.data, (v) => formatValue(Number(v), c.value.dtype)).join(", ")}]`
      : "host";
    lines.push(`  ${typed(c.value)} = const ${what}`);
  }
  for (const e of trace.equations) {
    const params = Object.entries(e.params)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? shapeString(v) : String(v)}`)
      .join(" ");
    lines.push(
      `  ${typed(e.output)} = ${e.prim}${params ? `[${params}]` : ""} ${
        e.inputs.map(name).join(" ")
      }`,
    );
  }
  lines.push(`  in ( ${trace.outputs.map(name).join(" ")} ) }`);
  return lines.join("\n");
}

/**
 * Prints the trace of `fn` at `args` (see `makeTrace`), one primitive a
 * line, for debugging and tests. Nothing runs and nothing it creates
 * outlives the call.
 *
 * @param fn The function to trace.
 * @param args Its arguments; tensors may be `{ shape, dtype }` specs.
 * @returns The trace as text.
 * @example
 * ```ts
 * import { printTrace, tensor, Tensor } from "littlegrad";
 * console.log(printTrace((x: Tensor) => x.mul(2).sum(), tensor([1, 2])));
 * // { lambda %0:f32[2] .
 * //   %1:f32[2] = broadcast[shape=[2]] 2.0:f32
 * //   %2:f32[2] = mul %0 %1
 * //   %3:f32[] = sum[axes=[0]] %2
 * //   in ( %3 ) }
 * ```
 */
export function printTrace<A extends unknown[]>(
  fn: (...args: A) => unknown,
  ...args: SpecsOf<A>
): string {
  return String(makeTrace(fn, ...args));
}

/**
 * @internal A constant of a trace as a tensor on `backend`: the captured
 * tensor itself, or its host data uploaded (a new tensor in the open scope).
 */
export function constantTensor(c: TraceConstant, backend: Backend): Tensor {
  return c.data instanceof Tensor
    ? c.data
    : hostTensor(c.data, c.value.dtype, c.value.shape, backend);
}

/**
 * @internal Runs a trace's equations eagerly on `inputs` (tensors of the
 * traced shapes and dtypes, in `trace.inputs` order) and returns its
 * outputs. The reference `jit` is checked against, and its fallback.
 */
export function evalTrace(trace: Trace, inputs: readonly Tensor[]): Tensor[] {
  if (inputs.length !== trace.inputs.length) {
    throw new TypeError(
      `evalTrace: the trace takes ${trace.inputs.length} inputs, got ${inputs.length}`,
    );
  }
  const backend = resolveBackend(trace.backend);
  return scoped(() => {
    const env = new Map<TraceValue, Tensor>();
    trace.inputs.forEach((v, i) => env.set(v, inputs[i]));
    for (const c of trace.constants) env.set(c.value, constantTensor(c, backend));
    forEachStep(trace, (e) => {
      env.set(e.output, apply(e.prim, e.inputs.map((v) => env.get(v)!), e.params));
    }, (region, inner) => {
      const outs = region.call(region.inputs.map((v) => env.get(v)!), (ts) => {
        region.inputs.forEach((v, i) => env.set(v, ts[i]));
        inner();
        return region.outputs.map((v) => env.get(v)!);
      });
      region.outputs.forEach((v, i) => env.set(v, outs[i]));
    });
    return trace.outputs.map((v) => env.get(v)!);
  }, (outs) => outs);
}

/**
 * @internal Visits a trace's equations in order, except that each custom
 * call's region goes to `onRegion` whole, with `inner` to visit its own
 * equations (and the regions inside it) when the call computes the
 * function itself. A loop over the equations; only nested regions recurse.
 */
export function forEachStep(
  trace: Trace,
  onEquation: (e: TraceEquation) => void,
  onRegion: (region: TraceRegion & RegionRule, inner: () => void) => void,
): void {
  interface Node {
    region: TraceRegion;
    at: number;
    children: Node[];
  }
  // A region inside another lies within its equations and finished before
  // it (regions are listed as they finish). Outer regions sort first.
  const order: Node[] = trace.regions.map((region, at) => ({ region, at, children: [] }))
    .sort((a, b) => a.region.start - b.region.start || b.region.end - a.region.end || b.at - a.at);
  const roots: Node[] = [];
  const open: Node[] = [];
  for (const node of order) {
    const inside = (outer: Node) => node.region.end <= outer.region.end && node.at < outer.at;
    while (open.length > 0 && !inside(open[open.length - 1])) open.pop();
    (open.length > 0 ? open[open.length - 1].children : roots).push(node);
    open.push(node);
  }
  const visit = (lo: number, hi: number, nodes: readonly Node[]): void => {
    let k = 0;
    for (let i = lo; i < hi || (k < nodes.length && nodes[k].region.start === i);) {
      const node = nodes[k];
      if (node && node.region.start === i) {
        k++;
        const { region } = node;
        onRegion(
          { ...region, ...regionRules.get(region)! },
          () => visit(region.start, region.end, node.children),
        );
        i = node.region.end;
      } else onEquation(trace.equations[i++]);
    }
  };
  visit(0, trace.equations.length, roots);
}
