/**
 * The scheduler: splits a trace into steps, each one fused kernel or one
 * library call (matmul, gather, pad, an over-long reduction), and decides
 * which values are materialised in buffers.
 *
 * Movement primitives never cut: a fused kernel reads through them with
 * index arithmetic (`views.ts`), and a library call or a program output
 * takes them as views. Every other value is computed inside the kernel of
 * its consumers when they are all in one kernel and it is not a program
 * output; otherwise it is materialised, as the output of a kernel of its
 * own. A reduction starts a kernel whose producers run inside its loop (a
 * prologue) and joins its single consumer's kernel as that kernel's
 * reduction (an epilogue) when the consumer iterates over the reduction's
 * own outputs. Kernels stay within a cap on ops and the binding budget:
 * where one would not, a value in its middle is materialised and the trace
 * is scheduled again.
 *
 * Every pass is a loop over the equations, with an explicit stack where a
 * graph is walked, so a trace of 10,000 primitives schedules without deep
 * recursion.
 * @module
 */

import type { BinaryOp, TernaryOp, UnaryOp } from "../backend.ts";
import { LOWERING, type Prim, REDUCE_PRIMS } from "../primitives.ts";
import { sizeOf } from "../shape.ts";
import type { Trace, TraceEquation, TraceValue } from "../staging.ts";
import { Tensor } from "../tensor.ts";
import {
  type FusedKernel,
  type KernelBuffer,
  type KernelMatmul,
  type KernelNode,
  literalWords,
  type Space,
} from "./ir.ts";
import { MAX_LOOP_ITERATIONS } from "../../kernels/common.ts";
import { bufferAddress, moveAddress, MOVEMENT_PRIMS } from "./views.ts";

/** Limits a schedule respects. */
export interface ScheduleLimits {
  /** Storage buffers one kernel may bind (reads and writes). */
  maxBuffers: number;
  /** Dynamic scalars one kernel may read. */
  maxParams: number;
  /** Elementwise ops one kernel may contain. */
  maxOps: number;
  /** The longest reduction a fused kernel performs (longer ones are library calls). */
  maxReduce: number;
}

/** The limits used unless a backend says otherwise. */
export const DEFAULT_LIMITS: ScheduleLimits = {
  maxBuffers: 8,
  maxParams: 48,
  maxOps: 1024,
  maxReduce: 1 << 20,
};

/** Where a step's value comes from: a trace value, by id. */
export type ValueId = number;

/** One step of a schedule. */
export type Step =
  | {
    readonly kind: "kernel";
    readonly kernel: FusedKernel;
    /** Per bound buffer, the value it holds (reads) or receives (writes). */
    readonly bindings: readonly ValueId[];
    /** Per parameter slot, the trace input (a traced number) it holds. */
    readonly params: readonly number[];
  }
  | {
    readonly kind: "library";
    readonly equation: TraceEquation;
  };

/** A trace split into steps. */
export interface Schedule {
  readonly trace: Trace;
  readonly steps: readonly Step[];
  /** Per step, the materialised values whose last use it is (freed after it). */
  readonly frees: readonly (readonly ValueId[])[];
  /** Values materialised by the steps (kernel outputs and library results). */
  readonly materialised: ReadonlySet<ValueId>;
}

type GroupKind = "fused" | "library";

interface Group {
  kind: GroupKind;
  /** The equation whose output is materialised. */
  root: number;
  /** The reduction equation the kernel performs, or -1. */
  reduce: number;
  /** Elementwise members so far (for the op cap). */
  size: number;
  /** Members that are program outputs too: the kernel stores them as well as the root. */
  stores: number[];
}

/** A use of a value by a non-movement equation, through a chain of movement equations. */
interface Use {
  consumer: number;
  /** Whether the movement between them only reshapes (the flat order is kept). */
  aligned: boolean;
  /** Whether no movement lies between them (the same shape, the same index). */
  direct: boolean;
}

const REDUCTIONS: ReadonlySet<Prim> = new Set(REDUCE_PRIMS);
/** Group marks: an equation not (yet) needed, and one recomputed in each kernel that uses it. */
const DEAD = -1;
const INLINE = -2;
/** The most ops a value recomputed in several kernels may cost. */
const MAX_RECOMPUTE = 3;
const LIBRARY: ReadonlySet<Prim> = new Set<Prim>(["matmul", "gather", "pad"]);

/**
 * Splits `trace` into steps within `limits`. `paramInputs` are the trace
 * inputs (by position) that are traced numbers: kernels read them from the
 * parameter block instead of a buffer.
 */
export function schedule(
  trace: Trace,
  paramInputs: ReadonlySet<number>,
  limits: ScheduleLimits = DEFAULT_LIMITS,
): Schedule {
  const forced = new Set<number>();
  for (;;) {
    const attempt = tryPlan(trace, paramInputs, limits, forced);
    if (attempt.ok) return attempt.schedule;
    forced.add(attempt.split);
  }
}

type Attempt = { ok: true; schedule: Schedule } | { ok: false; split: number };

function tryPlan(
  trace: Trace,
  paramInputs: ReadonlySet<number>,
  limits: ScheduleLimits,
  forced: ReadonlySet<number>,
): Attempt {
  const eqs = trace.equations;
  const producer = new Map<TraceValue, number>();
  eqs.forEach((e, i) => producer.set(e.output, i));
  const isMovement = (i: number) => MOVEMENT_PRIMS.has(eqs[i].prim);
  const paramValues = new Set([...paramInputs].map((i) => trace.inputs[i]));

  /** The first non-movement value behind `v`, and whether only reshapes lie between. */
  const base = (v: TraceValue): { value: TraceValue; aligned: boolean; direct: boolean } => {
    let aligned = true;
    let direct = true;
    for (;; direct = false) {
      const p = producer.get(v);
      if (p === undefined || !isMovement(p)) return { value: v, aligned, direct };
      if (eqs[p].prim !== "reshape" && eqs[p].prim !== "stopGradient") aligned = false;
      v = eqs[p].inputs[0];
    }
  };

  // Who uses each value, seen through movement; and which values are
  // needed as buffers (library operands and program outputs).
  const uses = new Map<TraceValue, Use[]>();
  const libraryUses = new Map<TraceValue, number[]>();
  const add = <T>(map: Map<TraceValue, T[]>, v: TraceValue, item: T) => {
    if (!map.has(v)) map.set(v, []);
    map.get(v)!.push(item);
  };
  eqs.forEach((e, i) => {
    if (isMovement(i)) return;
    const library = isLibrary(e, limits);
    for (const input of e.inputs) {
      const { value, aligned, direct } = base(input);
      if (library) add(libraryUses, value, i);
      else add(uses, value, { consumer: i, aligned, direct });
    }
  });
  const outputs = new Set(trace.outputs.map((out) => base(out).value));

  // What recomputing each elementwise value costs: its ops back to the
  // nearest values that are not elementwise (inputs, reductions, library calls).
  const cost = new Float64Array(eqs.length);
  eqs.forEach((e, i) => {
    if (isMovement(i) || !isElementwise(e)) return;
    cost[i] = 1;
    for (const input of e.inputs) {
      const p = producer.get(base(input).value);
      if (p !== undefined && isElementwise(eqs[p])) cost[i] += cost[p];
    }
  });

  // Groups, from the last equation to the first: a value joins the group
  // of its consumers when it can; a cheap value whose consumers are in
  // several groups is recomputed in each (INLINE).
  const groupOf = new Int32Array(eqs.length).fill(-1);
  const space: Space[] = new Array(eqs.length).fill("out");
  const aligned: boolean[] = new Array(eqs.length).fill(true);
  // Whether an equation's value is the kernel's value at the same index (no movement to the root).
  const direct: boolean[] = new Array(eqs.length).fill(true);
  const groups: Group[] = [];
  for (let i = eqs.length - 1; i >= 0; i--) {
    if (isMovement(i)) continue;
    const e = eqs[i];
    const v = e.output;
    // Uses by live consumers (those processed already, being later).
    const us = (uses.get(v) ?? []).filter((u) => groupOf[u.consumer] !== DEAD);
    const asBuffer = outputs.has(v) || (libraryUses.get(v) ?? []).some((c) => groupOf[c] !== DEAD);
    if (!asBuffer && us.length === 0) continue; // dead
    const start = (kind: GroupKind) => {
      groupOf[i] = groups.length;
      groups.push({
        kind,
        root: i,
        reduce: kind === "fused" && REDUCTIONS.has(e.prim) ? i : -1,
        size: 1,
        stores: [],
      });
    };
    if (e.prim === "matmul" && !asBuffer && !forced.has(i) && us.length === 1) {
      // A matmul with an epilogue: its single consumer iterates over its outputs.
      const c = us[0].consumer;
      const g = groupOf[c];
      if (
        g >= 0 && groups[g].kind === "fused" && groups[g].reduce === -1 && space[c] === "out" &&
        us[0].aligned && aligned[c] && matmulOperands(e, producer, eqs, paramValues) !== null
      ) {
        groupOf[i] = g;
        groups[g].reduce = i;
        continue;
      }
    }
    if (isLibrary(e, limits)) {
      start("library");
      continue;
    }
    const g = groupOf[us[0]?.consumer ?? -1] ?? DEAD;
    // A program output whose consumers are all in one kernel, at the same
    // index, is stored by that kernel too (an optimizer's new state beside
    // the new parameter).
    const outputOnly = outputs.has(v) &&
      !(libraryUses.get(v) ?? []).some((c) => groupOf[c] !== DEAD);
    const extraStore = outputOnly && isElementwise(e) && us.length > 0 &&
      us.every((u) =>
        u.direct && direct[u.consumer] && space[u.consumer] === "out" &&
        u.consumer !== groups[groupOf[u.consumer]]?.reduce
      );
    const joinable = (!asBuffer || extraStore) && !forced.has(i) && g >= 0 &&
      groups[g].kind === "fused" && us.every((u) => groupOf[u.consumer] === g);
    if (!joinable) {
      // Recomputed wherever it is used: cheap, and its operands are either
      // recomputed too or read from buffers (they are used by an INLINE value).
      if (!asBuffer && !forced.has(i) && isElementwise(e) && cost[i] <= MAX_RECOMPUTE) {
        groupOf[i] = INLINE;
        continue;
      }
      start("fused");
      continue;
    }
    const group = groups[g];
    const spaces = us.map((u) => (u.consumer === group.reduce ? "reduce" : space[u.consumer]));
    const sameSpace = spaces.every((s) => s === spaces[0]);
    if (REDUCTIONS.has(e.prim)) {
      // An epilogue: the single consumer iterates over this reduction's outputs.
      const epilogue = us.length === 1 && spaces[0] === "out" && us[0].aligned &&
        aligned[us[0].consumer] && group.reduce === -1;
      if (!epilogue) {
        start("fused");
        continue;
      }
      groupOf[i] = g;
      group.reduce = i;
      continue;
    }
    if (!sameSpace || group.size >= limits.maxOps) {
      start("fused");
      continue;
    }
    groupOf[i] = g;
    group.size++;
    if (asBuffer) group.stores.push(i);
    space[i] = spaces[0];
    aligned[i] = spaces[0] === "out" && us.every((u) => u.aligned && aligned[u.consumer]);
    direct[i] = spaces[0] === "out" && us.every((u) => u.direct && direct[u.consumer]);
  }

  // The steps, in the order of their roots (a valid order: a group reads
  // only values materialised before its root).
  const order = groups.map((_, g) => g).sort((a, b) => groups[a].root - groups[b].root);
  const materialised = new Set<ValueId>(
    groups.flatMap((g) => [g.root, ...g.stores].map((i) => eqs[i].output.id)),
  );
  const steps: Step[] = [];
  for (const g of order) {
    const group = groups[g];
    if (group.kind === "library") {
      steps.push({ kind: "library", equation: eqs[group.root] });
      continue;
    }
    const built = buildKernel(trace, g, group, groupOf, producer, paramInputs);
    const reads = built.kernel.buffers.filter((b) => b.access === "read").length;
    const words = built.kernel.params + literalWords(built.kernel).words.length;
    const writes = 1 + group.stores.length;
    if (reads + writes > limits.maxBuffers || words > limits.maxParams) {
      return { ok: false, split: splitPoint(eqs, groupOf, g, group, built.inlined) };
    }
    steps.push({
      kind: "kernel",
      kernel: built.kernel,
      bindings: built.bindings,
      params: built.params,
    });
  }
  return {
    ok: true,
    schedule: { trace, steps, frees: lastUses(trace, steps, materialised), materialised },
  };
}

/** The longest k one fused matmul takes (its loop takes up to 4 k-steps an iteration). */
const MATMUL_MAX_K = 4 * MAX_LOOP_ITERATIONS;

/**
 * The operands of a matmul equation as 3-D views of materialised buffers,
 * or null where the backend's own matmul must run it (float16 operands, a
 * very long k, operands that no single strided view reads, a traced number).
 */
function matmulOperands(
  e: TraceEquation,
  producer: ReadonlyMap<TraceValue, number>,
  eqs: readonly TraceEquation[],
  paramValues: ReadonlySet<TraceValue>,
): { aBase: TraceValue; bBase: TraceValue; matmul: KernelMatmul } | null {
  const [a, b] = e.inputs;
  const nd = a.shape.length;
  const [m, k, n] = [a.shape[nd - 2], a.shape[nd - 1], b.shape[nd - 1]];
  if (a.dtype !== "float32" || b.dtype !== "float32" || k > MATMUL_MAX_K) return null;
  const operand = (v: TraceValue) => {
    const chain: number[] = [];
    for (let p = producer.get(v); p !== undefined && MOVEMENT_PRIMS.has(eqs[p].prim);) {
      chain.push(p);
      v = eqs[p].inputs[0];
      p = producer.get(v);
    }
    if (paramValues.has(v)) return null;
    let address = bufferAddress(v.shape);
    for (const p of chain.reverse()) {
      address = moveAddress(address, eqs[p].prim, eqs[p].params, eqs[p].output.shape);
    }
    if (address.length !== 1) return null;
    const view = address[0];
    // The batch axes must collapse into one stride.
    const nb = view.shape.length - 2;
    for (let i = 0; i < nb - 1; i++) {
      if (view.shape[i] !== 1 && view.strides[i] !== view.strides[i + 1] * view.shape[i + 1]) {
        return null;
      }
    }
    const batch = sizeOf(view.shape.slice(0, nb));
    const batchStride = nb === 0 || batch === 1 ? 0 : view.strides[nb - 1];
    return {
      base: v,
      view: {
        shape: [batch, view.shape[nb], view.shape[nb + 1]],
        strides: [batchStride, view.strides[nb], view.strides[nb + 1]],
        offset: view.offset,
      },
    };
  };
  const [A, B] = [operand(a), operand(b)];
  if (!A || !B) return null;
  return {
    aBase: A.base,
    bBase: B.base,
    matmul: { a: A.view, b: B.view, batch: A.view.shape[0], m, k, n },
  };
}

/** Whether `e` is an elementwise primitive (one fused op). */
function isElementwise(e: TraceEquation): boolean {
  return !MOVEMENT_PRIMS.has(e.prim) && !REDUCTIONS.has(e.prim) && !LIBRARY.has(e.prim);
}

/** Whether `e` runs as a library call (the backend's own kernel). */
function isLibrary(e: TraceEquation, limits: ScheduleLimits): boolean {
  if (LIBRARY.has(e.prim)) return true;
  if (!REDUCTIONS.has(e.prim)) return false;
  const { axes } = e.params as { axes: readonly number[] };
  return sizeOf(axes.map((a) => e.inputs[0].shape[a])) > limits.maxReduce;
}

/**
 * An equation of group `g` to materialise so that it splits in two: the
 * middle one of its members and the values it recomputes (`inlined`).
 */
function splitPoint(
  eqs: readonly TraceEquation[],
  groupOf: Int32Array,
  g: number,
  group: Group,
  inlined: ReadonlySet<number>,
): number {
  const members: number[] = [];
  for (let i = 0; i < eqs.length; i++) {
    if ((groupOf[i] === g || inlined.has(i)) && i !== group.root && i !== group.reduce) {
      members.push(i);
    }
  }
  if (members.length === 0) {
    throw new RangeError(
      `jit: one ${eqs[group.root].prim} reads more buffers than a kernel may bind`,
    );
  }
  return members[Math.floor(members.length / 2)];
}

/** Chains of movement equations, interned: id 0 is the empty chain. */
class Chains {
  readonly #ids = new Map<string, number>();
  readonly links: { eq: number; next: number }[] = [{ eq: -1, next: -1 }];
  /** The chain that applies `eq` first, then `next`. */
  cons(eq: number, next: number): number {
    const key = `${eq},${next}`;
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.links.length;
      this.links.push({ eq, next });
      this.#ids.set(key, id);
    }
    return id;
  }
}

/** Builds the kernel of one fused group. */
function buildKernel(
  trace: Trace,
  g: number,
  group: Group,
  groupOf: Int32Array,
  producer: ReadonlyMap<TraceValue, number>,
  paramInputs: ReadonlySet<number>,
): { kernel: FusedKernel; bindings: ValueId[]; params: number[]; inlined: Set<number> } {
  const eqs = trace.equations;
  const chains = new Chains();
  const nodes: KernelNode[] = [];
  const buffers: KernelBuffer[] = [];
  const bindings: ValueId[] = [];
  const bufferOf = new Map<ValueId, number>();
  const params: number[] = [];
  const paramOf = new Map<number, number>();
  const inputIndex = new Map<TraceValue, number>(trace.inputs.map((v, i) => [v, i]));
  const constants = new Map(trace.constants.map((c) => [c.value, c.data]));
  const memo = new Map<string, number>();
  /** The recomputed (INLINE) equations this kernel computes. */
  const inlined = new Set<number>();

  const member = (v: TraceValue) => {
    const p = producer.get(v);
    return p !== undefined && (groupOf[p] === g || groupOf[p] === INLINE) &&
      !MOVEMENT_PRIMS.has(eqs[p].prim);
  };
  const keyOf = (v: TraceValue, chain: number, s: Space) => `${v.id}|${chain}|${s}`;

  /** A leaf node: a parameter, a literal or a load of a materialised value. */
  const leaf = (v: TraceValue, chain: number, s: Space): number => {
    const input = inputIndex.get(v);
    if (input !== undefined && paramInputs.has(input)) {
      let slot = paramOf.get(input);
      if (slot === undefined) {
        slot = params.length;
        params.push(input);
        paramOf.set(input, slot);
      }
      return push({ kind: "param", slot, dtype: v.dtype });
    }
    const data = constants.get(v);
    if (data && !(data instanceof Tensor) && data.length === 1) {
      return push({ kind: "literal", value: Number(data[0]), dtype: v.dtype });
    }
    let buffer = bufferOf.get(v.id);
    if (buffer === undefined) {
      buffer = buffers.length;
      buffers.push({ dtype: v.dtype, access: "read" });
      bindings.push(v.id);
      bufferOf.set(v.id, buffer);
    }
    let address = bufferAddress(v.shape);
    for (let c = chain; c !== 0; c = chains.links[c].next) {
      const m = eqs[chains.links[c].eq];
      address = moveAddress(address, m.prim, m.params, m.output.shape);
    }
    return push({ kind: "load", buffer, address, dtype: v.dtype, space: s });
  };
  const push = (node: KernelNode) => nodes.push(node) - 1;

  // An explicit stack: a task stays until its operands are built.
  type Task = { v: TraceValue; chain: number; space: Space };
  const build = (root: TraceValue, rootSpace: Space): number => {
    const stack: Task[] = [{ v: root, chain: 0, space: rootSpace }];
    while (stack.length > 0) {
      const task = stack[stack.length - 1];
      const key = keyOf(task.v, task.chain, task.space);
      if (memo.has(key)) {
        stack.pop();
        continue;
      }
      const p = producer.get(task.v);
      if (p !== undefined && MOVEMENT_PRIMS.has(eqs[p].prim)) {
        // Seen through: the node of the moved value, read through one more view.
        const inner = { v: eqs[p].inputs[0], chain: chains.cons(p, task.chain), space: task.space };
        const built = memo.get(keyOf(inner.v, inner.chain, inner.space));
        if (built === undefined) stack.push(inner);
        else {
          memo.set(key, built);
          stack.pop();
        }
        continue;
      }
      if (!member(task.v)) {
        memo.set(key, leaf(task.v, task.chain, task.space));
        stack.pop();
        continue;
      }
      const e = eqs[p!];
      if (p === group.reduce && e.prim === "matmul") {
        memo.set(key, push({ kind: "reduced", dtype: e.output.dtype }));
        stack.pop();
        continue;
      }
      if (p === group.reduce) {
        // The reduction's input is built in its own space, over the reduced shape.
        const input = { v: e.inputs[0], chain: 0, space: "reduce" as const };
        if (!memo.has(keyOf(input.v, 0, "reduce"))) stack.push(input);
        else {
          memo.set(key, push({ kind: "reduced", dtype: e.output.dtype }));
          stack.pop();
        }
        continue;
      }
      const operands = e.inputs.map((u) => ({ v: u, chain: task.chain, space: task.space }));
      const missing = operands.filter((o) => !memo.has(keyOf(o.v, o.chain, o.space)));
      if (missing.length > 0) {
        stack.push(...missing);
        continue;
      }
      const args = operands.map((o) => memo.get(keyOf(o.v, o.chain, o.space))!);
      const op = LOWERING[e.prim as keyof typeof LOWERING] as UnaryOp | BinaryOp | TernaryOp;
      if (groupOf[p!] === INLINE) inlined.add(p!);
      memo.set(key, push({ kind: "op", op, args, dtype: e.output.dtype, space: task.space }));
      stack.pop();
    }
    return memo.get(keyOf(root, 0, rootSpace))!;
  };

  // A matmul's operands are buffers 0 and 1, bound apart from the epilogue's
  // reads (the matmul reads them as vec4s).
  const core = group.reduce >= 0 ? eqs[group.reduce] : null;
  let matmul: FusedKernel["matmul"] = null;
  if (core?.prim === "matmul") {
    const operands = matmulOperands(core, producer, eqs, new Set())!;
    for (const v of [operands.aBase, operands.bBase]) {
      buffers.push({ dtype: v.dtype, access: "read" });
      bindings.push(v.id);
    }
    matmul = operands.matmul;
  }
  const stores: { node: number; buffer: number }[] = [];
  for (const i of [group.root, ...group.stores]) {
    const value = eqs[i].output;
    const node = build(value, "out");
    stores.push({ node, buffer: buffers.length });
    buffers.push({ dtype: value.dtype, access: "write" });
    bindings.push(value.id);
  }
  const rootValue = eqs[group.root].output;
  let reduce: FusedKernel["reduce"] = null;
  if (core && !matmul) {
    const r = eqs[group.reduce];
    const input = memo.get(keyOf(r.inputs[0], 0, "reduce"))!;
    reduce = {
      op: LOWERING[r.prim as (typeof REDUCE_PRIMS)[number]],
      input,
      inputShape: r.inputs[0].shape,
      axes: (r.params as { axes: readonly number[] }).axes,
      dtype: r.output.dtype,
    };
  }
  return {
    kernel: {
      shape: rootValue.shape,
      buffers,
      params: params.length,
      nodes,
      stores,
      reduce,
      matmul,
    },
    bindings,
    params,
    inlined,
  };
}

/** Per step, the materialised values it uses last (never program outputs). */
function lastUses(
  trace: Trace,
  steps: readonly Step[],
  materialised: ReadonlySet<ValueId>,
): ValueId[][] {
  const producer = new Map<number, TraceEquation>();
  for (const e of trace.equations) producer.set(e.output.id, e);
  const baseId = (v: TraceValue): ValueId => {
    let e = producer.get(v.id);
    while (e && MOVEMENT_PRIMS.has(e.prim)) {
      v = e.inputs[0];
      e = producer.get(v.id);
    }
    return v.id;
  };
  const last = new Map<ValueId, number>();
  steps.forEach((step, s) => {
    const read = step.kind === "kernel"
      ? step.bindings.filter((_, b) => step.kernel.buffers[b].access === "read")
      : step.equation.inputs.map(baseId);
    for (const id of read) last.set(id, s);
  });
  const kept = new Set(trace.outputs.map(baseId));
  const frees: ValueId[][] = steps.map(() => []);
  for (const [id, s] of last) {
    if (materialised.has(id) && !kept.has(id)) frees[s].push(id);
  }
  return frees;
}

/**
 * A schedule as text, one step a line: what each kernel computes (its
 * root, reduction and op count) and reads, and each library call.
 */
export function describeSchedule(plan: Schedule): string {
  const name = (id: ValueId) => `%${id}`;
  const producer = new Map(plan.trace.equations.map((e) => [e.output.id, e]));
  return plan.steps.map((step, s) => {
    if (step.kind === "library") {
      const e = step.equation;
      return `${s}: ${e.prim} ${e.inputs.map((v) => name(v.id)).join(" ")} -> ${name(e.output.id)}`;
    }
    const k = step.kernel;
    const reads = step.bindings.filter((_, b) => k.buffers[b].access === "read");
    const writes = step.bindings.filter((_, b) => k.buffers[b].access === "write");
    const ops = k.nodes.filter((n) => n.kind === "op").map((n) => (n as { op: string }).op);
    const root = producer.get(writes[0])?.prim ?? "?";
    const reduce = k.reduce
      ? ` ${k.reduce.op}[${k.reduce.axes}] of ${k.reduce.inputShape}`
      : k.matmul
      ? ` matmul ${k.matmul.batch}x[${k.matmul.m},${k.matmul.k}]·[${k.matmul.k},${k.matmul.n}]`
      : "";
    return `${s}: kernel [${k.shape}]${reduce} ${root} (${ops.join(",")}) reads ${
      reads.map(name).join(" ") || "-"
    }${k.params ? ` params ${k.params}` : ""} -> ${writes.map(name).join(" ")}`;
  }).join("\n");
}
