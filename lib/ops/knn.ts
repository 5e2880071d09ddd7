/**
 * Fused k-nearest neighbours under squared L2: distances and top-k selection streamed over blocks of the
 * base, so the full [M x N] distance matrix never exists (FAISS-style brute force: a distance block from
 * kernels/distance.wgsl, then kernels/topk.wgsl merges it into the running per-query lists).
 *
 * Results follow {@link topkSmallest}'s rules (ascending, ties to the smaller base index, NaN never
 * selected, short rows filled with index 0xFFFFFFFF and +Infinity). Distances are the GPU's
 * `max(||q||^2 + ||b||^2 - 2 q.b, 0)` (see ./distance.ts for the precision), so on float data the
 * order of near-ties can differ from the f64 reference; on data whose distances are exact in f32
 * (small integers) GPU and reference agree exactly.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { GpuBuffer } from "../gpu/buffer.ts";
 * import { knnSqL2 } from "./knn.ts";
 * const gpu = await getGpu();
 * using base = GpuBuffer.fromArray(gpu, new Float32Array([0, 0, 1, 0, 5, 5]), [3, 2]);
 * using nn = await knnSqL2(base, base, 1, { excludeSelf: true });
 * console.log(await nn.indices.read()); // Uint32Array [1, 0, 1]
 * ```
 * @module
 */
import { alignedRowBlock, alignedRowStep, GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import type { HostMatrix } from "../util/matrix.ts";
import {
  checkPairShapes,
  chooseDistanceKernel,
  type DistanceKernel,
  encodeDistanceBlock,
  encodePrepareRows,
  type PreparedRows,
  sqL2Ref,
} from "./distance.ts";
import {
  allocTopk,
  checkK,
  chooseSegments,
  encodeSelectBlock,
  type FilterBindings,
  filterBindings,
  filterPredicate,
  selectRowRef,
  type TopkFilter,
  type TopkFilterHost,
  type TopkHostResult,
  type TopkResult,
} from "./topk.ts";
import { fmtShape, ShapeError } from "../errors.ts";

/** Options for {@link encodeKnnSqL2}; the defaults suit normal use. */
export interface KnnOptions {
  /**
   * Largest storage binding in bytes (default the adapter's); smaller values force blocking.
   * @default the adapter's
   */
  maxBindingBytes?: number;
  /**
   * Query rows per block (default 4,096).
   * @default 4,096
   */
  queryBlock?: number;
  /**
   * Base rows per block (default: what keeps a distance block near 16 MiB).
   * @default what keeps a distance block near 16 MiB
   */
  baseBlock?: number;
  /**
   * Force a distance kernel.
   * @default chosen per adapter and shape
   */
  kernel?: DistanceKernel;
  /** Called after each query block is encoded (convenience function: after it completed), with rows done. */
  onProgress?: (rowsDone: number) => void;
}

/** The block plan: query rows per block and base rows per block. */
function plan(
  gpu: Gpu,
  m: number,
  n: number,
  dim4: number,
  k: number,
  options: KnnOptions,
): { queryBlock: number; baseBlock: number } {
  const align = gpu.report.limits.minStorageBufferOffsetAlignment;
  const maxBytes = (options.maxBindingBytes ?? gpu.maxBindingBytes) - align;
  const rowStep = alignedRowStep(gpu, [4]); // keeps query blocks aligned for every buffer they touch
  let qb = Math.min(options.queryBlock ?? 4096, alignedRowBlock(gpu, [dim4 * 16], maxBytes, m));
  qb = Math.max(1, Math.min(qb, Math.floor(maxBytes / (k * 4))));
  if (qb < m) qb = Math.max(rowStep, qb - (qb % rowStep));
  const budget = Math.min(maxBytes, DISTANCE_BLOCK_BYTES);
  let nb = options.baseBlock ?? Math.max(128, Math.floor(budget / (Math.min(qb, m) * 4)));
  nb = Math.min(
    nb,
    n,
    alignedRowBlock(gpu, [dim4 * 16], maxBytes, n),
    Math.floor(maxBytes / (Math.min(qb, m) * 4)),
  );
  // Base blocks start at aligned offsets of the padded base and keep widths that allow vec4 paths.
  const baseStep = alignedRowStep(gpu, [dim4 * 16], 4);
  if (nb < n) nb -= nb % baseStep;
  if (nb < 1) throw new ShapeError(`knnSqL2: no base block fits a storage binding of ${maxBytes} bytes`);
  return { queryBlock: Math.min(qb, m), baseBlock: nb };
}

/** Most bytes of one block of distances (the plan's base block is sized to it). */
const DISTANCE_BLOCK_BYTES = 16 * 2 ** 20;

/** Per device, the one distance block buffer every kNN pass shares (see {@link distanceBlock}). */
const sharedBlocks = new WeakMap<GPUDevice, GpuBuffer<"f32">>();

/**
 * A buffer for `length` f32 distances. Blocks up to DISTANCE_BLOCK_BYTES share one buffer per device, made
 * once at that size and kept: a fresh 8-16 MiB buffer per block cost its zero-fill and page faults, on
 * llvmpipe about as much as the distances themselves (the FANNG build's 98 blocks: 9.9 s against 5.4 s).
 * Sharing is safe because a block's distances are written and then read only by its own selection pass,
 * and passes run in queue order. Larger blocks (a caller's `baseBlock`) get a buffer of their own.
 */
function distanceBlock(batch: CommandBatch, length: number): GpuBuffer<"f32"> {
  const gpu = batch.gpu;
  const bytes = Math.min(gpu.maxBindingBytes, DISTANCE_BLOCK_BYTES);
  if (length * 4 > bytes) return batch.scratch("f32", [length], "knn distance block");
  let shared = sharedBlocks.get(gpu.device);
  if (!shared) {
    shared = GpuBuffer.zeros(gpu, "f32", [bytes / 4], "knn distance block (shared)");
    sharedBlocks.set(gpu.device, shared);
  }
  return shared;
}

/** Encodes query rows [r0, r0 + nr) against the whole base into `out`. */
async function encodeQueryBlock(
  batch: CommandBatch,
  q: PreparedRows,
  b: PreparedRows,
  r0: number,
  nr: number,
  baseBlock: number,
  k: number,
  filter: FilterBindings,
  out: TopkResult,
  options: KnnOptions,
): Promise<void> {
  const n = b.rows;
  const scratch = distanceBlock(batch, nr * Math.min(baseBlock, n));
  const kernel = options.kernel ?? chooseDistanceKernel(batch.gpu, nr, Math.min(baseBlock, n));
  for (let c0 = 0; c0 < n; c0 += baseBlock) {
    const nc = Math.min(baseBlock, n - c0);
    const binding = scratch.binding(0, nr * nc);
    await encodeDistanceBlock(
      batch,
      q,
      b,
      { r0, nr, c0, nc, out: binding, outStride: nc, outCol: 0 },
      kernel,
    );
    // Rows are split into segments only while few queries would leave the adapter idle.
    const segments = chooseSegments(batch.gpu, nr, nc, k);
    await encodeSelectBlock(
      batch,
      { values: binding, valOff: 0, valStride: nc, nr, nc, r0, c0, merge: c0 > 0, segments },
      k,
      filter,
      out,
    );
  }
}

/**
 * Plans the query blocks of `q` against the whole of `b` and encodes each through `run`, which supplies the
 * batch (one shared batch, or one submitted per block); reports the rows done after each block.
 */
async function encodeQueryBlocks(
  q: PreparedRows,
  b: PreparedRows,
  k: number,
  filter: FilterBindings,
  out: TopkResult,
  options: KnnOptions,
  run: (encode: (batch: CommandBatch) => Promise<void>) => Promise<void>,
): Promise<void> {
  const m = q.rows;
  const { queryBlock, baseBlock } = plan(q.data.gpu, m, b.rows, q.dim4, k, options);
  for (let r0 = 0; r0 < m; r0 += queryBlock) {
    const nr = Math.min(queryBlock, m - r0);
    await run((batch) => encodeQueryBlock(batch, q, b, r0, nr, baseBlock, k, filter, out, options));
    options.onProgress?.(r0 + nr);
  }
}

/**
 * Checks the shapes and k, and (unless there are no queries) that the base is not empty; then binds the
 * filter and allocates the result lists.
 */
function beginKnn(queries: GpuBuffer<"f32">, base: GpuBuffer<"f32">, k: number, filter: TopkFilter) {
  checkPairShapes("knnSqL2", queries, base);
  checkK("knnSqL2", k);
  const m = queries.rows, n = base.rows;
  if (m > 0 && n === 0) {
    throw new ShapeError(
      `knnSqL2: base ${fmtShape(base.shape)} is empty (queries ${fmtShape(queries.shape)})`,
    );
  }
  return {
    m,
    n,
    fb: filterBindings(queries.gpu, "knnSqL2", filter, m, n),
    out: allocTopk(queries.gpu, m, k),
  };
}

/**
 * Encodes the k nearest base rows (squared L2) of every query: queries [M x D], base [N x D] -> [M x k]
 * lists (the caller owns them). Streams the base in blocks; memory is O(M k + block), never O(M N).
 */
export async function encodeKnnSqL2(
  batch: CommandBatch,
  queries: GpuBuffer<"f32">,
  base: GpuBuffer<"f32">,
  k: number,
  filter: TopkFilter = {},
  options: KnnOptions = {},
): Promise<TopkResult> {
  const { m, fb, out } = beginKnn(queries, base, k, filter);
  if (m === 0) return out;
  const q = await encodePrepareRows(batch, queries, options);
  const b = await encodePrepareRows(batch, base, options);
  await encodeQueryBlocks(q, b, k, fb, out, options, (encode) => encode(batch));
  return out;
}

/**
 * The k nearest base rows of every query under squared L2 (fused and streamed: the [M x N] matrix never
 * exists). Submits one query block at a time, so long runs can report progress through `options`.
 */
export async function knnSqL2(
  queries: GpuBuffer<"f32">,
  base: GpuBuffer<"f32">,
  k: number,
  filter: TopkFilter = {},
  options: KnnOptions = {},
): Promise<TopkResult> {
  const gpu = queries.gpu;
  const { m, fb, out } = beginKnn(queries, base, k, filter);
  if (m === 0) return out;
  // Prepare once and keep the prepared rows across the per-block submissions.
  const prep = new CommandBatch(gpu, "knnSqL2.prepare");
  using q = await encodePrepareRows(prep, queries, { ...options, keep: true });
  using b = await encodePrepareRows(prep, base, { ...options, keep: true });
  await prep.submit();
  await encodeQueryBlocks(q, b, k, fb, out, options, async (encode) => {
    const batch = new CommandBatch(gpu, "knnSqL2");
    await encode(batch);
    await batch.submit();
  });
  return out;
}

/** Plain-TS reference of {@link knnSqL2}: f64 distances rounded to f32, then the top-k rules. */
export function knnSqL2Ref(
  queries: HostMatrix,
  base: HostMatrix,
  k: number,
  filter: TopkFilterHost = {},
): TopkHostResult {
  checkK("knnSqL2Ref", k);
  if (queries.cols !== base.cols) {
    throw new ShapeError(
      `knnSqL2Ref: queries ${fmtShape([queries.rows, queries.cols])} and base ${
        fmtShape([base.rows, base.cols])
      } differ in dim`,
    );
  }
  const keep = filterPredicate(filter);
  const distances = new Float32Array(queries.rows * k);
  const indices = new Uint32Array(queries.rows * k);
  for (let i = 0; i < queries.rows; i++) {
    selectRowRef(
      base.rows,
      (j) => Math.fround(sqL2Ref(queries, i, base, j)),
      (j, v) => keep(i, j, v),
      k,
      distances,
      indices,
      i * k,
    );
  }
  return { indices, distances };
}
