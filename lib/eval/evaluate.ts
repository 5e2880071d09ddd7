/**
 * One call for the test-set evaluation of an embedding: Recall@K and precision@1 (and, by default, MAP@R
 * and R-Precision) on the GPU, streamed in query blocks; NMI and AMI of a GPU k-means clustering with
 * k = number of classes against the labels.
 *
 * @example
 * ```ts
 * import { evaluateEmbeddings } from "./evaluate.ts";
 * const emb = { rows: 4, cols: 2, data: new Float32Array([0, 0, 0, 0.1, 3, 3, 3, 3.2]) };
 * const r = await evaluateEmbeddings(emb, new Int32Array([7, 7, 9, 9]));
 * console.log(r.recall[1], r.nmi, r.mapAtR); // 1 1 1
 * ```
 * @module
 */
import type { GpuBuffer } from "../gpu/buffer.ts";
import { checkShape, fmtShape } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { asGpuMatrix, kmeans } from "./kmeans.ts";
import { ami, denseLabels, nmi } from "./nmi.ts";
import { checkRecallKs, retrievalMetrics } from "./retrieval.ts";

/** Options of {@link evaluateEmbeddings}. */
export interface EvalOptions {
  /** Ks of Recall@K (default [1, 2, 4, 8]). */
  recallKs?: number[];
  /** Cluster with k-means and report NMI and AMI (default true). */
  nmi?: boolean;
  /** Also MAP@R and R-Precision (default true; the costlier part, turn off for quick per-epoch checks). */
  mapAtR?: boolean;
  /** k-means restarts, best inertia kept (default 3). */
  kmeansRestarts?: number;
  /** k-means iterations at most (default 100). */
  kmeansIters?: number;
  /** Seed of the k-means++ seeding (default 0). */
  seed?: number;
  /** Query rows per block of the retrieval metrics (default: what 64 MiB allows); tests force it small. */
  blockRows?: number;
}

/** Metrics of one embedding of a labelled set. */
export interface EvalResult {
  /** Recall@K by K. */
  recall: Record<number, number>;
  precisionAt1: number;
  /** NMI (arithmetic mean normalisation) of the k-means clusters against the labels. */
  nmi?: number;
  /** AMI of the same clustering. */
  ami?: number;
  mapAtR?: number;
  rPrecision?: number;
  /** Queries without another sample of their label, left out of the retrieval metrics. */
  queriesExcluded: number;
  /** The k-means clusters the NMI was computed from. */
  clusters?: Int32Array;
  /** Wall time of each part, ms. */
  timings: { retrievalMs: number; kmeansMs: number };
}

/** Evaluates `embeddings` [N x dim] (on the GPU or host) with `labels` [N]. */
export async function evaluateEmbeddings(
  embeddings: GpuBuffer<"f32"> | HostMatrix,
  labels: Int32Array,
  options: EvalOptions = {},
): Promise<EvalResult> {
  const { buffer: x, owned } = await asGpuMatrix(embeddings);
  try {
    checkShape(
      labels.length === x.rows,
      `evaluateEmbeddings: labels [${labels.length}] do not match embeddings ${fmtShape(x.shape)}`,
    );
    const recallKs = checkRecallKs(options.recallKs ?? [1, 2, 4, 8]);
    const t0 = performance.now();
    const retrieval = await retrievalMetrics(x, labels, {
      recallKs,
      mapAtR: options.mapAtR ?? true,
      blockRows: options.blockRows,
    });
    const t1 = performance.now();
    const result: EvalResult = {
      recall: retrieval.recall,
      precisionAt1: retrieval.precisionAt1,
      queriesExcluded: retrieval.queriesExcluded,
      timings: { retrievalMs: t1 - t0, kmeansMs: 0 },
    };
    if (retrieval.mapAtR !== undefined) {
      result.mapAtR = retrieval.mapAtR;
      result.rPrecision = retrieval.rPrecision;
    }
    if ((options.nmi ?? true) && x.rows > 0) {
      const k = denseLabels(labels).classes;
      const clustering = await kmeans(x, k, {
        restarts: options.kmeansRestarts,
        maxIters: options.kmeansIters,
        seed: options.seed,
      });
      result.clusters = clustering.assignments;
      result.nmi = nmi(labels, clustering.assignments);
      result.ami = ami(labels, clustering.assignments);
      result.timings.kmeansMs = performance.now() - t1;
    }
    return result;
  } finally {
    if (owned) x.destroy();
  }
}
