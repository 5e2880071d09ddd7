/**
 * One declaration per kernel interface. A kernel's spec (lib/gpu/specs/<kernel>.ts) declares, for each
 * entry point of `kernels/<kernel>.wgsl`, its uniform struct (field names and WGSL scalar types, in
 * order), the uniform fields it does not read, and its other bindings by name in binding order; and, for
 * the kernel, its named flag bits. From that one declaration:
 *
 * - the pipeline cache prepends a generated WGSL prelude to the kernel source: the uniform structs, the flag
 *   bits as `const`s and the shared WGSL helpers ({@link WGSL_HELPERS}), so the WGSL cannot disagree with
 *   the TS side about field order, types or bit values;
 * - before compiling, it checks the kernel text against the spec ({@link checkEntry}): every binding the
 *   spec names is declared as `@group(0) @binding(n) var... name` at its place, the entry point uses
 *   exactly those bindings, and reads exactly the uniform fields the spec does not mark unused;
 * - dispatches take bindings by name and uniform values as an object keyed by field name
 *   (`CommandBatch.run`); packing refuses a missing, extra, unused or mistyped field.
 *
 * The .wgsl files keep their binding declarations (readable on their own); the check keeps them honest.
 *
 * @example
 * ```ts
 * import { entry, kernelSpec, uniformStruct } from "./spec.ts";
 * const Params = uniformStruct("Params", { count: "u32", cols: "u32", scale: "f32" });
 * const SPEC = kernelSpec("example", {
 *   entries: { main: entry({ uniform: "p", struct: Params, bindings: ["src", "out"] }) },
 * });
 * console.log(SPEC.prelude({ WG: 64 })); // struct Params { count: u32, cols: u32, scale: f32 } ...
 * ```
 * @module
 */
import type { Gpu } from "./device.ts";
import type { Bindable } from "./dispatch.ts";
import { reach, scanWgsl, type WgslModule } from "./wgsl_scan.ts";

/** The WGSL scalar types a uniform field can have (4 bytes each). */
export type Scalar = "u32" | "i32" | "f32";

/** Field name -> WGSL type, in struct order. */
export type FieldTypes = Readonly<Record<string, Scalar>>;

/** A uniform struct: its WGSL name and fields (all 4-byte scalars, packed in declaration order). */
export interface UniformStruct<F extends FieldTypes = FieldTypes> {
  /** The struct's WGSL name. */
  readonly name: string;
  /** Field name -> WGSL type, in struct order. */
  readonly fields: F;
  /** Bytes of a packed value: 4 per field, rounded up to 16 (a uniform binding's granularity). */
  readonly byteLength: number;
  /** The WGSL declaration, one line. */
  readonly wgsl: string;
}

/** Named flag bits: name -> a single bit. */
export type Flags = Readonly<Record<string, number>>;

/** The uniform part of an entry point: the WGSL variable at binding 0, its struct, the fields it ignores. */
export interface EntryUniform<N extends string = string, F extends FieldTypes = FieldTypes, U = string> {
  /** The WGSL variable at binding 0. */
  readonly name: N;
  /** Its struct. */
  readonly struct: UniformStruct<F>;
  /** Fields this entry point does not read. */
  readonly unused: readonly U[];
}

/** One entry point: its uniform (binding 0, when it has one) and its other bindings in binding order. */
export interface EntrySpec<
  N extends string = string,
  F extends FieldTypes = FieldTypes,
  U extends string = string,
  B extends string = string,
> {
  /** The uniform at binding 0, when the entry point has one. */
  readonly uniform?: EntryUniform<N, F, U>;
  /** The other bindings by name, in binding order. */
  readonly bindings: readonly B[];
}

/** The uniform values of an entry point: every field of its struct except the unused ones. */
export type UniformValues<E> = E extends EntrySpec<string, infer F, infer U, string>
  ? { readonly [K in Exclude<keyof F & string, U>]: number }
  : never;

/** The bindings of a dispatch by name: the uniform variable's values and a buffer per other binding. */
export type EntryBindings<E> = E extends EntrySpec<infer N, FieldTypes, string, infer B>
  ? { readonly [K in N]: UniformValues<E> } & { readonly [K in B]: Bindable }
  : never;

/** A spec mistake, or a kernel source or a dispatch that disagrees with its spec (a programming error). */
export class SpecError extends Error {
  /** The error's name. */
  override name = "SpecError";
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkIdent(what: string, name: string): void {
  if (!IDENT.test(name)) throw new SpecError(`${what} "${name}" is not a WGSL identifier`);
}

/** Declares a uniform struct. Field order is the WGSL order; every field is a 4-byte scalar. */
export function uniformStruct<const F extends FieldTypes>(name: string, fields: F): UniformStruct<F> {
  checkIdent("struct name", name);
  const entries = Object.entries(fields);
  if (entries.length === 0) throw new SpecError(`struct ${name} has no fields`);
  for (const [field, type] of entries) {
    checkIdent(`struct ${name}: field`, field);
    if (type !== "u32" && type !== "i32" && type !== "f32") {
      throw new SpecError(`struct ${name}: field ${field} has type ${type}; use u32, i32 or f32`);
    }
  }
  return {
    name,
    fields,
    byteLength: Math.ceil(entries.length / 4) * 16,
    wgsl: `struct ${name} { ${entries.map(([f, t]) => `${f}: ${t}`).join(", ")} }`,
  };
}

/** Declares named flag bits: each a distinct single bit (1, 2, 4, ...). */
export function flags<const F extends Record<string, number>>(bits: F): F {
  let seen = 0;
  for (const [name, bit] of Object.entries(bits)) {
    checkIdent("flag", name);
    if (!Number.isInteger(bit) || bit <= 0 || bit > 0x80000000 || (bit & (bit - 1)) !== 0) {
      throw new SpecError(`flag ${name} = ${bit} is not a single bit of a u32`);
    }
    if (seen & bit) throw new SpecError(`flag ${name} = ${bit} repeats a bit already in use`);
    seen |= bit;
  }
  return Object.freeze({ ...bits });
}

/** `base` plus new flags `names`, given the next free bits above base's highest, in order. */
export function moreFlags<const B extends Flags, const N extends string>(
  base: B,
  names: readonly N[],
): B & { readonly [K in N]: number } {
  let next = Math.max(0, ...Object.values(base).map((b) => Math.log2(b) + 1));
  const added: Record<string, number> = {};
  for (const n of names) added[n] = 2 ** next++;
  return flags({ ...base, ...added }) as B & { readonly [K in N]: number };
}

/**
 * The candidate filters, one meaning everywhere: every kernel that filters candidates (top-k, the
 * evaluation tiles, the FANNG search) takes these bits in its `flags` field.
 * F_SELF drops the row itself, F_LABELS keeps other-label candidates (same-label ones with F_SAME),
 * F_RADIUS keeps candidates beyond the row's radius (distance > its minimum).
 */
export const FILTER_FLAGS: Flags = flags({ F_SELF: 1, F_LABELS: 2, F_SAME: 4, F_RADIUS: 8 });

/**
 * Declares an entry point that reads few fields of a shared struct: `reads` lists them (all others are
 * unused); otherwise as below.
 */
export function entry<
  const N extends string,
  F extends FieldTypes,
  const B extends string,
  const R extends keyof F & string,
>(decl: { uniform: N; struct: UniformStruct<F>; reads: readonly R[]; bindings: readonly B[] }): EntrySpec<
  N,
  F,
  Exclude<keyof F & string, R>,
  B
>;
/**
 * Declares an entry point: `uniform` names its uniform variable (binding 0) of type `struct`, `unused`
 * the struct's fields its code never reads, `bindings` its other bindings in binding order (1, 2, ...).
 */
export function entry<
  const N extends string,
  F extends FieldTypes,
  const B extends string,
  const U extends keyof F & string = never,
>(decl: { uniform: N; struct: UniformStruct<F>; unused?: readonly U[]; bindings: readonly B[] }): EntrySpec<
  N,
  F,
  NoInfer<U>,
  B
>;
/** Declares an entry point without a uniform: `bindings` from binding 0 on. */
export function entry<const B extends string>(
  decl: { bindings: readonly B[] },
): EntrySpec<never, never, never, B>;
export function entry(
  decl: {
    uniform?: string;
    struct?: UniformStruct;
    unused?: readonly string[];
    reads?: readonly string[];
    bindings: readonly string[];
  },
): EntrySpec {
  const names = [...(decl.uniform !== undefined ? [decl.uniform] : []), ...decl.bindings];
  names.forEach((n) => checkIdent("binding", n));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new SpecError(`binding ${dup} is listed twice`);
  if ((decl.uniform === undefined) !== (decl.struct === undefined)) {
    throw new SpecError(`entry with bindings ${names.join(", ")}: give both uniform and struct, or neither`);
  }
  if (decl.uniform === undefined || !decl.struct) return { bindings: [...decl.bindings] };
  if (decl.unused && decl.reads) {
    throw new SpecError(`entry with bindings ${names.join(", ")}: give reads or unused`);
  }
  const fields = Object.keys(decl.struct.fields);
  for (const r of decl.reads ?? []) {
    if (!fields.includes(r)) {
      throw new SpecError(`read field ${r} is not a field of struct ${decl.struct.name}`);
    }
  }
  const unused = decl.reads ? fields.filter((f) => !decl.reads!.includes(f)) : [...(decl.unused ?? [])];
  for (const u of unused) {
    if (!Object.hasOwn(decl.struct.fields, u)) {
      throw new SpecError(`unused field ${u} is not a field of struct ${decl.struct.name}`);
    }
  }
  return { uniform: { name: decl.uniform, struct: decl.struct, unused }, bindings: [...decl.bindings] };
}

/**
 * WGSL helpers every spec'd kernel gets in its prelude. `linear_workgroup`: the linear id of a workgroup of
 * a grid from `grid1d` (x fastest, spilling into y). `linear_invocation` (only when the pipeline defines
 * WG, the workgroup size): the linear id of an invocation of such a grid.
 */
export const WGSL_HELPERS = {
  always: "fn linear_workgroup(wid: vec3u, nwg: vec3u) -> u32 { return wid.y * nwg.x + wid.x; }",
  withWG: "fn linear_invocation(wid: vec3u, nwg: vec3u, lid: u32) -> u32 " +
    "{ return linear_workgroup(wid, nwg) * WG + lid; }",
} as const;

/** Compile-time constants of a pipeline (see lib/gpu/kernels.ts). */
/** Compile-time defines of a kernel (name -> value). */
export type DefinesLike = Readonly<Record<string, number | boolean>>;

/** A compiled entry point with its spec: what `CommandBatch.run` dispatches. */
export interface EntryPipeline<E extends EntrySpec = EntrySpec> {
  /** The compiled pipeline. */
  readonly pipeline: GPUComputePipeline;
  /** The kernel (kernels/<kernel>.wgsl). */
  readonly kernel: string;
  /** The entry point's name. */
  readonly entryPoint: string;
  /** The entry point's spec. */
  readonly spec: E;
}

let nextId = 0;

/** The interface of `kernels/<kernel>.wgsl`: its entry points and flags. */
export class KernelSpec<E extends Readonly<Record<string, EntrySpec>> = Readonly<Record<string, EntrySpec>>> {
  /** Distinguishes specs in the pipeline cache (tests build specs that differ from the registered one). */
  readonly id = nextId++;
  readonly #modules = new Map<string, WgslModule>();

  /** `kernel`: the file's name; `entries`: each entry point's spec; `flags`: the kernel's named flag bits. */
  constructor(readonly kernel: string, readonly entries: E, readonly flags: Flags) {
    checkIdent("kernel", kernel);
    const structs = new Map<string, UniformStruct>();
    for (const [name, e] of Object.entries(entries)) {
      checkIdent(`kernel ${kernel}: entry point`, name);
      const s = e.uniform?.struct;
      if (s && structs.has(s.name) && structs.get(s.name)!.wgsl !== s.wgsl) {
        throw new SpecError(`kernel ${kernel}: two different structs are named ${s.name}`);
      }
      if (s) structs.set(s.name, s);
    }
  }

  /** The kernel's source file, for messages. */
  get file(): string {
    return `kernels/${this.kernel}.wgsl`;
  }

  /** The distinct uniform structs of the entry points, in entry order. */
  get structs(): UniformStruct[] {
    const seen = new Map<string, UniformStruct>();
    for (const e of Object.values(this.entries)) {
      if (e.uniform) seen.set(e.uniform.struct.name, e.uniform.struct);
    }
    return [...seen.values()];
  }

  /** The WGSL prelude: the structs, the flags as consts, the shared helpers (see {@link WGSL_HELPERS}). */
  prelude(defines: DefinesLike = {}): string {
    return [
      `// prelude of ${this.file}, generated from its spec (lib/gpu/specs/${this.kernel}.ts)`,
      ...this.structs.map((s) => s.wgsl),
      ...Object.entries(this.flags).map(([name, bit]) => `const ${name} = ${bit}u;`),
      WGSL_HELPERS.always,
      ...(Object.hasOwn(defines, "WG") ? [WGSL_HELPERS.withWG] : []),
    ].join("\n") + "\n";
  }

  /** Names the prelude declares (the kernel source must not declare them again). */
  preludeNames(): string[] {
    return [
      ...this.structs.map((s) => s.name),
      ...Object.keys(this.flags),
      "linear_workgroup",
      "linear_invocation",
    ];
  }

  /** Checks every entry point against `source` (see {@link checkEntry}). */
  check(source: string): void {
    for (const name of Object.keys(this.entries)) checkEntry(this, name, source);
  }

  /** The module read from `source` (cached per source text). */
  module(source: string): WgslModule {
    let m = this.#modules.get(source);
    if (!m) {
      m = scanWgsl(source);
      this.#modules.set(source, m);
    }
    return m;
  }

  /** The compiled pipeline of entry point `name` with `defines` (checked against the spec first). */
  async pipeline<K extends keyof E & string>(
    gpu: Gpu,
    name: K,
    defines: DefinesLike = {},
  ): Promise<EntryPipeline<E[K]>> {
    const spec = this.entries[name];
    if (!spec) throw new SpecError(`${this.file} has no entry point ${name} in its spec`);
    const pipeline = await gpu.pipelines.get(this, name, defines);
    return { pipeline, kernel: this.kernel, entryPoint: name, spec };
  }
}

/** Declares a kernel's interface: `kernels/<kernel>.wgsl`'s entry points and its flags. */
export function kernelSpec<
  const E extends Readonly<Record<string, EntrySpec>>,
  const F extends Flags = Flags,
>(
  kernel: string,
  decl: { entries: E; flags?: F },
): KernelSpec<E> & { readonly flags: F } {
  return new KernelSpec(kernel, decl.entries, decl.flags ?? {}) as KernelSpec<E> & { readonly flags: F };
}

/** The binding names of an entry point in binding order (the uniform variable first, at 0). */
export function bindingOrder(spec: EntrySpec): string[] {
  return [...(spec.uniform ? [spec.uniform.name] : []), ...spec.bindings];
}

/**
 * Checks entry point `name` of `kernel` against the kernel's source text. Throws a SpecError naming the
 * kernel, the entry point and the binding or field when: the source lacks the entry point, or declares a
 * name the prelude generates; a binding the spec names is not declared as
 * `@group(0) @binding(n) var... name` at its place (the uniform one as `var<uniform> name: Struct`); the
 * entry point uses a binding the spec does not list, or not one it lists; it reads a uniform field the spec
 * marks unused, or does not read one the spec requires.
 */
export function checkEntry(kernel: KernelSpec, name: string, source: string): void {
  const spec = kernel.entries[name];
  const where = `${kernel.file}, entry point ${name} (spec: lib/gpu/specs/${kernel.kernel}.ts)`;
  const fail = (what: string): never => {
    throw new SpecError(`${where}: ${what}`);
  };
  if (!spec) fail("not in the spec");
  const module = kernel.module(source);
  if (!module.functions.has(name)) fail("the source has no function of that name");
  for (const n of kernel.preludeNames()) {
    if (module.declared.has(n)) {
      fail(`the source declares ${n}, which the generated prelude declares; remove it`);
    }
  }
  const order = bindingOrder(spec);
  order.forEach((binding, i) => {
    const decls = module.bindings.filter((b) => b.name === binding);
    const here = module.bindings.filter((b) => b.group === 0 && b.binding === i).map((b) => b.name);
    if (!decls.some((b) => b.group === 0 && b.binding === i)) {
      const at = decls.map((b) => `@group(${b.group}) @binding(${b.binding})`).join(", ");
      fail(
        `binding ${i} is "${binding}" in the spec, but the source ${
          at ? `declares ${binding} at ${at}` : `declares no ${binding}`
        }` + (here.length ? ` (at binding ${i}: ${here.join(", ")})` : ""),
      );
    }
  });
  const uniform = spec.uniform;
  if (uniform) {
    const decl = module.bindings.find((b) => b.name === uniform.name)!;
    if (decl.space !== "uniform" || decl.type !== uniform.struct.name) {
      fail(
        `binding 0 "${uniform.name}" must be declared var<uniform> ${uniform.name}: ${uniform.struct.name}, ` +
          `found var<${decl.space}> ${uniform.name}: ${decl.type}`,
      );
    }
  }
  const used = reach(module, name, uniform?.name);
  const extra = [...used.bindings].filter((b) => !order.includes(b));
  if (extra.length) {
    const at = extra.map((b) => `${b} (binding ${module.bindings.find((d) => d.name === b)!.binding})`);
    fail(`uses ${at.join(", ")}, which the spec does not list`);
  }
  const idle = order.filter((b) => !used.bindings.has(b));
  if (idle.length) {
    fail(
      `the spec lists ${idle.join(", ")}, which the entry point never uses (its pipeline layout has no slot)`,
    );
  }
  if (!uniform) return;
  const fields = Object.keys(uniform.struct.fields);
  const unknown = [...used.fields].filter((f) => !fields.includes(f));
  if (unknown.length) {
    fail(`reads ${unknown.map((f) => `${uniform.name}.${f}`).join(", ")}, not in ${uniform.struct.name}`);
  }
  const readUnused = uniform.unused.filter((f) => used.fields.has(f));
  const unread = fields.filter((f) => !used.fields.has(f) && !uniform.unused.includes(f));
  if (readUnused.length || unread.length) {
    const shouldBe = fields.filter((f) => !used.fields.has(f));
    fail(
      (readUnused.length ? `reads ${readUnused.join(", ")}, which the spec marks unused; ` : "") +
        (unread.length ? `never reads ${unread.join(", ")}; ` : "") +
        `declare unused: [${shouldBe.map((f) => `"${f}"`).join(", ")}]`,
    );
  }
}

/**
 * Packs an entry point's uniform values (an object keyed by field name) in struct order. Throws a
 * SpecError for a missing field, an unknown or unused one, a non-number, a u32 or i32 out of range or not
 * an integer, or a NaN f32. Unused fields are packed as 0.
 */
export function packFields(
  uniform: EntryUniform,
  values: Readonly<Record<string, unknown>>,
  where: string,
): ArrayBuffer {
  const { struct, unused } = uniform;
  if (typeof values !== "object" || values === null) {
    throw new SpecError(`${where}: the uniform ${uniform.name} needs an object of fields, got ${values}`);
  }
  for (const key of Object.keys(values)) {
    if (!Object.hasOwn(struct.fields, key)) {
      throw new SpecError(
        `${where}: ${key} is not a field of ${struct.name} (fields: ${
          Object.keys(struct.fields).join(", ")
        })`,
      );
    }
    if (unused.includes(key)) {
      throw new SpecError(`${where}: ${key} is not read by this entry point (unused)`);
    }
  }
  const view = new DataView(new ArrayBuffer(struct.byteLength));
  Object.entries(struct.fields).forEach(([field, type], i) => {
    if (unused.includes(field)) return;
    if (!Object.hasOwn(values, field)) throw new SpecError(`${where}: field ${field} (${type}) is missing`);
    const v = values[field];
    const bad = (why: string): never => {
      throw new SpecError(
        `${where}: field ${field} (${type}) ${why}, got ${typeof v === "number" ? v : typeof v}`,
      );
    };
    if (typeof v !== "number") bad("must be a number");
    const n = v as number;
    if (type === "f32") {
      if (Number.isNaN(n)) bad("is NaN");
      view.setFloat32(i * 4, n, true);
    } else if (type === "u32") {
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) bad("must be an integer in [0, 2^32)");
      view.setUint32(i * 4, n, true);
    } else {
      if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) {
        bad("must be an integer in [-2^31, 2^31)");
      }
      view.setInt32(i * 4, n, true);
    }
  });
  return view.buffer;
}

/**
 * The bindings of a dispatch in binding order, from an object keyed by binding name; the uniform values
 * are packed (see {@link packFields}). Throws a SpecError for a missing or unknown binding.
 */
export function orderBindings(
  p: EntryPipeline,
  bindings: Readonly<Record<string, unknown>>,
): { uniform?: ArrayBuffer; buffers: Bindable[] } {
  const where = `${p.kernel}.${p.entryPoint}`;
  const order = bindingOrder(p.spec);
  for (const key of Object.keys(bindings)) {
    if (!order.includes(key)) {
      throw new SpecError(`${where}: no binding named ${key} (bindings: ${order.join(", ")})`);
    }
  }
  const missing = order.filter((n) => bindings[n] === undefined);
  if (missing.length) throw new SpecError(`${where}: binding ${missing.join(", ")} missing`);
  const u = p.spec.uniform;
  return {
    uniform: u ? packFields(u, bindings[u.name] as Record<string, unknown>, `${where} ${u.name}`) : undefined,
    buffers: p.spec.bindings.map((n) => bindings[n] as Bindable),
  };
}

/** The fields of `values` that entry point `p` reads: for values shared by several entry points. */
export function fieldsFor<E extends EntrySpec, V extends Readonly<Record<string, number>>>(
  p: EntryPipeline<E>,
  values: V,
): Pick<V, keyof V & keyof UniformValues<E>> {
  const u = p.spec.uniform;
  const out: Record<string, number> = {};
  if (u) {
    for (const [k, v] of Object.entries(values)) {
      if (Object.hasOwn(u.struct.fields, k) && !u.unused.includes(k)) out[k] = v;
    }
  }
  return out as Pick<V, keyof V & keyof UniformValues<E>>;
}
