/**
 * Reshaping a dataset's splits: picking rows, keeping the first n, and the class-disjoint split.
 * @module
 */
import { selectRows } from "../util/matrix.ts";
import type { Dataset, LabeledSplit } from "./dataset.ts";

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

/** The first `n` samples of a split (all of them when `n` is 0 or at least the split's size). */
export function firstSamples(split: LabeledSplit, n: number): LabeledSplit {
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
