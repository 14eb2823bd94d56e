/**
 * The tape: a flat list of equations in execution order, which is already a
 * topological order. It is a small IR — each equation names a primitive, its
 * input variables, its output variable and static parameters — so it can be
 * printed, replayed in reverse for gradients, or (later) compiled.
 * @module
 */

import type { Prim, PrimParams } from "./primitives.ts";
import type { Tensor } from "./tensor.ts";
import type { TraceLevel } from "./core/interpreter.ts";
import { VJP_RULES } from "./vjp_rules.ts";

/** One recorded primitive application: `output = prim(...inputs; params)`. */
export interface Equation {
  /** The primitive applied. */
  readonly prim: Prim;
  /** Its tensor inputs. */
  readonly inputs: readonly Tensor[];
  /** The tensor it produced. */
  readonly output: Tensor;
  /** Its static parameters (axes, shapes, permutations). */
  readonly params: PrimParams;
}

/**
 * One recorded call of a function with a hand-written reverse rule
 * (`customVjp`, `checkpoint`): its tensor inputs and outputs and the rule,
 * which maps the outputs' cotangents (null: none reached that output) to the
 * inputs' (null: none). What the function computed inside is not recorded.
 */
export interface CustomStep {
  /** The name shown for the call. */
  readonly name: string;
  /** Its tensor inputs. */
  readonly inputs: readonly Tensor[];
  /** Its tensor outputs. */
  readonly outputs: readonly Tensor[];
  /** The reverse rule. */
  readonly pullback: (cotangents: readonly (Tensor | null)[]) => readonly (Tensor | null)[];
}

/**
 * A trace of the primitives that depend on a transform's inputs. An equation
 * is recorded only when one of its inputs is *active* (depends on an input),
 * and its output then becomes active too; everything else is a constant.
 */
export class Tape implements TraceLevel {
  /** The equations and the custom steps together, in execution order (what the reverse sweep replays). */
  readonly steps: (Equation | CustomStep)[] = [];

  /** The primitive equations among the steps, in execution order. */
  get equations(): Equation[] {
    return this.steps.filter((s): s is Equation => !("pullback" in s));
  }
  /** The traced function's inputs (the variables gradients are taken for). */
  readonly inputs: Tensor[] = [];
  #active = new Set<number>();

  /** Declares `t` an input of the trace. */
  addInput(t: Tensor): void {
    this.inputs.push(t);
    this.#active.add(t.id);
  }

  /** Whether `t` depends on the trace's inputs. */
  isActive(t: Tensor): boolean {
    return this.#active.has(t.id);
  }

  /** As a trace level: records the primitive (see `record`). */
  process(prim: Prim, inputs: readonly Tensor[], output: Tensor, params: PrimParams): void {
    this.record(prim, inputs, output, params);
  }

  /** Records an equation if any input is active. */
  record(
    prim: Prim,
    inputs: readonly Tensor[],
    output: Tensor,
    params: PrimParams,
  ): void {
    if (!inputs.some((t) => this.#active.has(t.id))) return;
    // A primitive without a VJP rule (stopGradient) passes no derivative:
    // its output stays inactive, like a constant.
    if (VJP_RULES[prim] === null) return;
    this.steps.push({ prim, inputs, output, params });
    this.#active.add(output.id);
  }

  /** Records a custom step if any input is active; its outputs become active. */
  recordCustom(step: CustomStep): boolean {
    if (!step.inputs.some((t) => this.#active.has(t.id))) return false;
    this.steps.push(step);
    for (const t of step.outputs) this.#active.add(t.id);
    return true;
  }
}
