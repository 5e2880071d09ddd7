/**
 * `deno task experiment kappa|mined [flags]`: the supplement's studies, each several training runs in
 * one folder, then the experiment's report (figures + HTML). `--help` documents the flags.
 * @module
 */
import { parseArgs } from "node:util";
import { type ExperimentName, experimentTable, runExperiment } from "../lib/experiments/studies.ts";
import { UserError } from "../lib/errors.ts";
import { writeFileAtomic } from "../lib/util/fs.ts";
import { writeReport } from "../lib/viz/report.ts";
import { runTask } from "./cli.ts";
import { flagFor, parseTrainArgs } from "./train_flags.ts";

const HELP = `deno task experiment kappa|mined [flags]

  kappa   Triplet + FANNG + Global at fixed kappa in {1, 4, 16, 64}; plots R@{1,2,4,8} against kappa
          (the supplement's Fig. 1).
  mined   Triplet + FANNG + Adaptive (target error 0.5), global loss off, mined fraction 10%..60% in
          10% steps; plots training error, NMI, R@1, R@8 against epoch (Fig. 2).

Runs on Fashion-MNIST by default; '--features <dir>' runs on a feature cache (e.g. CUB pool5 features).
Every run's config, log and checkpoint, the experiment's figures, table.md and report.html go in one folder.

  --out <dir>             experiment folder                        [runs/experiment-<name>-<time>]
  --kappas <a,b,...>      kappa values of the kappa study          [1,4,16,64]
  --fractions <a,b,...>   mined fractions of the mined study       [0.1,0.2,0.3,0.4,0.5,0.6]
  --no-report             skip the figures and report.html
  --no-tsne               report without t-SNE maps
  --overwrite             replace the study already in --out (default: an existing study is refused)
  Any 'deno task train' flag sets what the runs share, e.g. --epochs (default 5; the supplement used 20),
  --features, --data, --train-limit, --test-limit, --seed, --search, --search-budget, --search-ef, --batch-size, --lr.
  -h, --help              this text
`;

if (import.meta.main) {
  await runTask(async () => {
    const { values, positionals, tokens } = parseArgs({
      args: Deno.args,
      strict: false,
      allowPositionals: true,
      tokens: true,
      options: {
        out: { type: "string" },
        kappas: { type: "string" },
        fractions: { type: "string" },
        "no-report": { type: "boolean" },
        "no-tsne": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(HELP);
      return;
    }
    const name = positionals[0] as ExperimentName | undefined;
    if (name !== "kappa" && name !== "mined") {
      throw new UserError("name the study: deno task experiment kappa|mined (--help for flags)");
    }
    // Everything that is not an experiment flag or the study's name goes to the train flag parser.
    const own = new Set(["out", "kappas", "fractions", "no-report", "no-tsne", "help"]);
    const rest: string[] = [];
    for (const t of tokens!) {
      // One token per option ("--seed=-3"): a value starting with a dash would read as a flag otherwise.
      if (t.kind === "option" && !own.has(t.name)) {
        rest.push(t.value !== undefined ? `${t.rawName}=${t.value}` : t.rawName);
      }
      if (t.kind === "positional" && t.index > 0) rest.push(t.value);
    }
    const { input, resume, overwrite } = parseTrainArgs(rest);
    if (resume !== undefined) {
      throw new UserError(
        "--resume continues one training run (deno task train --resume <run>), not a study",
      );
    }
    const list = (v: unknown, flag: string) =>
      typeof v === "string"
        ? v.split(",").map((s) => {
          const n = Number(s);
          if (!(n > 0)) throw new UserError(`--${flag} expects positive numbers, got '${s}'`);
          return n;
        })
        : undefined;
    const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
    const outDir = (values.out as string | undefined) ?? `runs/experiment-${name}-${stamp}`;
    const results = await runExperiment(name, {
      base: { epochs: 5, ...input, quiet: true },
      outDir,
      overwrite,
      kappas: list(values.kappas, "kappas"),
      fractions: list(values.fractions, "fractions"),
      onProgress: (line) => console.error(line),
    });
    const table = experimentTable(name, results);
    await writeFileAtomic(`${outDir}/table.md`, table + "\n");
    console.log(`\n${table}\n`);
    if (!values["no-report"]) {
      const report = await writeReport(outDir, { tsne: !values["no-tsne"] });
      console.log(`report: ${report.htmlPath}`);
    }
    console.log(`experiment folder: ${outDir}`);
  }, { optionName: flagFor });
}
