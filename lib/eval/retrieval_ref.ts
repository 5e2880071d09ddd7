/**
 * Plain-TS reference of the retrieval metrics (the test oracle for {@link retrievalMetrics}): for every
 * query, all other samples (or, with a gallery, all gallery samples) sorted by (squared L2 distance,
 * index), then Recall@K, precision@1, R-Precision and MAP@R read off that list, exactly as defined in "A
 * Metric Learning Reality Check" (Musgrave et al. 2020) and pytorch-metric-learning's AccuracyCalculator.
 * O(N^2 log N): small sets only.
 *
 * Queries whose label has no other member (no gallery member) are excluded from every retrieval metric and
 * counted.
 * @module
 */
import { ShapeError } from "../errors.ts";
import { type HostMatrix, sqL2Rows } from "../util/matrix.ts";

/** Retrieval metrics, each averaged over the queries that have at least one other sample of their label. */
export interface RetrievalMetrics {
  /** Recall@K per K: fraction of queries with a same-label sample among their K nearest other samples. */
  recall: Record<number, number>;
  /** Fraction of queries whose nearest other sample has their label. */
  precisionAt1: number;
  /** Mean over queries of (same-label samples among the R nearest) / R, R = other samples of the label. */
  rPrecision?: number;
  /** Mean over queries of (1/R) sum_{i<=R} P(i) rel(i). */
  mapAtR?: number;
  /** Queries left out because no other sample shares their label. */
  queriesExcluded: number;
  /** Queries averaged over. */
  queriesUsed: number;
}

/** Options of {@link retrievalMetricsRef}. */
export interface RetrievalRefOptions {
  /**
   * Which Recall@K to report (default 1, 2, 4, 8).
   * @default 1, 2, 4, 8
   */
  recallKs?: number[];
  /**
   * Search the queries against this gallery (no self-exclusion) instead of against themselves.
   * @default none: the queries against themselves
   */
  gallery?: { embeddings: HostMatrix; labels: Int32Array };
  /**
   * Squared distances from query `q` to every gallery sample. Default: squared L2 in float64 from the
   * float32 embeddings. Pass the GPU's distances to compare orderings on identical inputs.
   * @default squared L2 in float64 from the float32 embeddings
   */
  distanceRow?: (q: number) => ArrayLike<number>;
}

/** Squared L2 distances in float64 from row `q` of `m` to every row of `base` (default `m`). */
export function sqL2RowRef(m: HostMatrix, q: number, base: HostMatrix = m): Float64Array {
  const out = new Float64Array(base.rows);
  for (let j = 0; j < base.rows; j++) out[j] = sqL2Rows(m, q, base, j);
  return out;
}

/**
 * Reference retrieval metrics over all queries: against the queries themselves (each query excludes itself)
 * or, with `gallery`, against the gallery.
 */
export function retrievalMetricsRef(
  embeddings: HostMatrix,
  labels: Int32Array,
  { recallKs = [1, 2, 4, 8], distanceRow, gallery }: RetrievalRefOptions = {},
): RetrievalMetrics {
  const n = embeddings.rows;
  if (labels.length !== n) {
    throw new ShapeError(`labels [${labels.length}] do not match embeddings [${n} x ${embeddings.cols}]`);
  }
  const base = gallery?.embeddings ?? embeddings, baseLabels = gallery?.labels ?? labels;
  if (baseLabels.length !== base.rows) {
    throw new ShapeError(`gallery labels [${baseLabels.length}] do not match [${base.rows} x ${base.cols}]`);
  }
  const self = gallery === undefined;
  const rowOf = distanceRow ?? ((q: number) => sqL2RowRef(embeddings, q, base));
  const classSize = new Map<number, number>();
  for (const l of baseLabels) classSize.set(l, (classSize.get(l) ?? 0) + 1);
  const hits = new Float64Array(recallKs.length);
  let p1 = 0, rPrec = 0, mapR = 0, used = 0;
  const listed = self ? Math.max(0, n - 1) : base.rows;
  const order = new Uint32Array(listed);
  for (let q = 0; q < n; q++) {
    const r = (classSize.get(labels[q]) ?? 0) - (self ? 1 : 0);
    if (r === 0) continue;
    used++;
    const dist = rowOf(q);
    let m = 0;
    for (let j = 0; j < base.rows; j++) if (!self || j !== q) order[m++] = j;
    order.sort((x, y) => dist[x] - dist[y] || x - y);
    const rel = (i: number) => baseLabels[order[i]] === labels[q];
    recallKs.forEach((k, ki) => {
      for (let i = 0; i < Math.min(k, listed); i++) {
        if (rel(i)) {
          hits[ki]++;
          break;
        }
      }
    });
    if (rel(0)) p1++;
    let found = 0, ap = 0;
    for (let i = 0; i < r; i++) {
      if (rel(i)) {
        found++;
        ap += found / (i + 1);
      }
    }
    rPrec += found / r;
    mapR += ap / r;
  }
  const avg = (x: number) => (used ? x / used : 0);
  const recall: Record<number, number> = {};
  recallKs.forEach((k, ki) => (recall[k] = avg(hits[ki])));
  return {
    recall,
    precisionAt1: avg(p1),
    rPrecision: avg(rPrec),
    mapAtR: avg(mapR),
    queriesExcluded: n - used,
    queriesUsed: used,
  };
}
