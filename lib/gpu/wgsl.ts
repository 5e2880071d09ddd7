/**
 * Every kernel's WGSL source, imported as text from kernels/ (the .wgsl files are the source of truth;
 * tests/gpu/wgsl_registry_test.ts checks that this list names each of them exactly once).
 * @module
 */
import distance from "../../kernels/distance.wgsl" with { type: "text" };
import eval_tiles from "../../kernels/eval_tiles.wgsl" with { type: "text" };
import fanng from "../../kernels/fanng.wgsl" with { type: "text" };
import fanng_layout from "../../kernels/fanng_layout.wgsl" with { type: "text" };
import fanng_search from "../../kernels/fanng_search.wgsl" with { type: "text" };
import gather from "../../kernels/gather.wgsl" with { type: "text" };
import kmeans from "../../kernels/kmeans.wgsl" with { type: "text" };
import linear from "../../kernels/linear.wgsl" with { type: "text" };
import losses from "../../kernels/losses.wgsl" with { type: "text" };
import mining from "../../kernels/mining.wgsl" with { type: "text" };
import normalize from "../../kernels/normalize.wgsl" with { type: "text" };
import retrieval from "../../kernels/retrieval.wgsl" with { type: "text" };
import sgd from "../../kernels/sgd.wgsl" with { type: "text" };
import topk from "../../kernels/topk.wgsl" with { type: "text" };

/** kernels/<name>.wgsl by name. */
export const WGSL_SOURCES: Readonly<Record<string, string>> = {
  distance,
  eval_tiles,
  fanng,
  fanng_layout,
  fanng_search,
  gather,
  kmeans,
  linear,
  losses,
  mining,
  normalize,
  retrieval,
  sgd,
  topk,
};
