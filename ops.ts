/**
 * The building blocks under `train()`: the GPU runtime (command batches, the pipeline cache, uniform
 * packing), every kernel's op with its `encode*` form (to record into a caller's {@link CommandBatch}),
 * the embedding head's layers, the optimizer, the training step, smart mining and its controller, and the
 * evaluation's lower layers (ranks, contingency tables, k-means assignment). The plain-TS references
 * these are tested against are in `testing.ts`; the common entry points are in `mod.ts`.
 *
 * @example Two ops recorded into one submission
 * ```ts
 * import { getGpu, GpuBuffer } from "./mod.ts";
 * import { CommandBatch, encodeL2NormalizeForward, encodePairwiseSqL2 } from "./ops.ts";
 *
 * const gpu = await getGpu();
 * using x = GpuBuffer.fromArray(gpu, new Float32Array([3, 4, 1, 0, 0, 2]), [3, 2]);
 * const batch = new CommandBatch(gpu);
 * const { out: unit, norms } = await encodeL2NormalizeForward(batch, x);
 * using dist = await encodePairwiseSqL2(batch, unit, unit);
 * await batch.submit();
 * console.log(await norms.read()); // [5, 1, 2]
 * console.log(await dist.read()); // squared distances between the unit rows
 * unit.destroy();
 * norms.destroy();
 * ```
 * @module
 */

// --- GPU runtime (lib/gpu) ---
export { type Bindable, CommandBatch, grid1d, packUniform, type UniformField } from "./lib/gpu/dispatch.ts";
export { type Defines, loadWgsl, PipelineCache } from "./lib/gpu/kernels.ts";
export { GpuProfiler } from "./lib/gpu/timing.ts";
export type * from "./lib/gpu/spec.ts";
export type { WgslBinding, WgslFunction, WgslModule } from "./lib/gpu/wgsl_scan.ts";

// --- Ops (lib/ops) ---
export { encodeGatherRows, gatherRows } from "./lib/ops/gather.ts";
export { encodePairwiseSqL2, pairwiseSqL2 } from "./lib/ops/distance.ts";
export { encodeTopkSmallest, topkSmallest } from "./lib/ops/topk.ts";
export { encodeKnnSqL2, knnSqL2 } from "./lib/ops/knn.ts";
export {
  augmentedLength,
  encodeLinearForward,
  encodeLinearGradInput,
  encodeLinearGradWeight,
  linearForward,
  type LinearForwardOptions,
  type LinearShape,
  type LinearTiles,
  linearTiles,
  packAugmented,
  paddedWidth,
  unpackAugmented,
} from "./lib/ops/linear.ts";
export { encodeL2NormalizeBackward, encodeL2NormalizeForward, l2Normalize } from "./lib/ops/normalize.ts";
export {
  DEFAULT_LOSS_CONFIG,
  encodeTripletLoss,
  type LossScalars,
  tripletLossBackward,
  type TripletLossBuffers,
  type TripletLossConfig,
  tripletLossForward,
  type TripletLossOptions,
  type TripletLossResult,
} from "./lib/ops/losses.ts";
export { encodeSgdUpdate, type SgdHyper } from "./lib/ops/sgd.ts";

// --- Head, optimizer, training step (lib/model) ---
export { headLayerShapes, initHeadParameters, type ResolvedHeadConfig } from "./lib/model/head.ts";
export {
  type LayerGradient,
  type OptimizerConfig,
  type OptimizerState,
  SgdMomentum,
} from "./lib/model/optimizer.ts";
export { type LossConfig, type StepOptions, type StepScalars, TrainStep } from "./lib/model/train_step.ts";

// --- Mining and its controller (lib/mining) ---
export { ClassIndex } from "./lib/mining/classes.ts";
export {
  type ControllerConfig,
  type ControllerState,
  KappaController,
  validateControllerConfig,
} from "./lib/mining/controller.ts";
export { mineSmart, type SmartMining, softestHarderPositives } from "./lib/mining/smart.ts";
export {
  ExactSearch,
  FanngSearch,
  type FanngSearchOptions,
  type GpuNegatives,
  type NeighbourSearch,
  type SearchProgress,
} from "./lib/mining/search.ts";
export {
  assembleEpoch,
  type EpochTriplets,
  type MinedPartners,
  permutation,
  randomTriplets,
} from "./lib/mining/triplets.ts";
export { batchHardTriplets, sampleClassBalancedBatch, semiHardTriplets } from "./lib/mining/inbatch.ts";

// --- Evaluation's lower layers (lib/eval) ---
export {
  metricsFromRanks,
  type QueryRanks,
  queryRanks,
  type QueryRanksOptions,
} from "./lib/eval/retrieval.ts";
export { kmeansAssign } from "./lib/eval/kmeans.ts";
export type { Assignment } from "./lib/eval/lloyd.ts";
export { type Contingency, contingency, entropy, expectedMutualInfo, mutualInfo } from "./lib/eval/nmi.ts";
