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
import { GpuUnavailableError } from "../errors.ts";
import { PipelineCache } from "./kernels.ts";
import type { GpuProfiler } from "./timing.ts";

/** What the adapter is and what it can do. */
export interface AdapterReport {
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100". */
  name: string;
  vendor: string;
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

/** Options for {@link Gpu.create}. */
export interface GpuOptions {
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
  readonly #inFlight = new Set<Promise<void>>();
  #uncapturedErrors = 0;

  private constructor(
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly report: AdapterReport,
  ) {
    this.pipelines = new PipelineCache(device);
    // Validation errors outside an error scope would otherwise pass silently (a dispatch whose bindings
    // do not fit its pipeline is just dropped): report every one loudly and count them.
    device.addEventListener("uncapturederror", (event) => {
      this.#uncapturedErrors++;
      console.error(`WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`);
    });
    device.lost.then((info) => {
      this.#lost = true;
      if (info.reason !== "destroyed") console.error(`WebGPU device lost: ${info.message}`);
    });
  }

  /** Records a submission's completion promise until it settles (see {@link Gpu.idle}). */
  track(done: Promise<void>): void {
    this.#inFlight.add(done);
    done.finally(() => this.#inFlight.delete(done));
  }

  /**
   * Resolves when every submission tracked so far has completed; at once when none is pending (Deno
   * answers a fresh onSubmittedWorkDone only after its ~10 ms device poll).
   */
  async idle(): Promise<void> {
    await Promise.all(this.#inFlight);
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
    if (!adapter) throw new GpuUnavailableError(`No WebGPU adapter found. ${REMEDY}`);
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

let shared: Promise<Gpu> | undefined;

/** The process-wide default GPU context, created on first call. */
export function getGpu(): Promise<Gpu> {
  if (!shared) {
    shared = Gpu.create();
    shared.catch(() => (shared = undefined));
  }
  return shared;
}
