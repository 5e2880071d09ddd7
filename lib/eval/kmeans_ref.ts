/**
 * Plain-TS reference of GPU k-means ({@link kmeans}): the same seeding, iterations and tie rules with the
 * per-point steps of kernels/kmeans.wgsl done on the host in float32 arithmetic, in the same order.
 * @module
 */
import type { HostMatrix } from "../util/matrix.ts";
import { type Assignment, type Grouping, type KMeansOptions, type KMeansResult, runLloyd } from "./lloyd.ts";

const f = Math.fround;

/**
 * Squared distance in float32 summed as kernels/kmeans.wgsl does: four partial sums over the dims
 * d = 0, 1, 2, 3 (mod 4), each in dim order, then ((s0 + s1) + s2) + s3.
 */
export function sqDistF32(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  const s = [0, 0, 0, 0];
  for (let d = 0; d < dim; d++) {
    const diff = f(a[ao + d] - b[bo + d]);
    s[d & 3] = f(s[d & 3] + f(diff * diff));
  }
  return f(f(f(s[0] + s[1]) + s[2]) + s[3]);
}

/**
 * Nearest centroid (ties: smaller cluster index) of every point for every restart. `centroids` is
 * [restarts * k x dim], restart r's clusters at rows r*k..r*k+k-1.
 */
export function kmeansAssignRef(data: HostMatrix, centroids: HostMatrix, k: number): Assignment {
  const n = data.rows, dim = data.cols, restarts = centroids.rows / k;
  const assign = new Uint32Array(restarts * n), dist = new Float32Array(restarts * n);
  for (let r = 0; r < restarts; r++) {
    for (let p = 0; p < n; p++) {
      let best = 0, bestD = Infinity;
      for (let c = 0; c < k; c++) {
        const d = sqDistF32(data.data, p * dim, centroids.data, (r * k + c) * dim, dim);
        if (c === 0 || d < bestD) {
          bestD = d;
          best = c;
        }
      }
      assign[r * n + p] = best;
      dist[r * n + p] = bestD;
    }
  }
  return { assign, dist };
}

/** Means of each group in float32 (summed in group order), written into `centroids`; empty groups unchanged. */
export function kmeansUpdateRef(data: HostMatrix, centroids: Float32Array, k: number, g: Grouping): void {
  const n = data.rows, dim = data.cols, restarts = centroids.length / (k * dim);
  for (let r = 0; r < restarts; r++) {
    for (let c = 0; c < k; c++) {
      const lo = g.offsets[r * (k + 1) + c], hi = g.offsets[r * (k + 1) + c + 1];
      if (hi === lo) continue;
      for (let d = 0; d < dim; d++) {
        let s = 0;
        for (let m = lo; m < hi; m++) s = f(s + data.data[g.order[r * n + m] * dim + d]);
        centroids[(r * k + c) * dim + d] = f(s / (hi - lo));
      }
    }
  }
}

/** Plain-TS k-means with the same signature and algorithm as {@link kmeans}. */
export function kmeansRef(data: HostMatrix, k: number, opts: KMeansOptions = {}): Promise<KMeansResult> {
  const n = data.rows, dim = data.cols, restarts = opts.restarts ?? 3;
  const cents = new Float32Array(restarts * k * dim);
  const minDist = new Float32Array(restarts * n);
  return runLloyd(
    {
      seed(step, rows) {
        for (let r = 0; r < restarts; r++) {
          const co = (r * k + step) * dim;
          cents.set(data.data.subarray(rows[r] * dim, (rows[r] + 1) * dim), co);
          for (let p = 0; p < n; p++) {
            const d = sqDistF32(data.data, p * dim, cents, co, dim);
            minDist[r * n + p] = step === 0 ? d : Math.min(minDist[r * n + p], d);
          }
        }
        return Promise.resolve(minDist);
      },
      assign(update) {
        if (update) kmeansUpdateRef(data, cents, k, update);
        return Promise.resolve(kmeansAssignRef(data, { rows: restarts * k, cols: dim, data: cents }, k));
      },
      centroids(r) {
        return Promise.resolve({ rows: k, cols: dim, data: cents.slice(r * k * dim, (r + 1) * k * dim) });
      },
    },
    n,
    k,
    opts,
  );
}
