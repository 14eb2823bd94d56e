/**
 * Which buffer each value a program's kernels write goes to, decided once
 * per compiled program:
 *
 * - **Donation.** An output may be written into the buffer of a donated
 *   input (`jit(fn, { donateArgnums })`) of the same dtype and size, when
 *   nothing reads that input after the kernel that writes the output. If
 *   that kernel reads the input itself, it must read it only at the element
 *   it stores, in the output space (an optimizer update `w - lr·g`, also as
 *   the epilogue of a matmul or a reduction); the kernel is then rewritten
 *   so the input's loads read the output buffer (one read-write binding:
 *   WebGPU refuses a buffer bound both ways in one dispatch). Every
 *   renderer stores an output element after loading what it reads for that
 *   element. Where a WebGPU workgroup computes one output of a reduction,
 *   only its first invocation stores. The other invocations load the
 *   element either before the workgroup's barriers (to feed the loop) or
 *   after them, for values nobody stores, so no read that matters sees the
 *   new value.
 * - **Kept intermediates.** Every other value a kernel writes that no
 *   output holds gets a slot. Slots are coloured by liveness (a value whose
 *   last read has passed gives its slot to a later value of the same dtype
 *   and size), and each call fills them from a `SlotPool` the jitted
 *   function keeps (`execute.ts`), preferring the buffers the program had
 *   last time: a warm call binds the same buffers as the one before and
 *   creates no buffer or bind group for them, and a function's programs
 *   for different signatures share one set of buffers.
 * @module
 */

import type { DType } from "../dtype.ts";
import { sizeOf } from "../shape.ts";
import type { Trace, TraceValue } from "../staging.ts";
import { type FusedKernel, isDense, type KernelNode } from "./ir.ts";
import type { Schedule, Step } from "./schedule.ts";
import { viewBase } from "./views.ts";

type ValueId = number;

/** An output written into a donated input's buffer. */
export interface Donation {
  /** The trace input (a donated tensor) whose buffer is reused. */
  readonly input: number;
  /** The trace output written into it. */
  readonly output: number;
  /** The step that writes the output. */
  readonly step: number;
  /** Whether that step also reads the input (then it must get the input's contents). */
  readonly inPlace: boolean;
}

/** The buffer plan of a program (see the module's text). */
export interface BufferPlan {
  /** The steps, with the kernels that update a donated input in place rewritten. */
  readonly steps: readonly Step[];
  readonly donations: readonly Donation[];
  /** Per value written by a kernel that is neither an output nor donated: its slot. */
  readonly slotOf: ReadonlyMap<ValueId, number>;
  /** How many slots (buffers kept between calls). */
  readonly slots: number;
  /** Per slot, what it holds: `dtype:elements`. */
  readonly slotKeys: readonly string[];
}

/** Dtypes updated in place: loads and stores of whole 32-bit words on every backend. */
const IN_PLACE_DTYPES: ReadonlySet<DType> = new Set<DType>(["float32", "int32"]);

/**
 * Plans the buffers of `plan`, donating the trace inputs in `donated` (tensor
 * inputs, by index) where that is safe.
 */
export function planBuffers(
  trace: Trace,
  plan: Schedule,
  donated: ReadonlySet<number>,
): BufferPlan {
  const baseId = viewBase(trace);
  const valueOf = new Map<ValueId, TraceValue>();
  for (const v of trace.inputs) valueOf.set(v.id, v);
  for (const e of trace.equations) valueOf.set(e.output.id, e.output);
  const base = (id: ValueId) => baseId(valueOf.get(id) ?? { id } as TraceValue);

  // The last step reading each storage, and who writes each value.
  const lastRead = new Map<ValueId, number>();
  const writer = new Map<ValueId, number>();
  plan.steps.forEach((step, s) => {
    if (step.kind === "kernel") {
      step.bindings.forEach((id, b) => {
        if (step.kernel.buffers[b].access === "read") lastRead.set(base(id), s);
        else writer.set(id, s);
      });
    } else {
      for (const v of step.equation.inputs) lastRead.set(baseId(v), s);
      writer.set(step.equation.output.id, s);
    }
  });
  const outputBases = new Set(trace.outputs.map(baseId));

  const steps = [...plan.steps];
  const donations: Donation[] = [];
  const taken = new Set<number>();
  const outputsTaken = new Set<ValueId>();
  trace.outputs.forEach((out) => {
    const s = writer.get(out.id);
    const step = s === undefined ? undefined : steps[s];
    if (!step || step.kind !== "kernel" || outputsTaken.has(out.id)) return;
    for (const i of donated) {
      const input = trace.inputs[i];
      if (taken.has(i) || outputBases.has(input.id)) continue;
      if (input.dtype !== out.dtype || sizeOf(input.shape) !== sizeOf(out.shape)) continue;
      if ((lastRead.get(input.id) ?? -1) > s!) continue;
      const reads = step.bindings.flatMap((id, b) =>
        step.kernel.buffers[b].access === "read" && base(id) === input.id ? [b] : []
      );
      const inPlace = reads.length > 0;
      if (inPlace) {
        const rewritten = updateInPlace(step, reads, out.id, input.id);
        if (!rewritten || !IN_PLACE_DTYPES.has(out.dtype)) continue;
        steps[s!] = rewritten;
      }
      taken.add(i);
      outputsTaken.add(out.id);
      donations.push({ input: i, output: out.id, step: s!, inPlace });
      return;
    }
  });

  // Slots for the other kernel-written values, by liveness.
  const slotOf = new Map<ValueId, number>();
  const free = new Map<string, number[]>();
  const slotKeys: string[] = [];
  const key = (v: TraceValue) => `${v.dtype}:${sizeOf(v.shape)}`;
  steps.forEach((step, s) => {
    if (step.kind === "kernel") {
      step.bindings.forEach((id, b) => {
        if (step.kernel.buffers[b].access !== "write") return;
        if (outputBases.has(id) || outputsTaken.has(id)) return;
        const k = key(valueOf.get(id)!);
        const list = free.get(k) ?? [];
        let slot = list.pop();
        if (slot === undefined) slot = slotKeys.push(k) - 1;
        slotOf.set(id, slot);
        free.set(k, list);
      });
    }
    for (const id of plan.frees[s]) {
      const slot = slotOf.get(id);
      if (slot === undefined) continue;
      const k = key(valueOf.get(id)!);
      free.set(k, [...(free.get(k) ?? []), slot]);
    }
  });
  return { steps, donations, slotOf, slots: slotKeys.length, slotKeys };
}

/**
 * `step` with its read bindings `reads` (holding donated input `input`)
 * replaced by loads of the buffer that receives `output`, or null where the
 * kernel reads them other than at the element it stores.
 */
function updateInPlace(
  step: Step & { kind: "kernel" },
  reads: readonly number[],
  output: ValueId,
  input: ValueId,
): Step | null {
  const k = step.kernel;
  const target = step.bindings.findIndex((id, b) =>
    id === output && k.buffers[b].access === "write"
  );
  const store = k.stores.find((st) => st.buffer === target);
  if (!store || store.space !== "out") return null;
  if (reads.some((b) => step.bindings[b] !== input || (k.matmul && b < 2))) return null;
  const elementwise = (n: KernelNode) =>
    n.kind !== "load" || !reads.includes(n.buffer) ||
    (n.space === "out" && n.address.length === 1 && isDense(n.address[0]) &&
      n.address[0].shape.length === k.shape.length &&
      n.address[0].shape.every((d, i) => d === k.shape[i]));
  if (!k.nodes.every(elementwise)) return null;
  // Drop the read buffers, renumbering the others.
  const renumber = new Map<number, number>();
  k.buffers.forEach((_, b) => {
    if (!reads.includes(b)) renumber.set(b, renumber.size);
  });
  const to = (b: number) => reads.includes(b) ? renumber.get(target)! : renumber.get(b)!;
  const kernel: FusedKernel = {
    ...k,
    buffers: k.buffers.filter((_, b) => !reads.includes(b)),
    nodes: k.nodes.map((n) => n.kind === "load" ? { ...n, buffer: to(n.buffer) } : n),
    stores: k.stores.map((st) => ({ ...st, buffer: to(st.buffer) })),
  };
  return { ...step, kernel, bindings: step.bindings.filter((_, b) => !reads.includes(b)) };
}
