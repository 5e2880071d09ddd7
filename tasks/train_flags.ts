/**
 * The flags of `deno task train`, declared once: each flag's name, value kind, the option it sets (a
 * config path such as `mining.searchEf`, or a `train()` option), its help line and its default (read from
 * the config defaults). The table drives the parser, the help text, and the naming of options in
 * messages (`mining.searchEf` -> `--search-ef`).
 * @module
 */
import { parseArgs } from "node:util";
import { type DatasetConfig, defaultConfig, type TrainConfig, type TrainConfigInput } from "../lib/config.ts";
import { UserError } from "../lib/errors.ts";
import { searchDefaults } from "../lib/ann/search_defaults.ts";
import { MINER_KINDS } from "../lib/mining/options.ts";

/** How a flag's value is read. */
export type FlagKind =
  /** a number */
  | "number"
  /** comma-separated numbers (empty = none) */
  | "numbers"
  /** text, passed on as given (the library checks choices) */
  | "string"
  /** no value: setting the flag sets `value` */
  | "switch";

/** One flag of the table. */
export interface TrainFlag {
  /** The name without dashes, e.g. `search-ef`. */
  flag: string;
  kind: FlagKind;
  /**
   * What the flag sets: a config path (`mining.searchEf`; `dataset.*` builds the dataset), a `train()`
   * option (`resume`, `overwrite`), or `help`.
   */
  option: string;
  /** For a switch: the value the option takes when the flag is given. */
  value?: unknown;
  /** The value's placeholder in the help text, e.g. `<n>` or `seen|disjoint`. */
  arg?: string;
  /** Help text; further lines continue under it. */
  help: string;
  /** The default shown in the help; by default the config default at `option` (none for switches). */
  shownDefault?: (d: TrainConfig) => string | undefined;
}

/** Options that are arguments of `train()` (TrainOptions), not config fields. */
const RUN_OPTIONS = new Set(["resume", "overwrite", "help"]);

const filtered = searchDefaults("mining");

/** The table, in help order, one section per heading. */
export const TRAIN_FLAG_SECTIONS: readonly { title: string; flags: readonly TrainFlag[] }[] = [
  {
    title: "Data",
    flags: [
      {
        flag: "data",
        kind: "string",
        option: "dataset.dir",
        arg: "<dir>",
        help: "IDX folder (train-/t10k- images and labels, gzipped or not)",
        shownDefault: (d) => d.dataset.kind === "idx" ? d.dataset.dir : "",
      },
      {
        flag: "split",
        kind: "string",
        option: "dataset.split",
        arg: "seen|disjoint",
        help: "seen: standard train/test files, all classes; disjoint: train on the lower half\n" +
          "of the classes (0-4), test on the upper half (5-9)",
        shownDefault: () => "seen",
      },
      {
        flag: "features",
        kind: "string",
        option: "dataset.dir",
        arg: "<dir>",
        help: "train on a feature cache written by 'deno task features' instead of pixels",
        shownDefault: () => undefined,
      },
      {
        flag: "views",
        kind: "string",
        option: "dataset.views",
        arg: "all|centre",
        help: "feature caches with augmented views: use all views or only the centre one",
        shownDefault: () => "all",
      },
      {
        flag: "train-limit",
        kind: "number",
        option: "trainLimit",
        arg: "<n>",
        help: "use only the first n training samples (0 = all)",
      },
      {
        flag: "test-limit",
        kind: "number",
        option: "testLimit",
        arg: "<n>",
        help: "use only the first n test samples (0 = all)",
      },
    ],
  },
  {
    title: "Head",
    flags: [
      { flag: "embedding-dim", kind: "number", option: "head.outDim", arg: "<n>", help: "output size" },
      {
        flag: "hidden",
        kind: "numbers",
        option: "head.hidden",
        arg: "<a,b,...>",
        help: "hidden FC+ReLU layer sizes (empty = one linear layer)",
      },
      {
        flag: "no-normalize",
        kind: "switch",
        option: "head.normalize",
        value: false,
        help: "do not L2-normalise the embeddings",
      },
    ],
  },
  {
    title: "Losses",
    flags: [
      { flag: "margin", kind: "number", option: "loss.margin", arg: "<m>", help: "triplet margin" },
      {
        flag: "global-weight",
        kind: "number",
        option: "loss.globalWeight",
        arg: "<w>",
        help: "weight of the global loss (0 disables it)",
      },
      {
        flag: "global-lambda",
        kind: "number",
        option: "loss.lambda",
        arg: "<l>",
        help: "global loss lambda",
      },
      { flag: "global-t", kind: "number", option: "loss.t", arg: "<t>", help: "global loss margin t" },
    ],
  },
  {
    title: "Mining",
    flags: [
      { flag: "miner", kind: "string", option: "mining.miner", arg: MINER_KINDS.join("|"), help: "" },
      {
        flag: "search",
        kind: "string",
        option: "mining.search",
        arg: "fanng|exact",
        help: "neighbour search for smart mining: FANNG graph or GPU brute force",
      },
      {
        flag: "mined-fraction",
        kind: "number",
        option: "mining.minedFraction",
        arg: "<f>",
        help: "fraction of each batch that is mined (rest random)",
      },
      {
        flag: "search-budget",
        kind: "number",
        option: "mining.searchBudget",
        arg: "<n>",
        help: "FANNG negative search: most distance evaluations per anchor",
        shownDefault: () => `0 = ${filtered.budget}`,
      },
      {
        flag: "search-ef",
        kind: "number",
        option: "mining.searchEf",
        arg: "<n>",
        help: "FANNG negative search: ef, stop once the closest candidate is\n" +
          "beyond the ef-th qualifying result (higher: more thorough)",
        shownDefault: () => `0 = ${filtered.ef}`,
      },
      {
        flag: "search-label-penalty",
        kind: "number",
        option: "mining.searchLabelPenalty",
        arg: "<f>",
        help: "FANNG negative search: >= 1, how much later the walk expands\n" +
          "the anchor's own class (lower: harder negatives, slower; 1: plain walk)",
        shownDefault: () => `0 = never expand it`,
      },
      {
        flag: "max-degree",
        kind: "number",
        option: "mining.maxDegree",
        arg: "<n>",
        help: "FANNG maximum out-degree",
      },
      {
        flag: "classes-per-batch",
        kind: "number",
        option: "mining.classesPerBatch",
        arg: "<n>",
        help: "in-batch miners: classes per batch",
      },
    ],
  },
  {
    title: "Kappa and the controller",
    flags: [
      {
        flag: "kappa",
        kind: "number",
        option: "controller.initialKappa",
        arg: "<k>",
        help: "initial (or, with --fixed-kappa, constant) kappa",
      },
      {
        flag: "fixed-kappa",
        kind: "switch",
        option: "controller.adaptive",
        value: false,
        help: "keep kappa constant (no adaptive controller)",
      },
      {
        flag: "target-error",
        kind: "number",
        option: "controller.targetError",
        arg: "<e>",
        help: "controller target training error",
      },
      {
        flag: "gain",
        kind: "number",
        option: "controller.gain",
        arg: "<g>",
        help: "controller gain in log space",
      },
      {
        flag: "ema",
        kind: "number",
        option: "controller.ema",
        arg: "<a>",
        help: "EMA factor of the batch error",
      },
      {
        flag: "kappa-min",
        kind: "number",
        option: "controller.kappaMin",
        arg: "<k>",
        help: "lower bound of kappa",
      },
      {
        flag: "kappa-max",
        kind: "number",
        option: "controller.kappaMax",
        arg: "<k>",
        help: "upper bound of kappa",
      },
    ],
  },
  {
    title: "Optimisation",
    flags: [
      { flag: "lr", kind: "number", option: "optim.lr", arg: "<r>", help: "learning rate" },
      { flag: "momentum", kind: "number", option: "optim.momentum", arg: "<m>", help: "SGD momentum" },
      {
        flag: "weight-decay",
        kind: "number",
        option: "optim.weightDecay",
        arg: "<w>",
        help: "L2 weight decay",
      },
      { flag: "batch-size", kind: "number", option: "batchSize", arg: "<n>", help: "triplets per batch" },
      { flag: "epochs", kind: "number", option: "epochs", arg: "<n>", help: "epochs" },
      { flag: "seed", kind: "number", option: "seed", arg: "<n>", help: "seed of everything random" },
    ],
  },
  {
    title: "Evaluation and output",
    flags: [
      {
        flag: "eval-every",
        kind: "number",
        option: "eval.every",
        arg: "<n>",
        help: "evaluate every n epochs (and after the last)",
      },
      {
        flag: "recall-k",
        kind: "numbers",
        option: "eval.recallKs",
        arg: "<a,b,...>",
        help: "Recall@K values",
      },
      { flag: "no-nmi", kind: "switch", option: "eval.nmi", value: false, help: "skip k-means + NMI" },
      {
        flag: "map-at-r",
        kind: "switch",
        option: "eval.mapAtR",
        value: true,
        help: "also compute MAP@R and R-Precision",
      },
      {
        flag: "out",
        kind: "string",
        option: "outDir",
        arg: "<dir>",
        help: "run folder (config.json, log.jsonl, summary.json, checkpoint)",
        shownDefault: () => "runs/<time>",
      },
      {
        flag: "resume",
        kind: "string",
        option: "resume",
        arg: "<dir>",
        help: "continue the run in <dir> from its last checkpoint, exactly as if it had not\n" +
          "stopped; only {resumable} may change (raise --epochs to train on)",
      },
      {
        flag: "overwrite",
        kind: "switch",
        option: "overwrite",
        value: true,
        help: "replace the run already in --out (default: an existing run is refused)",
      },
      {
        flag: "log-every",
        kind: "number",
        option: "logEveryBatches",
        arg: "<n>",
        help: "write a batch record to log.jsonl every n batches (0 = none)",
      },
      { flag: "quiet", kind: "switch", option: "quiet", value: true, help: "no progress bars or tables" },
      { flag: "help", kind: "switch", option: "help", value: true, help: "this text" },
    ],
  },
];

/** Every flag of the table, in help order. */
export const TRAIN_FLAGS: readonly TrainFlag[] = TRAIN_FLAG_SECTIONS.flatMap((s) => s.flags);

/**
 * The flag(s) that set `option` (a config path, a config section such as `dataset`, or a `train()`
 * option), for messages: `mining.searchEf` -> `--search-ef`, `dataset` -> `--data/--split/--features/--views`.
 * An option without a flag keeps its name.
 */
export function flagFor(option: string): string {
  let hits = TRAIN_FLAGS.filter((f) => f.option === option);
  if (!hits.length) hits = TRAIN_FLAGS.filter((f) => f.option.startsWith(`${option}.`));
  if (option === "dataset.dir" || option === "dataset.kind") {
    hits = TRAIN_FLAGS.filter((f) => f.flag === "data" || f.flag === "features");
  }
  return hits.length ? hits.map((f) => `--${f.flag}`).join("/") : option;
}

function valueAt(config: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], config);
}

function shownDefault(f: TrainFlag, d: TrainConfig): string | undefined {
  if (f.shownDefault) return f.shownDefault(d);
  if (f.kind === "switch" || RUN_OPTIONS.has(f.option)) return undefined;
  const v = valueAt(d, f.option);
  return Array.isArray(v) ? v.join(",") : String(v);
}

const NAME_WIDTH = 24, HELP_WIDTH = 86, LINE_WIDTH = 80;

/** `line` broken at spaces into lines of at most `width` characters. */
function wrap(line: string, width: number): string[] {
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    const cut = rest.lastIndexOf(" ", width);
    if (cut <= 0) break;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut + 1);
  }
  return [...out, rest];
}

/** The `--help` text, built from the table; `resumable` lists the flags a resume may change. */
export function trainHelp(resumable: readonly string[]): string {
  const d = defaultConfig();
  const lines = [
    "deno task train [flags]",
    "",
    "Trains a fully connected embedding head on features (raw pixels for IDX data, backbone features from a",
    "cache) with triplet + global losses and the chosen miner; evaluates on the test split every epoch.",
    "Default: Fashion-MNIST, Triplet + FANNG + Adaptive + Global, 784 -> 64 linear head, L2-normalised.",
    "",
  ];
  const resumableFlags = resumable.map(flagFor);
  const listed = `${resumableFlags.slice(0, -1).join(", ")} and ${resumableFlags.at(-1)}`;
  for (const section of TRAIN_FLAG_SECTIONS) {
    lines.push(section.title);
    for (const f of section.flags) {
      const name = `${f.flag === "help" ? "-h, " : ""}--${f.flag}${f.arg ? ` ${f.arg}` : ""}`;
      const help = f.help.replace("{resumable}", listed).split("\n").flatMap((l) => wrap(l, LINE_WIDTH));
      const def = shownDefault(f, d);
      if (def !== undefined) {
        const last = help.length - 1;
        const width = last === 0
          ? HELP_WIDTH - Math.max(NAME_WIDTH, name.length + 1)
          : HELP_WIDTH - NAME_WIDTH;
        help[last] = `${help[last].padEnd(width - 1)} [${def}]`;
      }
      const first = name.length < NAME_WIDTH ? `  ${name.padEnd(NAME_WIDTH)}` : `  ${name} `;
      lines.push(`${first}${help[0]}`.trimEnd());
      for (const more of help.slice(1)) lines.push(`${" ".repeat(NAME_WIDTH + 2)}${more}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function num(v: string, flag: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new TypeError(`--${flag} expects a number, got '${v}'`);
  return n;
}

function read(f: TrainFlag, v: string | boolean): unknown {
  switch (f.kind) {
    case "switch":
      return f.value;
    case "number":
      return num(v as string, f.flag);
    case "numbers":
      return (v as string).trim() === "" ? [] : (v as string).split(",").map((s) => num(s, f.flag));
    case "string":
      return v;
  }
}

function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

/** The dataset the data flags name, or undefined when none was given (the default stays). */
function datasetFrom(given: Map<string, unknown>): DatasetConfig | undefined {
  const data = given.get("data") as string | undefined, split = given.get("split") as string | undefined;
  const features = given.get("features") as string | undefined,
    views = given.get("views") as string | undefined;
  if (features !== undefined && (data !== undefined || split !== undefined)) {
    throw new UserError(
      "--features trains on a feature cache, --data/--split on an IDX folder: give one or the other",
    );
  }
  if (views !== undefined && features === undefined) {
    throw new UserError("--views chooses the views of a feature cache: it needs --features <dir>");
  }
  if (features) return { kind: "features", dir: features, views: (views ?? "all") as "all" | "centre" };
  if (data || split) {
    const def = defaultConfig().dataset as Extract<DatasetConfig, { kind: "idx" }>;
    return { kind: "idx", dir: data ?? def.dir, split: (split ?? "seen") as "seen" | "disjoint" };
  }
  return undefined;
}

/** Flags that existed once, with what to use instead. */
const REMOVED_FLAGS: Record<string, string> = {
  neighbours:
    "smart mining uses only the nearest qualifying negative (docs/method.md section 3, step 5), so " +
    "the other results were never used; to make the FANNG search look harder for that negative, raise " +
    `--search-ef (default ${filtered.ef}) or --search-budget`,
  "search-stop": `the FANNG search now stops by hnswlib's rule; use --search-ef (default ${filtered.ef}: ` +
    "higher searches longer) and --search-budget",
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

/** Parses the command line into a config input, the resume folder and the run-folder flags. */
export function parseTrainArgs(
  args: string[],
): { input: TrainConfigInput; resume?: string; overwrite: boolean; help: boolean } {
  refuseRemovedFlags(args);
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: Object.fromEntries(TRAIN_FLAGS.map((f) => [
      f.flag,
      {
        type: f.kind === "switch" ? "boolean" as const : "string" as const,
        ...(f.flag === "help" ? { short: "h" } : {}),
      },
    ])),
  }) as { values: Record<string, string | boolean | undefined> };
  const given = new Map<string, unknown>();
  const input: Record<string, unknown> = {};
  for (const f of TRAIN_FLAGS) {
    const v = values[f.flag];
    if (v === undefined || v === false) continue;
    const value = read(f, v);
    given.set(f.flag, value);
    if (!f.option.startsWith("dataset.") && !RUN_OPTIONS.has(f.option)) setAt(input, f.option, value);
  }
  const dataset = datasetFrom(given);
  if (dataset) input.dataset = dataset;
  return {
    input: input as TrainConfigInput,
    resume: given.get("resume") as string | undefined,
    overwrite: given.has("overwrite"),
    help: given.has("help"),
  };
}
