/**
 * The plain-TS references: for every GPU op a host implementation written for clarity, which the
 * randomized tests compare the kernels against (and which a user can use the same way, or on a machine
 * without a GPU for small sizes). Each takes {@link HostMatrix} values (row-major `Float32Array`s).
 *
 * @example A kernel against its reference
 * ```ts
 * import { getGpu, GpuBuffer, hostMatrix, pairwiseSqL2, Rng } from "./mod.ts";
 * import { pairwiseSqL2Ref } from "./testing.ts";
 *
 * const gpu = await getGpu();
 * const a = hostMatrix(new Rng(3).uniformArray(7 * 5, -1, 1), 7, 5);
 * using buf = GpuBuffer.fromArray(gpu, a.data, [7, 5]);
 * using dist = await pairwiseSqL2(buf, buf);
 * const got = await dist.read();
 * const want = pairwiseSqL2Ref(a, a).data;
 * console.log(Math.max(...got.map((v, i) => Math.abs(v - want[i]))) < 1e-5);
 * ```
 * @module
 */

export { gatherRowsRef } from "./lib/ops/gather.ts";
export { pairwiseSqL2Ref } from "./lib/ops/distance.ts";
export { type TopkFilterHost, type TopkHostResult, topkSmallestRef } from "./lib/ops/topk.ts";
export { knnSqL2Ref } from "./lib/ops/knn.ts";
export { linearForwardRef, linearGradInputRef, linearGradWeightRef } from "./lib/ops/linear.ts";
export { l2NormalizeBackwardRef, l2NormalizeForwardRef } from "./lib/ops/normalize.ts";
export { tripletLossRef, type TripletLossRefResult } from "./lib/ops/losses.ts";
export { sgdUpdateRef } from "./lib/ops/sgd.ts";
export { embedRef } from "./lib/model/head.ts";
export { SgdMomentumRef } from "./lib/model/optimizer.ts";
export { mineSmartRef } from "./lib/mining/smart.ts";
export { retrievalMetricsRef, type RetrievalRefOptions } from "./lib/eval/retrieval_ref.ts";
export { kmeansAssignRef, kmeansRef } from "./lib/eval/kmeans_ref.ts";
export { l2NormalizeRowsRef } from "./lib/util/matrix.ts";
export {
  ceilingRef,
  nearestEdgeRef,
  rerankRef,
  type SearchFilterRef,
  searchRef,
  type SearchRefOptions,
  type SearchRefResult,
} from "./lib/ann/search_ref.ts";
export { type Presorted, type PruneOptions, pruneRef } from "./lib/ann/prune.ts";
export { greedyRef } from "./lib/ann/traverse_add.ts";
