/**
 * `jit`: trace a function once per argument signature and reuse the trace.
 *
 * The first call with given argument shapes and dtypes traces `fn` from
 * shapes alone (`makeTrace`: nothing runs) and caches the program; later
 * calls with the same signature run the cached program without tracing.
 * Plain numbers are dynamic: they are traced as weakly typed scalars, so a
 * changing learning rate does not retrace; `staticArgnums` bakes values in.
 *
 * On WebGPU, a call made eagerly runs the trace compiled into a few fused
 * kernels (`compiler/`: the scheduler, the kernel IR and the executor;
 * `kernels/fused.ts` renders WGSL). Under a transform (`grad`, `jvp`,
 * `vmap` around the jitted function), under `debugNans` (which names each
 * primitive), and on the CPU backend, the trace is replayed through
 * `apply`, one primitive at a time, so the transforms see its primitives.
 * @module
 */

import { hostTensor, isEagerContext, weakTensors } from "./core/interpreter.ts";
import { debuggingNans } from "./core/debug_nans.ts";
import { type CompiledProgram, compileProgram, SlotPool } from "./compiler/execute.ts";
import { describeSchedule, schedule } from "./compiler/schedule.ts";
import { weakKindOf, weakStorageDType } from "./dtype.ts";
import { describe } from "./core/errors.ts";
import { type BackendName, resolveBackend } from "./backends.ts";
import { AbstractArg, evalTrace, type Trace, traceFunction, WeakNumber } from "./staging.ts";
import { shapeString } from "./shape.ts";
import { Tensor } from "./tensor.ts";
import { flattenTree, isNode, type Leaf } from "./tree.ts";

/** Options of `jit`. */
export interface JitOptions {
  /**
   * Arguments whose values are baked into the trace (a new value retraces):
   * configuration, flags, numbers used in JavaScript arithmetic. Other
   * arguments are dynamic: tensors by shape and dtype, numbers traced.
   */
  staticArgnums?: number | readonly number[];
  /**
   * Arguments whose tensors the call consumes: where a backend compiles
   * kernels, an output of the same dtype and size may be written into a
   * donated tensor's buffer (an optimizer step updating its parameters in
   * place), so a training step needs no second copy of them. After each
   * call the donated tensors are disposed (on every backend, so code
   * behaves the same everywhere); pass the returned ones next time.
   * `jitted.stats.donated` counts the buffers the last call reused.
   */
  donateArgnums?: number | readonly number[];
  /** The name used in errors and logs (default: the function's name). */
  name?: string;
  /** Log every trace, with the reason, to the console. */
  log?: boolean;
}

/** What a jitted function counts. */
export interface JitStats {
  /** Calls so far. */
  calls: number;
  /** Times `fn` was traced (a new argument signature). */
  traces: number;
  /** Programs built from traces (one per trace). */
  compiles: number;
  /** Calls that reused a cached program. */
  cacheHits: number;
  /** Why the last trace happened, e.g. "argument 0 at 'w1': shape [784,128] → [784,64]". */
  lastRetrace: string | null;
  /**
   * Steps of the programs compiled to fused kernels so far (WebGPU): fused
   * kernels plus library calls (matmul, gather, pad), i.e. dispatches per call.
   */
  kernels: number;
  /** Outputs of the last call written into donated arguments' buffers (`donateArgnums`). */
  donated: number;
}

/** A jitted function: `fn`'s signature, plus its counters and its traces. */
export type Jitted<A extends unknown[], R> = ((...args: A) => R) & {
  /** Counters: calls, traces, compiles, cache hits, and why it last retraced. */
  readonly stats: JitStats;
  /** The trace of `fn` for these arguments (traced now; the cache is not used). */
  trace(...args: A): Trace;
  /**
   * The program a call with these arguments runs, compiled now if it was
   * not (nothing runs): its steps as text, one fused kernel or library call
   * a line, and each kernel's generated source (WGSL on WebGPU; none on the
   * CPU backend, which replays the trace).
   */
  lower(...args: A): Lowered;
};

/** A compiled program, for reading (`jitted.lower(...args)`). */
export interface Lowered {
  /** One line per step: what each kernel computes and reads, and each library call. */
  readonly text: string;
  /** The steps (dispatches per call): fused kernels and library calls. */
  readonly steps: number;
  /** The generated source of each fused kernel, in step order. */
  readonly kernels: readonly string[];
}

/** How one argument leaf enters the signature. */
interface LeafSignature {
  where: string;
  describe: string;
}

interface Program {
  trace: Trace;
  /** The fused program, compiled at the first call that runs it (WebGPU). */
  compiled: CompiledProgram | null;
  /** The result's tree (its tensors are traced values: only the structure is used). */
  structure: unknown;
  /** Per result leaf: the value of a non-tensor leaf, null for a tensor. */
  fixed: ({ value: unknown } | null)[];
}

/**
 * Traces `fn` once per argument signature (tree structure, tensor shapes,
 * dtypes and backends, static values) and reuses the trace for later calls
 * with the same signature. Numbers in dynamic arguments are traced, so new
 * values do not retrace (only a change of kind: float, or an integer that
 * fits int8 or int32, does, because it types differently). `fn` must be
 * pure: it may not read values (`data`, `item`), and JavaScript arithmetic
 * on a traced number throws; use ops, or `staticArgnums`.
 *
 * A traced number travels as a float32 (or int32) scalar, so next to a
 * float16 tensor it is rounded twice (to float32, then float16), which can
 * differ from eager's single rounding in the last bit for rare values.
 *
 * On WebGPU the program is compiled into fused kernels: elementwise ops,
 * views and a reduction or a matmul with its epilogue run as one kernel,
 * traced numbers travel in the kernels' parameter blocks, and a warm call
 * allocates no new buffer (`jitted.lower(...args)` prints the kernels). The
 * CPU backend replays the trace, one primitive at a time (the same result
 * as eager, bitwise). Composes with `grad`, `jvp` and `vmap` both ways:
 * under a transform the trace is replayed, so the transform sees it.
 *
 * @param fn A pure function of tensors, numbers and pytrees of them.
 * A compiled program keeps its intermediate buffers between calls;
 * `donateArgnums` lets it write outputs into arguments' buffers (the
 * donated tensors are disposed by the call).
 *
 * @param opts `staticArgnums`, `donateArgnums`, `name`, `log`.
 * @returns The jitted function, with `stats` and `trace(...args)`.
 * @example
 * ```ts
 * import { jit, tensor, type Tensor } from "littlegrad";
 * const step = jit((w: Tensor, g: Tensor, lr: number) => w.sub(g.mul(lr)));
 * const w = tensor([1, 2]);
 * const g = tensor([0.5, 0.5]);
 * console.log(await step(w, g, 0.1).array()); // [0.95, 1.95]
 * console.log(await step(w, g, 0.2).array()); // [0.9, 1.9]: a new lr, no retrace
 * console.log(step.stats.traces, step.stats.cacheHits); // 1 1
 * console.log(step.lower(w, g, 0.1).steps); // 1: one fused kernel on WebGPU
 *
 * // Donated: the update is written into w's own buffer, and w is disposed.
 * const update = jit((w: Tensor, g: Tensor) => w.sub(g.mul(0.1)), { donateArgnums: 0 });
 * const w2 = update(w, g);
 * console.log(w.disposed, await w2.array()); // true [0.95, 1.95]
 * ```
 */
export function jit<A extends unknown[], R>(
  fn: (...args: A) => R,
  opts: JitOptions = {},
): Jitted<A, R> {
  if (typeof fn !== "function") {
    throw new TypeError(`jit: expected a function, got ${describe(fn)}`);
  }
  const name = opts.name ?? (fn.name || "jit");
  const argnums = (option: "staticArgnums" | "donateArgnums") => {
    const given = opts[option];
    const set = new Set(given === undefined ? [] : typeof given === "number" ? [given] : given);
    for (const i of set) {
      if (!Number.isInteger(i) || i < 0) {
        throw new RangeError(`${name}: ${option} entries must be non-negative integers, got ${i}`);
      }
    }
    return set;
  };
  const statics = argnums("staticArgnums");
  const donates = argnums("donateArgnums");
  for (const i of donates) {
    if (statics.has(i)) {
      throw new RangeError(`${name}: argument ${i} is in both staticArgnums and donateArgnums`);
    }
  }
  const cache = new Map<string, Program>();
  let last: LeafSignature[] | null = null;
  const stats: JitStats = {
    calls: 0,
    traces: 0,
    compiles: 0,
    cacheHits: 0,
    lastRetrace: null,
    kernels: 0,
    donated: 0,
  };
  // The programs' intermediate buffers (shared by all of them: calls do not
  // overlap) and uploaded constants go back when the jitted function is collected.
  const pool = new SlotPool();
  const programs: CompiledProgram[] = [];
  const onCompile = (compiled: CompiledProgram) => {
    programs.push(compiled);
    stats.kernels += compiled.schedule.steps.length;
    if (opts.log) {
      console.log(`jit: compiled ${name}: ${compiled.schedule.steps.length} steps`);
    }
  };

  const traceFor = (args: A): { program: Program; leaves: Leaf[][] } => {
    const leaves = args.map((a, i) => (statics.has(i) ? [] : flattenTree(a).leaves));
    const signature = signatureOf(name, args, leaves, statics);
    const key = signature.map((s) => `${s.where}=${s.describe}`).join("|");
    const cached = cache.get(key);
    if (cached) {
      stats.cacheHits++;
      return { program: cached, leaves };
    }
    stats.lastRetrace = last === null ? "first call" : retraceReason(last, signature);
    if (opts.log) console.log(`jit: tracing ${name}: ${stats.lastRetrace}`);
    const program = withNumberHint(leaves, () => traceProgram(fn, args, leaves, statics));
    stats.traces++;
    stats.compiles++;
    cache.set(key, program);
    last = signature;
    return { program, leaves };
  };

  const jitted = ((...args: A): R => {
    stats.calls++;
    const { program, leaves } = traceFor(args);
    const result = run<R>(
      name,
      program,
      leaves,
      onCompile,
      donatedInputs(leaves, donates),
      pool,
    );
    if (donates.size === 0 || !isEagerContext()) return result;
    stats.donated = program.compiled?.donatedLastCall ?? 0;
    const consumed = new Set<Tensor>();
    for (const i of donates) {
      for (const { value } of leaves[i] ?? []) if (value instanceof Tensor) consumed.add(value);
    }
    // A donated tensor returned as it is (the replay returns the very object)
    // comes back as a new tensor on its buffer, so disposing it keeps the result.
    const tree = flattenTree(result);
    const kept = tree.leaves.map(({ value }) =>
      value instanceof Tensor && consumed.has(value) ? new Tensor(value.view(name)) : value
    );
    for (const t of consumed) t.dispose();
    return tree.unflatten(kept) as R;
  }) as Jitted<A, R>;
  releasePrograms.register(jitted, programs);
  Object.defineProperty(jitted, "lower", {
    value: (...args: A): Lowered => {
      const { program, leaves } = traceFor(args);
      const backend = resolveBackend(program.trace.backend);
      const params = numberInputs(leaves);
      if (backend.compileKernel && !program.compiled) {
        const donated = donatedInputs(leaves, donates);
        program.compiled = compileProgram(program.trace, params, backend, {}, donated, pool);
        onCompile(program.compiled);
      }
      const plan = program.compiled?.schedule ?? schedule(program.trace, params);
      const donations = program.compiled?.buffers.donations.map((d) =>
        `donated: input ${d.input} -> %${d.output}${d.inPlace ? " (in place)" : ""}`
      ) ?? [];
      return {
        text: [describeSchedule(plan), ...donations].join("\n"),
        steps: plan.steps.length,
        kernels: program.compiled?.kernels.flatMap((k) => (k ? [k.source] : [])) ?? [],
      };
    },
  });
  Object.defineProperty(jitted, "stats", { value: stats });
  Object.defineProperty(jitted, "trace", {
    value: (...args: A) => {
      const leaves = args.map((a, i) => (statics.has(i) ? [] : flattenTree(a).leaves));
      signatureOf(name, args, leaves, statics); // the same checks as a call
      return traceProgram(fn, args, leaves, statics).trace;
    },
  });
  return jitted;
}

/**
 * Runs `trace`; when it fails and a number argument was traced, the error
 * says that numbers are traced (a number used as an axis, a shape or an
 * index, or in JavaScript arithmetic, has to be static).
 */
function withNumberHint<T>(leaves: readonly Leaf[][], trace: () => T): T {
  try {
    return trace();
  } catch (err) {
    const numbers = leaves.flat().some((l) => typeof l.value === "number");
    // Only the library's own errors about a traced value get the hint.
    if (
      numbers && (err instanceof TypeError || err instanceof RangeError) &&
      /Tensor|traced/.test(err.message) && !/staticArgnums/.test(err.message)
    ) {
      try {
        Object.defineProperty(err, "message", {
          value: err.message + " (jit traces number arguments as scalar tensors: a number used " +
            "as an axis, a shape or an index, or in JavaScript arithmetic, must be marked with " +
            "staticArgnums)",
        });
      } catch {
        // A frozen error keeps its message.
      }
    }
    throw err;
  }
}

/** Describes every argument leaf that decides the trace. */
function signatureOf(
  name: string,
  args: readonly unknown[],
  leaves: readonly Leaf[][],
  statics: ReadonlySet<number>,
): LeafSignature[] {
  const out: LeafSignature[] = [
    { where: "arguments", describe: String(args.length) },
    // Where the program runs: the tensors' backend, or the default one.
    { where: "backend", describe: defaultBackend(leaves) },
  ];
  args.forEach((arg, i) => {
    if (statics.has(i)) {
      out.push({ where: `argument ${i}`, describe: `static ${staticKey(name, i, arg)}` });
      return;
    }
    // The tree structure, then each leaf.
    out.push({
      where: `argument ${i}`,
      describe: `tree ${skeleton(arg)}`,
    });
    for (const { path, value } of leaves[i]) {
      const where = `argument ${i}${path ? ` at '${path}'` : ""}`;
      out.push({ where, describe: leafKey(name, where, value) });
    }
  });
  return out;
}

function leafKey(name: string, where: string, value: unknown): string {
  // A number traced by an enclosing jit stays a (weakly typed) number.
  const weak = value instanceof Tensor ? weakTensors.get(value) : undefined;
  if (weak) return `number (${weak})`;
  if (value instanceof Tensor) {
    if (value.disposed) {
      throw new ReferenceError(
        `${name}: ${where} is a tensor (shape ${shapeString(value.shape)}) that was disposed`,
      );
    }
    return `${value.dtype} shape ${shapeString(value.shape)} on ${value.backend}`;
  }
  if (typeof value === "number") return `number (${weakKindOf(value)})`;
  if (
    value === null || value === undefined || typeof value === "boolean" || typeof value === "string"
  ) {
    return `value ${JSON.stringify(value) ?? "undefined"}`;
  }
  throw new TypeError(
    `${name}: ${where} is ${describe(value)}; jit traces tensors and numbers (in pytrees): ` +
      "mark the argument with staticArgnums to pass other values",
  );
}

/** The containers of a tree, leaves as `*`: `[]` and `{}`, `[[]]` and `[[],[]]` differ. */
function skeleton(tree: unknown): string {
  if (Array.isArray(tree)) return `[${tree.map(skeleton).join(",")}]`;
  if (isNode(tree)) {
    return `{${
      Object.entries(tree).map(([k, v]) => `${JSON.stringify(k)}:${skeleton(v)}`).join(",")
    }}`;
  }
  return "*";
}

/** Identities for static values compared by identity (functions, class instances). */
const identities = new WeakMap<object, number>();
let nextIdentity = 0;

/**
 * The cache key of a static argument: numbers exactly (NaN, ±Infinity and
 * -0 apart), strings, plain arrays and objects by content, and functions,
 * symbols and other objects (a Map, a class instance) by identity.
 */
function staticKey(name: string, i: number, value: unknown): string {
  const seen = new Set<object>();
  const key = (v: unknown): string => {
    if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
    if (typeof v === "string") return JSON.stringify(v);
    if (typeof v === "bigint") return `${v}n`;
    if (v === null || v === undefined || typeof v === "boolean") return String(v);
    if (v instanceof Tensor) {
      throw new TypeError(
        `${name}: static argument ${i} contains a tensor: pass tensors as dynamic arguments`,
      );
    }
    if (typeof v === "object" && isNode(v)) {
      if (seen.has(v)) {
        throw new TypeError(`${name}: static argument ${i} is circular; it cannot be a cache key`);
      }
      seen.add(v);
      const text = Array.isArray(v)
        ? `[${v.map(key).join(",")}]`
        : `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${key(x)}`).join(",")}}`;
      seen.delete(v);
      return text;
    }
    // Functions, symbols and other objects: by identity.
    const ref = v as object;
    if (typeof v === "symbol") return `symbol ${String(v)}`;
    if (!identities.has(ref)) identities.set(ref, nextIdentity++);
    return `${typeof v === "function" ? `function ${(v as { name: string }).name}` : "object"} #${
      identities.get(ref)
    }`;
  };
  return key(value);
}

/** The first difference between two signatures, in words. */
function retraceReason(before: readonly LeafSignature[], now: readonly LeafSignature[]): string {
  for (let i = 0; i < Math.max(before.length, now.length); i++) {
    const [a, b] = [before[i], now[i]];
    if (!a || !b) return "the arguments' structure changed";
    if (a.where !== b.where) return `${b.where}: the arguments' structure changed`;
    if (a.describe !== b.describe) return `${b.where}: ${a.describe} → ${b.describe}`;
  }
  return "a signature seen before was evicted";
}

/** Traces `fn` with tensors as specs and numbers as weak scalars. */
function traceProgram<A extends unknown[], R>(
  fn: (...args: A) => R,
  args: A,
  leaves: readonly Leaf[][],
  statics: ReadonlySet<number>,
): Program {
  const backend = defaultBackend(leaves);
  const specArgs = args.map((arg, i) => {
    if (statics.has(i)) return arg;
    const { unflatten } = flattenTree(arg);
    return unflatten(leaves[i].map(({ value }) => {
      const weak = value instanceof Tensor ? weakTensors.get(value) : undefined;
      if (weak) return new WeakNumber(weak, backend);
      if (value instanceof Tensor) {
        return new AbstractArg({ shape: value.shape, dtype: value.dtype, backend: value.backend });
      }
      if (typeof value === "number") return new WeakNumber(weakKindOf(value), backend);
      return value;
    }));
  });
  let structure: unknown;
  let fixed: ({ value: unknown } | null)[] = [];
  const trace = traceFunction(
    (...a: unknown[]) => {
      structure = (fn as (...a: unknown[]) => unknown)(...a);
      // Non-tensor results (a number, a string) are returned as they were.
      const results = flattenTree(structure).leaves.map((l) => l.value);
      fixed = results.map((v) => (v instanceof Tensor ? null : { value: v }));
      return results.filter((v) => v instanceof Tensor);
    },
    specArgs,
    false,
  );
  return { trace, structure, fixed, compiled: null };
}

/** The argument leaves that are trace inputs, in order: tensors and numbers. */
function inputValues(leaves: readonly Leaf[][]): (Tensor | number)[] {
  return leaves.flat().map((l) => l.value).filter((v) =>
    v instanceof Tensor || typeof v === "number"
  ) as (Tensor | number)[];
}

/** The trace inputs (by position) that are plain numbers: traced as parameters. */
function numberInputs(leaves: readonly Leaf[][]): Set<number> {
  const values = inputValues(leaves);
  const params = new Set<number>();
  values.forEach((v, i) => typeof v === "number" && params.add(i));
  return params;
}

/** The backend of the first tensor argument, or the current default. */
function defaultBackend(leaves: readonly Leaf[][]): BackendName {
  for (const list of leaves) {
    for (const { value } of list) {
      if (value instanceof Tensor && !value.disposed) return value.backend;
    }
  }
  return resolveBackend().name;
}

/** Frees the buffers kept by a collected jitted function's programs. */
const releasePrograms = new FinalizationRegistry<CompiledProgram[]>((programs) => {
  for (const p of programs) p.release();
});

/** The trace inputs (by position) that are tensors of the arguments in `donates`. */
function donatedInputs(leaves: readonly Leaf[][], donates: ReadonlySet<number>): Set<number> {
  const donated = new Set<number>();
  let position = 0;
  leaves.forEach((list, arg) => {
    for (const { value } of list) {
      if (value instanceof Tensor) {
        if (donates.has(arg)) donated.add(position);
      } else if (typeof value !== "number") continue;
      position++;
    }
  });
  return donated;
}

/** Runs a cached program on this call's arguments. */
function run<R>(
  name: string,
  program: Program,
  leaves: readonly Leaf[][],
  onCompile: (compiled: CompiledProgram) => void,
  donated: ReadonlySet<number>,
  pool: SlotPool,
): R {
  const { trace, structure, fixed } = program;
  for (const { data } of trace.constants) {
    if (data instanceof Tensor && data.disposed) {
      throw new ReferenceError(
        `${name}: a tensor the traced function captured (shape ${
          shapeString(data.shape)
        }) was disposed; keep captured tensors alive while the jitted function is used, or pass ` +
          "them as arguments",
      );
    }
  }
  const backend = resolveBackend(trace.backend);
  const values = inputValues(leaves);
  const assemble = (outputs: readonly Tensor[], numbers: ReadonlyMap<Tensor, number>): R => {
    let k = 0;
    const results = fixed.map((f) => {
      if (f) return f.value;
      const t = outputs[k++];
      // A number argument returned as it is comes back as that number.
      return numbers.has(t) ? numbers.get(t) : t;
    });
    return flattenTree(structure).unflatten(results) as R;
  };
  // Run eagerly and seen by no transform: the fused program, where the
  // backend compiles kernels. Under a transform (or debugNans, which names
  // each primitive) the primitives are replayed one by one.
  if (backend.compileKernel && isEagerContext() && !debuggingNans()) {
    if (!program.compiled) {
      program.compiled = compileProgram(trace, numberInputs(leaves), backend, {}, donated, pool);
      onCompile(program.compiled);
    }
    // A number argument returned as it is comes back as that number.
    const outputs = program.compiled.run(values);
    let k = 0;
    const results = fixed.map((f) => (f ? f.value : outputs[k++]));
    return flattenTree(structure).unflatten(results) as R;
  }
  const numbers = new Map<Tensor, number>();
  const inputs = values.map((value) => {
    if (value instanceof Tensor) return value;
    const kind = weakKindOf(value);
    const scalar = hostTensor(
      weakStorageDType(kind) === "float32" ? new Float32Array([value]) : new Int32Array([value]),
      weakStorageDType(kind),
      [],
      backend,
    );
    numbers.set(scalar, value);
    return scalar;
  });
  try {
    let outputs = evalTrace(trace, inputs);
    if (isEagerContext()) {
      // As from a compiled program, each result is a tensor of its own (the
      // replay returns an input, or a value returned twice, as the same object).
      const seen = new Set(inputs.filter((t) => !numbers.has(t)));
      outputs = outputs.map((t) =>
        numbers.has(t) ? t : seen.has(t) ? new Tensor(t.view(name)) : (seen.add(t), t)
      );
    }
    return assemble(outputs, numbers);
  } finally {
    for (const t of numbers.keys()) t.dispose();
  }
}
