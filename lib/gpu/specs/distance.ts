/**
 * The interface of kernels/distance.wgsl (pairwise squared L2; drivers lib/ops/distance.ts and
 * lib/ops/knn.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const PrepParams = uniformStruct("PrepParams", { rows: "u32", dim: "u32", dim4: "u32" });

const DistParams = uniformStruct("DistParams", {
  rows: "u32", // query rows of the block
  cols: "u32", // base rows of the block
  dim4: "u32", // vec4s per row
  out_stride: "u32",
  out_col: "u32", // out[r * out_stride + out_col + c]
  tiles_x: "u32", // column tiles per row tile
  qn_off: "u32", // offsets of the block's first norms in their (aligned) bindings
  bn_off: "u32",
});

/** Every distance kernel reads the same bindings: norms and output as f32, or (the _v4 ones) as vec4f. */
const SCALAR = ["q", "b", "qn", "bn", "out"] as const;
const VEC4 = ["q", "b", "qn4", "bn4", "out4"] as const;

/** kernels/distance.wgsl. */
export const DISTANCE = kernelSpec("distance", {
  entries: {
    prep_rows: entry({
      uniform: "prep",
      struct: PrepParams,
      bindings: ["prep_src", "prep_dst", "prep_norms"],
    }),
    dist_reg16: entry({ uniform: "p", struct: DistParams, bindings: SCALAR }),
    dist_reg16_v4: entry({ uniform: "p", struct: DistParams, bindings: VEC4 }),
    dist_reg32_v4: entry({ uniform: "p", struct: DistParams, bindings: VEC4 }),
    dist_reg4: entry({ uniform: "p", struct: DistParams, bindings: SCALAR }),
    dist_tiled: entry({ uniform: "p", struct: DistParams, bindings: SCALAR }),
  },
});
