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
 * A trace of the primitives that depend on a transform's inputs. An equation
 * is recorded only when one of its inputs is *active* (depends on an input),
 * and its output then becomes active too; everything else is a constant.
 */
export class Tape implements TraceLevel {
  /** Equations in execution order. */
  readonly equations: Equation[] = [];
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
    this.equations.push({ prim, inputs, output, params });
    this.#active.add(output.id);
  }
}
