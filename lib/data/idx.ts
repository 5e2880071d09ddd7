/**
 * IDX files (the MNIST family's format), gzipped or not, and the folder layout that holds a
 * train/test pair: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-...`.
 * Fashion-MNIST from Debian's dataset-fashion-mnist is the toolkit's embedded default.
 * @module
 */
import { UserError } from "../errors.ts";
import { fsErrorMessage, maybeGunzip } from "../util/fs.ts";
import type { Dataset, LabeledSplit } from "./dataset.ts";

/** Where Debian's dataset-fashion-mnist package puts the files. */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** A parsed IDX tensor of unsigned bytes. */
export interface IdxTensor {
  /** Shape, outermost first. */
  dims: number[];
  /** The values, row-major (u8 IDX files only). */
  data: Uint8Array;
}

/** Parses IDX bytes (type 0x08, unsigned byte, the only type the MNIST family uses). */
export function parseIdx(bytes: Uint8Array, name = "IDX data"): IdxTensor {
  const fail = (why: string) => new UserError(`${name} is not a valid IDX file: ${why}`);
  if (bytes.length < 4) throw fail("shorter than its 4-byte header");
  if (bytes[0] !== 0 || bytes[1] !== 0) throw fail("bad magic (first two bytes must be 0)");
  if (bytes[2] !== 0x08) throw fail(`element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  const rank = bytes[3];
  if (rank < 1 || bytes.length < 4 + 4 * rank) throw fail(`truncated header (rank ${rank})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start < size) {
    throw fail(`truncated: ${bytes.length - start} data bytes for dims ${dims.join("x")}`);
  }
  return { dims, data: bytes.subarray(start, start + size) };
}

async function findFile(dir: string, stem: string): Promise<string> {
  for (const name of [`${stem}.gz`, stem]) {
    try {
      await Deno.stat(`${dir}/${name}`);
      return `${dir}/${name}`;
    } catch { /* try the next */ }
  }
  throw new UserError(
    `${stem}[.gz] not found in ${dir}. ` +
      (dir === FASHION_MNIST_DIR
        ? "Install Fashion-MNIST with 'sudo apt-get install -y dataset-fashion-mnist'."
        : "Use a folder holding train-/t10k- images and labels in IDX format."),
  );
}

async function readIdx(path: string): Promise<IdxTensor> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new UserError(fsErrorMessage(e, path, "read"));
  }
  try {
    bytes = await maybeGunzip(bytes);
  } catch (e) {
    throw new UserError(
      `${path} is not a readable gzip file (${(e as Error).message}): it is truncated or damaged; ` +
        (path.startsWith(FASHION_MNIST_DIR)
          ? "reinstall it with 'sudo apt-get install --reinstall dataset-fashion-mnist'"
          : "replace it with a good copy"),
    );
  }
  return parseIdx(bytes, path);
}

/** Loads one split (`train` or `t10k`) of an IDX folder as pixels in [0, 1]. */
export async function loadIdxSplit(dir: string, prefix: "train" | "t10k"): Promise<LabeledSplit> {
  const images = await readIdx(await findFile(dir, `${prefix}-images-idx3-ubyte`));
  const labels = await readIdx(await findFile(dir, `${prefix}-labels-idx1-ubyte`));
  const n = images.dims[0];
  if (labels.dims[0] !== n) {
    throw new UserError(`${dir}: ${prefix} has ${n} images but ${labels.dims[0]} labels`);
  }
  const height = images.dims[1] ?? 1, width = images.dims[2] ?? 1;
  const dim = images.data.length / Math.max(1, n);
  const pixels = images.data;
  const features = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) features[i] = pixels[i] / 255;
  return {
    features: { rows: n, cols: dim, data: features },
    labels: Int32Array.from(labels.data),
    image: (i) => ({
      kind: "pixels",
      width,
      height,
      channels: 1,
      pixels: pixels.subarray(i * dim, (i + 1) * dim),
    }),
    id: (i) => `${prefix}/${i}`,
  };
}

/** Fashion-MNIST class names by label. */
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Loads an IDX folder (default: Fashion-MNIST from the Debian package) as raw-pixel features. */
export async function loadIdxDataset(dir = FASHION_MNIST_DIR): Promise<Dataset> {
  const [train, test] = await Promise.all([loadIdxSplit(dir, "train"), loadIdxSplit(dir, "t10k")]);
  const isFashion = dir === FASHION_MNIST_DIR;
  return {
    name: isFashion ? "fashion-mnist" : dir.split("/").filter(Boolean).pop() ?? dir,
    train,
    test,
    classNames: isFashion ? new Map(FASHION_MNIST_CLASSES.map((n, i) => [i, n])) : undefined,
  };
}
