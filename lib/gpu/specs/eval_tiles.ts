/**
 * The interface of kernels/eval_tiles.wgsl (squared-L2 tiles reduced in registers: nearest column, counts
 * before a threshold; driver lib/eval/tiles.ts).
 * @module
 */
import { entry, FILTER_FLAGS, kernelSpec, moreFlags, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  rows: "u32", // row positions (nearest) / rows of a (count_before)
  cols: "u32", // count_before: columns of b
  dim4: "u32",
  flags: "u32", // EVAL_TILES_FLAGS
  row_base: "u32", // global id of a's first row
  col_base: "u32", // count_before: global id of b's first row
  label_off: "u32", // offset of the column labels in `labels`
  tiles_x: "u32", // count_before (not F_SYM): workgroups per row tile
  wg_base: "u32", // count_before: this dispatch's linear workgroups [wg_base, wg_end)
  wg_end: "u32",
  col_begin: "u32", // nearest without F_RANGES: column range [col_begin + z * col_step, + col_len)
  col_step: "u32",
  col_len: "u32",
  win_lo: "u32", // nearest: window of the range scanned by this dispatch
  win_hi: "u32",
  list_off: "u32", // nearest: column list and ranges in `ids`
  ranges_off: "u32",
  out_stride: "u32", // nearest: out index = z * out_stride + row global id
});

/**
 * The kernel's flags: the shared filters (nearest: F_SELF, F_LABELS with F_SAME, F_RADIUS) and its own, in the bits
 * above them.
 */
export const EVAL_TILES_FLAGS = moreFlags(FILTER_FLAGS, [
  "F_ROW_LIST",
  "F_COL_LIST",
  "F_RANGES",
  "F_MIN_INTO",
  "F_HALTABLE",
  "F_SYM",
]);

const TILE_ROWS = ["a", "b", "a_norms", "b_norms"] as const;

/** kernels/eval_tiles.wgsl. */
export const EVAL_TILES = kernelSpec("eval_tiles", {
  flags: EVAL_TILES_FLAGS,
  entries: {
    nearest: entry({
      uniform: "p",
      struct: Params,
      unused: ["cols", "col_base", "tiles_x", "wg_base", "wg_end"],
      bindings: [...TILE_ROWS, "ids", "labels", "out", "status", "row_min"],
    }),
    count_before: entry({
      uniform: "p",
      struct: Params,
      unused: [
        "col_begin",
        "col_step",
        "col_len",
        "win_lo",
        "win_hi",
        "list_off",
        "ranges_off",
        "out_stride",
      ],
      bindings: [...TILE_ROWS, "c_labels", "thresh", "counts"],
    }),
  },
});
