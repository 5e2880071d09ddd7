/**
 * Head checkpoints: parameters, optimiser state and free-form metadata in one binary file, written
 * atomically (temporary name, then rename).
 *
 * Format (version 2, little-endian):
 * ```
 * offset 0   8 bytes  magic "SMDLHEAD"
 *        8   u32      format version (2)
 *       12   u32      H = byte length of the JSON header
 *       16   H bytes  JSON header, UTF-8, padded with spaces to a multiple of 4:
 *                     { config: head config, layers: [{inDim, outDim}], optimizer: {lr, momentum,
 *                       weightDecay, lrMultipliers, steps} | null, meta: {...}, floats: payload length,
 *                       blobs: [{name, bytes}] }
 *   16 + H   f32[]    per layer: weight [inDim x outDim] row-major, then bias [outDim];
 *                     then, when optimizer is not null, the momentum buffers in the same layout
 *            bytes    each blob of `blobs` in order (other state saved with the head, e.g. a training run's
 *                     FANNG graph), zero-padded to a multiple of 4
 *      end   u32      CRC-32 (IEEE) of every byte before it
 * ```
 * Version 1 is the same without blobs (no `blobs` field) and is still read. Loading checks the magic,
 * version, length (truncation), CRC (corruption) and, when loading into an existing head, the layer
 * shapes; each failure is a UserError that says what to do.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { EmbeddingHead } from "./head.ts";
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const gpu = await getGpu();
 * using head = EmbeddingHead.create(gpu, { inDim: 16, outDim: 4 });
 * await saveCheckpoint("/tmp/head.ckpt", head, undefined, { epoch: 1 });
 * const restored = await loadCheckpoint("/tmp/head.ckpt", gpu);
 * console.log(restored.meta.epoch); // 1
 * restored.head.destroy();
 * ```
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import {
  EmbeddingHead,
  headLayerShapes,
  type LayerParams,
  type ResolvedHeadConfig,
  resolveHeadConfig,
} from "./head.ts";
import { type OptimizerState, SgdMomentum } from "./optimizer.ts";
import { TrainStep } from "./train_step.ts";

const MAGIC = "SMDLHEAD";
/** The checkpoint format version this code writes (it reads this one and version 1). */
export const CHECKPOINT_VERSION = 2;

/** Everything a checkpoint holds. */
export interface CheckpointContents {
  /** The head's shape and options, every default filled in. */
  config: ResolvedHeadConfig;
  /** Weights and biases per layer. */
  params: LayerParams[];
  /** The optimiser's state, when saved with the head. */
  optimizer?: OptimizerState;
  /** Free-form metadata (a training run keeps its epoch, controller and reports here). */
  meta: Record<string, unknown>;
  /** Named byte strings saved with the head (empty for version 1 files). */
  blobs?: Record<string, Uint8Array>;
}

const pad4 = (n: number) => Math.ceil(n / 4) * 4;

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as zlib) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Serialises checkpoint contents to the binary format above. */
export function encodeCheckpoint(c: CheckpointContents): Uint8Array {
  const layers = c.params.map((p) => ({ inDim: p.inDim, outDim: p.outDim }));
  const arrays = c.params.flatMap((p) => [p.weight, p.bias]);
  if (c.optimizer) arrays.push(...c.optimizer.velocities.flatMap((v) => [v.weight, v.bias]));
  const floats = arrays.reduce((s, a) => s + a.length, 0);
  const optimizer = c.optimizer
    ? {
      lr: c.optimizer.lr,
      momentum: c.optimizer.momentum,
      weightDecay: c.optimizer.weightDecay,
      lrMultipliers: c.optimizer.lrMultipliers,
      steps: c.optimizer.steps,
    }
    : null;
  const blobEntries = Object.entries(c.blobs ?? {});
  const blobs = blobEntries.map(([name, b]) => ({ name, bytes: b.length }));
  let header = JSON.stringify({ config: c.config, layers, optimizer, meta: c.meta, floats, blobs });
  header += " ".repeat((4 - (new TextEncoder().encode(header).length % 4)) % 4);
  const headerBytes = new TextEncoder().encode(header);
  const blobBytes = blobs.reduce((s, b) => s + pad4(b.bytes), 0);
  const total = 16 + headerBytes.length + floats * 4 + blobBytes + 4;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, CHECKPOINT_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  bytes.set(headerBytes, 16);
  let off = 16 + headerBytes.length;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++, off += 4) view.setFloat32(off, a[i], true);
  }
  for (const [, b] of blobEntries) {
    bytes.set(b, off);
    off += pad4(b.length);
  }
  view.setUint32(off, crc32(bytes.subarray(0, off)), true);
  return bytes;
}

/** Parses and verifies a checkpoint; `source` names it in error messages. */
export function decodeCheckpoint(bytes: Uint8Array, source = "checkpoint"): CheckpointContents {
  const fail = (what: string): never => {
    throw new UserError(`${source}: ${what}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 20 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    fail(`not a head checkpoint (no "${MAGIC}" header); pass a file written by saveCheckpoint`);
  }
  const version = view.getUint32(8, true);
  if (version !== 1 && version !== CHECKPOINT_VERSION) {
    fail(
      `format version ${version} is not supported (this toolkit reads versions 1 and ${CHECKPOINT_VERSION}); ` +
        "use the toolkit version that wrote it",
    );
  }
  const h = view.getUint32(12, true);
  if (16 + h + 4 > bytes.length) {
    fail(`truncated (${bytes.length} bytes, the header alone needs ${16 + h + 4}); the file is incomplete`);
  }
  let header: {
    config: ResolvedHeadConfig;
    layers: { inDim: number; outDim: number }[];
    optimizer: Omit<OptimizerState, "velocities"> | null;
    meta: Record<string, unknown>;
    floats: number;
    blobs?: { name: string; bytes: number }[];
  };
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(16, 16 + h)));
  } catch {
    return fail("header is corrupt (not valid JSON); the file is damaged, use another checkpoint");
  }
  const blobList = (version === 1 ? [] : header.blobs) as { name: string; bytes: number }[];
  if (
    !Number.isInteger(header.floats) || header.floats < 0 || !Array.isArray(blobList) ||
    blobList.some((b) => typeof b?.name !== "string" || !Number.isInteger(b.bytes) || b.bytes < 0)
  ) {
    fail("header is corrupt (bad payload sizes); the file is damaged, use another checkpoint");
  }
  const expected = 16 + h + header.floats * 4 + blobList.reduce((s, b) => s + pad4(b.bytes), 0) + 4;
  if (bytes.length !== expected) {
    fail(
      `${bytes.length < expected ? "truncated" : "has trailing bytes"}: ${bytes.length} bytes, ` +
        `expected ${expected}; the file is incomplete or damaged`,
    );
  }
  const crcAt = expected - 4;
  if (crc32(bytes.subarray(0, crcAt)) !== view.getUint32(crcAt, true)) {
    fail("checksum mismatch: the file is corrupt; use another checkpoint");
  }
  let config: ResolvedHeadConfig;
  try {
    config = resolveHeadConfig(header.config);
  } catch (e) {
    return fail(`holds an invalid head config (${(e as Error).message})`);
  }
  const shapes = headLayerShapes(config);
  if (
    header.layers.length !== shapes.length ||
    shapes.some((s, i) => s.inDim !== header.layers[i].inDim || s.outDim !== header.layers[i].outDim)
  ) {
    fail("layer shapes disagree with its head config; the file is damaged");
  }
  const perLayer = shapes.reduce((s, l) => s + l.inDim * l.outDim + l.outDim, 0);
  if (header.floats !== perLayer * (header.optimizer ? 2 : 1)) {
    fail(`payload of ${header.floats} values does not fit its layer shapes; the file is damaged`);
  }
  let off = 16 + h;
  const take = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++, off += 4) a[i] = view.getFloat32(off, true);
    return a;
  };
  const readLayers = () =>
    shapes.map((s) => ({ ...s, weight: take(s.inDim * s.outDim), bias: take(s.outDim) }));
  const params = readLayers();
  const optimizer = header.optimizer ? { ...header.optimizer, velocities: readLayers() } : undefined;
  const blobs: Record<string, Uint8Array> = {};
  for (const b of blobList) {
    blobs[b.name] = bytes.slice(off, off + b.bytes);
    off += pad4(b.bytes);
  }
  return { config, params, optimizer, meta: header.meta ?? {}, blobs };
}

async function optimizerStateOf(
  source: TrainStep | SgdMomentum | OptimizerState | undefined,
): Promise<OptimizerState | undefined> {
  if (source instanceof TrainStep) return await source.optimizerState();
  if (source instanceof SgdMomentum) return await source.state();
  return source;
}

/**
 * Saves the head's parameters, the optimiser state (from a TrainStep, an SgdMomentum or a state object;
 * optional), `meta` (JSON-serialisable) and `blobs` (optional named bytes) to `path`, atomically.
 */
export async function saveCheckpoint(
  path: string,
  head: EmbeddingHead,
  optimizer?: TrainStep | SgdMomentum | OptimizerState,
  meta: Record<string, unknown> = {},
  blobs?: Record<string, Uint8Array>,
): Promise<void> {
  const optimizerState = await optimizerStateOf(optimizer);
  const bytes = encodeCheckpoint({
    config: head.config,
    params: await head.parameters(),
    optimizer: optimizerState,
    meta,
    blobs,
  });
  await writeFileAtomic(path, bytes);
}

/** Reads and verifies a checkpoint file. */
export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`checkpoint ${path} not found; check the path`);
    }
    throw new UserError(`cannot read checkpoint ${path} (${(e as Error).message})`);
  }
  return decodeCheckpoint(bytes, `checkpoint ${path}`);
}

/** A head rebuilt from a checkpoint, with the saved optimiser state and metadata. */
export interface LoadedCheckpoint {
  /** The restored head on the GPU (the caller owns it). */
  head: EmbeddingHead;
  /** The optimiser's state, when the checkpoint has one. */
  optimizerState?: OptimizerState;
  /** The checkpoint's metadata. */
  meta: Record<string, unknown>;
}

/**
 * Loads a checkpoint. With a Gpu: builds a new head from it. With an existing head (and optionally the
 * TrainStep or SgdMomentum training it): checks that the shapes match (UserError naming both otherwise),
 * loads the parameters and the optimiser state in place, and returns the metadata.
 */
export function loadCheckpoint(path: string, gpu: Gpu): Promise<LoadedCheckpoint>;
/** Loads a checkpoint from `path` (a file) onto `gpu`. */
export function loadCheckpoint(
  path: string,
  head: EmbeddingHead,
  optimizer?: TrainStep | SgdMomentum,
): Promise<Record<string, unknown>>;
export async function loadCheckpoint(
  path: string,
  target: Gpu | EmbeddingHead,
  optimizer?: TrainStep | SgdMomentum,
): Promise<LoadedCheckpoint | Record<string, unknown>> {
  const c = await readCheckpoint(path);
  if (!(target instanceof EmbeddingHead)) {
    return {
      head: EmbeddingHead.fromParameters(target, c.config, c.params),
      optimizerState: c.optimizer,
      meta: c.meta,
    };
  }
  applyCheckpoint(c, target, optimizer, `checkpoint ${path}`);
  return c.meta;
}

/**
 * Loads decoded checkpoint contents into an existing head (and optionally the TrainStep or SgdMomentum
 * training it), after checking that the shapes match; `source` names the checkpoint in errors.
 */
export function applyCheckpoint(
  c: CheckpointContents,
  head: EmbeddingHead,
  optimizer?: TrainStep | SgdMomentum,
  source = "checkpoint",
): void {
  const want = head.layers.map((s) => `${s.inDim}->${s.outDim}`).join(", ");
  const got = c.params.map((s) => `${s.inDim}->${s.outDim}`).join(", ");
  if (want !== got || head.config.normalize !== c.config.normalize) {
    throw new UserError(
      `${source} holds a head with layers [${got}]${c.config.normalize ? " (normalised)" : ""} but this ` +
        `head has [${want}]${
          head.config.normalize ? " (normalised)" : ""
        }; use a matching head configuration`,
    );
  }
  head.setParameters(c.params);
  if (optimizer) {
    if (!c.optimizer) throw new UserError(`${source} holds no optimiser state to resume from`);
    if (optimizer instanceof TrainStep) optimizer.loadOptimizerState(c.optimizer);
    else optimizer.loadState(c.optimizer);
  }
}
