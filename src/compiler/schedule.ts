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
 * own outputs. Reductions over the same space share a kernel (a row
 * kernel): a later one's input may read an earlier one's result broadcast
 * along the reduced axes, and an elementwise consumer over the whole
 * reduced space is stored row by row after them (softmax in one kernel).
 * Kernels stay within a cap on ops and the binding budget:
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
import { contiguousStrides, sizeOf } from "../shape.ts";
import { sameShape } from "../ops/_operands.ts";
import type { Trace, TraceEquation, TraceValue } from "../staging.ts";
import { Tensor } from "../tensor.ts";
import {
  type Address,
  type FusedKernel,
  isDense,
  type KernelBuffer,
  type KernelMatmul,
  type KernelNode,
  type KernelStore,
  literalWords,
  type Space,
} from "./ir.ts";
import { MAX_LOOP_ITERATIONS } from "../../kernels/common.ts";
import { bufferAddress, moveAddress, MOVEMENT_PRIMS, viewBase } from "./views.ts";

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
  /** Reductions one kernel may perform (one after another, over one space). */
  maxReductions: number;
}

/** The limits used unless a backend says otherwise. */
export const DEFAULT_LIMITS: ScheduleLimits = {
  maxBuffers: 8,
  maxParams: 48,
  maxOps: 1024,
  maxReduce: 1 << 20,
  maxReductions: 8,
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
  /** The matmul the kernel performs, or -1. */
  matmul: number;
  /** The reductions it performs (equations, latest first), all over one space. */
  reductions: number[];
  /**
   * Whether the root (and the other stores) lie in the reductions' input
   * space: the kernel iterates over the kept elements and stores rows.
   */
  rows: boolean;
  /** Elementwise members so far (for the op cap). */
  size: number;
  /** Members that are program outputs too: the kernel stores them as well as the root. */
  stores: number[];
  /** Every member, for relabelling their space when the group becomes a row kernel. */
  members: number[];
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
  /** Per recomputed (INLINE) equation, the groups that compute it. */
  const inlineReaders = new Map<number, Set<number>>();
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
        matmul: -1,
        reductions: kind === "fused" && REDUCTIONS.has(e.prim) ? [i] : [],
        rows: false,
        size: 1,
        stores: [],
        members: [i],
      });
    };
    // The groups that compute a consumer (a recomputed one: in each group computing it).
    const readers = new Set<number>();
    for (const u of us) {
      const c = groupOf[u.consumer];
      for (const r of c === INLINE ? inlineReaders.get(u.consumer)! : [c]) readers.add(r);
    }
    const single = readers.size === 1 && !asBuffer;
    if (!single && !asBuffer && !forced.has(i) && isElementwise(e) && cost[i] <= MAX_RECOMPUTE) {
      // Recomputed wherever it is used: cheap, and its operands are either
      // recomputed too or read from buffers (they are used by an INLINE value).
      groupOf[i] = INLINE;
      inlineReaders.set(i, readers);
      continue;
    }
    // The group that computes this value: its consumers' one group; or,
    // where it is needed as a buffer too (by other kernels, a library call,
    // or as a program output), the first of its consumers' groups to run,
    // which stores it for the rest (they all run later).
    let g = -1;
    if (!forced.has(i) && readers.size > 0) {
      if (single) g = [...readers][0];
      else {
        // Library calls (a matmul's operands included, even one fused with an
        // epilogue) read it before their kernel runs: they cannot compute it.
        const library = (libraryUses.get(v) ?? []).filter((c) => groupOf[c] !== DEAD)
          .map((c) => groupOf[c]);
        const firstRun = [...readers, ...library]
          .reduce((a, b) => (groups[b].root < groups[a].root ? b : a));
        if (readers.has(firstRun) && !library.includes(firstRun)) g = firstRun;
      }
      if (g >= 0 && groups[g].kind !== "fused") g = -1;
    }
    const store = !single;
    const mine = us.filter((u) => groupOf[u.consumer] === g);
    const join = (group: Group) => {
      groupOf[i] = g;
      group.members.push(i);
      if (store) group.stores.push(i);
    };
    if (e.prim === "matmul" && g >= 0) {
      // A matmul with an epilogue: its consumers iterate over its outputs.
      const group = groups[g];
      if (
        isElementwiseGroup(group) &&
        mine.every((u) => space[u.consumer] === "out" && u.aligned && aligned[u.consumer]) &&
        matmulOperands(e, producer, eqs, paramValues) !== null
      ) {
        group.matmul = i;
        join(group);
        continue;
      }
    }
    if (isLibrary(e, limits)) {
      // A matmul no epilogue takes is still a kernel where it can be one, so
      // its result goes to a buffer the program keeps (a library call's comes
      // from the pool).
      if (e.prim === "matmul" && matmulOperands(e, producer, eqs, paramValues) !== null) {
        start("fused");
        groups[groups.length - 1].matmul = i;
      } else start("library");
      continue;
    }
    if (g < 0) {
      start("fused");
      continue;
    }
    const group = groups[g];
    const spaces = mine.map((u) =>
      group.reductions.includes(u.consumer) ? "reduce" : space[u.consumer]
    );
    const sameSpace = spaces.every((s) => s === spaces[0]);
    if (REDUCTIONS.has(e.prim)) {
      if (group.matmul >= 0 || group.reductions.length >= limits.maxReductions) {
        start("fused");
        continue;
      }
      if (group.reductions.length > 0) {
        // Another reduction of the same space, run before the group's own:
        // its consumers read it per output or broadcast over the rows.
        const r = eqs[group.reductions[0]];
        const same = sameShape(r.inputs[0].shape, e.inputs[0].shape) &&
          sameShape(axesOf(r), axesOf(e));
        if (!same) {
          start("fused");
          continue;
        }
      } else if (
        mine.every((u, k) => spaces[k] === "out" && u.aligned && aligned[u.consumer])
      ) {
        // An epilogue: the consumers iterate over this reduction's outputs.
      } else if (sameShape(eqs[group.root].output.shape, e.inputs[0].shape)) {
        // A row kernel: the group iterates over this reduction's input, so it
        // becomes the rows stored after the reduction (its consumers read the
        // result broadcast; the build checks that they do).
        group.rows = true;
        for (const m of group.members) if (space[m] === "out") space[m] = "reduce";
      } else {
        start("fused");
        continue;
      }
      group.reductions.push(i);
      join(group);
      continue;
    }
    // A value stored by this kernel lies at the kernel's own index (an
    // optimizer's new state beside the new parameter).
    const rootSpace: Space = group.rows ? "reduce" : "out";
    const storable = !store || (isElementwise(e) &&
      sameShape(v.shape, eqs[group.root].output.shape) &&
      mine.every((u) =>
        u.direct && direct[u.consumer] && space[u.consumer] === rootSpace &&
        !isCore(group, u.consumer)
      ));
    // A cheap value read both per output and per reduced element is computed in each.
    const mixed = !sameSpace && cost[i] <= MAX_RECOMPUTE;
    if (!storable || (!sameSpace && !mixed) || group.size >= limits.maxOps) {
      start("fused");
      continue;
    }
    group.size++;
    join(group);
    // Only read by recomputed values: its place relative to the root is unknown.
    const seen = mine.length > 0 && !mixed;
    space[i] = mixed ? "out" : spaces[0] ?? rootSpace;
    aligned[i] = seen && spaces[0] === "out" && mine.every((u) => u.aligned && aligned[u.consumer]);
    direct[i] = seen && spaces[0] === rootSpace &&
      mine.every((u) => u.direct && direct[u.consumer]);
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
    if ("refused" in built) return { ok: false, split: built.refused };
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

/** Whether a fused group has neither a matmul nor a reduction (yet). */
function isElementwiseGroup(group: Group): boolean {
  return group.matmul < 0 && group.reductions.length === 0;
}

/** Whether equation `i` is its group's matmul or one of its reductions. */
function isCore(group: Group, i: number): boolean {
  return i === group.matmul || group.reductions.includes(i);
}

/** The reduced axes of a reduction equation. */
function axesOf(e: TraceEquation): readonly number[] {
  return (e.params as { axes: readonly number[] }).axes;
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
    if ((groupOf[i] === g || inlined.has(i)) && i !== group.root && !isCore(group, i)) {
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
):
  | { kernel: FusedKernel; bindings: ValueId[]; params: number[]; inlined: Set<number> }
  | { refused: number } {
  const eqs = trace.equations;
  // The reductions in the order they run, and the spaces they define.
  const reductions = [...group.reductions].sort((a, b) => a - b);
  const reductionIndex = new Map(reductions.map((p, k) => [p, k]));
  const first = reductions.length > 0 ? eqs[reductions[0]] : null;
  const inputShape = first?.inputs[0].shape ?? [];
  const axes = first ? axesOf(first) : [];
  const keptShape = inputShape.filter((_, a) => !axes.includes(a));
  const shape = group.rows ? keptShape : eqs[group.root].output.shape;
  const rootSpace: Space = group.rows ? "reduce" : "out";
  /** Per reduction, its `"reduced"` node. */
  const reducedNode = new Map<number, number>();
  /** A reduction that cannot be read where this kernel reads it (materialise it). */
  let refused = -1;
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
    return push({ kind: "load", buffer, address: addressOf(v, chain), dtype: v.dtype, space: s });
  };
  /** How the value at an index of the iteration space finds `v`'s element, through `chain`. */
  const addressOf = (v: TraceValue, chain: number): Address => {
    let address = bufferAddress(v.shape);
    for (let c = chain; c !== 0; c = chains.links[c].next) {
      const m = eqs[chains.links[c].eq];
      address = moveAddress(address, m.prim, m.params, m.output.shape);
    }
    return address;
  };
  /**
   * Whether reading reduction `v` through `chain` in space `s` reads its
   * result for the current output: at the output's own index, or broadcast
   * along the reduced axes of a reduced element.
   */
  const readsOwnResult = (v: TraceValue, chain: number, s: Space): boolean => {
    const address = addressOf(v, chain);
    if (address.length !== 1 || sizeOf(v.shape) !== sizeOf(shape)) return false;
    const view = address[0];
    if (s === "out") return (chain === 0 || sameShape(view.shape, shape)) && isDense(view);
    const kept = contiguousStrides(keptShape);
    return view.offset === 0 && sameShape(view.shape, inputShape) && view.shape.every((d, a) => {
      if (d === 1) return true;
      const k = axes.indexOf(a) >= 0 ? -1 : a - axes.filter((x) => x < a).length;
      return view.strides[a] === (k < 0 ? 0 : kept[k]);
    });
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
      if (p === group.matmul) {
        if (task.space !== "out" || !readsOwnResult(task.v, task.chain, "out")) {
          refused = p;
          return -1;
        }
        memo.set(key, push({ kind: "reduced", reduction: 0, dtype: e.output.dtype }));
        stack.pop();
        continue;
      }
      const k = reductionIndex.get(p!);
      if (k !== undefined) {
        // A reduction of this kernel: its result, wherever it is read from,
        // must be the current output's (else it is materialised instead).
        if (!readsOwnResult(task.v, task.chain, task.space)) {
          refused = p!;
          return -1;
        }
        // Its input is built in the reduce space, over the reduced shape.
        const input = { v: e.inputs[0], chain: 0, space: "reduce" as const };
        let node = reducedNode.get(p!);
        if (node === undefined && !memo.has(keyOf(input.v, 0, "reduce"))) {
          stack.push(input);
          continue;
        }
        if (node === undefined) {
          node = push({ kind: "reduced", reduction: k, dtype: e.output.dtype });
          reducedNode.set(p!, node);
        }
        memo.set(key, node);
        stack.pop();
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
  let matmul: FusedKernel["matmul"] = null;
  if (group.matmul >= 0) {
    const operands = matmulOperands(eqs[group.matmul], producer, eqs, new Set())!;
    for (const v of [operands.aBase, operands.bBase]) {
      buffers.push({ dtype: v.dtype, access: "read" });
      bindings.push(v.id);
    }
    matmul = operands.matmul;
  }
  const stores: KernelStore[] = [];
  for (const i of [group.root, ...group.stores]) {
    const value = eqs[i].output;
    // A reduction stored is the output's result; anything else lies in the root's space.
    const space = reductionIndex.has(i) ? "out" : rootSpace;
    const node = build(value, space);
    if (refused >= 0) return { refused };
    stores.push({ node, buffer: buffers.length, space });
    buffers.push({ dtype: value.dtype, access: "write" });
    bindings.push(value.id);
  }
  let reduce: FusedKernel["reduce"] = null;
  if (first) {
    reduce = {
      inputShape,
      axes,
      reductions: reductions.map((p) => {
        const r = eqs[p];
        return {
          op: LOWERING[r.prim as (typeof REDUCE_PRIMS)[number]],
          input: memo.get(keyOf(r.inputs[0], 0, "reduce"))!,
          dtype: r.output.dtype,
        };
      }),
    };
  }
  return {
    kernel: {
      shape,
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
  const baseId = viewBase(trace);
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
      ? ` ${
        k.reduce.reductions.map((r) => r.op).join(",")
      }[${k.reduce.axes}] of ${k.reduce.inputShape}`
      : k.matmul
      ? ` matmul ${k.matmul.batch}x[${k.matmul.m},${k.matmul.k}]·[${k.matmul.k},${k.matmul.n}]`
      : "";
    return `${s}: kernel [${k.shape}]${reduce} ${root} (${ops.join(",")}) reads ${
      reads.map(name).join(" ") || "-"
    }${k.params ? ` params ${k.params}` : ""} -> ${writes.map(name).join(" ")}`;
  }).join("\n");
}
