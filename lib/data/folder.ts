/**
 * A generic folder-per-class image dataset (torchvision's ImageFolder layout), in one of two forms:
 * - `root/train/<class>/*` and `root/test/<class>/*`: the given split (classes of the two parts may
 *   differ, as the deep metric learning protocol wants, or overlap);
 * - `root/<class>/*`: the classes sorted by name, the first half (rounded up) for training and the
 *   rest for testing, the same class-disjoint rule as CUB and Cars.
 * Files with extensions .jpg, .jpeg, .png (any case) are images; other files are ignored; hidden
 * files and folders (starting with ".") are skipped. Labels are class indexes in sorted-name order
 * over all classes (0-based).
 *
 * @example
 * ```ts
 * import { listFolder } from "./folder.ts";
 * // `root`: root/<class>/*.jpg, or root/train/<class>/ and root/test/<class>/.
 * async function classCount(root: string): Promise<number> {
 *   const ds = await listFolder(root);
 *   return ds.classNames.size;
 * }
 * ```
 * @module
 */
import { UserError } from "../errors.ts";
import { exists } from "../util/fs.ts";
import { type ImageListDataset, type ImageSample, joinPath } from "./image_list.ts";

const IMAGE_EXT = /\.(jpe?g|png)$/i;

async function readDirSorted(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (!e.name.startsWith(".")) out.push(e);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`folder not found: ${dir}`);
    throw e;
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function classFolders(dir: string): Promise<string[]> {
  const entries = await readDirSorted(dir);
  return entries.filter((e) => e.isDirectory).map((e) => e.name);
}

async function imagesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    for (const e of await readDirSorted(joinPath(dir, sub))) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await walk(rel);
      else if (IMAGE_EXT.test(e.name)) out.push(rel);
    }
  };
  await walk("");
  return out;
}

async function listClasses(
  root: string,
  part: string,
  classes: string[],
  labelOf: Map<string, number>,
): Promise<ImageSample[]> {
  const samples: ImageSample[] = [];
  for (const cls of classes) {
    const dir = joinPath(root, part, cls);
    const files = await imagesIn(dir);
    if (!files.length) {
      throw new UserError(`class folder ${dir} has no images (.jpg, .jpeg, .png); remove it or add images`);
    }
    for (const f of files) {
      const id = joinPath(part, cls, f);
      samples.push({ path: joinPath(root, id), id, label: labelOf.get(cls)! });
    }
  }
  return samples;
}

/** Lists a folder-per-class dataset (see the module doc for the two layouts). */
export async function listFolder(root: string): Promise<ImageListDataset> {
  const name = root.split("/").filter(Boolean).pop() ?? root;
  const hasSplit = (await exists(joinPath(root, "train"))) && (await exists(joinPath(root, "test")));
  let trainClasses: string[], testClasses: string[];
  let trainPart = "", testPart = "";
  if (hasSplit) {
    trainPart = "train";
    testPart = "test";
    trainClasses = await classFolders(joinPath(root, "train"));
    testClasses = await classFolders(joinPath(root, "test"));
  } else {
    const all = await classFolders(root);
    const half = Math.ceil(all.length / 2);
    trainClasses = all.slice(0, half);
    testClasses = all.slice(half);
  }
  if (!trainClasses.length || !testClasses.length) {
    throw new UserError(
      `${root}: need class folders for both training and test (found ${trainClasses.length} and ` +
        `${testClasses.length}). Use root/<class>/ with at least 2 classes, or root/train/<class>/ and root/test/<class>/.`,
    );
  }
  const allNames = [...new Set([...trainClasses, ...testClasses])].sort();
  const labelOf = new Map(allNames.map((n, i) => [n, i]));
  const train = await listClasses(root, trainPart, trainClasses, labelOf);
  const test = await listClasses(root, testPart, testClasses, labelOf);
  return {
    name,
    format: "folder",
    root,
    train,
    test,
    classNames: new Map(allNames.map((n, i) => [i, n])),
  };
}
