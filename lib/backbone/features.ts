/**
 * The on-disk feature cache: backbone outputs for every image of a dataset, computed once (the
 * backbone is frozen) and read back as a {@link Dataset} for training the head.
 *
 * ## Format (version 1)
 * A cache is one folder:
 * - `manifest.json`: `{ format: "dml-features", version: 1, key, keyHash, featureDim, splits, skipped,
 *   complete, provider, createdAt, updatedAt }`. `key` is everything that decides the numbers:
 *   the dataset (loader, root, name and a sha256 of its image list with labels), the model (sha256 of
 *   the file, the exposed output tensor), the preprocessing (preset, resize, crop), the views per
 *   training image and the augmentation seed. `keyHash` is the sha256 of `key`'s canonical JSON.
 *   `splits.train` / `splits.test`: `{ images, views, shardSize, shards: [{ file, start, count, rows,
 *   skipped }] }`, listing only finished shards.
 * - `samples.json`: `{ train: [[id, label], ...], test: [...], classes: [[label, name], ...] }`, the
 *   image ids (paths relative to the root) and labels in row order, and the class names.
 * - `train-00000.f32`, `test-00000.f32`, ...: shards of `shardSize` images each, raw little-endian
 *   float32, `rows x views x featureDim` values, image-major (image i's views are consecutive), with
 *   `rows = count - skipped.length` (unreadable images skipped on request are left out).
 *
 * Training images get `views` rows each: view 0 is the centre crop, views 1..K-1 random crops with
 * random mirroring (seeded per image and view, so a resumed run computes the same views). Test images
 * get the centre crop only.
 *
 * ## Invalidation and resume
 * A folder whose manifest carries another `keyHash` is never reused: extraction stops with an error
 * naming what differs (pass `overwrite` to replace it). Every shard and every manifest update is
 * written atomically (temporary name, then rename); the manifest lists a shard only after its file is
 * complete, so an interrupted extraction resumes at the first unlisted shard. An extraction holds the
 * folder's `.lock` (lib/util/lock.ts): a second one on the same folder is refused while the first runs.
 * Loading checks the manifest against samples.json and the shards (every image covered once, integer
 * labels, every shard present and of its size) and names the damaged file.
 * @module
 */
import { UserError } from "../errors.ts";
import type { Dataset, LabeledSplit } from "../data/dataset.ts";
import { ImageDecodeError } from "../data/image.ts";
import type { ImageListDataset, ImageListFormat, ImageSample } from "../data/image_list.ts";
import { listCub } from "../data/cub.ts";
import { listCars } from "../data/cars.ts";
import { listFolder } from "../data/folder.ts";
import { exists, isTempName, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { FolderLock } from "../util/lock.ts";
import { Progress } from "../util/progress.ts";
import { type OnnxBackbone, sha256Hex } from "./onnx.ts";
import { checkSpec, type PreprocessSpec } from "./preprocess.ts";
import { DecodePool, resultError } from "./decode_pool.ts";

/** Cache format version written into manifests. */
export const FEATURE_CACHE_VERSION = 1;

/** Lists an image dataset by loader name. */
export function listImageDataset(format: ImageListFormat, root: string): Promise<ImageListDataset> {
  switch (format) {
    case "cub":
      return listCub(root);
    case "cars":
      return listCars(root);
    case "folder":
      return listFolder(root);
    default:
      throw new UserError(`unknown dataset '${format}': use cub, cars or folder`);
  }
}

/** Everything that decides the cached numbers. */
export interface FeatureCacheKey {
  /** The image list: loader, root, name and the sha256 of its paths with labels. */
  dataset: { format: ImageListFormat; name: string; root: string; listSha256: string };
  /** The model file's sha256 and the exposed output tensor. */
  model: { sha256: string; output: string };
  /** Resize, crop and normalisation. */
  preprocess: PreprocessSpec;
  /** Views per training image (1 = the centre crop only). */
  views: number;
  /** Seed of the random crops and flips. */
  seed: number;
}

/** One finished shard. */
export interface ShardEntry {
  /** File name inside the cache folder. */
  file: string;
  /** Index of the shard's first image in the split's image list. */
  start: number;
  /** Images the shard covers. */
  count: number;
  /** Rows stored (count minus skipped). */
  rows: number;
  /** Split-wide indexes of images skipped as unreadable. */
  skipped: number[];
}

/** A split's part of the manifest. */
export interface SplitManifest {
  /** Images of the split. */
  images: number;
  /** Rows per image (views for train, 1 for test). */
  views: number;
  /** Images per shard file. */
  shardSize: number;
  /** Finished shards, in order. */
  shards: ShardEntry[];
}

/** The manifest of a cache folder. */
export interface FeatureManifest {
  /** Always "dml-features". */
  format: "dml-features";
  /** Format version (1). */
  version: number;
  /** Everything that decides the numbers. */
  key: FeatureCacheKey;
  /** sha256 of `key`'s canonical JSON: a cache is reused only when it matches. */
  keyHash: string;
  /** Width of one feature row (null until the first batch ran). */
  featureDim: number | null;
  /** Shard lists per split. */
  splits: { train: SplitManifest; test: SplitManifest };
  /** Images left out with `skipBadImages`, and why. */
  skipped: { split: "train" | "test"; index: number; id: string; reason: string }[];
  /** True once every shard of both splits is written. */
  complete: boolean;
  /** The execution provider that ran the backbone. */
  provider: string;
  /** ISO time the cache was started. */
  createdAt: string;
  /** ISO time of the last manifest update. */
  updatedAt: string;
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`
      )
        .join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/** The sha256 (hex) of a key's canonical JSON. */
export function hashKey(key: FeatureCacheKey): Promise<string> {
  return sha256Hex(new TextEncoder().encode(canonicalJson(key)));
}

/** The sha256 of an image list (split, id, label per line), for the cache key. */
export function hashImageList(ds: ImageListDataset): Promise<string> {
  const text = [
    ...ds.train.map((s) => `train\t${s.id}\t${s.label}`),
    ...ds.test.map((s) => `test\t${s.id}\t${s.label}`),
  ].join("\n");
  return sha256Hex(new TextEncoder().encode(text));
}

/** Key fields that differ between two keys (for the stale-cache message). */
export function keyDifferences(a: FeatureCacheKey, b: FeatureCacheKey): string[] {
  const flat = (k: FeatureCacheKey): Record<string, string> => ({
    "dataset": `${k.dataset.format}:${k.dataset.root}`,
    "image list": k.dataset.listSha256,
    "model file (sha256)": k.model.sha256,
    "output tensor": k.model.output,
    "preprocessing preset": k.preprocess.preset,
    "resize/crop": `${k.preprocess.resize}/${k.preprocess.crop}`,
    "views": String(k.views),
    "seed": String(k.seed),
  });
  const fa = flat(a), fb = flat(b);
  return Object.keys(fa).filter((k) => fa[k] !== fb[k]).map((k) => `${k}: ${fa[k]} -> ${fb[k]}`);
}

/** Options for {@link extractFeatures}. */
export interface ExtractOptions {
  /** Cache folder to write (created if missing). */
  outDir: string;
  /** Preprocessing (preset, resize, crop). */
  preprocess: PreprocessSpec;
  /**
   * Views per training image (1 = centre crop only; default 1).
   * @default 1
   */
  views?: number;
  /**
   * Seed of the augmentation views (default 0).
   * @default 0
   */
  seed?: number;
  /**
   * Network images per batch (default 16).
   * @default 16
   */
  batch?: number;
  /**
   * Images per shard file (default 256; a resumed cache keeps the size it was started with).
   * @default 256
   */
  shardSize?: number;
  /**
   * Workers that decode and preprocess images in parallel with the backbone (default: cores - 1, at
   * most 8, and 0 on machines with 2 cores or fewer, where the backbone already uses them; 0 = decode
   * on the calling thread).
   * @default cores - 1, at most 8 (0 with 2 cores or fewer)
   */
  decodeWorkers?: number;
  /**
   * Skip unreadable images with a warning instead of stopping (default false).
   * @default false
   */
  skipBadImages?: boolean;
  /**
   * Replace a cache folder made with a different key (default false: refuse).
   * @default false
   */
  overwrite?: boolean;
  /**
   * Stop after this many new shards (for tests of resume; default: all).
   * @default all
   */
  maxShards?: number;
  /**
   * No progress bar.
   * @default false
   */
  quiet?: boolean;
  /**
   * Where log lines go (default stderr).
   * @default stderr
   */
  log?: (line: string) => void;
}

/** What {@link extractFeatures} did. */
export interface ExtractResult {
  /** The cache folder. */
  dir: string;
  /** Its manifest after the extraction. */
  manifest: FeatureManifest;
  /** Shards computed by this call (0 when the cache was already complete). */
  shardsComputed: number;
  /** Shards found finished from an earlier run. */
  shardsReused: number;
}

const MANIFEST = "manifest.json";
const SAMPLES = "samples.json";

async function readManifest(dir: string): Promise<FeatureManifest | undefined> {
  const path = `${dir}/${MANIFEST}`;
  if (!(await exists(path))) return undefined;
  try {
    const m = JSON.parse(await Deno.readTextFile(path)) as FeatureManifest;
    if (m.format !== "dml-features") throw new Error("not a feature cache manifest");
    return m;
  } catch (e) {
    throw new UserError(`${path} is not a readable feature cache manifest (${(e as Error).message})`);
  }
}

async function clearCache(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && (e.name === MANIFEST || e.name === SAMPLES || /^(train|test)-\d+\.f32/.test(e.name))) {
      await Deno.remove(`${dir}/${e.name}`);
    }
  }
}

async function prepareDir(dir: string, keyHash: string, key: FeatureCacheKey, overwrite: boolean) {
  await Deno.mkdir(dir, { recursive: true });
  const old = await readManifest(dir);
  if (old && old.keyHash === keyHash && old.version === FEATURE_CACHE_VERSION) return old;
  if (old && !overwrite) {
    const diff = old.key ? keyDifferences(old.key, key) : [];
    throw new UserError((n) =>
      `${dir} holds features computed with different settings (${
        diff.join("; ") || "another format version"
      }). ` +
      `Choose another ${n("outDir")} folder, or set ${n("overwrite")} to replace them.`
    );
  }
  if (!old) {
    let other = false;
    for await (const e of Deno.readDir(dir)) other ||= !e.name.startsWith(".");
    if (other && !overwrite) {
      throw new UserError((n) =>
        `${dir} is not empty and holds no feature cache; choose an empty or new ${n("outDir")} folder`
      );
    }
  }
  await clearCache(dir);
  return undefined;
}

function emptySplit(images: number, views: number, shardSize: number): SplitManifest {
  return { images, views, shardSize, shards: [] };
}

/**
 * Extracts features for every image of `ds` with `backbone` into `opts.outDir`, resuming a previous
 * run with the same key. Returns the final manifest.
 */
export async function extractFeatures(
  ds: ImageListDataset,
  backbone: OnnxBackbone,
  opts: ExtractOptions,
): Promise<ExtractResult> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const views = opts.views ?? 1;
  const seed = opts.seed ?? 0;
  const batch = Math.max(1, opts.batch ?? 16);
  const shardSize = Math.max(1, opts.shardSize ?? 256);
  if (!Number.isInteger(views) || views < 1) {
    throw new UserError((n) => `${n("views")} must be a whole number >= 1 (got ${views})`);
  }
  checkSpec(opts.preprocess);
  const { height, width } = backbone.inputSize;
  if ((height && height !== opts.preprocess.crop) || (width && width !== opts.preprocess.crop)) {
    throw new UserError((n) =>
      `the model takes ${height}x${width} images but ${n("preprocess.crop")} is ${opts.preprocess.crop}; ` +
      `set ${n("preprocess.crop")} to ${height}`
    );
  }
  const key: FeatureCacheKey = {
    dataset: { format: ds.format, name: ds.name, root: ds.root, listSha256: await hashImageList(ds) },
    model: { sha256: backbone.modelHash, output: backbone.outputName },
    preprocess: {
      preset: opts.preprocess.preset,
      resize: opts.preprocess.resize,
      crop: opts.preprocess.crop,
    },
    views,
    seed,
  };
  const keyHash = await hashKey(key);
  const dir = opts.outDir;
  const now = () => new Date().toISOString();
  // One extraction per cache at a time; files a killed one left half-written go.
  await Deno.mkdir(dir, { recursive: true });
  using _lock = await FolderLock.acquire(`${dir}/.lock`, `feature cache ${dir}`, "features");
  for await (const e of Deno.readDir(dir)) if (isTempName(e.name)) await Deno.remove(`${dir}/${e.name}`);
  let manifest = await prepareDir(dir, keyHash, key, opts.overwrite ?? false);
  if (manifest?.complete) {
    log(`features: ${dir} is complete for these settings (key ${keyHash.slice(0, 12)}); nothing to do`);
    return {
      dir,
      manifest,
      shardsComputed: 0,
      shardsReused: manifest.splits.train.shards.length + manifest.splits.test.shards.length,
    };
  }
  if (!manifest) {
    manifest = {
      format: "dml-features",
      version: FEATURE_CACHE_VERSION,
      key,
      keyHash,
      featureDim: null,
      splits: {
        train: emptySplit(ds.train.length, views, shardSize),
        test: emptySplit(ds.test.length, 1, shardSize),
      },
      skipped: [],
      complete: false,
      provider: backbone.providerDetail,
      createdAt: now(),
      updatedAt: now(),
    };
    await writeJsonAtomic(`${dir}/${SAMPLES}`, {
      train: ds.train.map((s) => [s.id, s.label]),
      test: ds.test.map((s) => [s.id, s.label]),
      classes: [...ds.classNames],
    });
    await writeJsonAtomic(`${dir}/${MANIFEST}`, manifest);
  } else {
    const done = manifest.splits.train.shards.length + manifest.splits.test.shards.length;
    log(`features: resuming ${dir}: ${done} shard(s) already done`);
  }
  const m = manifest;
  const per = 3 * opts.preprocess.crop * opts.preprocess.crop;
  const cores = navigator.hardwareConcurrency ?? 1;
  const pool = new DecodePool(opts.decodeWorkers ?? (cores <= 2 ? 0 : Math.min(8, cores - 1)));
  // Two input buffers: batch b+1 is decoded into one while the backbone reads the other.
  const slots = Math.max(batch, views);
  const inputs: [Float32Array, Float32Array] = [new Float32Array(slots * per), new Float32Array(slots * per)];
  let shardsComputed = 0, shardsReused = 0;
  let budget = opts.maxShards ?? Infinity;
  try {
    for (const split of ["train", "test"] as const) {
      const samples = ds[split];
      const sm = m.splits[split];
      const done = await checkFinishedShards(dir, sm, m.featureDim);
      shardsReused += done.size;
      const todo = samples.length - sm.shards.reduce((a, s) => a + s.count, 0);
      const ctx: ShardContext = {
        backbone,
        pool,
        spec: opts.preprocess,
        seed,
        views: sm.views,
        imagesPerBatch: Math.max(1, Math.floor(batch / sm.views)),
        inputs,
        skipBadImages: opts.skipBadImages ?? false,
        log,
        bar: new Progress(`features ${split}`, todo * sm.views, { unit: "img", quiet: opts.quiet }),
      };
      // A resumed run keeps the shard size it started with, so shard boundaries line up.
      const step = sm.shardSize;
      for (let start = 0; start < samples.length && budget > 0; start += step) {
        if (done.has(start)) continue;
        const count = Math.min(step, samples.length - start);
        const { data, skipped } = await computeShard(ctx, samples, start, count);
        if (m.featureDim === null && backbone.featureDim !== undefined) m.featureDim = backbone.featureDim;
        const file = `${split}-${String(start / step).padStart(5, "0")}.f32`;
        await writeFileAtomic(`${dir}/${file}`, toLittleEndianBytes(data));
        // Only now, with the shard file complete, does the manifest list it.
        for (const i of skipped) m.skipped.push({ split, index: i, id: samples[i].id, reason: "unreadable" });
        sm.shards.push({ file, start, count, rows: count - skipped.length, skipped });
        sm.shards.sort((a, b) => a.start - b.start);
        m.updatedAt = now();
        m.provider = backbone.providerDetail;
        await writeJsonAtomic(`${dir}/${MANIFEST}`, m);
        shardsComputed++;
        budget--;
      }
      ctx.bar.done();
    }
  } finally {
    pool.close();
  }
  const covered = (s: SplitManifest) => s.shards.reduce((a, x) => a + x.count, 0) === s.images;
  if (covered(m.splits.train) && covered(m.splits.test)) {
    for (const split of ["train", "test"] as const) {
      const kept = m.splits[split].shards.reduce((a, s) => a + s.rows, 0);
      if (kept === 0) throw new UserError(`no ${split} image could be read; nothing to train or test on`);
    }
    m.complete = true;
    m.updatedAt = now();
    await writeJsonAtomic(`${dir}/${MANIFEST}`, m);
    log(
      `features: wrote ${dir} (${m.featureDim}-d, key ${keyHash.slice(0, 12)}, ${backbone.providerDetail})`,
    );
  }
  return { dir, manifest: m, shardsComputed, shardsReused };
}

/** The shards a previous run finished (by start index), after checking each file's size. */
async function checkFinishedShards(
  dir: string,
  sm: SplitManifest,
  featureDim: number | null,
): Promise<Set<number>> {
  const done = new Set<number>();
  for (const s of sm.shards) {
    const expected = s.rows * sm.views * (featureDim ?? 0) * 4;
    const st = await Deno.stat(`${dir}/${s.file}`).catch(() => undefined);
    if (!st || st.size !== expected) {
      throw new UserError((n) =>
        `${dir}/${s.file} is missing or has the wrong size (${st?.size ?? 0} bytes, expected ${expected}); ` +
        `the cache is damaged: extract again with ${n("overwrite")}`
      );
    }
    done.add(s.start);
  }
  return done;
}

/** What computing a shard needs. */
interface ShardContext {
  backbone: OnnxBackbone;
  pool: DecodePool;
  spec: PreprocessSpec;
  seed: number;
  /** Views per image of this split. */
  views: number;
  imagesPerBatch: number;
  inputs: [Float32Array, Float32Array];
  skipBadImages: boolean;
  log: (line: string) => void;
  bar: Progress;
}

/**
 * Decodes images `idx` (their views) into `buf` in order; returns how many network images it wrote.
 * Unreadable images are skipped (added to `skipped`) when asked, else a UserError.
 */
async function decodeBatch(
  ctx: ShardContext,
  samples: ImageSample[],
  idx: number[],
  buf: Float32Array,
  skipped: number[],
): Promise<number> {
  const per = 3 * ctx.spec.crop * ctx.spec.crop;
  const results = await Promise.all(
    idx.map((i) =>
      ctx.pool.decode({ path: samples[i].path, image: i, views: ctx.views, seed: ctx.seed, spec: ctx.spec })
    ),
  );
  let items = 0;
  results.forEach((r, j) => {
    const err = resultError(r);
    if (err) {
      if (!(err instanceof ImageDecodeError)) throw err;
      if (!ctx.skipBadImages) {
        throw new UserError((n) =>
          `${err.message}. Fix or remove the file, or set ${n("skipBadImages")} to skip it with a warning.`
        );
      }
      ctx.log(`features: WARNING: skipping ${samples[idx[j]].path}: ${err.message}`);
      skipped.push(idx[j]);
      return;
    }
    buf.set(r.data!, items * per);
    items += ctx.views;
  });
  return items;
}

/**
 * Runs the backbone over images `[start, start + count)`, decoding batch b+1 while batch b runs; returns
 * the rows (`images x views x dim`, image-major) and the images skipped.
 */
async function computeShard(
  ctx: ShardContext,
  samples: ImageSample[],
  start: number,
  count: number,
): Promise<{ data: Float32Array; skipped: number[] }> {
  const end = start + count;
  const skipped: number[] = [];
  const batchAt = (b: number) =>
    Array.from({ length: Math.min(end, b + ctx.imagesPerBatch) - b }, (_, i) => b + i);
  const rows: Float32Array[] = [];
  let next = decodeBatch(ctx, samples, batchAt(start), ctx.inputs[0], skipped);
  for (let b = start, turn = 0; b < end; b += ctx.imagesPerBatch, turn ^= 1) {
    const items = await next;
    const running = items ? ctx.backbone.run(ctx.inputs[turn], items, ctx.spec.crop) : undefined;
    const nb = b + ctx.imagesPerBatch;
    next = nb < end
      ? decodeBatch(ctx, samples, batchAt(nb), ctx.inputs[turn ^ 1], skipped)
      : Promise.resolve(0);
    // Settle both before going on, so a decode error never leaves a run unobserved (or vice versa);
    // a decode error of batch b+1 surfaces at the top of the next turn.
    const [out] = await Promise.all([running, next.catch(() => 0)]);
    if (out) {
      rows.push(out.data);
      ctx.bar.tick(items);
    }
  }
  await next;
  const data = new Float32Array(rows.reduce((a, r) => a + r.length, 0));
  let off = 0;
  for (const r of rows) {
    data.set(r, off);
    off += r.length;
  }
  return { data, skipped };
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function toLittleEndianBytes(a: Float32Array): Uint8Array {
  if (littleEndian) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.length * 4);
  const view = new DataView(out.buffer);
  a.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

function fromLittleEndianBytes(b: Uint8Array): Float32Array {
  if (littleEndian && b.byteOffset % 4 === 0) {
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(b.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

const DAMAGED = "the cache is damaged: extract the features again, replacing this folder";

/** Checks a complete manifest's splits: shards that cover every image once, in order, with their rows. */
function checkManifest(dir: string, m: FeatureManifest): void {
  const fail = (why: string): never => {
    throw new UserError(`${dir}/${MANIFEST}: ${why}; ${DAMAGED}`);
  };
  const count = (v: unknown, min: number) => Number.isInteger(v) && (v as number) >= min;
  if (!count(m.featureDim, 1)) fail(`featureDim ${JSON.stringify(m.featureDim)} is not a positive integer`);
  if (!m.splits || typeof m.splits !== "object") fail("it has no splits");
  for (const split of ["train", "test"] as const) {
    const sm = m.splits[split];
    if (!sm || !count(sm.images, 0) || !count(sm.views, 1) || !Array.isArray(sm.shards)) {
      fail(`splits.${split} is missing or incomplete (images, views, shards)`);
    }
    let next = 0;
    for (const [i, s] of sm.shards.entries()) {
      const what = `splits.${split}.shards[${i}]`;
      if (typeof s?.file !== "string" || !/^[\w.-]+$/.test(s.file)) fail(`${what} names no shard file`);
      if (!count(s.start, 0) || !count(s.count, 1) || !count(s.rows, 0) || !Array.isArray(s.skipped)) {
        fail(`${what} lacks start, count, rows or skipped`);
      }
      if (s.start !== next) fail(`${what} starts at image ${s.start}, expected ${next}`);
      if (s.rows !== s.count - s.skipped.length) fail(`${what} holds ${s.rows} rows for ${s.count} images`);
      if (s.skipped.some((j: number) => !Number.isInteger(j) || j < s.start || j >= s.start + s.count)) {
        fail(`${what} skips images outside its range`);
      }
      next = s.start + s.count;
    }
    if (next !== sm.images) fail(`the ${split} shards cover ${next} of ${sm.images} images`);
  }
}

/** samples.json, checked against the manifest: one [id, integer label] per image of each split. */
async function readSamples(dir: string, m: FeatureManifest): Promise<{
  train: [string, number][];
  test: [string, number][];
  classes?: [number, string][];
}> {
  const path = `${dir}/${SAMPLES}`;
  let samples;
  try {
    samples = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new UserError(
      e instanceof SyntaxError
        ? `${path} is not valid JSON (cut off?); ${DAMAGED}`
        : `${path}: ${e instanceof Deno.errors.NotFound ? "missing" : (e as Error).message}; ${DAMAGED}`,
    );
  }
  for (const split of ["train", "test"] as const) {
    const list = samples?.[split];
    const images = m.splits[split].images;
    if (!Array.isArray(list) || list.length !== images) {
      throw new UserError(
        `${path}: ${split} lists ${Array.isArray(list) ? list.length : "no"} samples but the manifest has ` +
          `${images} images; ${DAMAGED}`,
      );
    }
    list.forEach((entry: unknown, i: number) => {
      const [id, label] = Array.isArray(entry) ? entry : [];
      if (typeof id !== "string" || !Number.isInteger(label)) {
        throw new UserError(
          `${path}: ${split} sample ${i} is ${JSON.stringify(entry)}, not [id, integer label]; ${DAMAGED}`,
        );
      }
    });
  }
  if (samples.classes !== undefined && !Array.isArray(samples.classes)) {
    throw new UserError(`${path}: classes is not a list of [label, name]; ${DAMAGED}`);
  }
  return samples;
}

async function readShard(dir: string, file: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(`${dir}/${file}`);
  } catch (e) {
    throw new UserError(
      `${dir}/${file} ${
        e instanceof Deno.errors.NotFound ? "is missing" : `cannot be read (${(e as Error).message})`
      }; ${DAMAGED}`,
    );
  }
}

/** Options for {@link loadFeatureDataset}. */
export interface LoadFeatureOptions {
  /**
   * Which training views become rows: `all` (default) gives `images x views` rows, image-major (rows
   * i*K .. i*K+K-1 are the views of image i, labels repeated); `centre` (or `center`) gives one row
   * per image (view 0, the centre crop).
   * @default "all"
   */
  views?: "all" | "centre" | "center";
}

/** A {@link Dataset} read from a feature cache, with where it came from. */
export interface FeatureDataset extends Dataset {
  /** The cache folder. */
  dir: string;
  /** The cache's manifest. */
  manifest: FeatureManifest;
  /** Training rows per image in `train` (K for views "all", 1 for "centre"). */
  trainViewsPerImage: number;
}

/**
 * Reads a cache folder written by `deno task features` (or {@link extractFeatures}) as a Dataset:
 * train features `[images * K x dim]` (or `[images x dim]` with `views: "centre"`), test features
 * `[images x dim]` (centre crops), labels as in the dataset, ids and image files per row.
 */
export async function loadFeatureDataset(
  dir: string,
  options: LoadFeatureOptions = {},
): Promise<FeatureDataset> {
  const manifest = await readManifest(dir);
  if (!manifest) {
    throw new UserError(
      `${dir} is not a feature cache (no ${MANIFEST}). Extract one into it first (extractFeatures, the ` +
        `features task), or point at the folder that holds one`,
    );
  }
  if (manifest.version !== FEATURE_CACHE_VERSION) {
    throw new UserError(
      `${dir} has cache format version ${manifest.version}; this toolkit reads ${FEATURE_CACHE_VERSION}`,
    );
  }
  if (!manifest.complete || manifest.featureDim === null) {
    throw new UserError(
      `${dir} is incomplete (extraction was interrupted): rerun the same 'deno task features' command to resume it`,
    );
  }
  checkManifest(dir, manifest);
  const samples = await readSamples(dir, manifest);
  const dim = manifest.featureDim;
  const mode = options.views ?? "all";
  const root = manifest.key.dataset.root;

  const readSplit = async (split: "train" | "test"): Promise<{ split: LabeledSplit; k: number }> => {
    const sm = manifest.splits[split];
    const list = samples[split];
    const stored = sm.views;
    const k = mode === "all" ? stored : 1;
    const kept: number[] = [];
    const skipped = new Set(sm.shards.flatMap((s) => s.skipped));
    for (let i = 0; i < list.length; i++) if (!skipped.has(i)) kept.push(i);
    const data = new Float32Array(kept.length * k * dim);
    let row = 0;
    for (const s of sm.shards) {
      const values = fromLittleEndianBytes(await readShard(dir, s.file));
      if (values.length !== s.rows * stored * dim) {
        throw new UserError(
          `${dir}/${s.file} has ${values.length} values, expected ${
            s.rows * stored * dim
          }: the cache is damaged`,
        );
      }
      for (let r = 0; r < s.rows; r++) {
        if (k === stored) data.set(values.subarray(r * stored * dim, (r + 1) * stored * dim), row * k * dim);
        else data.set(values.subarray(r * stored * dim, r * stored * dim + dim), row * dim); // view 0 only
        row++;
      }
    }
    const labels = new Int32Array(kept.length * k);
    kept.forEach((i, j) => labels.fill(list[i][1], j * k, (j + 1) * k));
    const idOf = (r: number) => list[kept[Math.floor(r / k)]][0];
    return {
      k,
      split: {
        features: { rows: kept.length * k, cols: dim, data },
        labels,
        id: (r) => (k > 1 ? `${idOf(r)}#view${r % k}` : idOf(r)),
        image: (r) => ({ kind: "file", path: `${root}/${idOf(r)}` }),
      },
    };
  };
  const train = await readSplit("train");
  const test = await readSplit("test");
  return {
    name: manifest.key.dataset.name,
    train: train.split,
    test: test.split,
    classNames: samples.classes ? new Map(samples.classes) : undefined,
    dir,
    manifest,
    trainViewsPerImage: train.k,
  };
}
