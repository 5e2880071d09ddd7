/**
 * The interface of kernels/gather.wgsl (row gather; driver lib/ops/gather.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

/** Uniforms of a gather over one row block of the source. */
const Params = uniformStruct("Params", {
  count: "u32", // output rows
  cols: "u32",
  block_start: "u32", // the bound source block: rows [block_start, block_start + block_rows)
  block_rows: "u32",
  total_rows: "u32", // rows of the whole source (indices past it give zero rows)
});

/** kernels/gather.wgsl. */
export const GATHER = kernelSpec("gather", {
  entries: {
    main: entry({ uniform: "params", struct: Params, bindings: ["src", "index", "out"] }),
  },
});
