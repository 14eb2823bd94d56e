/**
 * Parameter initialisers, as in `jax.nn.initializers`: each factory returns
 * an `Initializer`, a function `(key, shape, opts?) → Tensor`. Fans follow
 * JAX's convention: for a shape `[..., fanIn, fanOut]` (a dense kernel is
 * `[in, out]`), leading axes multiply both (the receptive field of a conv
 * kernel); a 1-D shape has `fanIn = fanOut = shape[0]`.
 *
 * The normal variants are untruncated (like PyTorch's `xavier_normal_` and
 * `kaiming_normal_`; JAX truncates at two standard deviations).
 * @module
 */

import type { BackendName } from "./backends.ts";
import { full } from "./creation.ts";
import { type Key, normal as sampleNormal, uniform } from "./random.ts";
import { checkShape, type Shape, shapeString, sizeOf } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

/** Makes a parameter tensor of a given shape from a key. */
export type Initializer = (
  key: Key,
  shape: Shape,
  opts?: { backend?: BackendName },
) => Tensor;

/**
 * The fans of a kernel shape, JAX's convention: `shape[-2]` inputs and
 * `shape[-1]` outputs, times the product of the other axes.
 *
 * @param shape The parameter's shape.
 * @returns `{ fanIn, fanOut }`.
 * @example
 * ```ts
 * import { initializers } from "littlegrad";
 * console.log(initializers.fans([784, 128])); // { fanIn: 784, fanOut: 128 }
 * console.log(initializers.fans([3, 3, 16, 32])); // { fanIn: 144, fanOut: 288 }
 * ```
 */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  checkShape("initializers.fans", shape);
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  const [fanIn, fanOut] = shape.slice(-2);
  const field = sizeOf(shape.slice(0, -2));
  return { fanIn: fanIn * field, fanOut: fanOut * field };
}

type Mode = "fanIn" | "fanOut" | "fanAvg";

/**
 * Variance scaling, the family behind Glorot, He and LeCun: values with
 * variance `scale / n`, where `n` is the fan-in, the fan-out or their mean.
 *
 * @param scale The variance numerator (2 for He, 1 for Glorot and LeCun).
 * @param mode Which fan divides it.
 * @param distribution `"normal"` (untruncated) or `"uniform"` on `[-√(3v), √(3v))`.
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const init = initializers.varianceScaling(2, "fanIn", "normal"); // He normal
 * const w = init(random.key(0), [784, 128]);
 * ```
 */
export function varianceScaling(
  scale: number,
  mode: Mode,
  distribution: "normal" | "uniform",
): Initializer {
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new RangeError(`initializers.varianceScaling: scale must be positive, got ${scale}`);
  }
  if (!["fanIn", "fanOut", "fanAvg"].includes(mode)) {
    throw new TypeError(
      `initializers.varianceScaling: mode must be "fanIn", "fanOut" or "fanAvg", got ${
        String(mode)
      }`,
    );
  }
  if (distribution !== "normal" && distribution !== "uniform") {
    throw new TypeError(
      `initializers.varianceScaling: distribution must be "normal" or "uniform", got ${
        String(distribution)
      }`,
    );
  }
  return (key, shape, opts = {}) => {
    const { fanIn, fanOut } = fans(shape);
    const n = mode === "fanIn" ? fanIn : mode === "fanOut" ? fanOut : (fanIn + fanOut) / 2;
    if (n === 0) {
      throw new RangeError(
        `initializers: cannot scale by the ${mode} of shape ${shapeString(shape)} (it is 0)`,
      );
    }
    const variance = scale / n;
    if (distribution === "normal") {
      return sampleNormal(key, shape, { std: Math.sqrt(variance), backend: opts.backend });
    }
    const limit = Math.sqrt(3 * variance);
    return uniform(key, shape, { low: -limit, high: limit, backend: opts.backend });
  };
}

/**
 * Glorot (Xavier) uniform: `U(-√(6/(fanIn+fanOut)), √(6/(fanIn+fanOut)))`.
 *
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const w = initializers.glorotUniform()(random.key(0), [64, 32]);
 * ```
 */
export function glorotUniform(): Initializer {
  return varianceScaling(1, "fanAvg", "uniform");
}

/**
 * Glorot (Xavier) normal: standard deviation `√(2/(fanIn+fanOut))`.
 *
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const w = initializers.glorotNormal()(random.key(0), [64, 32]);
 * ```
 */
export function glorotNormal(): Initializer {
  return varianceScaling(1, "fanAvg", "normal");
}

/**
 * He (Kaiming) uniform, for ReLU layers: `U(-√(6/fanIn), √(6/fanIn))`.
 *
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const w = initializers.heUniform()(random.key(0), [784, 128]);
 * ```
 */
export function heUniform(): Initializer {
  return varianceScaling(2, "fanIn", "uniform");
}

/**
 * He (Kaiming) normal, for ReLU layers: standard deviation `√(2/fanIn)`.
 *
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const w = initializers.heNormal()(random.key(0), [784, 128]);
 * ```
 */
export function heNormal(): Initializer {
  return varianceScaling(2, "fanIn", "normal");
}

/**
 * LeCun normal, for tanh or SELU layers: standard deviation `√(1/fanIn)`.
 * The default kernel initialiser of `nn.initLinear` (as in Flax).
 *
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const w = initializers.lecunNormal()(random.key(0), [16, 16]);
 * ```
 */
export function lecunNormal(): Initializer {
  return varianceScaling(1, "fanIn", "normal");
}

/**
 * Normal values with mean 0 and standard deviation `std` (default 0.01).
 *
 * @param std The standard deviation.
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const table = initializers.normal(0.02)(random.key(0), [1000, 64]);
 * ```
 */
export function normal(std = 0.01): Initializer {
  if (!(std >= 0) || !Number.isFinite(std)) {
    throw new RangeError(`initializers.normal: std must be finite and >= 0, got ${std}`);
  }
  return (key, shape, opts = {}) => sampleNormal(key, shape, { std, backend: opts.backend });
}

/**
 * A constant: every element is `value`. The key is ignored.
 *
 * @param value The value.
 * @returns The initialiser.
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const b = initializers.constant(0.1)(random.key(0), [10]);
 * ```
 */
export function constant(value: number): Initializer {
  if (typeof value !== "number") {
    throw new TypeError(`initializers.constant: value must be a number, got ${typeof value}`);
  }
  return (_key, shape, opts = {}) => full(shape, value, { backend: opts.backend });
}

/**
 * Zeros (the default bias initialiser). The key is ignored.
 *
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const b = initializers.zeros(random.key(0), [10]);
 * ```
 */
export const zeros: Initializer = constant(0);

/**
 * Ones (the default layer-norm scale). The key is ignored.
 *
 * @example
 * ```ts
 * import { initializers, random } from "littlegrad";
 * const g = initializers.ones(random.key(0), [10]);
 * ```
 */
export const ones: Initializer = constant(1);
