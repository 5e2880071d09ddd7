/**
 * Batched FANNG search on the GPU (kernels/fanng.wgsl `search`): one query per invocation, every query of
 * a chunk at once (chunks fit the adapter's bindings), resumed in rounds of bounded work (lib/ann/rounds.ts).
 * Semantics: lib/ann/search_ref.ts.
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import { type Bindable, grid1d } from "../gpu/dispatch.ts";
import type { GpuGraph } from "./gpu_graph.ts";
import { distanceTrips, loopBudget, runRounds } from "./rounds.ts";
import type { VectorBlocks } from "./vectors.ts";

/** Largest visited-set size (slots); bounds the budget at about half of it. */
export const MAX_HASH_SLOTS = 1 << 13;
/** Largest k the kernel accepts. */
export const MAX_K = 1024;

/** Parameters of one batched search. */
export interface SearchKernelOptions {
  k: number;
  /** Distance evaluations per query. */
  budget: number;
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
  /** Early stop: 0 (off) or > 0, see {@link SearchOptions.stopRatio}. */
  stopRatio?: number;
  /** Queries per dispatch (a multiple of 64; default chosen from the binding limit). */
  chunk?: number;
  /** Steps per query per dispatch (default: from the adapter's loop budget; tests lower it). */
  stepCap?: number;
  /** Called after each chunk of queries with the number done. */
  onProgress?: (done: number) => void;
}

/** GPU outputs of {@link encodeSearch} (caller owns them). */
export interface SearchOutputs {
  indices: GpuBuffer<"u32">;
  distances: GpuBuffer<"f32">;
  nearestAny: GpuBuffer<"u32">;
  nearestAnyDistance: GpuBuffer<"f32">;
  evaluations: GpuBuffer<"u32">;
}

const WG = 64;

function nextPow2(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

/** Heap slots for a budget and entry count: every evaluated vertex is pushed at most once (power of two). */
export function heapSlots(budget: number, entryCount: number): number {
  return Math.max(8, nextPow2(budget + entryCount + 2));
}

/** Visited-set slots (load factor at most 1/2, so it never fills). */
export function hashSlots(budget: number, entryCount: number): number {
  return 2 * heapSlots(budget, entryCount);
}

/** Largest budget allowed with `entryCount` entry points. */
export function maxBudget(entryCount: number): number {
  return MAX_HASH_SLOTS / 2 - entryCount - 2;
}

/** Checks search parameters; throws a UserError saying which one is out of range. */
export function checkSearchParams(k: number, budget: number, entryCount: number, stopRatio = 0): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw new UserError(`search: k must be an integer in 1..${MAX_K}, got ${k}`);
  }
  if (!Number.isInteger(budget) || budget < 0 || budget > maxBudget(entryCount)) {
    throw new UserError(
      `search: budget must be an integer in 0..${maxBudget(entryCount)} (with ${entryCount} entry points), ` +
        `got ${budget}`,
    );
  }
  if (!Number.isFinite(stopRatio) || stopRatio < 0) {
    throw new UserError(`search: stopRatio must be 0 (no early stop) or a positive number, got ${stopRatio}`);
  }
}

/**
 * Searches `queries` (or the base itself with `self`) on the GPU; submits its own work, in rounds (see
 * lib/ann/rounds.ts). Returns the outputs (caller owns them).
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
  const stride = options.entryStride;
  const entryCount = stride > 0 ? stride : options.entries.length;
  if (stride > 0 && options.entries.length !== q * stride) {
    throw new ShapeError(
      `search: per-query entries ${fmtShape(options.entries.shape)} must be [${q} x ${stride}]`,
    );
  }
  checkSearchParams(k, options.budget, entryCount, options.stopRatio);
  const perQuery = (b: GpuBuffer | undefined, what: string) => {
    if (b && b.length !== q) {
      throw new ShapeError(`search: ${what} ${fmtShape(b.shape)} must have ${q} entries`);
    }
  };
  perQuery(options.queryLabels, "query labels");
  perQuery(options.minDistance, "minimum distances");
  if (options.labels && options.labels.length !== n) {
    throw new ShapeError(`search: labels ${fmtShape(options.labels.shape)} must have ${n} entries`);
  }
  const useLabels = !!(options.labels && options.queryLabels);
  if (!!options.labels !== !!options.queryLabels) {
    throw new UserError("search: a label filter needs both labels (of the base) and queryLabels");
  }
  const out: SearchOutputs = {
    indices: GpuBuffer.zeros(gpu, "u32", [q, k], "fanng indices"),
    distances: GpuBuffer.zeros(gpu, "f32", [q, k], "fanng distances"),
    nearestAny: GpuBuffer.zeros(gpu, "u32", [q], "fanng nearest any"),
    nearestAnyDistance: GpuBuffer.zeros(gpu, "f32", [q], "fanng nearest any distance"),
    evaluations: GpuBuffer.zeros(gpu, "u32", [q], "fanng evaluations"),
  };
  const heap = heapSlots(options.budget, entryCount), hash = hashSlots(options.budget, entryCount);
  const pipeline = await gpu.pipelines.get("fanng", "search", {
    WG,
    R: graph.maxDegree,
    C: 1,
    Q: heap,
    K: k,
    H: hash,
  });
  // Steps per query per dispatch (see lib/ann/rounds.ts): a step's loop trips are at most one distance, a
  // few hash probes, a heap sift each way and a results shift; the first round also clears the hash.
  const trips = distanceTrips(base.layout.count, base.layout.w4);
  const perStep = 8 + trips + 2 * Math.ceil(Math.log2(heap)) + k;
  const stepCap = options.stepCap ?? Math.max(1, Math.floor((loopBudget(gpu) - hash - 2 * k - 64) / perStep));
  // Queries per dispatch: a multiple of 64 (keeps every per-query binding offset 256-byte aligned) whose
  // bindings, the scratch lists included, each fit the adapter's binding limit.
  const scratchWords = 3 * heap + hash + 2 * k + 8;
  const rowBytes = Math.max(qv.layout.w4 * 16, k * 4, Math.max(1, stride) * 4, scratchWords * 4);
  let chunk = options.chunk ?? Math.min(16384, Math.floor(gpu.maxBindingBytes / rowBytes));
  chunk = Math.max(64, chunk - (chunk % 64));
  using scratch = GpuBuffer.zeros(
    gpu,
    "u32",
    [Math.min(chunk, Math.max(1, q)) * scratchWords],
    "fanng scratch",
  );
  using dummyI = GpuBuffer.zeros(gpu, "i32", [4]);
  using dummyF = GpuBuffer.zeros(gpu, "f32", [4]);
  const filterBits = (useLabels ? 1 : 0) | (options.minDistance ? 2 : 0);
  // Rounds per submission: enough for the budget when about half the steps evaluate.
  const perSubmit = Math.max(1, Math.ceil((2 * (options.budget + entryCount)) / stepCap));
  for (let q0 = 0; q0 < q; q0 += chunk) {
    const c = Math.min(chunk, q - q0);
    const slice = (b: GpuBuffer | undefined, per: number, dummy: GpuBuffer): Bindable =>
      b ? b.binding(q0 * per, c * per) : dummy;
    const bindings: Bindable[] = [
      ...base.bindings(),
      ...(self ? base.bindings() : qv.bindings(q0, c)),
      graph.adjacency,
      graph.degrees,
      stride > 0 ? options.entries.binding(q0 * stride, c * stride) : options.entries,
      options.labels ?? dummyI,
      slice(options.queryLabels, 1, dummyI),
      slice(options.minDistance, 1, dummyF),
      out.indices.binding(q0 * k, c * k),
      out.distances.binding(q0 * k, c * k),
      out.nearestAny.binding(q0, c),
      out.nearestAnyDistance.binding(q0, c),
      out.evaluations.binding(q0, c),
      scratch,
    ];
    await runRounds(gpu, "fanng.search", (batch, round, active) => {
      const params = batch.uniform([
        c,
        n,
        base.layout.w4,
        base.layout.count,
        options.budget,
        entryCount,
        stride,
        self ? 1 : 0,
        selfStart + q0,
        self ? selfStart + q0 : 0,
        filterBits,
        { f32: options.minDistanceScale ?? 1 },
        stepCap,
        round === 0 ? 1 : 0,
        round,
        { f32: options.stopRatio ?? 0 },
      ]);
      batch.dispatch(pipeline, [params, ...bindings, active], grid1d(gpu, Math.ceil(c / WG)), "fanng.search");
      return Promise.resolve();
    }, { perSubmit, maxRounds: 65536 });
    options.onProgress?.(q0 + c);
  }
  return out;
}
