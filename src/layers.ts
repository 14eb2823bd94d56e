/**
 * Layers as pure functions over parameter pytrees, in the style of JAX's
 * `stax` and Flax's functional core: `initX(key, ...)` returns a plain
 * object of fresh tensors (the caller owns them; `disposeTree` releases
 * them), and `x(params, input, opts)` applies the layer without touching its
 * arguments. Parameters compose by nesting: an MLP's parameters are
 * `{ layers: [{ w, b }, ...] }`, whose leaves are named `layers.0.w`,
 * `layers.0.b`, ... in checkpoints.
 *
 * Dense kernels are `[in, out]` (the JAX/Flax layout, `y = x·w + b`); a
 * PyTorch `Linear.weight` is the transpose.
 * @module
 */

import { ones, tensor, zeros } from "./creation.ts";
import type { BackendName } from "./backends.ts";
import { conv2d as conv2dOp, type Conv2dOptions, type Size2 } from "./conv.ts";
import { type Initializer, lecunNormal, normal as normalInit } from "./initializers.ts";
import { bernoulli, type Key, split } from "./random.ts";
import { shapeString } from "./shape.ts";
import type { DType } from "./dtype.ts";
import { composite } from "./core/scope.ts";
import { describe, named } from "./core/errors.ts";
import { oneHot as coreOneHot } from "./ops/indexing.ts";
import { Tensor } from "./tensor.ts";

function checkSize(op: string, name: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(`${op}: ${name} must be a positive integer, got ${n}`);
  }
}

function checkTensor(op: string, name: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${op}: ${name} must be a Tensor, got ${describe(x)}`);
  }
  return x;
}

// ---- linear ----------------------------------------------------------------------

/**
 * Parameters of a dense layer: kernel `w` of shape `[in, out]` and bias `b`
 * of shape `[out]` (absent when made with `bias: false`).
 */
export type LinearParams = { w: Tensor; b?: Tensor };

/** Options of `initLinear` and `initMlp`. */
export interface LinearInitOptions {
  /** Kernel initialiser (default `initializers.lecunNormal()`, as in Flax). */
  wInit?: Initializer;
  /** Bias initialiser (default zeros). */
  bInit?: Initializer;
  /** Whether to have a bias (default `true`). */
  bias?: boolean;
  /** Backend of the parameters (default: the current default backend). */
  backend?: BackendName;
}

/**
 * Parameters of a dense layer `inFeatures → outFeatures`.
 *
 * @param key The PRNG key (split internally for the kernel and the bias).
 * @param inFeatures Size of the input's last axis.
 * @param outFeatures Size of the output's last axis.
 * @param opts Initialisers, `bias`, `backend`.
 * @returns `{ w: [inFeatures, outFeatures], b: [outFeatures] }`.
 * @example
 * ```ts
 * import { initializers, nn, random } from "littlegrad";
 * const p = nn.initLinear(random.key(0), 784, 128, { wInit: initializers.heNormal() });
 * console.log(p.w.shape, p.b?.shape); // [784, 128] [128]
 * ```
 */
export function initLinear(
  key: Key,
  inFeatures: number,
  outFeatures: number,
  opts: LinearInitOptions = {},
): LinearParams {
  checkSize("nn.initLinear", "inFeatures", inFeatures);
  checkSize("nn.initLinear", "outFeatures", outFeatures);
  const { wInit = lecunNormal(), bInit, bias = true, backend } = opts;
  const [wKey, bKey] = split(key);
  const w = wInit(wKey, [inFeatures, outFeatures], { backend });
  if (!bias) return { w };
  const b = bInit ? bInit(bKey, [outFeatures], { backend }) : zeros([outFeatures], { backend });
  return { w, b };
}

/**
 * A dense layer: `x·w + b` over the last axis of `x` (any leading axes).
 *
 * @param params `{ w, b }` from `initLinear`.
 * @param x Input of shape `[..., in]`.
 * @returns Output of shape `[..., out]`.
 * @example
 * ```ts
 * import { nn, random, tensor } from "littlegrad";
 * const p = nn.initLinear(random.key(0), 3, 2);
 * const y = nn.linear(p, tensor([[1, 2, 3]])); // shape [1, 2]
 * ```
 */
export function linear(params: LinearParams, x: Tensor): Tensor {
  const w = checkTensor("nn.linear", "params.w", params?.w);
  checkTensor("nn.linear", "x", x);
  if (w.ndim !== 2) {
    throw new TypeError(`nn.linear: params.w must be [in, out], got shape ${shapeString(w.shape)}`);
  }
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== w.shape[0]) {
    throw new TypeError(
      `nn.linear: input of shape ${shapeString(x.shape)} for a layer of shape ${
        shapeString(w.shape)
      } (the last axis must be ${w.shape[0]})`,
    );
  }
  const b = params.b === undefined ? undefined : checkTensor("nn.linear", "params.b", params.b);
  return composite("nn.linear", () => {
    const y = x.matmul(w);
    return b ? y.add(b) : y;
  });
}

// ---- conv2d ----------------------------------------------------------------------

/**
 * Parameters of a 2-D convolution: kernels `w` of shape
 * `[out, in / groups, kh, kw]` (the layout of the `conv2d` op and of
 * PyTorch's `Conv2d.weight`) and bias `b` of shape `[out]` (absent when made
 * with `bias: false`).
 */
export type Conv2dParams = { w: Tensor; b?: Tensor };

/** Options of `initConv2d`. */
export interface Conv2dInitOptions extends LinearInitOptions {
  /** Channel groups (default 1): the kernels see `inChannels / groups` channels each. */
  groups?: number;
}

function kernelPair(op: string, kernel: Size2): [number, number] {
  const k: [number, number] = typeof kernel === "number"
    ? [kernel, kernel]
    : Array.isArray(kernel) && kernel.length === 2
    ? [kernel[0], kernel[1]]
    : [Number.NaN, Number.NaN];
  if (!k.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(
      `${op}: kernel must be a positive integer or a pair of them, got ${JSON.stringify(kernel)}`,
    );
  }
  return k;
}

/**
 * Parameters of a 2-D convolution `inChannels → outChannels` with a
 * `kernel`-sized window. The kernel initialiser sees the shape
 * `[kh, kw, inChannels / groups, outChannels]` (JAX's HWIO layout), so its
 * fans are `fanIn = (inChannels / groups)·kh·kw` and
 * `fanOut = outChannels·kh·kw`, as for a conv kernel in JAX and PyTorch; the
 * result is then transposed to `[out, in / groups, kh, kw]`.
 *
 * @param key The PRNG key (split internally for the kernel and the bias).
 * @param inChannels Channels of the input (axis 1 of NCHW).
 * @param outChannels Channels of the output.
 * @param kernel Window size: one number for both axes or `[kh, kw]`.
 * @param opts Initialisers (default LeCun normal kernel, zero bias), `bias`, `groups`, `backend`.
 * @returns `{ w: [outChannels, inChannels / groups, kh, kw], b: [outChannels] }`.
 * @example
 * ```ts
 * import { initializers, nn, random } from "littlegrad";
 * const p = nn.initConv2d(random.key(0), 3, 16, 3, { wInit: initializers.heNormal() });
 * console.log(p.w.shape, p.b?.shape); // [16, 3, 3, 3] [16]
 * ```
 */
export function initConv2d(
  key: Key,
  inChannels: number,
  outChannels: number,
  kernel: Size2,
  opts: Conv2dInitOptions = {},
): Conv2dParams {
  const op = "nn.initConv2d";
  checkSize(op, "inChannels", inChannels);
  checkSize(op, "outChannels", outChannels);
  const [kh, kw] = kernelPair(op, kernel);
  const { wInit = lecunNormal(), bInit, bias = true, backend, groups = 1 } = opts;
  checkSize(op, "groups", groups);
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new RangeError(
      `${op}: groups=${groups} must divide inChannels (${inChannels}) and outChannels (${outChannels})`,
    );
  }
  const [wKey, bKey] = split(key);
  const w = composite(
    "nn.initConv2d",
    () =>
      wInit(wKey, [kh, kw, inChannels / groups, outChannels], { backend }).transpose([3, 2, 0, 1]),
  );
  if (!bias) return { w };
  const b = bInit ? bInit(bKey, [outChannels], { backend }) : zeros([outChannels], { backend });
  return { w, b };
}

/**
 * A 2-D convolution layer: the `conv2d` op over an NCHW input, plus the bias
 * of each output channel (broadcast over `[n, out, oh, ow]`).
 *
 * @param params `{ w, b }` from `initConv2d`.
 * @param x Input images `[n, in, h, w]`.
 * @param opts `stride`, `padding`, `dilation`, `groups` as for the `conv2d` op;
 *   `groups` defaults to `in / w.shape[1]` (what `initConv2d` was given).
 * @returns `[n, out, oh, ow]`.
 * @example
 * ```ts
 * import { nn, ones, random } from "littlegrad";
 * const p = nn.initConv2d(random.key(0), 1, 8, 3);
 * const y = nn.conv2d(p, ones([2, 1, 28, 28]), { padding: 1 });
 * console.log(y.shape); // [2, 8, 28, 28]
 * ```
 */
export function conv2d(params: Conv2dParams, x: Tensor, opts: Conv2dOptions = {}): Tensor {
  const op = "nn.conv2d";
  const w = checkTensor(op, "params.w", params?.w);
  checkTensor(op, "x", x);
  if (w.ndim !== 4 || x.ndim !== 4) {
    throw new TypeError(
      `${op}: expected input [n, c, h, w] and params.w [o, c/groups, kh, kw], got ${
        shapeString(x.shape)
      } and ${shapeString(w.shape)}`,
    );
  }
  const b = params.b === undefined ? undefined : checkTensor(op, "params.b", params.b);
  const out = w.shape[0];
  if (b && (b.ndim !== 1 || b.shape[0] !== out)) {
    throw new TypeError(
      `${op}: params.b must be [${out}] for params.w of shape ${shapeString(w.shape)}, got ${
        shapeString(b.shape)
      }`,
    );
  }
  const groups = opts.groups ?? (x.shape[1] % w.shape[1] === 0 ? x.shape[1] / w.shape[1] : 1);
  return composite(op, () => {
    const y = conv2dOp(x, w, { ...opts, groups });
    return b ? y.add(b.reshape([out, 1, 1])) : y;
  });
}

// ---- mlp -----------------------------------------------------------------------

/** Parameters of a multilayer perceptron: one `LinearParams` per layer. */
export type MlpParams = { layers: LinearParams[] };

/**
 * Parameters of an MLP with layer sizes `sizes` (input first, output last).
 *
 * @param key The PRNG key (split once per layer).
 * @param sizes At least two sizes, e.g. `[784, 128, 10]`.
 * @param opts Initialisers and `backend`, as for `initLinear`.
 * @returns `{ layers: [{ w, b }, ...] }`.
 * @example
 * ```ts
 * import { initializers, nn, random } from "littlegrad";
 * const p = nn.initMlp(random.key(0), [784, 128, 10], { wInit: initializers.heNormal() });
 * console.log(p.layers.map((l) => l.w.shape)); // [[784, 128], [128, 10]]
 * ```
 */
export function initMlp(
  key: Key,
  sizes: readonly number[],
  opts: LinearInitOptions = {},
): MlpParams {
  if (!Array.isArray(sizes) || sizes.length < 2) {
    throw new TypeError(
      `nn.initMlp: sizes must list at least an input and an output size, got ${
        Array.isArray(sizes) ? `[${sizes.join(", ")}]` : describe(sizes)
      }`,
    );
  }
  sizes.forEach((n, i) => checkSize("nn.initMlp", `sizes[${i}]`, n));
  const keys = split(key, sizes.length - 1);
  return {
    layers: keys.map((k, i) => initLinear(k, sizes[i], sizes[i + 1], opts)),
  };
}

/** Options of `mlp`. */
export interface MlpOptions {
  /** Activation after every layer but the last (default `relu`). */
  activation?: (x: Tensor) => Tensor;
  /** Dropout rate after each hidden activation (default 0: none). */
  dropout?: number;
  /** Training mode: dropout is applied only when `true` (default `false`). */
  train?: boolean;
  /** Key for the dropout masks; needed when `train` and `dropout > 0`. */
  key?: Key;
}

/**
 * Applies an MLP: `linear → activation (→ dropout)` for each hidden layer,
 * then a final `linear` (no activation: logits).
 *
 * @param params `{ layers }` from `initMlp`.
 * @param x Input of shape `[..., sizes[0]]`.
 * @param opts `activation`, and `dropout`, `train` and `key` for dropout.
 * @returns Output of shape `[..., sizes.at(-1)]`.
 * @example
 * ```ts
 * import { nn, random, tensor } from "littlegrad";
 * const p = nn.initMlp(random.key(0), [2, 8, 3]);
 * const logits = nn.mlp(p, tensor([[0.5, -1]])); // shape [1, 3]
 * const train = nn.mlp(p, tensor([[0.5, -1]]), { dropout: 0.1, train: true, key: random.key(1) });
 * ```
 */
export function mlp(params: MlpParams, x: Tensor, opts: MlpOptions = {}): Tensor {
  const layers = params?.layers;
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new TypeError(`nn.mlp: params.layers must be a non-empty array (from nn.initMlp)`);
  }
  const { activation = (t: Tensor) => t.relu(), dropout: rate = 0, train = false } = opts;
  checkRate("nn.mlp", rate);
  const useDropout = train && rate > 0;
  if (useDropout && opts.key === undefined) {
    throw new TypeError("nn.mlp: dropout in training mode needs opts.key");
  }
  const keys = useDropout ? split(opts.key!, layers.length - 1) : [];
  return composite("nn.mlp", () => {
    let h = x;
    layers.forEach((layer, i) => {
      h = linear(layer, h);
      if (i === layers.length - 1) return;
      h = activation(h);
      if (useDropout) h = dropout(keys[i], h, rate, { train: true });
    });
    return h;
  });
}

// ---- embedding -----------------------------------------------------------------

/** Parameters of an embedding: a `[count, dim]` table, one row per id. */
export type EmbeddingParams = { table: Tensor };

/**
 * Parameters of an embedding of `count` ids into `dim` dimensions.
 *
 * @param key The PRNG key.
 * @param count Number of ids (rows).
 * @param dim Size of each embedding vector.
 * @param opts `init` (default standard normal, as in PyTorch), `backend`.
 * @returns `{ table: [count, dim] }`.
 * @example
 * ```ts
 * import { nn, random } from "littlegrad";
 * const p = nn.initEmbedding(random.key(0), 100, 16);
 * ```
 */
export function initEmbedding(
  key: Key,
  count: number,
  dim: number,
  opts: { init?: Initializer; backend?: BackendName } = {},
): EmbeddingParams {
  checkSize("nn.initEmbedding", "count", count);
  checkSize("nn.initEmbedding", "dim", dim);
  const init = opts.init ?? normalInit(1);
  return { table: init(key, [count, dim], { backend: opts.backend }) };
}

/**
 * One-hot encoding: the top-level `oneHot` (one implementation), which also
 * takes host ids. `ids` of shape `s` give a `[...s, count]` tensor of 0s and
 * 1s (`float32` unless `opts.dtype`). A tensor of ids (an integer dtype) is
 * passed to `oneHot` as it is: an id out of range gives a row of zeros, as
 * `jax.nn.one_hot`. Host ids (numbers) are checked to lie in `[0, count)`
 * first, then uploaded as `int32`.
 *
 * @param ids Class ids.
 * @param count Number of classes (a non-negative integer, as for `oneHot`).
 * @param opts `dtype` of the result; `backend` for host ids (default: the
 *   current default backend).
 * @returns The one-hot tensor.
 * @example
 * ```ts
 * import { nn } from "littlegrad";
 * console.log(await nn.oneHot([2, 0], 3).array()); // [[0, 0, 1], [1, 0, 0]]
 * ```
 */
export function oneHot(
  ids: Tensor | readonly number[] | Int32Array,
  count: number,
  opts: { backend?: BackendName; dtype?: DType } = {},
): Tensor {
  if (ids instanceof Tensor) {
    return named("nn.oneHot", () => coreOneHot(ids, count, { dtype: opts.dtype }));
  }
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`nn.oneHot: count must be a non-negative integer, got ${count}`);
  }
  return composite("nn.oneHot", () => {
    const host = checkIds("nn.oneHot", ids, count);
    const idTensor = tensor(host, { backend: opts.backend, dtype: "int32", shape: [host.length] });
    return coreOneHot(idTensor, count, { dtype: opts.dtype });
  });
}

function checkIds(op: string, ids: unknown, count: number): number[] {
  if (!Array.isArray(ids) && !(ids instanceof Int32Array)) {
    throw new TypeError(
      `${op}: ids must be a Tensor, an array of integers or an Int32Array, got ${describe(ids)}`,
    );
  }
  const list = Array.from(ids as ArrayLike<number>);
  const bad = list.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= count);
  if (bad >= 0) {
    throw new RangeError(`${op}: id ${list[bad]} at index ${bad} is not in [0, ${count})`);
  }
  return list;
}

/**
 * Looks up embedding vectors: `ids` of shape `s` give `[...s, dim]`, with
 * `take` (a gather), so the table's gradient scatter-adds into the rows that
 * were used (unused rows get 0).
 *
 * @param params `{ table }` from `initEmbedding`.
 * @param ids Integer ids: numbers (checked against the table) or an integer
 *   tensor (not checked: out-of-range ids are clamped, as `take` does).
 * @returns The embeddings.
 * @example
 * ```ts
 * import { nn, random } from "littlegrad";
 * const p = nn.initEmbedding(random.key(0), 10, 4);
 * const vectors = nn.embedding(p, [3, 1, 3]); // shape [3, 4]
 * ```
 */
export function embedding(
  params: EmbeddingParams,
  ids: Tensor | readonly number[] | Int32Array,
): Tensor {
  const table = checkTensor("nn.embedding", "params.table", params?.table);
  if (table.ndim !== 2) {
    throw new TypeError(
      `nn.embedding: params.table must be [count, dim], got shape ${shapeString(table.shape)}`,
    );
  }
  const [count] = table.shape;
  if (!(ids instanceof Tensor)) checkIds("nn.embedding", ids, count);
  return named("nn.embedding", () => table.take(ids, 0));
}

// ---- layer norm ------------------------------------------------------------------

/** Parameters of a layer norm: per-feature `scale` and `bias`, each `[dim]`. */
export type LayerNormParams = { scale: Tensor; bias: Tensor };

/**
 * Parameters of a layer norm over a last axis of size `dim`: scale 1, bias 0.
 * No key is needed.
 *
 * @param dim Size of the normalised axis.
 * @param opts `backend`.
 * @returns `{ scale: ones([dim]), bias: zeros([dim]) }`.
 * @example
 * ```ts
 * import { nn } from "littlegrad";
 * const p = nn.initLayerNorm(16);
 * ```
 */
export function initLayerNorm(
  dim: number,
  opts: { backend?: BackendName } = {},
): LayerNormParams {
  checkSize("nn.initLayerNorm", "dim", dim);
  return { scale: ones([dim], opts), bias: zeros([dim], opts) };
}

/**
 * Layer normalisation over the last axis (Ba et al., 2016):
 * `(x - mean) / √(var + eps) · scale + bias`, with the biased variance.
 *
 * @param params `{ scale, bias }` from `initLayerNorm`.
 * @param x Input of shape `[..., dim]`.
 * @param opts `eps` (default 1e-5, as PyTorch).
 * @returns The normalised tensor, same shape as `x`.
 * @example
 * ```ts
 * import { nn, tensor } from "littlegrad";
 * const y = nn.layerNorm(nn.initLayerNorm(3), tensor([[1, 2, 3]]));
 * console.log(await y.array()); // ≈ [[-1.2247, 0, 1.2247]]
 * ```
 */
export function layerNorm(
  params: LayerNormParams,
  x: Tensor,
  opts: { eps?: number } = {},
): Tensor {
  const scale = checkTensor("nn.layerNorm", "params.scale", params?.scale);
  const bias = checkTensor("nn.layerNorm", "params.bias", params?.bias);
  checkTensor("nn.layerNorm", "x", x);
  const { eps = 1e-5 } = opts;
  if (!(eps >= 0)) throw new RangeError(`nn.layerNorm: eps must be >= 0, got ${eps}`);
  const dim = x.shape[x.ndim - 1];
  if (x.ndim === 0 || scale.ndim !== 1 || scale.shape[0] !== dim || bias.size !== scale.size) {
    throw new TypeError(
      `nn.layerNorm: input of shape ${shapeString(x.shape)} for scale ${
        shapeString(scale.shape)
      } and bias ${shapeString(bias.shape)} (both must be [${x.shape.at(-1)}])`,
    );
  }
  return composite("nn.layerNorm", () => {
    const centered = x.sub(x.mean(-1, { keepdims: true }));
    const variance = centered.pow(2).mean(-1, { keepdims: true });
    return centered.div(variance.add(eps).sqrt()).mul(scale).add(bias);
  });
}

// ---- dropout ---------------------------------------------------------------------

function checkRate(op: string, rate: number): void {
  if (typeof rate !== "number" || !(rate >= 0 && rate < 1)) {
    throw new RangeError(`${op}: dropout rate must be in [0, 1), got ${String(rate)}`);
  }
}

/**
 * Dropout (inverted): in training mode each element is zeroed with
 * probability `rate` and the rest scaled by `1 / (1 - rate)`, so evaluation
 * needs no rescaling; in evaluation mode (`train: false`) it returns `x`
 * unchanged (as a new tensor sharing `x`'s data). The mask comes from `key`:
 * use a fresh key every step.
 *
 * @param key The PRNG key of the mask.
 * @param x The input.
 * @param rate Probability of dropping an element, in [0, 1).
 * @param opts `train`: whether dropout is active (required, so evaluation is never forgotten).
 * @returns The result, same shape as `x`.
 * @example
 * ```ts
 * import { nn, ones, random } from "littlegrad";
 * const x = ones([2, 4]);
 * const y = nn.dropout(random.key(0), x, 0.5, { train: true }); // entries are 0 or 2
 * const z = nn.dropout(random.key(0), x, 0.5, { train: false }); // x itself
 * ```
 */
export function dropout(
  key: Key,
  x: Tensor,
  rate: number,
  opts: { train: boolean },
): Tensor {
  checkTensor("nn.dropout", "x", x);
  checkRate("nn.dropout", rate);
  if (typeof opts?.train !== "boolean") {
    throw new TypeError("nn.dropout: opts.train must be true (training) or false (evaluation)");
  }
  if (!opts.train || rate === 0) return x.reshape(x.shape);
  return composite("nn.dropout", () => {
    const keep = bernoulli(key, 1 - rate, x.shape, { backend: x.backend });
    return x.mul(keep).div(1 - rate);
  });
}
