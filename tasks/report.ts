/**
 * `deno task report <run-or-experiment-dir>`: writes `<dir>/report.html` (self-contained: config,
 * metrics tables, every figure inline) and each figure as SVG and PNG under `<dir>/figures/`.
 * @module
 */
import { parseArgs } from "node:util";
import { UserError } from "../lib/errors.ts";
import { writeReport } from "../lib/viz/report.ts";
import { runTask } from "./cli.ts";

const HELP = `deno task report [flags] <dir>

Writes <dir>/report.html, one self-contained page (no network needed to view it), and the figures as
SVG and PNG in <dir>/figures/. <dir> is a run folder (written by 'deno task train') or an experiment
folder (written by 'deno task experiment', holding experiment.json); for an experiment the page
compares the runs and each run also gets its own report.

Figures: training curves (training error, NMI, R@1, R@8, kappa with its bounds, loss parts, smart-
triplet fraction), the mined-triplet grid (the fixed anchors' triplets by epoch), a t-SNE map of the
final test embeddings, and for experiments R@K against kappa or the mined fraction.

  --no-tsne            skip the t-SNE map (it takes about a minute for 6,000 points)
  --tsne-points <n>    most test points in the t-SNE map (a seeded random subset beyond) [6000]
  --seed <n>           seed of the subset and of t-SNE                                   [0]
  --no-runs            experiments: do not write each run's own report
  --quiet              no progress lines
  --help               this text`;

if (import.meta.main) {
  await runTask(async () => {
    const { values, positionals } = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        "no-tsne": { type: "boolean" },
        "tsne-points": { type: "string" },
        seed: { type: "string" },
        "no-runs": { type: "boolean" },
        quiet: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
    if (values.help) {
      console.log(HELP);
      return;
    }
    if (positionals.length !== 1) {
      throw new UserError("give one run or experiment folder: deno task report <dir> (--help for flags)");
    }
    const int = (flag: string, v: string | undefined, dflt: number, min: number) => {
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) {
        throw new UserError(`--${flag} must be an integer >= ${min}, got '${v}'`);
      }
      return n;
    };
    const result = await writeReport(positionals[0], {
      tsne: !values["no-tsne"],
      tsnePoints: int("tsne-points", values["tsne-points"], 6000, 10),
      seed: int("seed", values.seed, 0, 0),
      perRun: !values["no-runs"],
      quiet: values.quiet,
    });
    for (const w of result.warnings) console.error(`note: ${w}`);
    console.log(`report: ${result.htmlPath} (${result.figures.length} figures in SVG and PNG)`);
  });
}
