/**
 * Elementwise kernel template: one WGSL program per (op, rank, input
 * layouts, width), generated on demand and cached by the backend under
 * `elementwiseKey`.
 *
 * Two widths. The `vec4` program handles 4 consecutive elements per
 * invocation with `vec4` loads and stores; it is used when every input is
 * dense, a single broadcast value, or a dense row repeated along leading axes
 * (a bias), with offsets that are multiples of 4. Storage buffers are
 * allocated in multiples of 16 bytes, so the last, partial `vec4` stays
 * inside its buffers: it computes a few values past the end, which nothing
 * ever reads. Every other case runs the scalar program, one element per
 * invocation, with the strided index arithmetic unrolled over the rank.
 * @module
 */

import {
  arg,
  ARGS_DECL,
  computeType,
  constant,
  FLAT_INDEX,
  header,
  loadAs,
  storageType,
  storeAs,
  stridedOffset,
  wgslType,
  WORKGROUP,
} from "./common.ts";

/**
 * How a kernel addresses one input: dense, a single broadcast value, a dense
 * row of `period` elements repeated along leading axes, or strided.
 */
export type InputLayout = "dense" | "scalar" | "row" | "strided";

type Compute = "f32" | "i32";

/** A comparison giving 1 or 0 in the compute type. */
const compare = (test: string) => (vec: boolean, t: Compute) =>
  `select(${constant(0, t, vec)}, ${constant(1, t, vec)}, ${test})`;

/**
 * WGSL expression for each elementwise op over inputs `a` (and `b`, `c`), in
 * compute type `f32` or `i32`, scalar or `vec4`. Float-only ops (`exp`,
 * `div`, ...) are never asked for `i32`: the op layer casts first.
 */
export const ELEMENTWISE_EXPR: Record<string, (vec: boolean, t: Compute) => string> = {
  copy: () => "a",
  convert: () => "a",
  neg: () => "-a",
  exp: () => "exp(a)",
  log: () => "log(a)",
  sqrt: () => "sqrt(a)",
  tanh: () => "lg_tanh(a)",
  sigmoid: () => "lg_sigmoid(a)",
  abs: () => "abs(a)",
  // WGSL's sign(NaN) is 0 on some adapters; NaN stays NaN, as in NumPy.
  sign: (vec, t) => t === "i32" ? "sign(a)" : `select(sign(a), a, lg_is_nan${vec ? "4" : ""}(a))`,
  sin: () => "sin(a)",
  cos: () => "cos(a)",
  floor: () => "floor(a)",
  ceil: () => "ceil(a)",
  round: () => "round(a)",
  log1p: () => "lg_log1p(a)",
  expm1: () => "lg_expm1(a)",
  add: () => "a + b",
  sub: () => "a - b",
  mul: () => "a * b",
  div: () => "a / b",
  pow: () => "lg_pow(a, b)",
  maximum: (vec, t) => t === "i32" ? "max(a, b)" : vec ? "lg_max4(a, b)" : "lg_max(a, b)",
  minimum: (vec, t) => t === "i32" ? "min(a, b)" : vec ? "lg_min4(a, b)" : "lg_min(a, b)",
  floordiv: (_vec, t) => t === "i32" ? "lg_ifloordiv(a, b)" : "lg_floordiv(a, b)",
  mod: (_vec, t) => t === "i32" ? "lg_imod(a, b)" : "lg_mod(a, b)",
  lt: compare("a < b"),
  le: compare("a <= b"),
  eq: compare("a == b"),
  // Written as "not equal" so NaN != NaN holds even where the compiler
  // assumes no NaNs in `!=` (seen on lavapipe).
  ne: (vec, t) => `select(${constant(1, t, vec)}, ${constant(0, t, vec)}, a == b)`,
  // where(cond, a, b) with the condition first: named a, b, c in order. The
  // condition is a bool loaded as 0/1 in the branches' compute type.
  where: (vec, t) => `select(b, c, a == ${constant(0, t, vec)})`,
};

/** Ops whose helper is scalar-only: the `vec4` program applies them per lane. */
const PER_LANE = new Set(["tanh", "sigmoid", "pow", "log1p", "expm1", "floordiv", "mod"]);

/** A view as the backend passes it. */
interface ViewLike {
  offset: number;
  shape: readonly number[];
  strides: readonly number[];
}

/** The layout of one input view of `shape`, and for `"row"` its period. */
export function inputLayout(view: ViewLike): { layout: InputLayout; period: number } {
  const { shape, strides } = view;
  // Strides of size-1 axes never matter.
  const axes = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  if (axes.every((i) => strides[i] === 0)) return { layout: "scalar", period: 1 };
  let expected = 1;
  let period = 1;
  let j = axes.length - 1;
  for (; j >= 0 && strides[axes[j]] === expected; j--) {
    expected *= shape[axes[j]];
    period = expected;
  }
  if (j < 0) return { layout: "dense", period };
  if (axes.slice(0, j + 1).every((i) => strides[i] === 0)) return { layout: "row", period };
  return { layout: "strided", period: 1 };
}

/** Whether the `vec4` program can run on inputs of these layouts. */
export function canVectorize(
  layouts: readonly { layout: InputLayout; period: number }[],
  views: readonly ViewLike[],
): boolean {
  return layouts.every(({ layout, period }, i) =>
    layout === "scalar" ||
    (layout === "dense" && views[i].offset % 4 === 0) ||
    (layout === "row" && period % 4 === 0 && views[i].offset % 4 === 0)
  );
}

/**
 * `args` layout: `[count, shape[0..ndim), then per input: offset, period,
 * strides[0..ndim)]`, where `count` is the number of invocations that do
 * work (elements, or `vec4`s for the vector program).
 */
export function elementwiseArgs(
  count: number,
  shape: readonly number[],
  inputs: readonly ViewLike[],
  periods: readonly number[],
): number[] {
  return [
    count,
    ...shape,
    ...inputs.flatMap((v, i) => [v.offset, periods[i], ...v.strides]),
  ];
}

/** Where input `i`'s fields start in `args`. */
const inputAt = (ndim: number, i: number) => 1 + ndim + i * (2 + ndim);

/** The dtypes of a kernel's inputs and output. */
export interface KernelTypes {
  inputs: readonly string[];
  out: string;
}

/** Cache key of the program `elementwiseKernel` makes. */
export function elementwiseKey(
  op: string,
  ndim: number,
  layouts: readonly InputLayout[],
  vec4: boolean,
  types: KernelTypes,
): string {
  return `ew:${op}:${vec4 ? "v4" : ndim}:${layouts.join(",")}:${
    types.inputs.join(",")
  }>${types.out}`;
}

/**
 * Consecutive outputs (elements, or `vec4`s) one invocation computes. Index
 * arithmetic (a division per axis) is done once per run and then advanced by
 * one step per output, which matters where integer division is slow.
 */
export const ELEMENTWISE_RUN = 4;

/** WGSL source of an elementwise kernel. Bindings: args, out, then inputs. */
export function elementwiseKernel(
  op: string,
  ndim: number,
  layouts: readonly InputLayout[],
  vec4: boolean,
  types: KernelTypes,
): string {
  const names = ["a", "b", "c"];
  // The op computes in the kind of its last input (see Backend.map).
  const compute = computeType(types.inputs[types.inputs.length - 1]);
  const type = wgslType(compute, vec4);
  const decls = layouts.map((layout, i) =>
    `@group(0) @binding(${i + 2}) var<storage, read> in${i}: array<${
      wgslType(storageType(types.inputs[i]), vec4 && layout !== "scalar")
    }>;`
  ).join("\n");
  const load = (i: number, x: string, vec: boolean) => loadAs(x, types.inputs[i], compute, vec);
  // Per input: `functions` (module scope), `setup` (once per run), `load` (an
  // expression for output `idx`), `advance` (statements moving to `idx + 1`).
  const inner = ndim - 1;
  const parts = layouts.map((layout, i) => {
    const at = inputAt(ndim, i);
    const off = arg(at);
    const period = arg(at + 1);
    const name = names[i];
    const none = { functions: "", setup: "", load: name, advance: "" };
    if (layout === "scalar") {
      return { ...none, setup: `  let ${name} = ${type}(${load(i, `in${i}[${off}]`, false)});` };
    }
    if (layout === "dense") {
      return {
        ...none,
        load: load(i, vec4 ? `in${i}[${off} / 4u + idx]` : `in${i}[${off} + idx]`, vec4),
      };
    }
    if (layout === "row") {
      // The row of \`period\` elements repeats: track the position in it.
      const unit = vec4 ? "4u" : "1u";
      return {
        ...none,
        setup: `  var col${i} = (${unit} * base) % ${period};`,
        load: load(i, vec4 ? `in${i}[(${off} + col${i}) / 4u]` : `in${i}[${off} + col${i}]`, vec4),
        advance: `col${i} += ${unit}; if (col${i} == ${period}) { col${i} = 0u; }`,
      };
    }
    // Strided: the offset of the run's first element, then steps along the
    // innermost axis, recomputed whenever that axis wraps around.
    return {
      functions: `fn offset${i}(flat: u32) -> u32 {\n${
        stridedOffset(ndim, "flat", 1, at + 2, at, "off")
      }\n  return off;\n}`,
      setup: `  var off${i} = offset${i}(base);\n  var pos${i} = base % ${arg(1 + inner)};`,
      load: load(i, `in${i}[off${i}]`, false),
      advance: `pos${i} += 1u; off${i} += ${arg(at + 2 + inner)};\n` +
        `      if (pos${i} == ${arg(1 + inner)}) { pos${i} = 0u; off${i} = offset${i}(idx + 1u); }`,
    };
  });
  const values = parts.map((p, i) => p.load === names[i] ? "" : `let ${names[i]} = ${p.load}; `);
  let expr = ELEMENTWISE_EXPR[op](vec4, compute);
  if (vec4 && PER_LANE.has(op)) {
    // Scalar helpers applied lane by lane.
    const lane = (c: string) =>
      ELEMENTWISE_EXPR[op](false, compute).replaceAll(/\b([ab])\b/g, (_, v) => `${v}.${c}`);
    expr = `${type}(${["x", "y", "z", "w"].map(lane).join(", ")})`;
  }
  expr = storeAs(expr, compute, types.out, vec4);
  // Dense (or broadcast) vec4 programs need no per-step index arithmetic:
  // there an invocation's outputs are spread over the grid (idx = base + j·span,
  // span = invocations launched), which lavapipe runs faster than consecutive runs.
  const gridStrided = vec4 && layouts.every((l) => l === "dense" || l === "scalar");
  const steps = Array.from({ length: ELEMENTWISE_RUN }, (_, j) => {
    const advance = parts.map((p) => p.advance).filter(Boolean).join("\n      ");
    return `  {
    let idx = ${gridStrided ? `base + ${j}u * span` : `base + ${j}u`};
    if (idx < ${arg(0)}) {
      ${values.join("")}out[idx] = ${expr};${
      j < ELEMENTWISE_RUN - 1 && advance ? `\n      ${advance}` : ""
    }
    }
  }`;
  }).join("\n");
  return /* wgsl */ `
${header([...types.inputs, types.out])}
${ARGS_DECL}
@group(0) @binding(1) var<storage, read_write> out: array<${
    wgslType(storageType(types.out), vec4)
  }>;
${decls}
${parts.map((p) => p.functions).filter(Boolean).join("\n")}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${
    gridStrided
      ? `  let span = nwg.x * nwg.y * ${WORKGROUP}u;\n  let base = ${FLAT_INDEX};`
      : `  let base = (${FLAT_INDEX}) * ${ELEMENTWISE_RUN}u;`
  }
  if (base >= ${arg(0)}) { return; }
${parts.map((p) => p.setup).filter(Boolean).join("\n")}
${steps}
}
`;
}
