/**
 * The interface of kernels/fanng_layout.wgsl (row-major vectors into FANNG column blocks; driver
 * lib/ann/vectors.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  rows: "u32", // rows of this source block
  dims: "u32",
  w4: "u32", // vec4s per row of a column block
  col0: "u32", // the block's first column
  dst_row0: "u32", // the source block's first row
});

const HalfParams = uniformStruct("HalfParams", {
  rows: "u32",
  w4: "u32", // vec4s per source row
  w4h: "u32", // packed vec4s (8 halves each) per row: ceil(w4 / 2)
  scale: "f32", // a power of two the values are multiplied by before rounding
});

/** kernels/fanng_layout.wgsl. */
export const FANNG_LAYOUT = kernelSpec("fanng_layout", {
  entries: {
    to_blocks: entry({ uniform: "p", struct: Params, bindings: ["src", "dst"] }),
    half_max: entry({
      uniform: "hp",
      struct: HalfParams,
      unused: ["w4h", "scale"],
      bindings: ["h_src", "hm_out"],
    }),
    to_half: entry({ uniform: "hp", struct: HalfParams, bindings: ["h_src", "h_dst"] }),
  },
});
