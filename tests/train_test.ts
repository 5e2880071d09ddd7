/**
 * The training loop end to end on tiny IDX folders: run folder contents, library callbacks, resume
 * reproducibility, each miner, and every bad input refused before any GPU work.
 */
import assert from "node:assert/strict";
import { train } from "../lib/train.ts";
import type { TrainConfigInput } from "../lib/config.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { UserError } from "../lib/errors.ts";
import { readJsonl } from "../lib/util/jsonl.ts";
import { summaryTable } from "../tasks/train.ts";
import { parseTrainArgs } from "../tasks/train_flags.ts";
import { validateDataset } from "../lib/dataset_config.ts";
import type { Dataset } from "../lib/data/dataset.ts";
import { cyclingLabels, writeIdxFolder } from "./fixtures/idx.ts";

/** A GPU context that fails the test if anything touches it. */
const untouchableGpu = new Proxy({}, {
  get(_t, prop) {
    throw new Error(`GPU touched (${String(prop)}) before the input was validated`);
  },
}) as Gpu;

async function tinyData(dir: string, classes = 5, train = 200, test = 100): Promise<string> {
  await writeIdxFolder(`${dir}/data`, {
    train: cyclingLabels(classes, train),
    test: cyclingLabels(classes, test),
  });
  return `${dir}/data`;
}

function cfg(data: string, out: string, extra: TrainConfigInput = {}): TrainConfigInput {
  return {
    dataset: { kind: "idx", dir: data, split: "seen" },
    batchSize: 32,
    epochs: 2,
    outDir: out,
    quiet: true,
    logEveryBatches: 1,
    ...extra,
  };
}

Deno.test("train writes a complete run folder and calls back once per epoch", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-train-" });
  try {
    const data = await tinyData(dir);
    const seen: number[] = [];
    const result = await train(cfg(data, `${dir}/run`, { mining: { search: "exact" } }), {
      onEpoch: (r) => void seen.push(r.epoch),
    });
    assert.deepEqual(seen, [1, 2]);
    const last = result.epochs[1];
    assert.ok(last.eval!.recall["1"] > 0.5, `tiny separable data: R@1 ${last.eval!.recall["1"]}`);
    assert.ok(last.eval!.nmi! >= 0 && last.eval!.nmi! <= 1);
    // These classes are perfectly separable, so few anchors have a positive harder than their negative.
    assert.equal(last.mining.anchors, 200);
    assert.equal(last.mining.smartFraction, last.mining.smart / 200);
    for (
      const f of [
        "config.json",
        "log.jsonl",
        "summary.json",
        "checkpoint.bin",
        "test-embeddings.f32",
        "test-labels.i32",
      ]
    ) {
      await Deno.stat(`${dir}/run/${f}`);
    }
    const log = await readJsonl<{ type: string; epoch?: number; triplets?: unknown[] }>(
      `${dir}/run/log.jsonl`,
    );
    const types = log.map((r) => r.type);
    assert.equal(types[0], "start");
    assert.equal(types.at(-1), "end");
    assert.equal(types.filter((t) => t === "epoch").length, 2);
    assert.equal(types.filter((t) => t === "batch").length, 2 * Math.ceil(200 / 32));
    const trip = log.find((r) => r.type === "triplets")!;
    assert.equal(trip.triplets!.length, 5);
    const emb = await Deno.readFile(`${dir}/run/test-embeddings.f32`);
    assert.equal(emb.byteLength, 100 * 64 * 4);
    assert.match(summaryTable(result.epochs), /R@1.*NMI/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a resumed run continues exactly where an uninterrupted one would be", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-resume-" });
  try {
    const data = await tinyData(dir);
    const opts = { mining: { search: "exact" as const } };
    const full = await train(cfg(data, `${dir}/full`, { ...opts, epochs: 3 }));
    await train(cfg(data, `${dir}/part`, { ...opts, epochs: 1 }));
    const resumed = await train({ epochs: 3 }, { resume: `${dir}/part` });
    assert.deepEqual(resumed.epochs.map((r) => r.epoch), [2, 3]);
    const a = full.epochs[2], b = resumed.epochs[1];
    assert.equal(b.loss, a.loss);
    assert.equal(b.kappa, a.kappa);
    assert.deepEqual(b.eval, a.eval);
    const log = await readJsonl<{ type: string }>(`${dir}/part/log.jsonl`);
    assert.ok(log.some((r) => r.type === "resume"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every miner trains: random, semi-hard, batch-hard, smart through FANNG; disjoint split", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-miners-" });
  try {
    const data = await tinyData(dir, 6, 240, 120);
    for (const miner of ["random", "semihard", "batchhard", "smart"] as const) {
      const r = await train(
        cfg(data, `${dir}/${miner}`, { epochs: 1, mining: { miner, classesPerBatch: 4 } }),
      );
      assert.ok(Number.isFinite(r.epochs[0].loss), miner);
      assert.ok(r.epochs[0].eval!.recall["1"] > 0.3, `${miner}: R@1 ${r.epochs[0].eval!.recall["1"]}`);
    }
    const d = await train(
      cfg(data, `${dir}/disjoint`, { epochs: 1, dataset: { kind: "idx", dir: data, split: "disjoint" } }),
    );
    assert.equal(d.epochs[0].mining.anchors, 120); // classes 0-2 of 6
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fixed kappa stays put; adaptive kappa moves and the log says where it is", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-kappa-" });
  try {
    const data = await tinyData(dir);
    const fixed = await train(
      cfg(data, `${dir}/fixed`, { controller: { adaptive: false, initialKappa: 4 } }),
    );
    assert.ok(fixed.epochs.every((r) => r.kappa === 4 && r.kappaMined === 4));
    const adaptive = await train(cfg(data, `${dir}/adaptive`, { epochs: 1, mining: { search: "exact" } }));
    assert.notEqual(adaptive.epochs[0].kappa, 16);
    const batches = (await readJsonl<{ type: string; kappa?: number }>(`${dir}/adaptive/log.jsonl`))
      .filter((r) => r.type === "batch");
    assert.ok(new Set(batches.map((b) => b.kappa)).size > 1, "kappa never changed between batches");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad input is refused with one clear message before any GPU work", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-badinput-" });
  try {
    const good = await tinyData(dir);
    const refuse = async (input: TrainConfigInput, pattern: RegExp) => {
      await assert.rejects(
        () => train({ quiet: true, outDir: `${dir}/out`, ...input }, { gpu: untouchableGpu }),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
    };
    await refuse(
      { dataset: { kind: "idx", dir: `${dir}/nowhere`, split: "seen" } },
      /not found in .*nowhere.*IDX format/,
    );
    await writeIdxFolder(`${dir}/single`, { train: [0, 0, 1, 1, 2], test: [0, 1, 2] });
    await refuse(
      { dataset: { kind: "idx", dir: `${dir}/single`, split: "seen" }, batchSize: 2 },
      /single sample.*label 2/,
    );
    await writeIdxFolder(`${dir}/oneclass`, { train: [3, 3, 3, 3], test: [3, 3] });
    await refuse(
      { dataset: { kind: "idx", dir: `${dir}/oneclass`, split: "seen" }, batchSize: 2 },
      /1 class.*at least two/,
    );
    await refuse(
      { dataset: { kind: "idx", dir: good, split: "seen" }, batchSize: 5000 },
      /larger than the training set/,
    );
    await refuse(
      { dataset: { kind: "idx", dir: good, split: "seen" }, controller: { kappaMin: 64, kappaMax: 4 } },
      /inverted/,
    );
    await refuse(
      { dataset: { kind: "features", dir: `${dir}/nofeatures`, views: "all" } },
      /features|manifest/i,
    );
    await refuse({ dataset: { kind: "idx", dir: good, split: "seen" }, optim: { lr: -1 } }, /optim\.lr/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the command line maps every flag onto the config", () => {
  const { input, resume } = parseTrainArgs([
    "--features",
    "/f",
    "--views",
    "centre",
    "--hidden",
    "256,128",
    "--no-normalize",
    "--miner",
    "semihard",
    "--search",
    "exact",
    "--search-ef",
    "24",
    "--kappa",
    "4",
    "--fixed-kappa",
    "--mined-fraction",
    "0.5",
    "--global-weight",
    "0",
    "--lr",
    "0.01",
    "--epochs",
    "3",
    "--recall-k",
    "1,5",
    "--map-at-r",
    "--resume",
    "runs/x",
  ]);
  assert.deepEqual(input.dataset, { kind: "features", dir: "/f", views: "centre" });
  assert.deepEqual(input.head, { hidden: [256, 128], normalize: false });
  assert.deepEqual(input.mining, { miner: "semihard", search: "exact", searchEf: 24, minedFraction: 0.5 });
  assert.deepEqual(input.controller, { adaptive: false, initialKappa: 4 });
  assert.equal(input.loss!.globalWeight, 0);
  assert.deepEqual(input.eval, { recallKs: [1, 5], mapAtR: true });
  assert.equal(resume, "runs/x");
  assert.throws(() => parseTrainArgs(["--lr", "fast"]), /--lr expects a number/);
  assert.throws(() => parseTrainArgs(["--no-such-flag"]));
  // Removed flags say what to use instead.
  assert.throws(() => parseTrainArgs(["--neighbours", "8"]), /--neighbours was removed: .*--search-ef/);
  assert.throws(() => parseTrainArgs(["--search-stop=1.5"]), /--search-stop was removed: .*--search-ef/);
});

Deno.test("features with NaNs or mismatched widths are refused, naming the row and column", () => {
  const split = (rows: number, cols: number, bad?: number) => {
    const data = new Float32Array(rows * cols).fill(0.5);
    if (bad !== undefined) data[bad] = NaN;
    return { features: { rows, cols, data }, labels: Int32Array.from({ length: rows }, (_, i) => i % 2) };
  };
  const ds = (train: Dataset["train"], test: Dataset["test"]): Dataset => ({ name: "cache", train, test });
  validateDataset(ds(split(4, 3), split(2, 3)), 2);
  assert.throws(
    () => validateDataset(ds(split(4, 3, 7), split(2, 3)), 2),
    (e) => e instanceof UserError && /non-finite value \(NaN\) at row 2, column 1/.test(e.message),
  );
  assert.throws(
    () => validateDataset(ds(split(4, 3), split(2, 5)), 2),
    (e) => e instanceof UserError && /3 columns but test features 5/.test(e.message),
  );
  assert.throws(
    () => validateDataset(ds(split(0, 3), split(2, 3)), 1),
    (e) => e instanceof UserError && /empty/.test(e.message),
  );
});
