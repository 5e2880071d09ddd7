/**
 * The host side of k-means, shared by the GPU implementation ({@link kmeans}) and its plain-TS reference
 * ({@link kmeansRef}): k-means++ seeding by D^2 sampling, Lloyd iterations until no point changes cluster
 * or the inertia settles (relative decrease within tol, as scikit-learn stops on a tolerance),
 * empty-cluster relocation, and the choice of the restart with the lowest inertia. The arithmetic over all
 * points (distances, assignment, means) is delegated to a {@link LloydSteps} backend; restarts run side by
 * side so each step is one batch over all of them.
 * @module
 */
import { UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { Rng } from "../util/rng.ts";

/** Options of {@link kmeans} / {@link kmeansRef}. */
export interface KMeansOptions {
  /** Independent k-means++ seedings; the one with the lowest inertia wins (default 3). */
  restarts?: number;
  /** Lloyd iterations at most per restart (default 100). */
  maxIters?: number;
  /**
   * Stop once every restart's inertia fell by at most `tol` times itself in the last iteration, or no
   * point changed cluster (default 1e-4; 0 = only the latter).
   */
  tol?: number;
  /** Seed of the k-means++ sampling (default 0). */
  seed?: number;
}

/** Outcome of k-means: the best restart's clustering. */
export interface KMeansResult {
  /** Cluster of each point, 0..k-1. */
  assignments: Int32Array;
  /** [k x dim] centroids the assignments were made against. */
  centroids: HostMatrix;
  /** Sum of squared distances from each point to its centroid (float64 sum of float32 distances). */
  inertia: number;
  /** Which restart won, and every restart's inertia. */
  restart: number;
  inertias: number[];
  /** Assignment passes run (all restarts advance together). */
  iterations: number;
  /** True when the iterations stopped before maxIters (no point moved, or the inertia settled within tol). */
  converged: boolean;
}

/** Nearest-centroid assignment of every point for every restart: [R x N] each. */
export interface Assignment {
  assign: Uint32Array;
  dist: Float32Array;
}

/** Points grouped by cluster for every restart (counting-sort layout, see kernels/kmeans.wgsl). */
export interface Grouping {
  /** [R x N] point indices grouped by cluster, ascending within a cluster. */
  order: Uint32Array;
  /** [R x (k + 1)] start of each cluster's group in `order` (relative to the restart's row). */
  offsets: Uint32Array;
}

/** The per-point arithmetic of k-means, batched over restarts. */
export interface LloydSteps {
  /**
   * Makes data row `rows[r]` centroid `step` of restart r and returns, per restart, each point's squared
   * distance to its nearest centroid among 0..step ([R x N]).
   */
  seed(step: number, rows: Uint32Array): Promise<Float32Array>;
  /** Optionally replaces every centroid by the mean of its group, then assigns every point. */
  assign(update?: Grouping): Promise<Assignment>;
  /** The centroids of restart `r` as a [k x dim] matrix. */
  centroids(r: number): Promise<HostMatrix>;
}

/** Checks k against the number of points and fills in the defaults. */
export function kmeansSettings(n: number, k: number, opts: KMeansOptions): Required<KMeansOptions> {
  const tol = opts.tol ?? 1e-4;
  if (!(tol >= 0)) throw new UserError(`k-means tol must be >= 0, got ${tol}`);
  if (!Number.isInteger(k) || k < 1 || k > n) {
    throw new UserError(`k-means needs 1 <= k <= points; got k = ${k} for ${n} points: choose a k in range`);
  }
  const restarts = opts.restarts ?? 3, maxIters = opts.maxIters ?? 100;
  if (!Number.isInteger(restarts) || restarts < 1) {
    throw new UserError(`k-means restarts must be a positive integer, got ${restarts}`);
  }
  if (!Number.isInteger(maxIters) || maxIters < 1) {
    throw new UserError(`k-means maxIters must be a positive integer, got ${maxIters}`);
  }
  return { restarts, maxIters, seed: opts.seed ?? 0, tol };
}

/** Picks a row with probability proportional to its squared distance (k-means++), uniformly if all are 0. */
function sampleD2(rng: Rng, dist: Float32Array): number {
  let total = 0;
  for (const d of dist) total += d;
  if (!(total > 0)) return rng.int(dist.length);
  const u = rng.float() * total;
  let cum = 0, lastPositive = 0;
  for (let j = 0; j < dist.length; j++) {
    if (dist[j] > 0) {
      cum += dist[j];
      lastPositive = j;
      if (cum > u) return j;
    }
  }
  return lastPositive; // rounding left u just past the sum
}

/**
 * Gives every empty cluster of one restart a point: the farthest points from their centroids (ties by
 * index), each taken from a cluster that keeps at least one member. Returns the number of points moved.
 */
export function relocateEmpty(assign: Uint32Array, dist: Float32Array, k: number): number {
  const counts = new Uint32Array(k);
  for (const c of assign) counts[c]++;
  const empty: number[] = [];
  counts.forEach((c, i) => c === 0 && empty.push(i));
  if (!empty.length) return 0;
  const byDist = Array.from(assign.keys()).sort((a, b) => dist[b] - dist[a] || a - b);
  let moved = 0;
  for (const p of byDist) {
    if (moved === empty.length || !(dist[p] > 0)) break;
    if (counts[assign[p]] < 2) continue;
    counts[assign[p]]--;
    assign[p] = empty[moved++];
  }
  return moved;
}

/** Counting sort of each restart's assignment into groups. */
export function groupByCluster(assign: Uint32Array, n: number, k: number, restarts: number): Grouping {
  const order = new Uint32Array(restarts * n);
  const offsets = new Uint32Array(restarts * (k + 1));
  for (let r = 0; r < restarts; r++) {
    const a = assign.subarray(r * n, (r + 1) * n);
    const off = offsets.subarray(r * (k + 1), (r + 1) * (k + 1));
    for (const c of a) off[c + 1]++;
    for (let c = 0; c < k; c++) off[c + 1] += off[c];
    const next = off.slice(0, k);
    for (let p = 0; p < n; p++) order[r * n + next[a[p]]++] = p;
  }
  return { order, offsets };
}

/** Runs seeded, restarted Lloyd k-means over `n` points with the given per-point backend. */
export async function runLloyd(
  steps: LloydSteps,
  n: number,
  k: number,
  opts: KMeansOptions = {},
): Promise<KMeansResult> {
  const { restarts, maxIters, seed, tol } = kmeansSettings(n, k, opts);
  const root = new Rng(seed);
  const rngs = Array.from({ length: restarts }, () => root.fork());
  // k-means++ seeding, all restarts at once.
  const rows = new Uint32Array(restarts);
  rngs.forEach((rng, r) => (rows[r] = rng.int(n)));
  let minDist = await steps.seed(0, rows);
  for (let s = 1; s < k; s++) {
    rngs.forEach((rng, r) => (rows[r] = sampleD2(rng, minDist.subarray(r * n, (r + 1) * n))));
    minDist = await steps.seed(s, rows);
  }
  // Lloyd iterations. A restart is done when no point moved, or when its inertia fell by at most
  // tol * inertia since the previous pass (and no empty cluster was refilled then); all stop together.
  const inertiaOf = (a: Assignment, r: number) => {
    let sum = 0;
    for (const d of a.dist.subarray(r * n, (r + 1) * n)) sum += d;
    return sum;
  };
  let prev: Uint32Array | undefined;
  let grouping: Grouping | undefined;
  let current: Assignment;
  let inertias = new Array<number>(restarts).fill(Infinity);
  const relocated = new Array<boolean>(restarts).fill(false);
  let iterations = 0;
  let converged = false;
  for (;;) {
    current = await steps.assign(grouping);
    iterations++;
    const now = inertias.map((_, r) => inertiaOf(current, r));
    let done = true;
    for (let r = 0; r < restarts && done; r++) {
      let moved = prev === undefined;
      for (let i = r * n; i < (r + 1) * n && !moved; i++) moved = prev![i] !== current.assign[i];
      const settled = !relocated[r] && inertias[r] - now[r] <= tol * now[r];
      done = !moved || settled;
    }
    inertias = now;
    if (done) {
      converged = true;
      break;
    }
    if (iterations >= maxIters) break;
    prev = current.assign.slice();
    for (let r = 0; r < restarts; r++) {
      const a = prev.subarray(r * n, (r + 1) * n);
      relocated[r] = relocateEmpty(a, current.dist.subarray(r * n, (r + 1) * n), k) > 0;
    }
    grouping = groupByCluster(prev, n, k, restarts);
  }
  let best = 0;
  inertias.forEach((v, r) => v < inertias[best] && (best = r));
  return {
    assignments: Int32Array.from(current.assign.subarray(best * n, (best + 1) * n)),
    centroids: await steps.centroids(best),
    inertia: inertias[best],
    restart: best,
    inertias,
    iterations,
    converged,
  };
}
