/**
 * The interface of kernels/losses.wgsl (triplet + global loss, forward and backward; driver
 * lib/ops/losses.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  count: "u32", // B triplets
  dim: "u32", // D
  ld_e: "u32", // embedding row stride
  ld_g: "u32", // gradient row stride
  indexed: "u32", // 1: triplets are index triples; 0: triplet i is rows 3i, 3i+1, 3i+2
  rows: "u32", // rows of emb (indices >= rows read row 0; the TS side validates host indices)
  margin: "f32",
  global_weight: "f32",
  lambda: "f32",
  t: "f32",
});

/** kernels/losses.wgsl. */
export const LOSSES = kernelSpec("losses", {
  entries: {
    main: entry({
      uniform: "p",
      struct: Params,
      unused: ["ld_g"],
      bindings: ["emb", "triplets", "dists", "scalars"],
    }),
    grad_main: entry({
      uniform: "p",
      struct: Params,
      unused: ["t"],
      bindings: ["emb", "triplets", "gdists", "gscalars", "grad"],
    }),
  },
});
