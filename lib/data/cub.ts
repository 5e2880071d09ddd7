/**
 * CUB-200-2011 (Caltech-UCSD Birds): 11,788 images of 200 classes. The deep metric learning protocol
 * trains on classes 1-100 (5,864 images) and tests on classes 101-200 (5,924 images); the dataset's own
 * train_test_split.txt is not used.
 *
 * Layout (as extracted from CUB_200_2011.tgz): `images.txt` ("<image id> <relative path>"),
 * `image_class_labels.txt` ("<image id> <class id>"), `classes.txt` ("<class id> <name>"), and
 * `images/<relative path>`. `root` may be that folder or its parent holding `CUB_200_2011/`.
 *
 * @example
 * ```ts
 * import { listCub } from "./cub.ts";
 * // `root`: the extracted CUB_200_2011 folder (the data set is not shipped with the toolkit).
 * async function splitSizes(root: string): Promise<[number, number]> {
 *   const cub = await listCub(root);
 *   return [cub.train.length, cub.test.length]; // [5864, 5924]
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

/** The last training class of the CUB protocol (classes 1-100 train, 101-200 test). */
export const CUB_TRAIN_CLASSES = 100;

async function findCubRoot(root: string): Promise<string> {
  if (await exists(joinPath(root, "images.txt"))) return root;
  const nested = joinPath(root, "CUB_200_2011");
  if (await exists(joinPath(nested, "images.txt"))) return nested;
  throw new UserError(
    `${root} is not a CUB-200-2011 folder: images.txt not found there or in ${nested}. ` +
      `Extract CUB_200_2011.tgz and use the CUB_200_2011 folder as the dataset root.`,
  );
}

function parseIdTable(text: string, file: string, valueIsInt: boolean): Map<number, string> {
  const out = new Map<number, string>();
  for (const { no, text: line } of lines(text)) {
    const m = /^(\d+)\s+(.+)$/.exec(line);
    if (!m || (valueIsInt && !/^\d+$/.test(m[2]))) {
      throw new UserError(
        `${file}:${no}: expected "<id> <${valueIsInt ? "number" : "text"}>", got "${line}"`,
      );
    }
    out.set(Number(m[1]), m[2]);
  }
  return out;
}

/** Lists CUB-200-2011: checks every file named exists and every class has images. */
export async function listCub(root: string): Promise<ImageListDataset> {
  const dir = await findCubRoot(root);
  const imagesFile = joinPath(dir, "images.txt");
  const labelsFile = joinPath(dir, "image_class_labels.txt");
  const classesFile = joinPath(dir, "classes.txt");
  const images = parseIdTable(await readTextFile(imagesFile, "CUB images.txt"), imagesFile, false);
  const labels = parseIdTable(await readTextFile(labelsFile, "CUB image_class_labels.txt"), labelsFile, true);
  const classes = parseIdTable(await readTextFile(classesFile, "CUB classes.txt"), classesFile, false);
  const classNames = new Map([...classes].map(([id, name]) => [id, name]));

  const samples: ImageSample[] = [];
  for (const [id, rel] of images) {
    const label = labels.get(id);
    if (label === undefined) throw new UserError(`${labelsFile} has no class for image ${id} (${rel})`);
    const cls = Number(label);
    if (!classNames.has(cls)) {
      throw new UserError(`${labelsFile}: image ${id} has class ${cls}, not in ${classesFile}`);
    }
    samples.push({ path: joinPath(dir, "images", rel), id: joinPath("images", rel), label: cls });
  }
  for (const id of labels.keys()) {
    if (!images.has(id)) {
      throw new UserError(`${labelsFile} labels image ${id}, which ${imagesFile} does not list`);
    }
  }
  await checkFilesExist(samples, imagesFile);
  checkNoEmptyClass(samples, classNames, dir);
  const { train, test } = splitByClass(samples, CUB_TRAIN_CLASSES);
  return { name: "cub200", format: "cub", root: dir, train, test, classNames };
}
