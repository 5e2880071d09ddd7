/**
 * WGSL loading and the compute-pipeline cache.
 *
 * Kernels live in `kernels/<name>.wgsl` at the repository root and are read relative to this module's
 * `import.meta.url`, so the same code works when `mod.ts` is imported from `file://` (read from disk) or
 * from `https://` (fetched). Compile-time constants ("defines") are prepended as WGSL `const`
 * declarations; each kernel's header lists the ones it expects.
 * @module
 */
import { UserError } from "../errors.ts";

/** Compile-time constants: emitted as `const NAME = value;` (abstract int/float, or bool). */
export type Defines = Readonly<Record<string, number | boolean>>;

const KERNEL_DIR = new URL("../../kernels/", import.meta.url);
const sources = new Map<string, Promise<string>>();

async function readKernel(url: URL): Promise<string> {
  try {
    if (url.protocol === "file:") return await Deno.readTextFile(url);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.text();
  } catch (e) {
    throw new UserError(
      `Cannot load WGSL kernel ${url.href} (${(e as Error).message}). ` +
        (url.protocol === "file:"
          ? "Grant read access to the toolkit's folder (--allow-read)."
          : "Grant network access to its host (--allow-net)."),
    );
  }
}

/** The source of `kernels/<name>.wgsl`, cached per process. */
export function loadWgsl(name: string): Promise<string> {
  let src = sources.get(name);
  if (!src) {
    src = readKernel(new URL(`${name}.wgsl`, KERNEL_DIR));
    sources.set(name, src);
    src.catch(() => sources.delete(name));
  }
  return src;
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
