/**
 * The one dataset interface every loader returns: a training and a test split, each a feature matrix
 * (one row per sample) with integer labels, plus what is needed to show a sample as a picture.
 * @module
 */
import type { HostMatrix } from "../util/matrix.ts";

/** Where a sample's picture comes from, for thumbnails and triplet grids. */
export type SampleImage =
  | { kind: "pixels"; width: number; height: number; channels: 1 | 3; pixels: Uint8Array }
  | { kind: "file"; path: string };

/** One split: features with a label per row. */
export interface LabeledSplit {
  /** [samples x dim] features (pixels in [0,1] for image-as-features data, backbone outputs otherwise). */
  features: HostMatrix;
  /** Class label of each row (any integers; not necessarily contiguous). */
  labels: Int32Array;
  /** Picture of sample `i`, when the dataset can show one. */
  image?: (i: number) => SampleImage;
  /** Stable id of sample `i` (e.g. a relative image path), when it has one. */
  id?: (i: number) => string;
}

/** A dataset: train and test splits and a human name. */
export interface Dataset {
  /** Short name, e.g. "fashion-mnist". */
  name: string;
  /** The training split. */
  train: LabeledSplit;
  /** The test split (classes unseen in training for the DML protocols). */
  test: LabeledSplit;
  /** Class names by label, when known. */
  classNames?: Map<number, string>;
}
