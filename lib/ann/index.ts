/**
 * FANNG (Harwood & Drummond, CVPR 2016) as the toolkit's ANN index: a directed graph over the points, built
 * and searched on the GPU, with label- and radius-filtered search for smart mining (docs/method.md sections 3
 * and 5). The index keeps its own copy of the vectors on the GPU (column blocks, lib/ann/vectors.ts) and
 * the graph (padded on the GPU, CSR on the host as `graph`).
 *
 * Search: best-first graph search, all queries of a call at once, a team of GPU lanes per query
 * (lib/ann/search.ts, docs/ann-search.md): it ends when the closest unexpanded candidate is farther than the
 * max(ef, k)-th result (hnswlib's rule), or after `budget` distance evaluations. `selfSearch` finds each
 * point's nearest other points by starting each search at the point itself. Defaults per use come from
 * lib/ann/search_defaults.ts.
 *
 * Mining's two questions (eps_a, then the nearest other-class points outside kappa * eps_a) take two
 * passes: either `selfSearch(1)` then a filtered `selfSearch(K, {filter: {..., minDistance:
 * first.nearestAnyDistance, minDistanceScale: kappa}})` (the radius never leaves the GPU), or one call with
 * `minDistanceScale` and no `minDistance`, which runs the cheap first pass itself. `run` returns the GPU
 * outputs without reading anything back.
 *
 * High-dimensional data (D > `projectAbove`, N > `exactLimit`): the graph is built in a PCA projection of the
 * points to `projectionDims` (lib/ann/pca.ts), which the index keeps beside the vectors (`walkVectors`).
 * Searches without a filter walk the projection for `rerank` candidates and return the k nearest of them by
 * true distance (lib/ann/rerank.ts); filtered searches walk the vectors themselves over the same graph, so
 * what a filter rejects stays exact (docs/ann-search.md, "Projected search").
 *
 * Files: `save` writes the graph (not the vectors; with its projection basis, if any) in the format
 * documented in lib/ann/file.ts; `load` takes the vectors again and checks their shape.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { FanngIndex } from "./index.ts";
 * const gpu = await getGpu();
 * const data = { rows: 1000, cols: 8, data: Float32Array.from({ length: 8000 }, () => Math.random()) };
 * using index = await FanngIndex.build(gpu, data);
 * using res = await index.selfSearch(10);
 * console.log((await res.indices.read()).slice(0, 10), res.evaluations);
 * ```
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { Rng } from "../util/rng.ts";
import {
  buildGraph,
  type BuildStats,
  emptyStats,
  type FanngBuildOptions,
  refreshGraph,
  type RefreshState,
  refreshState,
  resolveBuildOptions,
  usesProjection,
} from "./build.ts";
import { fitProjection, projectRows } from "./pca.ts";
import { gatherRows } from "../ops/gather.ts";
import { knnSqL2 } from "../ops/knn.ts";
import { runRerank } from "./rerank.ts";
import { decodeRefreshState, encodeRefreshState } from "./refresh_state.ts";
import { encodeGraph, loadGraph, saveGraph } from "./file.ts";
import {
  type FanngGraph,
  graphFromPadded,
  graphProblem,
  NO_VERTEX,
  paddedFromGraph,
  type Projection,
} from "./graph.ts";
import { GpuGraph } from "./gpu_graph.ts";
import {
  runNearestEdge,
  runSearch,
  SEARCH_MAX_K,
  type SearchOutputs,
  type SearchShape,
  SearchWorkspace,
} from "./search.ts";
import { searchDefaults, type SearchUse } from "./search_defaults.ts";
import { VectorBlocks, walkableAsHalves } from "./vectors.ts";

export type { FanngBuildOptions } from "./build.ts";

/** The filter of a search (docs/method.md section 3). Vertices that fail it are still walked through. */
export interface SearchFilter {
  /** Labels of the indexed points [N]; with `queryLabels`, keeps results whose label differs from the query's. */
  labels?: GpuBuffer<"i32"> | Int32Array;
  /** Labels of the queries [Q] (for `selfSearch`, usually the same array as `labels`). */
  queryLabels?: GpuBuffer<"i32"> | Int32Array;
  /** Keeps results with d > minDistanceScale * minDistance[q] (squared distances; the exclusion radius). */
  minDistance?: GpuBuffer<"f32"> | Float32Array;
  /**
   * Multiplier of `minDistance` (default 1). Without `minDistance`, the radius is this times each query's
   * nearest-neighbour distance (any label): in a self-search, the query's first edge in the graph (its
   * nearest neighbour as the build found it); for outside queries, or with `nearestBudget`, the nearest
   * point of a first, unfiltered search pass of `nearestBudget` evaluations.
   */
  minDistanceScale?: number;
  /**
   * With a label filter: how much later the walk expands a vertex that fails it. Its queue key (distance,
   * or distance from the exclusion sphere) is multiplied by this. 1 (default): labels do not change the walk
   * (hnswlib's filtered search); +Infinity: only vertices that pass the filter are ever expanded (an
   * in-filter walk; a self-search still expands its own vertex); in between, a search that need not cross
   * the query's own class before its first result, yet can still pass through it.
   */
  labelPenalty?: number;
}

/** Options of {@link FanngIndex.search} and {@link FanngIndex.selfSearch}. */
export interface SearchOptions {
  /**
   * Most distance evaluations per query (the last iteration may pass it by up to maxDegree - 1). Default
   * per use from lib/ann/search_defaults.ts (search, self; filtered when a filter is given).
   * @default per use, lib/ann/search_defaults.ts
   */
  budget?: number;
  /**
   * hnswlib's ef: the search ends once its closest unexpanded candidate is farther than the max(ef, k)-th
   * result (with a filter: the max(ef, k)-th result that passes it). 0: no natural stop, the budget ends it.
   * Default per use (lib/ann/search_defaults.ts).
   * @default per use (lib/ann/search_defaults.ts)
   */
  ef?: number;
  /**
   * Candidates expanded per iteration (default 1; CAGRA's search width).
   * @default 1
   */
  width?: number;
  /**
   * An index built in a PCA projection (`graph.projection`), searched without a filter: the walk in the
   * projection keeps max(k, rerank) candidates, and the k nearest of them by true distance are returned.
   * 0: walk the vectors themselves. Default per use (lib/ann/search_defaults.ts); no effect on an index
   * without a projection, or with a filter (filtered searches always walk the vectors).
   * @default per use (lib/ann/search_defaults.ts)
   */
  rerank?: number;
  /**
   * Where searches start besides the query itself (selfSearch): "nearest" (outside queries only: each
   * query starts from the stored entry vertex nearest it, found by one exact pass over all of them, in the
   * space the graph is walked in: hnswlib's upper layers in one step), "fixed" (the first `entryCount`
   * stored entry vertices, all walked), "sampled" (`entryCount` random vertices per call, seeded by
   * `seed`), or explicit vertices. Default: "nearest" for search, none for selfSearch.
   * @default "nearest" for search, none for selfSearch
   */
  entryPoints?: "nearest" | "fixed" | "sampled" | "none" | Uint32Array;
  /**
   * Entry vertices to use for "fixed" and "sampled" (default 16; "fixed" uses at most the stored ones).
   * @default 16
   */
  entryCount?: number;
  /**
   * Seed of "sampled" entry points (default 1).
   * @default 1
   */
  seed?: number;
  /**
   * Which vertices may be results (labels, a minimum distance per query); see {@link SearchFilter}.
   * @default none: every vertex may be a result
   */
  filter?: SearchFilter;
  /**
   * Budget of the first pass of a `minDistanceScale`-only filter. Default: the "nearest" use's for outside
   * queries; none for a self-search, whose nearest point is its first edge (set it to search instead).
   * @default the "nearest" use's (outside queries); the first edge (self-search)
   */
  nearestBudget?: number;
  /**
   * GPU team shape (default per adapter, lib/ann/search.ts); changes the speed, never the results.
   * @default per adapter, lib/ann/search.ts
   */
  shape?: SearchShape;
  /**
   * Called as queries finish: `done` of `total` query searches (a radius filter by scale runs two passes,
   * so its total is twice the queries).
   */
  onProgress?: (done: number, total: number) => void;
}

/** Search results on the GPU; dispose frees them. */
export interface SearchResult extends Disposable {
  /** Results per query. */
  k: number;
  /** [Q x k] result vertices, ascending by distance; NO_VERTEX (0xFFFFFFFF) where fewer qualified. */
  indices: GpuBuffer<"u32">;
  /** [Q x k] squared distances; +Inf where missing. */
  distances: GpuBuffer<"f32">;
  /** [Q] nearest vertex of any label found (never the query itself in selfSearch), for eps_a. */
  nearestAny: GpuBuffer<"u32">;
  /** [Q] its squared distance. */
  nearestAnyDistance: GpuBuffer<"f32">;
  /**
   * Mean distance evaluations per query (both passes of a two-pass filter; a projected search counts its
   * walk's projected distances and its re-ranked candidates).
   */
  evaluations: number;
}

/**
 * A search's queries: the index's own points, or outside rows as column blocks (`vectors`; `walk`: their
 * projection's, when the walk is in the projection) and row-major in the space of the graph (`rows`, for
 * the "nearest" entry points).
 */
type Queries = { vectors: VectorBlocks; walk?: VectorBlocks; rows: GpuBuffer<"f32"> } | "self";

function asHostMatrix(data: GpuBuffer<"f32"> | HostMatrix): data is HostMatrix {
  return !(data instanceof GpuBuffer);
}

/** A FANNG index over N points of dimension D. */
export class FanngIndex implements Disposable {
  #graph: FanngGraph;
  #entryBuf: GpuBuffer<"u32">;
  #refresh: RefreshState;
  #disposed = false;
  /** GPU memory the searches of this index reuse (kept until dispose). */
  #workspace: SearchWorkspace;
  /** Rows of the stored entry vertices in the space of the graph, [E x D'] (none when E = 0). */
  #entryRows: GpuBuffer<"f32"> | undefined;
  /**
   * `walkVectors` in f16 halves for the projected walk, made once at the first such search (see #halfWalk);
   * the promise is kept, so that searches started together share one copy.
   */
  #walkHalf: Promise<VectorBlocks | undefined> | undefined;

  private constructor(
    readonly gpu: Gpu,
    readonly vectors: VectorBlocks,
    /** The rows the graph was built in and unfiltered searches walk: `vectors`, or their PCA projection. */
    readonly walkVectors: VectorBlocks,
    readonly gpuGraph: GpuGraph,
    graph: FanngGraph,
    /** Options the index was built with (refresh reuses them). */
    readonly buildOptions: FanngBuildOptions,
    /** Timings of the last build or refresh. */
    public stats: BuildStats,
    /** What the next refresh starts from (lib/ann/build.ts; the index owns its lists). */
    refresh: RefreshState,
    entryRows: GpuBuffer<"f32"> | undefined,
  ) {
    this.#graph = graph;
    this.#refresh = refresh;
    this.#entryRows = entryRows;
    this.#workspace = new SearchWorkspace(gpu);
    this.#entryBuf = GpuBuffer.fromArray(
      gpu,
      graph.entries.length ? graph.entries : new Uint32Array([NO_VERTEX]),
    );
  }

  /** The graph in CSR form (host copy, updated by build and refresh). */
  get graph(): FanngGraph {
    return this.#graph;
  }

  /** Number of indexed points. */
  get size(): number {
    return this.vectors.rows;
  }

  /** Dimension of the points. */
  get dims(): number {
    return this.vectors.dims;
  }

  /** Builds an index over `data` [N x D] (GPU buffer or host matrix; the index keeps its own copy). */
  static async build(
    gpu: Gpu,
    data: GpuBuffer<"f32"> | HostMatrix,
    options: FanngBuildOptions = {},
  ): Promise<FanngIndex> {
    if (asHostMatrix(data)) checkHostMatrix(data, "FANNG data");
    const owned = asHostMatrix(data)
      ? GpuBuffer.fromArray(gpu, data.data, [data.rows, data.cols])
      : undefined;
    const x = owned ?? (data as GpuBuffer<"f32">);
    try {
      if (x.shape.length !== 2) {
        throw new ShapeError(`FANNG data must be a [N x D] matrix, got ${fmtShape(x.shape)}`);
      }
      if (x.cols < 1) throw new ShapeError(`FANNG data ${fmtShape(x.shape)} has no columns`);
      const o = resolveBuildOptions(options, x.rows);
      const batch = new CommandBatch(gpu, "fanng.vectors");
      const vectors = await VectorBlocks.encodeFrom(batch, x);
      await batch.submit();
      let walk: VectorBlocks | undefined;
      try {
        const t0 = performance.now();
        const projection = usesProjection(o, x.rows, x.cols)
          ? await fitProjection(x, o.projectionDims, o.projectionSample, new Rng(o.seed))
          : undefined;
        using walkRows = projection ? await projectRows(x, projection) : undefined;
        walk = walkRows ? await blocksOf(walkRows) : vectors;
        const seconds = (performance.now() - t0) / 1000;
        const built = await buildGraph(walkRows ?? x, walk, options);
        if (projection) {
          built.stats.projectionDims = projection.dims;
          built.stats.seconds = { projection: seconds, ...built.stats.seconds };
        }
        const graph = graphFromPadded(await built.graph.toPadded(), x.cols, built.entries, projection);
        const entryRows = await rowsOf(walkRows ?? x, built.entries);
        return new FanngIndex(
          gpu,
          vectors,
          walk,
          built.graph,
          graph,
          { ...options },
          built.stats,
          built.refresh,
          entryRows,
        );
      } catch (e) {
        if (walk !== vectors) walk?.destroy();
        vectors.destroy();
        throw e;
      }
    } finally {
      owned?.destroy();
    }
  }

  /**
   * Rebuilds the graph for moved vectors `data` (same N and D), starting from the current graph: cheaper
   * than a fresh build. Updates this index in place and returns it.
   */
  async refresh(data: GpuBuffer<"f32"> | HostMatrix, options: FanngBuildOptions = {}): Promise<FanngIndex> {
    this.#check();
    if (asHostMatrix(data)) {
      using x = GpuBuffer.fromArray(this.gpu, data.data, [data.rows, data.cols]);
      return await this.refresh(x, options);
    }
    if (data.shape.length !== 2 || data.rows !== this.size || data.cols !== this.dims) {
      throw new ShapeError(
        `refresh: vectors ${fmtShape(data.shape)} do not match the index's ${
          fmtShape([this.size, this.dims])
        }`,
      );
    }
    const projection = this.#graph.projection;
    using walkRows = projection ? await projectRows(data, projection) : undefined;
    const batch = new CommandBatch(this.gpu, "fanng.refresh.vectors");
    await this.vectors.encodeCopy(batch, data);
    if (walkRows) await this.walkVectors.encodeCopy(batch, walkRows);
    await batch.submit();
    await this.#dropHalfWalk();
    const done = await refreshGraph(walkRows ?? data, this.walkVectors, this.gpuGraph, this.#refresh, {
      ...this.buildOptions,
      ...options,
    });
    this.#refresh[Symbol.dispose]();
    this.#refresh = done.state;
    this.stats = done.stats;
    if (projection) this.stats.projectionDims = projection.dims;
    this.#graph = graphFromPadded(await this.gpuGraph.toPadded(), this.dims, this.#graph.entries, projection);
    this.#entryRows?.destroy();
    this.#entryRows = await rowsOf(walkRows ?? data, this.#graph.entries);
    return this;
  }

  /** The k nearest indexed points of each query row (optionally filtered). */
  async search(
    queries: GpuBuffer<"f32"> | HostMatrix,
    k: number,
    options: SearchOptions = {},
  ): Promise<SearchResult> {
    this.#check();
    if (queries.cols !== this.dims || (!asHostMatrix(queries) && queries.shape.length !== 2)) {
      const shape = asHostMatrix(queries) ? [queries.rows, queries.cols] : queries.shape;
      throw new ShapeError(`search: queries ${fmtShape(shape)} do not have the index's ${this.dims} columns`);
    }
    if (asHostMatrix(queries)) checkHostMatrix(queries, "search: queries");
    // Host queries are uploaded once; the column blocks (and the projection) are made on the GPU.
    using uploaded = asHostMatrix(queries)
      ? GpuBuffer.fromArray(this.gpu, queries.data, [queries.rows, queries.cols])
      : undefined;
    const rows = uploaded ?? (queries as GpuBuffer<"f32">);
    using blocks = await blocksOf(rows, this.vectors);
    const projection = this.#graph.projection;
    const walked = this.#walkedProjection(options);
    // The rows in the space of the graph: for the walk, if it is in the projection, and the entry choice.
    using projected = projection && (walked || (options.entryPoints ?? "nearest") === "nearest")
      ? await projectRows(rows, projection)
      : undefined;
    using walk = walked ? await blocksOf(projected!, this.walkVectors) : undefined;
    return withMeanEvaluations(
      k,
      await this.#run({ vectors: blocks, walk, rows: projected ?? rows }, k, options),
    );
  }

  /**
   * The walk vectors in f16 halves (VectorBlocks.toHalf), which a projected search walks: half the bytes
   * per distance, and the walk only ranks candidates for the exact re-ranking (docs/ann-search.md, "Half
   * walk"); undefined where the projection cannot be walked so (lib/ann/vectors.ts walkableAsHalves).
   */
  #halfWalk(): Promise<VectorBlocks | undefined> {
    if (!this.#walkHalf) {
      const made = walkableAsHalves(this.walkVectors)
        ? this.walkVectors.toHalf()
        : Promise.resolve(undefined);
      // A failure is not kept: the next search tries again.
      const kept: Promise<VectorBlocks | undefined> = made.catch((e) => {
        if (this.#walkHalf === kept) this.#walkHalf = undefined;
        throw e;
      });
      this.#walkHalf = kept;
    }
    return this.#walkHalf;
  }

  /** Frees the halves (the walk vectors moved, or the index is disposed). */
  async #dropHalfWalk(): Promise<void> {
    const made = this.#walkHalf;
    this.#walkHalf = undefined;
    (await made?.catch(() => undefined))?.destroy();
  }

  /** The projection a search with `options` walks (the graph's, unless a filter or rerank 0 says otherwise). */
  #walkedProjection(options: SearchOptions): Projection | undefined {
    const r = options.rerank;
    if (r !== undefined && (!Number.isInteger(r) || r < 0 || r > SEARCH_MAX_K)) {
      throw new UserError(`search: rerank must be an integer in 0..${SEARCH_MAX_K}, got ${r}`);
    }
    return options.filter || r === 0 ? undefined : this.#graph.projection;
  }

  /** Each indexed point's k nearest other points (optionally filtered). */
  async selfSearch(k: number, options: SearchOptions = {}): Promise<SearchResult> {
    this.#check();
    return withMeanEvaluations(k, await this.#run("self", k, options));
  }

  /**
   * {@link selfSearch} without any readback: the GPU outputs, evaluations per query included (both passes
   * of a two-pass filter summed). The caller owns the buffers.
   */
  async selfSearchOutputs(k: number, options: SearchOptions = {}): Promise<SearchOutputs> {
    this.#check();
    return await this.#run("self", k, options);
  }

  async #run(queries: Queries, k: number, options: SearchOptions): Promise<SearchOutputs> {
    const gpu = this.gpu;
    const self = queries === "self";
    const outside = self ? "self" : queries.vectors;
    const q = self ? this.size : queries.vectors.rows;
    const f = options.filter;
    const use: SearchUse = f ? "filtered" : self ? "self" : "search";
    const temps: GpuBuffer[] = [];
    const upload = <T extends GpuBuffer<"i32"> | GpuBuffer<"f32">>(
      a: T | Int32Array | Float32Array | undefined,
      length: number,
      what: string,
    ): T | undefined => {
      if (a === undefined) return undefined;
      if (a.length !== length) {
        throw new ShapeError(`search: ${what} has ${a.length} entries, expected ${length}`);
      }
      if (a instanceof GpuBuffer) return a as T;
      const b = GpuBuffer.fromArray(gpu, a);
      temps.push(b);
      return b as unknown as T;
    };
    try {
      const labels = upload<GpuBuffer<"i32">>(f?.labels, this.size, "filter.labels");
      const queryLabels = upload<GpuBuffer<"i32">>(f?.queryLabels, q, "filter.queryLabels");
      let minDistance = upload<GpuBuffer<"f32">>(f?.minDistance, q, "filter.minDistance");
      if (!!labels !== !!queryLabels) {
        throw new UserError("search: a label filter needs both filter.labels and filter.queryLabels");
      }
      const { entries, stride } = await this.#entries(
        options.entryPoints ?? (self ? "none" : "nearest"),
        options,
        self ? undefined : queries.rows,
      );
      if (entries !== this.#entryBuf) temps.push(entries);
      const pass = (k: number, use: SearchUse, budget?: number, from = { entries, stride }) => ({
        k,
        budget: budget ?? options.budget ?? searchDefaults(use).budget,
        ef: use === "nearest" ? searchDefaults(use).ef : options.ef ?? searchDefaults(use).ef,
        width: options.width,
        workspace: this.#workspace,
        entries: from.entries,
        entryStride: from.stride,
        self,
        shape: options.shape,
      });
      const twoPasses = f?.minDistanceScale !== undefined && !minDistance;
      const report = (before: number) => (done: number) =>
        options.onProgress?.(before + done, (twoPasses ? 2 : 1) * q);
      if (this.#walkedProjection(options)) {
        // Walk the projection for max(k, rerank) candidates, then keep the k nearest by true distance.
        const rerank = options.rerank ?? searchDefaults(use).rerank;
        const half = await this.#halfWalk();
        using halfQueries = half && !self ? await queries.walk!.toHalf(half.halfScale) : undefined;
        const walkQueries = self ? "self" : halfQueries ?? queries.walk!;
        const walk = await runSearch(half ?? this.walkVectors, this.gpuGraph, walkQueries, {
          ...pass(Math.min(SEARCH_MAX_K, Math.max(k, rerank)), use),
          onProgress: report(0),
        });
        try {
          return await runRerank(this.vectors, outside, walk.indices, {
            k,
            evaluationsInto: walk.evaluations,
          });
        } catch (e) {
          walk.evaluations.destroy();
          throw e;
        } finally {
          [walk.indices, walk.distances, walk.nearestAny, walk.nearestAnyDistance].forEach((b) =>
            b.destroy()
          );
        }
      }
      let first: Pick<SearchOutputs, "nearestAny" | "nearestAnyDistance" | "evaluations"> | undefined;
      if (twoPasses && self && options.nearestBudget === undefined) {
        // A self-search's nearest point is its vertex's first edge (docs/ann-search.md, "eps from the
        // graph"): one evaluation instead of a search pass.
        first = await runNearestEdge(this.vectors, this.gpuGraph);
        report(0)(q);
        minDistance = first.nearestAnyDistance;
      } else if (twoPasses) {
        const nearest = options.nearestBudget ?? searchDefaults("nearest").budget;
        // A self-search's nearest neighbour is among its own vertex's edges: entry points would only spend
        // this pass's small budget far away (all of it, with as many entries as the budget).
        const own = self ? await this.#entries("none", options) : { entries, stride };
        if (own.entries !== entries) temps.push(own.entries);
        const pass1 = await runSearch(this.vectors, this.gpuGraph, outside, {
          ...pass(1, "nearest", nearest, own),
          onProgress: report(0),
        });
        pass1.indices.destroy();
        pass1.distances.destroy();
        first = pass1;
        minDistance = first.nearestAnyDistance;
      }
      try {
        const out = await runSearch(this.vectors, this.gpuGraph, outside, {
          ...pass(k, use),
          labels,
          queryLabels,
          minDistance,
          minDistanceScale: f?.minDistanceScale,
          labelPenalty: f?.labelPenalty,
          evaluationsInto: first?.evaluations,
          onProgress: report(first ? q : 0),
        });
        if (!first) return out;
        // The first pass's nearest point of any label is the better eps (a search for k = 1).
        out.nearestAny.destroy();
        out.nearestAnyDistance.destroy();
        return { ...out, nearestAny: first.nearestAny, nearestAnyDistance: first.nearestAnyDistance };
      } catch (e) {
        if (first) Object.values(first).forEach((b) => b.destroy());
        throw e;
      }
    } finally {
      temps.forEach((t) => t.destroy());
    }
  }

  /**
   * The entry list of a search: the stored buffer, or a new one (the caller frees it); per query (stride
   * 1) for "nearest", whose choice reads `rows`, the outside queries in the space of the graph.
   */
  async #entries(
    mode: NonNullable<SearchOptions["entryPoints"]>,
    options: SearchOptions,
    rows?: GpuBuffer<"f32">,
  ): Promise<{ entries: GpuBuffer<"u32">; stride: number }> {
    const count = options.entryCount ?? 16;
    let list: Uint32Array;
    if (mode === "nearest") {
      if (!rows) {
        throw new UserError(
          'selfSearch: entryPoints "nearest" is for outside queries (a self-search starts at each point)',
        );
      }
      if (!this.#entryRows || rows.rows === 0) return await this.#entries("none", options);
      // All queries in one block: against a few dozen entry rows, each block's passes cost more than its
      // distances (Fashion-MNIST's 10,000 test queries: 80 -> 50 ms on llvmpipe).
      using near = await knnSqL2(rows, this.#entryRows, 1, {}, { queryBlock: rows.rows });
      const pick = await near.indices.read();
      const stored = this.#graph.entries;
      return { entries: GpuBuffer.fromArray(this.gpu, pick.map((i) => stored[i])), stride: 1 };
    }
    if (mode === "none") list = new Uint32Array([NO_VERTEX]);
    else if (mode === "fixed") {
      if (count >= this.#graph.entries.length) return { entries: this.#entryBuf, stride: 0 };
      list = this.#graph.entries.slice(0, count);
    } else if (mode === "sampled") {
      const rng = new Rng(options.seed ?? 1);
      const n = this.size;
      list = n <= count ? Uint32Array.from({ length: n }, (_, i) => i) : Uint32Array.from(
        { length: count },
        () => rng.int(n),
      );
    } else {
      for (const v of mode) {
        if (v >= this.size) throw new UserError(`search: entry point ${v} is outside 0..${this.size - 1}`);
      }
      list = mode.length ? mode : new Uint32Array([NO_VERTEX]);
    }
    return { entries: GpuBuffer.fromArray(this.gpu, list), stride: 0 };
  }

  /** Writes the graph to `path` (format: lib/ann/file.ts). The vectors are not stored. */
  async save(path: string): Promise<void> {
    this.#check();
    await saveGraph(path, this.#graph);
  }

  /** The graph in the `.fanng` file format (lib/ann/file.ts), for storing it anywhere (no file system needed). */
  toBytes(): Uint8Array {
    this.#check();
    return encodeGraph(this.#graph);
  }

  /**
   * What the next {@link refresh} starts from (build order, candidate lists), as bytes for
   * {@link fromGraph}: with the graph, it makes a restored index refresh exactly as this one would.
   */
  async refreshStateBytes(): Promise<Uint8Array> {
    this.#check();
    return await encodeRefreshState(this.#refresh);
  }

  /** Loads a graph saved by {@link save} over `data`, the same [N x D] vectors it was built on. */
  static async load(gpu: Gpu, path: string, data: GpuBuffer<"f32"> | HostMatrix): Promise<FanngIndex> {
    return await FanngIndex.fromGraph(gpu, await loadGraph(path), data, path);
  }

  /**
   * An index over `data` [N x D] with a given graph (decoded from {@link toBytes} output by
   * `decodeGraph`, or built elsewhere); `source` names where the graph came from in error messages.
   * `refreshBytes` ({@link refreshStateBytes} of the index the graph came from) lets the next refresh start
   * from that index's candidate lists; without it, refresh starts from the graph's edges.
   */
  static async fromGraph(
    gpu: Gpu,
    graph: FanngGraph,
    data: GpuBuffer<"f32"> | HostMatrix,
    source = "the graph",
    refreshBytes?: Uint8Array,
  ): Promise<FanngIndex> {
    const problem = graphProblem(graph);
    if (problem) throw new UserError(`${source} is not a valid FANNG graph: ${problem}`);
    const { rows, cols } = data;
    if (asHostMatrix(data)) checkHostMatrix(data, "the vectors given");
    if (rows !== graph.vertexCount || cols !== graph.dims) {
      throw new UserError(
        `${source} holds a graph over ${
          fmtShape([graph.vertexCount, graph.dims])
        } vectors but the data given is ` +
          `${fmtShape([rows, cols])}; pass the vectors the index was built on`,
      );
    }
    // Checked before the vectors are copied, so a damaged state allocates nothing that could leak.
    const refresh = refreshBytes
      ? decodeRefreshState(gpu, refreshBytes, graph.vertexCount, source)
      : refreshState(graph.vertexCount);
    let vectors: VectorBlocks | undefined, walk: VectorBlocks | undefined;
    let entryRows: GpuBuffer<"f32"> | undefined;
    try {
      using uploaded = asHostMatrix(data) ? GpuBuffer.fromArray(gpu, data.data, [rows, cols]) : undefined;
      const x = uploaded ?? (data as GpuBuffer<"f32">);
      vectors = await blocksOf(x);
      using walkRows = graph.projection ? await projectRows(x, graph.projection) : undefined;
      if (walkRows) walk = await blocksOf(walkRows);
      entryRows = await rowsOf(walkRows ?? x, graph.entries);
    } catch (e) {
      vectors?.destroy();
      walk?.destroy();
      refresh[Symbol.dispose]();
      throw e;
    }
    const gpuGraph = GpuGraph.fromPadded(gpu, paddedFromGraph(graph));
    return new FanngIndex(
      gpu,
      vectors,
      walk ?? vectors,
      gpuGraph,
      graph,
      { maxDegree: graph.maxDegree },
      emptyStats(),
      refresh,
      entryRows,
    );
  }

  #check(): void {
    if (this.#disposed) throw new Error("FanngIndex used after dispose");
  }

  /** Frees the GPU memory. */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.vectors.destroy();
    if (this.walkVectors !== this.vectors) this.walkVectors.destroy();
    this.gpuGraph.destroy();
    this.#entryBuf.destroy();
    this.#entryRows?.destroy();
    void this.#dropHalfWalk();
    this.#workspace[Symbol.dispose]();
    this.#refresh[Symbol.dispose]();
  }
}

/** Rows `ids` of `rows` (caller owns them), or undefined for no ids. */
async function rowsOf(rows: GpuBuffer<"f32">, ids: Uint32Array): Promise<GpuBuffer<"f32"> | undefined> {
  if (ids.length === 0) return undefined;
  using idx = GpuBuffer.fromArray(rows.gpu, ids);
  return await gatherRows(rows, idx);
}

/** `rows` [N x D] copied into column blocks (in `like`'s layout, else the adapter's; caller owns them). */
async function blocksOf(rows: GpuBuffer<"f32">, like?: VectorBlocks): Promise<VectorBlocks> {
  const batch = new CommandBatch(rows.gpu, "fanng.blocks");
  const blocks = await VectorBlocks.encodeFrom(batch, rows, like?.layout);
  await batch.submit();
  return blocks;
}

/** Refuses a host matrix whose data is not rows x cols finite values (it would search garbage). */
function checkHostMatrix(m: HostMatrix, what: string): void {
  if (m.data.length !== m.rows * m.cols) {
    throw new ShapeError(
      `${what} claim ${fmtShape([m.rows, m.cols])} but hold ${m.data.length} values; pass rows x cols values`,
    );
  }
  for (let i = 0; i < m.data.length; i++) {
    if (!Number.isFinite(m.data[i])) {
      throw new UserError(
        `${what} have a non-finite value (${m.data[i]}) at row ${Math.floor(i / m.cols)}, column ${
          i % m.cols
        }; ` +
          "FANNG indexes finite vectors only",
      );
    }
  }
}

/** A SearchResult over GPU outputs: reads the evaluations back for their mean and frees them. */
async function withMeanEvaluations(k: number, out: SearchOutputs): Promise<SearchResult> {
  const a = await out.evaluations.read();
  out.evaluations.destroy();
  let s = 0;
  for (const v of a) s += v;
  const { indices, distances, nearestAny, nearestAnyDistance } = out;
  return {
    k,
    indices,
    distances,
    nearestAny,
    nearestAnyDistance,
    evaluations: a.length ? s / a.length : 0,
    [Symbol.dispose]() {
      indices.destroy();
      distances.destroy();
      nearestAny.destroy();
      nearestAnyDistance.destroy();
    },
  };
}
