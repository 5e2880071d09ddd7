/**
 * Smart Mining for Deep Metric Learning (Harwood et al., ICCV 2017) on WebGPU, in Deno.
 *
 * The public API: re-exports from lib/, nothing else. See README.md for usage.
 * @module
 */

// --- GPU runtime (lib/gpu) ---
export { type AdapterReport, getGpu, Gpu, type GpuErrorRecord, type GpuOptions } from "./lib/gpu/device.ts";
export { type ArrayOf, type DType, GpuBuffer, type HostArray, type RowChunk } from "./lib/gpu/buffer.ts";
export { CommandBatch, grid1d, packUniform, type UniformField } from "./lib/gpu/dispatch.ts";
export { type Defines, loadWgsl, PipelineCache } from "./lib/gpu/kernels.ts";
export { type LabelTiming, profile, type ProfileReport } from "./lib/gpu/timing.ts";
export { fmtShape, GpuError, GpuUnavailableError, ShapeError, UserError } from "./lib/errors.ts";

// --- Ops (lib/ops) ---
export { gatherRows, gatherRowsRef } from "./lib/ops/gather.ts";
export {
  type DistanceKernel,
  type DistanceOptions,
  encodePairwiseSqL2,
  pairwiseSqL2,
  pairwiseSqL2Ref,
} from "./lib/ops/distance.ts";
export {
  encodeTopkSmallest,
  NO_INDEX,
  TOPK_MAX_K,
  type TopkFilter,
  type TopkFilterHost,
  type TopkHostResult,
  type TopkOptions,
  type TopkResult,
  topkSmallest,
  topkSmallestRef,
} from "./lib/ops/topk.ts";
export { encodeKnnSqL2, type KnnOptions, knnSqL2, knnSqL2Ref } from "./lib/ops/knn.ts";

// --- Data (lib/data) ---
export type { Dataset, LabeledSplit, SampleImage } from "./lib/data/dataset.ts";
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  loadIdxDataset,
  loadIdxSplit,
  parseIdx,
} from "./lib/data/idx.ts";
export type { ImageListDataset, ImageListFormat, ImageSample } from "./lib/data/image_list.ts";
export { CUB_TRAIN_CLASSES, listCub } from "./lib/data/cub.ts";
export { CARS_TRAIN_CLASSES, listCars, parseCarsCsv, parseCarsTxt } from "./lib/data/cars.ts";
export { listFolder } from "./lib/data/folder.ts";
export { type MatValue, readCarsAnnosMat, readMat } from "./lib/data/mat.ts";
export {
  decodeImage,
  encodeJpeg,
  encodePng,
  ImageDecodeError,
  readImage,
  type Rect,
  resampleRegion,
  resampleRgb,
  type RgbImage,
} from "./lib/data/image.ts";

// --- ANN index (lib/ann) ---
export { FanngIndex, type SearchFilter, type SearchOptions, type SearchResult } from "./lib/ann/index.ts";
export { defaultSearchShape, type SearchOutputs, type SearchShape } from "./lib/ann/search.ts";
export { type SearchDefaults, searchDefaults, type SearchUse } from "./lib/ann/search_defaults.ts";
export { type BuildStats, type FanngBuildOptions } from "./lib/ann/build.ts";
export {
  degreeStats,
  type FanngGraph,
  graphFromPadded,
  graphProblem,
  NO_VERTEX,
  type OcclusionViolation,
  occlusionViolations,
  paddedFromGraph,
  type PaddedGraph,
  validateGraph,
} from "./lib/ann/graph.ts";
export {
  decodeGraph,
  encodeGraph,
  FANNG_FORMAT_VERSION,
  FANNG_MAGIC,
  loadGraph,
  saveGraph,
} from "./lib/ann/file.ts";
export {
  ceilingRef,
  type SearchFilterRef,
  searchRef,
  type SearchRefOptions,
  type SearchRefResult,
} from "./lib/ann/search_ref.ts";
export { pruneRef } from "./lib/ann/prune.ts";
export { greedyRef } from "./lib/ann/traverse_add.ts";

// --- Model and training step (lib/model) ---
export {
  EmbeddingHead,
  embedRef,
  type HeadConfig,
  type HeadInit,
  headLayerShapes,
  initHeadParameters,
  type LayerParams,
  type ResolvedHeadConfig,
} from "./lib/model/head.ts";
export {
  type LayerGradient,
  type OptimizerConfig,
  type OptimizerState,
  SgdMomentum,
  SgdMomentumRef,
} from "./lib/model/optimizer.ts";
export { type LossConfig, type StepOptions, type StepScalars, TrainStep } from "./lib/model/train_step.ts";
export {
  applyCheckpoint,
  CHECKPOINT_VERSION,
  type CheckpointContents,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  type LoadedCheckpoint,
  readCheckpoint,
  saveCheckpoint,
} from "./lib/model/checkpoint.ts";
// The training step's ops (kernels/linear, normalize, losses, sgd) with their plain-TS references.
export {
  augmentedLength,
  encodeLinearForward,
  encodeLinearGradInput,
  encodeLinearGradWeight,
  linearForward,
  linearForwardRef,
  linearGradInputRef,
  linearGradWeightRef,
  type LinearShape,
  type LinearTiles,
  linearTiles,
  packAugmented,
  paddedWidth,
  unpackAugmented,
} from "./lib/ops/linear.ts";
export {
  encodeL2NormalizeBackward,
  encodeL2NormalizeForward,
  l2Normalize,
  l2NormalizeBackwardRef,
  l2NormalizeForwardRef,
} from "./lib/ops/normalize.ts";
export {
  DEFAULT_LOSS_CONFIG,
  encodeTripletLoss,
  type LossScalars,
  tripletLossBackward,
  type TripletLossConfig,
  tripletLossForward,
  tripletLossRef,
} from "./lib/ops/losses.ts";
export { encodeSgdUpdate, type SgdHyper, sgdUpdateRef } from "./lib/ops/sgd.ts";

// --- Mining and controller (lib/mining) ---
export { ClassIndex } from "./lib/mining/classes.ts";
export {
  type ControllerConfig,
  type ControllerState,
  KappaController,
  validateControllerConfig,
} from "./lib/mining/controller.ts";
export { mineSmart, mineSmartRef, type SmartMining, softestHarderPositives } from "./lib/mining/smart.ts";
export {
  ExactSearch,
  FanngSearch,
  type FanngSearchOptions,
  type GpuNegatives,
  type NeighbourSearch,
} from "./lib/mining/search.ts";
export {
  assembleEpoch,
  type EpochTriplets,
  type MinedPartners,
  permutation,
  randomTriplets,
} from "./lib/mining/triplets.ts";
export { batchHardTriplets, sampleClassBalancedBatch, semiHardTriplets } from "./lib/mining/inbatch.ts";

// --- Evaluation (lib/eval) ---
export {
  type EvalOptions,
  type EvalResult,
  evaluateEmbeddings,
  type LabeledEmbeddings,
} from "./lib/eval/evaluate.ts";
export {
  metricsFromRanks,
  type QueryRanks,
  queryRanks,
  type QueryRanksOptions,
  retrievalMetrics,
  type RetrievalOptions,
} from "./lib/eval/retrieval.ts";
export {
  type RetrievalMetrics,
  retrievalMetricsRef,
  type RetrievalRefOptions,
} from "./lib/eval/retrieval_ref.ts";
export {
  type GpuKMeansOptions,
  kmeans,
  kmeansAssign,
  type KMeansOptions,
  type KMeansResult,
} from "./lib/eval/kmeans.ts";
export { kmeansAssignRef, kmeansRef } from "./lib/eval/kmeans_ref.ts";
export { ami, contingency, entropy, expectedMutualInfo, mutualInfo, nmi } from "./lib/eval/nmi.ts";
export { tsne, tsneGpu, type TsneOptions } from "./lib/eval/tsne.ts";

// --- Backbone and features (lib/backbone) ---
export { OnnxBackbone, type OnnxBackboneOptions, type ProviderChoice } from "./lib/backbone/onnx.ts";
export {
  exposeOutput,
  type OnnxModelInfo,
  readOnnxModel,
  resolveOutputName,
  tensorNames,
} from "./lib/backbone/onnx_graph.ts";
export {
  defaultSpec,
  type PreprocessSpec,
  type PresetName,
  PRESETS,
  viewCrop,
  writeView,
} from "./lib/backbone/preprocess.ts";
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

// --- Training loop (lib/train.ts, lib/config.ts) ---
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
export {
  decodeRetrievalIndex,
  encodeRetrievalIndex,
  type FeatureSource,
  RETRIEVAL_FILE,
  RETRIEVAL_FORMAT_VERSION,
  RETRIEVAL_MAGIC,
  type RetrievalContents,
  type RetrievalHeader,
  type RetrievalInput,
} from "./lib/retrieval/format.ts";
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

// --- Visualisation and reports (lib/viz) ---
export {
  type FigureSpec,
  figureToSvg,
  type PngOptions,
  pngSize,
  type RenderedFigure,
  renderFigure,
  type SavedFigure,
  saveFigure,
  svgSize,
  svgToPng,
  type VegaLiteSpec,
  type VegaSpec,
} from "./lib/viz/render.ts";
export {
  ALL_CURVE_METRICS,
  type CurveMetric,
  type CurveRun,
  curvesFigure,
  type CurvesOptions,
  FIG2_METRICS,
} from "./lib/viz/curves.ts";
export { sweepFigure, type SweepOptions, type SweepPoint } from "./lib/viz/sweep.ts";
export { classColors, scatterFigure, type ScatterOptions } from "./lib/viz/scatter.ts";
export { chooseEpochs, tripletGridFigure, type TripletGridOptions } from "./lib/viz/triplet_grid.ts";
export { encodePixelsPng, sampleImageDataUrl, type ThumbnailOptions } from "./lib/viz/thumbnails.ts";
export {
  type BatchRecord,
  type EpochRecord,
  type EvalRecord,
  type ExperimentData,
  type ExperimentRun,
  isExperimentDir,
  kappaBounds,
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

// --- Utilities (lib/util) ---
export { Rng } from "./lib/util/rng.ts";
export { type HostMatrix, hostMatrix, l2NormalizeRowsRef, row, selectRows } from "./lib/util/matrix.ts";
export { Progress, type ProgressOptions } from "./lib/util/progress.ts";
export { type JsonlOpenOptions, type JsonlRepair, JsonlWriter, readJsonl } from "./lib/util/jsonl.ts";
export { FolderLock, type LockOwner } from "./lib/util/lock.ts";
