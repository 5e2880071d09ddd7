/**
 * The interface of kernels/sgd.wgsl (SGD with momentum over split-K gradients; driver lib/ops/sgd.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  count4: "u32", // vec4s of the parameter tensor
  splits: "u32", // partial gradients to sum
  apply: "u32", // 1 updates the parameters, 0 only sums the gradient
  lr: "f32",
  momentum: "f32",
  weight_decay: "f32",
});

/** kernels/sgd.wgsl. */
export const SGD = kernelSpec("sgd", {
  entries: {
    main: entry({ uniform: "p", struct: Params, bindings: ["w", "v", "grad"] }),
  },
});
