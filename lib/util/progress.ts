/**
 * Progress reporting for long work: a bar with rate and ETA on a terminal, a plain line every few
 * seconds otherwise (logs, CI), nothing when quiet.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const bar = new Progress("embedding", 60000, { unit: "img" });
 * for (let i = 0; i < 60000; i += 1000) bar.tick(1000);
 * bar.done();
 * ```
 * @module
 */

/** Options for {@link Progress}. */
export interface ProgressOptions {
  /**
   * Unit name shown with the rate, e.g. "img" or "triplets".
   * @default "it"
   */
  unit?: string;
  /**
   * Suppress all output.
   * @default false
   */
  quiet?: boolean;
  /**
   * Extra text appended to the bar (updated with `status`).
   * @default ""
   */
  status?: string;
  /**
   * Where to write (default stderr).
   * @default stderr
   */
  out?: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
}

const enc = new TextEncoder();

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "--";
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function fmtRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)}M`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)}k`;
  return r >= 10 ? r.toFixed(0) : r.toFixed(2);
}

/** A progress bar over `total` items. */
export class Progress {
  readonly #t0 = performance.now();
  #done = 0;
  #lastDraw = 0;
  #status: string;
  readonly #tty: boolean;
  readonly #out: NonNullable<ProgressOptions["out"]>;

  /** A bar named `label` counting to `total`. */
  constructor(readonly label: string, readonly total: number, readonly options: ProgressOptions = {}) {
    this.#out = options.out ?? Deno.stderr;
    this.#tty = this.#out.isTerminal();
    this.#status = options.status ?? "";
  }

  /** Items per second so far. */
  get rate(): number {
    const s = (performance.now() - this.#t0) / 1000;
    return s > 0 ? this.#done / s : 0;
  }

  /** Advances by `n` items and redraws (at most 10 times a second on a terminal, every 5 s otherwise). */
  tick(n = 1, status?: string): void {
    this.#done += n;
    if (status !== undefined) this.#status = status;
    const now = performance.now();
    if (now - this.#lastDraw >= (this.#tty ? 100 : 5000) || this.#done >= this.total) {
      this.#lastDraw = now;
      this.#draw(false);
    }
  }

  /** Sets the status text without advancing. */
  status(text: string): void {
    this.#status = text;
  }

  /** Finishes the bar (prints the final line). */
  done(): void {
    this.#draw(true);
  }

  #draw(final: boolean): void {
    if (this.options.quiet) return;
    const frac = this.total > 0 ? Math.min(1, this.#done / this.total) : 1;
    const rate = this.rate;
    const eta = rate > 0 ? (this.total - this.#done) / rate : Infinity;
    const elapsed = (performance.now() - this.#t0) / 1000;
    const unit = this.options.unit ?? "it";
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = this.#tty ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
    const timing = final ? `in ${fmtDuration(elapsed)}` : `ETA ${fmtDuration(eta)}`;
    const line = `${this.label} ${bar}${this.#done}/${this.total} ${(frac * 100).toFixed(0)}% ` +
      `${fmtRate(rate)} ${unit}/s ${timing}${this.#status ? `  ${this.#status}` : ""}`;
    this.#out.writeSync(enc.encode(this.#tty ? `\r\x1b[2K${line}${final ? "\n" : ""}` : `${line}\n`));
  }
}
