/**
 * The interface of kernels/kmeans.wgsl (k-means seeding, grouping, update and convergence on the GPU;
 * driver lib/eval/kmeans.ts). One struct for every entry point; each reads a few of its fields.
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  n: "u32", // points
  k: "u32", // clusters per restart
  restarts: "u32",
  nb: "u32", // point blocks of SUM_BLOCK
  block_start: "u32", // the bound data block: rows [block_start, block_start + block_rows)
  block_rows: "u32",
  first: "u32", // seeding: first slot of the round; update: 1 on the first pass of the sums
  count: "u32", // seeding: slots of the round
  lo: "u32", // windows of prefix_sums / group_offsets / update's member positions
  hi: "u32",
  last: "u32", // update: 1 on the last pass
  max_iters: "u32",
  tol: "f32",
  dim: "u32",
  gb: "u32", // points per block of the grouping (at least SUM_BLOCK; hist must fit one binding)
  ngb: "u32", // blocks of the grouping
});

/** kernels/kmeans.wgsl. */
export const KMEANS = kernelSpec("kmeans", {
  entries: {
    block_sums: entry({
      uniform: "p",
      struct: Params,
      reads: ["n", "nb"],
      bindings: ["bs_status", "bs_pairs", "bs_sums"],
    }),
    prefix_sums: entry({
      uniform: "p",
      struct: Params,
      reads: ["restarts", "nb", "lo", "hi"],
      bindings: ["ps_status", "ps_sums", "ps_prefix", "ps_totals"],
    }),
    seed_pick: entry({
      uniform: "p",
      struct: Params,
      reads: ["n", "k", "nb", "first", "count"],
      bindings: ["sp_status", "sp_prefix", "sp_totals", "sp_uniforms", "sp_pairs", "sp_picked"],
    }),
    seed_copy: entry({
      uniform: "p",
      struct: Params,
      reads: ["n", "k", "block_start", "block_rows", "first", "count"],
      bindings: ["sc_status", "sc_picked", "sc_data", "sc_norms", "sc_cents", "sc_cent_norms", "sc_pairs"],
    }),
    seed_min: entry({
      uniform: "p",
      struct: Params,
      reads: ["n", "k", "restarts", "block_start", "block_rows", "first", "count"],
      bindings: ["sm_status", "sm_data", "sm_norms", "sm_cents", "sm_cent_norms", "sm_pairs"],
    }),
    group_count: entry({
      uniform: "p",
      struct: Params,
      reads: ["n", "k", "gb", "ngb"],
      bindings: ["gc_status", "gc_pairs", "gc_prev", "gc_hist"],
    }),
    group_totals: entry({
      uniform: "p",
      struct: Params,
      reads: ["k", "restarts", "ngb"],
      bindings: ["gt_status", "gt_hist", "gt_counts"],
    }),
    status: entry({
      uniform: "p",
      struct: Params,
      reads: ["restarts", "max_iters", "tol"],
      bindings: ["st_status", "st_totals"],
    }),
    group_offsets: entry({
      uniform: "p",
      struct: Params,
      reads: ["k", "restarts", "lo", "hi"],
      bindings: ["go_status", "go_counts", "go_offsets"],
    }),
    group_scatter: entry({
      uniform: "p",
      struct: Params,
      reads: ["n", "k", "gb", "ngb"],
      bindings: ["gs_status", "gs_pairs", "gs_offsets", "gs_hist", "gs_order"],
    }),
    update: entry({
      uniform: "p",
      struct: Params,
      reads: ["n", "k", "restarts", "block_start", "block_rows", "first", "lo", "hi", "last", "dim"],
      bindings: ["up_status", "up_data", "up_order", "up_offsets", "up_sums", "up_cents"],
    }),
    cent_norms: entry({
      uniform: "p",
      struct: Params,
      reads: ["k", "restarts"],
      bindings: ["cn_status", "cn_cents", "cn_norms"],
    }),
  },
});
