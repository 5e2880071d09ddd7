/**
 * Smart Mining for Deep Metric Learning (Harwood et al., ICCV 2017) on WebGPU, in Deno.
 *
 * This entry point holds what a user of the toolkit reaches for: training ({@link train}) and its
 * configuration, the datasets, the ONNX backbone and feature cache, the FANNG index ({@link FanngIndex}),
 * evaluation, retrieval over a trained run ({@link Retriever}), reports, the GPU handle ({@link getGpu})
 * and the main GPU ops (distances, top-k, kNN). The building blocks live in sub-entry points:
 * `ops.ts` (GPU runtime, every kernel's op, head, optimizer, mining), `ann.ts` (graph internals and the
 * index file formats), `viz.ts` (figures), `io.ts` (file and image formats, logs, locks, progress) and
 * `testing.ts` (the plain-TS references every kernel is tested against). docs/design.md maps them.
 *
 * The WGSL kernels travel as text imports, so importing this module from a URL needs only
 * `--allow-import` for its host, plus whatever the features used need (files, the GPU).
 *
 * @example Nearest neighbours on the GPU
 * ```ts
 * import { getGpu, GpuBuffer, knnSqL2, Rng } from "./mod.ts";
 *
 * const gpu = await getGpu();
 * const rng = new Rng(1);
 * using base = GpuBuffer.fromArray(gpu, rng.uniformArray(100 * 8, -1, 1), [100, 8]);
 * using nn = await knnSqL2(base, base, 3);
 * const indices = await nn.indices.read(); // row i: its 3 nearest rows, itself first
 * console.log(indices.slice(0, 3));
 * ```
 * @module
 */

// --- GPU runtime (lib/gpu) ---
export { type AdapterReport, getGpu, Gpu, type GpuErrorRecord, type GpuOptions } from "./lib/gpu/device.ts";
export { type ArrayOf, type DType, GpuBuffer, type HostArray, type RowChunk } from "./lib/gpu/buffer.ts";
export { type LabelTiming, profile, type ProfileReport } from "./lib/gpu/timing.ts";
export {
  fmtShape,
  GpuError,
  GpuUnavailableError,
  type OptionMessage,
  type OptionNamer,
  ShapeError,
  UserError,
} from "./lib/errors.ts";
export type { MinerKind as MiningMinerKind, MiningConfig } from "./lib/mining/options.ts";

// --- The main ops (lib/ops); the encode* forms and the rest are in ops.ts ---
export { gatherRows } from "./lib/ops/gather.ts";
export { type DistanceKernel, type DistanceOptions, pairwiseSqL2 } from "./lib/ops/distance.ts";
export {
  NO_INDEX,
  TOPK_MAX_K,
  type TopkFilter,
  type TopkOptions,
  type TopkResult,
  topkSmallest,
} from "./lib/ops/topk.ts";
export { type KnnOptions, knnSqL2 } from "./lib/ops/knn.ts";
export { l2Normalize } from "./lib/ops/normalize.ts";

// --- Data (lib/data) ---
export type { Dataset, LabeledSplit, SampleImage } from "./lib/data/dataset.ts";
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, loadIdxDataset, loadIdxSplit } from "./lib/data/idx.ts";
export type { ImageListDataset, ImageListFormat, ImageSample } from "./lib/data/image_list.ts";
export { CUB_TRAIN_CLASSES, listCub } from "./lib/data/cub.ts";
export { CARS_TRAIN_CLASSES, listCars } from "./lib/data/cars.ts";
export { listFolder } from "./lib/data/folder.ts";
export { type HostMatrix, hostMatrix } from "./lib/util/matrix.ts";
export { Rng } from "./lib/util/rng.ts";

// --- The FANNG index (lib/ann); graph internals and the file format are in ann.ts ---
export { FanngIndex, type SearchFilter, type SearchOptions, type SearchResult } from "./lib/ann/index.ts";
export { type SearchDefaults, searchDefaults, type SearchUse } from "./lib/ann/search_defaults.ts";
export type { BuildStats, FanngBuildOptions } from "./lib/ann/build.ts";
export type { SearchOutputs } from "./lib/ann/search.ts";

// --- Model and checkpoints (lib/model); the training step's parts are in ops.ts ---
export { EmbeddingHead, type HeadConfig, type HeadInit, type LayerParams } from "./lib/model/head.ts";
export {
  applyCheckpoint,
  type CheckpointContents,
  loadCheckpoint,
  type LoadedCheckpoint,
  readCheckpoint,
  saveCheckpoint,
} from "./lib/model/checkpoint.ts";

// --- Evaluation (lib/eval) ---
export {
  type EvalOptions,
  type EvalResult,
  evaluateEmbeddings,
  type LabeledEmbeddings,
} from "./lib/eval/evaluate.ts";
export { retrievalMetrics, type RetrievalOptions } from "./lib/eval/retrieval.ts";
export type { RetrievalMetrics } from "./lib/eval/retrieval_ref.ts";
export { type GpuKMeansOptions, kmeans, type KMeansOptions, type KMeansResult } from "./lib/eval/kmeans.ts";
export { ami, nmi } from "./lib/eval/nmi.ts";
export { tsne, tsneGpu, type TsneOptions } from "./lib/eval/tsne.ts";

// --- Backbone and features (lib/backbone) ---
export { OnnxBackbone, type OnnxBackboneOptions, type ProviderChoice } from "./lib/backbone/onnx.ts";
export { defaultSpec, type PreprocessSpec, type PresetName, PRESETS } from "./lib/backbone/preprocess.ts";
export {
  extractFeatures,
  type ExtractOptions,
  type FeatureCacheKey,
  type FeatureDataset,
  type FeatureManifest,
  listImageDataset,
  loadFeatureDataset,
  type LoadFeatureOptions,
} from "./lib/backbone/features.ts";

// --- Training (lib/train.ts, lib/config.ts, lib/experiments/) ---
export {
  type ConfigChange,
  type DatasetConfig,
  defaultConfig,
  type MinerKind,
  resolveConfig,
  RESUMABLE_FIELDS,
  resumedConfig,
  type TrainConfig,
  type TrainConfigInput,
  validateConfig,
} from "./lib/config.ts";
export {
  checkRunFits,
  type EpochReport,
  type EvalSummary,
  type MiningStats,
  train,
  type TrainOptions,
  type TrainPhase,
  type TrainResult,
} from "./lib/train.ts";
export { loadDataset, validateDataset } from "./lib/dataset_config.ts";
export { disjointSplit, subsetSplit } from "./lib/data/split.ts";
export {
  type ExperimentName,
  type ExperimentOptions,
  type ExperimentRunResult,
  experimentRuns,
  experimentTable,
  runExperiment,
} from "./lib/experiments/studies.ts";

// --- Retrieval: a trained run as a search engine (lib/retrieval; docs/retrieval.md) ---
export {
  type GraphSearchPlace,
  type Neighbour,
  type RetrievalResult,
  type RetrievalSearchOptions,
  Retriever,
  type RetrieverOptions,
} from "./lib/retrieval/retriever.ts";
export { openRetriever } from "./lib/retrieval/open.ts";
export { type FeatureSource, RETRIEVAL_FILE } from "./lib/retrieval/format.ts";
export {
  buildGalleryIndex,
  type BuiltGallery,
  DEFAULT_SEARCH_BUDGET,
  type GalleryBuildOptions,
  type GalleryInput,
} from "./lib/retrieval/build.ts";
export {
  type GallerySplit,
  indexRun,
  type IndexRunOptions,
  type IndexRunResult,
} from "./lib/retrieval/run_index.ts";

// --- Run folders and reports (lib/viz); figures are in viz.ts ---
export {
  type BatchRecord,
  type EpochRecord,
  type EvalRecord,
  type ExperimentData,
  type ExperimentRun,
  isExperimentDir,
  type LoggedTriplet,
  type MiningRecord,
  parseRunLog,
  readExperimentDir,
  readRunDir,
  readTestEmbeddings,
  type RunConfig,
  type RunData,
  type RunLog,
  type TripletRecord,
} from "./lib/viz/run_dir.ts";
export {
  type ReportOptions,
  type ReportResult,
  type TsneFn,
  writeExperimentReport,
  writeReport,
  writeRunReport,
} from "./lib/viz/report.ts";
