/**
 * WebGPU adapter and device acquisition.
 *
 * `getGpu()` returns the process-wide default context (created on first use); `Gpu.create()` makes an
 * independent one. A context owns the device, a report of the adapter (name, software fallback or not,
 * limits, features), the pipeline cache and, while one is active, a GPU profiler.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * console.log(gpu.report.name, gpu.report.isSoftware);
 * ```
 * @module
 */
import { GpuError, GpuUnavailableError } from "../errors.ts";
import { PipelineCache } from "./kernels.ts";
import type { GpuProfiler } from "./timing.ts";

/** What the adapter is and what it can do. */
export interface AdapterReport {
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100". */
  name: string;
  /** Adapter vendor. */
  vendor: string;
  /** Adapter architecture. */
  architecture: string;
  /** True for a CPU implementation (Mesa llvmpipe/lavapipe, SwiftShader, WARP). */
  isSoftware: boolean;
  /** Adapter features the device was created with that this toolkit uses. */
  features: string[];
  /** The device's limits (raised to the adapter's maxima where this toolkit needs them). */
  limits: Record<string, number>;
  /** Whether GPU timestamps (timestamp-query) are available for timing. */
  hasTimestamps: boolean;
}

/** One error the device reported: inside an operation's error scope, outside any (uncaptured), or a lost device. */
export interface GpuErrorRecord {
  /** The kernel, copy or step it happened in ("uncaptured" when no scope caught it). */
  where: string;
  /** What kind of error the device reported. */
  kind: "validation" | "out-of-memory" | "internal" | "uncaptured" | "lost";
  /** The device's message. */
  message: string;
}

/** Options for {@link Gpu.create}. */
export interface GpuOptions {
  /**
   * Adapter preference passed to requestAdapter.
   * @default "high-performance"
   */
  powerPreference?: GPUPowerPreference;
}

const REMEDY =
  "Install a Vulkan driver: on Debian/Ubuntu run 'sudo apt-get install -y mesa-vulkan-drivers' " +
  "for the software adapter (or your GPU vendor's driver), or run ./dml, which installs it.";

/**
 * Limits taken at the adapter's own value instead of the WebGPU default: maxima raised (big buffers, big
 * workgroups) and alignments lowered (finer row blocks).
 */
const ADAPTER_LIMITS = [
  "minStorageBufferOffsetAlignment",
  "minUniformBufferOffsetAlignment",
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxStorageBuffersPerShaderStage",
] as const;

/** Features requested when the adapter has them. Only WebGPU-spec features, for portability. */
const WANTED_FEATURES = ["timestamp-query", "shader-f16"] as const;

/**
 * On Linux, asks Deno's wgpu for the Vulkan backend only, unless DENO_WEBGPU_BACKEND is already set. Left to
 * itself wgpu also brings up EGL/OpenGL (a second Mesa driver plus libglvnd's per-thread state) although
 * we only ever use the Vulkan adapter; with it loaded the process sometimes aborted at exit with glibc heap
 * corruption ("double free or corruption"), after all work had finished. Must run before the first
 * requestAdapter of the process. Without env permission wgpu's default stays.
 */
function preferVulkanOnLinux(): void {
  if (typeof Deno === "undefined" || Deno.build.os !== "linux") return;
  const variable = "DENO_WEBGPU_BACKEND";
  // Query first so that a run without env permission is never prompted.
  if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return;
  if (!Deno.env.get(variable)) Deno.env.set(variable, "vulkan");
}

/** The wgpu backends Deno can use on each OS (DENO_WEBGPU_BACKEND takes a comma-separated list of them). */
const BACKENDS: Record<string, string[]> = {
  linux: ["vulkan", "gl"],
  windows: ["dx12", "vulkan", "gl"],
  darwin: ["metal"],
};

/**
 * When DENO_WEBGPU_BACKEND is set, what it says about a missing adapter: a backend this OS does not have,
 * or the one asked for gave none. Empty when unset or unreadable (no env permission: never prompted).
 */
function backendNote(): string {
  if (typeof Deno === "undefined") return "";
  const variable = "DENO_WEBGPU_BACKEND";
  if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return "";
  const value = Deno.env.get(variable);
  if (!value) return "";
  const os = Deno.build.os, known = BACKENDS[os] ?? [];
  const asked = value.split(",").map((b) => b.trim().toLowerCase()).filter(Boolean);
  const foreign = asked.filter((b) => !known.includes(b));
  if (foreign.length === asked.length) {
    return `DENO_WEBGPU_BACKEND=${value} names no backend available on ${os} (${
      known.join(", ") || "none known"
    }): unset it, or set it to ${known[0] ?? "a backend of this OS"}`;
  }
  return `DENO_WEBGPU_BACKEND=${value} limits the search to that backend: unset it to let WebGPU try the others`;
}

function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  if (info.isFallbackAdapter) return true;
  const text = `${info.description} ${info.device} ${info.vendor}`;
  return /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|warp/i.test(text);
}

/** A WebGPU device with what the toolkit's ops need around it. */
export class Gpu {
  /** The pipeline cache for this device. */
  readonly pipelines: PipelineCache;
  /** Set while a profiler is active: compute passes then record timestamps into it. */
  profiler: GpuProfiler | undefined;
  #lost = false;
  readonly #inFlight = new Set<Promise<unknown>>();
  #uncapturedErrors = 0;
  readonly #errors: GpuErrorRecord[] = [];

  private constructor(
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly report: AdapterReport,
  ) {
    this.pipelines = new PipelineCache(device);
    // Operations run inside error scopes (see capture); anything that still escapes them is recorded and
    // printed, and fails the next check (throwIfErrorsSince) of whoever is running.
    device.addEventListener("uncapturederror", (event) => {
      this.#uncapturedErrors++;
      const message = (event as GPUUncapturedErrorEvent).error.message;
      this.#errors.push({ where: "uncaptured", kind: "uncaptured", message });
      console.error(`WebGPU error: ${message}`);
    });
    device.lost.then((info) => {
      this.#lost = true;
      if (info.reason !== "destroyed") {
        this.#errors.push({ where: "device", kind: "lost", message: `device lost: ${info.message}` });
        console.error(`WebGPU device lost: ${info.message}`);
      }
    });
  }

  /** Records a submission's completion promise until it settles (see {@link Gpu.idle}). */
  track(done: Promise<unknown>): void {
    this.#inFlight.add(done);
    const forget = () => void this.#inFlight.delete(done);
    done.then(forget, forget);
  }

  /**
   * Resolves when every submission tracked so far has settled; at once when none is pending (Deno
   * answers a fresh onSubmittedWorkDone only after its ~10 ms device poll). Failures are left to
   * whoever awaits the submission (and stay in {@link Gpu.errorCount}).
   */
  async idle(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
  }

  /**
   * Runs `fn` (synchronous WebGPU calls) inside validation, out-of-memory and internal error scopes.
   * Returns its value and a promise of the first error the scopes caught (recorded in the error log), or
   * undefined. Push and pop happen in the same synchronous turn, so concurrent operations never see each
   * other's scopes.
   */
  capture<T>(where: string, fn: () => T): [T, Promise<GpuErrorRecord | undefined>] {
    const d = this.device;
    const kinds = ["internal", "out-of-memory", "validation"] as const;
    for (const k of kinds) d.pushErrorScope(k);
    const popAll = () => kinds.map(() => d.popErrorScope().catch(() => null));
    let value: T;
    try {
      value = fn();
    } catch (e) {
      popAll();
      throw e;
    }
    // Pops come back innermost first: validation, out-of-memory, internal.
    const caught = Promise.all(popAll()).then((errors) => {
      const i = errors.findIndex((e) => e);
      if (i < 0) return undefined;
      const record: GpuErrorRecord = {
        where,
        kind: kinds[kinds.length - 1 - i],
        message: errors[i]!.message,
      };
      this.#errors.push(record);
      return record;
    });
    return [value, caught];
  }

  /** Errors recorded so far (scoped and uncaptured): a mark for {@link Gpu.throwIfErrorsSince}. */
  get errorCount(): number {
    return this.#errors.length;
  }

  /** The errors recorded after `mark` (a value of {@link Gpu.errorCount}). */
  errorsSince(mark: number): readonly GpuErrorRecord[] {
    return this.#errors.slice(mark);
  }

  /**
   * Throws a {@link GpuError} for the first error recorded after `mark`, or when the device is lost:
   * call before using (or writing) results computed since the mark.
   */
  throwIfErrorsSince(mark: number): void {
    const first = this.#errors[mark];
    if (first) throw this.errorFor(first);
    if (this.#lost) throw new GpuError("device", "the device was lost or destroyed", "create a new Gpu");
  }

  /** The GpuError for a recorded error, with a hint at the cause where the message tells it. */
  errorFor(record: GpuErrorRecord): GpuError {
    return new GpuError(record.where, record.message, gpuErrorHint(record, this.maxBindingBytes));
  }

  /** WebGPU errors raised outside an error scope so far (each is also printed to stderr). */
  get uncapturedErrors(): number {
    return this.#uncapturedErrors;
  }

  /** True once the device has been lost or destroyed. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Requests an adapter and a device; throws {@link GpuUnavailableError} with the remedy if there is none. */
  static async create(options: GpuOptions = {}): Promise<Gpu> {
    if (typeof navigator === "undefined" || !("gpu" in navigator)) {
      throw new GpuUnavailableError(
        `This runtime has no WebGPU (navigator.gpu is missing). Use Deno 2.x. ${REMEDY}`,
      );
    }
    preferVulkanOnLinux();
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await navigator.gpu.requestAdapter({
        powerPreference: options.powerPreference ?? "high-performance",
      });
    } catch (e) {
      throw new GpuUnavailableError(
        `Requesting a WebGPU adapter failed (${(e as Error).message}). ${REMEDY}`,
      );
    }
    if (!adapter) {
      const note = backendNote();
      throw new GpuUnavailableError(
        `No WebGPU adapter found. ${
          note ? `${note}; otherwise ${REMEDY[0].toLowerCase()}${REMEDY.slice(1)}` : REMEDY
        }`,
      );
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of ADAPTER_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[name];
      if (typeof v === "number") requiredLimits[name] = v;
    }
    const requiredFeatures = WANTED_FEATURES.filter((f) => adapter!.features.has(f)) as GPUFeatureName[];
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    } catch (e) {
      throw new GpuUnavailableError(`Creating a WebGPU device failed (${(e as Error).message}). ${REMEDY}`);
    }
    const limits: Record<string, number> = {};
    for (const key in device.limits) {
      const v = (device.limits as unknown as Record<string, number>)[key];
      if (typeof v === "number") limits[key] = v;
    }
    const info = adapter.info;
    const report: AdapterReport = {
      name: info.description || info.device || info.vendor || "unknown adapter",
      vendor: info.vendor,
      architecture: info.architecture,
      isSoftware: isSoftwareAdapter(adapter),
      features: [...requiredFeatures],
      limits,
      hasTimestamps: requiredFeatures.includes("timestamp-query" as GPUFeatureName),
    };
    return new Gpu(adapter, device, report);
  }

  /** A one-line description for logs: name, software or hardware, key limits. */
  describe(): string {
    const r = this.report;
    const mib = (n: number) => `${Math.floor(n / 2 ** 20)} MiB`;
    return `${r.name} (${r.isSoftware ? "software" : "hardware"}; binding ${
      mib(r.limits.maxStorageBufferBindingSize)
    }, ` +
      `buffer ${
        mib(r.limits.maxBufferSize)
      }, workgroup memory ${r.limits.maxComputeWorkgroupStorageSize} B, ` +
      `timestamps ${r.hasTimestamps ? "yes" : "no"})`;
  }

  /** Largest storage binding in bytes. */
  get maxBindingBytes(): number {
    return this.report.limits.maxStorageBufferBindingSize;
  }

  /** Largest workgroup count per dispatch dimension. */
  get maxWorkgroupsPerDim(): number {
    return this.report.limits.maxComputeWorkgroupsPerDimension;
  }

  /** Destroys the device; the context is unusable afterwards. */
  destroy(): void {
    this.device.destroy();
  }
}

/** What to change for a GPU error, when its message says (library terms: shapes and buffers). */
export function gpuErrorHint(record: GpuErrorRecord, maxBindingBytes: number): string {
  const m = record.message;
  if (/binding.*(size|exceeds)|buffer_binding_size|max_storage_buffer/i.test(m)) {
    return `a buffer is larger than this adapter's storage binding (${
      Math.floor(maxBindingBytes / 2 ** 20)
    } MiB): use smaller shapes`;
  }
  if (record.kind === "out-of-memory" || /out of memory/i.test(m)) {
    return "the GPU ran out of memory: use smaller shapes or free buffers first";
  }
  if (/destroyed/i.test(m)) {
    return "a buffer was destroyed while in use: keep it alive until the work is done";
  }
  return "";
}

let shared: Promise<Gpu> | undefined;

/** The process-wide default GPU context, created on first call. */
export function getGpu(): Promise<Gpu> {
  if (!shared) {
    shared = Gpu.create();
    shared.catch(() => (shared = undefined));
  }
  return shared;
}
