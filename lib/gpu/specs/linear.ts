/**
 * The interface of kernels/linear.wgsl (a fully connected layer, forward and backward; driver
 * lib/ops/linear.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  rows: "u32", // rows in this dispatch
  in_dim: "u32", // K
  out_dim: "u32", // O
  out_vec: "u32", // OV = ceil(O / 4)
  ldx: "u32", // row stride of x (forward, grad_weight) or act (grad_input), in elements
  ldy: "u32", // row stride of y (forward) or dx (grad_input), in vec4s
  relu: "u32", // forward: 1 applies ReLU
  split_rows: "u32", // grad_weight: rows per split
  splits: "u32", // grad_weight: number of splits
});

/** kernels/linear.wgsl. */
export const LINEAR = kernelSpec("linear", {
  entries: {
    forward: entry({
      uniform: "p",
      struct: Params,
      unused: ["out_dim", "split_rows", "splits"],
      bindings: ["fx", "fw", "fy"],
    }),
    grad_weight: entry({
      uniform: "p",
      struct: Params,
      unused: ["out_dim", "ldy", "relu"],
      bindings: ["gx", "gdz", "gpart"],
    }),
    grad_input: entry({
      uniform: "p",
      struct: Params,
      unused: ["out_dim", "relu", "split_rows", "splits"],
      bindings: ["idz", "iw", "iact", "idx"],
    }),
  },
});
