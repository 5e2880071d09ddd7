/**
 * The training loop (docs/design.md "One epoch, GPU-resident"). Each epoch:
 *   embed all training samples -> (smart mining) FANNG build/refresh, eps, filtered search, positives
 *   -> one triplet per anchor, mixed with random ones at the mined fraction -> uploaded once
 *   -> per batch: gather -> head forward -> losses -> backward -> SGD (one small readback of scalars)
 *   -> the controller steers kappa from the batch error -> evaluation on the test split
 *   -> log record, checkpoint.
 * Runs are seeded and reproducible; a run folder can be resumed from its last checkpoint.
 *
 * @example
 * ```ts
 * import { train } from "./train.ts";
 * const result = await train({ epochs: 1, trainLimit: 1000, testLimit: 300, outDir: `${await Deno.makeTempDir()}/run` }, {
 *   onEpoch: (r) => console.log(r.epoch, r.eval?.recall[1]),
 * });
 * ```
 * @module
 */
import {
  type ConfigChange,
  resolveConfig,
  resumedConfig,
  type TrainConfig,
  type TrainConfigInput,
  validateConfig,
} from "./config.ts";
import type { Dataset } from "./data/dataset.ts";
import { loadDataset, validateDataset } from "./dataset_config.ts";
import { GpuError, type OptionNamer, UserError } from "./errors.ts";
import { getGpu, type Gpu } from "./gpu/device.ts";
import { GpuBuffer } from "./gpu/buffer.ts";
import { gatherRows } from "./ops/gather.ts";
import { pairwiseSqL2 } from "./ops/distance.ts";
import { EmbeddingHead } from "./model/head.ts";
import { type StepScalars, TrainStep } from "./model/train_step.ts";
import {
  applyCheckpoint,
  type CheckpointContents,
  readCheckpoint,
  saveCheckpoint,
} from "./model/checkpoint.ts";
import { augmentedLength, paddedWidth } from "./ops/linear.ts";
import { ClassIndex } from "./mining/classes.ts";
import { type ControllerState, KappaController } from "./mining/controller.ts";
import { batchHardTriplets, sampleClassBalancedBatch, semiHardTriplets } from "./mining/inbatch.ts";
import { ExactSearch, FanngSearch, type FanngSearchOptions, type NeighbourSearch } from "./mining/search.ts";
import { mineSmart, type SmartMining } from "./mining/smart.ts";
import { assembleEpoch, type EpochTriplets, permutation } from "./mining/triplets.ts";
import { evaluateEmbeddings } from "./eval/evaluate.ts";
import { exists, fsErrorMessage, writeFileAtomic, writeJsonAtomic } from "./util/fs.ts";
import type { FolderLock } from "./util/lock.ts";
import { checkNewRunFolder, checkRunFolderToResume, openRunFolder } from "./run_folder.ts";
import { JsonlWriter } from "./util/jsonl.ts";
import { Progress } from "./util/progress.ts";
import { Rng } from "./util/rng.ts";
import type { EpochReport, EvalSummary, MiningStats } from "./run_log.ts";

export type { EpochReport, EvalSummary, MiningStats };

/** What `train` returns. */
export interface TrainResult {
  /** The run's full config. */
  config: TrainConfig;
  /** The epochs trained by this call. */
  epochs: EpochReport[];
  /** Every epoch of the run, those of earlier (resumed) calls included: what summary.json covers. */
  history: EpochReport[];
  /** The run folder. */
  outDir: string;
  /** Name of the adapter that ran it. */
  adapter: string;
}

/** Points of an epoch reported to {@link TrainOptions.onPhase}. */
export type TrainPhase = "mine" | "train" | "evaluate" | "checkpoint" | "outputs";

/** Hooks and options for {@link train}. */
export interface TrainOptions {
  /** Called after every epoch with its report. */
  onEpoch?: (report: EpochReport) => void | Promise<void>;
  /**
   * Called as the run reaches each phase: before mining, halfway through an epoch's batches ("train"),
   * before evaluating, after the epoch's log record but before its checkpoint is written, and before the
   * final outputs. Synchronous (it runs inside the batch loop), for progress displays and fault injection.
   */
  onPhase?: (phase: TrainPhase, epoch: number) => void;
  /**
   * Continue the run in this folder from its last checkpoint: its config.json is used, and `input` may
   * change only {@link RESUMABLE_FIELDS} (e.g. raise `epochs`); anything else is refused.
   * @default none: a new run
   */
  resume?: string;
  /**
   * Replace the run already in `outDir` (default: an existing run folder is refused).
   * @default false
   */
  overwrite?: boolean;
  /**
   * GPU context to use (default: the process-wide one).
   * @default the process-wide one
   */
  gpu?: Gpu;
}

/** The anchors whose mined triplets are logged every epoch (for the supplement's Fig. 4). */
function trackedAnchors(classes: ClassIndex, count = 6): number[] {
  return Array.from({ length: Math.min(count, classes.classCount) }, (_, c) => classes.membersOf(c)[0]);
}

function epochRng(seed: number, epoch: number, stream: number): Rng {
  return new Rng((seed * 1000003 + epoch * 7919 + stream * 104729) >>> 0);
}

function mean(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

function miningStats(epoch: EpochTriplets, mined: SmartMining | undefined): MiningStats {
  const dap: number[] = [], dan: number[] = [];
  let fallback = 0;
  if (mined) {
    for (let a = 0; a < mined.positive.length; a++) {
      if (mined.positive[a] < 0 || mined.negative[a] < 0) fallback++;
    }
  }
  for (let i = 0; i < epoch.count; i++) {
    if (!epoch.mined[i]) continue;
    const a = epoch.triplets[3 * i];
    dap.push(mined!.dap[a]);
    dan.push(mined!.dan[a]);
  }
  return {
    anchors: epoch.count,
    smart: dap.length,
    fallback,
    smartFraction: epoch.count ? dap.length / epoch.count : 0,
    meanDap: mean(dap),
    meanDan: mean(dan),
    evaluations: mined?.evaluations,
  };
}

/** The checkpoint's metadata: everything besides the head and optimiser the next epoch depends on. */
interface RunCheckpointMeta {
  /** Epochs completed. */
  epoch: number;
  controller: ControllerState;
  /** The report of every completed epoch (for summary.json after a resume). */
  reports: EpochReport[];
  /** Bytes of log.jsonl when the checkpoint was written: a resume drops what was logged after it. */
  logBytes: number;
  /** The smart miner's FANNG search options; its graph is the checkpoint's `fanng` blob. */
  fanng?: FanngSearchOptions;
}

/** Where a resumed run starts: nothing done yet (no checkpoint), or the last checkpoint. */
interface ResumePoint {
  checkpoint?: CheckpointContents & { meta: RunCheckpointMeta };
  changes: ConfigChange[];
}

async function readSavedConfig(dir: string): Promise<TrainConfig> {
  const path = `${dir}/config.json`;
  let saved: TrainConfig & { adapter?: string };
  try {
    saved = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new UserError((n) =>
        `cannot resume: ${path} is not valid JSON (cut off or edited); the run cannot be continued, start ` +
        `it again with ${n("overwrite")}`
      );
    }
    throw new UserError(`cannot resume: ${fsErrorMessage(e, path, "read")}`);
  }
  if (!saved || typeof saved !== "object" || !saved.dataset || !saved.mining || !saved.head) {
    throw new UserError((n) =>
      `cannot resume: ${path} is not a training config; check the ${n("resume")} path`
    );
  }
  delete saved.adapter;
  return resolveConfig({ ...saved, outDir: dir } as TrainConfigInput);
}

/** The last checkpoint of a run folder, or none when the run stopped before its first one. */
async function readResumePoint(dir: string, config: TrainConfig, changes: ConfigChange[]) {
  const path = `${dir}/checkpoint.bin`;
  if (!(await exists(path))) return { changes };
  const c = await readCheckpoint(path);
  const meta = c.meta as unknown as RunCheckpointMeta;
  if (!Number.isInteger(meta.epoch) || !Array.isArray(meta.reports) || !meta.controller) {
    throw new UserError((n) =>
      `cannot resume: checkpoint ${path} was written by an older toolkit without the run's state; start the ` +
      `run again with ${n("overwrite")}`
    );
  }
  if (meta.epoch > config.epochs) {
    throw new UserError((n) =>
      `cannot resume ${dir}: it has trained ${meta.epoch} epochs already, more than ${
        n("epochs")
      } ${config.epochs}`
    );
  }
  return { checkpoint: { ...c, meta }, changes } as ResumePoint;
}

/** Refuses, before any GPU work, shapes this adapter cannot hold, naming the option to change. */
export function checkRunFits(gpu: Gpu, config: TrainConfig, data: Dataset): void {
  const binding = gpu.maxBindingBytes, maxBuffer = gpu.report.limits.maxBufferSize;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const widths = [data.train.features.cols, ...config.head.hidden, config.head.outDim];
  const rows = Math.max(data.train.features.rows, data.test.features.rows);
  const fieldOf = (l: number) => (l === widths.length - 2 ? "head.outDim" : "head.hidden");
  for (let l = 0; l + 1 < widths.length; l++) {
    const bytes = augmentedLength({ inDim: widths[l], outDim: widths[l + 1] }) * 4;
    if (bytes > binding) {
      throw new UserError((n) =>
        `layer ${l + 1} of the head (${widths[l]} -> ${widths[l + 1]}) needs ${mib(bytes)} of parameters, ` +
        `over this adapter's ${mib(binding)} storage binding: use a smaller ${n(fieldOf(l))}`
      );
    }
    const act = rows * paddedWidth(widths[l + 1]) * 4;
    if (act > maxBuffer) {
      throw new UserError((n) =>
        `the ${rows} samples' layer ${l + 1} outputs (${widths[l + 1]} wide) need ${mib(act)}, over this ` +
        `adapter's ${mib(maxBuffer)} buffer limit: use a smaller ${n(fieldOf(l))} or fewer samples ` +
        `(${n("trainLimit")}, ${n("testLimit")})`
      );
    }
  }
  const { rows: n, cols: d } = data.train.features;
  if (n * d * 4 > maxBuffer) {
    throw new UserError((name) =>
      `the training features (${n} x ${d}) need ${mib(n * d * 4)}, over this adapter's ${mib(maxBuffer)} ` +
      `buffer limit: use ${name("trainLimit")}`
    );
  }
  const step = 3 * config.batchSize * Math.max(...widths.map(paddedWidth)) * 4;
  if (step > binding) {
    throw new UserError((n) =>
      `a batch of ${config.batchSize} triplets needs ${mib(step)} per layer, over this adapter's ` +
      `${mib(binding)} storage binding: use a smaller ${n("batchSize")}`
    );
  }
  if (config.mining.miner === "smart" && config.mining.search === "fanng") {
    const graph = data.train.features.rows * config.mining.maxDegree * 4;
    if (graph > binding) {
      throw new UserError((n) =>
        `the FANNG graph over ${data.train.features.rows} samples at ${n("mining.maxDegree")} ` +
        `${config.mining.maxDegree} needs ${mib(graph)}, over this adapter's ${
          mib(binding)
        } storage binding: ` +
        `lower ${n("mining.maxDegree")} or set ${n("mining.search")} to exact`
      );
    }
  }
}

/** A GPU error during a run, with the run's options that set the shapes the device refused. */
function runGpuError(e: GpuError, config: TrainConfig): GpuError {
  const sized = /storage binding|out of memory/.test(e.hint);
  const options = (n: OptionNamer) =>
    `lower ${n("head.hidden")} (${config.head.hidden.join(",") || "none"}), ${n("head.outDim")} ` +
    `(${config.head.outDim}), ${n("batchSize")} (${config.batchSize}) or the sample count (${
      n("trainLimit")
    })`;
  const kept = "nothing of the failed epoch was written; the run folder keeps its last good checkpoint";
  return new GpuError(
    e.where,
    e.gpuMessage,
    (n) => [e.hint, sized ? options(n) : "", kept].filter(Boolean).join("; "),
  );
}

/**
 * Trains an embedding head with the configured miner; writes the run folder; returns the epoch reports.
 * A new run refuses a folder that holds a run already (unless `overwrite`); a resume continues exactly.
 * Bad input is refused with a UserError before any GPU work; a GPU error ends the run with a GpuError
 * before anything of the failed epoch is written.
 */
export async function train(input: TrainConfigInput = {}, options: TrainOptions = {}): Promise<TrainResult> {
  if (options.resume && options.overwrite) {
    throw new UserError((n) =>
      `${n("resume")} and ${n("overwrite")} exclude each other: continue the run, or replace it`
    );
  }
  let lock: FolderLock | undefined;
  try {
    let config: TrainConfig;
    let resume: ResumePoint | undefined;
    if (options.resume) {
      const dir = options.resume.replace(/\/+$/, "") || options.resume;
      await checkRunFolderToResume(dir);
      lock = await openRunFolder(dir, { fresh: false });
      const saved = await readSavedConfig(dir);
      const resumed = resumedConfig(saved, input, `${dir}/config.json`);
      config = resumed.config;
      validateConfig(config);
      resume = await readResumePoint(dir, config, resumed.changes);
      if (resume.checkpoint?.meta.epoch === config.epochs && await finishedRun(dir, config.epochs)) {
        throw new UserError((n) =>
          `${dir} has finished all its ${config.epochs} epochs: to train on, resume it with ${
            n("epochs")
          } N ` +
          `(more than ${config.epochs})`
        );
      }
    } else {
      config = resolveConfig(input);
      validateConfig(config);
      await checkNewRunFolder(config.outDir, options.overwrite ?? false);
    }
    const data = await loadDataset(config.dataset, { train: config.trainLimit, test: config.testLimit });
    validateDataset(data, config.batchSize);
    const classes = ClassIndex.build(data.train.labels, `${data.name} training split`);
    const gpu = options.gpu ?? (await getGpu());
    checkRunFits(gpu, config, data);
    lock ??= await openRunFolder(config.outDir, { fresh: true, overwrite: options.overwrite });
    const run = new TrainingRun(gpu, config, data, classes);
    try {
      return await run.execute(options, resume, lock.staleOwner?.pid);
    } catch (e) {
      throw e instanceof GpuError ? runGpuError(e, config) : e;
    } finally {
      run.dispose();
    }
  } finally {
    lock?.release();
  }
}

/** True when `dir`'s summary.json covers `epochs` epochs (the run wrote its outputs). */
async function finishedRun(dir: string, epochs: number): Promise<boolean> {
  try {
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
    return summary?.epochs === epochs;
  } catch {
    return false;
  }
}

/** One run's GPU state and loop; `train()` is the entry point. */
class TrainingRun {
  readonly trainFeatures: GpuBuffer<"f32">;
  readonly testFeatures: GpuBuffer<"f32">;
  readonly trainLabels: GpuBuffer<"i32">;
  readonly head: EmbeddingHead;
  readonly step: TrainStep;
  controller: KappaController;
  fanng: FanngSearch | undefined;
  log!: JsonlWriter;
  readonly tracked: number[];
  /** The GPU's error count when the run started: any error after it fails the run. */
  readonly gpuErrorMark: number;
  onPhase: TrainOptions["onPhase"];

  constructor(
    readonly gpu: Gpu,
    readonly config: TrainConfig,
    readonly data: Dataset,
    readonly classes: ClassIndex,
  ) {
    this.gpuErrorMark = gpu.errorCount;
    const tf = data.train.features, sf = data.test.features;
    this.trainFeatures = GpuBuffer.fromArray(gpu, tf.data, [tf.rows, tf.cols], "train features");
    this.testFeatures = GpuBuffer.fromArray(gpu, sf.data, [sf.rows, sf.cols], "test features");
    this.trainLabels = GpuBuffer.fromArray(gpu, data.train.labels, [tf.rows], "train labels");
    this.head = EmbeddingHead.create(gpu, {
      inDim: tf.cols,
      outDim: config.head.outDim,
      hidden: config.head.hidden,
      normalize: config.head.normalize,
      seed: config.seed,
    });
    this.step = new TrainStep(gpu, this.head, this.trainFeatures, config.loss, config.optim);
    this.controller = new KappaController(config.controller);
    this.tracked = trackedAnchors(classes);
  }

  get checkpointPath(): string {
    return `${this.config.outDir}/checkpoint.bin`;
  }

  /** Throws the first GPU error of this run, if any: called before results are used or written. */
  checkGpu(): void {
    this.gpu.throwIfErrorsSince(this.gpuErrorMark);
  }

  /** Loads the checkpoint's head, optimiser, controller and FANNG graph; returns the saved reports. */
  restore(c: NonNullable<ResumePoint["checkpoint"]>): EpochReport[] {
    applyCheckpoint(c, this.head, this.step, `checkpoint ${this.checkpointPath}`);
    this.controller = new KappaController(this.config.controller, c.meta.controller);
    const graph = c.blobs?.fanng;
    if (c.meta.fanng && graph) {
      this.fanng = new FanngSearch(this.trainLabels, { ...c.meta.fanng, quiet: this.config.quiet });
      this.fanng.restore(graph, c.blobs?.fanngRefresh, `the FANNG graph in ${this.checkpointPath}`);
    }
    return c.meta.reports;
  }

  async execute(
    options: TrainOptions,
    resume: ResumePoint | undefined,
    staleLockPid?: number,
  ): Promise<TrainResult> {
    const { config } = this;
    this.onPhase = options.onPhase;
    const saved = resume?.checkpoint ? this.restore(resume.checkpoint) : [];
    const startEpoch = saved.length + 1;
    // A resume cuts the log back to the checkpoint (records of the epoch that was lost go; so does a line
    // cut off by the kill), then says what happened.
    this.log = new JsonlWriter(`${config.outDir}/log.jsonl`, {
      append: !!resume,
      truncateTo: resume ? resume.checkpoint?.meta.logBytes ?? 0 : undefined,
    });
    await writeJsonAtomic(`${config.outDir}/config.json`, { ...config, adapter: this.gpu.report.name });
    const start = {
      epoch: startEpoch,
      dataset: this.data.name,
      trainSamples: this.data.train.labels.length,
      testSamples: this.data.test.labels.length,
      dim: this.data.train.features.cols,
      adapter: this.gpu.describe(),
      ...(staleLockPid !== undefined ? { staleLockOf: staleLockPid } : {}),
    };
    if (!resume || !resume.checkpoint) this.log.write({ type: "start", ...start });
    if (resume) {
      this.log.write({
        type: "resume",
        ...start,
        fromCheckpoint: !!resume.checkpoint,
        changed: resume.changes.map(({ field, from, to }) => ({ field, from, to })),
        discardedLogBytes: this.log.repair.droppedBytes + this.log.repair.cutLineBytes,
      });
    }
    if (!config.quiet) {
      console.error(
        `training on ${this.data.name}: ${this.data.train.labels.length} train / ${this.data.test.labels.length} test, ` +
          `${this.data.train.features.cols} -> ${config.head.outDim}, miner ${config.mining.miner}` +
          `${
            config.mining.miner === "smart" ? ` (${config.mining.search})` : ""
          }, GPU ${this.gpu.describe()}` +
          (resume ? `; resumed at epoch ${startEpoch}` : ""),
      );
    }
    const reports: EpochReport[] = [];
    let epoch = startEpoch;
    try {
      for (; epoch <= config.epochs; epoch++) {
        const report = await this.runEpoch(epoch);
        this.checkGpu();
        reports.push(report);
        this.log.write({ type: "epoch", ...report });
        this.onPhase?.("checkpoint", epoch);
        await this.saveCheckpoint(epoch, [...saved, ...reports]);
        await options.onEpoch?.(report);
      }
      this.onPhase?.("outputs", config.epochs);
      await this.writeOutputs([...saved, ...reports]);
    } catch (e) {
      // The log says why the run stopped (a resume cuts this record off again with the lost epoch).
      if (e instanceof UserError) this.log.write({ type: "error", epoch, message: e.message });
      throw e;
    }
    const history = [...saved, ...reports];
    return { config, epochs: reports, history, outDir: config.outDir, adapter: this.gpu.report.name };
  }

  /** Writes everything the next epoch depends on, atomically, in one checksummed file. */
  async saveCheckpoint(epoch: number, reports: EpochReport[]): Promise<void> {
    const graph = await this.fanng?.state();
    const meta: RunCheckpointMeta = {
      epoch,
      controller: this.controller.state(),
      reports,
      logBytes: this.log.bytes,
      ...(graph ? { fanng: { ...this.fanng!.options, quiet: undefined } } : {}),
    };
    this.checkGpu();
    await saveCheckpoint(
      this.checkpointPath,
      this.head,
      this.step,
      meta as unknown as Record<string, unknown>,
      graph ? { fanng: graph.graph, fanngRefresh: graph.refresh } : undefined,
    );
  }

  /** Smart mining over the current embeddings of the whole training set. */
  async mine(
    epoch: number,
    emb: GpuBuffer<"f32">,
    kappa: number,
    timing: EpochReport["timing"],
    bar: Progress,
  ): Promise<SmartMining> {
    const { mining, seed } = this.config;
    let search: NeighbourSearch;
    if (mining.search === "exact") {
      search = new ExactSearch(emb, this.trainLabels);
    } else {
      this.fanng ??= new FanngSearch(this.trainLabels, {
        maxDegree: mining.maxDegree,
        budget: mining.searchBudget,
        ef: mining.searchEf,
        labelPenalty: mining.searchLabelPenalty,
        seed: seed + epoch,
        quiet: this.config.quiet,
      });
      timing.graphSec = await this.fanng.update(emb);
      search = this.fanng;
      bar.tick(1, "searching negatives and positives");
    }
    const t0 = performance.now();
    // The negative search gets its own bar (rate and ETA in searches: two passes over the anchors, for
    // eps_a and for the negatives), as the graph refresh does.
    const searchBar = new Progress(`epoch ${epoch}/${this.config.epochs} negatives`, 2 * emb.rows, {
      unit: "searches",
      quiet: this.config.quiet,
    });
    let seen = 0;
    const mined = await mineSmart(emb, this.classes, kappa, search, (done) => {
      searchBar.tick(done - seen);
      seen = done;
    });
    searchBar.done();
    timing.mineSec = (performance.now() - t0) / 1000;
    bar.tick(1, `${mined.negative.length} anchors mined`);
    return mined;
  }

  async runEpoch(epoch: number): Promise<EpochReport> {
    const { config } = this;
    const t0 = performance.now();
    const timing = { embedSec: 0, graphSec: 0, mineSec: 0, trainSec: 0, evalSec: 0 };
    const kappaMined = this.controller.kappa;
    const inBatch = config.mining.miner === "semihard" || config.mining.miner === "batchhard";
    let mined: SmartMining | undefined;
    this.onPhase?.("mine", epoch);
    if (config.mining.miner === "smart" && config.mining.minedFraction > 0) {
      // One bar over the mining phases; the FANNG refresh and the negative search draw their own bars
      // inside (rate and ETA of their own work).
      const phases = config.mining.search === "fanng" ? 3 : 2;
      const bar = new Progress(`epoch ${epoch}/${config.epochs} mining`, phases, {
        unit: "phases",
        quiet: config.quiet,
        status: `embedding ${this.trainFeatures.rows} samples`,
      });
      bar.tick(0);
      const te = performance.now();
      using emb = await this.head.embedAll(this.trainFeatures);
      timing.embedSec = (performance.now() - te) / 1000;
      bar.tick(1, config.mining.search === "fanng" ? "refreshing the FANNG graph" : "searching negatives");
      mined = await this.mine(epoch, emb, kappaMined, timing, bar);
      bar.done();
    }
    const rng = epochRng(config.seed, epoch, 1);
    const order = permutation(this.classes.size, rng);
    const epochTriplets = assembleEpoch(
      this.classes,
      order,
      config.batchSize,
      config.mining.minedFraction,
      mined,
      rng,
    );
    this.logTrackedTriplets(epoch, epochTriplets, order);

    const tt = performance.now();
    const sums = inBatch
      ? await this.trainInBatch(epoch, rng)
      : await this.trainOnTriplets(epoch, epochTriplets);
    timing.trainSec = (performance.now() - tt) / 1000;

    let evalSummary: EvalSummary | undefined;
    if (epoch % config.eval.every === 0 || epoch === config.epochs) {
      this.checkGpu();
      this.onPhase?.("evaluate", epoch);
      const tv = performance.now();
      evalSummary = await this.evaluate(epoch);
      timing.evalSec = (performance.now() - tv) / 1000;
    }
    const epochSec = (performance.now() - t0) / 1000;
    return {
      epoch,
      kappa: this.controller.kappa,
      kappaMined,
      kappaBound: this.controller.atBound,
      trainError: sums.error,
      loss: sums.loss,
      tripletLoss: sums.tripletLoss,
      globalLoss: sums.globalLoss,
      mining: inBatch
        ? {
          anchors: sums.triplets,
          smart: 0,
          fallback: 0,
          smartFraction: 0,
          meanDap: sums.meanDap,
          meanDan: sums.meanDan,
        }
        : miningStats(epochTriplets, mined),
      eval: evalSummary,
      epochSec,
      tripletsPerSec: sums.triplets / timing.trainSec,
      timing,
    };
  }

  /**
   * Steps through the epoch's triplets, uploaded once; several steps stay queued on the GPU and their
   * scalars (one small readback each) reach the controller in batch order.
   */
  async trainOnTriplets(epoch: number, t: EpochTriplets) {
    using buf = GpuBuffer.fromArray(this.gpu, t.triplets, [t.count, 3], "epoch triplets");
    const acc = new ScalarAverager();
    const bar = this.progress(epoch, t.count);
    const B = this.config.batchSize;
    await this.step.stepBatches(buf, { batchSize: B }, (s, batch, count) => {
      let minedInBatch = 0;
      for (let i = batch * B; i < batch * B + count; i++) minedInBatch += t.mined[i];
      this.afterBatch(epoch, batch, s, count, minedInBatch / count, acc, bar);
    });
    bar.done();
    return acc.means();
  }

  /** In-batch miners: class-balanced batches, triplets picked from the batch's pairwise distances. */
  async trainInBatch(epoch: number, rng: Rng) {
    const { config, classes } = this;
    const batches = Math.ceil(classes.size / config.batchSize);
    const acc = new ScalarAverager();
    const bar = this.progress(epoch, batches * config.batchSize);
    for (let batch = 0; batch < batches; batch++) {
      const sample = sampleClassBalancedBatch(classes, config.batchSize, config.mining.classesPerBatch, rng);
      using idx = GpuBuffer.fromArray(this.gpu, sample);
      using x = await gatherRows(this.trainFeatures, idx);
      using e = await this.head.embed(x);
      using d = await pairwiseSqL2(e, e);
      const dist = await d.read();
      const labels = Int32Array.from(sample, (i) => classes.labels[i]);
      const local = config.mining.miner === "batchhard"
        ? batchHardTriplets(dist, labels)
        : semiHardTriplets(dist, labels, rng);
      if (!local.length) continue;
      const triplets = Uint32Array.from(local, (i) => sample[i]);
      const s = await this.step.step(triplets);
      this.afterBatch(epoch, batch, s, triplets.length / 3, 1, acc, bar);
    }
    bar.done();
    return acc.means();
  }

  afterBatch(
    epoch: number,
    batch: number,
    s: StepScalars,
    count: number,
    smartFraction: number,
    acc: ScalarAverager,
    bar: Progress,
  ): void {
    // A step the GPU refused reads back garbage: fail before it reaches the controller or the log.
    this.checkGpu();
    if (!Number.isFinite(s.loss)) {
      throw new UserError((n) =>
        `the loss became ${s.loss} at epoch ${epoch}, batch ${batch}: training diverged; lower ${
          n("optim.lr")
        } ` +
        `(now ${this.config.optim.lr})`
      );
    }
    // kappa only means something to the smart miner; others leave it untouched.
    if (this.config.controller.adaptive && this.config.mining.miner === "smart") {
      this.controller.update(s.error);
    }
    acc.add(s, count);
    const every = this.config.logEveryBatches;
    if (every > 0 && batch % every === 0) {
      this.log.write({
        type: "batch",
        epoch,
        batch,
        kappa: this.controller.kappa,
        error: s.error,
        errorEma: this.controller.errorEma,
        loss: s.loss,
        tripletLoss: s.tripletLoss,
        globalLoss: s.globalLoss,
        smartFraction,
      });
    }
    bar.tick(
      count,
      `kappa ${this.controller.kappa.toFixed(2)} err ${s.error.toFixed(3)} loss ${s.loss.toFixed(4)}`,
    );
    if (batch === Math.floor(this.batchesPerEpoch / 2)) this.onPhase?.("train", epoch);
  }

  get batchesPerEpoch(): number {
    return Math.ceil(this.classes.size / this.config.batchSize);
  }

  progress(epoch: number, total: number): Progress {
    return new Progress(`epoch ${epoch}/${this.config.epochs}`, total, {
      unit: "triplets",
      quiet: this.config.quiet,
    });
  }

  logTrackedTriplets(epoch: number, t: EpochTriplets, order: Uint32Array): void {
    const position = new Map<number, number>();
    order.forEach((a, i) => position.set(a, i));
    const triplets = this.tracked.map((a) => {
      const i = position.get(a)!;
      return {
        anchor: a,
        positive: t.triplets[3 * i + 1],
        negative: t.triplets[3 * i + 2],
        smart: t.mined[i] === 1,
      };
    });
    this.log.write({ type: "triplets", epoch, triplets });
  }

  async evaluate(epoch: number): Promise<EvalSummary> {
    using emb = await this.head.embedAll(this.testFeatures);
    const r = await evaluateEmbeddings(emb, this.data.test.labels, {
      recallKs: this.config.eval.recallKs,
      nmi: this.config.eval.nmi,
      mapAtR: this.config.eval.mapAtR,
      seed: this.config.seed + epoch,
      progress: this.config.quiet ? undefined : `epoch ${epoch}/${this.config.epochs} eval`,
    });
    const recall: Record<string, number> = {};
    for (const k of this.config.eval.recallKs) recall[String(k)] = r.recall[k];
    return {
      recall,
      nmi: r.nmi,
      ami: r.ami,
      mapAtR: r.mapAtR,
      rPrecision: r.rPrecision,
      precisionAt1: r.precisionAt1,
    };
  }

  /** Final test embeddings (for t-SNE and reports) and the summary over every epoch of the run. */
  async writeOutputs(reports: EpochReport[]): Promise<void> {
    const dir = this.config.outDir;
    using emb = await this.head.embedAll(this.testFeatures);
    const values = await emb.read();
    this.checkGpu();
    await writeFileAtomic(`${dir}/test-embeddings.f32`, new Uint8Array(values.buffer));
    await writeFileAtomic(`${dir}/test-labels.i32`, new Uint8Array(this.data.test.labels.slice().buffer));
    const last = reports.at(-1);
    const summary = {
      dataset: this.data.name,
      adapter: this.gpu.report.name,
      epochs: reports.length,
      final: last
        ? { epoch: last.epoch, eval: last.eval, kappa: last.kappa, trainError: last.trainError }
        : null,
      meanEpochSec: mean(reports.map((r) => r.epochSec)),
      testEmbeddings: { rows: emb.rows, cols: emb.cols },
      table: reports.map((r) => ({
        epoch: r.epoch,
        recall: r.eval?.recall,
        nmi: r.eval?.nmi,
        trainError: r.trainError,
        kappa: r.kappa,
        smartFraction: r.mining.smartFraction,
        epochSec: r.epochSec,
      })),
    };
    await writeJsonAtomic(`${dir}/summary.json`, summary);
    this.log.write({ type: "end", ...summary });
  }

  dispose(): void {
    this.log?.close();
    this.fanng?.[Symbol.dispose]();
    this.step[Symbol.dispose]();
    this.head[Symbol.dispose]();
    this.trainFeatures.destroy();
    this.testFeatures.destroy();
    this.trainLabels.destroy();
  }
}

/** The batch scalars averaged over an epoch. */
const AVERAGED = ["loss", "tripletLoss", "globalLoss", "error", "meanDap", "meanDan"] as const;
type EpochMeans = { triplets: number } & Record<(typeof AVERAGED)[number], number>;

/** Triplet-weighted means of the batch scalars over an epoch. */
class ScalarAverager {
  #n = 0;
  #sum = new Float64Array(AVERAGED.length);

  add(s: StepScalars, count: number): void {
    this.#n += count;
    AVERAGED.forEach((k, i) => (this.#sum[i] += s[k] * count));
  }

  means(): EpochMeans {
    const n = Math.max(1, this.#n);
    const out = { triplets: this.#n } as EpochMeans;
    AVERAGED.forEach((k, i) => (out[k] = this.#sum[i] / n));
    return out;
  }
}
