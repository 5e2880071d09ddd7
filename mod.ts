/**
 * Smart Mining for Deep Metric Learning (Harwood et al., ICCV 2017) on WebGPU, in Deno.
 *
 * The public API: re-exports from lib/, nothing else. See README.md for usage.
 * @module
 */

// --- GPU runtime (lib/gpu) ---
export { type AdapterReport, getGpu, Gpu, type GpuOptions } from "./lib/gpu/device.ts";
export { type ArrayOf, type DType, GpuBuffer, type HostArray, type RowChunk } from "./lib/gpu/buffer.ts";
export { CommandBatch, grid1d, packUniform, type UniformField } from "./lib/gpu/dispatch.ts";
export { type Defines, loadWgsl, PipelineCache } from "./lib/gpu/kernels.ts";
export { type LabelTiming, profile, type ProfileReport } from "./lib/gpu/timing.ts";
export { fmtShape, GpuUnavailableError, ShapeError, UserError } from "./lib/errors.ts";

// --- Ops (lib/ops) ---
export { gatherRows, gatherRowsRef } from "./lib/ops/gather.ts";

// --- Data (lib/data) ---
export type { Dataset, LabeledSplit, SampleImage } from "./lib/data/dataset.ts";
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  loadIdxDataset,
  loadIdxSplit,
  parseIdx,
} from "./lib/data/idx.ts";

// --- ANN index (lib/ann) ---

// --- Model and training step (lib/model) ---

// --- Mining and controller (lib/mining) ---

// --- Evaluation (lib/eval) ---

// --- Backbone and features (lib/backbone) ---

// --- Training loop (lib/train.ts, lib/config.ts) ---

// --- Visualisation and reports (lib/viz) ---

// --- Utilities (lib/util) ---
export { Rng } from "./lib/util/rng.ts";
export { type HostMatrix, hostMatrix, l2NormalizeRowsRef, row, selectRows } from "./lib/util/matrix.ts";
export { Progress, type ProgressOptions } from "./lib/util/progress.ts";
export { JsonlWriter, readJsonl } from "./lib/util/jsonl.ts";
