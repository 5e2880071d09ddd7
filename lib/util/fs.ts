/**
 * File helpers: atomic writes (a temporary name in the same folder, then rename), so a crash never
 * leaves a half-written file under the final name.
 * @module
 */

function tempNameFor(path: string): string {
  return `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** True for a name {@link writeFileAtomic} writes before its rename (left behind only by a killed writer). */
export function isTempName(name: string): boolean {
  return /\.tmp-\d+-[a-z0-9]+$/.test(name);
}

/**
 * One line saying why a file-system call on `path` failed and what to do: outside the task's permissions,
 * refused by the operating system, missing, or something else. `action` is a verb ("write", "read"...).
 */
export function fsErrorMessage(e: unknown, path: string, action: string): string {
  if (e instanceof Deno.errors.NotCapable) {
    return `cannot ${action} ${path}: it is outside the folders this task may ${action} (its permissions in ` +
      `deno.json); choose a path inside them (e.g. under runs/)`;
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return `cannot ${action} ${path}: permission denied; choose a folder you may ${action}`;
  }
  if (e instanceof Deno.errors.NotFound) return `cannot ${action} ${path}: it does not exist; check the path`;
  if (e instanceof Deno.errors.NotADirectory) {
    return `cannot ${action} ${path}: a part of the path is a file, not a folder; check the path`;
  }
  return `cannot ${action} ${path} (${(e as Error)?.message ?? e})`;
}

/** Writes `data` to `path` atomically. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempNameFor(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Writes `value` as pretty JSON to `path` atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** True if `path` exists (file or folder). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Gunzips `bytes` if they start with the gzip magic; returns them unchanged otherwise. */
export async function maybeGunzip(bytes: Uint8Array): Promise<Uint8Array> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
