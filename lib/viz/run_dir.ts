/**
 * Reading what a training run leaves on disk, for figures and reports:
 * ```
 * <run>/config.json          the full training config
 * <run>/log.jsonl            records typed "start", "batch", "epoch", "triplets", "end"
 * <run>/summary.json         final metrics and timings (testEmbeddings: {rows, cols})
 * <run>/test-embeddings.f32  final test embeddings, little-endian float32 [rows x cols]
 * <run>/test-labels.i32      their labels, little-endian int32
 * ```
 * and an experiment folder: `experiment.json` (`{name, runs: [{dir, label, kappa?, minedFraction?}]}`)
 * with one run folder per entry.
 * @module
 */
import type { TrainConfig } from "../config.ts";
import { UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { exists } from "../util/fs.ts";
import type { EvalSummary, MiningStats } from "../run_log.ts";

/** Evaluation metrics of one epoch (absent metrics were not computed). */
export type EvalRecord = EvalSummary;

/** A per-batch log record. */
export interface BatchRecord {
  /** Record type. */
  type: "batch";
  /** Epoch number, from 1. */
  epoch: number;
  /** Batch number within the epoch. */
  batch: number;
  /** kappa after the batch. */
  kappa: number;
  /** The batch's error (fraction of triplets with d(a,p) >= d(a,n)). */
  error: number;
  /** EMA of the batch error the controller steers. */
  errorEma?: number;
  /** Total loss. */
  loss: number;
  /** Triplet loss. */
  tripletLoss?: number;
  /** Global loss. */
  globalLoss?: number;
  /** Fraction of mined triplets in the batch. */
  smartFraction?: number;
}

/** Mining statistics of one epoch, as read (the mean distances may be missing). */
export type MiningRecord =
  & Omit<MiningStats, "meanDap" | "meanDan">
  & Partial<Pick<MiningStats, "meanDap" | "meanDan">>;

/** A per-epoch log record. */
export interface EpochRecord {
  /** Record type. */
  type: "epoch";
  /** Epoch number, from 1. */
  epoch: number;
  /** kappa at the end of the epoch. */
  kappa: number;
  /** Which bound kappa sat at when the epoch ended, if any. */
  kappaBound?: "min" | "max" | null;
  /** The epoch's training error. */
  trainError: number;
  /** Mean total loss. */
  loss: number;
  /** Mean triplet loss. */
  tripletLoss?: number;
  /** Mean global loss. */
  globalLoss?: number;
  /** Mining statistics. */
  mining?: MiningRecord;
  /** Test metrics, on epochs that evaluate. */
  eval?: EvalRecord;
  /** Wall seconds of the epoch. */
  epochSec?: number;
  /** Training triplets per second. */
  tripletsPerSec?: number;
  /** Seconds per phase of the epoch (embedSec, graphSec, mineSec, trainSec, evalSec). */
  timing?: Record<string, number>;
}

/** One mined triplet (indices into the training split). */
export interface LoggedTriplet {
  /** Anchor index in the training split. */
  anchor: number;
  /** Positive index. */
  positive: number;
  /** Negative index. */
  negative: number;
  /** False when the anchor fell back to a random triplet. */
  smart: boolean;
}

/** The first mined triplet of each fixed anchor at one epoch. */
export interface TripletRecord {
  /** Record type. */
  type: "triplets";
  /** Epoch number, from 1. */
  epoch: number;
  /** The fixed anchors' triplets. */
  triplets: LoggedTriplet[];
}

/** A run's log, split by record type (other record types are kept in `other`). */
export interface RunLog {
  /** The `start` record. */
  start?: Record<string, unknown>;
  /** The `batch` records. */
  batches: BatchRecord[];
  /** The `epoch` records. */
  epochs: EpochRecord[];
  /** The `triplets` records. */
  triplets: TripletRecord[];
  /** The `end` record. */
  end?: Record<string, unknown>;
  /** Records of other types. */
  other: Record<string, unknown>[];
}

/** The run's config as written (a {@link TrainConfig}, possibly with extra fields such as `adapter`). */
export type RunConfig = Partial<TrainConfig> & Record<string, unknown>;

/** Everything a run folder holds except the embeddings (read those with {@link readTestEmbeddings}). */
export interface RunData {
  /** The run folder. */
  dir: string;
  /** Its config.json. */
  config: RunConfig;
  /** Its log.jsonl. */
  log: RunLog;
  /** Its summary.json, when the run finished. */
  summary?: Record<string, unknown>;
  /** Problems found while reading (e.g. a truncated last log line), for the report. */
  warnings: string[];
}

/** One run of an experiment with its label and swept parameter. */
export interface ExperimentRun {
  /** Label of the run in the experiment. */
  label: string;
  /** Its fixed kappa (kappa study). */
  kappa?: number;
  /** Its mined fraction (mined study). */
  minedFraction?: number;
  /** The run's data. */
  run: RunData;
}

/** An experiment folder: its name, the runs it holds, and the raw experiment.json. */
export interface ExperimentData {
  /** The experiment folder. */
  dir: string;
  /** The study's name. */
  name: string;
  /** Its runs. */
  runs: ExperimentRun[];
  /** experiment.json as read. */
  meta: Record<string, unknown>;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`${path} not found`);
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${e instanceof Error ? e.message : e})`);
  }
}

/**
 * Parses log.jsonl text; a bad last line (a run cut off mid-write) becomes a warning, others throw.
 * Epoch, batch and triplet records repeated by a resumed run keep their last occurrence.
 */
export function parseRunLog(text: string, what = "log.jsonl", warnings: string[] = []): RunLog {
  const log: RunLog = { batches: [], epochs: [], triplets: [], other: [] };
  const lines = text.split("\n");
  while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) {
        warnings.push(`${what}: last line is cut off (ignored)`);
        return;
      }
      throw new UserError(`${what}: line ${i + 1} is not valid JSON`);
    }
    switch (rec.type) {
      case "start":
        log.start = rec;
        break;
      case "batch":
        log.batches.push(rec as unknown as BatchRecord);
        break;
      case "epoch":
        log.epochs.push(rec as unknown as EpochRecord);
        break;
      case "triplets":
        log.triplets.push(rec as unknown as TripletRecord);
        break;
      case "end":
        log.end = rec;
        break;
      default:
        log.other.push(rec);
    }
  });
  // A resumed run appends to the log and may repeat epochs or batches: the last record of each wins.
  log.epochs = lastOfEach(log.epochs, (e) => String(e.epoch)).sort((a, b) => a.epoch - b.epoch);
  log.batches = lastOfEach(log.batches, (b) => `${b.epoch}:${b.batch}`);
  log.triplets = lastOfEach(log.triplets, (t) => String(t.epoch)).sort((a, b) => a.epoch - b.epoch);
  return log;
}

function lastOfEach<T>(items: T[], key: (item: T) => string): T[] {
  const last = new Map<string, number>();
  items.forEach((item, i) => last.set(key(item), i));
  return items.filter((item, i) => last.get(key(item)) === i);
}

/** Reads a run folder (config.json and log.jsonl required; summary.json optional). */
export async function readRunDir(dir: string): Promise<RunData> {
  if (!await exists(`${dir}/log.jsonl`)) {
    throw new UserError(
      `${dir} is not a run folder: it has no log.jsonl (run 'deno task train' to make one)`,
    );
  }
  const warnings: string[] = [];
  const config = await readJson(`${dir}/config.json`) as RunConfig;
  const log = parseRunLog(await Deno.readTextFile(`${dir}/log.jsonl`), `${dir}/log.jsonl`, warnings);
  const summary = await exists(`${dir}/summary.json`) ? await readJson(`${dir}/summary.json`) : undefined;
  if (!log.end) {
    warnings.push("the log has no end record: the run did not finish (figures show what it logged)");
  }
  return { dir, config, log, summary, warnings };
}

/** True if `dir` holds an experiment.json. */
export function isExperimentDir(dir: string): Promise<boolean> {
  return exists(`${dir}/experiment.json`);
}

/** Reads an experiment folder and each of its runs (run paths are relative to the experiment folder). */
export async function readExperimentDir(dir: string): Promise<ExperimentData> {
  const meta = await readJson(`${dir}/experiment.json`);
  if (!Array.isArray(meta.runs)) throw new UserError(`${dir}/experiment.json has no "runs" list`);
  const runs: ExperimentRun[] = [];
  for (const entry of meta.runs as Record<string, unknown>[]) {
    if (typeof entry?.dir !== "string") throw new UserError(`${dir}/experiment.json: a run has no "dir"`);
    const runDir = entry.dir.startsWith("/") ? entry.dir : `${dir}/${entry.dir}`;
    runs.push({
      label: typeof entry.label === "string" ? entry.label : entry.dir,
      kappa: typeof entry.kappa === "number" ? entry.kappa : undefined,
      minedFraction: typeof entry.minedFraction === "number" ? entry.minedFraction : undefined,
      run: await readRunDir(runDir),
    });
  }
  return { dir, name: typeof meta.name === "string" ? meta.name : dir.split("/").pop() ?? dir, runs, meta };
}

/** The final test embeddings and labels of a run, or undefined when the run did not write them. */
export async function readTestEmbeddings(
  run: RunData,
): Promise<{ embeddings: HostMatrix; labels: Int32Array } | undefined> {
  const dims = run.summary?.testEmbeddings as { rows?: number; cols?: number } | undefined;
  const f32 = `${run.dir}/test-embeddings.f32`, i32 = `${run.dir}/test-labels.i32`;
  if (!dims || !await exists(f32) || !await exists(i32)) return undefined;
  const rows = Number(dims.rows), cols = Number(dims.cols);
  const [eb, lb] = await Promise.all([Deno.readFile(f32), Deno.readFile(i32)]);
  if (!(rows > 0 && cols > 0) || eb.length !== rows * cols * 4 || lb.length !== rows * 4) {
    throw new UserError(
      `${run.dir}: test-embeddings.f32 (${eb.length} bytes) and test-labels.i32 (${lb.length} bytes) ` +
        `do not match summary.json's testEmbeddings {rows: ${dims.rows}, cols: ${dims.cols}}`,
    );
  }
  // Copy into aligned arrays (file buffers are aligned, but little-endian is stated, so read explicitly).
  const ev = new DataView(eb.buffer, eb.byteOffset, eb.byteLength);
  const lv = new DataView(lb.buffer, lb.byteOffset, lb.byteLength);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = ev.getFloat32(4 * i, true);
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) labels[i] = lv.getInt32(4 * i, true);
  return { embeddings: { rows, cols, data }, labels };
}

/** The kappa bounds to draw, when the run's controller adapts kappa (`[kappaMin, kappaMax]`). */
export function kappaBounds(config: RunConfig): [number, number] | undefined {
  const c = config.controller as Partial<TrainConfig["controller"]> | undefined;
  if (!c || c.adaptive === false) return undefined;
  if (typeof c.kappaMin !== "number" || typeof c.kappaMax !== "number") return undefined;
  return [c.kappaMin, c.kappaMax];
}

/** A short description of a run's data set for headings ("idx /usr/share/datasets/fashion-mnist (seen)"). */
export function describeDataset(config: RunConfig): string {
  const d = config.dataset as Record<string, unknown> | undefined;
  if (!d) return "unknown data set";
  const extra = d.split ?? d.views;
  return `${d.kind ?? "?"} ${d.dir ?? ""}${extra ? ` (${extra})` : ""}`.trim();
}
