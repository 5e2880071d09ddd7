/**
 * Exact re-ranking on the GPU (kernels/fanng_search.wgsl `rerank`; reference `rerankRef` in
 * lib/ann/search_ref.ts): each query's candidates, found by a search that walked a projection of the vectors
 * (docs/ann-search.md, "Projected search"), scored in the vectors themselves; the k nearest kept, ascending by
 * (distance, vertex). The distance is the search's, operation for operation, so a re-ranked result carries
 * the distance a search of the vectors would report.
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import type { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import type { Gpu } from "../gpu/device.ts";
import { isGallivm, loopBudget } from "../gpu/rounds.ts";
import { FANNG_SEARCH } from "../gpu/specs/fanng_search.ts";
import { distanceLoopTrips, SEARCH_MAX_K, type SearchOutputs, searchOutputs } from "./search.ts";
import { blockBindings, fullPrecision, registerWidth, type VectorBlocks } from "./vectors.ts";

/**
 * Lanes that score one query's candidates side by side: a warp on hardware adapters; one on llvmpipe, where
 * one query per invocation is faster (kernels/fanng_search.wgsl `rerank_lane`).
 */
function rerankLanes(gpu: Gpu): number {
  return isGallivm(gpu) ? 1 : 32;
}

/** Queries per workgroup of the one-lane kernel. */
const LANE_WG = 64;

/** Options of {@link runRerank}. */
export interface RerankOptions {
  /** Results kept per query (at most the candidates per query). */
  k: number;
  /**
   * Self-search: query i is base row selfStart + i (default: `queries` are outside rows).
   * @default outside rows
   */
  selfStart?: number;
  /**
   * Add the candidates scored to this [Q] buffer (e.g. the walk's evaluations); it becomes the output's.
   * @default a new zeroed buffer
   */
  evaluationsInto?: GpuBuffer<"u32">;
  /**
   * Lanes per query (a power of two); changes the speed, never the results.
   * @default 1 on llvmpipe, 32 elsewhere
   */
  lanes?: number;
  /**
   * Queries per submission (a multiple of 64; tests lower it).
   * @default as many as the binding limit allows
   */
  chunk?: number;
}

/**
 * The k nearest of each query's candidates ([Q x C] ids; NO_VERTEX and out-of-range ids are skipped, the
 * others must be distinct per row) by exact squared distance between the query's row (of `queries`, or of
 * `base` itself for "self") and the candidate's row of `base`. Outputs: caller owns them; `nearestAny` is
 * each query's best result, and `evaluations` counts the candidates scored.
 */
export async function runRerank(
  base: VectorBlocks,
  queries: VectorBlocks | "self",
  candidates: GpuBuffer<"u32">,
  options: RerankOptions,
): Promise<SearchOutputs> {
  const gpu = base.gpu, n = base.rows, k = options.k;
  const self = queries === "self";
  const qv = self ? base : queries;
  fullPrecision(base, "rerank");
  fullPrecision(qv, "rerank");
  const selfStart = options.selfStart ?? 0;
  if (candidates.shape.length !== 2) {
    throw new ShapeError(`rerank: candidates must be a [Q x C] matrix, got ${fmtShape(candidates.shape)}`);
  }
  const q = candidates.rows, cands = candidates.cols;
  if (!self && qv.rows !== q) {
    throw new ShapeError(`rerank: ${qv.rows} queries but candidates for ${q}`);
  }
  if (self && (selfStart < 0 || selfStart + q > n)) {
    throw new ShapeError(`rerank: self rows ${selfStart}..${selfStart + q - 1} outside 0..${n - 1}`);
  }
  if (
    !self &&
    (qv.dims !== base.dims || qv.layout.w4 !== base.layout.w4 || qv.layout.count !== base.layout.count)
  ) {
    throw new ShapeError(`rerank: queries of ${qv.dims} columns do not match the base's ${base.dims}`);
  }
  if (!Number.isInteger(k) || k < 1 || k > Math.min(cands, SEARCH_MAX_K)) {
    throw new UserError(`rerank: k must be an integer in 1..${Math.min(cands, SEARCH_MAX_K)}, got ${k}`);
  }
  if (options.evaluationsInto && options.evaluationsInto.length !== q) {
    throw new ShapeError(
      `rerank: evaluation counts ${fmtShape(options.evaluationsInto.shape)} must have ${q}`,
    );
  }
  const lanes = options.lanes ?? rerankLanes(gpu);
  if (!Number.isInteger(lanes) || lanes < 1 || (lanes & (lanes - 1)) !== 0 || lanes > 256) {
    throw new UserError(`rerank: lanes must be a power of two in 1..256, got ${lanes}`);
  }
  const out = searchOutputs(gpu, q, k, options.evaluationsInto);
  if (q === 0) return out;
  const laneMode = lanes === 1;
  const pipeline = await FANNG_SEARCH.pipeline(gpu, laneMode ? "rerank_lane" : "rerank", {
    T: lanes,
    QW: laneMode ? LANE_WG : 1,
    R: 1,
    P: 1,
    QW4: registerWidth(base),
    HALF: 0,
  });
  // Candidates per dispatch: a tile of `lanes` costs lane 0 a distance's loop trips, the tile loop's own,
  // and `lanes` merges of at most k shifts each (one lane: a distance and a merge per candidate).
  const trips = distanceLoopTrips(base.layout.count, base.layout.w4);
  const tiles = Math.max(1, Math.floor((loopBudget(gpu) - k - 64) / (trips + lanes * (k + 2) + 2)));
  const perDispatch = tiles * lanes;
  // Queries per dispatch: a multiple of 64 (256-byte aligned binding offsets) whose bindings each fit.
  const rowBytes = Math.max(qv.layout.w4 * 16, cands * 4, k * 4);
  let chunk = options.chunk ?? Math.floor(gpu.maxBindingBytes / rowBytes);
  chunk = Math.max(64, chunk - (chunk % 64));
  for (let q0 = 0; q0 < q; q0 += chunk) {
    const c = Math.min(chunk, q - q0);
    const batch = new CommandBatch(gpu, "fanng.rerank");
    for (let c0 = 0; c0 < cands; c0 += perDispatch) {
      batch.run(
        pipeline,
        {
          rp: {
            queries: c,
            n,
            w4: base.layout.w4,
            nblocks: base.layout.count,
            cands,
            k,
            query_row_offset: self ? selfStart + q0 : 0,
            cand_start: c0,
            cand_end: Math.min(cands, c0 + perDispatch),
            first: c0 === 0 ? 1 : 0,
          },
          ...blockBindings(base, qv, self ? undefined : [q0, c]),
          r_cand: candidates.binding(q0 * cands, c * cands),
          r_idx: out.indices.binding(q0 * k, c * k),
          r_dist: out.distances.binding(q0 * k, c * k),
          r_any: out.nearestAny.binding(q0, c),
          r_any_dist: out.nearestAnyDistance.binding(q0, c),
          r_evals: out.evaluations.binding(q0, c),
        },
        grid1d(gpu, laneMode ? Math.ceil(c / LANE_WG) : c),
        "fanng.rerank",
      );
    }
    await batch.submit();
  }
  return out;
}
