/**
 * Retrieval metrics on the GPU: Recall@K for any K, precision@1, R-Precision and MAP@R (Musgrave et al.,
 * "A Metric Learning Reality Check", 2020, as pytorch-metric-learning's AccuracyCalculator), exact (no cap
 * on k), with the test set as both queries and references (each query excludes itself).
 *
 * Streaming: query rows are processed in blocks; each block's squared distances to all samples
 * (lib/ops/distance.ts, `max(||q||^2 + ||b||^2 - 2 q.b, 0)` in f32) go into one bounded [block x N]
 * buffer, and kernels/retrieval.wgsl turns them into exact ranks of the same-label samples; each block's
 * ranks are folded into per-query sums on the host, so memory stays O(N + block) and no N x N matrix ever
 * exists.
 *
 * Ties: samples are ordered by (distance, index). Queries whose label has no other sample are excluded from
 * every metric here and counted in `queriesExcluded`. The averages are float64 sums in query order, term by
 * term as the plain-TS reference ({@link retrievalMetricsRef}), so both agree exactly on equal distances.
 *
 * @example
 * ```ts
 * import { retrievalMetrics } from "./retrieval.ts";
 * const embeddings = { rows: 4, cols: 1, data: new Float32Array([0, 0.1, 5, 5.2]) };
 * const m = await retrievalMetrics(embeddings, new Int32Array([0, 0, 1, 1]), { recallKs: [1] });
 * console.log(m.recall[1], m.mapAtR); // 1 1
 * ```
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { checkShape, fmtShape, UserError } from "../errors.ts";
import { alignedRowBlock, encodeDistanceBlock, encodePrepareRows } from "../ops/distance.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { asGpuMatrix } from "./kmeans.ts";
import { denseLabels } from "./nmi.ts";
import type { RetrievalMetrics } from "./retrieval_ref.ts";

export type { RetrievalMetrics } from "./retrieval_ref.ts";

/** Options of {@link retrievalMetrics}. */
export interface RetrievalOptions {
  /** Ks of Recall@K (default [1, 2, 4, 8]); any positive integers. */
  recallKs?: number[];
  /** Also compute MAP@R and R-Precision (needs every positive's rank; default true). */
  mapAtR?: boolean;
  /** Bytes of the per-block buffers (distances, and binned samples for MAP@R; default 64 MiB). */
  blockBytes?: number;
  /** Query rows per block (default: as many as `blockBytes` allows); tests force small blocks. */
  blockRows?: number;
  /** Distance bins of the MAP@R rank kernel (default 1024); tests use few to crowd the bins. */
  bins?: number;
}

/** Per-query results of the GPU rank kernels (for the metrics, tests and custom metrics). */
export interface QueryRanks {
  /** Rank of each query's nearest same-label sample; 0xFFFFFFFF for a lone query (or past the depth). */
  firstRank: Uint32Array;
  /** Number of other samples with the query's label (R). */
  positives: Uint32Array;
  /** With all ranks: per query, sum over its positives ranked < R of (their count so far) / (rank + 1). */
  apSum?: Float64Array;
  /** With all ranks: per query, how many positives rank < R. */
  foundInR?: Uint32Array;
  /**
   * With `keepRanks`: each query's positives' ranks, ascending, in rows of `ranksWidth` (query q's R ranks
   * at q * ranksWidth ..); ranks past the query's max(R, minDepth) nearest samples read 0xFFFFFFFF.
   * O(N * largest class) memory: for tests and small sets.
   */
  positiveRanks?: Uint32Array;
  ranksWidth: number;
}

const NONE = 0xffffffff;
const DEFAULT_BLOCK_BYTES = 64 * 2 ** 20;

/** Samples grouped by dense label id: the CSR layout kernels/retrieval.wgsl reads. */
interface LabelGroups {
  ids: Uint32Array;
  members: Uint32Array;
  classStart: Uint32Array;
  positives: Uint32Array;
  maxPositives: number;
}

function groupLabels(labels: Int32Array): LabelGroups {
  const { ids: dense, classes } = denseLabels(labels);
  const n = labels.length;
  const ids = Uint32Array.from(dense);
  const classStart = new Uint32Array(classes + 1);
  for (const l of ids) classStart[l + 1]++;
  let maxPositives = 0;
  for (let l = 0; l < classes; l++) {
    maxPositives = Math.max(maxPositives, classStart[l + 1] - 1);
    classStart[l + 1] += classStart[l];
  }
  const next = classStart.slice(0, classes);
  const members = new Uint32Array(n), positives = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const l = ids[i];
    members[next[l]++] = i;
    positives[i] = classStart[l + 1] - classStart[l] - 1;
  }
  return { ids, members, classStart, positives, maxPositives };
}

/** Workgroup size and histogram bins for this adapter. */
function kernelDefines(gpu: Gpu, binsOverride?: number): { WG: number; BINS: number } {
  const wg = gpu.report.isSoftware ? 64 : 256;
  // positive_ranks' workgroup memory: four reduction arrays (16 bytes per invocation), two histograms
  // (8 bytes per bin) and a few scalars.
  const limit = gpu.report.limits.maxComputeWorkgroupStorageSize;
  let bins = binsOverride ?? 1024;
  if (!Number.isInteger(bins) || bins < 1) {
    throw new UserError(`bins must be a positive integer, got ${bins}`);
  }
  while (bins > 64 && 16 * wg + 8 * bins + 48 > limit) bins = Math.floor(bins / 2);
  return { WG: wg, BINS: bins };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** What {@link queryRanks} computes and how it blocks the work. */
export interface QueryRanksOptions extends Pick<RetrievalOptions, "blockBytes" | "blockRows" | "bins"> {
  /**
   * Rank every positive within the query's nearest max(R, minDepth) samples (for MAP@R and R-Precision;
   * the others read 0xFFFFFFFF). False: only each query's first rank (enough for Recall@K and P@1).
   */
  allRanks: boolean;
  /** With `allRanks`: the largest K of Recall@K, so first ranks below it are exact even when R < K. */
  minDepth?: number;
  /** With `allRanks`: also return every positive's rank (`positiveRanks`). */
  keepRanks?: boolean;
}

/** GPU ranks of every query's same-label samples (see {@link QueryRanks}), streamed in query blocks. */
export async function queryRanks(
  embeddings: GpuBuffer<"f32"> | HostMatrix,
  labels: Int32Array,
  opts: QueryRanksOptions,
): Promise<QueryRanks> {
  const { buffer: x, owned } = await asGpuMatrix(embeddings);
  try {
    return await ranksOnGpu(x, labels, opts);
  } finally {
    if (owned) x.destroy();
  }
}

async function ranksOnGpu(
  x: GpuBuffer<"f32">,
  labels: Int32Array,
  opts: QueryRanksOptions,
): Promise<QueryRanks> {
  const withAllRanks = opts.allRanks;
  const gpu = x.gpu, n = x.rows;
  checkShape(
    labels.length === n,
    `retrieval metrics: labels [${labels.length}] do not match embeddings ${fmtShape(x.shape)}`,
  );
  const groups = groupLabels(labels);
  const firstRank = new Uint32Array(n);
  const width = Math.max(1, groups.maxPositives);
  const result: QueryRanks = { firstRank, positives: groups.positives, ranksWidth: width };
  if (withAllRanks) {
    result.apSum = new Float64Array(n);
    result.foundInR = new Uint32Array(n);
    if (opts.keepRanks) result.positiveRanks = new Uint32Array(n * width);
  }
  if (n === 0) return result;

  const maxBinding = gpu.maxBindingBytes;
  const align = gpu.report.limits.minStorageBufferOffsetAlignment;
  const prepBatch = new CommandBatch(gpu, "retrieval prep");
  using prep = await encodePrepareRows(prepBatch, x, { keep: true });
  await prepBatch.submit();
  const rowBytes = prep.dim4 * 16;
  // Query blocks start at aligned offsets of the prepared rows; the distance block must fit one binding.
  const step = align / gcd(align, rowBytes);
  const budget = Math.min(opts.blockBytes ?? DEFAULT_BLOCK_BYTES, maxBinding);
  // Per query row: its distances (rows padded to a multiple of 4 floats, read as vec4) and, for all
  // ranks, its list of binned samples.
  const stride = Math.ceil(n / 4) * 4;
  const bytesPerQuery = (stride + (withAllRanks ? n : 0)) * 4;
  let blockRows = Math.min(opts.blockRows ?? Math.floor(budget / bytesPerQuery), n);
  blockRows = Math.max(step, blockRows - (blockRows % step));
  if (blockRows * stride * 4 > maxBinding || blockRows * width * 4 > maxBinding) {
    throw new UserError(
      `retrieval metrics: ${n} samples need ${
        blockRows * stride * 4
      } bytes per block of ${blockRows} queries, ` +
        `over this adapter's storage binding limit (${maxBinding} B); evaluate on fewer samples`,
    );
  }
  const colBlock = alignedRowBlock(gpu, [rowBytes], maxBinding - align, n);
  const { WG, BINS } = kernelDefines(gpu, opts.bins);
  const pipe = await gpu.pipelines.get("retrieval", withAllRanks ? "positive_ranks" : "first_rank", {
    WG,
    BINS,
  });

  using dist = GpuBuffer.zeros(gpu, "f32", [blockRows, stride], "retrieval distances");
  using out = GpuBuffer.zeros(gpu, "u32", [blockRows, withAllRanks ? width : 1], "retrieval ranks");
  using ids = GpuBuffer.fromArray(gpu, groups.ids);
  using members = GpuBuffer.fromArray(gpu, groups.members);
  using classStart = GpuBuffer.fromArray(gpu, groups.classStart);
  using list = GpuBuffer.zeros(gpu, "u32", withAllRanks ? [blockRows, n] : [1], "retrieval bins");

  for (let r0 = 0; r0 < n; r0 += blockRows) {
    const nr = Math.min(blockRows, n - r0);
    const batch = new CommandBatch(gpu, "retrieval block");
    for (let c0 = 0; c0 < n; c0 += colBlock) {
      const nc = Math.min(colBlock, n - c0);
      await encodeDistanceBlock(batch, prep, prep, {
        r0,
        nr,
        c0,
        nc,
        out: dist.binding(0, nr * stride),
        outStride: stride,
        outCol: c0,
      });
    }
    const params = batch.uniform([n, r0, nr, stride, width, opts.minDepth ?? 1]);
    batch.dispatch(
      pipe,
      [params, dist.binding(0, nr * stride), ids, members, classStart, out, ...(withAllRanks ? [list] : [])],
      grid1d(gpu, nr),
      withAllRanks ? "positiveRanks" : "firstRank",
    );
    const done = batch.submit();
    const got = await out.read(0, nr * (withAllRanks ? width : 1));
    await done;
    if (withAllRanks) {
      result.positiveRanks?.set(got, r0 * width);
      for (let q = r0; q < r0 + nr; q++) {
        const r = groups.positives[q];
        const own = got.subarray((q - r0) * width, (q - r0) * width + r);
        firstRank[q] = r ? own[0] : NONE;
        // Average precision terms in list order, as the reference adds them.
        let found = 0, ap = 0;
        for (let j = 0; j < r && own[j] < r; j++) {
          found++;
          ap += found / (own[j] + 1);
        }
        result.apSum![q] = ap;
        result.foundInR![q] = found;
      }
    } else {
      firstRank.set(got, r0);
    }
  }
  return result;
}

/** Recall@K, precision@1 and (from all ranks) R-Precision and MAP@R, summed as the reference does. */
export function metricsFromRanks(ranks: QueryRanks, recallKs: number[]): RetrievalMetrics {
  const n = ranks.firstRank.length;
  const hits = new Float64Array(recallKs.length);
  let used = 0, p1 = 0, rPrec = 0, mapR = 0;
  for (let q = 0; q < n; q++) {
    const r = ranks.positives[q];
    if (r === 0) continue;
    used++;
    const first = ranks.firstRank[q];
    recallKs.forEach((k, i) => first < k && hits[i]++);
    if (first === 0) p1++;
    if (ranks.apSum && ranks.foundInR) {
      rPrec += ranks.foundInR[q] / r;
      mapR += ranks.apSum[q] / r;
    }
  }
  const avg = (v: number) => (used ? v / used : 0);
  const recall: Record<number, number> = {};
  recallKs.forEach((k, i) => (recall[k] = avg(hits[i])));
  return {
    recall,
    precisionAt1: avg(p1),
    ...(ranks.apSum ? { rPrecision: avg(rPrec), mapAtR: avg(mapR) } : {}),
    queriesExcluded: n - used,
    queriesUsed: used,
  };
}

/** Checks a list of Recall@K Ks. */
export function checkRecallKs(ks: number[]): number[] {
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new UserError(`Recall@K needs positive integer Ks, got ${k}`);
  }
  return ks;
}

/**
 * Recall@K, precision@1 and, unless `mapAtR` is false, R-Precision and MAP@R of `embeddings` with
 * `labels`, on the GPU, exact and streamed in query blocks.
 */
export async function retrievalMetrics(
  embeddings: GpuBuffer<"f32"> | HostMatrix,
  labels: Int32Array,
  opts: RetrievalOptions = {},
): Promise<RetrievalMetrics> {
  const ks = checkRecallKs(opts.recallKs ?? [1, 2, 4, 8]);
  const ranks = await queryRanks(embeddings, labels, {
    ...opts,
    allRanks: opts.mapAtR ?? true,
    minDepth: Math.max(1, ...ks),
  });
  return metricsFromRanks(ranks, ks);
}
