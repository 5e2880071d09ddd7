/**
 * k-means on the GPU: k-means++ seeding, Lloyd iterations and several restarts run side by side, with the
 * per-point work (distances to centroids, nearest-centroid assignment, cluster means) in
 * kernels/kmeans.wgsl and only O(N) bookkeeping on the host (sampling, grouping, convergence).
 * The data may be larger than one storage binding (it is bound in row blocks).
 *
 * @example
 * ```ts
 * import { kmeans } from "./kmeans.ts";
 * const data = { rows: 4, cols: 1, data: new Float32Array([0, 0.1, 5, 5.1]) };
 * const { assignments } = await kmeans(data, 2, { seed: 1 });
 * // assignments groups {0, 1} and {2, 3}
 * ```
 * @module
 */
import { GpuBuffer, type RowChunk } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { getGpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { checkShape, fmtShape } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import {
  type Assignment,
  type Grouping,
  type KMeansOptions,
  type KMeansResult,
  kmeansSettings,
  runLloyd,
} from "./lloyd.ts";

export type { KMeansOptions, KMeansResult } from "./lloyd.ts";

const WG = 64;

/** Uploads a host matrix, or returns the GPU buffer as is; `owned` says whether the caller must free it. */
export async function asGpuMatrix(
  data: GpuBuffer<"f32"> | HostMatrix,
  gpu?: Gpu,
): Promise<{ buffer: GpuBuffer<"f32">; owned: boolean }> {
  if (data instanceof GpuBuffer) {
    checkShape(data.shape.length === 2, `expected a 2-D [rows x dim] matrix, got ${fmtShape(data.shape)}`);
    return { buffer: data, owned: false };
  }
  const g = gpu ?? await getGpu();
  return { buffer: GpuBuffer.fromArray(g, data.data, [data.rows, data.cols], "matrix"), owned: true };
}

/** Workgroups for one thread per row (x, spilling into y) and one z layer per restart. */
function rowGrid(gpu: Gpu, rows: number, restarts: number): [number, number, number] {
  checkShape(restarts <= gpu.maxWorkgroupsPerDim, `k-means: at most ${gpu.maxWorkgroupsPerDim} restarts`);
  return [...grid1d(gpu, Math.ceil(rows / WG)), restarts];
}

/** Submits `batch` and reads `count` elements of `buf` from `start` in the same wait for the GPU. */
async function submitAndRead(
  batch: CommandBatch,
  buf: GpuBuffer<"u32">,
  start: number,
  count: number,
): Promise<Uint32Array> {
  const done = batch.submit();
  const out = await buf.read(start, count);
  await done;
  return out;
}

function pipeline(gpu: Gpu, entry: string, dim: number): Promise<GPUComputePipeline> {
  return gpu.pipelines.get("kmeans", entry, { WG, DIM: dim });
}

/** Floats per centroid row on the GPU: `dim` rounded up to a multiple of 4 (zero padded, vec4 loads). */
export function paddedDim(dim: number): number {
  return Math.ceil(dim / 4) * 4;
}

/**
 * Encodes the nearest-centroid assignment of every row of `data` for each of the restarts' centroid sets
 * (`centroids` [restarts * k x paddedDim(dim)], rows zero padded) into `result` (u32 [2 x restarts x rows]:
 * clusters, then squared distances as f32 bits). Ties go to the smaller cluster index.
 */
export async function encodeKmeansAssign(
  batch: CommandBatch,
  data: GpuBuffer<"f32">,
  centroids: GpuBuffer<"f32">,
  k: number,
  result: GpuBuffer<"u32">,
  chunks: RowChunk[] = data.rowChunks(),
): Promise<void> {
  const n = data.rows, dim = data.cols;
  checkShape(
    centroids.cols === paddedDim(dim) && centroids.rows % k === 0 && centroids.rows > 0,
    `kmeans assign: centroids ${fmtShape(centroids.shape)} must be [restarts * ${k} x ${paddedDim(dim)}] ` +
      `for data ${fmtShape(data.shape)}`,
  );
  const restarts = centroids.rows / k;
  checkShape(
    result.length === 2 * restarts * n,
    `kmeans assign: result ${fmtShape(result.shape)} must hold [2 x ${restarts} x ${n}]`,
  );
  const p = await pipeline(batch.gpu, "assign", dim);
  for (const ch of chunks) {
    const params = batch.uniform([n, k, restarts, ch.rowStart, ch.rows, 0, 0, 0]);
    batch.dispatch(
      p,
      [params, ch.binding, centroids, result],
      rowGrid(batch.gpu, ch.rows, restarts),
      "kmeansAssign",
    );
  }
}

function splitResult(all: Uint32Array, half: number): Assignment {
  return {
    assign: all.subarray(0, half),
    dist: new Float32Array(all.buffer, all.byteOffset + half * 4, half),
  };
}

/** Copies a [rows x dim] matrix into rows of paddedDim(dim) floats (zero padded). */
function padRows(m: HostMatrix): Float32Array {
  const dp = paddedDim(m.cols);
  const out = new Float32Array(m.rows * dp);
  for (let i = 0; i < m.rows; i++) out.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), i * dp);
  return out;
}

/**
 * Nearest centroid of every row of `data` for each centroid set in `centroids` ([restarts * k x dim],
 * restart r's clusters in rows r*k..r*k+k-1), on the GPU; ties go to the smaller cluster index.
 * `chunkBytes` limits the data block bound at once (tests use it to force blocking).
 */
export async function kmeansAssign(
  data: GpuBuffer<"f32">,
  centroids: HostMatrix,
  k: number,
  chunkBytes?: number,
): Promise<Assignment> {
  checkShape(
    centroids.cols === data.cols,
    `kmeans assign: centroids [${centroids.rows} x ${centroids.cols}] and data ${
      fmtShape(data.shape)
    } differ in dim`,
  );
  const restarts = centroids.rows / k;
  const batch = new CommandBatch(data.gpu, "kmeansAssign");
  const cents = batch.scratch("f32", [centroids.rows, paddedDim(centroids.cols)]);
  cents.write(padRows(centroids));
  const result = batch.scratch("u32", [2, restarts, data.rows]);
  await encodeKmeansAssign(batch, data, cents, k, result, data.rowChunks(chunkBytes));
  return splitResult(await submitAndRead(batch, result, 0, result.length), restarts * data.rows);
}

/** Options of {@link kmeans}: those of the reference plus the binding size used to block the data. */
export interface GpuKMeansOptions extends KMeansOptions {
  /** Largest data block bound at once, in bytes (default: the adapter's binding limit); for tests. */
  chunkBytes?: number;
}

/**
 * k-means with k-means++ seeding and `restarts` restarts (best inertia wins) on the GPU. Deterministic
 * for a given seed. Same algorithm and result layout as {@link kmeansRef}.
 */
export async function kmeans(
  data: GpuBuffer<"f32"> | HostMatrix,
  k: number,
  opts: GpuKMeansOptions = {},
): Promise<KMeansResult> {
  const { buffer: x, owned } = await asGpuMatrix(data);
  const gpu = x.gpu;
  const n = x.rows, dim = x.cols, dp = paddedDim(dim);
  const { restarts } = kmeansSettings(n, k, opts);
  const chunks = x.rowChunks(opts.chunkBytes);
  using cents = GpuBuffer.zeros(gpu, "f32", [restarts * k, dp], "kmeans centroids");
  using sums = GpuBuffer.zeros(gpu, "f32", [chunks.length > 1 ? restarts * k * dp : 1], "kmeans sums");
  using result = GpuBuffer.zeros(gpu, "u32", [2, restarts, n], "kmeans result");
  using order = GpuBuffer.zeros(gpu, "u32", [restarts, n], "kmeans order");
  using offsets = GpuBuffer.zeros(gpu, "u32", [restarts, k + 1], "kmeans offsets");
  const [ppPipe, updatePipe] = await Promise.all([
    pipeline(gpu, "pp_update", dim),
    pipeline(gpu, "update", dim),
  ]);
  try {
    return await runLloyd(
      {
        async seed(step, rows) {
          const batch = new CommandBatch(gpu, "kmeans++");
          for (let r = 0; r < restarts; r++) batch.copy(x, rows[r] * dim, cents, (r * k + step) * dp, dim);
          for (const ch of chunks) {
            const params = batch.uniform([n, k, restarts, ch.rowStart, ch.rows, step, step === 0 ? 1 : 0, 0]);
            batch.dispatch(
              ppPipe,
              [params, ch.binding, cents, result],
              rowGrid(gpu, ch.rows, restarts),
              "kmeansSeed",
            );
          }
          const half = restarts * n;
          return new Float32Array((await submitAndRead(batch, result, half, half)).buffer);
        },
        async assign(update?: Grouping) {
          const batch = new CommandBatch(gpu, "kmeans step");
          if (update) {
            order.write(update.order);
            offsets.write(update.offsets);
            const groups = grid1d(gpu, Math.ceil(restarts * k * dim / WG));
            chunks.forEach((ch, i) => {
              const last = i === chunks.length - 1 ? 1 : 0;
              const params = batch.uniform([n, k, restarts, ch.rowStart, ch.rows, 0, i === 0 ? 1 : 0, last]);
              batch.dispatch(
                updatePipe,
                [params, ch.binding, order, offsets, sums, cents],
                groups,
                "kmeansUpdate",
              );
            });
          }
          await encodeKmeansAssign(batch, x, cents, k, result, chunks);
          return splitResult(await submitAndRead(batch, result, 0, result.length), restarts * n);
        },
        async centroids(r) {
          const padded = await cents.read(r * k * dp, k * dp);
          const out = new Float32Array(k * dim);
          for (let c = 0; c < k; c++) out.set(padded.subarray(c * dp, c * dp + dim), c * dim);
          return { rows: k, cols: dim, data: out };
        },
      },
      n,
      k,
      opts,
    );
  } finally {
    if (owned) x.destroy();
  }
}
