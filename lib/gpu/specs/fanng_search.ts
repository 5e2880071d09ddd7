/**
 * The interface of kernels/fanng_search.wgsl (batched FANNG graph search, the exact re-ranking of a projected
 * search, and the scoring ceiling; driver lib/ann/search.ts).
 * @module
 */
import { entry, FILTER_FLAGS, kernelSpec, moreFlags, uniformStruct } from "../spec.ts";

const SearchParams = uniformStruct("SearchParams", {
  queries: "u32", // queries in this dispatch
  n: "u32", // base vertices
  w4: "u32", // vec4s per row of a column block
  nblocks: "u32", // column blocks
  budget: "u32", // no iteration starts once this many distances are evaluated
  ef: "u32", // 0: no natural stop; else stop once the closest candidate's key is above the kept-th result's
  entry_count: "u32",
  entry_stride: "u32", // 0: one shared entry list; else entries of query q at q * entry_stride
  has_self: "u32", // 1: query q is base vertex q + self_offset
  self_offset: "u32",
  query_row_offset: "u32", // query q is row q + query_row_offset of the query blocks
  filters: "u32", // SEARCH_FLAGS: F_LABELS, F_RADIUS, F_LABEL_PENALTY
  min_scale: "f32", // the radius is min_scale * qmin[q]
  step_cap: "u32", // iterations per dispatch
  first_round: "u32",
  round: "u32",
  k: "u32", // results written per query
  kept: "u32", // results kept: max(ef, k), or k
  queue_slots: "u32", // candidate queue slots (one per evaluation, and the query's own vertex)
  hash_slots: "u32", // visited-hash slots, a power of two >= 2x the most evaluations
  label_penalty: "f32", // (F_LABEL_PENALTY) queue keys of vertices that fail the label filter are multiplied by it
});

const CeilingParams = uniformStruct("CeilingParams", {
  queries: "u32",
  n: "u32",
  w4: "u32",
  nblocks: "u32",
  steps: "u32", // vertices walked per query
});

const EdgeParams = uniformStruct("EdgeParams", {
  queries: "u32",
  n: "u32",
  w4: "u32",
  nblocks: "u32",
  self_offset: "u32", // query q is base vertex q + self_offset
});

const RerankParams = uniformStruct("RerankParams", {
  queries: "u32",
  n: "u32",
  w4: "u32",
  nblocks: "u32",
  cands: "u32", // candidates per query (the row length of r_cand)
  k: "u32", // results kept per query
  query_row_offset: "u32", // query q is row q + query_row_offset of the query blocks
  cand_start: "u32", // this dispatch scores candidates cand_start .. cand_end - 1 of each query
  cand_end: "u32",
  first: "u32", // 1: the first dispatch, which clears the result rows
});

/** The filters of a search: the shared filter bits (F_LABELS, F_RADIUS) and the label penalty. */
export const SEARCH_FLAGS = moreFlags(FILTER_FLAGS, ["F_LABEL_PENALTY"]);

/** Base column blocks, query column blocks: bindings 1..8 of every entry point. */
const BLOCKS = ["b0", "b1", "b2", "b3", "q0", "q1", "q2", "q3"] as const;
/** The blocks and the graph: bindings 1..10 of the entry points that walk it. */
const GRAPH = [...BLOCKS, "adj", "degrees"] as const;

const SEARCH_IO = [
  ...GRAPH,
  "s_entries",
  "s_labels",
  "s_qlabels",
  "s_qmin",
  "out_idx",
  "out_dist",
  "out_any",
  "out_any_dist",
  "out_evals",
  "s_scratch",
] as const;

/** kernels/fanng_search.wgsl. */
export const FANNG_SEARCH = kernelSpec("fanng_search", {
  flags: SEARCH_FLAGS,
  entries: {
    search: entry({
      uniform: "sp",
      struct: SearchParams,
      bindings: [...SEARCH_IO, "s_hash", "s_active", "s_pending"],
    }),
    search_lane: entry({
      uniform: "sp",
      struct: SearchParams,
      bindings: [...SEARCH_IO, "s_hash_plain", "s_active", "s_pending"],
    }),
    nearest_edge: entry({
      uniform: "ep",
      struct: EdgeParams,
      bindings: [...GRAPH, "e_any", "e_any_dist", "e_evals"],
    }),
    rerank: entry({
      uniform: "rp",
      struct: RerankParams,
      bindings: [...BLOCKS, "r_cand", "r_idx", "r_dist", "r_any", "r_any_dist", "r_evals"],
    }),
    rerank_lane: entry({
      uniform: "rp",
      struct: RerankParams,
      bindings: [...BLOCKS, "r_cand", "r_idx", "r_dist", "r_any", "r_any_dist", "r_evals"],
    }),
    ceiling: entry({ uniform: "cp", struct: CeilingParams, bindings: [...GRAPH, "c_sums", "c_evals"] }),
  },
});
