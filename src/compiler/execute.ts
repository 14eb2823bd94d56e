/**
 * Running a schedule: each fused kernel compiled once by the backend, then
 * per call one dispatch per kernel and one backend call per library step.
 * What the kernels write goes where `planBuffers` says: outputs into new
 * buffers from the backend's pool, or into donated inputs' buffers; other
 * values into buffers the program keeps across calls (so a warm call binds
 * the buffers it bound before: no new buffer, no new bind group). Library
 * results are taken from the pool and handed back after their last use.
 * Traced numbers travel in each kernel's parameter block, not in buffers.
 * @module
 */

import type { Backend, CompiledKernel, Storage, View } from "../backend.ts";
import { isContiguous } from "../backend.ts";
import { type Prim, type PrimParams, runPrimitive } from "../primitives.ts";
import { contiguousStrides } from "../shape.ts";
import type { Trace, TraceValue } from "../staging.ts";
import { Tensor } from "../tensor.ts";
import { type BufferPlan, planBuffers } from "./buffers.ts";
import { type Schedule, schedule, type ScheduleLimits } from "./schedule.ts";
import { DEFAULT_LIMITS } from "./schedule.ts";
import { MOVEMENT_PRIMS } from "./views.ts";

/**
 * The buffers the programs of one jitted function keep between calls, by
 * backend, dtype and size: a call takes its slots' buffers (the ones it had
 * last time, where they are free) and gives them back when it ends, so
 * programs of one function share them and a warm call binds what the last
 * one bound. `trimMemory()` frees every pool's buffers (they are made again
 * when needed).
 */
export class SlotPool {
  readonly #free = new Map<string, Set<Storage>>();

  constructor() {
    pools.add(new WeakRef(this));
  }

  /** `preferred` if it is free, else any free buffer for `key`, taken out of the pool. */
  take(key: string, preferred: Storage | undefined): Storage | undefined {
    const free = this.#free.get(key);
    if (!free || free.size === 0) return undefined;
    const storage = preferred && free.has(preferred) ? preferred : free.values().next().value!;
    free.delete(storage);
    return storage;
  }

  /** Puts a buffer (held for the pool: `refs` counts it) back. */
  give(key: string, storage: Storage): void {
    const free = this.#free.get(key) ?? new Set();
    free.add(storage);
    this.#free.set(key, free);
  }

  /** Frees every buffer in the pool. */
  release(): void {
    for (const free of this.#free.values()) {
      for (const storage of free) if (--storage.refs === 0) storage.backend.free(storage);
    }
    this.#free.clear();
  }
}

const pools = new Set<WeakRef<SlotPool>>();

/** Frees the buffers of every jitted function's slot pool (for `trimMemory`). */
export function releaseSlotPools(): void {
  for (const ref of pools) {
    const pool = ref.deref();
    if (pool) pool.release();
    else pools.delete(ref);
  }
}

/** A trace compiled for one backend. */
export interface CompiledProgram {
  readonly schedule: Schedule;
  /** Where the kernels' results go: donated inputs, slots kept by the program. */
  readonly buffers: BufferPlan;
  /** Per step, its compiled kernel (null for a library step). */
  readonly kernels: readonly (CompiledKernel | null)[];
  /**
   * Runs the program on `inputs`, in `trace.inputs` order: tensors, and
   * plain numbers for the traced-number inputs. Returns the outputs. The
   * donated inputs' buffers may now hold outputs: the caller disposes them.
   */
  run(inputs: readonly (Tensor | number)[]): (Tensor | number)[];
  /** Outputs the last call wrote into donated inputs' buffers. */
  readonly donatedLastCall: number;
  /**
   * Frees the constants the program uploaded and its slot pool's buffers
   * (it stays usable: they are made again).
   */
  release(): void;
}

/**
 * Schedules `trace` and compiles its kernels on `backend` (which must have
 * `compileKernel`); the tensor inputs in `donated` may have their buffers
 * reused for outputs.
 */
export function compileProgram(
  trace: Trace,
  paramInputs: ReadonlySet<number>,
  backend: Backend,
  limits: Partial<ScheduleLimits> = {},
  donated: ReadonlySet<number> = new Set(),
  pool: SlotPool = new SlotPool(),
): CompiledProgram {
  const scheduled = schedule(trace, paramInputs, {
    ...DEFAULT_LIMITS,
    maxBuffers: backend.maxKernelBuffers ?? DEFAULT_LIMITS.maxBuffers,
    ...limits,
  });
  const buffers = planBuffers(trace, scheduled, donated);
  const plan: Schedule = { ...scheduled, steps: buffers.steps };
  const kernels = plan.steps.map((
    s,
  ) => (s.kind === "kernel" ? backend.compileKernel!(s.kernel) : null));
  /** Per slot, its buffer during a call, and the one it had in the last call. */
  const slots: (Storage | undefined)[] = new Array(buffers.slots);
  const lastSlots: (Storage | undefined)[] = new Array(buffers.slots);
  const slotKey = (i: number) => `${backend.name}:${buffers.slotKeys[i]}`;
  const donationOf = new Map(buffers.donations.map((d) => [d.output, d]));
  let donatedLastCall = 0;
  const producer = new Map(trace.equations.map((e) => [e.output, e]));
  const inputIndex = new Map(trace.inputs.map((v, i) => [v, i]));
  const constants = new Map(trace.constants.map((c) => [c.value, c.data]));
  // Host constants are uploaded once and kept by the program (as captured
  // tensors are kept by the caller): a warm call uploads nothing.
  const uploaded = new Map<TraceValue, Storage>();

  const run = (inputs: readonly (Tensor | number)[]): (Tensor | number)[] => {
    const env = new Map<TraceValue, View>();
    /** Storages this call created; those no output holds are freed at the end. */
    const created = new Set<Storage>();
    const dense = (storage: Storage, shape: readonly number[]): View => ({
      storage,
      shape,
      strides: contiguousStrides(shape),
      offset: 0,
    });
    const own = (storage: Storage) => (created.add(storage), storage);

    /** The view of `v`, materialising inputs, constants and views on demand. */
    const resolve = (v: TraceValue): View => {
      const known = env.get(v);
      if (known) return known;
      let view: View;
      const input = inputIndex.get(v);
      const e = producer.get(v);
      if (input !== undefined) {
        const x = inputs[input];
        if (typeof x === "number") {
          const host = v.dtype === "float32" ? new Float32Array([x]) : new Int32Array([x]);
          view = dense(own(backend.upload(host, v.dtype)), v.shape);
        } else view = kernelReady(x.view("jit"));
      } else if (constants.has(v)) {
        const data = constants.get(v)!;
        if (data instanceof Tensor) view = kernelReady(data.view("jit"));
        else {
          let storage = uploaded.get(v);
          if (!storage) {
            storage = backend.upload(data, v.dtype);
            storage.refs++; // the program's
            uploaded.set(v, storage);
          }
          view = dense(storage, v.shape);
        }
      } else if (e && MOVEMENT_PRIMS.has(e.prim)) {
        const from = resolve(e.inputs[0]);
        view = runPrimitive(e.prim, [from], e.params as PrimParams<Prim>, e.output);
        if (view.storage !== from.storage) own(view.storage); // a reshape that copied
      } else {
        throw new Error(`internal: jit value %${v.id} was never computed`);
      }
      env.set(v, view);
      return view;
    };
    /** `view` itself where kernels can read it as a dense buffer, else a copy. */
    const kernelReady = (view: View): View => {
      if (view.offset === 0 && isContiguous(view)) return view;
      const copy = backend.map("copy", [view], view.shape, view.storage.dtype);
      return dense(own(copy), view.shape);
    };

    /** The buffer donated input `d.input` gives its output, if it can give one. */
    const donatedBuffer = (d: (typeof buffers.donations)[number]): Storage | undefined => {
      const x = inputs[d.input] as Tensor;
      const view = x.view("jit");
      const storage = view.storage;
      const shared =
        inputs.some((y, i) =>
          i !== d.input && y instanceof Tensor && y.view("jit").storage === storage
        ) || trace.constants.some((c) =>
          c.data instanceof Tensor && c.data.view("jit").storage === storage
        );
      if (
        storage.refs === 1 && !shared && storage.backend === backend && view.offset === 0 &&
        storage.size === x.size && isContiguous(view)
      ) {
        donatedLastCall++;
        return storage;
      }
      // Shared with another tensor, or not dense: an update in place gets a copy.
      return d.inPlace
        ? own(backend.map("copy", [view], view.shape, view.storage.dtype))
        : undefined;
    };

    donatedLastCall = 0;
    for (let i = 0; i < slots.length; i++) slots[i] = pool.take(slotKey(i), lastSlots[i]);
    try {
      plan.steps.forEach((step, s) => {
        if (step.kind === "kernel") {
          const kernel = step.kernel;
          const reads: Storage[] = [];
          const writes: TraceValue[] = [];
          const given: (Storage | undefined)[] = [];
          step.bindings.forEach((id, b) => {
            const v = valueById(trace, id);
            if (kernel.buffers[b].access === "read") return reads.push(resolve(v).storage);
            writes.push(v);
            const slot = buffers.slotOf.get(id);
            const donation = donationOf.get(id);
            given.push(
              slot !== undefined ? slots[slot] : donation ? donatedBuffer(donation) : undefined,
            );
          });
          const words = step.params.map((i) => paramWord(inputs[i], trace.inputs[i].dtype));
          const outs = kernels[s]!.run(reads, words, given);
          outs.forEach((storage, k) => {
            const slot = buffers.slotOf.get(writes[k].id);
            if (slot !== undefined && storage !== slots[slot]) {
              // A slot's new buffer (none was free, or the old one's device was lost): the pool's.
              const old = slots[slot];
              if (old && --old.refs === 0) backend.free(old);
              storage.refs++;
              slots[slot] = storage;
            } else if (slot === undefined && storage !== given[k]) own(storage);
            env.set(writes[k], dense(storage, writes[k].shape));
          });
        } else {
          const e = step.equation;
          const views = e.inputs.map(resolve);
          const out = runPrimitive(e.prim, views, e.params as PrimParams<Prim>, e.output);
          env.set(e.output, dense(own(out.storage), e.output.shape));
        }
        for (const id of plan.frees[s]) {
          const v = valueById(trace, id);
          const view = env.get(v);
          if (view && created.delete(view.storage)) backend.free(view.storage);
          env.delete(v);
        }
      });
      // A traced number returned as it is comes back as that number.
      return trace.outputs.map((v) => {
        const input = inputIndex.get(v);
        const x = input === undefined ? undefined : inputs[input];
        return typeof x === "number" ? x : new Tensor(resolve(v));
      });
    } finally {
      // Whatever no output holds goes back to the backend's pool; the slots to the slot pool.
      for (const storage of created) if (storage.refs === 0) backend.free(storage);
      slots.forEach((storage, i) => {
        if (storage) pool.give(slotKey(i), storage);
        lastSlots[i] = storage;
        slots[i] = undefined;
      });
    }
  };
  const release = () => {
    pool.release();
    lastSlots.fill(undefined);
    for (const storage of uploaded.values()) if (--storage.refs === 0) backend.free(storage);
    uploaded.clear();
  };
  return {
    schedule: plan,
    buffers,
    kernels,
    run,
    release,
    get donatedLastCall() {
      return donatedLastCall;
    },
  };
}

const byId = new WeakMap<Trace, Map<number, TraceValue>>();

/** The trace value with id `id`. */
function valueById(trace: Trace, id: number): TraceValue {
  let map = byId.get(trace);
  if (!map) {
    map = new Map();
    for (const v of trace.inputs) map.set(v.id, v);
    for (const c of trace.constants) map.set(c.value.id, c.value);
    for (const e of trace.equations) map.set(e.output.id, e.output);
    byId.set(trace, map);
  }
  return map.get(id)!;
}

const word = new DataView(new ArrayBuffer(4));

/** A traced number as its parameter-block word: float32 or int32 bits. */
function paramWord(x: Tensor | number, dtype: string): number {
  if (typeof x !== "number") throw new TypeError("internal: a jit parameter is not a number");
  if (dtype === "float32") word.setFloat32(0, x, true);
  else word.setInt32(0, x, true);
  return word.getUint32(0, true);
}
