/**
 * Making queries for a retrieval index from what a user has (what `deno task search` runs): a row of the
 * run's test split, an image file (made into pixels like the gallery's, or run through the backbone the
 * index records), or a file of raw float32 feature vectors. File system and onnxruntime here, at the edge;
 * the search itself is the runtime-agnostic {@link Retriever}.
 * @module
 */
import { resultError, runDecodeJob } from "../backbone/decode_pool.ts";
import { OnnxBackbone, type ProviderChoice } from "../backbone/onnx.ts";
import type { SampleImage } from "../data/dataset.ts";
import { readImage, resampleRgb, type RgbImage } from "../data/image.ts";
import { UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { loadRunData } from "./run_index.ts";
import type { Retriever } from "./retriever.ts";

/** What a query is, for printing and pictures. */
export interface QueryInfo {
  /** "test row 3", "image cat.jpg", "vector 0 of q.f32". */
  name: string;
  testRow?: number;
  id?: string;
  label?: number;
  image?: SampleImage;
}

/** Queries ready for {@link Retriever.search}: head inputs, the gallery item each leaves out, descriptions. */
export interface Queries {
  features: HostMatrix;
  /** Per query, the gallery item that is the query itself (-1: none). */
  exclude: number[];
  info: QueryInfo[];
}

function stack(rows: Float32Array[], cols: number): HostMatrix {
  const data = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => data.set(r, i * cols));
  return { rows: rows.length, cols, data };
}

/**
 * Rows of the run's test split (the data set the index records, loaded as training loaded it), each
 * leaving itself out of its results when the gallery holds it.
 */
export async function testRowQueries(r: Retriever, rows: readonly number[]): Promise<Queries> {
  const ds = await loadRunData(r.header.data);
  const test = ds.test;
  const n = test.labels.length;
  const bad = rows.find((i) => !Number.isInteger(i) || i < 0 || i >= n);
  if (bad !== undefined) {
    throw new UserError(`test row ${bad} is outside the run's test split (rows 0..${n - 1} of ${ds.name})`);
  }
  if (test.features.cols !== r.inputDim) {
    throw new UserError(
      `${r.source} holds a head for ${r.inputDim} inputs but ${ds.name} now has ${test.features.cols} ` +
        "features per sample: the data changed since the index was built; rebuild it",
    );
  }
  const info = rows.map((i) => ({
    name: `test row ${i}`,
    testRow: i,
    id: test.id?.(i) ?? `test/${i}`,
    label: test.labels[i],
    image: test.image?.(i),
  }));
  const features = stack(
    rows.map((i) => test.features.data.subarray(i * r.inputDim, (i + 1) * r.inputDim)),
    r.inputDim,
  );
  const exclude = info.map((q) => r.itemsWithId(q.id)[0] ?? -1);
  return { features, exclude, info };
}

/** The largest centred square of `img` resampled to `width` x `height` (antialiased). */
function centredSquare(img: RgbImage, width: number, height: number): RgbImage {
  const side = Math.min(img.width, img.height);
  const region = { x: (img.width - side) / 2, y: (img.height - side) / 2, width: side, height: side };
  return resampleRgb(img, region, width, height);
}

/** Options of {@link imageQueries}. */
export interface ImageQueryOptions {
  /** The ONNX model file of a feature-cache index's backbone (checked against the recorded sha256). */
  model?: string;
  provider?: ProviderChoice;
}

/**
 * Image files as queries. A pixel index takes each image's centred square, resampled to the gallery's
 * size (grey when the gallery is grey); a feature-cache index runs the recorded backbone on the centre
 * crop made with the recorded preprocessing.
 */
export async function imageQueries(
  r: Retriever,
  paths: readonly string[],
  options: ImageQueryOptions = {},
): Promise<Queries> {
  const f = r.header.features;
  const info = paths.map((p) => ({ name: `image ${p}`, image: { kind: "file", path: p } as SampleImage }));
  const exclude = paths.map(() => -1);
  if (f.kind === "pixels") {
    const rows: Float32Array[] = [];
    for (const p of paths) {
      const img = centredSquare(await readImage(p), f.width, f.height);
      const px = new Float32Array(f.width * f.height * f.channels);
      for (let i = 0; i < f.width * f.height; i++) {
        const [R, G, B] = [img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2]];
        if (f.channels === 1) px[i] = Math.round(0.299 * R + 0.587 * G + 0.114 * B) / 255;
        else px.set([R / 255, G / 255, B / 255], 3 * i);
      }
      rows.push(px);
    }
    return { features: stack(rows, r.inputDim), exclude, info };
  }
  if (!options.model) {
    throw new UserError((n) =>
      `${r.source} was built on features of the ONNX model with sha256 ${f.model.sha256.slice(0, 12)}... ` +
      `(output ${f.model.output}): set ${n("model")} to that model file to search by image`
    );
  }
  const net = await OnnxBackbone.load(options.model, {
    output: f.model.output,
    provider: options.provider,
    log: () => {},
  });
  try {
    if (net.modelHash !== f.model.sha256) {
      throw new UserError(
        `${options.model} is not the backbone this index was built with (sha256 ${
          net.modelHash.slice(0, 12)
        }... ` +
          `instead of ${
            f.model.sha256.slice(0, 12)
          }...): pass the model file the feature cache was made with`,
      );
    }
    const rows: Float32Array[] = [];
    for (const path of paths) {
      const job = await runDecodeJob({ path, image: 0, views: 1, seed: 0, spec: f.preprocess });
      const err = resultError(job);
      if (err) throw err;
      const out = await net.run(job.data!, 1, f.preprocess.crop);
      if (out.cols !== r.inputDim) {
        throw new UserError(`the backbone gives ${out.cols} features but the head takes ${r.inputDim}`);
      }
      rows.push(out.data);
    }
    return { features: stack(rows, r.inputDim), exclude, info };
  } finally {
    await net.release();
  }
}

/** A file of raw little-endian float32 head inputs (whole rows of the head's input width) as queries. */
export async function vectorQueries(r: Retriever, path: string): Promise<Queries> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new UserError(`cannot read ${path} (${(e as Error).message})`);
  }
  const n = r.inputDim;
  if (bytes.length === 0 || bytes.length % (4 * n)) {
    throw new UserError(
      `${path} has ${bytes.length} bytes: not whole rows of ${n} float32 values (${
        4 * n
      } bytes), the head's ` +
        "input width (pixels in [0, 1] or backbone features, as the gallery was made)",
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(4 * i, true));
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new UserError(`${path}: value ${bad} (row ${Math.floor(bad / n)}) is not finite`);
  const rows = data.length / n;
  return {
    features: { rows, cols: n, data },
    exclude: Array(rows).fill(-1),
    info: Array.from(
      { length: rows },
      (_, i) => ({ name: rows > 1 ? `vector ${i} of ${path}` : `vector ${path}` }),
    ),
  };
}
