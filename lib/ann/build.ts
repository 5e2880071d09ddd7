/**
 * FANNG construction (method.md section 5) on the GPU:
 *
 * 1. Candidates. Small sets (N <= `exactLimit`): the exact `candidates` nearest neighbours from the fused
 *    distance + top-k kernel (lib/ops/knn.ts). Larger sets: incremental insertion through the graph itself
 *    on a navigation copy of the data, in a random order: the first `exactLimit` points get exact
 *    candidates, then each batch (`growth` times the points inserted so far) searches the graph built so
 *    far for its candidates, is pruned in, and offers itself to its new neighbours as reverse edges; a
 *    optional refinement pass re-searches every point. For high-dimensional data (D > `projectAbove`) the
 *    navigation copy is a PCA projection to `projectionDims` (lib/ann/pca.ts), where distances are ~25x
 *    cheaper on a CPU adapter, and the candidates are the `candidates` nearest found there, re-ranked and
 *    pruned by true distance.
 * 2. Occlusion pruning of every vertex's candidates (kernels/fanng.wgsl `prune`) in the true space, then
 *    reverse edges: each vertex merges its `reverseEdges` shortest incoming edges under the same rule.
 * 3. Traverse-add (lib/ann/traverse_add.ts): `traverseAddIters * N` greedy walks between random vertices;
 *    where a walk stops short, the missing edge is added under the occlusion rule.
 *
 * `refreshGraph` starts from an existing graph instead (embeddings that moved a little): every vertex
 * searches the old graph over the new vectors for its candidates, then steps 2 and 3 run (with
 * `refreshTraverseAddIters`). It skips candidate generation from scratch, the costly part.
 * @module
 */
import { UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { gatherRows } from "../ops/gather.ts";
import { knnSqL2 } from "../ops/knn.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { reverseCandidates, unpermuteLists } from "./edges.ts";
import { NO_VERTEX, type PaddedGraph } from "./graph.ts";
import { GpuGraph } from "./gpu_graph.ts";
import { principalSubspace, projectRows } from "./pca.ts";
import { prune } from "./prune.ts";
import { runSearch } from "./search.ts";
import { traverseAdd } from "./traverse_add.ts";
import { VectorBlocks } from "./vectors.ts";

/** Options of {@link buildGraph} (and `FanngIndex.build`). Every field has a default. */
export interface FanngBuildOptions {
  /** Maximum out-degree R (default 32). */
  maxDegree?: number;
  /** Candidates per vertex offered to the occlusion rule (default maxDegree; at most 128). */
  candidates?: number;
  /** Reverse-edge candidates merged per vertex after pruning (default maxDegree; 0 disables). */
  reverseEdges?: number;
  /**
   * Traverse-add walks, as a multiple of N (default 1, or 0.25 on the PCA path, where each walk costs
   * high-dimensional distances and Fashion-MNIST's recall did not change with more).
   */
  traverseAddIters?: number;
  /** Traverse-add walks of `refresh`, as a multiple of N (default 0.5). */
  refreshTraverseAddIters?: number;
  /** N at or below which candidates come from exact GPU kNN (default 4096; also the first insertion block). */
  exactLimit?: number;
  /** Dimension of the PCA navigation copy (default 32; 0 = never project). */
  projectionDims?: number;
  /** Build through a PCA copy only when D exceeds this (default 128; lower dims navigate on the data itself). */
  projectAbove?: number;
  /** Rows of the sample the PCA basis is computed from (default 2048). */
  projectionSample?: number;
  /** Distance evaluations per search while inserting and refreshing (default 4 * candidates). */
  insertBudget?: number;
  /** Each insertion batch holds `growth` times the points inserted so far (default 1: doubling). */
  growth?: number;
  /**
   * Refinement passes after insertion: every point re-searches the graph and merges what it finds, which
   * links points inserted in the same batch (default 1, or 0 on the PCA path, whose final candidate search
   * plays that part).
   */
  refineIters?: number;
  /** Entry vertices used by searches while inserting (default 32). */
  insertEntries?: number;
  /** Fixed entry vertices stored with the graph for outside queries (default 64). */
  entryCount?: number;
  /** Seed of every random choice (default 1): equal seeds and inputs give equal graphs. */
  seed?: number;
  /** Suppress the progress bar (default: quiet below 20,000 points). */
  quiet?: boolean;
}

/** Resolved build options. */
export type ResolvedBuildOptions = Required<FanngBuildOptions>;

/** Fills in the defaults for N points of dimension `dims` and checks ranges. */
export function resolveBuildOptions(o: FanngBuildOptions, n: number, dims: number): ResolvedBuildOptions {
  const maxDegree = o.maxDegree ?? 32;
  const candidates = o.candidates ?? maxDegree;
  const r: ResolvedBuildOptions = {
    maxDegree,
    candidates,
    reverseEdges: o.reverseEdges ?? maxDegree,
    traverseAddIters: o.traverseAddIters ?? 1,
    refreshTraverseAddIters: o.refreshTraverseAddIters ?? 0.5,
    exactLimit: o.exactLimit ?? 4096,
    projectionDims: o.projectionDims ?? 32,
    projectAbove: o.projectAbove ?? 128,
    projectionSample: o.projectionSample ?? 2048,
    insertBudget: o.insertBudget ?? 4 * candidates,
    growth: o.growth ?? 1,
    refineIters: o.refineIters ?? 1,
    insertEntries: o.insertEntries ?? 32,
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
  int("projectionDims", 0, 256);
  int("projectAbove", 0, 1 << 20);
  int("projectionSample", 1, 1 << 20);
  int("insertBudget", 1, 4000);
  int("refineIters", 0, 16);
  int("insertEntries", 1, 1024);
  int("entryCount", 1, 1024);
  for (const name of ["traverseAddIters", "refreshTraverseAddIters", "growth"] as const) {
    if (!(r[name] >= 0) || !Number.isFinite(r[name]) || (name === "growth" && r.growth <= 0)) {
      throw new UserError(`FANNG build option ${name} must be a finite number >= 0, got ${r[name]}`);
    }
  }
  // On the PCA path the final candidate search does the refinement's job, and walks cost
  // high-dimensional distances.
  if (usesProjection(r, n, dims)) {
    r.refineIters = o.refineIters ?? 0;
    r.traverseAddIters = o.traverseAddIters ?? 0.25;
  }
  return r;
}

/** Whether a build of N points of `dims` dimensions goes through the PCA navigation copy. */
export function usesProjection(o: ResolvedBuildOptions, n: number, dims: number): boolean {
  return n > o.exactLimit && o.projectionDims > 0 && dims > Math.max(o.projectAbove, o.projectionDims);
}

/** Seconds spent per build phase, and traverse-add outcomes. */
export interface BuildStats {
  seconds: Record<string, number>;
  /** Walks that stopped short of their target, per traverse-add round. */
  traverseAddFailures: number[];
  /** Whether the candidates came from a PCA navigation copy, and its dimension. */
  projectionDims: number;
}

/** A built graph with its fixed entry points. */
export interface BuiltGraph {
  graph: GpuGraph;
  entries: Uint32Array;
  stats: BuildStats;
}

/** Times phases and drives one progress bar over a build. */
class Phases {
  readonly stats: BuildStats = { seconds: {}, traverseAddFailures: [], projectionDims: 0 };
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
}

const CHUNK = 8192; // vertices per submission, so progress moves and no submission runs for minutes

/** Prunes vertices [start, start + count) in chunks of their own submissions. */
async function pruneChunked(
  vectors: VectorBlocks,
  graph: GpuGraph,
  extra: GpuBuffer<"u32">,
  opts: { merge: boolean; onlyWithExtra?: boolean; start: number; count: number; extraRow0?: number },
  tick?: (n: number) => void,
): Promise<void> {
  for (let s = opts.start; s < opts.start + opts.count; s += CHUNK) {
    const c = Math.min(CHUNK, opts.start + opts.count - s);
    await prune(vectors, graph, extra, { ...opts, start: s, count: c });
    tick?.(c);
  }
}

/**
 * Self-searches vertices [start, start + count) for k candidates each; returns [count x k] (caller owns it).
 * Entry points: `entries` shared by all (may be empty).
 */
async function searchCandidates(
  vectors: VectorBlocks,
  graph: GpuGraph,
  start: number,
  count: number,
  k: number,
  budget: number,
  entries: Uint32Array,
  tick?: (n: number) => void,
): Promise<GpuBuffer<"u32">> {
  const gpu = vectors.gpu;
  const out = GpuBuffer.zeros(gpu, "u32", [count, k], "fanng candidates");
  using entryBuf = GpuBuffer.fromArray(gpu, entries.length ? entries : new Uint32Array([NO_VERTEX]));
  for (let s = 0; s < count; s += CHUNK) {
    const c = Math.min(CHUNK, count - s);
    const res = await runSearch(vectors, graph, "self", {
      k,
      budget,
      entries: entryBuf,
      entryStride: 0,
      self: true,
      selfStart: start + s,
      selfCount: c,
    });
    const batch = new CommandBatch(gpu, "fanng.candidates");
    batch.copy(res.indices, 0, out, s * k, c * k);
    for (const b of Object.values(res)) batch.release(b);
    await batch.submit();
    tick?.(c);
  }
  return out;
}

/** Distinct random vertices from [0, n) (all of them when n <= count). */
function sampleVertices(rng: Rng, n: number, count: number): Uint32Array {
  if (n <= count) return Uint32Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(rng.int(n));
  return Uint32Array.from(picked);
}

/** Merges every vertex's shortest incoming edges from rows [rowStart, rowStart + rows) into the graph. */
async function mergeReverseEdges(
  vectors: VectorBlocks,
  graph: GpuGraph,
  slots: number,
  rowStart: number,
  rows: number,
  limit: number,
): Promise<void> {
  if (slots === 0 || rows === 0) return;
  const r = graph.maxDegree;
  const [adj, len, deg] = await Promise.all([
    graph.adjacency.read(rowStart * r, rows * r),
    graph.lengths.read(rowStart * r, rows * r),
    graph.degrees.read(rowStart, rows),
  ]);
  const extra = reverseCandidates(limit, r, adj, len, deg, rowStart, slots);
  using extraBuf = GpuBuffer.fromArray(vectors.gpu, extra, [limit, slots]);
  await pruneChunked(vectors, graph, extraBuf, { merge: true, onlyWithExtra: true, start: 0, count: limit });
}

/** Random permutation of 0..n-1. */
function permutation(rng: Rng, n: number): Uint32Array {
  return rng.shuffle(Uint32Array.from({ length: n }, (_, i) => i));
}

/** Builds a graph over `vectors` by exact candidates (small N). */
async function buildExact(
  x: GpuBuffer<"f32">,
  vectors: VectorBlocks,
  o: ResolvedBuildOptions,
  phases: Phases,
): Promise<GpuGraph> {
  const n = vectors.rows;
  const graph = new GpuGraph(vectors.gpu, n, o.maxDegree);
  if (n < 2) return graph;
  const k = Math.min(o.candidates, n - 1);
  using knn = await knnSqL2(x, x, k, { excludeSelf: true });
  phases.end("candidates");
  await pruneChunked(vectors, graph, knn.indices, { merge: false, start: 0, count: n });
  phases.bar.tick(n);
  phases.end("prune");
  await mergeReverseEdges(vectors, graph, o.reverseEdges, 0, n, n);
  phases.end("reverse edges");
  return graph;
}

/**
 * Builds a graph over `nav` (vectors in insertion order, `navRows` the same rows row-major) by incremental
 * insertion: an exact first block, then batches that search the graph built so far, then refinement.
 */
async function buildByInsertion(
  nav: VectorBlocks,
  navRows: GpuBuffer<"f32">,
  o: ResolvedBuildOptions,
  rng: Rng,
  phases: Phases,
): Promise<GpuGraph> {
  const gpu = nav.gpu, n = nav.rows, c = o.candidates;
  const tick = (m: number) => phases.bar.tick(m);
  const graph = new GpuGraph(gpu, n, o.maxDegree);
  // The first block: exact candidates.
  const n0 = Math.min(n, o.exactLimit);
  {
    using first = GpuBuffer.zeros(gpu, "f32", [n0, navRows.cols], "fanng first block");
    const copy = new CommandBatch(gpu);
    copy.copy(navRows, 0, first, 0, n0 * navRows.cols);
    await copy.submit();
    using knn = await knnSqL2(first, first, Math.min(c, Math.max(1, n0 - 1)), { excludeSelf: true });
    await pruneChunked(nav, graph, knn.indices, { merge: false, start: 0, count: n0 }, tick);
    await mergeReverseEdges(nav, graph, o.reverseEdges, 0, n0, n0);
  }
  phases.end("insert");
  // Batches through the graph.
  for (let inserted = n0; inserted < n;) {
    const b = Math.min(n - inserted, Math.max(64, Math.floor(inserted * o.growth)));
    const entries = sampleVertices(rng, inserted, o.insertEntries);
    using cand = await searchCandidates(nav, graph, inserted, b, c, o.insertBudget, entries);
    await pruneChunked(
      nav,
      graph,
      cand,
      { merge: false, start: inserted, count: b, extraRow0: inserted },
      tick,
    );
    await mergeReverseEdges(nav, graph, o.reverseEdges, inserted, b, inserted + b);
    inserted += b;
  }
  phases.end("insert");
  for (let it = 0; it < o.refineIters; it++) {
    const entries = sampleVertices(rng, n, o.insertEntries);
    using cand = await searchCandidates(nav, graph, 0, n, c, o.insertBudget, entries, tick);
    await pruneChunked(nav, graph, cand, { merge: true, start: 0, count: n });
    await mergeReverseEdges(nav, graph, o.reverseEdges, 0, n, n);
    phases.end("refine");
  }
  return graph;
}

/** Reorders a padded graph from build ids to caller ids (perm[i] = caller id of build vertex i). */
function unpermuteGraph(p: PaddedGraph, perm: Uint32Array): PaddedGraph {
  const r = p.maxDegree, n = p.vertexCount;
  const adjacency = unpermuteLists(p.adjacency, r, perm);
  const lengths = new Float32Array(n * r), degrees = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const v = perm[i];
    degrees[v] = p.degrees[i];
    lengths.set(p.lengths.subarray(i * r, (i + 1) * r), v * r);
    // Equal lengths were ordered by build id: restore (length, id) order (equal lengths never occlude).
    const row = Array.from({ length: p.degrees[i] }, (_, e) => [lengths[v * r + e], adjacency[v * r + e]]);
    row.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    row.forEach(([d, c], e) => {
      lengths[v * r + e] = d;
      adjacency[v * r + e] = c;
    });
  }
  return { vertexCount: n, maxDegree: r, adjacency, lengths, degrees };
}

/**
 * Builds a FANNG graph over `x` [N x D] (row-major on the GPU) whose block copy is `vectors`.
 * Returns the graph on the GPU, its fixed entry points and per-phase timings.
 */
export async function buildGraph(
  x: GpuBuffer<"f32">,
  vectors: VectorBlocks,
  options: FanngBuildOptions = {},
): Promise<BuiltGraph> {
  const gpu: Gpu = vectors.gpu, n = vectors.rows, d = vectors.dims;
  const o = resolveBuildOptions(options, n, d);
  const rng = new Rng(o.seed);
  const walks = Math.round(o.traverseAddIters * n);
  const exact = n <= o.exactLimit;
  const project = usesProjection(o, n, d);
  // Progress units: points through each pass (insertion + refinement + final prune + walks).
  const units = exact ? n : n * (1 + o.refineIters + (project ? 2 : 0)) + walks;
  const phases = new Phases("fanng build", units, o.quiet);
  let graph: GpuGraph;
  if (exact) {
    graph = await buildExact(x, vectors, o, phases);
  } else {
    const perm = permutation(rng, n);
    let navRows: GpuBuffer<"f32">;
    using permBuf = GpuBuffer.fromArray(gpu, perm);
    if (project) {
      const p = o.projectionDims;
      const sampleIdx = sampleVertices(rng, n, o.projectionSample);
      using idx = GpuBuffer.fromArray(gpu, sampleIdx);
      using sampleRows = await gatherRows(x, idx);
      const sample = { rows: sampleIdx.length, cols: d, data: await sampleRows.read() };
      const basis = principalSubspace(sample, p, rng);
      using projected = await projectRows(x, basis, p);
      navRows = await gatherRows(projected, permBuf);
      phases.stats.projectionDims = p;
    } else {
      navRows = await gatherRows(x, permBuf);
    }
    using _navRows = navRows;
    const batch = new CommandBatch(gpu, "fanng.nav");
    using nav = await VectorBlocks.encodeFrom(batch, navRows);
    await batch.submit();
    phases.end("projection");
    using navGraph = await buildByInsertion(nav, navRows, o, rng, phases);
    if (project) {
      // Candidates: the nearest found in the projection, re-ranked and pruned by true distance.
      using cand = await searchCandidates(
        nav,
        navGraph,
        0,
        n,
        o.candidates,
        o.insertBudget,
        new Uint32Array(),
        (m) => phases.bar.tick(m),
      );
      const lists = unpermuteLists(await cand.read(), o.candidates, perm);
      phases.end("candidates");
      using candBuf = GpuBuffer.fromArray(gpu, lists, [n, o.candidates]);
      graph = new GpuGraph(gpu, n, o.maxDegree);
      await pruneChunked(
        vectors,
        graph,
        candBuf,
        { merge: false, start: 0, count: n },
        (m) => phases.bar.tick(m),
      );
      phases.end("prune");
      await mergeReverseEdges(vectors, graph, o.reverseEdges, 0, n, n);
      phases.end("reverse edges");
    } else {
      graph = GpuGraph.fromPadded(gpu, unpermuteGraph(await navGraph.toPadded(), perm));
      phases.end("relabel");
    }
  }
  await runTraverseAdd(vectors, graph, rng, walks, phases);
  const entries = sampleVertices(rng, n, o.entryCount);
  phases.bar.done();
  return { graph, entries, stats: phases.stats };
}

async function runTraverseAdd(
  vectors: VectorBlocks,
  graph: GpuGraph,
  rng: Rng,
  walks: number,
  phases: Phases,
): Promise<void> {
  if (walks <= 0) return;
  let last = 0;
  const ta = await traverseAdd(vectors, graph, rng, walks, {
    perRound: Math.max(1024, Math.ceil(vectors.rows / 4)),
    onRound: (done) => {
      phases.bar.tick(done - last);
      last = done;
    },
  });
  phases.stats.traverseAddFailures.push(...ta.failuresPerRound);
  phases.end("traverse-add");
}

/**
 * Rebuilds `graph` in place for `vectors` (the same points, moved): candidates from searching the old graph
 * over the new vectors, then pruning, reverse edges and traverse-add.
 */
export async function refreshGraph(
  vectors: VectorBlocks,
  graph: GpuGraph,
  options: FanngBuildOptions = {},
): Promise<BuildStats> {
  const n = vectors.rows;
  const o = resolveBuildOptions(options, n, vectors.dims);
  const rng = new Rng(o.seed + 1);
  const walks = Math.round(o.refreshTraverseAddIters * n);
  const phases = new Phases("fanng refresh", 2 * n + walks, o.quiet);
  if (n >= 2) {
    const k = Math.min(o.candidates, n - 1);
    using cand = await searchCandidates(
      vectors,
      graph,
      0,
      n,
      k,
      o.insertBudget,
      new Uint32Array(),
      (m) => phases.bar.tick(m),
    );
    phases.end("candidates");
    await pruneChunked(vectors, graph, cand, { merge: false, start: 0, count: n }, (m) => phases.bar.tick(m));
    phases.end("prune");
    await mergeReverseEdges(vectors, graph, o.reverseEdges, 0, n, n);
    phases.end("reverse edges");
    await runTraverseAdd(vectors, graph, rng, walks, phases);
  }
  phases.bar.done();
  return phases.stats;
}
