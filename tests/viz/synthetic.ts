/**
 * Small, real run and experiment folders for the viz tests, written in the format lib/train.ts writes
 * (config.json, log.jsonl, summary.json, test embeddings) over a tiny IDX data set made here too.
 * @module
 */
import { defaultConfig, type TrainConfig } from "../../lib/config.ts";
import { Rng } from "../../lib/util/rng.ts";
import { cyclingLabels, writeIdxFolder } from "../fixtures/idx.ts";
import type { BatchRecord, EpochRecord, TripletRecord } from "../../lib/viz/run_dir.ts";

/** Writes a tiny IDX folder: `classes` classes with `perClass` train and test samples each. */
export function writeTinyIdx(
  dir: string,
  classes = 4,
  perClass = { train: 12, test: 8 },
  side = 12,
): Promise<void> {
  return writeIdxFolder(dir, {
    train: cyclingLabels(classes, classes * perClass.train),
    test: cyclingLabels(classes, classes * perClass.test),
    side,
  });
}

/** What {@link writeSyntheticRun} made, for assertions. */
export interface SyntheticRun {
  dir: string;
  epochs: number;
  anchors: number;
  testRows: number;
}

/**
 * A finished run folder over the IDX folder `dataDir` (made by writeTinyIdx with the same `classes`):
 * `epochs` epochs with batch records, evaluation, mined triplets of one anchor per class (consistent
 * with the labels), final test embeddings that cluster by class.
 */
export async function writeSyntheticRun(
  dir: string,
  dataDir: string,
  { epochs = 6, classes = 4, kappa = 16, minedFraction = 1, seed = 1 } = {},
): Promise<SyntheticRun> {
  await Deno.mkdir(dir, { recursive: true });
  const rng = new Rng(seed);
  const base = defaultConfig();
  const config: TrainConfig & { adapter: string } = {
    ...base,
    dataset: { kind: "idx", dir: dataDir, split: "seen" },
    controller: { ...base.controller, initialKappa: kappa },
    mining: { ...base.mining, minedFraction },
    epochs,
    seed,
    outDir: dir,
    adapter: "synthetic",
  };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config, null, 2));
  const perClassTrain = 12, trainCount = classes * perClassTrain;
  const lines: object[] = [{
    type: "start",
    time: "2026-01-01T00:00:00.000Z",
    epoch: 1,
    dataset: "tiny",
    trainSamples: trainCount,
    testSamples: classes * 8,
    dim: 144,
    adapter: "synthetic adapter",
  }];
  let k = kappa;
  const anchors = Array.from({ length: classes }, (_, c) => c); // sample c has label c
  for (let e = 1; e <= epochs; e++) {
    for (let b = 0; b < 30; b += 10) {
      k = Math.min(1024, Math.max(1, k * Math.exp(0.3 * (rng.float() - 0.7))));
      const rec: BatchRecord = {
        type: "batch",
        epoch: e,
        batch: b,
        kappa: k,
        error: 0.4 * rng.float(),
        errorEma: 0.2,
        loss: 0.3 / e,
        tripletLoss: 0.2 / e,
        globalLoss: 0.1 / e,
        smartFraction: 0.9,
      };
      lines.push(rec);
    }
    const ep: EpochRecord = {
      type: "epoch",
      epoch: e,
      kappa: k,
      kappaBound: k <= 1 ? "min" : k >= 1024 ? "max" : null,
      trainError: 0.3 / e + 0.02 * rng.float(),
      loss: 0.3 / e,
      tripletLoss: 0.2 / e,
      globalLoss: 0.1 / e,
      mining: {
        anchors: trainCount,
        smart: 40,
        fallback: 8,
        smartFraction: 40 / 48,
        meanDap: 0.5,
        meanDan: 0.4,
      },
      eval: {
        recall: { "1": 0.6 + 0.03 * e, "2": 0.7 + 0.02 * e, "4": 0.8 + 0.015 * e, "8": 0.85 + 0.01 * e },
        nmi: 0.5 + 0.02 * e,
      },
      epochSec: 1.5,
      tripletsPerSec: 32,
      timing: { embedSec: 0.1, graphSec: 0.2, mineSec: 0.3, trainSec: 0.8, evalSec: 0.1 },
    };
    lines.push(ep);
    const trip: TripletRecord = {
      type: "triplets",
      epoch: e,
      triplets: anchors.map((a) => ({
        anchor: a,
        positive: a + classes * (1 + ((e + a) % (perClassTrain - 1))), // same class: index = c mod classes
        negative: (a + 1 + (e % (classes - 1))) % classes + classes * e, // another class
        smart: (a + e) % 4 !== 0,
      })),
    };
    lines.push(trip);
  }
  const testRows = classes * 8, cols = 8;
  const emb = new Float32Array(testRows * cols), labels = new Int32Array(testRows);
  for (let i = 0; i < testRows; i++) {
    labels[i] = i % classes;
    for (let j = 0; j < cols; j++) emb[i * cols + j] = (j === labels[i] ? 1 : 0) + 0.1 * rng.normal();
  }
  await Deno.writeFile(`${dir}/test-embeddings.f32`, new Uint8Array(emb.buffer));
  await Deno.writeFile(`${dir}/test-labels.i32`, new Uint8Array(labels.buffer));
  const summary = { dataset: "tiny", epochs, testEmbeddings: { rows: testRows, cols }, meanEpochSec: 1.5 };
  await Deno.writeTextFile(`${dir}/summary.json`, JSON.stringify(summary, null, 2));
  lines.push({ type: "end", ...summary });
  await Deno.writeTextFile(`${dir}/log.jsonl`, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  return { dir, epochs, anchors: anchors.length, testRows };
}

/** An experiment folder with one run per kappa value (runs in sub-folders) and experiment.json. */
export async function writeSyntheticExperiment(
  dir: string,
  dataDir: string,
  kappas = [1, 4, 16],
): Promise<string[]> {
  const runs = [];
  for (const [i, kappa] of kappas.entries()) {
    await writeSyntheticRun(`${dir}/kappa-${kappa}`, dataDir, { kappa, seed: 10 + i, epochs: 4 });
    runs.push({ dir: `kappa-${kappa}`, label: `κ=${kappa}`, kappa });
  }
  await Deno.writeTextFile(`${dir}/experiment.json`, JSON.stringify({ name: "kappa", runs }, null, 2));
  return runs.map((r) => `${dir}/${r.dir}`);
}
