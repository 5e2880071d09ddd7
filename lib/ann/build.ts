/**
 * FANNG construction (docs/method.md section 5) on the GPU: a kNN candidate graph, occlusion pruning over a
 * large candidate pool, reverse edges through the same rule, optional traverse-add.
 *
 * 1. Candidates: every vertex's `candidates` nearest found (lib/ann/candidates.ts, lib/ann/knn_graph.ts).
 *    Small sets (N <= `exactLimit`): exact, from the fused distance + top-k kernel (lib/ops/knn.ts). Larger:
 *    k-means partition into overlapping clusters of about `clusterSize` points, exact kNN inside each
 *    cluster (the same fused kernel), then NN-descent iterations. The build works in "build order" (points
 *    grouped by cluster, for memory locality) and relabels the graph at the end.
 * 2. Occlusion pruning of each vertex's candidates (kernels/fanng.wgsl `prune`): v -> c is dropped when a
 *    kept v -> u has d(v,u) < d(v,c) and d(u,c) < d(v,c); at most `maxDegree` kept.
 * 3. Reverse edges: each vertex merges its `reverseEdges` shortest incoming edges under the same rule.
 * 4. Traverse-add (lib/ann/traverse_add.ts): `traverseAddIters * N` greedy walks between random vertices;
 *    where a walk stops short, the missing edge is added under the occlusion rule.
 *
 * `refreshGraph` (the same points, moved a little): the lists start from the current graph's edges (their
 * distances recomputed), NN-descent runs `refreshDescentIters` iterations, then steps 2-4. No partition
 * and no blocks: the old graph's neighbourhoods are already close.
 *
 * Every step works on the rows it is given. For high-dimensional data (D > `projectAbove`) FanngIndex gives
 * it a PCA projection of the points to `projectionDims` (lib/ann/pca.ts), where distances are much cheaper:
 * the graph is then the FANNG graph of the projected points, walked in the projection and re-ranked by
 * true distance (docs/ann-search.md, "Projected search").
 * @module
 */
import { UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { encodeGatherRows } from "../ops/gather.ts";
import { knnSqL2 } from "../ops/knn.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import {
  blockCandidates,
  choosePartition,
  type DescentSettings,
  homeRanges,
  offerRows,
  randomSeeds,
  refineLists,
  sampleIds,
  sampleNeighbours,
} from "./candidates.ts";
import { reverseCandidates } from "./edges.ts";
import { NO_VERTEX, type PaddedGraph } from "./graph.ts";
import { GpuGraph } from "./gpu_graph.ts";
import { KnnLists, listHeads } from "./knn_graph.ts";
import { type Presorted, prune, type PruneOptions } from "./prune.ts";
import { traverseAdd } from "./traverse_add.ts";
import { VectorBlocks } from "./vectors.ts";

/** Options of {@link buildGraph} (and `FanngIndex.build`). Every field has a default. */
export interface FanngBuildOptions {
  /**
   * Maximum out-degree R (default 32).
   * @default 32
   */
  maxDegree?: number;
  /**
   * Candidates per vertex: the kNN list length and the pool offered to the occlusion rule (default maxDegree; 1..128).
   * @default maxDegree
   */
  candidates?: number;
  /**
   * Reverse-edge candidates merged per vertex after pruning (default maxDegree; 0 disables).
   * @default maxDegree
   */
  reverseEdges?: number;
  /**
   * Occlusion scale (default 1: FANNG's rule, docs/method.md section 5). Above 1, DiskANN/Vamana's robust pruning:
   * c is occluded by a kept u only when alpha * d(u,c) < d(v,c), which keeps more, longer edges; such a
   * graph no longer obeys FANNG's rule.
   * @default 1
   */
  alpha?: number;
  /**
   * Traverse-add walks after pruning, as a multiple of N (default 0.5).
   * @default 0.5
   */
  traverseAddIters?: number;
  /**
   * Traverse-add walks of `refresh`, as a multiple of N (default 0.25).
   * @default 0.25
   */
  refreshTraverseAddIters?: number;
  /**
   * N at or below which candidates are exact (one fused kNN over all points; default 4096).
   * @default 4096
   */
  exactLimit?: number;
  /**
   * When the partition's blocks would find fewer than this fraction of the true 10 nearest (estimated on
   * 256 points; default 0.5: data without cluster structure, e.g. random 64-d vectors) and N <=
   * `exactFallback`, the candidates are exact instead.
   * @default 0.5
   */
  minBlockRecall?: number;
  /**
   * Largest N of the exact fallback (default 200,000; exact kNN costs N^2 distances).
   * @default 200,000
   */
  exactFallback?: number;
  /**
   * Smallest points per partition cluster (default 1024): exact kNN runs within clusters of about this size.
   * The partition starts at `maxClusterSize` and halves the size while the estimated block recall stays at
   * or above `blockRecallTarget`.
   * @default 1024
   */
  clusterSize?: number;
  /**
   * Largest points per partition cluster (default 8192).
   * @default 8192
   */
  maxClusterSize?: number;
  /**
   * Estimated recall@10 of the blocks the partition must keep (default 0.8; estimated on 256 points: the
   * fraction of their true 10 nearest that are members of their home cluster).
   * @default 0.8
   */
  blockRecallTarget?: number;
  /**
   * Clusters each point is a member of (default 2): its nearest centroids; more finds more border neighbours.
   * @default 2
   */
  clusterOverlap?: number;
  /**
   * Rows of the k-means sample, per cluster (default 32).
   * @default 32
   */
  clusterSample?: number;
  /**
   * NN-descent iterations at most after the partition blocks (default 3; 0 skips them).
   * @default 3
   */
  descentIters?: number;
  /**
   * NN-descent runs after the partition blocks only when their estimated recall@10 (`blockRecall`) is under
   * this (default 0.9): above it reverse edges and traverse-add recover what NN-descent would add, at a
   * fraction of its time (docs/ann-build.md).
   * @default 0.9
   */
  descentBelowRecall?: number;
  /**
   * NN-descent iterations at most in `refresh` (default 1).
   * @default 1
   */
  refreshDescentIters?: number;
  /**
   * NN-descent forward hubs: a vertex's nearest listed points whose lists it reads (default 12, at most descentPerHub).
   * @default 12, at most descentPerHub
   */
  descentForward?: number;
  /**
   * NN-descent reverse hubs: points listing the vertex near their top (default 12).
   * @default 12
   */
  descentReverse?: number;
  /**
   * NN-descent: entries of a hub's list offered to the vertex (default 12 or candidates if fewer; >= descentForward).
   * @default 12 or candidates if fewer
   */
  descentPerHub?: number;
  /**
   * NN-descent stops once an iteration changes fewer than this fraction of list entries (default 0.002).
   * @default 0.002
   */
  descentStop?: number;
  /**
   * Dimension of the PCA projection a FanngIndex of high-dimensional data is built and walked in (default
   * 96; 0 = never project): searches without a filter walk it (in f16 where it is a multiple of 8) and
   * re-rank their candidates by true distance (docs/ann-search.md, "Projected search").
   * @default 96
   */
  projectionDims?: number;
  /**
   * Project only when D exceeds this and N exceeds `exactLimit` (default 128).
   * @default 128
   */
  projectAbove?: number;
  /**
   * Rows of the sample the PCA basis is computed from (default 2048).
   * @default 2048
   */
  projectionSample?: number;
  /**
   * Fixed entry vertices stored with the graph for outside queries (default 64).
   * @default 64
   */
  entryCount?: number;
  /**
   * Seed of every random choice (default 1): equal seeds and inputs give equal graphs.
   * @default 1
   */
  seed?: number;
  /**
   * Suppress the progress bar (default: quiet below 20,000 points).
   * @default quiet below 20,000 points
   */
  quiet?: boolean;
}

/** Resolved build options. */
export type ResolvedBuildOptions = Required<FanngBuildOptions>;

/** Fills in the defaults for N points and checks ranges. */
export function resolveBuildOptions(o: FanngBuildOptions, n: number): ResolvedBuildOptions {
  const maxDegree = o.maxDegree ?? 32, candidates = o.candidates ?? maxDegree;
  const perHub = o.descentPerHub ?? Math.min(12, candidates);
  const r: ResolvedBuildOptions = {
    maxDegree,
    candidates,
    reverseEdges: o.reverseEdges ?? maxDegree,
    alpha: o.alpha ?? 1,
    traverseAddIters: o.traverseAddIters ?? 0.5,
    refreshTraverseAddIters: o.refreshTraverseAddIters ?? 0.25,
    exactLimit: o.exactLimit ?? 4096,
    minBlockRecall: o.minBlockRecall ?? 0.5,
    exactFallback: o.exactFallback ?? 200000,
    clusterSize: o.clusterSize ?? 1024,
    maxClusterSize: o.maxClusterSize ?? 8192,
    blockRecallTarget: o.blockRecallTarget ?? 0.8,
    clusterOverlap: o.clusterOverlap ?? 2,
    clusterSample: o.clusterSample ?? 32,
    descentIters: o.descentIters ?? 3,
    descentBelowRecall: o.descentBelowRecall ?? 0.9,
    refreshDescentIters: o.refreshDescentIters ?? 1,
    descentForward: o.descentForward ?? Math.min(12, perHub),
    descentReverse: o.descentReverse ?? 12,
    descentPerHub: perHub,
    descentStop: o.descentStop ?? 0.002,
    projectionDims: o.projectionDims ?? 96,
    projectAbove: o.projectAbove ?? 128,
    projectionSample: o.projectionSample ?? 2048,
    entryCount: o.entryCount ?? 64,
    seed: o.seed ?? 1,
    quiet: o.quiet ?? n < 20000,
  };
  const int = (name: keyof ResolvedBuildOptions, lo: number, hi: number) => {
    const v = r[name] as number;
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new UserError(`FANNG build option ${name} must be an integer in ${lo}..${hi}, got ${v}`);
    }
  };
  int("maxDegree", 1, 64);
  int("candidates", 1, 128);
  int("reverseEdges", 0, 64);
  int("exactLimit", 1, 1 << 20);
  int("exactFallback", 0, 1 << 30);
  int("clusterSize", 16, 1 << 20);
  int("maxClusterSize", 16, 1 << 20);
  int("clusterOverlap", 1, 8);
  int("clusterSample", 1, 1024);
  int("descentIters", 0, 64);
  int("refreshDescentIters", 0, 64);
  int("descentForward", 0, 128);
  int("descentReverse", 0, 128);
  int("descentPerHub", Math.max(1, r.descentForward), r.candidates);
  int("projectionDims", 0, 128);
  int("projectAbove", 0, 1 << 20);
  int("projectionSample", 1, 1 << 20);
  int("entryCount", 1, 1024);
  if (!(r.alpha >= 1) || !Number.isFinite(r.alpha)) {
    throw new UserError(`FANNG build option alpha must be a finite number >= 1, got ${r.alpha}`);
  }
  const fractions = [
    "traverseAddIters",
    "refreshTraverseAddIters",
    "descentStop",
    "minBlockRecall",
    "blockRecallTarget",
    "descentBelowRecall",
  ] as const;
  for (const name of fractions) {
    if (!(r[name] >= 0) || !Number.isFinite(r[name])) {
      throw new UserError(`FANNG build option ${name} must be a finite number >= 0, got ${r[name]}`);
    }
  }
  return r;
}

/** Whether an index of N points of `dims` dimensions is built and walked in a PCA projection. */
export function usesProjection(o: ResolvedBuildOptions, n: number, dims: number): boolean {
  return n > o.exactLimit && o.projectionDims > 0 && dims > Math.max(o.projectAbove, o.projectionDims);
}

/** Seconds spent per build phase, and what the candidate search did. */
export interface BuildStats {
  /** Wall seconds per build phase (candidates, prune, traverse-add...). */
  seconds: Record<string, number>;
  /** Walks that stopped short of their target, per traverse-add round. */
  traverseAddFailures: number[];
  /** Dimension of the PCA projection the graph was built in (0: the data itself). */
  projectionDims: number;
  /** List entries changed by each NN-descent iteration (empty for exact candidates). */
  descentUpdates: number[];
  /** Partition clusters (0 for exact candidates and refresh). */
  clusters: number;
  /** Estimated recall@10 of the partition's blocks (-1 when no partition was made). */
  blockRecall: number;
}

/** A built graph with its fixed entry points and its build order (see FanngIndex.refresh). */
export interface BuiltGraph {
  graph: GpuGraph;
  entries: Uint32Array;
  stats: BuildStats;
  /** What a later refresh starts from. */
  refresh: RefreshState;
}

/** What `refreshGraph` starts from; owned by the index (dispose frees the lists). */
export interface RefreshState extends Disposable {
  /** order[i]: the caller's id of build vertex i (identity for exact builds). */
  order: Uint32Array;
  /** The candidate lists of the last build or refresh, [N x candidates] build ids (absent: seed from the graph). */
  lists?: GpuBuffer<"u32">;
  /** Per build vertex, the partition block its list was computed exactly in ([N x 2], lib/ann/knn_graph.ts). */
  compared?: Uint32Array;
}

/** A refresh state (the identity order when none is given). */
export function refreshState(n: number, s: Partial<RefreshState> = {}): RefreshState {
  const lists = s.lists;
  return {
    order: s.order ?? Uint32Array.from({ length: n }, (_, i) => i),
    lists,
    compared: s.compared,
    [Symbol.dispose]: () => lists?.destroy(),
  };
}

/** Statistics of no build yet (an index loaded from a file). */
export function emptyStats(): BuildStats {
  return {
    seconds: {},
    traverseAddFailures: [],
    projectionDims: 0,
    descentUpdates: [],
    clusters: 0,
    blockRecall: -1,
  };
}

/** Times phases and drives one progress bar over a build. */
class Phases {
  readonly stats: BuildStats = emptyStats();
  readonly bar: Progress;
  #t = performance.now();

  constructor(label: string, units: number, quiet: boolean) {
    this.bar = new Progress(label, units, { unit: "pts", quiet });
  }

  /** Ends the running phase under `name` (its seconds are added up). */
  end(name: string): void {
    const now = performance.now();
    this.stats.seconds[name] = (this.stats.seconds[name] ?? 0) + (now - this.#t) / 1000;
    this.#t = now;
  }

  /** A callback that ticks the bar to `done` of `total` units of the current phase, as they complete. */
  ticker(phase: string): (done: number) => void {
    this.bar.status(phase);
    let last = 0;
    return (done) => {
      this.bar.tick(done - last, phase);
      last = done;
    };
  }
}

const CHUNK = 8192; // vertices per submission, so progress moves and no submission runs for minutes

/** Prunes vertices [start, start + count) in chunks of their own submissions. */
async function pruneChunked(
  vectors: VectorBlocks,
  graph: GpuGraph,
  extra: GpuBuffer<"u32">,
  opts: PruneOptions & Presorted<GpuBuffer<"f32">> & { start: number; count: number },
  tick?: (n: number) => void,
): Promise<void> {
  for (let s = opts.start; s < opts.start + opts.count; s += CHUNK) {
    const c = Math.min(CHUNK, opts.start + opts.count - s);
    await prune(vectors, graph, extra, { ...opts, start: s, count: c });
    tick?.(s + c - opts.start);
  }
}

/** Merges every vertex's shortest incoming edges into the graph (reverse edges, under the occlusion rule). */
async function mergeReverseEdges(
  vectors: VectorBlocks,
  graph: GpuGraph,
  slots: number,
  alpha: number,
): Promise<void> {
  const n = graph.vertexCount;
  if (slots === 0 || n < 2) return;
  const r = graph.maxDegree;
  const [adj, len, deg] = await Promise.all([
    graph.adjacency.read(),
    graph.lengths.read(),
    graph.degrees.read(),
  ]);
  const extra = reverseCandidates(n, r, adj, len, deg, 0, slots);
  using extraBuf = GpuBuffer.fromArray(vectors.gpu, extra, [n, slots]);
  await pruneChunked(vectors, graph, extraBuf, {
    merge: true,
    onlyWithExtra: true,
    start: 0,
    count: n,
    alpha,
  });
}

/** Reorders a padded graph from build ids to caller ids (order[i] = caller id of build vertex i). */
function unpermuteGraph(p: PaddedGraph, order: Uint32Array): PaddedGraph {
  const r = p.maxDegree, n = p.vertexCount;
  const adjacency = new Uint32Array(n * r).fill(NO_VERTEX);
  const lengths = new Float32Array(n * r).fill(Infinity), degrees = new Uint32Array(n);
  const idx: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = order[i], deg = p.degrees[i], o = i * r;
    degrees[v] = deg;
    // Equal lengths were ordered by build id: restore (length, caller id) order (equal lengths never occlude).
    idx.length = deg;
    for (let e = 0; e < deg; e++) idx[e] = e;
    idx.sort((a, b) =>
      p.lengths[o + a] - p.lengths[o + b] || order[p.adjacency[o + a]] - order[p.adjacency[o + b]]
    );
    for (let e = 0; e < deg; e++) {
      adjacency[v * r + e] = order[p.adjacency[o + idx[e]]];
      lengths[v * r + e] = p.lengths[o + idx[e]];
    }
  }
  return { vertexCount: n, maxDegree: r, adjacency, lengths, degrees };
}

/** The caller-order graph of a build-order one (the identity order keeps it). */
async function toCallerOrder(graph: GpuGraph, order: Uint32Array | undefined): Promise<GpuGraph> {
  if (!order) return graph;
  try {
    return GpuGraph.fromPadded(graph.gpu, unpermuteGraph(await graph.toPadded(), order));
  } finally {
    graph.destroy();
  }
}

/**
 * Steps 2-4: prune the candidates, merge reverse edges, traverse-add; in the order of `vectors`. The
 * candidates are kNN lists found over `vectors` themselves (their heads, whose sorted order and distances
 * are taken as they are) or a plain [N x k] id buffer.
 */
async function graphFromLists(
  vectors: VectorBlocks,
  lists: KnnLists | GpuBuffer<"u32">,
  o: ResolvedBuildOptions,
  walks: number,
  rng: Rng,
  phases: Phases,
): Promise<GpuGraph> {
  const n = vectors.rows;
  const graph = new GpuGraph(vectors.gpu, n, o.maxDegree);
  try {
    if (n < 2) return graph;
    const tick = phases.ticker("prune");
    if (lists instanceof KnnLists) {
      const cols = Math.min(o.candidates, lists.width);
      using cand = await listHeads(lists.ids, cols, true);
      using dists = await listHeads(lists.dists, cols, false);
      await pruneChunked(
        vectors,
        graph,
        cand,
        { merge: false, start: 0, count: n, extraDistances: dists, alpha: o.alpha },
        tick,
      );
    } else {
      await pruneChunked(vectors, graph, lists, { merge: false, start: 0, count: n, alpha: o.alpha }, tick);
    }
    phases.end("prune");
    phases.bar.status("reverse edges");
    await mergeReverseEdges(vectors, graph, o.reverseEdges, o.alpha);
    phases.end("reverse edges");
    if (walks > 0) {
      const tick = phases.ticker("traverse-add");
      const ta = await traverseAdd(vectors, graph, rng, walks, {
        perRound: Math.max(1024, Math.ceil(n / 4)),
        onRound: (done) => tick(done),
      });
      phases.stats.traverseAddFailures.push(...ta.failuresPerRound);
      phases.end("traverse-add");
    }
    return graph;
  } catch (e) {
    graph.destroy();
    throw e;
  }
}

/**
 * `rows` permuted to build order, as a row-major matrix and as blocks (caller owns both). Gathered in row
 * chunks that each fit one binding (the whole matrix may not).
 */
async function inBuildOrder(
  rows: GpuBuffer<"f32">,
  order: Uint32Array,
): Promise<{ rows: GpuBuffer<"f32">; blocks: VectorBlocks }> {
  const gpu = rows.gpu;
  const permuted = GpuBuffer.zeros(gpu, "f32", [order.length, rows.cols], "fanng build order rows");
  try {
    for (const chunk of permuted.rowChunks()) {
      using idx = GpuBuffer.fromArray(gpu, order.subarray(chunk.rowStart, chunk.rowStart + chunk.rows));
      const batch = new CommandBatch(gpu, "fanng.build order");
      const part = await encodeGatherRows(batch, rows, idx);
      batch.copy(part, 0, permuted, chunk.rowStart * rows.cols, chunk.rows * rows.cols);
      batch.release(part);
      await batch.submit();
    }
    const batch = new CommandBatch(gpu, "fanng.build order");
    const blocks = await VectorBlocks.encodeFrom(batch, permuted);
    await batch.submit();
    return { rows: permuted, blocks };
  } catch (e) {
    permuted.destroy();
    throw e;
  }
}

/** `rows` permuted to build order, as blocks only (caller owns them). */
async function blocksInBuildOrder(rows: GpuBuffer<"f32">, order: Uint32Array): Promise<VectorBlocks> {
  const b = await inBuildOrder(rows, order);
  b.rows.destroy();
  return b.blocks;
}

/** NN-descent settings from the options. */
function descent(o: ResolvedBuildOptions, iterations: number): DescentSettings {
  return {
    iterations,
    stop: o.descentStop,
    forward: o.descentForward,
    reverse: o.descentReverse,
    perHub: Math.min(o.descentPerHub, o.candidates),
  };
}

/** Runs NN-descent with progress and statistics. */
async function runDescent(
  vectors: VectorBlocks,
  lists: KnnLists,
  settings: DescentSettings,
  phases: Phases,
  /** Iterations the progress bar planned for (default: settings.iterations). */
  planned = settings.iterations,
): Promise<void> {
  let last = 0;
  const updates = await refineLists(vectors, lists, settings, (it, done) => {
    phases.bar.tick(done - last, `nn-descent ${it + 1}/${settings.iterations}`);
    last = done === lists.n ? 0 : done;
  });
  // Iterations skipped (by convergence, or not run) count as done, so the bar's total stays the plan.
  phases.bar.tick(lists.n * (planned - updates.length));
  phases.stats.descentUpdates.push(...updates);
  phases.end("nn-descent");
}

/** The graph from exact candidates (small N), in caller order. */
async function exactGraph(
  x: GpuBuffer<"f32">,
  vectors: VectorBlocks,
  o: ResolvedBuildOptions,
  walks: number,
  rng: Rng,
  phases: Phases,
  /** Progress units per point of the candidate search. */
  units = 1,
): Promise<GpuGraph> {
  const n = x.rows;
  if (n < 2) return new GpuGraph(vectors.gpu, n, o.maxDegree);
  const tick = phases.ticker("exact candidates");
  const knn = await knnSqL2(x, x, Math.min(o.candidates, n - 1), { excludeSelf: true }, {
    onProgress: (rows) => tick(rows * units),
  });
  knn.distances.destroy();
  using cand = knn.indices;
  phases.end("candidates");
  return await graphFromLists(vectors, cand, o, walks, rng, phases);
}

/**
 * Builds a FANNG graph over `x` [N x D] (row-major on the GPU) whose block copy is `vectors`.
 * Returns the graph on the GPU (caller order), its fixed entry points, per-phase timings and the build order.
 */
export async function buildGraph(
  x: GpuBuffer<"f32">,
  vectors: VectorBlocks,
  options: FanngBuildOptions = {},
): Promise<BuiltGraph> {
  const gpu: Gpu = vectors.gpu, n = vectors.rows;
  const o = resolveBuildOptions(options, n);
  const rng = new Rng(o.seed);
  const walks = Math.round(o.traverseAddIters * n);
  const exact = n <= o.exactLimit;
  // Progress units: points through each pass (blocks, NN-descent iterations, prune) and walks.
  const units = (exact ? 2 : 2 + o.descentIters) * n + walks;
  const phases = new Phases("fanng build", units, o.quiet);
  let graph: GpuGraph;
  let order: Uint32Array | undefined;
  let kept: Partial<RefreshState> = {};
  if (exact) {
    graph = await exactGraph(x, vectors, o, walks, rng, phases);
  } else {
    phases.bar.status("partition");
    const truth = await sampleNeighbours(x, sampleIds(rng, n, 256), 10);
    const chosen = await choosePartition(
      x,
      { minSize: o.clusterSize, maxSize: o.maxClusterSize },
      o.clusterOverlap,
      o.clusterSample,
      o.blockRecallTarget,
      truth,
      rng,
    );
    const part = chosen.part;
    phases.stats.clusters = chosen.clusters;
    phases.stats.blockRecall = chosen.recall;
    phases.end("partition");
    if (phases.stats.blockRecall < o.minBlockRecall && n <= o.exactFallback) {
      graph = await exactGraph(x, vectors, o, walks, rng, phases, 1 + o.descentIters);
    } else {
      order = part.order;
      const b = await inBuildOrder(x, order);
      using _rows = b.rows;
      using blocks = b.blocks;
      using lists = KnnLists.empty(gpu, n, o.candidates);
      await blockCandidates(b.rows, blocks, lists, part, phases.ticker("blocks"));
      await randomSeeds(blocks, lists, 2, rng);
      phases.end("blocks");
      const compared = homeRanges(part);
      const iterations = chosen.recall < o.descentBelowRecall ? o.descentIters : 0;
      await runDescent(blocks, lists, { ...descent(o, iterations), compared }, phases, o.descentIters);
      kept = { lists: await listHeads(lists.ids, lists.width, true), compared };
      graph = await graphFromLists(blocks, lists, o, walks, rng, phases);
    }
    phases.bar.status("relabel");
    graph = await toCallerOrder(graph, order);
    phases.end("relabel");
  }
  const entries = sampleIds(rng, n, o.entryCount);
  phases.bar.done();
  return { graph, entries, stats: phases.stats, refresh: refreshState(n, { ...kept, order }) };
}

/**
 * Rebuilds `graph` (caller order, updated in place) for `x` [N x D], the same points moved a little, whose
 * block copy is `vectors`, from `state` (the last build's order and candidate lists): the lists start from
 * the previous ones (or, without them, the current edges), their distances computed anew; NN-descent then
 * tries the pairs outside each vertex's old partition block (inside it the old list is only re-ranked), and
 * pruning, reverse edges and traverse-add follow. Returns the statistics and the state for the next refresh
 * (`state` itself is left to the caller).
 */
export async function refreshGraph(
  x: GpuBuffer<"f32">,
  vectors: VectorBlocks,
  graph: GpuGraph,
  state: RefreshState,
  options: FanngBuildOptions = {},
): Promise<{ stats: BuildStats; state: RefreshState }> {
  const gpu = vectors.gpu, n = vectors.rows;
  const o = resolveBuildOptions({ ...options, maxDegree: graph.maxDegree }, n);
  const rng = new Rng(o.seed + 1);
  const walks = Math.round(o.refreshTraverseAddIters * n);
  const exact = n <= o.exactLimit;
  const phases = new Phases("fanng refresh", (exact ? 2 : 2 + o.refreshDescentIters) * n + walks, o.quiet);
  const order = state.order;
  let fresh: GpuGraph;
  let next: RefreshState;
  if (exact) {
    fresh = await exactGraph(x, vectors, o, walks, rng, phases);
    next = refreshState(n);
  } else {
    using blocks = await blocksInBuildOrder(x, order);
    using lists = KnnLists.empty(gpu, n, o.candidates);
    await offerRows(blocks, lists, state.lists ?? await graphSeeds(graph, order));
    phases.bar.tick(n, "seeds");
    phases.end("seeds");
    const compared = state.lists ? state.compared : undefined;
    await runDescent(blocks, lists, { ...descent(o, o.refreshDescentIters), compared }, phases);
    next = refreshState(n, { order, compared, lists: await listHeads(lists.ids, lists.width, true) });
    try {
      fresh = await graphFromLists(blocks, lists, o, walks, rng, phases);
    } catch (e) {
      next[Symbol.dispose]();
      throw e;
    }
    phases.bar.status("relabel");
    fresh = await toCallerOrder(fresh, order);
    phases.end("relabel");
  }
  using _fresh = fresh;
  const batch = new CommandBatch(gpu, "fanng.refresh copy");
  batch.copy(fresh.adjacency, 0, graph.adjacency, 0, fresh.adjacency.length);
  batch.copy(fresh.lengths, 0, graph.lengths, 0, fresh.lengths.length);
  batch.copy(fresh.degrees, 0, graph.degrees, 0, fresh.degrees.length);
  await batch.submit();
  phases.bar.done();
  return { stats: phases.stats, state: next };
}

/** Every vertex's current edges as [N x R] rows in build order and build ids (refresh seeds without lists). */
async function graphSeeds(graph: GpuGraph, order: Uint32Array): Promise<Uint32Array> {
  const n = graph.vertexCount, r = graph.maxDegree;
  const [adj, deg] = await Promise.all([graph.adjacency.read(), graph.degrees.read()]);
  const rank = new Uint32Array(n);
  order.forEach((v, i) => (rank[v] = i));
  const seeds = new Uint32Array(n * r).fill(NO_VERTEX);
  for (let i = 0; i < n; i++) {
    const v = order[i];
    for (let e = 0; e < Math.min(deg[v], r); e++) seeds[i * r + e] = rank[adj[v * r + e]];
  }
  return seeds;
}
