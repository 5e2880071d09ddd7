/**
 * The data a training run names (`TrainConfig.dataset`): an IDX folder or a feature cache written by
 * `deno task features`. Its default, its checks, and loading it with the split and sample limits applied.
 * It sits above lib/data and lib/backbone because it composes both (IDX loading, feature caches).
 * @module
 */
import { checkOption, UserError } from "./errors.ts";
import type { HostMatrix } from "./util/matrix.ts";
import type { Dataset } from "./data/dataset.ts";
import { FASHION_MNIST_DIR, loadIdxDataset } from "./data/idx.ts";
import { disjointSplit, firstSamples } from "./data/split.ts";
import { loadFeatureDataset } from "./backbone/features.ts";

/** Where the training data comes from. */
export type DatasetConfig =
  | {
    /** An IDX folder (Fashion-MNIST by default): raw pixels are the features. */
    kind: "idx";
    dir: string;
    /** `seen`: the standard train/test files, all classes. `disjoint`: train on the lower half of the
     * classes (0-4 for Fashion-MNIST) from the training file, test on the upper half from the test file. */
    split: "seen" | "disjoint";
  }
  | {
    /** A feature cache folder written by `deno task features`. */
    kind: "features";
    dir: string;
    /** `all`: every cached augmented view of a training image is a training sample; `centre`: only the centre view. */
    views: "all" | "centre";
  };

/** The default data: Fashion-MNIST's standard split. */
export function defaultDatasetConfig(): DatasetConfig {
  return { kind: "idx", dir: FASHION_MNIST_DIR, split: "seen" };
}

/** Fills the optional field of a dataset given without it (`split` / `views`) with its kind's default. */
export function completeDatasetConfig(ds: DatasetConfig): DatasetConfig {
  const d = ds as Partial<{ split: string; views: string }> & DatasetConfig;
  if (d.kind === "idx") d.split ??= "seen";
  else if (d.kind === "features") d.views ??= "all";
  return ds;
}

/** Checks a dataset config; throws an OptionError naming the field (under `prefix`, e.g. `dataset.`). */
export function validateDatasetConfig(c: DatasetConfig, prefix = ""): void {
  checkOption(
    ["idx", "features"].includes(c.kind),
    (n) => `unknown ${n(`${prefix}kind`)} '${(c as { kind: string }).kind}': 'idx' or 'features'`,
  );
  if (c.kind === "idx") {
    checkOption(
      ["seen", "disjoint"].includes(c.split),
      (n) => `${n(`${prefix}split`)} must be 'seen' or 'disjoint', got '${c.split}'`,
    );
  } else {
    checkOption(
      ["all", "centre"].includes(c.views),
      (n) => `${n(`${prefix}views`)} must be 'all' or 'centre', got '${c.views}'`,
    );
  }
}

function checkFeatures(m: HostMatrix, what: string): void {
  if (m.rows === 0) throw new UserError(`${what} is empty: no samples to train or evaluate on`);
  for (let i = 0; i < m.data.length; i++) {
    if (!Number.isFinite(m.data[i])) {
      const r = Math.floor(i / m.cols);
      throw new UserError(
        `${what} has a non-finite value (${m.data[i]}) at row ${r}, column ${i % m.cols}; ` +
          "re-extract the features or drop that sample",
      );
    }
  }
}

/** Checks a loaded dataset for training; throws a UserError naming the problem and the fix. */
export function validateDataset(ds: Dataset, batchSize: number): void {
  checkFeatures(ds.train.features, `${ds.name} training features`);
  checkFeatures(ds.test.features, `${ds.name} test features`);
  if (ds.train.features.cols !== ds.test.features.cols) {
    throw new UserError(
      `${ds.name}: training features have ${ds.train.features.cols} columns but test features ` +
        `${ds.test.features.cols}; both must come from the same model/output`,
    );
  }
  if (ds.train.labels.length !== ds.train.features.rows || ds.test.labels.length !== ds.test.features.rows) {
    throw new UserError(`${ds.name}: the number of labels does not match the number of feature rows`);
  }
  checkOption(
    batchSize <= ds.train.labels.length,
    (n) =>
      `${n("batchSize")} ${batchSize} is larger than the training set (${ds.train.labels.length} samples); ` +
      "use a smaller batch",
  );
}

/** Loads, splits and limits the dataset named by `config`. */
export async function loadDataset(
  config: DatasetConfig,
  limits: { train: number; test: number },
): Promise<Dataset> {
  let ds: Dataset;
  if (config.kind === "idx") {
    ds = await loadIdxDataset(config.dir);
    if (config.split === "disjoint") ds = disjointSplit(ds);
  } else {
    ds = await loadFeatureDataset(config.dir, { views: config.views });
  }
  return { ...ds, train: firstSamples(ds.train, limits.train), test: firstSamples(ds.test, limits.test) };
}
