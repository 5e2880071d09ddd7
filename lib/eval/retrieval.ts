/**
 * Retrieval metrics on the GPU: Recall@K for any K, precision@1, R-Precision and MAP@R (Musgrave et al.,
 * "A Metric Learning Reality Check", 2020, as pytorch-metric-learning's AccuracyCalculator), exact (no cap
 * on k). Two protocols: one set searched against itself (each query excludes itself; CUB, Cars, SOP) and
 * queries searched against a separate gallery (`gallery`; In-Shop), where R = the gallery samples of the
 * query's label.
 *
 * Recall@K and precision@1 need only each query's first positive rank, which is the number of
 * other-label gallery samples nearer than its nearest positive: kernels/eval_tiles.wgsl finds the nearest
 * positive of every query in distance tiles over its own class (queries and gallery grouped by label), then
 * counts, in tiles over all pairs, the negatives before it, without storing any distance (one set against
 * itself computes each pair once, for both of its points). This runs at the speed of the distance tiles.
 *
 * MAP@R and R-Precision need every positive's rank among each query's R nearest (R = its positives). When
 * every R and K is small (<= {@link KNN_MAX_K}: Stanford Online Products, In-Shop) they are read off each
 * query's k nearest from the fused kNN op (lib/ops/knn.ts, k = largest R or K). Otherwise (classes of
 * hundreds) query rows are processed in blocks; each block's squared distances to the gallery
 * (lib/ops/distance.ts) go into one bounded [block x N] buffer, and kernels/retrieval.wgsl turns them into
 * exact ranks of the same-label samples. Memory stays O(N k + block) and no N x N matrix ever exists. The
 * blocked path also computes Recall@K when the data exceed one storage binding.
 *
 * Distances are `max(||q||^2 + ||b||^2 - 2 q.b, 0)` in f32 (both paths compute the same value for a pair).
 * Ties: samples are ordered by (distance, index). Queries whose label has no (other) gallery sample are
 * excluded from every metric here and counted in `queriesExcluded`. The averages are float64 sums in query
 * order, term by term as the plain-TS reference ({@link retrievalMetricsRef}), so both agree exactly on
 * equal distances.
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
import { alignedRowBlock, alignedRowStep, GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { RETRIEVAL } from "../gpu/specs/retrieval.ts";
import { checkShape, fmtShape, UserError } from "../errors.ts";
import { encodeDistanceBlock, encodePrepareRows } from "../ops/distance.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { asGpuMatrix } from "./kmeans.ts";
import { denseLabels } from "./nmi.ts";
import type { RetrievalMetrics } from "./retrieval_ref.ts";
import { knnSqL2 } from "../ops/knn.ts";
import { classTileRanges, countWorkgroups, encodeCountBefore, encodeNearest } from "./tiles.ts";

export type { RetrievalMetrics } from "./retrieval_ref.ts";

/** Embeddings (on the GPU or host) with one label per row. */
export interface LabeledEmbeddings {
  /** [N x D] embeddings. */
  embeddings: GpuBuffer<"f32"> | HostMatrix;
  /** [N] class labels. */
  labels: Int32Array;
}

/** Options of {@link retrievalMetrics}. */
export interface RetrievalOptions {
  /**
   * Ks of Recall@K (default [1, 2, 4, 8]); any positive integers.
   * @default [1, 2, 4, 8]
   */
  recallKs?: number[];
  /**
   * Also compute MAP@R and R-Precision (needs every positive's rank; default true).
   * @default true
   */
  mapAtR?: boolean;
  /**
   * Search the queries against this gallery instead of against themselves (In-Shop protocol): no query
   * excludes anything, R = the gallery samples of the query's label.
   * @default none: the queries against themselves
   */
  gallery?: LabeledEmbeddings;
  /**
   * Bytes of the per-block buffers of the MAP@R path (distances and binned samples; default 64 MiB).
   * @default 64 MiB
   */
  blockBytes?: number;
  /**
   * Query rows per block of the MAP@R path (default: as many as `blockBytes` allows); tests force it.
   * @default as many as `blockBytes` allows
   */
  blockRows?: number;
  /**
   * Distance bins of the MAP@R rank kernel (default 1024); tests use few to crowd the bins.
   * @default 1024
   */
  bins?: number;
  /**
   * Take the blocked path for Recall@K too (it is taken anyway when the data exceed one storage binding);
   * tests compare both.
   * @default false
   */
  blocked?: boolean;
  /** Called with (work done, total work) as the computation advances (for a progress bar). */
  onProgress?: (done: number, total: number) => void;
}

/** Per-query results of the GPU rank kernels (for the metrics, tests and custom metrics). */
export interface QueryRanks {
  /** Rank of each query's nearest positive; 0xFFFFFFFF for a lone query (or past the depth). */
  firstRank: Uint32Array;
  /** Number of positives of each query (R). */
  positives: Uint32Array;
  /** With all ranks: per query, sum over its positives ranked < R of (their count so far) / (rank + 1). */
  apSum?: Float64Array;
  /** With all ranks: per query, how many positives rank < R. */
  foundInR?: Uint32Array;
  /**
   * With `keepRanks`: each query's positives' ranks, ascending, in rows of `ranksWidth` (query q's R ranks
   * at q * ranksWidth ..); ranks past the query's max(R, minDepth) nearest samples read 0xFFFFFFFF.
   * O(queries * largest class) memory: for tests and small sets.
   */
  positiveRanks?: Uint32Array;
  /** Ranks kept per query. */
  ranksWidth: number;
}

const NONE = 0xffffffff;
const DEFAULT_BLOCK_BYTES = 64 * 2 ** 20;
/** MAP@R reads ranks off kNN lists while every R and K is at most this (the top-k kernel's cost grows with k). */
export const KNN_MAX_K = 64;

/**
 * Queries and gallery grouped by dense label (ids over both sets): the CSR layout the kernels read.
 * `single`: the queries are the gallery.
 */
interface LabelGroups {
  single: boolean;
  /** Dense label of each query / gallery sample (the same array when single). */
  queryIds: Uint32Array;
  galleryIds: Uint32Array;
  /** Gallery indices grouped by label, ascending within a label; label l at classStart[l]..classStart[l+1]. */
  members: Uint32Array;
  classStart: Uint32Array;
  /** Positives of each query (R). */
  positives: Uint32Array;
  maxPositives: number;
}

function groupLabels(queryLabels: Int32Array, galleryLabels?: Int32Array): LabelGroups {
  const single = galleryLabels === undefined;
  const all = single ? queryLabels : Int32Array.from([...queryLabels, ...galleryLabels]);
  const { ids: dense, classes } = denseLabels(all);
  const nq = queryLabels.length;
  const queryIds = Uint32Array.from(dense.subarray(0, nq));
  const galleryIds = single ? queryIds : Uint32Array.from(dense.subarray(nq));
  const classStart = new Uint32Array(classes + 1);
  for (const l of galleryIds) classStart[l + 1]++;
  for (let l = 0; l < classes; l++) classStart[l + 1] += classStart[l];
  const next = classStart.slice(0, classes);
  const members = new Uint32Array(galleryIds.length);
  galleryIds.forEach((l, i) => (members[next[l]++] = i));
  const positives = new Uint32Array(nq);
  let maxPositives = 0;
  queryIds.forEach((l, q) => {
    positives[q] = classStart[l + 1] - classStart[l] - (single ? 1 : 0);
    maxPositives = Math.max(maxPositives, positives[q]);
  });
  return { single, queryIds, galleryIds, members, classStart, positives, maxPositives };
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

/** What {@link queryRanks} computes and how it blocks the work. */
export interface QueryRanksOptions
  extends Pick<RetrievalOptions, "blockBytes" | "blockRows" | "bins" | "gallery" | "blocked" | "onProgress"> {
  /**
   * Rank every positive within the query's nearest max(R, minDepth) samples (for MAP@R and R-Precision;
   * the others read 0xFFFFFFFF). False: only each query's first rank (enough for Recall@K and P@1).
   */
  allRanks: boolean;
  /**
   * With `allRanks`: the largest K of Recall@K, so first ranks below it are exact even when R < K.
   * @default 1
   */
  minDepth?: number;
  /**
   * With `allRanks`: also return every positive's rank (`positiveRanks`).
   * @default false
   */
  keepRanks?: boolean;
}

/** GPU ranks of every query's positives (see {@link QueryRanks}). */
export async function queryRanks(
  embeddings: GpuBuffer<"f32"> | HostMatrix,
  labels: Int32Array,
  opts: QueryRanksOptions,
): Promise<QueryRanks> {
  const { buffer: q, owned } = await asGpuMatrix(embeddings);
  try {
    checkShape(
      labels.length === q.rows,
      `retrieval metrics: labels [${labels.length}] do not match embeddings ${fmtShape(q.shape)}`,
    );
    const g = opts.gallery ? await asGpuMatrix(opts.gallery.embeddings, q.gpu) : undefined;
    try {
      if (g) {
        checkShape(
          opts.gallery!.labels.length === g.buffer.rows,
          `retrieval metrics: gallery labels [${opts.gallery!.labels.length}] do not match gallery ` +
            `embeddings ${fmtShape(g.buffer.shape)}`,
        );
        checkShape(
          g.buffer.cols === q.cols,
          `retrieval metrics: queries ${fmtShape(q.shape)} and gallery ${fmtShape(g.buffer.shape)} differ ` +
            `in dim`,
        );
      }
      const groups = groupLabels(labels, opts.gallery?.labels);
      const gallery = g?.buffer ?? q;
      if (!opts.blocked) {
        if (!opts.allRanks && fitsOneBinding(q) && fitsOneBinding(gallery)) {
          return await firstRanksFused(q, gallery, groups, opts);
        }
        const k = Math.max(groups.maxPositives, opts.minDepth ?? 1);
        if (opts.allRanks && k <= KNN_MAX_K) return await ranksFromKnn(q, gallery, groups, k, opts);
      }
      return await ranksBlocked(q, gallery, groups, opts);
    } finally {
      if (g?.owned) g.buffer.destroy();
    }
  } finally {
    if (owned) q.destroy();
  }
}

/** Whether the prepared (vec4-padded) rows of `x` fit one storage binding (the fused kernels bind them whole). */
function fitsOneBinding(x: GpuBuffer<"f32">): boolean {
  return x.rows * Math.ceil(x.cols / 4) * 16 <= x.gpu.maxBindingBytes;
}

/** Pairs of the count pass per submission when it reports progress (about 2^27: a few seconds on a CPU). */
const PAIRS_PER_PART = 2 ** 27;

/**
 * First positive ranks by the fused tiles: the nearest positive of every query (tiles over its class), then
 * the other-label gallery samples before it (tiles over all pairs, each pair once for one set).
 */
async function firstRanksFused(
  q: GpuBuffer<"f32">,
  g: GpuBuffer<"f32">,
  groups: LabelGroups,
  opts: QueryRanksOptions,
): Promise<QueryRanks> {
  const gpu = q.gpu;
  const nq = q.rows, ng = g.rows;
  const firstRank = new Uint32Array(nq).fill(NONE);
  const result: QueryRanks = { firstRank, positives: groups.positives, ranksWidth: 1 };
  if (nq === 0 || groups.maxPositives === 0) return result;
  // Queries grouped by label; each tile of queries searches the gallery members of its labels.
  const order = Uint32Array.from(groups.queryIds.keys()).sort((a, b) =>
    groups.queryIds[a] - groups.queryIds[b] || a - b
  );
  const { ranges, maxSpan } = classTileRanges(order, groups.queryIds, groups.classStart);
  using ids = GpuBuffer.fromArray(gpu, Uint32Array.from([...order, ...groups.members, ...ranges]));
  using labels = GpuBuffer.fromArray(
    gpu,
    groups.single ? groups.queryIds : Uint32Array.from([...groups.queryIds, ...groups.galleryIds]),
  );
  using thresh = GpuBuffer.zeros(gpu, "u32", [nq, 2], "nearest positives");
  using counts = GpuBuffer.zeros(gpu, "u32", [nq], "first ranks");
  const batch = new CommandBatch(gpu, "first ranks");
  using qp = await encodePrepareRows(batch, q, { keep: true });
  using gpOwned = groups.single ? undefined : await encodePrepareRows(batch, g, { keep: true });
  const gp = gpOwned ?? qp;
  await encodeNearest(batch, {
    a: qp,
    rows: nq,
    rowList: true,
    b: gp,
    cols: { ranges: { offset: nq + ng, maxSpan }, list: { offset: nq } },
    ids,
    labels: { buffer: labels, colOffset: groups.single ? 0 : nq },
    self: groups.single,
    out: thresh,
    outStride: nq,
  });
  // The count over all pairs, in parts when it is long enough to report progress.
  const spec = {
    a: qp,
    rows: nq,
    b: gp,
    cols: ng,
    symmetric: groups.single,
    labels,
    colLabelOffset: groups.single ? 0 : nq,
    thresh,
    counts,
  };
  const total = countWorkgroups(gpu, nq, ng, groups.single);
  const pairs = groups.single ? nq * nq / 2 : nq * ng;
  const parts = opts.onProgress ? Math.max(1, Math.min(64, Math.round(pairs / PAIRS_PER_PART))) : 1;
  let current = batch;
  for (let p = 0; p < parts; p++) {
    await encodeCountBefore(
      current,
      spec,
      Math.floor((total * p) / parts),
      Math.floor((total * (p + 1)) / parts),
    );
    await current.submit();
    opts.onProgress?.(p + 1, parts);
    current = new CommandBatch(gpu, "first ranks");
  }
  const got = await counts.read();
  groups.positives.forEach((r, i) => (firstRank[i] = r ? got[i] : NONE));
  return result;
}

/**
 * All ranks read off each query's k nearest (lib/ops/knn.ts; k >= every R and the largest K): a positive's
 * rank is its place in the list; positives past the list rank >= k and read 0xFFFFFFFF.
 */
async function ranksFromKnn(
  q: GpuBuffer<"f32">,
  g: GpuBuffer<"f32">,
  groups: LabelGroups,
  k: number,
  opts: QueryRanksOptions,
): Promise<QueryRanks> {
  const nq = q.rows;
  const width = Math.max(1, groups.maxPositives);
  const firstRank = new Uint32Array(nq).fill(NONE);
  const apSum = new Float64Array(nq), foundInR = new Uint32Array(nq);
  const positiveRanks = opts.keepRanks ? new Uint32Array(nq * width).fill(NONE) : undefined;
  const result: QueryRanks = { firstRank, positives: groups.positives, ranksWidth: width, apSum, foundInR };
  if (positiveRanks) result.positiveRanks = positiveRanks;
  if (nq === 0 || g.rows === 0) return result;
  using nn = await knnSqL2(q, g, Math.min(k, g.rows), { excludeSelf: groups.single }, {
    onProgress: (rows) => opts.onProgress?.(rows, nq),
  });
  const lists = await nn.indices.read();
  const kk = nn.k;
  for (let qi = 0; qi < nq; qi++) {
    const r = groups.positives[qi], label = groups.queryIds[qi];
    if (r === 0) continue;
    // Average precision terms in list order, as the reference adds them.
    let found = 0, ap = 0, inR = 0;
    for (let t = 0; t < kk; t++) {
      const j = lists[qi * kk + t];
      if (j === NONE || groups.galleryIds[j] !== label) continue;
      if (found === 0) firstRank[qi] = t;
      if (positiveRanks) positiveRanks[qi * width + found] = t;
      found++;
      if (t < r) {
        inR++;
        ap += inR / (t + 1);
      }
    }
    apSum[qi] = ap;
    foundInR[qi] = inR;
  }
  return result;
}

/** Ranks from blocks of stored distance rows and kernels/retrieval.wgsl (any size; all ranks for MAP@R). */
async function ranksBlocked(
  q: GpuBuffer<"f32">,
  g: GpuBuffer<"f32">,
  groups: LabelGroups,
  opts: QueryRanksOptions,
): Promise<QueryRanks> {
  const withAllRanks = opts.allRanks;
  const gpu = q.gpu, nq = q.rows, n = g.rows;
  const firstRank = new Uint32Array(nq);
  const width = Math.max(1, groups.maxPositives);
  const result: QueryRanks = { firstRank, positives: groups.positives, ranksWidth: width };
  if (withAllRanks) {
    result.apSum = new Float64Array(nq);
    result.foundInR = new Uint32Array(nq);
    if (opts.keepRanks) result.positiveRanks = new Uint32Array(nq * width);
  }
  if (nq === 0) return result;
  if (n === 0) {
    firstRank.fill(NONE);
    return result;
  }

  const maxBinding = gpu.maxBindingBytes;
  const align = gpu.report.limits.minStorageBufferOffsetAlignment;
  const prepBatch = new CommandBatch(gpu, "retrieval prep");
  using qp = await encodePrepareRows(prepBatch, q, { keep: true });
  using gpOwned = groups.single ? undefined : await encodePrepareRows(prepBatch, g, { keep: true });
  const gp = gpOwned ?? qp;
  await prepBatch.submit();
  const rowBytes = qp.dim4 * 16;
  // Query blocks start at aligned offsets of the prepared rows; the distance block must fit one binding.
  const step = alignedRowStep(gpu, [rowBytes]);
  const budget = Math.min(opts.blockBytes ?? DEFAULT_BLOCK_BYTES, maxBinding);
  // Per query row: its distances (rows padded to a multiple of 4 floats, read as vec4) and, for all
  // ranks, its list of binned samples.
  const stride = Math.ceil(n / 4) * 4;
  const bytesPerQuery = (stride + (withAllRanks ? n : 0)) * 4;
  let blockRows = Math.min(opts.blockRows ?? Math.floor(budget / bytesPerQuery), nq);
  blockRows = Math.max(step, blockRows - (blockRows % step));
  if (blockRows * stride * 4 > maxBinding || blockRows * width * 4 > maxBinding) {
    throw new UserError(
      `retrieval metrics: ${n} gallery samples need ${
        blockRows * stride * 4
      } bytes per block of ${blockRows} queries, over this adapter's storage binding limit (${maxBinding} B); ` +
        `evaluate on fewer samples`,
    );
  }
  const colBlock = alignedRowBlock(gpu, [gp.dim4 * 16], maxBinding - align, n);
  const { WG, BINS } = kernelDefines(gpu, opts.bins);
  const defines = { WG, BINS };
  const allRanksPipe = withAllRanks ? await RETRIEVAL.pipeline(gpu, "positive_ranks", defines) : undefined;
  const firstRankPipe = withAllRanks ? undefined : await RETRIEVAL.pipeline(gpu, "first_rank", defines);

  using dist = GpuBuffer.zeros(gpu, "f32", [blockRows, stride], "retrieval distances");
  using out = GpuBuffer.zeros(gpu, "u32", [blockRows, withAllRanks ? width : 1], "retrieval ranks");
  // Gallery labels, then the queries' (one array when single).
  using ids = GpuBuffer.fromArray(
    gpu,
    groups.single ? groups.galleryIds : Uint32Array.from([...groups.galleryIds, ...groups.queryIds]),
  );
  using members = GpuBuffer.fromArray(gpu, groups.members);
  using classStart = GpuBuffer.fromArray(gpu, groups.classStart);
  using list = GpuBuffer.zeros(gpu, "u32", withAllRanks ? [blockRows, n] : [1], "retrieval bins");

  for (let r0 = 0; r0 < nq; r0 += blockRows) {
    const nr = Math.min(blockRows, nq - r0);
    const batch = new CommandBatch(gpu, "retrieval block");
    for (let c0 = 0; c0 < n; c0 += colBlock) {
      const nc = Math.min(colBlock, n - c0);
      await encodeDistanceBlock(batch, qp, gp, {
        r0,
        nr,
        c0,
        nc,
        out: dist.binding(0, nr * stride),
        outStride: stride,
        outCol: c0,
      });
    }
    const params = {
      n,
      block_start: r0,
      block_rows: nr,
      stride,
      qlabel_off: groups.single ? 0 : n,
      single: groups.single ? 1 : 0,
    };
    const common = { labels: ids, members, class_start: classStart, out };
    if (allRanksPipe) {
      batch.run(
        allRanksPipe,
        {
          params: { ...params, out_width: width, min_depth: opts.minDepth ?? 1 },
          dist4: dist.binding(0, nr * stride),
          list,
          ...common,
        },
        grid1d(gpu, nr),
        "positiveRanks",
      );
    } else {
      batch.run(
        firstRankPipe!,
        { params, dist: dist.binding(0, nr * stride), ...common },
        grid1d(gpu, nr),
        "firstRank",
      );
    }
    const done = batch.submit();
    const got = await out.read(0, nr * (withAllRanks ? width : 1));
    await done;
    if (withAllRanks) {
      result.positiveRanks?.set(got, r0 * width);
      for (let qi = r0; qi < r0 + nr; qi++) {
        const r = groups.positives[qi];
        const own = got.subarray((qi - r0) * width, (qi - r0) * width + r);
        firstRank[qi] = r ? own[0] : NONE;
        // Average precision terms in list order, as the reference adds them.
        let found = 0, ap = 0;
        for (let j = 0; j < r && own[j] < r; j++) {
          found++;
          ap += found / (own[j] + 1);
        }
        result.apSum![qi] = ap;
        result.foundInR![qi] = found;
      }
    } else {
      firstRank.set(got, r0);
    }
    opts.onProgress?.(r0 + nr, nq);
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
 * Recall@K, precision@1 and, unless `mapAtR` is false, R-Precision and MAP@R of `embeddings` (the
 * queries) with `labels`, on the GPU, exact; against themselves or against `opts.gallery`.
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
