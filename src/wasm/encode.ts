/**
 * A small WebAssembly binary emitter: enough of the format to build the
 * kernels of the wasm backend at run time, with no text format, no build
 * step and no dependency. A `Func` collects one function's instructions
 * (named after the text format: `f.op("f32.add")`, `f.simd("f32x4.mul")`);
 * a `WasmModule` adds the imported shared memory, imported host functions
 * and exports, and `bytes()` encodes them.
 * @module
 */

/** A WebAssembly value type. */
export type ValType = "i32" | "i64" | "f32" | "f64" | "v128";

const VALTYPE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/** Opcodes of the plain instructions without immediates (and the memory ones, with a memarg). */
const OPS = {
  "unreachable": 0x00,
  "nop": 0x01,
  "end": 0x0b,
  "return": 0x0f,
  "drop": 0x1a,
  "select": 0x1b,
  "i32.load": 0x28,
  "i64.load": 0x29,
  "f32.load": 0x2a,
  "f64.load": 0x2b,
  "i32.load8_s": 0x2c,
  "i32.load8_u": 0x2d,
  "i32.load16_s": 0x2e,
  "i32.load16_u": 0x2f,
  "i32.store": 0x36,
  "i64.store": 0x37,
  "f32.store": 0x38,
  "f64.store": 0x39,
  "i32.store8": 0x3a,
  "i32.store16": 0x3b,
  "i32.eqz": 0x45,
  "i32.eq": 0x46,
  "i32.ne": 0x47,
  "i32.lt_s": 0x48,
  "i32.lt_u": 0x49,
  "i32.gt_s": 0x4a,
  "i32.gt_u": 0x4b,
  "i32.le_s": 0x4c,
  "i32.le_u": 0x4d,
  "i32.ge_s": 0x4e,
  "i32.ge_u": 0x4f,
  "f32.eq": 0x5b,
  "f32.ne": 0x5c,
  "f32.lt": 0x5d,
  "f32.gt": 0x5e,
  "f32.le": 0x5f,
  "f32.ge": 0x60,
  "f64.eq": 0x61,
  "f64.ne": 0x62,
  "f64.lt": 0x63,
  "f64.gt": 0x64,
  "f64.le": 0x65,
  "f64.ge": 0x66,
  "i32.clz": 0x67,
  "i32.add": 0x6a,
  "i32.sub": 0x6b,
  "i32.mul": 0x6c,
  "i32.div_s": 0x6d,
  "i32.div_u": 0x6e,
  "i32.rem_s": 0x6f,
  "i32.rem_u": 0x70,
  "i32.and": 0x71,
  "i32.or": 0x72,
  "i32.xor": 0x73,
  "i32.shl": 0x74,
  "i32.shr_s": 0x75,
  "i32.shr_u": 0x76,
  "f32.abs": 0x8b,
  "f32.neg": 0x8c,
  "f32.ceil": 0x8d,
  "f32.floor": 0x8e,
  "f32.trunc": 0x8f,
  "f32.nearest": 0x90,
  "f32.sqrt": 0x91,
  "f32.add": 0x92,
  "f32.sub": 0x93,
  "f32.mul": 0x94,
  "f32.div": 0x95,
  "f32.min": 0x96,
  "f32.max": 0x97,
  "f32.copysign": 0x98,
  "f64.abs": 0x99,
  "f64.neg": 0x9a,
  "f64.ceil": 0x9b,
  "f64.floor": 0x9c,
  "f64.trunc": 0x9d,
  "f64.nearest": 0x9e,
  "f64.sqrt": 0x9f,
  "f64.add": 0xa0,
  "f64.sub": 0xa1,
  "f64.mul": 0xa2,
  "f64.div": 0xa3,
  "f64.min": 0xa4,
  "f64.max": 0xa5,
  "i32.trunc_f32_s": 0xa8,
  "i32.trunc_f64_s": 0xaa,
  "f32.convert_i32_s": 0xb2,
  "f32.demote_f64": 0xb6,
  "f64.convert_i32_s": 0xb7,
  "f64.promote_f32": 0xbb,
  "i32.reinterpret_f32": 0xbc,
  "f32.reinterpret_i32": 0xbe,
  "i32.extend8_s": 0xc0,
  "i32.extend16_s": 0xc1,
} as const;

/** Opcodes after the 0xfc prefix. */
const OPS_FC = {
  "i32.trunc_sat_f32_s": 0,
  "i32.trunc_sat_f64_s": 2,
  "memory.copy": 10,
  "memory.fill": 11,
} as const;

/** SIMD opcodes (after the 0xfd prefix). */
const SIMD = {
  "v128.load": 0x00,
  "v128.load32_splat": 0x09,
  "v128.store": 0x0b,
  "i32x4.splat": 0x11,
  "f32x4.splat": 0x13,
  "f64x2.splat": 0x14,
  "i32x4.extract_lane": 0x1b,
  "i32x4.replace_lane": 0x1c,
  "f32x4.extract_lane": 0x1f,
  "f32x4.replace_lane": 0x20,
  "i32x4.eq": 0x37,
  "i32x4.ne": 0x38,
  "i32x4.lt_s": 0x39,
  "i32x4.gt_s": 0x3b,
  "i32x4.le_s": 0x3d,
  "i32x4.ge_s": 0x3f,
  "f32x4.eq": 0x41,
  "f32x4.ne": 0x42,
  "f32x4.lt": 0x43,
  "f32x4.gt": 0x44,
  "f32x4.le": 0x45,
  "f32x4.ge": 0x46,
  "v128.not": 0x4d,
  "v128.and": 0x4e,
  "v128.andnot": 0x4f,
  "v128.or": 0x50,
  "v128.xor": 0x51,
  "v128.bitselect": 0x52,
  "v128.any_true": 0x53,
  "f32x4.ceil": 0x67,
  "f32x4.floor": 0x68,
  "f32x4.trunc": 0x69,
  "f32x4.nearest": 0x6a,
  "i32x4.abs": 0xa0,
  "i32x4.neg": 0xa1,
  "i32x4.shl": 0xab,
  "i32x4.shr_s": 0xac,
  "i32x4.shr_u": 0xad,
  "i32x4.add": 0xae,
  "i32x4.sub": 0xb1,
  "i32x4.mul": 0xb5,
  "i32x4.min_s": 0xb6,
  "i32x4.max_s": 0xb8,
  "f32x4.abs": 0xe0,
  "f32x4.neg": 0xe1,
  "f32x4.sqrt": 0xe3,
  "f32x4.add": 0xe4,
  "f32x4.sub": 0xe5,
  "f32x4.mul": 0xe6,
  "f32x4.div": 0xe7,
  "f32x4.min": 0xe8,
  "f32x4.max": 0xe9,
  "i32x4.trunc_sat_f32x4_s": 0xf8,
  "f32x4.convert_i32x4_s": 0xfa,
  /** Relaxed SIMD: `a · b + c`, fused or not as the machine does it. */
  "f32x4.relaxed_madd": 0x105,
} as const;

/** Names of the plain instructions. */
export type Op = keyof typeof OPS;
/** Names of the SIMD instructions. */
export type SimdOp = keyof typeof SIMD;

/** Unsigned LEB128. */
function uleb(out: number[], n: number): void {
  if (!(n >= 0) || !Number.isInteger(n)) throw new RangeError(`internal: uleb of ${n}`);
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
}

/** Signed LEB128 of a 32-bit integer. */
function sleb(out: number[], n: number): void {
  n |= 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

function utf8(out: number[], s: string): void {
  const bytes = new TextEncoder().encode(s);
  uleb(out, bytes.length);
  out.push(...bytes);
}

/** Alignment (log2 of the bytes) a memory instruction assumes by default. */
function naturalAlign(op: string): number {
  if (op.startsWith("v128")) return op.endsWith("splat") ? 2 : 4;
  if (op.includes("8")) return 0;
  if (op.includes("16")) return 1;
  return op.startsWith("i64") || op.startsWith("f64") ? 3 : 2;
}

/** One function's signature, locals and instructions. */
export class Func {
  /** Types of the locals after the parameters. */
  readonly locals: ValType[] = [];
  /** The encoded instructions. */
  readonly code: number[] = [];

  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[]) {}

  /** A new local of `type`; returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  /** A plain instruction; memory ones take a byte offset (and use their natural alignment). */
  op(name: Op, offset = 0): this {
    this.code.push(OPS[name]);
    if (name.includes("load") || name.includes("store")) {
      uleb(this.code, naturalAlign(name));
      uleb(this.code, offset);
    }
    return this;
  }

  /** An instruction after the 0xfc prefix (`memory.copy`/`fill` take memory 0). */
  misc(name: keyof typeof OPS_FC): this {
    this.code.push(0xfc);
    uleb(this.code, OPS_FC[name]);
    if (name === "memory.copy") this.code.push(0, 0);
    if (name === "memory.fill") this.code.push(0);
    return this;
  }

  /** A SIMD instruction; memory ones take a byte offset, lane ones a lane. */
  simd(name: SimdOp, immediate = 0): this {
    this.code.push(0xfd);
    uleb(this.code, SIMD[name]);
    if (name.startsWith("v128.load") || name === "v128.store") {
      uleb(this.code, naturalAlign(name));
      uleb(this.code, immediate);
    } else if (name.includes("_lane")) this.code.push(immediate);
    return this;
  }

  /** `i8x16.shuffle` of the two vectors on the stack: result byte `i` is input byte `lanes[i]` (0–31). */
  shuffle(lanes: readonly number[]): this {
    if (lanes.length !== 16 || lanes.some((l) => !Number.isInteger(l) || l < 0 || l >= 32)) {
      throw new Error("internal: i8x16.shuffle takes 16 lane indices below 32");
    }
    this.code.push(0xfd);
    uleb(this.code, 0x0d);
    this.code.push(...lanes);
    return this;
  }

  /** `local.get`. */
  get(i: number): this {
    this.code.push(0x20);
    uleb(this.code, i);
    return this;
  }

  /** `local.set`. */
  set(i: number): this {
    this.code.push(0x21);
    uleb(this.code, i);
    return this;
  }

  /** `local.tee`. */
  tee(i: number): this {
    this.code.push(0x22);
    uleb(this.code, i);
    return this;
  }

  /** `i32.const`. */
  i32(n: number): this {
    this.code.push(0x41);
    sleb(this.code, n);
    return this;
  }

  /** `f32.const`. */
  f32(x: number): this {
    this.code.push(0x43);
    const b = new Uint8Array(new Float32Array([x]).buffer);
    this.code.push(...b);
    return this;
  }

  /** `f64.const`. */
  f64(x: number): this {
    this.code.push(0x44);
    const b = new Uint8Array(new Float64Array([x]).buffer);
    this.code.push(...b);
    return this;
  }

  /** `call` of function `index` (imports first). */
  call(index: number): this {
    this.code.push(0x10);
    uleb(this.code, index);
    return this;
  }

  /** `block … end` around `body` (a `br 0` inside leaves it). */
  block(body: () => void): this {
    this.code.push(0x02, 0x40);
    body();
    this.code.push(0x0b);
    return this;
  }

  /** `loop … end` around `body` (a `br 0` inside starts it again). */
  loop(body: () => void): this {
    this.code.push(0x03, 0x40);
    body();
    this.code.push(0x0b);
    return this;
  }

  /** `if … else … end` on the i32 on the stack, with no result. */
  if(then: () => void, otherwise?: () => void): this {
    this.code.push(0x04, 0x40);
    then();
    if (otherwise) {
      this.code.push(0x05);
      otherwise();
    }
    this.code.push(0x0b);
    return this;
  }

  /** `br depth`. */
  br(depth: number): this {
    this.code.push(0x0c);
    uleb(this.code, depth);
    return this;
  }

  /** `br_if depth`. */
  brIf(depth: number): this {
    this.code.push(0x0d);
    uleb(this.code, depth);
    return this;
  }

  /**
   * `for (i = start; i < end; i += step) body()`, with `i`, `end` locals
   * (i32) and `step` a constant: a block around a loop, tested first.
   */
  forLoop(i: number, end: number, step: number, body: () => void): this {
    return this.block(() =>
      this.loop(() => {
        this.get(i).get(end).op("i32.ge_s").brIf(1);
        body();
        this.get(i).i32(step).op("i32.add").set(i).br(0);
      })
    );
  }

  /** The body as a code-section entry. */
  encode(): number[] {
    const body: number[] = [];
    // Locals, run-length encoded by type.
    const runs: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = runs[runs.length - 1];
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    uleb(body, runs.length);
    for (const [n, t] of runs) {
      uleb(body, n);
      body.push(VALTYPE[t]);
    }
    body.push(...this.code, 0x0b);
    const out: number[] = [];
    uleb(out, body.length);
    out.push(...body);
    return out;
  }
}

/** A host function a module imports: `module.name` with a signature. */
interface Import {
  readonly module: string;
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

/** A module: one imported memory (`env.memory`), imported functions, defined functions. */
export class WasmModule {
  private readonly imports: Import[] = [];
  private readonly funcs: { name: string | null; func: Func }[] = [];

  /** `shared` memory needs `maxPages` (64 KiB each). */
  constructor(readonly memory: { shared: boolean; maxPages: number }) {}

  /** Imports a host function; returns its function index. Import before defining functions. */
  importFunc(
    module: string,
    name: string,
    params: readonly ValType[],
    results: readonly ValType[],
  ): number {
    if (this.funcs.length > 0) throw new Error("internal: import functions before defining any");
    this.imports.push({ module, name, params, results });
    return this.imports.length - 1;
  }

  /** Adds a function (exported as `name` unless null); returns its function index. */
  addFunc(name: string | null, func: Func): number {
    this.funcs.push({ name, func });
    return this.imports.length + this.funcs.length - 1;
  }

  /** The binary module. */
  bytes(): Uint8Array {
    const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, content: number[]) => {
      out.push(id);
      uleb(out, content.length);
      out.push(...content);
    };
    const sigs = [...this.imports, ...this.funcs.map((f) => f.func)];
    // Type section: one type per function (duplicates are allowed).
    const types: number[] = [];
    uleb(types, sigs.length);
    for (const s of sigs) {
      types.push(0x60);
      uleb(types, s.params.length);
      for (const p of s.params) types.push(VALTYPE[p]);
      uleb(types, s.results.length);
      for (const r of s.results) types.push(VALTYPE[r]);
    }
    section(1, types);
    const imports: number[] = [];
    uleb(imports, this.imports.length + 1);
    this.imports.forEach((imp, i) => {
      utf8(imports, imp.module);
      utf8(imports, imp.name);
      imports.push(0x00);
      uleb(imports, i);
    });
    utf8(imports, "env");
    utf8(imports, "memory");
    imports.push(0x02, this.memory.shared ? 0x03 : 0x01);
    uleb(imports, 1);
    uleb(imports, this.memory.maxPages);
    section(2, imports);
    const funcs: number[] = [];
    uleb(funcs, this.funcs.length);
    this.funcs.forEach((_, i) => uleb(funcs, this.imports.length + i));
    section(3, funcs);
    const exports: number[] = [];
    const named = this.funcs.map((f, i) => [f.name, i] as const).filter(([n]) => n !== null);
    uleb(exports, named.length);
    for (const [name, i] of named) {
      utf8(exports, name!);
      exports.push(0x00);
      uleb(exports, this.imports.length + i);
    }
    section(7, exports);
    const code: number[] = [];
    uleb(code, this.funcs.length);
    for (const f of this.funcs) code.push(...f.func.encode());
    section(10, code);
    return new Uint8Array(out);
  }
}
