/**
 * `deno task train`: train an embedding head with smart mining. `--help` documents every flag (the table
 * of tasks/train_flags.ts).
 * @module
 */
import { RESUMABLE_FIELDS } from "../lib/config.ts";
import { type EpochReport, train } from "../lib/train.ts";
import { runTask } from "./cli.ts";
import { flagFor, parseTrainArgs, trainHelp } from "./train_flags.ts";

function fmt(x: number | null | undefined, digits = 3): string {
  return typeof x !== "number" || Number.isNaN(x) ? "-" : x.toFixed(digits);
}

/** The end-of-run table: one row per epoch. */
export function summaryTable(reports: EpochReport[]): string {
  const ks = Object.keys(reports.find((r) => r.eval)?.eval?.recall ?? {});
  const head = [
    "epoch",
    ...ks.map((k) => `R@${k}`),
    "NMI",
    "train err",
    "kappa",
    "smart %",
    "fallback",
    "sec",
  ];
  const rows = reports.map((r) => [
    String(r.epoch),
    ...ks.map((k) => fmt(r.eval?.recall[k])),
    fmt(r.eval?.nmi),
    fmt(r.trainError),
    `${r.kappa.toFixed(2)}${r.kappaBound ? ` (${r.kappaBound})` : ""}`,
    (100 * r.mining.smartFraction).toFixed(1),
    String(r.mining.fallback),
    r.epochSec.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

if (import.meta.main) {
  await runTask(async () => {
    const { input, resume, overwrite, help } = parseTrainArgs(Deno.args);
    if (help) {
      console.log(trainHelp(RESUMABLE_FIELDS));
      return;
    }
    const result = await train(input, { resume, overwrite });
    if (!result.config.quiet) {
      console.log(
        `\n${
          summaryTable(result.history)
        }\n\nrun folder: ${result.outDir} (config.json, log.jsonl, summary.json, checkpoint.bin, test embeddings)`,
      );
    }
  }, { optionName: flagFor });
}
