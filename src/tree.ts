/**
 * Pytrees: nested plain objects and arrays whose leaves are tensors (or other
 * values). One small module serves the transforms and the optimizers.
 * @module
 */

import { Tensor } from "./tensor.ts";

/** A nested structure of plain objects and arrays with leaves of type `T`. */
export type Tree<T = Tensor> = T | readonly Tree<T>[] | {
  readonly [key: string]: Tree<T>;
};

/** @internal Whether `x` is a tree node: an array or a plain object (the rest are leaves). */
export function isNode(x: unknown): x is object {
  if (Array.isArray(x)) return true;
  if (x === null || typeof x !== "object") return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** A leaf with its path, e.g. `layers.0.w`. */
export interface Leaf {
  /** Dot-separated keys and indices from the root, `""` for a bare leaf. */
  path: string;
  /** The leaf itself. */
  value: unknown;
}

/**
 * Flattens a tree into its leaves (depth first, object keys in insertion
 * order) and a function that rebuilds a tree of the same structure.
 *
 * @param tree Any nested plain objects and arrays.
 * @returns The leaves with their paths, and `unflatten(newLeaves)`.
 * @example
 * ```ts
 * import { flattenTree, tensor } from "littlegrad";
 * const { leaves, unflatten } = flattenTree({ w: tensor([1]), b: [tensor([2])] });
 * console.log(leaves.map((l) => l.path)); // ["w", "b.0"]
 * const again = unflatten(leaves.map((l) => l.value));
 * ```
 */
export function flattenTree(tree: unknown): {
  leaves: Leaf[];
  unflatten: <T>(values: readonly T[]) => Tree<T>;
} {
  const leaves: Leaf[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => walk(child, join(path, String(i))));
    } else if (isNode(node)) {
      for (const [k, child] of Object.entries(node)) walk(child, join(path, k));
    } else leaves.push({ path, value: node });
  };
  walk(tree, "");
  const unflatten = <T>(values: readonly T[]): Tree<T> => {
    let i = 0;
    const build = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(build);
      if (isNode(node)) {
        return Object.fromEntries(
          Object.entries(node).map(([k, v]) => [k, build(v)]),
        );
      }
      return values[i++];
    };
    return build(tree) as Tree<T>;
  };
  return { leaves, unflatten };
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/**
 * The tensors among a tree's leaves.
 *
 * @example
 * ```ts
 * import { tensor, treeTensors } from "littlegrad";
 * console.log(treeTensors({ a: tensor(1), b: [tensor(2), "x"] }).length); // 2
 * ```
 */
export function treeTensors(tree: unknown): Tensor[] {
  return flattenTree(tree).leaves.map((l) => l.value).filter((v): v is Tensor =>
    v instanceof Tensor
  );
}

/**
 * Applies `fn` to corresponding tensor leaves of trees of the same structure.
 *
 * @param fn Called with the leaf of `tree` and the matching leaves of `rest`.
 * @param tree The tree whose structure the result takes.
 * @param rest Trees with the same structure.
 * @example
 * ```ts
 * import { tensor, treeMap } from "littlegrad";
 * const doubled = treeMap((x) => x.mul(2), { w: tensor([1, 2]) });
 * ```
 */
export function treeMap<T>(
  fn: (x: Tensor, ...rest: Tensor[]) => T,
  tree: unknown,
  ...rest: unknown[]
): Tree<T> {
  const { leaves, unflatten } = flattenTree(tree);
  const others = rest.map((r, j) => {
    const flat = flattenTree(r).leaves;
    if (
      flat.length !== leaves.length ||
      flat.some((l, i) => l.path !== leaves[i].path)
    ) {
      throw new TypeError(
        `treeMap: tree ${j + 1} does not have the structure of the first (paths ${
          leaves.map((l) => l.path).join(", ")
        } vs ${flat.map((l) => l.path).join(", ")})`,
      );
    }
    return flat;
  });
  return unflatten(leaves.map((leaf, i) => {
    if (!(leaf.value instanceof Tensor)) {
      throw new TypeError(`treeMap: leaf '${leaf.path}' is not a Tensor`);
    }
    return fn(leaf.value, ...others.map((o) => o[i].value as Tensor));
  }));
}

/**
 * Disposes every tensor in a tree (params, grads, optimizer state).
 *
 * @example
 * ```ts
 * import { disposeTree, tensor } from "littlegrad";
 * disposeTree({ w: tensor([1]), b: tensor([2]) });
 * ```
 */
export function disposeTree(tree: unknown): void {
  for (const t of treeTensors(tree)) t.dispose();
}
