/**
 * The interface of kernels/fanng.wgsl (the FANNG graph build: occlusion pruning, greedy walks, the kNN lists;
 * drivers lib/ann/prune.ts, lib/ann/traverse_add.ts, lib/ann/knn_graph.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const PruneParams = uniformStruct("PruneParams", {
  n: "u32",
  count: "u32",
  v0: "u32",
  w4: "u32",
  nblocks: "u32",
  extra_slots: "u32",
  merge: "u32",
  only_with_extra: "u32",
  extra_row0: "u32",
  check_cap: "u32",
  round: "u32",
  presorted: "u32",
  alpha2: "f32", // occlusion scale: u occludes c when alpha2 * d(u,c) < d(v,c) (1: FANNG's rule)
});

const MergeParams = uniformStruct("MergeParams", {
  n: "u32",
  count: "u32", // query rows of the block: vertices q0 .. q0 + count - 1
  q0: "u32",
  row0: "u32", // list row 0 of the bound list range is vertex row0
  w4: "u32",
  nblocks: "u32",
  width: "u32", // list length L
  cols: "u32", // result columns (row stride of m_res)
  j0: "u32", // result columns j0 .. j1 - 1 in this dispatch
  j1: "u32",
  base_rows: "u32", // rows of the block's base (its map)
});

const JoinParams = uniformStruct("JoinParams", {
  n: "u32",
  count: "u32", // vertices v0 .. v0 + count - 1
  v0: "u32",
  w4: "u32",
  nblocks: "u32",
  width: "u32", // list length L
  fwd: "u32", // forward hubs S (<= L)
  rev_width: "u32", // reverse hubs SR
  per_hub: "u32", // head entries S2 read from each hub
  rev_offer: "u32", // reverse entries of each hub offered too (<= rev_width)
  hub0: "u32", // hubs hub0 .. hub1 - 1 in this dispatch (forward first, then reverse)
  hub1: "u32",
  first: "u32", // 1: clear the NEW flags of the row first
});

const HeadParams = uniformStruct("HeadParams", {
  count: "u32", // rows of the bound range
  width: "u32",
  cols: "u32", // head columns copied
  strip: "u32", // 1: clear the NEW flags
});

const GreedyParams = uniformStruct("GreedyParams", {
  pairs: "u32",
  n: "u32",
  w4: "u32",
  nblocks: "u32",
  max_hops: "u32",
  first: "u32",
  round: "u32",
});

/** Base and query column blocks: bindings 1..8 of the entry points that compute distances. */
const BLOCKS = ["b0", "b1", "b2", "b3", "q0", "q1", "q2", "q3"] as const;

/** kernels/fanng.wgsl. */
export const FANNG = kernelSpec("fanng", {
  entries: {
    prune_sort: entry({
      uniform: "pp",
      struct: PruneParams,
      unused: ["check_cap", "round", "alpha2"],
      bindings: [...BLOCKS, "p_extra", "p_adj", "p_len", "p_deg", "p_scratch", "p_extra_dist"],
    }),
    prune_occlude: entry({
      uniform: "pp",
      struct: PruneParams,
      unused: ["n", "extra_slots", "merge", "only_with_extra", "extra_row0", "presorted"],
      bindings: [...BLOCKS, "p_extra", "p_adj", "p_len", "p_deg", "p_scratch", "p_active"],
    }),
    knn_merge: entry({
      uniform: "mp",
      struct: MergeParams,
      bindings: [...BLOCKS, "m_res", "m_map", "l_ids", "l_dists"],
    }),
    nnd_join: entry({
      uniform: "jp",
      struct: JoinParams,
      bindings: [...BLOCKS, "j_heads", "j_rev", "l_ids", "l_dists", "j_updates", "j_block"],
    }),
    list_head: entry({ uniform: "hp", struct: HeadParams, bindings: ["h_in", "h_out"] }),
    greedy: entry({
      uniform: "gp",
      struct: GreedyParams,
      bindings: [...BLOCKS, "adj", "degrees", "g_pairs", "g_stop", "g_active"],
    }),
  },
});
