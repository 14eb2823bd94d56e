/**
 * Convolution and pooling over NCHW images, composed from strided slices,
 * matmul and elementwise ops — so they need no kernel or gradient rule of
 * their own: a k×k convolution is the sum over the k² kernel taps of a
 * `[out, in]` weight matrix times the input shifted by that tap.
 * @module
 */

import { composite } from "./core/scope.ts";
import { concat } from "./ops/movement.ts";
import { Tensor } from "./tensor.ts";
import { describe } from "./core/errors.ts";
import { shapeString } from "./shape.ts";

/** A size per spatial axis, or one for both. */
export type Size2 = number | readonly [number, number];

/** Options of `conv2d`. */
export interface Conv2dOptions {
  /** Step between windows (default 1). */
  stride?: Size2;
  /** Zeros added on each side of the height and width (default 0). */
  padding?: Size2;
  /** Spacing between kernel taps (default 1). */
  dilation?: Size2;
  /** Channel groups: input and output channels are split into this many (default 1). */
  groups?: number;
}

/** Options of the pooling ops. */
export interface Pool2dOptions {
  /** Step between windows (default: the window size). */
  stride?: Size2;
  /**
   * Padding on each side, at most half the window (default 0): padded
   * elements never win a max and count as zeros in an average.
   */
  padding?: Size2;
}

function pair(
  op: string,
  name: string,
  v: Size2 | undefined,
  dflt: number,
  min: number,
): [number, number] {
  const p: [number, number] = v === undefined
    ? [dflt, dflt]
    : typeof v === "number"
    ? [v, v]
    : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new RangeError(`${op}: ${name} must be integers ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return p;
}

function outSize(
  op: string,
  size: number,
  kernel: number,
  stride: number,
  pad: number,
  dil: number,
): number {
  const span = dil * (kernel - 1) + 1;
  const out = Math.floor((size + 2 * pad - span) / stride) + 1;
  if (out < 1) {
    throw new RangeError(
      `${op}: a window of ${span} (kernel ${kernel}, dilation ${dil}) does not fit an input of ${size} with padding ${pad}`,
    );
  }
  return out;
}

/** The `[n, c, oh, ow]` view of the (padded) input seen by kernel tap `(i, j)`. */
function tap(
  x: Tensor,
  i: number,
  j: number,
  [oh, ow]: number[],
  [sh, sw]: number[],
  [dh, dw]: number[],
): Tensor {
  return x.get([], [], [i * dh, i * dh + sh * (oh - 1) + 1, sh], [
    j * dw,
    j * dw + sw * (ow - 1) + 1,
    sw,
  ]);
}

/**
 * 2-D convolution (cross-correlation, as in PyTorch and JAX) of an NCHW
 * input `[n, c, h, w]` with weights `[o, c / groups, kh, kw]`, with stride,
 * zero padding, dilation and groups. Differentiable in both arguments.
 *
 * @param x Input images `[n, c, h, w]`.
 * @param weight Kernels `[o, c / groups, kh, kw]`.
 * @param opts `stride`, `padding`, `dilation`, `groups`.
 * @returns `[n, o, oh, ow]`.
 * @example
 * ```ts
 * import { conv2d, ones } from "littlegrad";
 * const y = conv2d(ones([1, 1, 4, 4]), ones([2, 1, 3, 3]), { padding: 1 });
 * console.log(y.shape); // [1, 2, 4, 4]
 * ```
 */
export function conv2d(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  const op = "conv2d";
  if (!(x instanceof Tensor) || !(weight instanceof Tensor)) {
    throw new TypeError(`${op}: expected tensors, got ${describe(x)} and ${describe(weight)}`);
  }
  if (x.ndim !== 4 || weight.ndim !== 4) {
    throw new TypeError(
      `${op}: expected input [n, c, h, w] and weight [o, c/groups, kh, kw], got ${
        shapeString(x.shape)
      } and ${shapeString(weight.shape)}`,
    );
  }
  const groups = opts.groups ?? 1;
  const [n, c, h, w] = x.shape;
  const [o, cg, kh, kw] = weight.shape;
  if (
    !Number.isInteger(groups) || groups < 1 || c % groups !== 0 || o % groups !== 0 ||
    cg !== c / groups
  ) {
    throw new TypeError(
      `${op}: input ${shapeString(x.shape)} and weight ${
        shapeString(weight.shape)
      } do not fit groups=${groups} ` +
        `(need c % groups = 0, o % groups = 0 and weight.shape[1] = c / groups)`,
    );
  }
  const stride = pair(op, "stride", opts.stride, 1, 1);
  const padding = pair(op, "padding", opts.padding, 0, 0);
  const dilation = pair(op, "dilation", opts.dilation, 1, 1);
  const oh = outSize(op, h, kh, stride[0], padding[0], dilation[0]);
  const ow = outSize(op, w, kw, stride[1], padding[1], dilation[1]);
  return composite(op, () => {
    const padded = padding[0] || padding[1]
      ? x.pad([[0, 0], [0, 0], [padding[0], padding[0]], [padding[1], padding[1]]])
      : x;
    const og = o / groups;
    const outputs: Tensor[] = [];
    for (let g = 0; g < groups; g++) {
      const xg = groups === 1 ? padded : padded.get([], [g * cg, (g + 1) * cg]);
      const wg = groups === 1 ? weight : weight.get([g * og, (g + 1) * og]);
      let acc: Tensor | undefined;
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          // [og, cg] @ [n, cg, oh·ow] → [n, og, oh·ow]
          const patch = tap(xg, i, j, [oh, ow], stride, dilation).reshape([n, cg, oh * ow]);
          const term = wg.get([], [], i, j).matmul(patch);
          acc = acc ? acc.add(term) : term;
        }
      }
      outputs.push(acc!);
    }
    const joined = outputs.length === 1 ? outputs[0] : concat(outputs, 1);
    return joined.reshape([n, o, oh, ow]);
  });
}

function pool(
  op: string,
  x: Tensor,
  window: Size2,
  opts: Pool2dOptions,
  combine: (a: Tensor, b: Tensor) => Tensor,
  fill: number,
): { sum: Tensor; count: number } {
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: expected a tensor, got ${describe(x)}`);
  if (x.ndim !== 4) {
    throw new TypeError(`${op}: expected input [n, c, h, w], got ${shapeString(x.shape)}`);
  }
  const [kh, kw] = pair(op, "window", window, 1, 1);
  const s = opts.stride === undefined ? [kh, kw] : pair(op, "stride", opts.stride, 1, 1);
  const padding = pair(op, "padding", opts.padding, 0, 0);
  if (padding[0] > Math.floor(kh / 2) || padding[1] > Math.floor(kw / 2)) {
    // As in PyTorch: every window must cover at least one real element.
    throw new RangeError(
      `${op}: padding ${JSON.stringify(opts.padding)} is more than half the window ${
        JSON.stringify(window)
      }`,
    );
  }
  const oh = outSize(op, x.shape[2], kh, s[0], padding[0], 1);
  const ow = outSize(op, x.shape[3], kw, s[1], padding[1], 1);
  const padded = padding[0] || padding[1]
    ? x.pad([[0, 0], [0, 0], [padding[0], padding[0]], [padding[1], padding[1]]], fill)
    : x;
  let acc: Tensor | undefined;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const t = tap(padded, i, j, [oh, ow], s, [1, 1]);
      acc = acc ? combine(acc, t) : t;
    }
  }
  return { sum: acc!, count: kh * kw };
}

/**
 * Max pooling over `window`-sized windows of an NCHW input. Gradients at
 * ties split evenly between the tied pair (`maximum`'s rule), where
 * PyTorch picks one element.
 *
 * @example
 * ```ts
 * import { maxPool2d, arange } from "littlegrad";
 * console.log(await maxPool2d(arange(16).reshape([1, 1, 4, 4]), 2).array()); // [[[[5, 7], [13, 15]]]]
 * ```
 */
export function maxPool2d(x: Tensor, window: Size2, opts: Pool2dOptions = {}): Tensor {
  // Pads with the lowest finite float, not -inf (which debugNans would flag):
  // every window holds a real element, so the padding never wins.
  const lowest = -3.4028234663852886e38;
  return composite(
    "maxPool2d",
    () => pool("maxPool2d", x, window, opts, (a, b) => a.maximum(b), lowest).sum,
  );
}

/**
 * Average pooling over `window`-sized windows of an NCHW input; padded
 * zeros count in the average (PyTorch's default `count_include_pad`).
 *
 * @example
 * ```ts
 * import { avgPool2d, ones } from "littlegrad";
 * console.log(avgPool2d(ones([1, 3, 4, 4]), 2).shape); // [1, 3, 2, 2]
 * ```
 */
export function avgPool2d(x: Tensor, window: Size2, opts: Pool2dOptions = {}): Tensor {
  return composite("avgPool2d", () => {
    const { sum, count } = pool("avgPool2d", x, window, opts, (a, b) => a.add(b), 0);
    return sum.div(count);
  });
}
