/**
 * Image datasets before feature extraction: lists of image files with labels, split into training and
 * test classes. The CUB-200-2011, Cars196 and folder-per-class loaders return this; the feature cache
 * (lib/backbone/features.ts) turns it into a {@link Dataset} whose features are backbone outputs.
 * @module
 */
import { UserError } from "../errors.ts";

/** One image of a dataset. */
export interface ImageSample {
  /** Absolute (or root-joined) path of the file. */
  path: string;
  /** Stable id: the path relative to the dataset root. */
  id: string;
  /** Class label (the dataset's own numbering: CUB 1-200, Cars 1-196, folders 0-based). */
  label: number;
}

/** Which loader produced a list (part of the feature cache key). */
export type ImageListFormat = "cub" | "cars" | "folder";

/** An image dataset: training and test images (disjoint classes in the DML protocol). */
export interface ImageListDataset {
  /** Data set name. */
  name: string;
  /** The layout it was read from. */
  format: ImageListFormat;
  /** Folder the paths are relative to. */
  root: string;
  /** Training images. */
  train: ImageSample[];
  /** Test images. */
  test: ImageSample[];
  /** Class names by label. */
  classNames: Map<number, string>;
}

/** Joins path parts with single slashes. */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/").replace(/\/+/g, "/");
}

/** Reads a text file, turning "not found" into a UserError that names the file and the layout expected. */
export async function readTextFile(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`${what} not found: ${path}`);
    throw new UserError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** Non-empty, trimmed lines of a text file, with their 1-based line numbers. */
export function lines(text: string): { no: number; text: string }[] {
  return text.split(/\r?\n/).map((t, i) => ({ no: i + 1, text: t.trim() })).filter((l) => l.text !== "");
}

/** Throws one UserError listing the images that a label file names but that are not on disk. */
export async function checkFilesExist(samples: ImageSample[], labelFile: string): Promise<void> {
  const missing: string[] = [];
  const batch = 64;
  for (let i = 0; i < samples.length; i += batch) {
    const part = samples.slice(i, i + batch);
    const found = await Promise.all(part.map((s) => Deno.stat(s.path).then((st) => st.isFile, () => false)));
    found.forEach((ok, j) => {
      if (!ok) missing.push(part[j].path);
    });
  }
  if (missing.length) {
    throw new UserError(
      `${labelFile} names ${missing.length} image(s) that do not exist, e.g. ${
        missing.slice(0, 3).join(", ")
      }. ` +
        `Check that the dataset was extracted completely under its root folder.`,
    );
  }
}

/** Throws a UserError if a declared class has no images. */
export function checkNoEmptyClass(
  samples: ImageSample[],
  classNames: Map<number, string>,
  where: string,
): void {
  const counts = new Map<number, number>();
  for (const s of samples) counts.set(s.label, (counts.get(s.label) ?? 0) + 1);
  const empty = [...classNames.keys()].filter((c) => !counts.get(c));
  if (empty.length) {
    const names = empty.slice(0, 5).map((c) => `${c} (${classNames.get(c)})`).join(", ");
    throw new UserError(
      `${where}: ${empty.length} class(es) have no images: ${names}${empty.length > 5 ? ", ..." : ""}. ` +
        `Every class needs at least one image (two or more for positives in training).`,
    );
  }
}

/** Splits samples by class: labels <= `lastTrainClass` train, the rest test. */
export function splitByClass(
  samples: ImageSample[],
  lastTrainClass: number,
): { train: ImageSample[]; test: ImageSample[] } {
  return {
    train: samples.filter((s) => s.label <= lastTrainClass),
    test: samples.filter((s) => s.label > lastTrainClass),
  };
}
