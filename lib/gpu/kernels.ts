/**
 * WGSL sources and the compute-pipeline cache.
 *
 * Kernels live in `kernels/<name>.wgsl` (the source of truth) and reach the code as text imports
 * (lib/gpu/wgsl.ts), so they travel with the module graph: importing `mod.ts` from `file://` or `https://`,
 * or bundling it for a browser, needs no file or network permission beyond the import itself.
 * Compile-time constants ("defines") are prepended as WGSL `const` declarations; each kernel's header lists
 * the ones it expects.
 * @module
 */
import { UserError } from "../errors.ts";
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

/** Compiled compute pipelines keyed by kernel, entry point and defines. */
export class PipelineCache {
  readonly #pipelines = new Map<string, Promise<GPUComputePipeline>>();

  /** A cache of pipelines on `device`. */
  constructor(readonly device: GPUDevice) {}

  /** Number of distinct pipelines compiled so far. */
  get size(): number {
    return this.#pipelines.size;
  }

  /** The pipeline for `entryPoint` in `kernels/<kernel>.wgsl` compiled with `defines`. */
  get(kernel: string, entryPoint: string, defines: Defines = {}): Promise<GPUComputePipeline> {
    const key = `${kernel}:${entryPoint}:${JSON.stringify(Object.entries(defines).sort())}`;
    let p = this.#pipelines.get(key);
    if (!p) {
      p = this.#compile(kernel, entryPoint, defines);
      this.#pipelines.set(key, p);
      p.catch(() => this.#pipelines.delete(key));
    }
    return p;
  }

  async #compile(kernel: string, entryPoint: string, defines: Defines): Promise<GPUComputePipeline> {
    const code = withDefines(await loadWgsl(kernel), defines);
    const label = `${kernel}.${entryPoint}`;
    const module = this.device.createShaderModule({ label, code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length) {
      const text = errors.map((m) => `  line ${m.lineNum}:${m.linePos} ${m.message}`).join("\n");
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
