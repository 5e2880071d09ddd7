/**
 * The interface of kernels/normalize.wgsl (row-wise L2 normalisation and its backward pass; driver
 * lib/ops/normalize.ts).
 * @module
 */
import { entry, kernelSpec, uniformStruct } from "../spec.ts";

const Params = uniformStruct("Params", {
  rows: "u32",
  dim: "u32",
  ld_in: "u32", // forward: z stride; backward: de stride
  ld_out: "u32", // forward: e stride; backward: dz stride
  ld_e: "u32", // backward: e stride
  scale: "u32", // forward: 1 normalises, 0 copies
});

/** kernels/normalize.wgsl. */
export const NORMALIZE = kernelSpec("normalize", {
  entries: {
    forward: entry({ uniform: "p", struct: Params, unused: ["ld_e"], bindings: ["fz", "fe", "fn_"] }),
    backward: entry({
      uniform: "p",
      struct: Params,
      unused: ["scale"],
      bindings: ["be", "bde", "bn", "bdz"],
    }),
  },
});
