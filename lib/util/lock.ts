/**
 * An exclusive lock on a folder for one process: a lock file holding the owner's pid, held with the
 * operating system's advisory file lock (flock), so the lock dies with its process: a run killed with
 * `kill -9` leaves a stale file that the next owner takes over (and reports), while a live owner keeps
 * every other process out.
 * @module
 */
import { UserError } from "../errors.ts";

/** What a lock file records about its owner. */
export interface LockOwner {
  /** Process id of the holder. */
  pid: number;
  /** ISO time the lock was taken. */
  since: string;
  /** What the owner does (e.g. "train"). */
  task?: string;
}

/** A held lock; `release()` (or dispose) removes the file and lets go. */
export class FolderLock implements Disposable {
  #file: Deno.FsFile | undefined;

  private constructor(
    readonly path: string,
    file: Deno.FsFile,
    /** The owner recorded in a lock file left behind by a process that died holding it. */
    readonly staleOwner: LockOwner | undefined,
  ) {
    this.#file = file;
  }

  /**
   * Takes the lock file `path` (created if missing). Throws a UserError naming the live owner's pid when
   * another process holds it; `what` names the locked thing in that message.
   */
  static async acquire(path: string, what: string, task?: string): Promise<FolderLock> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const file = await Deno.open(path, { read: true, write: true, create: true });
      try {
        if (!(await file.tryLock(true))) throw inUse(what, await readOwner(file));
        // A finishing owner removes the file before letting go: make sure we locked the file that is still
        // at `path`, not an unlinked one.
        const [held, current] = [await file.stat(), await Deno.stat(path).catch(() => undefined)];
        if (!current || held.ino !== current.ino || held.dev !== current.dev) {
          file.close();
          continue;
        }
        const stale = await readOwner(file);
        const owner: LockOwner = {
          pid: Deno.pid,
          since: new Date().toISOString(),
          ...(task ? { task } : {}),
        };
        await file.truncate(0);
        await file.seek(0, Deno.SeekMode.Start);
        await file.write(new TextEncoder().encode(JSON.stringify(owner) + "\n"));
        return new FolderLock(path, file, stale && stale.pid !== Deno.pid ? stale : undefined);
      } catch (e) {
        file.close();
        throw e;
      }
    }
    throw new UserError(`${what}: could not take its lock ${path} (it kept changing); try again`);
  }

  /**
   * The owner of the lock file at `path` when a live process holds it; undefined when none does (no file,
   * or a file left by a dead owner). Takes nothing and creates nothing.
   */
  static async heldBy(path: string): Promise<LockOwner | undefined> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true });
    } catch {
      return undefined;
    }
    try {
      if (await file.tryLock(true)) {
        await file.unlock();
        return undefined;
      }
      return await readOwner(file) ?? { pid: 0, since: "unknown" };
    } finally {
      file.close();
    }
  }

  /** True until released. */
  get held(): boolean {
    return this.#file !== undefined;
  }

  /** Removes the lock file and lets go of the lock. */
  release(): void {
    const file = this.#file;
    if (!file) return;
    this.#file = undefined;
    try {
      Deno.removeSync(this.path);
    } catch { /* already gone: nothing to clean */ }
    file.close();
  }

  /** Releases the lock. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/** The error for a lock another process holds. */
export function inUse(what: string, owner: LockOwner | undefined): UserError {
  return new UserError(
    `${what} is in use by another process${
      owner?.pid ? ` (pid ${owner.pid}${owner.task ? `, ${owner.task}` : ""}, since ${owner.since})` : ""
    }: wait for it to finish, or choose another folder`,
  );
}

async function readOwner(file: Deno.FsFile): Promise<LockOwner | undefined> {
  try {
    await file.seek(0, Deno.SeekMode.Start);
    const buf = new Uint8Array(4096);
    const n = await file.read(buf);
    if (!n) return undefined;
    const owner = JSON.parse(new TextDecoder().decode(buf.subarray(0, n)));
    return typeof owner?.pid === "number" ? owner as LockOwner : undefined;
  } catch {
    return undefined;
  }
}
