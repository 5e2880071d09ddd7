/**
 * The interface of kernels/retrieval.wgsl (exact ranks of same-label samples per query; driver
 * lib/eval/retrieval.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  n: "u32", // samples
  block_start: "u32", // global index of the block's first query
  block_rows: "u32", // queries in the block
  stride: "u32", // dist row stride (>= n; positive_ranks: a multiple of 4)
  out_width: "u32", // positive_ranks: out row stride
  min_depth: "u32", // positive_ranks: rank exactly all positives within max(R, min_depth) of the query
  qlabel_off: "u32", // the queries' labels start here in `labels`
  single: "u32", // 1: the queries are the gallery (each excludes itself); 0: a separate gallery
});

/** kernels/retrieval.wgsl. */
export const RETRIEVAL = kernelSpec("retrieval", {
  entries: {
    first_rank: entry({
      uniform: "params",
      struct: Params,
      unused: ["out_width", "min_depth"],
      bindings: ["dist", "labels", "members", "class_start", "out"],
    }),
    positive_ranks: entry({
      uniform: "params",
      struct: Params,
      bindings: ["dist4", "labels", "members", "class_start", "out", "list"],
    }),
  },
});
