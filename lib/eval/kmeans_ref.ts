/**
 * Plain-TS reference of GPU k-means ({@link kmeans}): the algorithm of ./lloyd.ts step by step, with the
 * f32 sums, draws and tie rules of kernels/kmeans.wgsl. Distances use the kernels' expansion
 * `(||x||^2 + ||c||^2) - 2 x.c` (here in float64, rounded to f32 once), so GPU and reference agree exactly
 * on data whose distances are exact in f32 (small integers) and up to rounding elsewhere.
 * @module
 */
import type { HostMatrix } from "../util/matrix.ts";
import {
  type Assignment,
  bestRestart,
  groupByCluster,
  type KMeansOptions,
  type KMeansResult,
  kmeansSettings,
  relocateEmpty,
  seedDraws,
  seedRounds,
  SUM_BLOCK,
} from "./lloyd.ts";

const f = Math.fround;

/** `(||x||^2 + ||c||^2) - 2 x.c` of data row i and centroid row c, clamped at 0, in f32. */
function expandedDist(data: HostMatrix, i: number, cents: Float32Array, c: number): number {
  const dim = data.cols;
  let xn = 0, cn = 0, dot = 0;
  for (let d = 0; d < dim; d++) {
    const x = data.data[i * dim + d], y = cents[c * dim + d];
    xn += x * x;
    cn += y * y;
    dot += x * y;
  }
  return f(Math.max(xn + cn - 2 * dot, 0));
}

/**
 * Nearest centroid (ties: smaller cluster index) of every point for every restart. `centroids` is
 * [restarts * k x dim], restart r's clusters at rows r*k..r*k+k-1.
 */
export function kmeansAssignRef(data: HostMatrix, centroids: HostMatrix, k: number): Assignment {
  const n = data.rows, restarts = centroids.rows / k;
  const assign = new Uint32Array(restarts * n), dist = new Float32Array(restarts * n);
  for (let r = 0; r < restarts; r++) {
    for (let p = 0; p < n; p++) {
      let best = 0, bestD = Infinity;
      for (let c = 0; c < k; c++) {
        const d = expandedDist(data, p, centroids.data, r * k + c);
        if (d < bestD) [bestD, best] = [d, c];
      }
      assign[r * n + p] = best;
      dist[r * n + p] = bestD;
    }
  }
  return { assign, dist };
}

/** Exclusive f32 prefix over the f32 block sums of one restart's distances, and the total. */
export function blockPrefixRef(dist: Float32Array): { prefix: Float32Array; total: number } {
  const nb = Math.ceil(dist.length / SUM_BLOCK);
  const prefix = new Float32Array(nb);
  let c = 0;
  for (let b = 0; b < nb; b++) {
    let s = 0;
    for (let i = b * SUM_BLOCK; i < Math.min(dist.length, (b + 1) * SUM_BLOCK); i++) s = f(s + dist[i]);
    prefix[b] = c;
    c = f(c + s);
  }
  return { prefix, total: c };
}

/** The stratified D^2 draw of slot `s` of a round of `count` (kernels/kmeans.wgsl seed_pick). */
export function seedPickRef(dist: Float32Array, s: number, count: number, u: number): number {
  const n = dist.length;
  const { prefix, total } = blockPrefixRef(dist);
  if (!(total > 0)) return Math.min(n - 1, Math.floor(f(u * n)));
  const target = f(total * f(f(s + u) / count));
  let lo = 0, hi = prefix.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (prefix[mid] <= target) lo = mid;
    else hi = mid;
  }
  let c = prefix[lo], last = -1;
  for (let i = lo * SUM_BLOCK; i < Math.min(n, (lo + 1) * SUM_BLOCK); i++) {
    if (dist[i] > 0) {
      c = f(c + dist[i]);
      last = i;
      if (c > target) return i;
    }
  }
  return last >= 0 ? last : lo * SUM_BLOCK;
}

/** Plain-TS k-means with the same signature and algorithm as {@link kmeans}. */
export function kmeansRef(data: HostMatrix, k: number, opts: KMeansOptions = {}): Promise<KMeansResult> {
  const n = data.rows, dim = data.cols;
  const { restarts, maxIters, seed, tol } = kmeansSettings(n, k, opts);
  const tolF = f(tol);
  const cents = new Float32Array(restarts * k * dim);
  const assign = new Uint32Array(restarts * n), dist = new Float32Array(restarts * n);
  // Seeding.
  const { first, uniforms } = seedDraws(seed, restarts, n, k);
  const addCentres = (r: number, from: number, count: number, picked: number[]) => {
    picked.forEach((pt, s) => {
      cents.set(data.data.subarray(pt * dim, (pt + 1) * dim), (r * k + from + s) * dim);
      dist[r * n + pt] = 0;
    });
    for (let i = 0; i < n; i++) {
      for (let c = from; c < from + count; c++) {
        const d = expandedDist(data, i, cents, r * k + c);
        const o = r * n + i;
        if (d < dist[o] || (d === dist[o] && c < assign[o])) [dist[o], assign[o]] = [d, c];
      }
    }
  };
  for (let r = 0; r < restarts; r++) {
    dist.fill(Infinity, r * n, (r + 1) * n);
    assign.fill(0xffffffff, r * n, (r + 1) * n);
    addCentres(r, 0, 1, [first[r]]);
    for (const [from, count] of seedRounds(k)) {
      const own = dist.subarray(r * n, (r + 1) * n);
      const picked = Array.from(
        { length: count },
        (_, s) => seedPickRef(own, s, count, uniforms[r * k + from + s]),
      );
      addCentres(r, from, count, picked);
    }
  }
  // Lloyd iterations.
  const prev = new Uint32Array(restarts * n);
  const prevInertia = new Float32Array(restarts);
  const relocated = new Array<boolean>(restarts).fill(false);
  let iterations = 0, converged = false, refills = 0;
  for (;;) {
    if (iterations > 0) {
      const g = groupByCluster(prev, n, k, restarts);
      for (let r = 0; r < restarts; r++) {
        for (let c = 0; c < k; c++) {
          const lo = g.offsets[r * (k + 1) + c], hi = g.offsets[r * (k + 1) + c + 1];
          if (hi === lo) continue;
          for (let d = 0; d < dim; d++) {
            let s = 0;
            for (let m = lo; m < hi; m++) s = f(s + data.data[g.order[r * n + m] * dim + d]);
            cents[(r * k + c) * dim + d] = f(s / (hi - lo));
          }
        }
      }
    }
    const a = kmeansAssignRef(data, { rows: restarts * k, cols: dim, data: cents }, k);
    assign.set(a.assign);
    dist.set(a.dist);
    iterations++;
    let done = true, empty = 0;
    for (let r = 0; r < restarts; r++) {
      const now = blockPrefixRef(dist.subarray(r * n, (r + 1) * n)).total;
      let moved = iterations === 1;
      const counts = new Uint32Array(k);
      for (let i = r * n; i < (r + 1) * n; i++) {
        if (assign[i] !== prev[i]) moved = true;
        counts[assign[i]]++;
      }
      empty += counts.filter((c) => c === 0).length;
      const settled = !relocated[r] && iterations > 1 && f(prevInertia[r] - now) <= f(tolF * now);
      done &&= !moved || settled;
      relocated[r] = false;
      prevInertia[r] = now;
    }
    prev.set(assign);
    if (done) {
      converged = true;
      break;
    }
    if (iterations >= maxIters) break;
    if (empty) {
      for (let r = 0; r < restarts; r++) {
        const own = prev.subarray(r * n, (r + 1) * n);
        const moved = relocateEmpty(own, dist.subarray(r * n, (r + 1) * n), k);
        refills += moved;
        relocated[r] = moved > 0;
      }
    }
  }
  const { best, inertias } = bestRestart(dist, n, restarts);
  return Promise.resolve({
    assignments: Int32Array.from(assign.subarray(best * n, (best + 1) * n)),
    centroids: { rows: k, cols: dim, data: cents.slice(best * k * dim, (best + 1) * k * dim) },
    inertia: inertias[best],
    restart: best,
    inertias,
    iterations,
    converged,
    refills,
  });
}
