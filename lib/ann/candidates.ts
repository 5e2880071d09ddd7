/**
 * Candidate generation of a FANNG build (docs/method.md section 5): approximate kNN lists of every vertex, on
 * the GPU, in three steps:
 *
 * 1. Partition: k-means on a sample (lib/eval/kmeans.ts) gives `clusters` centroids; each point's home is
 *    its nearest centroid and it is a member of its `overlap` nearest. The build then numbers the points by
 *    home cluster ("build order"), so a cluster's home points are one row range and neighbours sit close in
 *    memory (graph kernels gather rows; nearby rows share caches).
 * 2. Blocks: per cluster, the exact nearest members of each home point, by the fused distance + top-k kernel
 *    (lib/ops/knn.ts: register-blocked, streamed; the part of the build that runs near the adapter's peak),
 *    merged into the lists (lib/ann/knn_graph.ts `knn_merge`). A point's true neighbours across a cluster
 *    border are found when they are members of its home cluster (overlap > 1).
 * 3. NN-descent iterations (lib/ann/knn_graph.ts) until few lists change: neighbours of neighbours fix
 *    what the partition missed.
 * @module
 */
import { UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { kmeans } from "../eval/kmeans.ts";
import { kmeansRef } from "../eval/kmeans_ref.ts";
import { encodeGatherRows, gatherRows } from "../ops/gather.ts";
import { encodeKnnSqL2, knnSqL2 } from "../ops/knn.ts";
import type { Rng } from "../util/rng.ts";
import { encodeKnnMerge, type KnnLists, nnDescentIteration, type NnDescentOptions } from "./knn_graph.ts";
import type { VectorBlocks } from "./vectors.ts";

/** Points grouped by cluster. */
export interface Partition {
  /** Build order: order[i] is the caller's id of build vertex i (home clusters in turn, ids ascending). */
  order: Uint32Array;
  /** [clusters + 1] start of each cluster's home points in build order. */
  offsets: Uint32Array;
  /** Members of every cluster (build ids, ascending), concatenated; cluster c's are memberOffsets[c]... */
  members: Uint32Array;
  memberOffsets: Uint32Array;
}

/** Distinct random ids from [0, n) in increasing order (all of them when n <= count). */
export function sampleIds(rng: Rng, n: number, count: number): Uint32Array {
  if (n <= count) return Uint32Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(rng.int(n));
  return Uint32Array.from(picked).sort();
}

/** Largest sample rows x clusters x D whose partition k-means runs on the host (lib/eval/kmeans_ref.ts). */
const HOST_KMEANS_WORK = 2 ** 25;

/**
 * Partitions the rows of `x` [N x D] into `clusters` overlapping clusters (k-means on `sample` rows, then
 * each row's `overlap` nearest centroids on the GPU). Deterministic for a seed.
 */
export async function partitionRows(
  x: GpuBuffer<"f32">,
  clusters: number,
  overlap: number,
  sample: number,
  rng: Rng,
): Promise<Partition> {
  const n = x.rows;
  const k = Math.max(1, Math.min(clusters, n));
  const m = Math.max(1, Math.min(overlap, k));
  const ids = sampleIds(rng, n, Math.max(k, sample));
  let centroids: Float32Array;
  {
    using idx = GpuBuffer.fromArray(x.gpu, ids);
    using rows = await gatherRows(x, idx);
    const opts = { restarts: 1, maxIters: 8, seed: rng.int(1 << 30) };
    // A small sample runs the same k-means on the host: cheaper than compiling the GPU one's pipelines
    // (0.15 s against 1.7 s for 3,136 x 64 rows in 98 clusters on llvmpipe).
    const res = ids.length * k * x.cols <= HOST_KMEANS_WORK
      ? await kmeansRef({ rows: rows.rows, cols: rows.cols, data: await rows.read() }, k, opts)
      : await kmeans(rows, k, opts);
    centroids = res.centroids.data;
  }
  using cents = GpuBuffer.fromArray(x.gpu, centroids, [k, x.cols]);
  using nearest = await knnSqL2(x, cents, m);
  const near = await nearest.indices.read();
  // Counting sort by home cluster (stable: ids ascending within a cluster).
  const offsets = new Uint32Array(k + 1);
  for (let i = 0; i < n; i++) offsets[near[i * m] + 1]++;
  for (let c = 0; c < k; c++) offsets[c + 1] += offsets[c];
  const order = new Uint32Array(n), fill = offsets.slice(0, k);
  for (let i = 0; i < n; i++) {
    const b = fill[near[i * m]]++;
    order[b] = i;
  }
  // Members: every (point, one of its m nearest clusters), grouped by cluster, build ids ascending.
  const memberOffsets = new Uint32Array(k + 1);
  for (let i = 0; i < n * m; i++) if (near[i] < k) memberOffsets[near[i] + 1]++;
  for (let c = 0; c < k; c++) memberOffsets[c + 1] += memberOffsets[c];
  const members = new Uint32Array(memberOffsets[k]), mfill = memberOffsets.slice(0, k);
  for (let b = 0; b < n; b++) {
    const i = order[b];
    for (let j = 0; j < m; j++) {
      const c = near[i * m + j];
      if (c < k) members[mfill[c]++] = b;
    }
  }
  return { order, offsets, members, memberOffsets };
}

/**
 * Fills `lists` (build order) with each vertex's exact nearest members of its home cluster: `xs` is the
 * data in build order (row-major), `vectors` the same rows as blocks. Reports home points done.
 */
export async function blockCandidates(
  xs: GpuBuffer<"f32">,
  vectors: VectorBlocks,
  lists: KnnLists,
  part: Partition,
  onProgress?: (done: number) => void,
): Promise<void> {
  const gpu = xs.gpu, d = xs.cols;
  const clusters = part.offsets.length - 1;
  // Many clusters per submission (in order, so the lists merge exactly as one cluster at a time would):
  // a wait per cluster cost more than the blocks' arithmetic.
  let batch = new CommandBatch(gpu, "fanng.blocks"), held = 0, done = 0;
  const submit = async () => {
    await batch.submit();
    onProgress?.(done);
    batch = new CommandBatch(gpu, "fanng.blocks");
    held = 0;
  };
  for (let c = 0; c < clusters; c++) {
    const q0 = part.offsets[c], h = part.offsets[c + 1] - q0;
    const m0 = part.memberOffsets[c], e = part.memberOffsets[c + 1] - m0;
    if (h === 0 || e === 0) continue;
    const k = Math.min(lists.width + 1, e);
    const map = GpuBuffer.fromArray(gpu, part.members.subarray(m0, m0 + e));
    batch.release(map);
    const queries = batch.scratch("f32", [h, d], "fanng block queries");
    batch.copy(xs, q0 * d, queries, 0, h * d);
    const base = await encodeGatherRows(batch, xs, map);
    batch.release(base);
    const res = await encodeKnnSqL2(batch, queries, base, k);
    batch.release(res.indices);
    batch.release(res.distances);
    await encodeKnnMerge(batch, vectors, lists, { q0, count: h, results: res.indices, map });
    held += ((h + e) * d + 2 * h * k) * 4;
    done = q0 + h;
    if (held >= BLOCK_SUBMIT_BYTES) await submit();
  }
  if (held > 0) await submit();
}

/** Temporary bytes (queries, gathered members, results) one submission of partition blocks may hold. */
const BLOCK_SUBMIT_BYTES = 64 * 2 ** 20;

/** True nearest others of sample rows: `near` [sample x kk] caller ids (may include the row itself). */
export interface SampleNeighbours {
  sample: Uint32Array;
  near: Uint32Array;
  kk: number;
  k: number;
}

/** The true `k` nearest others of `sample` rows (caller ids) of `x`, by one fused kNN. */
export async function sampleNeighbours(
  x: GpuBuffer<"f32">,
  sample: Uint32Array,
  k: number,
): Promise<SampleNeighbours> {
  const kk = Math.min(k + 1, x.rows);
  using idx = GpuBuffer.fromArray(x.gpu, sample);
  using rows = await gatherRows(x, idx);
  using knn = await knnSqL2(rows, x, kk);
  return { sample, near: await knn.indices.read(), kk, k };
}

/**
 * The recall the blocks of `part` can reach, estimated on sample rows: the fraction of each one's true
 * nearest others that are members of its home cluster.
 */
export function blockRecallEstimate(part: Partition, truth: SampleNeighbours): number {
  const n = part.order.length, { sample, near, kk, k } = truth;
  if (n < 2 || sample.length === 0) return 1;
  const rank = new Uint32Array(n);
  part.order.forEach((v, b) => (rank[v] = b));
  const clusters = part.offsets.length - 1;
  /** Index of the last entry <= key in the ascending a[lo, hi), or lo - 1. */
  const search = (a: Uint32Array, lo: number, hi: number, key: number) => {
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid] <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  };
  let hit = 0, total = 0;
  sample.forEach((v, i) => {
    const c = search(part.offsets, 0, clusters, rank[v]);
    const m0 = part.memberOffsets[c], m1 = part.memberOffsets[c + 1];
    for (let j = 0, taken = 0; j < kk && taken < k; j++) {
      const w = near[i * kk + j];
      if (w === v || w >= n) continue;
      taken++;
      total++;
      const at = search(part.members, m0, m1, rank[w]);
      if (at >= m0 && part.members[at] === rank[w]) hit++;
    }
  });
  return total ? hit / total : 1;
}

/** Where the partition search stopped: the chosen partition and its estimated block recall. */
export interface ChosenPartition {
  part: Partition;
  clusters: number;
  recall: number;
}

/**
 * The finest partition whose estimated block recall reaches `target`: cluster sizes from `maxSize` down
 * to `minSize` (halving), each estimated on `truth`; stops at the first size below the target and keeps the
 * one before it (or the coarsest, when even that one is below).
 */
export async function choosePartition(
  x: GpuBuffer<"f32">,
  sizes: { minSize: number; maxSize: number },
  overlap: number,
  samplePerCluster: number,
  target: number,
  truth: SampleNeighbours,
  rng: Rng,
): Promise<ChosenPartition> {
  const n = x.rows;
  let chosen: ChosenPartition | undefined;
  for (let size = Math.max(sizes.maxSize, sizes.minSize); size >= sizes.minSize; size /= 2) {
    const clusters = Math.max(1, Math.round(n / size));
    if (chosen && clusters === chosen.clusters) continue;
    const part = await partitionRows(x, clusters, overlap, clusters * samplePerCluster, rng);
    const recall = blockRecallEstimate(part, truth);
    if (chosen && recall < target) break;
    chosen = { part, clusters, recall };
    if (recall < target) break;
  }
  return chosen!;
}

/** Per build vertex, the range of its home cluster ([n x 2]): the vertices its block compared it with. */
export function homeRanges(part: Partition): Uint32Array {
  const out = new Uint32Array(2 * part.order.length);
  for (let c = 0; c + 1 < part.offsets.length; c++) {
    for (let b = part.offsets[c]; b < part.offsets[c + 1]; b++) {
      out[2 * b] = part.offsets[c];
      out[2 * b + 1] = part.offsets[c + 1];
    }
  }
  return out;
}

/**
 * Offers vertex v the vertices in row v of `rows` [n x width] (NO_VERTEX: none), at their distances: each
 * is inserted where the list has room or it is nearer than the list's last entry.
 */
export async function offerRows(
  vectors: VectorBlocks,
  lists: KnnLists,
  rows: Uint32Array | GpuBuffer<"u32">,
): Promise<void> {
  const n = lists.n;
  if (n === 0 || rows.length === 0) return;
  const owned = rows instanceof GpuBuffer
    ? undefined
    : GpuBuffer.fromArray(vectors.gpu, rows, [n, rows.length / n]);
  using _owned = owned;
  const rowBuf = owned ?? (rows as GpuBuffer<"u32">);
  using identity = GpuBuffer.fromArray(vectors.gpu, Uint32Array.from({ length: n }, (_, i) => i));
  const batch = new CommandBatch(vectors.gpu, "fanng.offer");
  await encodeKnnMerge(batch, vectors, lists, { q0: 0, count: n, results: rowBuf, map: identity });
  await batch.submit();
}

/** Offers every vertex `count` random others: a vertex of a tiny cluster gets hubs for NN-descent. */
export async function randomSeeds(
  vectors: VectorBlocks,
  lists: KnnLists,
  count: number,
  rng: Rng,
): Promise<void> {
  if (lists.n < 2) return;
  await offerRows(vectors, lists, Uint32Array.from({ length: lists.n * count }, () => rng.int(lists.n)));
}

/** NN-descent settings of a build. */
export interface DescentSettings extends NnDescentOptions {
  /** Iterations at most. */
  iterations: number;
  /** Stop once an iteration changes fewer than `stop` * N * width list entries. */
  stop: number;
}

/**
 * Runs NN-descent iterations on `lists`; returns the insertions of each iteration run. `onProgress` gets
 * the iteration (from 0) and the vertices it has done.
 */
export async function refineLists(
  vectors: VectorBlocks,
  lists: KnnLists,
  s: DescentSettings,
  onProgress?: (iteration: number, done: number) => void,
): Promise<number[]> {
  if (!(s.stop >= 0)) throw new UserError(`NN-descent stop fraction must be >= 0, got ${s.stop}`);
  const out: number[] = [];
  for (let it = 0; it < s.iterations; it++) {
    const u = await nnDescentIteration(vectors, lists, s, (done) => onProgress?.(it, done));
    out.push(u);
    if (u < s.stop * lists.n * lists.width) break;
  }
  return out;
}
