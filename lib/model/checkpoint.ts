/**
 * Head checkpoints: parameters, optimiser state and free-form metadata in one binary file, written
 * atomically (temporary name, then rename).
 *
 * Format (version 1, little-endian):
 * ```
 * offset 0   8 bytes  magic "SMDLHEAD"
 *        8   u32      format version (1)
 *       12   u32      H = byte length of the JSON header
 *       16   H bytes  JSON header, UTF-8, padded with spaces to a multiple of 4:
 *                     { config: head config, layers: [{inDim, outDim}], optimizer: {lr, momentum,
 *                       weightDecay, lrMultipliers, steps} | null, meta: {...}, floats: payload length }
 *   16 + H   f32[]    per layer: weight [inDim x outDim] row-major, then bias [outDim];
 *                     then, when optimizer is not null, the momentum buffers in the same layout
 *      end   u32      CRC-32 (IEEE) of every byte before it
 * ```
 * Loading checks the magic, version, length (truncation), CRC (corruption) and, when loading into an
 * existing head, the layer shapes; each failure is a UserError that says what to do.
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
/** The checkpoint format version this code writes and reads. */
export const CHECKPOINT_VERSION = 1;

/** Everything a checkpoint holds. */
export interface CheckpointContents {
  config: ResolvedHeadConfig;
  params: LayerParams[];
  optimizer?: OptimizerState;
  meta: Record<string, unknown>;
}

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
  let header = JSON.stringify({ config: c.config, layers, optimizer, meta: c.meta, floats });
  header += " ".repeat((4 - (new TextEncoder().encode(header).length % 4)) % 4);
  const headerBytes = new TextEncoder().encode(header);
  const total = 16 + headerBytes.length + floats * 4 + 4;
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
  if (version !== CHECKPOINT_VERSION) {
    fail(`format version ${version} is not supported (this toolkit reads version ${CHECKPOINT_VERSION})`);
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
  };
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(16, 16 + h)));
  } catch {
    return fail("header is corrupt (not valid JSON); the file is damaged, use another checkpoint");
  }
  const expected = 16 + h + header.floats * 4 + 4;
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
  return { config, params, optimizer, meta: header.meta ?? {} };
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
 * optional) and `meta` (JSON-serialisable) to `path`, atomically.
 */
export async function saveCheckpoint(
  path: string,
  head: EmbeddingHead,
  optimizer?: TrainStep | SgdMomentum | OptimizerState,
  meta: Record<string, unknown> = {},
): Promise<void> {
  const optimizerState = await optimizerStateOf(optimizer);
  const bytes = encodeCheckpoint({
    config: head.config,
    params: await head.parameters(),
    optimizer: optimizerState,
    meta,
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
  head: EmbeddingHead;
  optimizerState?: OptimizerState;
  meta: Record<string, unknown>;
}

/**
 * Loads a checkpoint. With a Gpu: builds a new head from it. With an existing head (and optionally the
 * TrainStep or SgdMomentum training it): checks that the shapes match (UserError naming both otherwise),
 * loads the parameters and the optimiser state in place, and returns the metadata.
 */
export function loadCheckpoint(path: string, gpu: Gpu): Promise<LoadedCheckpoint>;
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
  const want = target.layers.map((s) => `${s.inDim}->${s.outDim}`).join(", ");
  const got = c.params.map((s) => `${s.inDim}->${s.outDim}`).join(", ");
  if (want !== got || target.config.normalize !== c.config.normalize) {
    throw new UserError(
      `checkpoint ${path} holds a head with layers [${got}]${
        c.config.normalize ? " (normalised)" : ""
      } but this ` +
        `head has [${want}]${
          target.config.normalize ? " (normalised)" : ""
        }; use a matching head configuration`,
    );
  }
  target.setParameters(c.params);
  if (optimizer) {
    if (!c.optimizer) throw new UserError(`checkpoint ${path} holds no optimiser state to resume from`);
    if (optimizer instanceof TrainStep) optimizer.loadOptimizerState(c.optimizer);
    else optimizer.loadState(c.optimizer);
  }
  return c.meta;
}
