/**
 * JSON-lines logs: one JSON object per line, appended and flushed as they come, so a run that stops
 * midway still leaves a readable log.
 * @module
 */

/** Appends JSON objects, one per line, to a file. */
export class JsonlWriter implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #enc = new TextEncoder();

  constructor(readonly path: string, { append = true }: { append?: boolean } = {}) {
    this.#file = Deno.openSync(path, { write: true, create: true, append, truncate: !append });
  }

  /** Writes one record (with an ISO timestamp under `time` unless it has one). */
  write(record: Record<string, unknown>): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n";
    this.#file.writeSync(this.#enc.encode(line));
  }

  close(): void {
    this.#file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Reads a JSON-lines file into objects (blank lines skipped). */
export async function readJsonl<T = Record<string, unknown>>(path: string): Promise<T[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}
