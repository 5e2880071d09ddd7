/**
 * From a training run folder to a retrieval index on disk (what `deno task index` runs): reads the run's
 * config.json, checkpoint.bin and summary.json, loads its data the way training did, takes the gallery
 * split(s), and writes `<out>/index.bin` (default `<run>/index/`) atomically. File system here; the
 * building itself is lib/retrieval/build.ts.
 * @module
 */
import type { FeatureDataset } from "../backbone/features.ts";
import { type DatasetConfig, resolveConfig, type TrainConfig } from "../config.ts";
import type { Dataset, LabeledSplit } from "../data/dataset.ts";
import { loadDataset } from "../dataset_config.ts";
import { UserError } from "../errors.ts";
import { getGpu, type Gpu } from "../gpu/device.ts";
import { readCheckpoint } from "../model/checkpoint.ts";
import { writeFileAtomic } from "../util/fs.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { Progress } from "../util/progress.ts";
import { buildGalleryIndex, type BuiltGallery } from "./build.ts";
import { type FeatureSource, RETRIEVAL_FILE, type RetrievalHeader } from "./format.ts";

/** Which split(s) of the run become the gallery. */
export type GallerySplit = "train" | "test" | "all";

/** Options of {@link indexRun}. */
export interface IndexRunOptions {
  /**
   * Gallery split(s) (default "test").
   * @default "test"
   */
  gallery?: GallerySplit;
  /**
   * Output folder (default `<run>/index`).
   * @default "<run>/index"
   * @default `<run>/index`
   */
  out?: string;
  /**
   * FANNG maximum out-degree (default 32).
   * @default 32
   */
  maxDegree?: number;
  /**
   * Seed of the graph construction (default 1).
   * @default 1
   */
  seed?: number;
  /**
   * Default search budget stored in the index.
   * @default {@link DEFAULT_SEARCH_BUDGET}
   */
  budget?: number;
  /**
   * Store the gallery's pixels (IDX data; default true), for thumbnails.
   * @default true
   */
  pixels?: boolean;
  /**
   * No progress output.
   * @default false
   */
  quiet?: boolean;
  /**
   * The GPU to use (default `getGpu()`).
   * @default getGpu()
   * @default `getGpu()`
   */
  gpu?: Gpu;
}

/** What {@link indexRun} wrote. */
export interface IndexRunResult extends BuiltGallery {
  /** Path of the index.bin written. */
  path: string;
}

async function readJsonFile(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`${path} not found: ${what}`);
    throw new UserError(`cannot read ${path} (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

/** The run's training config (config.json with every default filled in). */
export async function readRunConfig(runDir: string): Promise<TrainConfig> {
  const saved = await readJsonFile(
    `${runDir}/config.json`,
    `is ${runDir} a run folder? (training writes one)`,
  );
  delete saved.adapter;
  return resolveConfig({ ...saved, outDir: runDir });
}

/**
 * Loads a run's data as training saw it (same limits and split); a feature cache gives one row per image
 * (its centre view), as a gallery or query wants.
 */
export async function loadRunData(
  data: { dataset: DatasetConfig; trainLimit: number; testLimit: number },
): Promise<Dataset> {
  const dataset: DatasetConfig = data.dataset.kind === "features"
    ? { ...data.dataset, views: "centre" }
    : data.dataset;
  return await loadDataset(dataset, { train: data.trainLimit, test: data.testLimit });
}

function concatRows(mats: HostMatrix[]): HostMatrix {
  if (mats.length === 1) return mats[0];
  const rows = mats.reduce((s, m) => s + m.rows, 0), cols = mats[0].cols;
  const data = new Float32Array(rows * cols);
  let o = 0;
  for (const m of mats) data.set(m.data, o), o += m.data.length;
  return { rows, cols, data };
}

/** The pixels of every sample of `splits` (all must be same-sized pixel images), or null. */
function splitPixels(
  splits: LabeledSplit[],
): { pixels: Uint8Array; width: number; height: number; channels: 1 | 3 } | null {
  const first = splits[0].image?.(0);
  if (first?.kind !== "pixels") return null;
  const { width, height, channels } = first;
  const per = width * height * channels;
  const total = splits.reduce((s, sp) => s + sp.labels.length, 0);
  const pixels = new Uint8Array(total * per);
  let o = 0;
  for (const sp of splits) {
    for (let i = 0; i < sp.labels.length; i++, o += per) {
      const img = sp.image!(i);
      if (img.kind !== "pixels" || img.pixels.length !== per) return null;
      pixels.set(img.pixels, o);
    }
  }
  return { pixels, width, height, channels };
}

/** Builds `<out>/index.bin` for the run in `runDir`. */
export async function indexRun(runDir: string, options: IndexRunOptions = {}): Promise<IndexRunResult> {
  const gallery = options.gallery ?? "test";
  if (!["train", "test", "all"].includes(gallery)) {
    throw new UserError(`gallery must be train, test or all, got '${gallery}'`);
  }
  const run = runDir.replace(/\/+$/, "") || ".";
  const config = await readRunConfig(run);
  const checkpoint = await readCheckpoint(`${run}/checkpoint.bin`);
  const summary = await readJsonFile(`${run}/summary.json`, "the run has not finished (no summary.json)")
    .catch(() => undefined);
  const data = { dataset: config.dataset, trainLimit: config.trainLimit, testLimit: config.testLimit };
  const ds = await loadRunData(data);
  const splits = gallery === "all" ? [ds.train, ds.test] : [ds[gallery]];
  const features = concatRows(splits.map((s) => s.features));
  if (features.cols !== checkpoint.config.inDim) {
    throw new UserError(
      `${run}/checkpoint.bin holds a head for ${checkpoint.config.inDim} inputs but the run's data ` +
        `(${ds.name}) has ${features.cols} features per sample: the checkpoint and config.json do not match`,
    );
  }
  const labels = new Int32Array(features.rows);
  const ids: string[] = [];
  let o = 0;
  for (const [s, split] of splits.entries()) {
    labels.set(split.labels, o);
    const name = gallery === "all" ? (s === 0 ? "train" : "test") : gallery;
    for (let i = 0; i < split.labels.length; i++) ids.push(split.id?.(i) ?? `${name}/${i}`);
    o += split.labels.length;
  }

  const pix = splitPixels(splits);
  let source: FeatureSource;
  let identities: RetrievalHeader["identities"];
  if (config.dataset.kind === "features") {
    const m = (ds as FeatureDataset).manifest;
    source = {
      kind: "backbone",
      model: m.key.model,
      preprocess: m.key.preprocess,
      featureDim: features.cols,
      cache: config.dataset.dir,
    };
    identities = { kind: "path", root: m.key.dataset.root };
  } else {
    if (!pix) throw new UserError(`${ds.name}: the samples have no pixels of one size to index`);
    source = { kind: "pixels", width: pix.width, height: pix.height, channels: pix.channels };
    identities = { kind: "idx-row" };
  }
  const keepPixels = options.pixels ?? true;
  const final = summary?.final as
    | { epoch?: number; eval?: { recall?: Record<string, number>; nmi?: number } }
    | null;

  const gpu = options.gpu ?? (await getGpu());
  const bar = new Progress("index: embedding", features.rows, { unit: "img", quiet: options.quiet });
  let graphBar: Progress | undefined;
  let counted = 0; // rows the embedding bar has shown (the build reports cumulative rows)
  const built = await buildGalleryIndex(gpu, {
    head: { config: checkpoint.config, params: checkpoint.params },
    features,
    labels,
    ids,
    pixels: keepPixels ? pix?.pixels : null,
    header: {
      features: source,
      gallery: { split: gallery, dataset: ds.name },
      data,
      identities,
      classes: ds.classNames ? [...ds.classNames] : null,
      pixels: keepPixels && pix ? { width: pix.width, height: pix.height, channels: pix.channels } : null,
      source: {
        run,
        epochs: typeof summary?.epochs === "number" ? summary.epochs : null,
        recall: final?.eval?.recall ?? null,
        adapter: gpu.report.name,
      },
    },
  }, {
    maxDegree: options.maxDegree,
    seed: options.seed,
    budget: options.budget,
    onProgress: ({ phase, done, total }) => {
      if (phase === "embed" && done > counted) bar.tick(done - counted), counted = done;
      if (phase === "graph" && done === 0) {
        bar.done();
        graphBar = new Progress("index: FANNG graph", 1, { unit: "graph", quiet: options.quiet });
        graphBar.status(`${total} items, max degree ${options.maxDegree ?? 32}`);
      }
      if (phase === "graph" && done === total) graphBar?.tick(1), graphBar?.done();
    },
  });
  const outDir = (options.out ?? `${run}/index`).replace(/\/+$/, "");
  await Deno.mkdir(outDir, { recursive: true });
  const path = `${outDir}/${RETRIEVAL_FILE}`;
  await writeFileAtomic(path, built.bytes);
  return { ...built, path };
}
