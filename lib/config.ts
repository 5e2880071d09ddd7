/**
 * The one typed training configuration shared by the library (`train(config)`) and the command line
 * (`deno task train`). Defaults reproduce docs/method.md section 1 on Fashion-MNIST: Triplet + FANNG +
 * Adaptive + Global, linear 784 -> 64 head, L2-normalised, lr 0.05, momentum 0.9, batch 128, margin 0.2.
 * @module
 */
import { type ControllerConfig, validateControllerConfig } from "./mining/controller.ts";
import { FASHION_MNIST_DIR } from "./data/idx.ts";
import { UserError } from "./errors.ts";
import { MAX_BUDGET, MAX_K } from "./ann/search.ts";

/** Where the training data comes from. */
export type DatasetConfig =
  | {
    /** An IDX folder (Fashion-MNIST by default): raw pixels are the features. */
    kind: "idx";
    dir: string;
    /** `seen`: the standard train/test files, all classes. `disjoint`: train on the lower half of the
     * classes (0-4 for Fashion-MNIST) from the training file, test on the upper half from the test file. */
    split: "seen" | "disjoint";
  }
  | {
    /** A feature cache folder written by `deno task features`. */
    kind: "features";
    dir: string;
    /** `all`: every cached augmented view of a training image is a training sample; `centre`: only the centre view. */
    views: "all" | "centre";
  };

/** Which triplets the miner produces. */
export type MinerKind = "smart" | "random" | "semihard" | "batchhard";

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
  /** How triplets are chosen. */
  mining: {
    miner: MinerKind;
    /** Nearest-neighbour search for smart mining: the FANNG graph or exact GPU brute force. */
    search: "fanng" | "exact";
    /** Fraction of each batch made of mined triplets (the rest random). */
    minedFraction: number;
    /**
     * Most distance evaluations per anchor of the FANNG negative search; 0 = the default of
     * lib/ann/search_defaults.ts ("filtered").
     */
    searchBudget: number;
    /**
     * ef of the FANNG negative search (it ends once its closest candidate is farther than the ef-th
     * qualifying result); 0 = the default of lib/ann/search_defaults.ts ("filtered").
     */
    searchEf: number;
    /** FANNG maximum out-degree. */
    maxDegree: number;
    /** In-batch miners: classes per batch (batch size / this = samples per class). */
    classesPerBatch: number;
  };
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

/** The defaults (docs/method.md section 1 and 4). */
export function defaultConfig(): TrainConfig {
  return {
    dataset: { kind: "idx", dir: FASHION_MNIST_DIR, split: "seen" },
    trainLimit: 0,
    testLimit: 0,
    head: { outDim: 64, hidden: [], normalize: true },
    loss: { margin: 0.2, globalWeight: 1, lambda: 1, t: 0.4 },
    mining: {
      miner: "smart",
      search: "fanng",
      minedFraction: 1,
      searchBudget: 0,
      searchEf: 0,
      maxDegree: 32,
      classesPerBatch: 8,
    },
    controller: {
      adaptive: true,
      targetError: 0.5,
      gain: 0.05,
      ema: 0.9,
      kappaMin: 1,
      kappaMax: 1024,
      initialKappa: 16,
    },
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
  const ds = config.dataset as Partial<{ split: string; views: string }> & DatasetConfig;
  if (ds.kind === "idx") ds.split ??= "seen";
  else if (ds.kind === "features") ds.views ??= "all";
  if (!config.outDir) config.outDir = `runs/${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}`;
  return config;
}

function need(cond: boolean, message: string): void {
  if (!cond) throw new UserError(message);
}

const isPosInt = (n: number) => Number.isInteger(n) && n > 0;

/** Checks settings that do not depend on the data; throws a UserError naming the bad one. */
export function validateConfig(c: TrainConfig): void {
  need(
    ["idx", "features"].includes(c.dataset.kind),
    `unknown dataset kind '${(c.dataset as { kind: string }).kind}'`,
  );
  if (c.dataset.kind === "idx") {
    need(
      ["seen", "disjoint"].includes(c.dataset.split),
      `--split must be 'seen' or 'disjoint', got '${c.dataset.split}'`,
    );
  } else {
    need(
      ["all", "centre"].includes(c.dataset.views),
      `--views must be 'all' or 'centre', got '${c.dataset.views}'`,
    );
  }
  need(isPosInt(c.head.outDim), `--embedding-dim must be a positive integer, got ${c.head.outDim}`);
  need(c.head.hidden.every(isPosInt), `--hidden must list positive integers, got ${c.head.hidden.join(",")}`);
  need(c.loss.margin >= 0, `--margin must be >= 0, got ${c.loss.margin}`);
  need(c.loss.globalWeight >= 0, `--global-weight must be >= 0, got ${c.loss.globalWeight}`);
  need(
    Number.isFinite(c.loss.lambda) && Number.isFinite(c.loss.t),
    "--global-lambda and --global-t must be numbers",
  );
  need(
    ["smart", "random", "semihard", "batchhard"].includes(c.mining.miner),
    `unknown --miner '${c.mining.miner}'`,
  );
  need(
    ["fanng", "exact"].includes(c.mining.search),
    `--search must be 'fanng' or 'exact', got '${c.mining.search}'`,
  );
  need(c.mining.minedFraction >= 0 && c.mining.minedFraction <= 1, `--mined-fraction must be in [0, 1]`);
  need(
    Number.isInteger(c.mining.searchBudget) && c.mining.searchBudget >= 0 &&
      c.mining.searchBudget <= MAX_BUDGET,
    `--search-budget must be an integer in 0..${MAX_BUDGET} (0 = the default)`,
  );
  need(
    Number.isInteger(c.mining.searchEf) && c.mining.searchEf >= 0 && c.mining.searchEf <= MAX_K,
    `--search-ef must be an integer in 0..${MAX_K} (0 = the default)`,
  );
  need(isPosInt(c.mining.maxDegree), `--max-degree must be a positive integer`);
  need(
    isPosInt(c.mining.classesPerBatch) && c.mining.classesPerBatch >= 2,
    `--classes-per-batch must be >= 2`,
  );
  validateControllerConfig(c.controller);
  need(c.optim.lr > 0, `--lr must be > 0, got ${c.optim.lr}`);
  need(c.optim.momentum >= 0 && c.optim.momentum < 1, `--momentum must be in [0, 1)`);
  need(c.optim.weightDecay >= 0, `--weight-decay must be >= 0`);
  need(isPosInt(c.batchSize), `--batch-size must be a positive integer, got ${c.batchSize}`);
  need(Number.isInteger(c.epochs) && c.epochs >= 1, `--epochs must be an integer >= 1, got ${c.epochs}`);
  need(Number.isInteger(c.seed), `--seed must be an integer`);
  need(
    Number.isInteger(c.trainLimit) && c.trainLimit >= 0 && Number.isInteger(c.testLimit) && c.testLimit >= 0,
    "--train-limit and --test-limit must be integers >= 0",
  );
  need(isPosInt(c.eval.every), `--eval-every must be a positive integer`);
  need(
    c.eval.recallKs.length > 0 && c.eval.recallKs.every(isPosInt),
    `--recall-k must list positive integers`,
  );
}

/** The command-line flag of each config field (dotted paths; `dataset` is one field). */
export const CONFIG_FLAGS: Readonly<Record<string, string>> = {
  dataset: "--data/--split/--features/--views",
  trainLimit: "--train-limit",
  testLimit: "--test-limit",
  "head.outDim": "--embedding-dim",
  "head.hidden": "--hidden",
  "head.normalize": "--no-normalize",
  "loss.margin": "--margin",
  "loss.globalWeight": "--global-weight",
  "loss.lambda": "--global-lambda",
  "loss.t": "--global-t",
  "mining.miner": "--miner",
  "mining.search": "--search",
  "mining.minedFraction": "--mined-fraction",
  "mining.searchBudget": "--search-budget",
  "mining.searchEf": "--search-ef",
  "mining.maxDegree": "--max-degree",
  "mining.classesPerBatch": "--classes-per-batch",
  "controller.adaptive": "--fixed-kappa",
  "controller.initialKappa": "--kappa",
  "controller.targetError": "--target-error",
  "controller.gain": "--gain",
  "controller.ema": "--ema",
  "controller.kappaMin": "--kappa-min",
  "controller.kappaMax": "--kappa-max",
  "optim.lr": "--lr",
  "optim.momentum": "--momentum",
  "optim.weightDecay": "--weight-decay",
  batchSize: "--batch-size",
  epochs: "--epochs",
  seed: "--seed",
  "eval.every": "--eval-every",
  "eval.recallKs": "--recall-k",
  "eval.nmi": "--no-nmi",
  "eval.mapAtR": "--map-at-r",
  outDir: "--out",
  logEveryBatches: "--log-every",
  quiet: "--quiet",
};

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
  /** Config field (dotted path). */
  field: string;
  /** The CLI flag that sets it. */
  flag: string;
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
 * all {@link RESUMABLE_FIELDS}; otherwise a UserError naming the flags that would change how the run
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
      if (to !== saved.outDir) {
        throw new UserError(`--out cannot be combined with --resume: the run stays in ${saved.outDir}`);
      }
      continue;
    }
    const path = field.split(".");
    const from = path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], saved);
    if (same(from, to)) continue;
    const change = { field, flag: CONFIG_FLAGS[field] ?? field, from, to };
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
    const what = refused.map((c) =>
      `${c.flag} (saved ${JSON.stringify(c.from)}, given ${JSON.stringify(c.to)})`
    );
    const allowed = RESUMABLE_FIELDS.map((f) => CONFIG_FLAGS[f]).join(", ");
    throw new UserError(
      `a resume cannot change ${what.join(", ")}: ${source} continues with the settings it was started ` +
        `with. A resume may change only ${allowed}; to train with other settings start a new run (--out)`,
    );
  }
  return { config: config as unknown as TrainConfig, changes };
}
