/**
 * Cars196 (Stanford Cars): 16,185 images of 196 classes. The deep metric learning protocol pools the
 * dataset's own train and test images, trains on classes 1-98 (8,054 images) and tests on classes
 * 99-196 (8,131 images).
 *
 * The annotation file, looked up in `root` in this order:
 * 1. `cars_annos.mat`, as shipped (MATLAB 5 format, read by lib/data/mat.ts): the `annotations`
 *    struct array (`relative_im_path`, `class`, ...) and `class_names`.
 * 2. `cars_annos.csv`: a header row naming at least `relative_im_path` and `class` (other columns,
 *    such as the bounding box and `test`, are ignored), then one row per image, comma-separated.
 * 3. `cars_annos.txt`: one image per line, "<relative_im_path> <class>", whitespace-separated.
 * Classes are 1-based. Class names come from the .mat file, or from `class_names.txt` (one per line,
 * class 1 first) when present. Images are at `root/<relative_im_path>` (`car_ims/000001.jpg`).
 *
 * @example
 * ```ts
 * import { listCars } from "./cars.ts";
 * // `root`: the folder holding cars_annos.mat and car_ims/ (the data set is not shipped with the toolkit).
 * async function splitSizes(root: string): Promise<[number, number]> {
 *   const cars = await listCars(root);
 *   return [cars.train.length, cars.test.length]; // [8054, 8131]
 * }
 * ```
 * @module
 */
import { UserError } from "../errors.ts";
import { exists } from "../util/fs.ts";
import {
  checkFilesExist,
  checkNoEmptyClass,
  type ImageListDataset,
  type ImageSample,
  joinPath,
  lines,
  readTextFile,
  splitByClass,
} from "./image_list.ts";
import { readCarsAnnosMat } from "./mat.ts";

/** The last training class of the Cars196 protocol (classes 1-98 train, 99-196 test). */
export const CARS_TRAIN_CLASSES = 98;

/** One annotation: a relative image path and its 1-based class. */
export interface CarsAnnotation {
  /** Image path relative to the data set root. */
  path: string;
  /** Class, 1-based. */
  cls: number;
}

/** Parses `cars_annos.csv` (header with `relative_im_path` and `class`). */
export function parseCarsCsv(text: string, file: string): CarsAnnotation[] {
  const rows = lines(text);
  if (!rows.length) throw new UserError(`${file} is empty`);
  const header = rows[0].text.split(",").map((h) => h.trim().replace(/^"|"$/g, "").toLowerCase());
  const pathCol = header.indexOf("relative_im_path");
  const classCol = header.indexOf("class");
  if (pathCol < 0 || classCol < 0) {
    throw new UserError(
      `${file}: the header must name the columns relative_im_path and class (found: ${header.join(", ")})`,
    );
  }
  return rows.slice(1).map(({ no, text: line }) => {
    const cells = line.split(",").map((c) => c.trim().replace(/^"|"$/g, ""));
    const cls = Number(cells[classCol]);
    if (!cells[pathCol] || !Number.isInteger(cls) || cls < 1) {
      throw new UserError(`${file}:${no}: expected a path and a class >= 1, got "${line}"`);
    }
    return { path: cells[pathCol], cls };
  });
}

/** Parses `cars_annos.txt` ("<relative_im_path> <class>" per line). */
export function parseCarsTxt(text: string, file: string): CarsAnnotation[] {
  return lines(text).map(({ no, text: line }) => {
    const m = /^(.+?)\s+(\d+)$/.exec(line);
    if (!m || Number(m[2]) < 1) {
      throw new UserError(`${file}:${no}: expected "<relative_im_path> <class>", got "${line}"`);
    }
    return { path: m[1], cls: Number(m[2]) };
  });
}

async function readAnnotations(
  root: string,
): Promise<{ file: string; annos: CarsAnnotation[]; classNames?: string[] }> {
  const mat = joinPath(root, "cars_annos.mat");
  if (await exists(mat)) {
    const { annotations, classNames } = await readCarsAnnosMat(await Deno.readFile(mat), mat);
    return { file: mat, annos: annotations, classNames };
  }
  const csv = joinPath(root, "cars_annos.csv");
  if (await exists(csv)) {
    return { file: csv, annos: parseCarsCsv(await readTextFile(csv, "Cars annotations"), csv) };
  }
  const txt = joinPath(root, "cars_annos.txt");
  if (await exists(txt)) {
    return { file: txt, annos: parseCarsTxt(await readTextFile(txt, "Cars annotations"), txt) };
  }
  throw new UserError(
    `${root} is not a Cars196 folder: none of cars_annos.mat, cars_annos.csv, cars_annos.txt found. ` +
      `Extract car_ims.tgz and cars_annos.mat into one folder and use it as the dataset root.`,
  );
}

/** Lists Cars196: checks every file named exists and every class has images. */
export async function listCars(root: string): Promise<ImageListDataset> {
  const { file, annos, classNames: matNames } = await readAnnotations(root);
  if (!annos.length) throw new UserError(`${file} lists no images`);
  let names = matNames;
  const namesFile = joinPath(root, "class_names.txt");
  if (!names && await exists(namesFile)) {
    names = lines(await readTextFile(namesFile, "class names")).map((l) => l.text);
  }
  // With class names, every named class must have images; without, the classes are those seen.
  const classNames = new Map<number, string>();
  if (names) names.forEach((n, i) => classNames.set(i + 1, n));
  for (const a of annos) {
    if (!classNames.has(a.cls)) {
      if (names) {
        throw new UserError(`${file}: class ${a.cls} of ${a.path} is beyond the ${names.length} class names`);
      }
      classNames.set(a.cls, `class ${a.cls}`);
    }
  }
  const samples: ImageSample[] = annos.map((a) => ({
    path: joinPath(root, a.path),
    id: a.path.replace(/^\.?\//, ""),
    label: a.cls,
  }));
  await checkFilesExist(samples, file);
  checkNoEmptyClass(samples, classNames, file);
  const { train, test } = splitByClass(samples, CARS_TRAIN_CLASSES);
  return { name: "cars196", format: "cars", root, train, test, classNames };
}
