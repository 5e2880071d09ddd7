/**
 * The interface of kernels/topk.wgsl (the k smallest entries per row, with filters; drivers
 * lib/ops/topk.ts and lib/ops/knn.ts).
 * @module
 */
import { entry, FILTER_FLAGS, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  rows: "u32",
  cols: "u32",
  k: "u32",
  seg_len: "u32", // columns per segment
  segs: "u32", // segments per row
  val_stride: "u32", // values row stride
  out_stride: "u32", // output row stride (k, or segs * k for the partial lists)
  row_base: "u32", // global index of the first row (for the filters)
  col_base: "u32", // global index of the first column
  self_offset: "u32", // F_SELF drops column row_base + r + self_offset
  flags: "u32", // FILTER_FLAGS
  init: "u32", // 1: start from the lists already in out
  val_off: "u32", // element offset of the values in their binding
  out_off: "u32", // element offset of the output in its bindings
});

const FILTERS = ["row_labels", "col_labels", "row_min"] as const;

/** kernels/topk.wgsl. */
export const TOPK = kernelSpec("topk", {
  flags: FILTER_FLAGS,
  entries: {
    select_rows: entry({ uniform: "p", struct: Params, bindings: ["values", "out_v", "out_i", ...FILTERS] }),
    select_rows_v4: entry({
      uniform: "p",
      struct: Params,
      bindings: ["values4", "out_v", "out_i", ...FILTERS],
    }),
    merge_lists: entry({
      uniform: "p",
      struct: Params,
      unused: ["cols", "seg_len", "val_stride", "row_base", "col_base", "self_offset", "flags", "val_off"],
      bindings: ["values", "out_v", "out_i", "part_i"],
    }),
  },
});
