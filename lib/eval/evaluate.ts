/**
 * One call for the test-set evaluation of an embedding: Recall@K and precision@1 (and, by default, MAP@R
 * and R-Precision) on the GPU, exact; NMI and AMI of a GPU k-means clustering with k = number of classes
 * against the labels. Two protocols: the set against itself (CUB, Cars, SOP) or queries against a separate
 * gallery (`gallery`, In-Shop), where the clustering is of the queries (as pytorch-metric-learning does).
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
import { Progress } from "../util/progress.ts";
import { asGpuMatrix, kmeans } from "./kmeans.ts";
import { ami, denseLabels, nmi } from "./nmi.ts";
import { checkRecallKs, type LabeledEmbeddings, retrievalMetrics } from "./retrieval.ts";

export type { LabeledEmbeddings } from "./retrieval.ts";

/** Options of {@link evaluateEmbeddings}. */
export interface EvalOptions {
  /**
   * Ks of Recall@K (default [1, 2, 4, 8]).
   * @default [1, 2, 4, 8]
   */
  recallKs?: number[];
  /**
   * Cluster with k-means and report NMI and AMI (default true).
   * @default true
   */
  nmi?: boolean;
  /**
   * Also MAP@R and R-Precision (default true; the costlier part, turn off for quick per-epoch checks).
   * @default true
   */
  mapAtR?: boolean;
  /**
   * Search the queries (`embeddings`) against this gallery instead of against themselves (In-Shop
   * protocol): no self-exclusion, R = the gallery samples of the query's label. NMI is of the queries.
   * @default none: the queries against themselves
   */
  gallery?: LabeledEmbeddings;
  /**
   * k-means restarts, best inertia kept (default 3).
   * @default 3
   */
  kmeansRestarts?: number;
  /**
   * k-means iterations at most (default 100).
   * @default 100
   */
  kmeansIters?: number;
  /**
   * Seed of the k-means seeding (default 0).
   * @default 0
   */
  seed?: number;
  /**
   * Query rows per block of the MAP@R path (default: what 64 MiB allows); tests force it small.
   * @default what 64 MiB allows
   */
  blockRows?: number;
  /**
   * Label of a progress bar (lib/util/progress.ts, on stderr) for each part that runs longer than
   * {@link PROGRESS_AFTER_MS}; none without. (The bar needs Deno; in a browser use `onProgress`.)
   * @default none: no bar
   */
  progress?: string;
  /** Called as the parts advance: (part, work done, total work). */
  onProgress?: (part: "retrieval" | "k-means", done: number, total: number) => void;
}

/** Metrics of one embedding of a labelled set. */
export interface EvalResult {
  /** Recall@K by K. */
  recall: Record<number, number>;
  /** Fraction of queries whose nearest neighbour shares their class. */
  precisionAt1: number;
  /** NMI (arithmetic mean normalisation) of the k-means clusters against the labels. */
  nmi?: number;
  /** AMI of the same clustering. */
  ami?: number;
  /** MAP@R, when asked for. */
  mapAtR?: number;
  /** R-Precision, when asked for. */
  rPrecision?: number;
  /** Queries without another sample of their label, left out of the retrieval metrics. */
  queriesExcluded: number;
  /** The k-means clusters the NMI was computed from. */
  clusters?: Int32Array;
  /** Wall time of each part, ms: retrieval metrics, k-means, NMI and AMI. */
  timings: { retrievalMs: number; kmeansMs: number; nmiMs: number };
}

/** A part that has run this long gets a progress bar. */
export const PROGRESS_AFTER_MS = 2000;

/** A progress callback that shows a bar once the part has run {@link PROGRESS_AFTER_MS}. */
function lateBar(
  label: string,
  unit: string,
): { tick: (done: number, total: number) => void; end: () => void } {
  const t0 = performance.now();
  let bar: Progress | undefined, shown = 0;
  return {
    tick(done, total) {
      if (!bar && performance.now() - t0 < PROGRESS_AFTER_MS) return;
      bar ??= new Progress(label, total, { unit });
      bar.tick(done - shown);
      shown = done;
    },
    end: () => bar?.done(),
  };
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
    const progress = (part: "retrieval" | "k-means", unit: string) => {
      const bar = options.progress ? lateBar(`${options.progress} ${part}`, unit) : undefined;
      return {
        tick: (done: number, total: number) => {
          bar?.tick(done, total);
          options.onProgress?.(part, done, total);
        },
        end: () => bar?.end(),
      };
    };
    const t0 = performance.now();
    const rp = progress("retrieval", "parts");
    const retrieval = await retrievalMetrics(x, labels, {
      recallKs,
      mapAtR: options.mapAtR ?? true,
      blockRows: options.blockRows,
      gallery: options.gallery,
      onProgress: rp.tick,
    });
    rp.end();
    const t1 = performance.now();
    const result: EvalResult = {
      recall: retrieval.recall,
      precisionAt1: retrieval.precisionAt1,
      queriesExcluded: retrieval.queriesExcluded,
      timings: { retrievalMs: t1 - t0, kmeansMs: 0, nmiMs: 0 },
    };
    if (retrieval.mapAtR !== undefined) {
      result.mapAtR = retrieval.mapAtR;
      result.rPrecision = retrieval.rPrecision;
    }
    if ((options.nmi ?? true) && x.rows > 0) {
      const k = denseLabels(labels).classes;
      const kp = progress("k-means", "iters");
      const clustering = await kmeans(x, k, {
        restarts: options.kmeansRestarts,
        maxIters: options.kmeansIters,
        seed: options.seed,
        onProgress: kp.tick,
      });
      kp.end();
      const t2 = performance.now();
      result.clusters = clustering.assignments;
      result.nmi = nmi(labels, clustering.assignments);
      result.ami = ami(labels, clustering.assignments);
      result.timings.kmeansMs = t2 - t1;
      result.timings.nmiMs = performance.now() - t2;
    }
    return result;
  } finally {
    if (owned) x.destroy();
  }
}
