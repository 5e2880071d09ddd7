/**
 * Loads the dataset a training config names, applies the split and the sample limits, and checks the
 * data before any GPU work: finite features, matching dimensions, at least two classes, no class with a
 * single sample, batch not larger than the data.
 * @module
 */
import type { DatasetConfig } from "../config.ts";
import { UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { selectRows } from "../util/matrix.ts";
import type { Dataset, LabeledSplit } from "./dataset.ts";
import { loadIdxDataset } from "./idx.ts";
import { loadFeatureDataset } from "../backbone/features.ts";

/** The rows of a split picked by `index` (features, labels, and the image/id lookups remapped). */
export function subsetSplit(split: LabeledSplit, index: ArrayLike<number>): LabeledSplit {
  const map = Uint32Array.from(index as ArrayLike<number>);
  return {
    features: selectRows(split.features, map),
    labels: Int32Array.from(map, (i) => split.labels[i]),
    image: split.image ? (i) => split.image!(map[i]) : undefined,
    id: split.id ? (i) => split.id!(map[i]) : undefined,
  };
}

function firstN(split: LabeledSplit, n: number): LabeledSplit {
  if (n <= 0 || n >= split.labels.length) return split;
  return subsetSplit(split, Uint32Array.from({ length: n }, (_, i) => i));
}

function withLabels(split: LabeledSplit, keep: (label: number) => boolean): LabeledSplit {
  const index: number[] = [];
  split.labels.forEach((l, i) => keep(l) && index.push(i));
  return subsetSplit(split, index);
}

/** Class-disjoint split: train on the lower half of the classes (by label), test on the upper half. */
export function disjointSplit(ds: Dataset): Dataset {
  const all = [...new Set([...ds.train.labels, ...ds.test.labels])].sort((a, b) => a - b);
  const lower = new Set(all.slice(0, Math.floor(all.length / 2)));
  return {
    ...ds,
    train: withLabels(ds.train, (l) => lower.has(l)),
    test: withLabels(ds.test, (l) => !lower.has(l)),
  };
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
  if (batchSize > ds.train.labels.length) {
    throw new UserError(
      `--batch-size ${batchSize} is larger than the training set (${ds.train.labels.length} samples); ` +
        "use a smaller batch",
    );
  }
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
  return { ...ds, train: firstN(ds.train, limits.train), test: firstN(ds.test, limits.test) };
}
