/**
 * The batched FANNG graph search on the GPU (kernels/fanng_search.wgsl `search`; semantics and reference in
 * lib/ann/search_ref.ts, design in docs/ann-search.md): a team of lanes per query scores the neighbours of
 * the expanded candidates side by side, with a visited hash, a candidate queue and the results in GPU memory;
 * it stops on the budget, an empty queue or (ef > 0) hnswlib's rule. Label and radius filters choose results
 * only: rejected vertices are still walked through.
 *
 * Also the scoring ceiling (`runCeiling`): the same distance arithmetic walking the graph with nothing else,
 * the rate a search could at best reach on the adapter.
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { type Bindable, CommandBatch, grid1d } from "../gpu/dispatch.ts";
import type { GpuGraph } from "./gpu_graph.ts";
import { isGallivm, loopBudget, runRounds } from "../gpu/rounds.ts";
import { FANNG_SEARCH, SEARCH_FLAGS } from "../gpu/specs/fanng_search.ts";
import { blockBindings, fullPrecision, registerWidth, type VectorBlocks } from "./vectors.ts";

/** Largest k and ef of a FANNG search: the length of a query's sorted result and candidate lists. */
export const SEARCH_MAX_K = 1024;
/** Largest budget (distance evaluations per query). */
export const MAX_BUDGET = 1 << 16;
/** Largest number of candidates expanded per iteration. */
export const MAX_WIDTH = 8;

/** How queries map onto the GPU: `lanes` per query (a team), `queriesPerGroup` teams per workgroup. */
export interface SearchShape {
  /** Lanes (threads) that search one query together. */
  lanes: number;
  /** Queries per workgroup. */
  queriesPerGroup: number;
}

/** Parameters of one batched search. */
export interface SearchKernelOptions {
  k: number;
  /** No iteration starts once this many distances are evaluated (the last may pass it by width * R - 1). */
  budget: number;
  /** hnswlib's ef: stop once the closest candidate is farther than the max(ef, k)-th result (0 = off). */
  ef?: number;
  /** Candidates expanded per iteration (default 1). */
  width?: number;
  /** Entry vertices: [E] shared by all queries (`entryStride` 0) or [Q x entryStride]. */
  entries: GpuBuffer<"u32">;
  entryStride: number;
  /**
   * Self-search: the queries are base vertices selfStart .. selfStart + selfCount - 1 (default all); each
   * starts the search at its own vertex (distance 0) and is never its own result.
   */
  self?: boolean;
  selfStart?: number;
  selfCount?: number;
  labels?: GpuBuffer<"i32">;
  queryLabels?: GpuBuffer<"i32">;
  minDistance?: GpuBuffer<"f32">;
  minDistanceScale?: number;
  /**
   * With `labels`: the queue key of a vertex that fails the label filter is multiplied by this (default 1,
   * the walk ignores labels; +Infinity: such vertices never join the queue, an in-filter walk).
   */
  labelPenalty?: number;
  /** Team shape (default: {@link defaultSearchShape}); it changes the speed, never the results. */
  shape?: SearchShape;
  /** Queries per dispatch (a multiple of 64; default chosen from the binding and memory limits). */
  chunk?: number;
  /** Iterations per query per dispatch (default: from the adapter's loop budget; tests lower it). */
  stepCap?: number;
  /** Called as queries finish (after each submission of rounds) with the number done so far. */
  onProgress?: (done: number) => void;
  /** Add the evaluations to this [Q] buffer (e.g. a first pass's) instead of a new one; it becomes the output's. */
  evaluationsInto?: GpuBuffer<"u32">;
  /** GPU memory to reuse for the scratch lists, hash and pending queries (default: allocated per call). */
  workspace?: SearchWorkspace;
}

/**
 * GPU memory that searches reuse (scratch lists, visited hash, pending queries), grown to the largest
 * chunk asked for and kept until disposed. Fresh buffers cost a search the zero-filling and page faults of
 * up to 128 MiB on CPU adapters, about a tenth of mining's negative search on llvmpipe.
 */
export class SearchWorkspace implements Disposable {
  readonly #buffers = new Map<string, GpuBuffer<"u32">>();

  constructor(readonly gpu: Gpu) {}

  /** A buffer of at least `length` u32 for `part` (contents undefined). */
  take(part: "scratch" | "hash" | "pending", length: number): GpuBuffer<"u32"> {
    const held = this.#buffers.get(part);
    if (held && held.length >= length) return held;
    held?.destroy();
    const b = GpuBuffer.zeros(this.gpu, "u32", [Math.max(1, length)], `fanng search ${part}`);
    this.#buffers.set(part, b);
    return b;
  }

  /** Frees the buffers (a later search allocates again). */
  [Symbol.dispose](): void {
    this.#buffers.forEach((b) => b.destroy());
    this.#buffers.clear();
  }
}

/** GPU outputs of {@link runSearch} (caller owns them). */
export interface SearchOutputs {
  /** [Q x k] result vertices, ascending by distance; NO_VERTEX where fewer qualified. */
  indices: GpuBuffer<"u32">;
  /** [Q x k] squared distances; +Inf where missing. */
  distances: GpuBuffer<"f32">;
  /** [Q] nearest vertex of any label found (for eps_a). */
  nearestAny: GpuBuffer<"u32">;
  /** [Q] its squared distance. */
  nearestAnyDistance: GpuBuffer<"f32">;
  /** [Q] distance evaluations per query. */
  evaluations: GpuBuffer<"u32">;
}

/** Zeroed outputs for q queries and k results (`evaluationsInto`, when given, is used as the evaluations). */
export function searchOutputs(
  gpu: Gpu,
  q: number,
  k: number,
  evaluationsInto?: GpuBuffer<"u32">,
): SearchOutputs {
  return {
    indices: GpuBuffer.zeros(gpu, "u32", [q, k], "fanng indices"),
    distances: GpuBuffer.zeros(gpu, "f32", [q, k], "fanng distances"),
    nearestAny: GpuBuffer.zeros(gpu, "u32", [q], "fanng nearest any"),
    nearestAnyDistance: GpuBuffer.zeros(gpu, "f32", [q], "fanng nearest any distance"),
    evaluations: evaluationsInto ?? GpuBuffer.zeros(gpu, "u32", [q], "fanng evaluations"),
  };
}

function nextPow2(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

const log2ceil = (x: number) => Math.ceil(Math.log2(Math.max(2, x)));

/** Per-query memory of a search: queue slots, results kept, hash slots, scratch words. */
export interface SearchMemory {
  /** Source slots per iteration (width x R). */
  slots: number;
  /** Most distances one query evaluates. */
  maxEvaluations: number;
  /** Candidate queue slots (every evaluated vertex plus the query's own fits). */
  queue: number;
  /** Results kept (max(ef, k), or k). */
  kept: number;
  /** Visited-hash slots: a power of two >= 2x the evaluations (load <= 1/2: short probe runs, never full). */
  hash: number;
  /** Scratch words per query. */
  scratch: number;
}

/** The per-query memory for a budget, k, ef, width and maximum degree R. */
export function searchMemory(budget: number, k: number, ef: number, width: number, r: number): SearchMemory {
  const slots = width * r;
  const maxEvaluations = budget > 0 ? budget - 1 + slots : 0;
  const queue = nextPow2(maxEvaluations + 1);
  const kept = ef > 0 ? Math.max(ef, k) : k;
  const hash = Math.max(16, nextPow2(2 * (maxEvaluations + 1)));
  return { slots, maxEvaluations, queue, kept, hash, scratch: 2 * queue + 2 * kept + width + slots + 8 };
}

/** Checks search parameters; throws a UserError saying which one is out of range. */
export function checkSearchParams(k: number, budget: number, ef = 0, width = 1): void {
  if (!Number.isInteger(k) || k < 1 || k > SEARCH_MAX_K) {
    throw new UserError(`search: k must be an integer in 1..${SEARCH_MAX_K}, got ${k}`);
  }
  if (!Number.isInteger(budget) || budget < 0 || budget > MAX_BUDGET) {
    throw new UserError(`search: budget must be an integer in 0..${MAX_BUDGET}, got ${budget}`);
  }
  if (!Number.isInteger(ef) || ef < 0 || ef > SEARCH_MAX_K) {
    throw new UserError(
      `search: ef must be 0 (no natural stop) or an integer in 1..${SEARCH_MAX_K}, got ${ef}`,
    );
  }
  if (!Number.isInteger(width) || width < 1 || width > MAX_WIDTH) {
    throw new UserError(`search: width must be an integer in 1..${MAX_WIDTH}, got ${width}`);
  }
}

/**
 * The team shape for an adapter: on hardware a team of 32 lanes per query (the neighbours of a vertex scored
 * at once), two queries per workgroup; on llvmpipe the shape measured fastest there (docs/ann-search.md).
 */
export function defaultSearchShape(gpu: Gpu): SearchShape {
  return isGallivm(gpu) ? { lanes: 1, queriesPerGroup: 8 } : { lanes: 32, queriesPerGroup: 2 };
}

function checkShape(gpu: Gpu, shape: SearchShape, slots: number): void {
  const { lanes, queriesPerGroup } = shape;
  const pow2 = (x: number) => Number.isInteger(x) && x >= 1 && (x & (x - 1)) === 0;
  if (!pow2(lanes) || !pow2(queriesPerGroup) || queriesPerGroup > 64) {
    throw new UserError(
      `search: shape lanes (${lanes}) and queriesPerGroup (${queriesPerGroup}, at most 64) must be powers of two`,
    );
  }
  const limits = gpu.report.limits;
  if (lanes * queriesPerGroup > limits.maxComputeInvocationsPerWorkgroup) {
    throw new UserError(
      `search: a workgroup of ${lanes} x ${queriesPerGroup} invocations is over this adapter's ` +
        `${limits.maxComputeInvocationsPerWorkgroup}`,
    );
  }
  const shared = queriesPerGroup * (3 + 8 + 8 * slots) + 4;
  if (shared > limits.maxComputeWorkgroupStorageSize) {
    throw new UserError(
      `search: ${queriesPerGroup} queries per workgroup need ${shared} bytes of workgroup memory, over this ` +
        `adapter's ${limits.maxComputeWorkgroupStorageSize}; use fewer queries per workgroup or a lower width`,
    );
  }
}

/** Loop trips of one distance over `blocks` blocks of `w4` vec4 (4 per trip, plus the block loop). */
export function distanceLoopTrips(blocks: number, w4: number): number {
  return blocks * (Math.floor(w4 / 4) + (w4 % 4) + 1);
}

/**
 * Bindings 1..10 of every fanng_search entry point: the base's column blocks, the queries' (rows
 * `rows[0]` .. + `rows[1]` of them, or all), the graph.
 */
function graphBindings(base: VectorBlocks, queries: VectorBlocks, graph: GpuGraph, rows?: [number, number]) {
  return { ...blockBindings(base, queries, rows), adj: graph.adjacency, degrees: graph.degrees };
}

/**
 * Probe-loop trips counted per hash visit: at load <= 1/2 a probe run averages under 3 slots, so the
 * iteration's total (its slots x 64) is never approached.
 */
const PROBE_ALLOWANCE = 64;

/**
 * Iterations per dispatch that keep every SIMD group under the adapter's loop budget: each loop counted at
 * its worst case per lane (a SIMD group takes the most trips of its lanes in each loop).
 */
function iterationsPerDispatch(
  gpu: Gpu,
  shape: SearchShape,
  mem: SearchMemory,
  r: number,
  k: number,
  trips: number,
): number {
  const width = mem.slots / r;
  // A pop of the 4-ary queue: at most log4(queue) + 1 levels of 1 + 3 loop trips.
  const popTrips = 2 * log2ceil(mem.queue) + 4;
  const perIteration = 2 + shape.queriesPerGroup + width * (popTrips + 3) +
    Math.ceil(mem.slots / shape.lanes) * (2 + PROBE_ALLOWANCE + trips) +
    mem.slots * (3 + log2ceil(mem.queue) + log2ceil(mem.kept));
  const reserve = 64 + PROBE_ALLOWANCE + popTrips + mem.kept * (log2ceil(mem.kept) + 2) + k;
  return Math.max(1, Math.floor((loopBudget(gpu) - reserve) / perIteration));
}

/** Iterations per round of the one-query-per-lane shape (measured on llvmpipe, docs/ann-search.md). */
const LANE_ROUND_ITERATIONS = 12;

/** Bytes of GPU scratch a chunk of queries may use (scratch lists and hash together). */
const CHUNK_MEMORY = 128 * 2 ** 20;

/**
 * Searches `queries` (or the base itself with `self`) on the GPU; submits its own work, in rounds (see
 * lib/gpu/rounds.ts). Returns the outputs (caller owns them).
 */
export async function runSearch(
  base: VectorBlocks,
  graph: GpuGraph,
  queries: VectorBlocks | "self",
  options: SearchKernelOptions,
): Promise<SearchOutputs> {
  const gpu = base.gpu;
  const self = queries === "self";
  const qv = self ? base : queries;
  const selfStart = self ? options.selfStart ?? 0 : 0;
  const q = self ? options.selfCount ?? base.rows - selfStart : qv.rows, n = base.rows, k = options.k;
  const ef = options.ef ?? 0, width = options.width ?? 1;
  if (self && (selfStart < 0 || selfStart + q > n)) {
    throw new ShapeError(
      `search: self-search of vertices ${selfStart}..${selfStart + q - 1} outside 0..${n - 1}`,
    );
  }
  if (graph.vertexCount !== n) {
    throw new ShapeError(`search: graph of ${graph.vertexCount} vertices over ${n} vectors`);
  }
  if (
    !self &&
    (qv.dims !== base.dims || qv.layout.w4 !== base.layout.w4 || qv.layout.count !== base.layout.count)
  ) {
    throw new ShapeError(
      `search: queries ${fmtShape([q, qv.dims])} do not match the base ${fmtShape([n, base.dims])}`,
    );
  }
  const penalty = options.labelPenalty ?? 1;
  if (!(penalty >= 1)) {
    throw new UserError(`search: labelPenalty must be a number >= 1 (or Infinity), got ${penalty}`);
  }
  const stride = options.entryStride;
  const entryCount = stride > 0 ? stride : options.entries.length;
  if (stride > 0 && options.entries.length !== q * stride) {
    throw new ShapeError(
      `search: per-query entries ${fmtShape(options.entries.shape)} must be [${q} x ${stride}]`,
    );
  }
  checkSearchParams(k, options.budget, ef, width);
  const perQuery = (b: GpuBuffer | undefined, what: string) => {
    if (b && b.length !== q) {
      throw new ShapeError(`search: ${what} ${fmtShape(b.shape)} must have ${q} entries`);
    }
  };
  perQuery(options.queryLabels, "query labels");
  perQuery(options.minDistance, "minimum distances");
  perQuery(options.evaluationsInto, "evaluation counts");
  if (options.labels && options.labels.length !== n) {
    throw new ShapeError(`search: labels ${fmtShape(options.labels.shape)} must have ${n} entries`);
  }
  if (!!options.labels !== !!options.queryLabels) {
    throw new UserError("search: a label filter needs both labels (of the base) and queryLabels");
  }
  const useLabels = !!options.labels;
  const half = base.halfScale > 0;
  if (half && (qv.halfScale !== base.halfScale || registerWidth(base) === 0)) {
    throw new ShapeError(
      `search: half vectors need queries in halves of the same scale (${qv.halfScale} vs ${base.halfScale}) ` +
        `and rows of at most 256 values`,
    );
  }
  const r = graph.maxDegree;
  const mem = searchMemory(options.budget, k, ef, width, r);
  const shape = options.shape ?? defaultSearchShape(gpu);
  checkShape(gpu, shape, mem.slots);
  const out = searchOutputs(gpu, q, k, options.evaluationsInto);
  if (q === 0) return out;
  const lane = shape.lanes === 1;
  const pipeline = await FANNG_SEARCH.pipeline(gpu, lane ? "search_lane" : "search", {
    T: shape.lanes,
    QW: shape.queriesPerGroup,
    R: r,
    P: width,
    QW4: registerWidth(base),
    HALF: half ? 1 : 0,
  });
  const trips = distanceLoopTrips(base.layout.count, base.layout.w4);
  // One query per lane: short rounds, so that each round's unfinished queries are packed into full SIMD
  // vectors again (lanes whose query ended idle for at most a round).
  const cap = iterationsPerDispatch(gpu, shape, mem, r, k, trips);
  const stepCap = options.stepCap ?? (shape.lanes === 1 ? Math.min(cap, LANE_ROUND_ITERATIONS) : cap);
  // Queries per dispatch: a multiple of 64 (keeps every per-query binding offset 256-byte aligned) whose
  // bindings each fit the binding limit and whose scratch fits CHUNK_MEMORY.
  const rowBytes = Math.max(qv.layout.w4 * 16, k * 4, Math.max(1, stride) * 4, mem.scratch * 4, mem.hash * 4);
  let chunk = options.chunk ??
    Math.min(
      16384,
      Math.floor(gpu.maxBindingBytes / rowBytes),
      Math.floor(CHUNK_MEMORY / ((mem.scratch + mem.hash) * 4)),
    );
  chunk = Math.max(64, chunk - (chunk % 64));
  const rows = Math.min(chunk, q);
  // Scratch and pending are written before they are read; the hash is cleared per chunk.
  using own = options.workspace ? undefined : new SearchWorkspace(gpu);
  const ws = options.workspace ?? own!;
  const scratch = ws.take("scratch", rows * mem.scratch).binding(0, rows * mem.scratch);
  const hash = ws.take("hash", rows * mem.hash);
  const pending = ws.take("pending", 2 * rows).binding(0, 2 * rows);
  const hashBinding = hash.binding(0, rows * mem.hash);
  using dummyI = GpuBuffer.zeros(gpu, "i32", [4]);
  using dummyF = GpuBuffer.zeros(gpu, "f32", [4]);
  const { F_LABELS, F_RADIUS, F_LABEL_PENALTY } = SEARCH_FLAGS;
  const filterBits = (useLabels ? F_LABELS : 0) | (options.minDistance ? F_RADIUS : 0) |
    (useLabels && penalty !== 1 ? F_LABEL_PENALTY : 0);
  // Rounds per submission: enough for the whole search when each iteration evaluates a few vertices.
  const perSubmit = Math.max(1, Math.ceil((options.budget + entryCount) / 4 / stepCap));
  for (let q0 = 0; q0 < q; q0 += chunk) {
    const c = Math.min(chunk, q - q0);
    const slice = (b: GpuBuffer | undefined, per: number, dummy: GpuBuffer): Bindable =>
      b ? b.binding(q0 * per, c * per) : dummy;
    const io = {
      ...graphBindings(base, self ? base : qv, graph, self ? undefined : [q0, c]),
      s_entries: stride > 0 ? options.entries.binding(q0 * stride, c * stride) : options.entries,
      s_labels: options.labels ?? dummyI,
      s_qlabels: slice(options.queryLabels, 1, dummyI),
      s_qmin: slice(options.minDistance, 1, dummyF),
      out_idx: out.indices.binding(q0 * k, c * k),
      out_dist: out.distances.binding(q0 * k, c * k),
      out_any: out.nearestAny.binding(q0, c),
      out_any_dist: out.nearestAnyDistance.binding(q0, c),
      out_evals: out.evaluations.binding(q0, c),
      s_scratch: scratch,
      s_pending: pending,
    };
    await runRounds(gpu, "fanng.search", (batch, round, active) => {
      if (round === 0) batch.encoder.clearBuffer(hash.buffer, 0, c * mem.hash * 4);
      const sp = {
        queries: c,
        n,
        w4: base.layout.w4,
        nblocks: base.layout.count,
        budget: options.budget,
        ef,
        entry_count: entryCount,
        entry_stride: stride,
        has_self: self ? 1 : 0,
        self_offset: selfStart + q0,
        query_row_offset: self ? selfStart + q0 : 0,
        filters: filterBits,
        min_scale: options.minDistanceScale ?? 1,
        step_cap: stepCap,
        first_round: round === 0 ? 1 : 0,
        round,
        k,
        kept: mem.kept,
        queue_slots: mem.queue,
        hash_slots: mem.hash,
        label_penalty: penalty,
      };
      const workgroups = grid1d(gpu, Math.ceil(c / shape.queriesPerGroup));
      if (pipeline.entryPoint === "search_lane") {
        batch.run(
          pipeline,
          { sp, ...io, s_hash_plain: hashBinding, s_active: active },
          workgroups,
          "fanng.search",
        );
      } else {
        batch.run(pipeline, { sp, ...io, s_hash: hashBinding, s_active: active }, workgroups, "fanng.search");
      }
      return Promise.resolve();
    }, { perSubmit, maxRounds: 1 << 20, onSubmitted: (left) => options.onProgress?.(q0 + c - left) });
  }
  return out;
}

/** Queries per workgroup of {@link runNearestEdge} (one per invocation). */
const EDGE_WG = 64;

/**
 * Each self-search query's nearest point as the graph knows it (kernels/fanng_search.wgsl `nearest_edge`):
 * vertex v = selfStart + i (i < selfCount, default all), its first edge (edges are sorted by length and the
 * occlusion rule always keeps the nearest candidate) and the squared distance to it, in the search's
 * arithmetic; NO_VERTEX / +Inf for a vertex without edges. What a search's first pass would find after
 * expanding v, at one evaluation per query (counted in `evaluations`). Outputs: caller owns them.
 */
export async function runNearestEdge(
  base: VectorBlocks,
  graph: GpuGraph,
  options: { selfStart?: number; selfCount?: number } = {},
): Promise<Pick<SearchOutputs, "nearestAny" | "nearestAnyDistance" | "evaluations">> {
  const gpu = base.gpu, n = base.rows;
  const start = options.selfStart ?? 0, q = options.selfCount ?? n - start;
  if (start < 0 || q < 0 || start + q > n) {
    throw new ShapeError(`nearest edge: vertices ${start}..${start + q - 1} outside 0..${n - 1}`);
  }
  if (graph.vertexCount !== n) {
    throw new ShapeError(`nearest edge: graph of ${graph.vertexCount} vertices over ${n} vectors`);
  }
  fullPrecision(base, "nearest edge");
  const out = {
    nearestAny: GpuBuffer.zeros(gpu, "u32", [q], "fanng nearest edge"),
    nearestAnyDistance: GpuBuffer.zeros(gpu, "f32", [q], "fanng nearest edge distance"),
    evaluations: GpuBuffer.zeros(gpu, "u32", [q], "fanng evaluations"),
  };
  if (q === 0) return out;
  const pipeline = await FANNG_SEARCH.pipeline(gpu, "nearest_edge", {
    T: 1,
    QW: EDGE_WG,
    R: graph.maxDegree,
    P: 1,
    QW4: registerWidth(base),
    HALF: 0,
  });
  const batch = new CommandBatch(gpu, "fanng.nearest_edge");
  batch.run(
    pipeline,
    {
      ep: { queries: q, n, w4: base.layout.w4, nblocks: base.layout.count, self_offset: start },
      ...graphBindings(base, base, graph),
      e_any: out.nearestAny,
      e_any_dist: out.nearestAnyDistance,
      e_evals: out.evaluations,
    },
    grid1d(gpu, Math.ceil(q / EDGE_WG)),
    "fanng.nearest_edge",
  );
  await batch.submit();
  return out;
}

/** Options of {@link runCeiling}. */
export interface CeilingOptions {
  /** Vertices walked per query (each scores all its neighbours); capped by the adapter's loop budget. */
  steps: number;
  shape?: SearchShape;
}

/** Outputs of {@link runCeiling} (caller owns them). */
export interface CeilingOutputs {
  /** [queries x lanes]: each lane's f32 running sum of the distances it computed. */
  sums: GpuBuffer<"f32">;
  /** [queries]: distances computed per query. */
  evaluations: GpuBuffer<"u32">;
  /** Steps walked per query (options.steps, or fewer where the loop budget demands it). */
  steps: number;
}

/**
 * The scoring ceiling: query row q walks `steps` vertices of the graph from vertex q mod N (next: edge
 * step mod degree; stops at a vertex without edges), scoring each vertex's neighbours against itself and
 * doing nothing else. Its rate (distances per second) bounds what a search over the same graph can reach.
 */
export async function runCeiling(
  base: VectorBlocks,
  graph: GpuGraph,
  queries: VectorBlocks,
  options: CeilingOptions,
): Promise<CeilingOutputs> {
  const gpu = base.gpu;
  const shape = options.shape ?? defaultSearchShape(gpu);
  checkShape(gpu, shape, 1);
  if (
    queries.dims !== base.dims || queries.layout.w4 !== base.layout.w4 ||
    queries.layout.count !== base.layout.count
  ) {
    throw new ShapeError(`ceiling: queries of ${queries.dims} columns do not match the base's ${base.dims}`);
  }
  fullPrecision(base, "ceiling");
  const r = graph.maxDegree, q = queries.rows;
  const trips = distanceLoopTrips(base.layout.count, base.layout.w4);
  const steps = Math.min(
    options.steps,
    Math.floor(loopBudget(gpu) / (2 + Math.ceil(r / shape.lanes) * (1 + trips))),
  );
  const pipeline = await FANNG_SEARCH.pipeline(gpu, "ceiling", {
    T: shape.lanes,
    QW: shape.queriesPerGroup,
    R: r,
    P: 1,
    QW4: registerWidth(base),
    HALF: 0,
  });
  const sums = GpuBuffer.zeros(gpu, "f32", [q, shape.lanes], "fanng ceiling sums");
  const evaluations = GpuBuffer.zeros(gpu, "u32", [q], "fanng ceiling evaluations");
  if (q === 0) return { sums, evaluations, steps };
  const batch = new CommandBatch(gpu, "fanng.ceiling");
  batch.run(
    pipeline,
    {
      cp: { queries: q, n: base.rows, w4: base.layout.w4, nblocks: base.layout.count, steps },
      ...graphBindings(base, queries, graph),
      c_sums: sums,
      c_evals: evaluations,
    },
    grid1d(gpu, Math.ceil(q / shape.queriesPerGroup)),
    "fanng.ceiling",
  );
  await batch.submit();
  return { sums, evaluations, steps };
}
