/**
 * A training run's folder belongs to one run, and to one process at a time:
 * - a new run refuses a folder that already holds a run (resume it, or replace it with `overwrite`) and
 *   one holding other files;
 * - a process holds the folder's lock file (`.lock`, with its pid) while it writes there, so a second
 *   process is refused with one message; a lock left by a killed process is taken over;
 * - files a killed process left half-written (temporary names, lib/util/fs.ts) are removed on the next
 *   open.
 * @module
 */
import { UserError } from "./errors.ts";
import { fsErrorMessage, isTempName } from "./util/fs.ts";
import { FolderLock, inUse } from "./util/lock.ts";

/** What a training run writes into its folder (and what reports add). */
export const RUN_FILES: readonly string[] = [
  "config.json",
  "log.jsonl",
  "summary.json",
  "checkpoint.bin",
  "test-embeddings.f32",
  "test-labels.i32",
  "report.html",
  "figures",
];

/** The lock file's name inside a run folder. */
export const LOCK_FILE = ".lock";

async function entries(dir: string): Promise<string[] | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new UserError(fsErrorMessage(e, dir, "read"));
  }
  if (!info.isDirectory) {
    throw new UserError((n) =>
      `${dir} is a file, not a folder: choose a folder path for the run (${n("outDir")})`
    );
  }
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/**
 * Checks, without writing anything, that `dir` may hold a new run: missing, empty, or (with `overwrite`)
 * holding a run to replace. Throws a UserError that says what to do otherwise.
 */
export async function checkNewRunFolder(dir: string, overwrite: boolean): Promise<void> {
  await checkWritable(dir);
  const names = await entries(dir);
  if (!names) return;
  await checkNotInUse(dir, names);
  checkNewRunContents(dir, names, overwrite);
}

function checkNewRunContents(dir: string, names: string[], overwrite: boolean): void {
  const visible = names.filter((n) => n !== LOCK_FILE && !isTempName(n));
  const run = visible.filter((n) => RUN_FILES.includes(n));
  const other = visible.filter((n) => !RUN_FILES.includes(n));
  if (other.length) {
    throw new UserError((n) =>
      `${dir} is not empty and is not a run folder (it holds ${listSome(other)}): choose an empty or new ` +
      n("outDir")
    );
  }
  if (run.length && !overwrite) {
    throw new UserError((n) =>
      `${dir} already holds a run (${listSome(run)}): continue it with ${
        n("resume")
      } ${dir}, replace it with ` +
      `${n("overwrite")}, or choose another ${n("outDir")}`
    );
  }
}

/** Checks that `dir` holds a run that can be resumed (a config.json); nothing is written. */
export async function checkRunFolderToResume(dir: string): Promise<void> {
  const names = await entries(dir);
  if (!names) {
    throw new UserError((n) => `cannot resume: ${dir} does not exist; check the ${n("resume")} path`);
  }
  await checkNotInUse(dir, names);
  if (!names.includes("config.json")) {
    throw new UserError((n) =>
      `cannot resume: ${dir} is not a run folder (no config.json)${names.length ? "" : "; it is empty"}; ` +
      `check the ${n("resume")} path`
    );
  }
  await checkWritable(dir);
}

/**
 * Creates `dir` if needed and takes its lock; removes what killed writers left under temporary names. For
 * a new run (`fresh`), checks the folder again under the lock and, with `overwrite`, removes the old run's
 * files. Returns the lock; release it when the run is done.
 */
export async function openRunFolder(
  dir: string,
  { fresh, overwrite = false }: { fresh: boolean; overwrite?: boolean },
): Promise<FolderLock> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new UserError((n) =>
        `${dir} is a file, not a folder: choose a folder path for the run (${n("outDir")})`
      );
    }
    throw new UserError(fsErrorMessage(e, dir, "create"));
  }
  let lock: FolderLock;
  try {
    lock = await FolderLock.acquire(`${dir}/${LOCK_FILE}`, `run folder ${dir}`, "train");
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(fsErrorMessage(e, dir, "write"));
  }
  try {
    if (fresh) checkNewRunContents(dir, (await entries(dir)) ?? [], overwrite);
    for await (const e of Deno.readDir(dir)) {
      const stale = isTempName(e.name) || (fresh && overwrite && RUN_FILES.includes(e.name));
      if (stale) await Deno.remove(`${dir}/${e.name}`, { recursive: true });
    }
    return lock;
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Refuses a folder whose lock a live process holds, naming it (the same message as acquiring the lock). */
async function checkNotInUse(dir: string, names: string[]): Promise<void> {
  if (!names.includes(LOCK_FILE)) return;
  const owner = await FolderLock.heldBy(`${dir}/${LOCK_FILE}`);
  if (owner) throw inUse(`run folder ${dir}`, owner);
}

/** Refuses a folder outside this process's write permission up front (a query never prompts). */
async function checkWritable(dir: string): Promise<void> {
  const status = await Deno.permissions.query({ name: "write", path: dir });
  if (status.state !== "granted") {
    throw new UserError(fsErrorMessage(new Deno.errors.NotCapable(), dir, "write"));
  }
}

function listSome(names: string[]): string {
  return names.length > 4 ? `${names.slice(0, 4).join(", ")}, ...` : names.join(", ");
}
