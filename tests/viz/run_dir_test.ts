import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import {
  isExperimentDir,
  kappaBounds,
  parseRunLog,
  readExperimentDir,
  readRunDir,
  readTestEmbeddings,
} from "../../lib/viz/run_dir.ts";
import { writeSyntheticExperiment, writeSyntheticRun, writeTinyIdx } from "./synthetic.ts";

Deno.test("run log: records by type, resumed repeats keep the last, a cut-off last line is a warning", () => {
  const lines = [
    { type: "start", epoch: 1 },
    { type: "batch", epoch: 1, batch: 0, kappa: 4, error: 0.1, loss: 1 },
    { type: "epoch", epoch: 1, kappa: 4, trainError: 0.2, loss: 1 },
    { type: "epoch", epoch: 2, kappa: 3, trainError: 0.2, loss: 1 },
    { type: "resume", epoch: 2 },
    { type: "batch", epoch: 1, batch: 0, kappa: 5, error: 0.1, loss: 1 },
    { type: "epoch", epoch: 2, kappa: 2, trainError: 0.1, loss: 0.5 },
    { type: "triplets", epoch: 2, triplets: [] },
  ].map((l) => JSON.stringify(l)).join("\n") + '\n{"type":"epoch","epo';
  const warnings: string[] = [];
  const log = parseRunLog(lines, "log", warnings);
  assert.deepEqual(log.epochs.map((e) => [e.epoch, e.kappa]), [[1, 4], [2, 2]]);
  assert.deepEqual(log.batches.map((b) => b.kappa), [5]);
  assert.equal(log.triplets.length, 1);
  assert.equal(log.other.length, 1);
  assert.equal(log.start?.epoch, 1);
  assert.match(warnings[0], /cut off/);
  assert.throws(
    () => parseRunLog('{"type":"start"}\nnot json\n{"type":"end"}\n'),
    /line 2 is not valid JSON/,
  );
});

Deno.test("run folder: config, log, summary and embeddings read back as written", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await writeTinyIdx(`${tmp}/data`);
    const made = await writeSyntheticRun(`${tmp}/run`, `${tmp}/data`, { epochs: 3 });
    const run = await readRunDir(made.dir);
    assert.equal(run.log.epochs.length, 3);
    assert.equal(run.log.triplets.length, 3);
    assert.equal(run.log.batches.length, 9);
    assert.deepEqual(run.warnings, []);
    assert.deepEqual(kappaBounds(run.config), [1, 1024]);
    assert.equal(
      kappaBounds({ ...run.config, controller: { ...run.config.controller!, adaptive: false } }),
      undefined,
    );
    const test = await readTestEmbeddings(run);
    assert.equal(test?.embeddings.rows, made.testRows);
    assert.equal(test?.embeddings.cols, 8);
    assert.deepEqual([...test!.labels.slice(0, 5)], [0, 1, 2, 3, 0]);
    // A truncated embeddings file is a user error naming the sizes.
    await Deno.writeFile(`${made.dir}/test-embeddings.f32`, new Uint8Array(12));
    await assert.rejects(() => readTestEmbeddings(run), /12 bytes/);
    // No embeddings at all: undefined (the report leaves the map out).
    await Deno.remove(`${made.dir}/test-labels.i32`);
    assert.equal(await readTestEmbeddings(run), undefined);
    await assert.rejects(() => readRunDir(`${tmp}/data`), UserError);
    assert.equal(await isExperimentDir(made.dir), false);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("experiment folder: runs read relative to it, with their labels and swept values", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await writeTinyIdx(`${tmp}/data`);
    await writeSyntheticExperiment(`${tmp}/exp`, `${tmp}/data`, [1, 4]);
    assert.equal(await isExperimentDir(`${tmp}/exp`), true);
    const exp = await readExperimentDir(`${tmp}/exp`);
    assert.equal(exp.name, "kappa");
    assert.deepEqual(exp.runs.map((r) => [r.label, r.kappa, r.run.log.epochs.length]), [["κ=1", 1, 4], [
      "κ=4",
      4,
      4,
    ]]);
    await Deno.writeTextFile(
      `${tmp}/exp/experiment.json`,
      JSON.stringify({ name: "x", runs: [{ label: "no dir" }] }),
    );
    await assert.rejects(() => readExperimentDir(`${tmp}/exp`), /has no "dir"/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
