/**
 * WGSL sources and the compute-pipeline cache.
 *
 * Kernels live in `kernels/<name>.wgsl` (the source of truth) and reach the code as text imports
 * (lib/gpu/wgsl.ts), so they travel with the module graph: importing `mod.ts` from `file://` or `https://`,
 * or bundling it for a browser, needs no file or network permission beyond the import itself.
 * Compile-time constants ("defines") are prepended as WGSL `const` declarations; each kernel's header lists
 * the ones it expects. A kernel with a spec (./spec.ts, lib/gpu/specs/) is compiled through it: its source
 * is checked against the spec and gets the generated prelude (uniform structs, flags, shared helpers).
 * @module
 */
import { UserError } from "../errors.ts";
import { checkEntry, type KernelSpec, SpecError } from "./spec.ts";
import { KERNEL_SPECS } from "./specs/mod.ts";
import { WGSL_SOURCES } from "./wgsl.ts";

/** Compile-time constants: emitted as `const NAME = value;` (abstract int/float, or bool). */
export type Defines = Readonly<Record<string, number | boolean>>;

/** The source of `kernels/<name>.wgsl`. */
export function loadWgsl(name: string): Promise<string> {
  const src = Object.hasOwn(WGSL_SOURCES, name) ? WGSL_SOURCES[name] : undefined;
  if (src === undefined) {
    return Promise.reject(
      new UserError(
        `Unknown WGSL kernel "${name}": kernels/${name}.wgsl is not listed in lib/gpu/wgsl.ts ` +
          `(known: ${Object.keys(WGSL_SOURCES).join(", ")})`,
      ),
    );
  }
  return Promise.resolve(src);
}

function literal(name: string, v: number | boolean): string {
  if (typeof v === "boolean") return String(v);
  if (!Number.isFinite(v)) throw new Error(`define ${name} must be finite, got ${v}`);
  return Number.isInteger(v) ? String(v) : v.toExponential();
}

/** Prepends the defines to a WGSL source as `const` declarations. */
export function withDefines(source: string, defines: Defines): string {
  const lines = Object.keys(defines).sort().map((k) => `const ${k} = ${literal(k, defines[k])};`);
  return lines.length ? `${lines.join("\n")}\n${source}` : source;
}

/** Compiled compute pipelines keyed by kernel (or spec), entry point and defines. */
export class PipelineCache {
  readonly #pipelines = new Map<string, Promise<GPUComputePipeline>>();

  /** A cache of pipelines on `device`. */
  constructor(readonly device: GPUDevice) {}

  /** Number of distinct pipelines compiled so far. */
  get size(): number {
    return this.#pipelines.size;
  }

  /**
   * The pipeline for `entryPoint` of `kernels/<kernel>.wgsl` compiled with `defines`. A kernel with a spec
   * is reached through the spec (usually `SPEC.pipeline(gpu, entry, defines)`); naming such a kernel by
   * its name is refused.
   */
  get(kernel: string | KernelSpec, entryPoint: string, defines: Defines = {}): Promise<GPUComputePipeline> {
    const name = typeof kernel === "string" ? kernel : kernel.kernel;
    if (typeof kernel === "string" && Object.hasOwn(KERNEL_SPECS, kernel)) {
      return Promise.reject(
        new SpecError(
          `kernels/${kernel}.wgsl has a spec (lib/gpu/specs/${kernel}.ts): compile it through the spec, ` +
            `e.g. await SPEC.pipeline(gpu, "${entryPoint}", defines)`,
        ),
      );
    }
    const id = typeof kernel === "string" ? name : `${name}#${kernel.id}`;
    const key = `${id}:${entryPoint}:${JSON.stringify(Object.entries(defines).sort())}`;
    let p = this.#pipelines.get(key);
    if (!p) {
      p = this.#compile(name, typeof kernel === "string" ? undefined : kernel, entryPoint, defines);
      this.#pipelines.set(key, p);
      p.catch(() => this.#pipelines.delete(key));
    }
    return p;
  }

  async #compile(
    kernel: string,
    spec: KernelSpec | undefined,
    entryPoint: string,
    defines: Defines,
  ): Promise<GPUComputePipeline> {
    const source = await loadWgsl(kernel);
    if (spec) checkEntry(spec, entryPoint, source);
    const header = withDefines(spec ? spec.prelude(defines) : "", defines);
    const code = header + source;
    const headerLines = header.split("\n").length - 1;
    const label = `${kernel}.${entryPoint}`;
    const module = this.device.createShaderModule({ label, code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length) {
      const text = errors.map((m) =>
        m.lineNum > headerLines
          ? `  line ${m.lineNum - headerLines}:${m.linePos} ${m.message}`
          : `  generated line ${m.lineNum} (${code.split("\n")[m.lineNum - 1]?.slice(0, 80)}): ${m.message}`
      ).join("\n");
      throw new Error(
        `WGSL compile error in kernels/${kernel}.wgsl (defines ${JSON.stringify(defines)}):\n${text}`,
      );
    }
    this.device.pushErrorScope("validation");
    const pipeline = await this.device.createComputePipelineAsync({
      label,
      layout: "auto",
      compute: { module, entryPoint },
    });
    const err = await this.device.popErrorScope();
    if (err) throw new Error(`Pipeline ${label} is invalid: ${err.message}`);
    return pipeline;
  }
}
