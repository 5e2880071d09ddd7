/**
 * Every kernel spec by kernel name (lib/gpu/spec.ts). A kernel listed here is compiled only through its
 * spec; tests/gpu/spec_test.ts checks every spec against its kernel source and that each kernels/*.wgsl
 * file either has a spec or is named in {@link KERNELS_WITHOUT_SPEC}.
 * @module
 */
import type { KernelSpec } from "../spec.ts";
import { DISTANCE } from "./distance.ts";
import { EVAL_TILES } from "./eval_tiles.ts";
import { FANNG } from "./fanng.ts";
import { FANNG_LAYOUT } from "./fanng_layout.ts";
import { FANNG_SEARCH } from "./fanng_search.ts";
import { GATHER } from "./gather.ts";
import { KMEANS } from "./kmeans.ts";
import { LINEAR } from "./linear.ts";
import { LOSSES } from "./losses.ts";
import { MINING } from "./mining.ts";
import { NORMALIZE } from "./normalize.ts";
import { RETRIEVAL } from "./retrieval.ts";
import { SGD } from "./sgd.ts";
import { TOPK } from "./topk.ts";

/** Kernel name -> its spec. */
export const KERNEL_SPECS: Readonly<Record<string, KernelSpec>> = Object.fromEntries(
  [
    DISTANCE,
    EVAL_TILES,
    FANNG,
    FANNG_LAYOUT,
    FANNG_SEARCH,
    GATHER,
    KMEANS,
    LINEAR,
    LOSSES,
    MINING,
    NORMALIZE,
    RETRIEVAL,
    SGD,
    TOPK,
  ].map(
    (s) => [s.kernel, s as unknown as KernelSpec],
  ),
);

/**
 * Kernels compiled by name, with their own structs and positional uniforms: none any more. A new kernel
 * gets a spec; listing it here is the only way past tests/gpu/spec_test.ts without one.
 */
export const KERNELS_WITHOUT_SPEC: readonly string[] = [];
