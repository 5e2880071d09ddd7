/**
 * JSON-lines logs: one JSON object per line, each written with one system call as it comes (no buffer in
 * the process), so a run that stops midway still leaves a readable log. A line cut short (a process killed
 * during a write, a full disk) is repaired when the log is opened again for appending: the writer drops
 * the partial line instead of appending onto it.
 * @module
 */
import { UserError } from "../errors.ts";

/** Options for opening a {@link JsonlWriter}. */
export interface JsonlOpenOptions {
  /**
   * Keep the existing lines and write after them (default true); false starts an empty file.
   * @default true
   */
  append?: boolean;
  /**
   * With `append`: first cut the file back to this many bytes (a position {@link JsonlWriter.bytes} reported
   * earlier), dropping whatever was written after it. Ignored when the file is shorter.
   * @default none: keep the file as it is
   */
  truncateTo?: number;
}

/** What opening for append found and dropped. */
export interface JsonlRepair {
  /** Bytes dropped after `truncateTo` (whole records written after that position). */
  droppedBytes: number;
  /** Bytes of a cut last line dropped (a line without its newline). */
  cutLineBytes: number;
}

/** Appends JSON objects, one per line, to a file. */
export class JsonlWriter implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #enc = new TextEncoder();
  #bytes: number;
  /** What opening dropped (all zero for a fresh or intact file). */
  readonly repair: JsonlRepair;

  /** Opens `path` for appending (or truncates it to `truncateTo` bytes first; see the options). */
  constructor(readonly path: string, { append = true, truncateTo }: JsonlOpenOptions = {}) {
    this.#file = Deno.openSync(path, { read: true, write: true, create: true, truncate: !append });
    const size = this.#file.statSync().size;
    let end = size;
    let droppedBytes = 0;
    if (append && truncateTo !== undefined && truncateTo < size) {
      droppedBytes = size - truncateTo;
      end = truncateTo;
    }
    const lineEnd = append ? lastCompleteLineEnd(this.#file, end) : 0;
    const cutLineBytes = end - lineEnd;
    if (lineEnd !== size) this.#file.truncateSync(lineEnd);
    this.#file.seekSync(lineEnd, Deno.SeekMode.Start);
    this.#bytes = lineEnd;
    this.repair = { droppedBytes, cutLineBytes };
  }

  /** Bytes in the file after the last write (a position for `truncateTo`). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Writes one record (with an ISO timestamp under `time` unless it has one). */
  write(record: Record<string, unknown>): void {
    const data = this.#enc.encode(JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n");
    let off = 0;
    while (off < data.length) off += this.#file.writeSync(data.subarray(off));
    this.#bytes += data.length;
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }

  /** Closes the file. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The offset just past the last newline at or before `end` (0 when there is none). */
function lastCompleteLineEnd(file: Deno.FsFile, end: number): number {
  const chunk = 64 * 1024;
  const buf = new Uint8Array(chunk);
  for (let hi = end; hi > 0;) {
    const lo = Math.max(0, hi - chunk);
    file.seekSync(lo, Deno.SeekMode.Start);
    let got = 0;
    while (got < hi - lo) {
      const n = file.readSync(buf.subarray(got, hi - lo));
      if (n === null) break;
      got += n;
    }
    for (let i = got - 1; i >= 0; i--) if (buf[i] === 0x0a) return lo + i + 1;
    hi = lo;
  }
  return 0;
}

/**
 * Reads a JSON-lines file into objects (blank lines skipped). A cut last line (no newline after it, not
 * valid JSON) is skipped; any other invalid line is a UserError naming the file and line.
 */
export async function readJsonl<T = Record<string, unknown>>(path: string): Promise<T[]> {
  const text = await Deno.readTextFile(path);
  const lines = text.split("\n");
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      if (i === lines.length - 1) return; // the last line has no newline: cut off mid-write
      throw new UserError(`${path}: line ${i + 1} is not valid JSON; the log is damaged`);
    }
  });
  return out;
}
