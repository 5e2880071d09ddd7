/**
 * Opening a retrieval index from wherever it is, in Deno: a local file or index folder, an http(s) or
 * file: URL, or bytes. The edge loader over the runtime-agnostic {@link Retriever} (a browser uses
 * `Retriever.fromUrl` directly).
 *
 * @example
 * ```ts
 * import { openRetriever } from "./open.ts";
 * // `index`: a folder written by `deno task index <run-dir>`, or its index.bin.
 * async function neighboursOfItem3(index: string) {
 *   using r = await openRetriever(index);
 *   return (await r.searchItems([3], 5)).queries[0];
 * }
 * ```
 * @module
 */
import { UserError } from "../errors.ts";
import { RETRIEVAL_FILE } from "./format.ts";
import { Retriever, type RetrieverOptions } from "./retriever.ts";

/** A file system error as a UserError naming `path` (missing: how to make the index). */
function fsError(e: unknown, path: string): UserError {
  return e instanceof Deno.errors.NotFound
    ? new UserError(`${path} not found: build an index with 'deno task index <run-dir>' first`)
    : new UserError(`cannot read ${path} (${(e as Error).message})`);
}

/** The artifact's path for a folder or file path (a folder gets `index.bin`). */
export async function indexFilePath(path: string): Promise<string> {
  const info = await Deno.stat(path).catch((e) => {
    throw fsError(e, path);
  });
  return info.isDirectory ? `${path.replace(/\/+$/, "")}/${RETRIEVAL_FILE}` : path;
}

/** Opens an index: a path (file or folder), an http(s)/file URL, or the file's bytes. */
export async function openRetriever(
  source: string | URL | Uint8Array,
  options: RetrieverOptions = {},
): Promise<Retriever> {
  if (source instanceof Uint8Array) return await Retriever.fromBytes(source, options);
  if (source instanceof URL || /^(https?|file):\/\//i.test(source)) {
    return await Retriever.fromUrl(source, options);
  }
  const file = await indexFilePath(source);
  const bytes = await Deno.readFile(file).catch((e) => {
    throw fsError(e, file);
  });
  return await Retriever.fromBytes(bytes, { ...options, source: options.source ?? file });
}
