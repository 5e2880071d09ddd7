/**
 * The interface of kernels/mining.wgsl (the smart-mining exclusion radius; driver lib/mining/radius.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", { count: "u32", kappa: "f32" });

/** kernels/mining.wgsl. */
export const MINING = kernelSpec("mining", {
  entries: {
    radius: entry({ uniform: "p", struct: Params, bindings: ["eps", "out"] }),
  },
});
