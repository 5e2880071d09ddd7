// Kernel specs (lib/gpu/spec.ts): every spec'd kernel's WGSL text agrees with its spec, every kernel file
// is either spec'd or listed as not yet, and drift of either side (a binding moved, a field read that the
// spec marks unused, a struct declared again in the source, a value packed under a wrong name) is caught.
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { loadWgsl } from "../../lib/gpu/kernels.ts";
import {
  checkEntry,
  entry,
  FILTER_FLAGS,
  flags,
  kernelSpec,
  moreFlags,
  packFields,
  SpecError,
  uniformStruct,
} from "../../lib/gpu/spec.ts";
import { KERNEL_SPECS, KERNELS_WITHOUT_SPEC } from "../../lib/gpu/specs/mod.ts";
import { GATHER } from "../../lib/gpu/specs/gather.ts";
import { TOPK } from "../../lib/gpu/specs/topk.ts";
import { EVAL_TILES } from "../../lib/gpu/specs/eval_tiles.ts";
import { WGSL_SOURCES } from "../../lib/gpu/wgsl.ts";

Deno.test("every spec'd kernel's WGSL agrees with its spec; every kernel is spec'd or listed as not yet", async () => {
  const names = Object.keys(WGSL_SOURCES).sort();
  for (const name of names) {
    const specd = Object.hasOwn(KERNEL_SPECS, name), listed = KERNELS_WITHOUT_SPEC.includes(name);
    assert.ok(specd !== listed, `${name}: spec'd ${specd}, listed without a spec ${listed}; exactly one`);
  }
  for (const n of KERNELS_WITHOUT_SPEC) assert.ok(names.includes(n), `${n} is listed but has no kernel file`);
  for (const [name, spec] of Object.entries(KERNEL_SPECS)) {
    assert.equal(spec.kernel, name);
    const source = await loadWgsl(name);
    spec.check(source); // every entry point: bindings at their places, used exactly, fields read exactly
    // Drift on the WGSL side is caught in every spec'd kernel: bindings 1 and 2 swapped.
    const swapped = source.replaceAll("@binding(1)", "@binding(#)").replaceAll("@binding(2)", "@binding(1)")
      .replaceAll("@binding(#)", "@binding(2)");
    assert.throws(() => spec.check(swapped), SpecError, `${name}: swapped bindings pass the check`);
    const struct = spec.structs[0];
    if (struct) {
      assert.throws(() => spec.check(`${source}\n${struct.wgsl}\n`), /which the generated prelude declares/);
    }
    // The kernel declares every entry point of its spec and nothing the prelude declares.
    for (const entryPoint of Object.keys(spec.entries)) {
      assert.match(source, new RegExp(`fn\\s+${entryPoint}\\s*\\(`), `${name}.${entryPoint}`);
    }
  }
});

Deno.test("no spec'd kernel spells the linear id itself: the prelude's helper is the one place", async () => {
  for (const name of Object.keys(KERNEL_SPECS)) {
    const source = await loadWgsl(name);
    assert.doesNotMatch(
      source,
      /wid\.y\s*\*\s*nwg\.x\s*\+\s*wid\.x/,
      `${name} repeats the linear-id formula`,
    );
  }
});

/** A tiny kernel and its spec, to change one side at a time. */
const SOURCE = `
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn scaled(i: u32) -> f32 { return src[i] * p.scale; }
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_workgroup(wid, nwg);
  if (i >= p.count) { return; }
  if ((p.flags & F_SELF) != 0u) { out[i] = 0.0; return; }
  out[i] = scaled(i);
}
`;
const P = uniformStruct("P", { count: "u32", scale: "f32", flags: "u32", spare: "u32" });
const spec = (decl: Partial<{ unused: "spare"[]; bindings: string[] }> = {}) =>
  kernelSpec("tiny", {
    flags: FILTER_FLAGS,
    entries: {
      main: entry({
        uniform: "p",
        struct: P,
        unused: decl.unused ?? ["spare"],
        bindings: decl.bindings ?? ["src", "out"],
      }),
    },
  });

Deno.test("checkEntry catches drift between a kernel's text and its spec", () => {
  checkEntry(spec(), "main", SOURCE); // in agreement
  const fails = (source: string, pattern: RegExp, s = spec()) =>
    assert.throws(
      () => checkEntry(s, "main", source),
      (e) => e instanceof SpecError && pattern.test(e.message),
    );
  // Bindings swapped in the source.
  fails(
    SOURCE.replace("@binding(1) var<storage, read> src", "@binding(2) var<storage, read> src")
      .replace("@binding(2) var<storage, read_write> out", "@binding(1) var<storage, read_write> out"),
    /binding 1 is "src" in the spec, but the source declares src at @group\(0\) @binding\(2\)/,
  );
  // Bindings swapped in the spec.
  fails(SOURCE, /binding 1 is "out" in the spec/, spec({ bindings: ["out", "src"] }));
  // A binding the spec does not list, and one the entry point never uses.
  fails(
    SOURCE.replace("out[i] = scaled(i);", "out[i] = scaled(i) + extra[i];") +
      "@group(0) @binding(3) var<storage, read> extra: array<f32>;\n",
    /uses extra \(binding 3\), which the spec does not list/,
  );
  fails(
    SOURCE + "@group(0) @binding(3) var<storage, read> idle: array<f32>;\n",
    /the spec lists idle, which the entry point never uses/,
    spec({ bindings: ["src", "out", "idle"] }),
  );
  // A field the spec marks unused is read (through a helper function), one it requires is not.
  fails(
    SOURCE.replace("src[i] * p.scale", "src[i] * p.scale + f32(p.spare)"),
    /reads spare, which the spec marks unused/,
  );
  fails(SOURCE.replace("src[i] * p.scale", "src[i]"), /never reads scale/);
  // A field the struct lacks; the uniform bound as the wrong type; a struct or flag declared again.
  fails(SOURCE.replace("p.scale", "p.gain"), /reads p\.gain, not in P/);
  fails(SOURCE.replace("var<uniform> p: P", "var<uniform> p: Q"), /must be declared var<uniform> p: P/);
  fails(SOURCE + "struct P { count: u32 }\n", /declares P, which the generated prelude declares/);
  fails(SOURCE + "const F_SELF = 1u;\n", /declares F_SELF, which the generated prelude declares/);
  fails(
    SOURCE + "fn linear_workgroup(a: vec3u, b: vec3u) -> u32 { return 0u; }\n",
    /declares linear_workgroup/,
  );
  fails(SOURCE.replace("fn main(", "fn main2("), /has no function of that name/);
  // Comments do not count as uses.
  fails(SOURCE.replace("src[i] * p.scale", "src[i] /* p.scale */"), /never reads scale/);
});

Deno.test("the prelude declares the spec's structs, flags and helpers", () => {
  const s = spec();
  const prelude = s.prelude({ WG: 64 });
  assert.match(prelude, /struct P \{ count: u32, scale: f32, flags: u32, spare: u32 \}/);
  for (const [name, bit] of Object.entries(FILTER_FLAGS)) {
    assert.match(prelude, new RegExp(`const ${name} = ${bit}u;`));
  }
  assert.match(prelude, /fn linear_workgroup/);
  assert.match(prelude, /fn linear_invocation/);
  assert.doesNotMatch(s.prelude({}), /fn linear_invocation/, "linear_invocation needs WG");
});

Deno.test("packing takes fields by name, in struct order, and refuses what the spec does not say", () => {
  const u = spec().entries.main.uniform!;
  const view = new DataView(packFields(u, { count: 7, scale: 0.5, flags: 3 }, "tiny.main"));
  assert.equal(view.byteLength, 16);
  assert.deepEqual([view.getUint32(0, true), view.getFloat32(4, true), view.getUint32(8, true)], [7, 0.5, 3]);
  assert.equal(view.getUint32(12, true), 0, "unused fields pack as 0");
  const refuses = (values: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(
      () => packFields(u, values, "tiny.main"),
      (e) => e instanceof SpecError && pattern.test(e.message),
    );
  refuses({ count: 7, scale: 0.5 }, /field flags \(u32\) is missing/);
  refuses({ count: 7, scale: 0.5, flags: 0, gain: 1 }, /gain is not a field of P/);
  refuses({ count: 7, scale: 0.5, flags: 0, spare: 1 }, /spare is not read by this entry point/);
  refuses({ count: -1, scale: 0.5, flags: 0 }, /count \(u32\) must be an integer/);
  refuses({ count: 1.5, scale: 0.5, flags: 0 }, /count \(u32\) must be an integer/);
  refuses({ count: 1, scale: NaN, flags: 0 }, /scale \(f32\) is NaN/);
  refuses({ count: 1, scale: "2", flags: 0 }, /scale \(f32\) must be a number/);
});

Deno.test("flags: single distinct bits; the shared filters keep one value in every kernel that takes them", () => {
  assert.throws(() => flags({ A: 3 }), SpecError);
  assert.throws(() => flags({ A: 2, B: 2 }), SpecError);
  assert.deepEqual(moreFlags(flags({ A: 1, B: 4 }), ["C", "D"]), { A: 1, B: 4, C: 8, D: 16 });
  for (const s of [TOPK, EVAL_TILES]) {
    for (const [name, bit] of Object.entries(FILTER_FLAGS)) {
      assert.equal(s.flags[name], bit, `${s.kernel} ${name}`);
    }
  }
  assert.throws(() => uniformStruct("P", { x: "f64" as "f32" }), SpecError);
  assert.throws(
    () => entry({ uniform: "p", struct: P, unused: ["nope" as "spare"], bindings: [] }),
    SpecError,
  );
  assert.throws(() => entry({ bindings: ["a", "a"] }), /listed twice/);
});

Deno.test("a spec'd kernel is compiled through its spec only; a dispatch by name is checked against it", async () => {
  const gpu = await getGpu();
  await assert.rejects(() => gpu.pipelines.get("gather", "main", { WG: 64 }), /has a spec/);
  const pipeline = await GATHER.pipeline(gpu, "main", { WG: 64 });
  using src = GpuBuffer.fromArray(gpu, new Float32Array([1, 2, 3, 4]), [2, 2]);
  using index = GpuBuffer.fromArray(gpu, new Uint32Array([1]));
  using out = GpuBuffer.zeros(gpu, "f32", [1, 2]);
  const batch = new CommandBatch(gpu);
  const params = { count: 1, cols: 2, block_start: 0, block_rows: 2, total_rows: 2 };
  // The type checker refuses both calls as well (the casts let them reach the run-time checks).
  const extra = { params, src, index, out, extra: out } as never;
  assert.throws(() => batch.run(pipeline, extra, 1), /no binding named extra/);
  const missing = { params, src, index } as never;
  assert.throws(() => batch.run(pipeline, missing, 1), /binding out missing/);
  const unused = { params: { ...params, bogus: 1 }, src, index, out } as never;
  assert.throws(() => batch.run(pipeline, unused, 1), /bogus is not a field of Params/);
  batch.run(pipeline, { params, src, index, out }, 1);
  await batch.submit();
  assert.deepEqual([...await out.read()], [3, 4]);
});
