/**
 * File and image formats and the host-side utilities the tasks are built from: image decoding, encoding
 * and resampling, IDX and MATLAB v5 readers, the Cars annotation parsers, the ONNX graph reader and output
 * exposer, the backbone's preprocessing views, checkpoint bytes, JSON-lines logs, run-folder locks and
 * progress bars. docs/formats.md describes every on-disk format.
 *
 * @example A checkpoint through its byte format
 * ```ts
 * import { CHECKPOINT_VERSION, decodeCheckpoint, encodeCheckpoint } from "./io.ts";
 *
 * const bytes = encodeCheckpoint({
 *   config: { inDim: 2, outDim: 2, hidden: [], normalize: true, seed: 0, init: "xavier-uniform" },
 *   params: [{ inDim: 2, outDim: 2, weight: new Float32Array([1, 0, 0, 1]), bias: new Float32Array(2) }],
 *   meta: { epoch: 1 },
 * });
 * console.log(CHECKPOINT_VERSION, decodeCheckpoint(bytes).meta); // 2 { epoch: 1 }
 * ```
 * @module
 */
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
export { type IdxTensor, parseIdx } from "./lib/data/idx.ts";
export { type MatValue, readCarsAnnosMat, readMat } from "./lib/data/mat.ts";
export { type CarsAnnotation, parseCarsCsv, parseCarsTxt } from "./lib/data/cars.ts";
export {
  type ExposeOptions,
  exposeOutput,
  type ExposeResult,
  type OnnxDim,
  type OnnxModelInfo,
  type OnnxNode,
  type OnnxValueInfo,
  readOnnxModel,
  resolveOutputName,
  tensorNames,
} from "./lib/backbone/onnx_graph.ts";
export { type Preset, type ViewCrop, viewCrop, writeView } from "./lib/backbone/preprocess.ts";
export type { ExtractResult, ShardEntry, SplitManifest } from "./lib/backbone/features.ts";
export type { Ort, Session } from "./lib/backbone/onnx.ts";
export { CHECKPOINT_VERSION, decodeCheckpoint, encodeCheckpoint } from "./lib/model/checkpoint.ts";
export { type JsonlOpenOptions, type JsonlRepair, JsonlWriter, readJsonl } from "./lib/util/jsonl.ts";
export { FolderLock, type LockOwner } from "./lib/util/lock.ts";
export { Progress, type ProgressOptions } from "./lib/util/progress.ts";
export { row, selectRows } from "./lib/util/matrix.ts";
