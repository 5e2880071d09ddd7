/**
 * Barnes-Hut t-SNE (van der Maaten 2014) to 2-D, seeded and deterministic: exact k nearest neighbours
 * (k = 3 * perplexity), per-point Gaussian bandwidths by binary search on the perplexity, the symmetrised
 * sparse P, then gradient descent with momentum, per-coordinate gains and early exaggeration, with the
 * repulsive forces from a quadtree (lib/eval/quadtree.ts).
 *
 * {@link tsne} runs on the host (it finds neighbours by brute force unless given them);
 * {@link tsneGpu} finds them on the GPU with knnSqL2 first.
 *
 * @example
 * ```ts
 * import { tsne } from "./tsne.ts";
 * const data = { rows: 3, cols: 2, data: new Float32Array([0, 0, 1, 0, 5, 5]) };
 * const y = tsne(data, { perplexity: 1, iterations: 100, quiet: true }); // [3 x 2]
 * ```
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { UserError } from "../errors.ts";
import { knnSqL2 } from "../ops/knn.ts";
import { type HostMatrix, sqL2Rows } from "../util/matrix.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { asGpuMatrix } from "./kmeans.ts";
import { QuadTree, repulsiveForces } from "./quadtree.ts";

/** Options of {@link tsne}. */
export interface TsneOptions {
  /**
   * Effective number of neighbours (default 30; at most (N - 1) / 3 is used).
   * @default 30
   */
  perplexity?: number;
  /**
   * Gradient steps (default 750: 250 exaggerated, then 500).
   * @default 750
   */
  iterations?: number;
  /**
   * Barnes-Hut accuracy: cells with width / distance below theta are summarised (default 0.5; 0 = exact).
   * @default 0.5
   */
  theta?: number;
  /**
   * Seed of the initial layout (default 0).
   * @default 0
   */
  seed?: number;
  /**
   * Learning rate (default max(N / earlyExaggeration / 4, 50)).
   * @default max(N / earlyExaggeration / 4, 50)
   */
  learningRate?: number;
  /**
   * Attraction multiplier for the first `exaggerationIters` steps (default 12 for 250 steps).
   * @default 12
   */
  earlyExaggeration?: number;
  /**
   * Iterations with early exaggeration (default 250).
   * @default 250
   */
  exaggerationIters?: number;
  /**
   * Precomputed neighbours: [N x k] indices (no self) and squared distances, ascending.
   * @default computed exactly
   */
  neighbors?: { k: number; indices: Uint32Array; distances: Float32Array };
  /**
   * Called every `progressEvery` steps with the KL divergence estimate.
   */
  onProgress?: (iteration: number, total: number, kl: number) => void;
  /**
   * Report progress every this many iterations.
   * @default 50
   */
  progressEvery?: number;
  /**
   * No progress bar.
   * @default false
   */
  quiet?: boolean;
}

/** A sparse symmetric matrix in CSR form (row i: cols[rowStart[i] .. rowStart[i + 1]]). */
export interface SparseMatrix {
  rows: number;
  rowStart: Int32Array;
  cols: Int32Array;
  values: Float64Array;
}

/** Neighbours to use for a perplexity: floor(3 * perplexity), at most N - 1. */
export function neighborCount(n: number, perplexity: number): number {
  return Math.max(1, Math.min(n - 1, Math.floor(3 * perplexity)));
}

/** Exact k nearest neighbours (self excluded; squared L2 in float64; ties by index) by brute force. */
export function knnBruteForce(
  data: HostMatrix,
  k: number,
): { indices: Uint32Array; distances: Float32Array } {
  const n = data.rows;
  const indices = new Uint32Array(n * k), distances = new Float32Array(n * k);
  const d = new Float64Array(n);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      d[j] = sqL2Rows(data, i, data, j);
      order[j] = j;
    }
    d[i] = Infinity;
    // Partial selection: keep the k smallest by (distance, index).
    const best = selectSmallest(d, order, k);
    for (let t = 0; t < k; t++) {
      indices[i * k + t] = best[t];
      distances[i * k + t] = d[best[t]];
    }
  }
  return { indices, distances };
}

function selectSmallest(d: Float64Array, order: Uint32Array, k: number): Uint32Array {
  // A bounded max-heap would do; a sort of the candidates below a running threshold is simpler and fast
  // enough for k << n: keep the k best seen in a sorted array.
  const bestIdx = new Uint32Array(k), bestD = new Float64Array(k).fill(Infinity);
  let filled = 0;
  for (let t = 0; t < order.length; t++) {
    const j = order[t], v = d[j];
    if (filled === k && !(v < bestD[k - 1] || (v === bestD[k - 1] && j < bestIdx[k - 1]))) continue;
    let pos = filled < k ? filled++ : k - 1;
    while (pos > 0 && (bestD[pos - 1] > v || (bestD[pos - 1] === v && bestIdx[pos - 1] > j))) {
      bestD[pos] = bestD[pos - 1];
      bestIdx[pos] = bestIdx[pos - 1];
      pos--;
    }
    bestD[pos] = v;
    bestIdx[pos] = j;
  }
  return bestIdx;
}

/**
 * Conditional probabilities p_{j|i} over each point's k neighbours with the Gaussian bandwidth whose
 * perplexity (2^entropy) matches `perplexity` (binary search on the precision, tolerance 1e-5 in entropy).
 * Returns [N x k] row-normalised weights.
 */
export function conditionalP(
  distances: Float32Array,
  n: number,
  k: number,
  perplexity: number,
): Float64Array {
  const p = new Float64Array(n * k);
  const target = Math.log(perplexity);
  for (let i = 0; i < n; i++) {
    const d = distances.subarray(i * k, (i + 1) * k);
    const row = p.subarray(i * k, (i + 1) * k);
    let beta = 1, lo = -Infinity, hi = Infinity;
    // Shift by the nearest distance so exp() never underflows to all zeros.
    const d0 = d[0];
    for (let iter = 0; iter < 200; iter++) {
      let sum = 0, dot = 0;
      for (let t = 0; t < k; t++) {
        const w = Math.exp(-beta * (d[t] - d0));
        row[t] = w;
        sum += w;
        dot += w * (d[t] - d0);
      }
      const h = Math.log(sum) + (beta * dot) / sum;
      if (Math.abs(h - target) < 1e-5) break;
      if (h > target) {
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
      }
    }
    let sum = 0;
    for (let t = 0; t < k; t++) sum += row[t];
    for (let t = 0; t < k; t++) row[t] /= sum;
  }
  return p;
}

/** P = (P_cond + P_cond^T) / (2N) as a CSR matrix with sorted columns. */
export function symmetrizeP(indices: Uint32Array, pCond: Float64Array, n: number, k: number): SparseMatrix {
  const counts = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      counts[i + 1]++;
      counts[indices[i * k + t] + 1]++;
    }
  }
  for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
  const fill = counts.slice(0, n);
  const cols = new Int32Array(counts[n]), vals = new Float64Array(counts[n]);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const j = indices[i * k + t], v = pCond[i * k + t] / (2 * n);
      cols[fill[i]] = j;
      vals[fill[i]++] = v;
      cols[fill[j]] = i;
      vals[fill[j]++] = v;
    }
  }
  // Merge duplicate (i, j) entries (j is i's neighbour and i is j's).
  const rowStart = new Int32Array(n + 1);
  const outCols: number[] = [], outVals: number[] = [];
  for (let i = 0; i < n; i++) {
    const entries: [number, number][] = [];
    for (let e = counts[i]; e < counts[i + 1]; e++) entries.push([cols[e], vals[e]]);
    entries.sort((a, b) => a[0] - b[0]);
    for (const [c, v] of entries) {
      if (outCols.length > rowStart[i] && outCols[outCols.length - 1] === c) outVals[outVals.length - 1] += v;
      else {
        outCols.push(c);
        outVals.push(v);
      }
    }
    rowStart[i + 1] = outCols.length;
  }
  return { rows: n, rowStart, cols: Int32Array.from(outCols), values: Float64Array.from(outVals) };
}

/** Attractive forces: force[i] = sum_j p_ij q_ij Z (y_i - y_j). */
export function attractiveForces(p: SparseMatrix, y: Float64Array, force: Float64Array): void {
  for (let i = 0; i < p.rows; i++) {
    let fx = 0, fy = 0;
    const xi = y[2 * i], yi = y[2 * i + 1];
    for (let e = p.rowStart[i]; e < p.rowStart[i + 1]; e++) {
      const j = p.cols[e];
      const dx = xi - y[2 * j], dy = yi - y[2 * j + 1];
      const w = p.values[e] / (1 + dx * dx + dy * dy);
      fx += w * dx;
      fy += w * dy;
    }
    force[2 * i] = fx;
    force[2 * i + 1] = fy;
  }
}

/** KL(P || Q) over P's nonzeros, given Z = sum_{i != j} 1 / (1 + d_ij^2). */
export function klDivergence(p: SparseMatrix, y: Float64Array, z: number): number {
  let kl = 0;
  for (let i = 0; i < p.rows; i++) {
    for (let e = p.rowStart[i]; e < p.rowStart[i + 1]; e++) {
      const j = p.cols[e], pij = p.values[e];
      if (pij <= 0) continue;
      const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const qij = 1 / (1 + dx * dx + dy * dy) / z;
      kl += pij * Math.log(pij / Math.max(qij, 1e-300));
    }
  }
  return kl;
}

/**
 * Writes the gradient 4 (exaggeration * attraction_i - repulsion_i / Z) into `grad`, from the summed
 * repulsion `rep` (unnormalised) and Z; returns Z.
 */
function gradientFrom(
  p: SparseMatrix,
  y: Float64Array,
  exaggeration: number,
  rep: Float64Array,
  z: number,
  grad: Float64Array,
): number {
  attractiveForces(p, y, grad);
  for (let t = 0; t < 2 * p.rows; t++) grad[t] = 4 * (exaggeration * grad[t] - rep[t] / z);
  return z;
}

/**
 * The t-SNE gradient dC/dy_i = 4 (exaggeration * attraction_i - repulsion_i / Z), Barnes-Hut repulsion
 * with `theta`. Returns Z.
 */
export function tsneGradient(
  p: SparseMatrix,
  y: Float64Array,
  theta: number,
  exaggeration: number,
  grad: Float64Array,
  tree: QuadTree = new QuadTree(),
  scratch: Float64Array = new Float64Array(grad.length),
): number {
  const n = p.rows;
  tree.build(y, n);
  const z = repulsiveForces(tree, y, n, theta, scratch);
  return gradientFrom(p, y, exaggeration, scratch, z, grad);
}

/** The same gradient summed over all pairs (O(N^2)): the reference for {@link tsneGradient}. */
export function tsneGradientExact(
  p: SparseMatrix,
  y: Float64Array,
  exaggeration: number,
  grad: Float64Array,
): number {
  const n = p.rows;
  const rep = new Float64Array(2 * n);
  let z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const q = 1 / (1 + dx * dx + dy * dy);
      z += q;
      rep[2 * i] += q * q * dx;
      rep[2 * i + 1] += q * q * dy;
    }
  }
  return gradientFrom(p, y, exaggeration, rep, z, grad);
}

/** The symmetric joint probabilities P of `data` for t-SNE (neighbours by brute force unless given). */
export function jointProbabilities(
  data: HostMatrix,
  perplexity: number,
  neighbors?: TsneOptions["neighbors"],
): SparseMatrix {
  const n = data.rows;
  const k = neighbors?.k ?? neighborCount(n, perplexity);
  const nn = neighbors ?? knnBruteForce(data, k);
  const perp = Math.min(perplexity, k); // a perplexity above k cannot be reached with k neighbours
  return symmetrizeP(nn.indices, conditionalP(nn.distances, n, k, perp), n, k);
}

/** Embeds the rows of `data` in 2-D with Barnes-Hut t-SNE; returns an [N x 2] matrix. */
export function tsne(data: HostMatrix, opts: TsneOptions = {}): HostMatrix {
  const n = data.rows;
  if (n < 2) throw new UserError(`t-SNE needs at least 2 points, got ${n}`);
  const perplexity = opts.perplexity ?? 30;
  if (!(perplexity > 0)) throw new UserError(`t-SNE perplexity must be positive, got ${perplexity}`);
  const iterations = opts.iterations ?? 750;
  const theta = opts.theta ?? 0.5;
  const exag = opts.earlyExaggeration ?? 12;
  const exagIters = opts.exaggerationIters ?? 250;
  const lr = opts.learningRate ?? Math.max(n / exag / 4, 50);
  const every = opts.progressEvery ?? 50;
  const p = jointProbabilities(data, perplexity, opts.neighbors);

  const rng = new Rng(opts.seed ?? 0);
  const y = new Float64Array(2 * n);
  for (let t = 0; t < 2 * n; t++) y[t] = 1e-4 * rng.normal();
  const grad = new Float64Array(2 * n),
    update = new Float64Array(2 * n),
    gains = new Float64Array(2 * n).fill(1);
  const scratch = new Float64Array(2 * n);
  const tree = new QuadTree();
  const bar = opts.quiet ? undefined : new Progress("t-SNE", iterations, { unit: "iter" });
  for (let it = 0; it < iterations; it++) {
    const exaggeration = it < exagIters ? exag : 1;
    const momentum = it < exagIters ? 0.5 : 0.8;
    const z = tsneGradient(p, y, theta, exaggeration, grad, tree, scratch);
    for (let t = 0; t < 2 * n; t++) {
      gains[t] = Math.sign(grad[t]) !== Math.sign(update[t])
        ? gains[t] + 0.2
        : Math.max(gains[t] * 0.8, 0.01);
      update[t] = momentum * update[t] - lr * gains[t] * grad[t];
      y[t] += update[t];
    }
    let mx = 0, my = 0;
    for (let i = 0; i < n; i++) {
      mx += y[2 * i];
      my += y[2 * i + 1];
    }
    mx /= n;
    my /= n;
    for (let i = 0; i < n; i++) {
      y[2 * i] -= mx;
      y[2 * i + 1] -= my;
    }
    if ((it + 1) % every === 0 || it + 1 === iterations) {
      const kl = klDivergence(p, y, z);
      opts.onProgress?.(it + 1, iterations, kl);
      bar?.tick(0, `KL ${kl.toFixed(3)}`);
    }
    bar?.tick(1);
  }
  bar?.done();
  return { rows: n, cols: 2, data: Float32Array.from(y) };
}

/**
 * t-SNE with the neighbours found on the GPU (knnSqL2, exact, squared L2), then the same optimisation as
 * {@link tsne} on the host. Reads the embeddings back once.
 */
export async function tsneGpu(
  data: GpuBuffer<"f32"> | HostMatrix,
  opts: TsneOptions = {},
): Promise<HostMatrix> {
  const { buffer: x, owned } = await asGpuMatrix(data);
  try {
    const n = x.rows;
    if (n < 2) throw new UserError(`t-SNE needs at least 2 points, got ${n}`);
    const k = neighborCount(n, opts.perplexity ?? 30);
    using nn = await knnSqL2(x, x, k, { excludeSelf: true });
    const [indices, distances] = await Promise.all([nn.indices.read(), nn.distances.read()]);
    const host = data instanceof GpuBuffer ? { rows: n, cols: x.cols, data: await x.read() } : data;
    return tsne(host, { ...opts, neighbors: { k, indices, distances } });
  } finally {
    if (owned) x.destroy();
  }
}
