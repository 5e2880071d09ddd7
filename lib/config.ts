/**
 * The one typed training configuration shared by the library (`train(config)`) and the command line
 * (`deno task train`). Defaults reproduce docs/method.md section 1 on Fashion-MNIST: Triplet + FANNG +
 * Adaptive + Global, linear 784 -> 64 head, L2-normalised, lr 0.05, momentum 0.9, batch 128, margin 0.2.
 * @module
 */
import { checkOption, UserError } from "./errors.ts";
import {
  type ControllerConfig,
  defaultControllerConfig,
  validateControllerConfig,
} from "./mining/controller.ts";
import { defaultMiningConfig, type MiningConfig, validateMiningConfig } from "./mining/options.ts";
import {
  completeDatasetConfig,
  type DatasetConfig,
  defaultDatasetConfig,
  validateDatasetConfig,
} from "./dataset_config.ts";

export type { DatasetConfig } from "./dataset_config.ts";
export type { MinerKind, MiningConfig } from "./mining/options.ts";

/** Everything a training run needs. */
export interface TrainConfig {
  /** Which data set to train on. */
  dataset: DatasetConfig;
  /** Use only the first N training / test samples (0 = all): for quick runs. */
  trainLimit: number;
  /** Use only the first N test samples (0 = all). */
  testLimit: number;
  /** Embedding width, hidden layers and whether embeddings are L2-normalised. */
  head: { outDim: number; hidden: number[]; normalize: boolean };
  /** Triplet margin and the global loss's weight, lambda and t (docs/method.md section 2). */
  loss: { margin: number; globalWeight: number; lambda: number; t: number };
  /** How triplets are chosen (lib/mining/options.ts). */
  mining: MiningConfig;
  /** `adaptive`: kappa follows the controller; otherwise kappa stays at `initialKappa`. */
  controller: ControllerConfig & { adaptive: boolean };
  /** SGD learning rate, momentum and weight decay. */
  optim: { lr: number; momentum: number; weightDecay: number };
  /** Triplets per batch. */
  batchSize: number;
  /** Epochs to train (in all, for a resumed run). */
  epochs: number;
  /** Seed of initialisation, order, random triplets and graphs. */
  seed: number;
  /** Evaluate every N epochs; which Recall@K; NMI; MAP@R and R-Precision. */
  eval: { every: number; recallKs: number[]; nmi: boolean; mapAtR: boolean };
  /** Output folder for config.json, log.jsonl, summary.json, checkpoints and embeddings. */
  outDir: string;
  /** Write a batch record to the log every this many batches (0 = none). */
  logEveryBatches: number;
  /** No progress bars or tables. */
  quiet: boolean;
}

/** A partial config: any subset, nested objects partial too. */
export type TrainConfigInput = {
  [K in keyof TrainConfig]?: TrainConfig[K] extends unknown[] ? TrainConfig[K]
    : TrainConfig[K] extends object ? Partial<TrainConfig[K]>
    : TrainConfig[K];
};

/** The defaults (docs/method.md sections 1 and 4); each section's own from the module that reads it. */
export function defaultConfig(): TrainConfig {
  return {
    dataset: defaultDatasetConfig(),
    trainLimit: 0,
    testLimit: 0,
    head: { outDim: 64, hidden: [], normalize: true },
    loss: { margin: 0.2, globalWeight: 1, lambda: 1, t: 0.4 },
    mining: defaultMiningConfig(),
    controller: { adaptive: true, ...defaultControllerConfig() },
    optim: { lr: 0.05, momentum: 0.9, weightDecay: 0 },
    batchSize: 128,
    epochs: 5,
    seed: 0,
    eval: { every: 1, recallKs: [1, 2, 4, 8], nmi: true, mapAtR: false },
    outDir: "",
    logEveryBatches: 10,
    quiet: false,
  };
}

/** Defaults overlaid with `input` (nested objects merged one level deep). */
export function resolveConfig(input: TrainConfigInput = {}): TrainConfig {
  const base = defaultConfig() as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    const cur = base[key];
    // The dataset is replaced whole (its fields depend on its kind); other objects merge.
    base[key] = key === "dataset"
      ? value
      : cur && typeof cur === "object" && !Array.isArray(cur) && typeof value === "object" &&
          !Array.isArray(value)
      ? { ...cur, ...value }
      : value;
  }
  const config = base as unknown as TrainConfig;
  // A dataset given without its optional field gets the default for its kind.
  completeDatasetConfig(config.dataset);
  if (!config.outDir) config.outDir = `runs/${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}`;
  return config;
}

const isPosInt = (n: number) => Number.isInteger(n) && n > 0;

/**
 * Checks settings that do not depend on the data; throws an OptionError naming the bad field by its
 * config path (`mining.searchEf`); the command line renders it with the flag instead.
 */
export function validateConfig(c: TrainConfig): void {
  validateDatasetConfig(c.dataset, "dataset.");
  checkOption(
    isPosInt(c.head.outDim),
    (n) => `${n("head.outDim")} must be a positive integer, got ${c.head.outDim}`,
  );
  checkOption(
    c.head.hidden.every(isPosInt),
    (n) => `${n("head.hidden")} must list positive integers, got ${c.head.hidden.join(",")}`,
  );
  checkOption(c.loss.margin >= 0, (n) => `${n("loss.margin")} must be >= 0, got ${c.loss.margin}`);
  checkOption(
    c.loss.globalWeight >= 0,
    (n) => `${n("loss.globalWeight")} must be >= 0, got ${c.loss.globalWeight}`,
  );
  checkOption(Number.isFinite(c.loss.lambda), (n) => `${n("loss.lambda")} must be a number`);
  checkOption(Number.isFinite(c.loss.t), (n) => `${n("loss.t")} must be a number`);
  validateMiningConfig(c.mining, "mining.");
  validateControllerConfig(c.controller, "controller.");
  checkOption(c.optim.lr > 0, (n) => `${n("optim.lr")} must be > 0, got ${c.optim.lr}`);
  checkOption(
    c.optim.momentum >= 0 && c.optim.momentum < 1,
    (n) => `${n("optim.momentum")} must be in [0, 1), got ${c.optim.momentum}`,
  );
  checkOption(c.optim.weightDecay >= 0, (n) => `${n("optim.weightDecay")} must be >= 0`);
  checkOption(
    isPosInt(c.batchSize),
    (n) => `${n("batchSize")} must be a positive integer, got ${c.batchSize}`,
  );
  checkOption(
    Number.isInteger(c.epochs) && c.epochs >= 1,
    (n) => `${n("epochs")} must be an integer >= 1, got ${c.epochs}`,
  );
  checkOption(Number.isInteger(c.seed), (n) => `${n("seed")} must be an integer, got ${c.seed}`);
  checkOption(
    Number.isInteger(c.trainLimit) && c.trainLimit >= 0,
    (n) => `${n("trainLimit")} must be an integer >= 0, got ${c.trainLimit}`,
  );
  checkOption(
    Number.isInteger(c.testLimit) && c.testLimit >= 0,
    (n) => `${n("testLimit")} must be an integer >= 0, got ${c.testLimit}`,
  );
  checkOption(isPosInt(c.eval.every), (n) => `${n("eval.every")} must be a positive integer`);
  checkOption(
    c.eval.recallKs.length > 0 && c.eval.recallKs.every(isPosInt),
    (n) => `${n("eval.recallKs")} must list positive integers`,
  );
  checkOption(
    Number.isInteger(c.logEveryBatches) && c.logEveryBatches >= 0,
    (n) => `${n("logEveryBatches")} must be an integer >= 0, got ${c.logEveryBatches}`,
  );
}

/**
 * The fields a resume may change: how long to train, and what to print, log and evaluate. Everything else
 * decides the numbers of the epochs still to come, so a resumed run keeps the saved values.
 */
export const RESUMABLE_FIELDS: readonly string[] = [
  "epochs",
  "quiet",
  "logEveryBatches",
  "eval.every",
  "eval.recallKs",
  "eval.nmi",
  "eval.mapAtR",
];

/** A field a resume changed. */
export interface ConfigChange {
  /** The field's config path, e.g. `epochs` or `eval.recallKs`. */
  field: string;
  /** Value saved with the run. */
  from: unknown;
  /** Value of this resume. */
  to: unknown;
}

/** The config's leaves as dotted paths (arrays and the dataset are leaves). */
function leaves(o: Record<string, unknown>, prefix = ""): [string, unknown][] {
  return Object.entries(o).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v === undefined) return [];
    if (path !== "dataset" && v && typeof v === "object" && !Array.isArray(v)) {
      return leaves(v as Record<string, unknown>, path);
    }
    return [[path, v] as [string, unknown]];
  });
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The config of a resumed run: the saved config with the changes `input` asks for applied, when they are
 * all {@link RESUMABLE_FIELDS}; otherwise an OptionError naming the fields that would change how the run
 * trains. Values equal to the saved ones are no change. `source` names the saved config in messages.
 */
export function resumedConfig(
  saved: TrainConfig,
  input: TrainConfigInput,
  source: string,
): { config: TrainConfig; changes: ConfigChange[] } {
  const config = structuredClone(saved) as unknown as Record<string, unknown>;
  const changes: ConfigChange[] = [];
  const refused: ConfigChange[] = [];
  for (const [field, to] of leaves(input as Record<string, unknown>)) {
    if (field === "outDir") {
      checkOption(
        to === saved.outDir,
        (n) => `${n("outDir")} cannot be combined with ${n("resume")}: the run stays in ${saved.outDir}`,
      );
      continue;
    }
    const path = field.split(".");
    const from = path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], saved);
    if (same(from, to)) continue;
    const change = { field, from, to };
    if (!RESUMABLE_FIELDS.includes(field)) {
      refused.push(change);
      continue;
    }
    changes.push(change);
    let node = config;
    for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>;
    node[path.at(-1)!] = to;
  }
  if (refused.length) {
    throw new UserError((n) => {
      const what = refused.map((c) =>
        `${n(c.field)} (saved ${JSON.stringify(c.from)}, given ${JSON.stringify(c.to)})`
      );
      return `a resume cannot change ${what.join(", ")}: ${source} continues with the settings it was ` +
        `started with. A resume may change only ${RESUMABLE_FIELDS.map(n).join(", ")}; to train with other ` +
        `settings start a new run (${n("outDir")})`;
    });
  }
  return { config: config as unknown as TrainConfig, changes };
}
