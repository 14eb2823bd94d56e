/**
 * `vmap`: vectorising a per-example function. The function is traced once
 * at the per-example shapes (`makeTrace`: nothing runs), then its equations
 * are replayed on the whole batch through the batching rules
 * (`batch_rules.ts`). Equations that do not depend on a batched value run
 * once, unbatched. Every replayed primitive is an ordinary `apply`, so
 * `grad`, `jvp` and other transforms around a `vmap` see the batched
 * computation, and transforms inside it are traced through.
 * @module
 */

import { alias, apply, weakTensors } from "./core/interpreter.ts";
import { scoped } from "./core/scope.ts";
import { describe } from "./core/errors.ts";
import { resolveBackend } from "./backends.ts";
import { BATCH_RULES, type BatchedValue, moveAxisPerm } from "./batch_rules.ts";
import { callCustom, type CustomRule } from "./custom.ts";
import {
  AbstractArg,
  constantTensor,
  forEachStep,
  traceFunction,
  type TraceValue,
} from "./staging.ts";
import { shapeString } from "./shape.ts";
import { Tensor } from "./tensor.ts";
import { flattenTree, type Leaf } from "./tree.ts";

/** Options of `vmap`. */
export interface VmapOptions {
  /**
   * The batch axis of each argument: one number (or `null`) for all of
   * them, or one per argument; `null` marks an argument shared by every
   * example. Default 0. Negative axes count from the end.
   */
  inAxes?: number | null | readonly (number | null)[];
  /**
   * Where the batch axis goes in the results: one number for all, or one
   * per top-level result when the function returns an array. Default 0.
   */
  outAxes?: number | readonly number[];
  /** The batch size; required when no argument is batched, checked otherwise. */
  axisSize?: number;
}

/** Where `vmap` found its batch size, for the error when arguments disagree. */
interface SizeSource {
  what: string;
  size: number;
}

/**
 * Vectorises `fn` over a batch axis: `vmap(fn)(xs)` equals stacking
 * `fn(xs[i])` over the examples, computed with one batched primitive per
 * primitive of `fn` (no loop). Inside `fn`, tensors have their per-example
 * shapes. Composes with the other transforms: `vmap(grad(f))` gives
 * per-example gradients, `grad` of a `vmap` differentiates the batched
 * computation, and `vmap` nests.
 *
 * Arguments are pytrees; `inAxes` gives each argument's batch axis (`null`:
 * not batched); plain numbers are passed to `fn` unchanged. `fn` returns a
 * tensor or a pytree of tensors; a result that does not depend on a batched
 * argument is broadcast over the batch.
 *
 * @param fn A per-example function.
 * @param opts `inAxes`, `outAxes` and `axisSize`.
 * @returns The batched function.
 * @example
 * ```ts
 * import { tensor, type Tensor, vmap } from "littlegrad";
 * const dot = (a: Tensor, b: Tensor) => a.mul(b).sum();
 * const xs = tensor([[1, 2], [3, 4], [5, 6]]);
 * console.log(await vmap(dot)(xs, xs).array()); // [5, 25, 61]
 * // A shared second argument:
 * console.log(await vmap(dot, { inAxes: [0, null] })(xs, tensor([1, -1])).array()); // [-1, -1, -1]
 * ```
 */
export function vmap<A extends unknown[], R>(
  fn: (...args: A) => R,
  opts: VmapOptions = {},
): (...args: A) => R {
  if (typeof fn !== "function") {
    throw new TypeError(`vmap: expected a function, got ${describe(fn)}`);
  }
  return (...args: A): R => {
    const axes = argumentAxes(opts.inAxes, args.length);
    const leaves: { leaf: Leaf; axis: number | null }[] = [];
    const sizes: SizeSource[] = [];
    const specArgs = args.map((arg, i) => {
      const { leaves: argLeaves, unflatten } = flattenTree(arg);
      return unflatten(argLeaves.map((leaf) => {
        // Numbers (also one traced by an enclosing jit) pass through unbatched.
        if (!(leaf.value instanceof Tensor)) return leaf.value;
        if (weakTensors.has(leaf.value)) {
          leaves.push({ leaf, axis: null });
          return leaf.value;
        }
        const t = leaf.value;
        const where = `argument ${i}${leaf.path ? ` at '${leaf.path}'` : ""}`;
        const given = axes[i];
        if (given === null) {
          leaves.push({ leaf, axis: null });
          return t;
        }
        const axis = given < 0 ? given + t.ndim : given;
        if (!Number.isInteger(axis) || axis < 0 || axis >= t.ndim) {
          throw new RangeError(
            `vmap: inAxes ${given} is out of range for ${where} of shape ${shapeString(t.shape)}`,
          );
        }
        leaves.push({ leaf, axis });
        sizes.push({
          what: `${where} has ${t.shape[axis]} (axis ${axis} of ${shapeString(t.shape)})`,
          size: t.shape[axis],
        });
        return new AbstractArg({
          shape: t.shape.filter((_, a) => a !== axis),
          dtype: t.dtype,
          backend: t.backend,
        });
      }));
    });
    const size = batchSize(sizes, opts.axisSize);
    let structure: unknown;
    const trace = traceFunction(
      (...a: unknown[]) => {
        structure = (fn as (...a: unknown[]) => unknown)(...a);
        return structure;
      },
      specArgs,
      false,
    );
    const outputs = flattenTree(structure);
    const outAxes = resultAxes(opts.outAxes, structure, outputs.leaves);
    return scoped(() => {
      const env = new Map<TraceValue, BatchedValue>();
      trace.inputs.forEach((v, i) => {
        const { leaf, axis } = leaves[i];
        const t = leaf.value as Tensor;
        env.set(v, {
          t: axis === null || axis === 0
            ? t
            : apply("transpose", [t], { perm: moveAxisPerm(t.ndim, axis, 0) }),
          batched: axis !== null,
        });
      });
      const backend = resolveBackend(trace.backend);
      for (const c of trace.constants) {
        env.set(c.value, { t: constantTensor(c, backend), batched: false });
      }
      forEachStep(trace, (e) => {
        const operands = e.inputs.map((v) => env.get(v)!);
        const t = operands.some((v) => v.batched)
          ? BATCH_RULES[e.prim](operands, e.params as never, size, e.prim as never)
          : apply(e.prim, operands.map((v) => v.t), e.params as never);
        env.set(e.output, { t, batched: operands.some((v) => v.batched) });
      }, (region, inner) => {
        // A custom call: batched, its rule becomes the rule of the batched
        // function (see `batchRule`); unbatched, it is applied as it is.
        const operands = region.inputs.map((v) => env.get(v)!);
        const batched = operands.map((v) => v.batched);
        const any = batched.some((b) => b);
        let flags: boolean[] | null = null; // the outputs' batching, when body ran
        const body = (ts: readonly Tensor[]) => {
          region.inputs.forEach((v, i) => env.set(v, { t: ts[i], batched: batched[i] }));
          inner();
          const outs = region.outputs.map((v) => env.get(v)!);
          flags = outs.map((o) => o.batched || any);
          return outs.map(({ t, batched }) =>
            batched || !any ? t : apply("broadcast", [t], { shape: [size, ...t.shape] })
          );
        };
        const ts = operands.map((v) => v.t);
        const outs = any
          ? callCustom(batchRule(region.rule, batched, size), ts, body)
          : region.call(ts, body);
        region.outputs.forEach((v, i) => {
          env.set(v, { t: outs[i], batched: (flags as boolean[] | null)?.[i] ?? any });
        });
      });
      const seen = new Set<Tensor>();
      const results = trace.outputs.map((v, i) => {
        const { t, batched } = env.get(v)!;
        const full = batched ? t : apply("broadcast", [t], { shape: [size, ...t.shape] });
        const to = outAxes[i] < 0 ? outAxes[i] + full.ndim : outAxes[i];
        if (!Number.isInteger(to) || to < 0 || to >= full.ndim) {
          throw new RangeError(
            `vmap: outAxes ${outAxes[i]} is out of range for result ${
              trace.outputPaths[i] || "0"
            } of batched shape ${shapeString(full.shape)}`,
          );
        }
        const placed = to === 0
          ? full
          : apply("transpose", [full], { perm: moveAxisPerm(full.ndim, 0, to) });
        // Every result is a new tensor the caller owns, never an argument,
        // and a result returned twice is two tensors.
        const fresh = seen.has(placed) || leaves.some(({ leaf }) => leaf.value === placed) ||
            trace.constants.some((c) => c.data === placed)
          ? alias(placed)
          : placed;
        seen.add(fresh);
        return fresh;
      });
      return outputs.unflatten(results) as R;
    }, (r) => flattenTree(r).leaves.map((l) => l.value as Tensor));
  };
}

/**
 * A custom rule of a per-example function as the rule of the batched one:
 * `fwd` and `bwd` run under `vmap` (batched inputs and every output,
 * residual and cotangent on axis 0), and the cotangent of an input shared
 * by every example is the sum of the examples' cotangents.
 */
function batchRule(rule: CustomRule, batched: readonly boolean[], size: number): CustomRule {
  const inAxes = batched.map((b) => (b ? 0 : null));
  return {
    name: rule.name,
    fwdIsFn: rule.fwdIsFn,
    checked: rule.checked,
    fwd: (inputs) => {
      let rest: unknown;
      const [outputs, residuals] = vmap((...ts: Tensor[]) => {
        const forward = rule.fwd(ts);
        rest = forward.rest; // the same for every example: traced once
        return [forward.outputs, forward.residuals];
      }, { inAxes, axisSize: size })(...inputs);
      return { outputs, residuals, rest };
    },
    bwd: (residuals, rest, cotangents) => {
      let missing: boolean[] = [];
      const given = vmap((res: Tensor[], cts: Tensor[]) => {
        const grads = rule.bwd(res, rest, cts);
        missing = grads.map((g) => g === null);
        return grads.filter((g) => g !== null);
      }, { axisSize: size })([...residuals], [...cotangents]);
      let k = 0;
      return missing.map((none, i) => {
        if (none) return null;
        const g = given[k++];
        return batched[i] ? g : g.sum(0);
      });
    },
  };
}

function argumentAxes(
  inAxes: VmapOptions["inAxes"],
  count: number,
): (number | null)[] {
  if (inAxes === undefined) return Array(count).fill(0);
  if (inAxes === null || typeof inAxes === "number") return Array(count).fill(inAxes);
  if (!Array.isArray(inAxes) || inAxes.length !== count) {
    throw new TypeError(
      `vmap: inAxes must be a number, null, or one entry per argument (${count}), got ${
        describe(inAxes)
      }`,
    );
  }
  for (const a of inAxes) {
    if (a !== null && !Number.isInteger(a)) {
      throw new TypeError(`vmap: inAxes entries must be integers or null, got ${describe(a)}`);
    }
  }
  return [...inAxes];
}

function batchSize(sizes: SizeSource[], axisSize: number | undefined): number {
  if (axisSize !== undefined && (!Number.isInteger(axisSize) || axisSize < 0)) {
    throw new RangeError(`vmap: axisSize must be a non-negative integer, got ${axisSize}`);
  }
  const all = axisSize === undefined
    ? sizes
    : [{ what: `axisSize is ${axisSize}`, size: axisSize }, ...sizes];
  if (all.length === 0) {
    throw new TypeError(
      "vmap: no argument is batched (every inAxes is null or no argument is a tensor): " +
        "give axisSize, or the batch axis of an argument",
    );
  }
  if (all.some((s) => s.size !== all[0].size)) {
    throw new TypeError(
      `vmap: the batch axes disagree in size: ${all.map((s) => s.what).join("; ")}`,
    );
  }
  return all[0].size;
}

function resultAxes(
  outAxes: VmapOptions["outAxes"],
  structure: unknown,
  leaves: readonly Leaf[],
): number[] {
  if (outAxes === undefined) return leaves.map(() => 0);
  if (typeof outAxes === "number") return leaves.map(() => outAxes);
  if (!Array.isArray(structure) || outAxes.length !== structure.length) {
    throw new TypeError(
      "vmap: outAxes must be one number, or one per top-level result when the function " +
        `returns an array (got ${outAxes.length} for ${
          Array.isArray(structure) ? structure.length : "a non-array result"
        })`,
    );
  }
  // Each leaf takes the axis of the top-level result it belongs to.
  return leaves.map((l) => outAxes[Number(l.path.split(".")[0])]);
}
