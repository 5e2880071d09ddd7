/**
 * The k-means algorithm shared by the GPU implementation ({@link kmeans}, kernels/kmeans.wgsl) and its
 * plain-TS reference ({@link kmeansRef}); both follow these rules step by step, in the same f32 order:
 *
 * - Seeding, k-means++ in rounds: restart r's first centre is a uniformly drawn point; then rounds of
 *   `count` new centres each (1 while k <= {@link SEED_ROUNDS} + 1, so plain k-means++; more for larger k,
 *   so seeding takes at most about SEED_ROUNDS rounds however large k is). A round draws its centres from
 *   the D^2 distribution of the current nearest-centre distances by stratified sampling: slot s takes the
 *   point whose running sum of distances (blocks of {@link SUM_BLOCK} points, each summed in order, then a
 *   prefix over blocks, all f32) first exceeds total * (s + u_s) / count, u_s a seeded uniform draw (a
 *   uniformly drawn point when the total is 0). Picked points get distance 0; then every distance becomes
 *   the nearer of itself and the new centres.
 * - Lloyd iterations: update (each centroid the f32 mean of its members summed in index order; an empty
 *   cluster keeps its centroid), assignment (nearest centroid by `(||x||^2 + ||c||^2) - 2 x.c`, ties to the
 *   smaller cluster), inertia (the f32 block sums above). A restart is done when no point moved, or when its
 *   inertia fell by at most tol * inertia (f32) and no empty cluster was refilled just before; all restarts
 *   stop together, or after maxIters assignments. Otherwise clusters left empty take the farthest points
 *   ({@link relocateEmpty}) before the next update.
 * - The restart with the lowest inertia (float64 sum of its f32 distances) wins.
 * @module
 */
import { UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { Rng } from "../util/rng.ts";

/** Options of {@link kmeans} / {@link kmeansRef}. */
export interface KMeansOptions {
  /**
   * Independent seedings; the one with the lowest inertia wins (default 3).
   * @default 3
   */
  restarts?: number;
  /**
   * Lloyd iterations at most per restart (default 100).
   * @default 100
   */
  maxIters?: number;
  /**
   * Stop once every restart's inertia fell by at most `tol` times itself in the last iteration, or no
   * point changed cluster (default 1e-4; 0 = only the latter).
   * @default 1e-4
   */
  tol?: number;
  /**
   * Seed of the seeding draws (default 0).
   * @default 0
   */
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
  /** Final inertia of each restart. */
  inertias: number[];
  /** Assignment passes run (all restarts advance together). */
  iterations: number;
  /** True when the iterations stopped before maxIters (no point moved, or the inertia settled within tol). */
  converged: boolean;
  /** Points moved into empty clusters (all restarts). */
  refills: number;
}

/** Nearest-centroid assignment of every point for every restart: [R x N] each. */
export interface Assignment {
  /** [n] cluster of each point. */
  assign: Uint32Array;
  /** [n] squared distance to its centroid. */
  dist: Float32Array;
}

/** Points grouped by cluster for every restart (counting-sort layout). */
export interface Grouping {
  /** [R x N] point indices grouped by cluster, ascending within a cluster. */
  order: Uint32Array;
  /** [R x (k + 1)] start of each cluster's group in `order` (relative to the restart's row). */
  offsets: Uint32Array;
}

/** Seeding takes about this many rounds at most. */
export const SEED_ROUNDS = 64;
/** Points per block of the f32 sums (sampling weights, inertia). */
export const SUM_BLOCK = 256;

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

/** The seeding rounds after the first centre: [first slot, count] each. */
export function seedRounds(k: number): [number, number][] {
  const per = Math.max(1, Math.ceil((k - 1) / SEED_ROUNDS));
  const rounds: [number, number][] = [];
  for (let first = 1; first < k; first += per) rounds.push([first, Math.min(per, k - first)]);
  return rounds;
}

/** The seeded draws: each restart's first centre and a uniform f32 in [0, 1] per later slot ([R x k]). */
export function seedDraws(seed: number, restarts: number, n: number, k: number) {
  const root = new Rng(seed);
  const first = new Uint32Array(restarts);
  const uniforms = new Float32Array(restarts * k);
  for (let r = 0; r < restarts; r++) {
    const rng = root.fork();
    first[r] = rng.int(n);
    for (let s = 1; s < k; s++) uniforms[r * k + s] = rng.float();
  }
  return { first, uniforms };
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

/** Counting sort of each restart's assignment into groups (stable: ascending index within a cluster). */
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

/** Float64 inertia of each restart and the best one (lowest; the first of equals). */
export function bestRestart(
  dist: Float32Array,
  n: number,
  restarts: number,
): { best: number; inertias: number[] } {
  const inertias = Array.from({ length: restarts }, (_, r) => {
    let sum = 0;
    for (let i = r * n; i < (r + 1) * n; i++) sum += dist[i];
    return sum;
  });
  let best = 0;
  inertias.forEach((v, r) => v < inertias[best] && (best = r));
  return { best, inertias };
}
