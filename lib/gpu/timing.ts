/**
 * GPU timing. With the `timestamp-query` feature every compute pass encoded while a profiler is active
 * records begin/end timestamps, summed per pass label. Without it, `profile()` reports wall-clock time
 * around the work (submit to completion), and says so in `source`.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { profile } from "./timing.ts";
 * const gpu = await getGpu();
 * const { report } = await profile(gpu, async () => {
 *   // ... encode and submit work with CommandBatch ...
 * });
 * console.log(report.totalMs, report.source);
 * ```
 * @module
 */
import type { Gpu } from "./device.ts";

/** Time spent in passes with one label. */
export interface LabelTiming {
  /** Compute passes with this label. */
  passes: number;
  /** Their total milliseconds. */
  ms: number;
}

/** The outcome of a profiled region. */
export interface ProfileReport {
  /** GPU time in ms: the sum of pass times ("timestamps") or wall time around the region ("wall"). */
  totalMs: number;
  /** Wall-clock ms from the start of the region until all its GPU work completed. */
  wallMs: number;
  /** How the times were measured: GPU timestamp queries, or wall time around submissions. */
  source: "timestamps" | "wall";
  /** Totals per dispatch label. */
  byLabel: Map<string, LabelTiming>;
  /** Passes encoded beyond the query capacity of one submission, hence untimed. */
  untimedPasses: number;
}

const QUERY_CAPACITY = 4096; // the WebGPU maximum per query set

/** Collects timestamp pairs of compute passes; installed on a Gpu by {@link profile}. */
export class GpuProfiler {
  readonly #gpu: Gpu;
  readonly #querySet: GPUQuerySet;
  #labels: string[] = [];
  #pending: Promise<void>[] = [];
  /** Totals per dispatch label so far. */
  readonly byLabel: Map<string, LabelTiming> = new Map();
  /** Passes that could not be timed. */
  untimedPasses: number = 0;

  /** A profiler on `gpu` (timestamp queries when the adapter has them). */
  constructor(gpu: Gpu) {
    this.#gpu = gpu;
    this.#querySet = gpu.device.createQuerySet({ type: "timestamp", count: QUERY_CAPACITY });
  }

  /** Timestamp writes for the next pass, or undefined when this submission's slots are used up. */
  timestampWrites(label: string): GPUComputePassTimestampWrites | undefined {
    const slot = this.#labels.length * 2;
    if (slot + 2 > QUERY_CAPACITY) {
      this.untimedPasses++;
      return undefined;
    }
    this.#labels.push(label);
    return { querySet: this.#querySet, beginningOfPassWriteIndex: slot, endOfPassWriteIndex: slot + 1 };
  }

  /** Appends the resolve of this submission's timestamps to `encoder`; call just before `finish()`. */
  resolve(encoder: GPUCommandEncoder): (() => void) | undefined {
    const labels = this.#labels;
    if (!labels.length) return undefined;
    this.#labels = [];
    const device = this.#gpu.device;
    const bytes = labels.length * 16;
    const resolved = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const readback = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#querySet, 0, labels.length * 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, bytes);
    // Called after submit: map and accumulate asynchronously.
    return () => {
      this.#pending.push(
        readback.mapAsync(GPUMapMode.READ).then(() => {
          const t = new BigUint64Array(readback.getMappedRange());
          labels.forEach((label, i) => {
            const ms = t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) / 1e6 : 0;
            const e = this.byLabel.get(label) ?? { passes: 0, ms: 0 };
            e.passes++;
            e.ms += ms;
            this.byLabel.set(label, e);
          });
          readback.destroy();
          resolved.destroy();
        }),
      );
    };
  }

  /** Waits for every recorded submission's timestamps. */
  async settle(): Promise<void> {
    await Promise.all(this.#pending);
    this.#pending = [];
  }

  /** Frees the query buffers. */
  destroy(): void {
    this.#querySet.destroy();
  }
}

/**
 * Runs `fn` with GPU timing on: returns its result and a report of the GPU time of every compute pass
 * encoded through CommandBatch inside it. Profiled regions must not overlap on one Gpu.
 */
export async function profile<T>(
  gpu: Gpu,
  fn: () => Promise<T>,
): Promise<{ result: T; report: ProfileReport }> {
  if (gpu.profiler) throw new Error("profile(): a profiled region is already active on this GPU context");
  const profiler = gpu.report.hasTimestamps ? new GpuProfiler(gpu) : undefined;
  gpu.profiler = profiler;
  const t0 = performance.now();
  try {
    const result = await fn();
    await gpu.idle(); // work submitted through CommandBatch; readbacks inside fn have completed already
    const wallMs = performance.now() - t0;
    if (!profiler) {
      return {
        result,
        report: { totalMs: wallMs, wallMs, source: "wall", byLabel: new Map(), untimedPasses: 0 },
      };
    }
    await profiler.settle();
    let totalMs = 0;
    for (const e of profiler.byLabel.values()) totalMs += e.ms;
    return {
      result,
      report: {
        totalMs,
        wallMs,
        source: "timestamps",
        byLabel: profiler.byLabel,
        untimedPasses: profiler.untimedPasses,
      },
    };
  } finally {
    gpu.profiler = undefined;
    profiler?.destroy();
  }
}
