/**
 * `deno task train`: train an embedding head with smart mining. `--help` documents every flag.
 * @module
 */
import { parseArgs } from "node:util";
import { type DatasetConfig, defaultConfig, type MinerKind, type TrainConfigInput } from "../lib/config.ts";
import { type EpochReport, train } from "../lib/train.ts";
import { UserError } from "../lib/errors.ts";
import { runTask } from "./cli.ts";
import { searchDefaults } from "../lib/ann/search_defaults.ts";

const d = defaultConfig();
const filtered = searchDefaults("filtered");

const HELP = `deno task train [flags]

Trains a fully connected embedding head on features (raw pixels for IDX data, backbone features from a
cache) with triplet + global losses and the chosen miner; evaluates on the test split every epoch.
Default: Fashion-MNIST, Triplet + FANNG + Adaptive + Global, 784 -> 64 linear head, L2-normalised.

Data
  --data <dir>            IDX folder (train-/t10k- images and labels, gzipped or not)   [${
  d.dataset.kind === "idx" ? d.dataset.dir : ""
}]
  --split seen|disjoint   seen: standard train/test files, all classes; disjoint: train on the lower half
                          of the classes (0-4), test on the upper half (5-9)           [seen]
  --features <dir>        train on a feature cache written by 'deno task features' instead of pixels
  --views all|centre      feature caches with augmented views: use all views or only the centre one [all]
  --train-limit <n>       use only the first n training samples (0 = all)               [0]
  --test-limit <n>        use only the first n test samples (0 = all)                   [0]
Head
  --embedding-dim <n>     output size                                                   [${d.head.outDim}]
  --hidden <a,b,...>      hidden FC+ReLU layer sizes (empty = one linear layer)         []
  --no-normalize          do not L2-normalise the embeddings
Losses
  --margin <m>            triplet margin                                                [${d.loss.margin}]
  --global-weight <w>     weight of the global loss (0 disables it)                     [${d.loss.globalWeight}]
  --global-lambda <l>     global loss lambda                                            [${d.loss.lambda}]
  --global-t <t>          global loss margin t                                          [${d.loss.t}]
Mining
  --miner smart|random|semihard|batchhard                                               [${d.mining.miner}]
  --search fanng|exact    neighbour search for smart mining: FANNG graph or GPU brute force [${d.mining.search}]
  --mined-fraction <f>    fraction of each batch that is mined (rest random)            [${d.mining.minedFraction}]
  --search-budget <n>     FANNG negative search: most distance evaluations per anchor   [0 = ${filtered.budget}]
  --search-ef <n>         FANNG negative search: ef, stop once the closest candidate is
                          beyond the ef-th qualifying result (higher: more thorough)    [0 = ${filtered.ef}]
  --max-degree <n>        FANNG maximum out-degree                                      [${d.mining.maxDegree}]
  --classes-per-batch <n> in-batch miners: classes per batch                            [${d.mining.classesPerBatch}]
Kappa and the controller
  --kappa <k>             initial (or, with --fixed-kappa, constant) kappa              [${d.controller.initialKappa}]
  --fixed-kappa           keep kappa constant (no adaptive controller)
  --target-error <e>      controller target training error                              [${d.controller.targetError}]
  --gain <g>              controller gain in log space                                  [${d.controller.gain}]
  --ema <a>               EMA factor of the batch error                                 [${d.controller.ema}]
  --kappa-min <k>         lower bound of kappa                                          [${d.controller.kappaMin}]
  --kappa-max <k>         upper bound of kappa                                          [${d.controller.kappaMax}]
Optimisation
  --lr <r>                learning rate                                                 [${d.optim.lr}]
  --momentum <m>          SGD momentum                                                  [${d.optim.momentum}]
  --weight-decay <w>      L2 weight decay                                               [${d.optim.weightDecay}]
  --batch-size <n>        triplets per batch                                            [${d.batchSize}]
  --epochs <n>            epochs                                                        [${d.epochs}]
  --seed <n>              seed of everything random                                     [${d.seed}]
Evaluation and output
  --eval-every <n>        evaluate every n epochs (and after the last)                  [${d.eval.every}]
  --recall-k <a,b,...>    Recall@K values                                               [${
  d.eval.recallKs.join(",")
}]
  --no-nmi                skip k-means + NMI
  --map-at-r              also compute MAP@R and R-Precision
  --out <dir>             run folder (config.json, log.jsonl, summary.json, checkpoint)  [runs/<time>]
  --resume <dir>          continue the run in <dir> from its last checkpoint, exactly as if it had not
                          stopped; only --epochs, --quiet, --log-every, --eval-every, --recall-k,
                          --no-nmi and --map-at-r may change (raise --epochs to train on)
  --overwrite             replace the run already in --out (default: an existing run is refused)
  --log-every <n>         write a batch record to log.jsonl every n batches (0 = none) [${d.logEveryBatches}]
  --quiet                 no progress bars or tables
  -h, --help              this text
`;

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new TypeError(`--${flag} expects a number, got '${v}'`);
  return n;
}

function list(v: string | undefined, flag: string): number[] | undefined {
  if (v === undefined) return undefined;
  return v.trim() === "" ? [] : v.split(",").map((s) => num(s, flag)!);
}

/** Parses the command line into a config input, the resume folder and the run-folder flags. */
export function parseTrainArgs(
  args: string[],
): { input: TrainConfigInput; resume?: string; overwrite: boolean; help: boolean } {
  refuseRemovedFlags(args);
  const strings = [
    "data",
    "split",
    "features",
    "views",
    "train-limit",
    "test-limit",
    "embedding-dim",
    "hidden",
    "margin",
    "global-weight",
    "global-lambda",
    "global-t",
    "miner",
    "search",
    "mined-fraction",
    "search-budget",
    "search-ef",
    "max-degree",
    "classes-per-batch",
    "kappa",
    "target-error",
    "gain",
    "ema",
    "kappa-min",
    "kappa-max",
    "lr",
    "momentum",
    "weight-decay",
    "batch-size",
    "epochs",
    "seed",
    "eval-every",
    "recall-k",
    "out",
    "resume",
    "log-every",
  ] as const;
  const booleans = [
    "no-normalize",
    "fixed-kappa",
    "no-nmi",
    "map-at-r",
    "quiet",
    "overwrite",
    "help",
  ] as const;
  const { values: v } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      ...Object.fromEntries(strings.map((s) => [s, { type: "string" as const }])),
      ...Object.fromEntries(
        booleans.map((b) => [b, { type: "boolean" as const, ...(b === "help" ? { short: "h" } : {}) }]),
      ),
    },
  }) as { values: Record<string, string | boolean | undefined> };
  const s = (k: string) => v[k] as string | undefined;
  const n = (k: string) => num(s(k), k);
  let dataset: DatasetConfig | undefined;
  if (s("features") !== undefined && (s("data") !== undefined || s("split") !== undefined)) {
    throw new UserError(
      "--features trains on a feature cache, --data/--split on an IDX folder: give one or the other",
    );
  }
  if (s("views") !== undefined && s("features") === undefined) {
    throw new UserError("--views chooses the views of a feature cache: it needs --features <dir>");
  }
  if (s("features")) {
    dataset = { kind: "features", dir: s("features")!, views: (s("views") ?? "all") as "all" | "centre" };
  } else if (s("data") || s("split")) {
    const def = d.dataset as Extract<DatasetConfig, { kind: "idx" }>;
    dataset = {
      kind: "idx",
      dir: s("data") ?? def.dir,
      split: (s("split") ?? "seen") as "seen" | "disjoint",
    };
  }
  const input: TrainConfigInput = {
    dataset,
    trainLimit: n("train-limit"),
    testLimit: n("test-limit"),
    head: {
      outDim: n("embedding-dim"),
      hidden: list(s("hidden"), "hidden"),
      normalize: v["no-normalize"] ? false : undefined,
    },
    loss: {
      margin: n("margin"),
      globalWeight: n("global-weight"),
      lambda: n("global-lambda"),
      t: n("global-t"),
    },
    mining: {
      miner: s("miner") as MinerKind | undefined,
      search: s("search") as "fanng" | "exact" | undefined,
      minedFraction: n("mined-fraction"),
      searchBudget: n("search-budget"),
      searchEf: n("search-ef"),
      maxDegree: n("max-degree"),
      classesPerBatch: n("classes-per-batch"),
    },
    controller: {
      adaptive: v["fixed-kappa"] ? false : undefined,
      initialKappa: n("kappa"),
      targetError: n("target-error"),
      gain: n("gain"),
      ema: n("ema"),
      kappaMin: n("kappa-min"),
      kappaMax: n("kappa-max"),
    },
    optim: { lr: n("lr"), momentum: n("momentum"), weightDecay: n("weight-decay") },
    batchSize: n("batch-size"),
    epochs: n("epochs"),
    seed: n("seed"),
    eval: {
      every: n("eval-every"),
      recallKs: list(s("recall-k"), "recall-k"),
      nmi: v["no-nmi"] ? false : undefined,
      mapAtR: v["map-at-r"] ? true : undefined,
    },
    outDir: s("out"),
    logEveryBatches: n("log-every"),
    quiet: v.quiet ? true : undefined,
  };
  return {
    input: dropUndefined(input) as TrainConfigInput,
    resume: s("resume"),
    overwrite: !!v.overwrite,
    help: !!v.help,
  };
}

/** Flags that existed once, with what to use instead. */
const REMOVED_FLAGS: Record<string, string> = {
  neighbours:
    "smart mining uses only the nearest qualifying negative (docs/method.md section 3, step 5), so " +
    "the other results were never used; to make the FANNG search look harder for that negative, raise " +
    `--search-ef (default ${searchDefaults("filtered").ef}) or --search-budget`,
  "search-stop": `the FANNG search now stops by hnswlib's rule; use --search-ef (default ${
    searchDefaults("filtered").ef
  }: higher searches longer) and --search-budget`,
};

/** Throws one UserError for a removed flag, saying what to use instead. */
function refuseRemovedFlags(args: string[]): void {
  for (const a of args) {
    const name = /^--([^=]+)/.exec(a)?.[1];
    if (name && Object.hasOwn(REMOVED_FLAGS, name)) {
      throw new UserError(`--${name} was removed: ${REMOVED_FLAGS[name]}`);
    }
  }
}

/** Removes undefined fields (recursively one level) so they do not override defaults. */
function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) {
    if (val === undefined) continue;
    if (val && typeof val === "object" && !Array.isArray(val) && !ArrayBuffer.isView(val)) {
      const inner = dropUndefined(val as Record<string, unknown>);
      if (Object.keys(inner).length || (val as { kind?: string }).kind) out[k] = inner;
    } else out[k] = val;
  }
  return out;
}

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
      console.log(HELP);
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
  });
}
