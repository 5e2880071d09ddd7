/**
 * The supplement's two studies (docs/method.md section 8), each a set of training runs in one experiment
 * folder (`experiment.json` + one run folder per setting) followed by its report:
 * - `kappa`: Triplet + FANNG + Global at fixed kappa in {1, 4, 16, 64}; R@{1,2,4,8} against kappa (Fig. 1).
 * - `mined`: Triplet + FANNG + Adaptive, target error 0.5, global loss off, mined fraction 10%..60%;
 *   training error, NMI, R@1, R@8 against epoch (Fig. 2).
 * @module
 */
import type { TrainConfigInput } from "../config.ts";
import { UserError } from "../errors.ts";
import { type EpochReport, train } from "../train.ts";
import { writeJsonAtomic } from "../util/fs.ts";

/** The studies. */
export type ExperimentName = "kappa" | "mined";

/** Settings of one study. */
export interface ExperimentOptions {
  /** Settings shared by every run (data, epochs, limits, seed...). */
  base: TrainConfigInput;
  /** Output folder holding experiment.json and one folder per run. */
  outDir: string;
  /**
   * Replace a study already in `outDir` (default: refused, like an existing run folder).
   * @default false
   */
  overwrite?: boolean;
  /**
   * kappa values of the `kappa` study.
   * @default [1, 4, 16, 64]
   */
  kappas?: number[];
  /**
   * Mined fractions of the `mined` study.
   * @default [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
   */
  fractions?: number[];
  /** Called when a run starts and after each of its epochs. */
  onProgress?: (line: string) => void;
}

/** One finished run of a study. */
export interface ExperimentRunResult {
  /** The run's folder. */
  dir: string;
  /** Its label in tables and figures. */
  label: string;
  /** The fixed kappa of the run (kappa study). */
  kappa?: number;
  /** The mined fraction of the run (mined study). */
  minedFraction?: number;
  /** Its last epoch's report. */
  final: EpochReport;
}

/** The runs of a study, one per swept setting. */
export function experimentRuns(
  name: ExperimentName,
  opts: Pick<ExperimentOptions, "kappas" | "fractions">,
): { label: string; dir: string; kappa?: number; minedFraction?: number; input: TrainConfigInput }[] {
  if (name === "kappa") {
    return (opts.kappas ?? [1, 4, 16, 64]).map((kappa) => ({
      label: `kappa ${kappa}`,
      dir: `kappa-${kappa}`,
      kappa,
      input: {
        mining: { miner: "smart", search: "fanng", minedFraction: 1 },
        controller: { adaptive: false, initialKappa: kappa },
        loss: { globalWeight: 1 },
      },
    }));
  }
  if (name === "mined") {
    return (opts.fractions ?? [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).map((f) => ({
      label: `mined ${Math.round(f * 100)}%`,
      dir: `mined-${Math.round(f * 100)}`,
      minedFraction: f,
      input: {
        mining: { miner: "smart", search: "fanng", minedFraction: f },
        controller: { adaptive: true, targetError: 0.5 },
        loss: { globalWeight: 0 },
      },
    }));
  }
  throw new UserError(`unknown experiment '${name}': choose 'kappa' or 'mined'`);
}

function merge(base: TrainConfigInput, over: TrainConfigInput): TrainConfigInput {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = (base as Record<string, unknown>)[k];
    out[k] = b && typeof b === "object" && !Array.isArray(b) && k !== "dataset"
      ? { ...b, ...(v as object) }
      : v;
  }
  return out as TrainConfigInput;
}

/**
 * Runs a study: every run in its own sub-folder, experiment.json rewritten after each run (so a report
 * can be made of what has finished), returns the final epoch of each run.
 */
export async function runExperiment(
  name: ExperimentName,
  opts: ExperimentOptions,
): Promise<ExperimentRunResult[]> {
  const runs = experimentRuns(name, opts);
  await checkExperimentFolder(opts.outDir, opts.overwrite ?? false);
  await Deno.mkdir(opts.outDir, { recursive: true });
  const results: ExperimentRunResult[] = [];
  const meta = {
    name,
    created: new Date().toISOString(),
    base: opts.base,
    runs: [] as Record<string, unknown>[],
  };
  for (const [i, r] of runs.entries()) {
    opts.onProgress?.(`[${i + 1}/${runs.length}] ${r.label}`);
    const result = await train(merge(opts.base, { ...r.input, outDir: `${opts.outDir}/${r.dir}` }), {
      overwrite: opts.overwrite,
      onEpoch: (e) =>
        opts.onProgress?.(
          `  ${r.label} epoch ${e.epoch}: R@1 ${e.eval?.recall["1"]?.toFixed(4) ?? "-"} NMI ${
            e.eval?.nmi?.toFixed(4) ?? "-"
          } ` +
            `train err ${e.trainError.toFixed(3)} kappa ${e.kappa.toFixed(2)} smart ${
              (100 * e.mining.smartFraction).toFixed(1)
            }%`,
        ),
    });
    const final = result.epochs.at(-1);
    if (!final) throw new UserError((n) => `run ${r.label} trained no epochs: raise ${n("epochs")}`);
    results.push({ dir: r.dir, label: r.label, kappa: r.kappa, minedFraction: r.minedFraction, final });
    meta.runs.push({ dir: r.dir, label: r.label, kappa: r.kappa, minedFraction: r.minedFraction });
    await writeJsonAtomic(`${opts.outDir}/experiment.json`, meta);
  }
  return results;
}

/** What a study writes besides its run folders. */
const STUDY_FILES = ["experiment.json", "table.md", "report.html", "figures"];

/** Refuses a folder that holds a study (unless `overwrite`) or other files; writes nothing. */
async function checkExperimentFolder(dir: string, overwrite: boolean): Promise<void> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (e instanceof Deno.errors.NotADirectory) {
      throw new UserError((n) =>
        `${dir} is a file, not a folder: choose a folder path for the study (${n("outDir")})`
      );
    }
    throw e;
  }
  if (!names.length) return;
  if (!names.includes("experiment.json")) {
    throw new UserError((n) =>
      `${dir} is not empty and holds no study: choose an empty or new ${n("outDir")}`
    );
  }
  if (!overwrite) {
    throw new UserError((n) =>
      `${dir} already holds a study: replace it with ${n("overwrite")}, or choose another ${n("outDir")}`
    );
  }
  for (const n of names) {
    if (STUDY_FILES.includes(n)) await Deno.remove(`${dir}/${n}`, { recursive: true });
  }
}

/** The study's table: one row per run with its final metrics. */
export function experimentTable(name: ExperimentName, results: ExperimentRunResult[]): string {
  const ks = Object.keys(results[0]?.final.eval?.recall ?? {});
  const head = [
    name === "kappa" ? "kappa" : "mined",
    ...ks.map((k) => `R@${k}`),
    "NMI",
    "train err",
    "kappa end",
    "smart %",
    "s/epoch",
  ];
  const rows = results.map((r) => [
    name === "kappa" ? String(r.kappa) : `${Math.round(100 * r.minedFraction!)}%`,
    ...ks.map((k) => r.final.eval?.recall[k]?.toFixed(4) ?? "-"),
    r.final.eval?.nmi?.toFixed(4) ?? "-",
    r.final.trainError.toFixed(3),
    r.final.kappa.toFixed(2),
    (100 * r.final.mining.smartFraction).toFixed(1),
    r.final.epochSec.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
