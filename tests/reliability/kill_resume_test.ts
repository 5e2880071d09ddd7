/**
 * Fault injection: a default smart-mining run (Triplet + FANNG + Adaptive + Global on Fashion-MNIST, small
 * sizes) is killed with SIGKILL at each phase of an epoch (mining, training, evaluation, between the epoch's
 * log record and its checkpoint, before the final outputs; in the first epoch, before any checkpoint) and at
 * random moments, then resumed: the final checkpoint (head, optimiser, controller, FANNG graph) and the test
 * embeddings must equal the uninterrupted run's bit for bit, and the log must read cleanly.
 *
 * 4,200 training samples: above the FANNG builder's exact-candidate limit (4,096), so the graph a refresh
 * starts from matters and a resume that rebuilt it instead would differ.
 */
import assert from "node:assert/strict";
import { train, type TrainPhase } from "../../lib/train.ts";
import type { TrainConfigInput } from "../../lib/config.ts";
import { parseRunLog } from "../../lib/viz/run_dir.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertSameRun, listDir, taskPermissions } from "./helpers.ts";

const EPOCHS = 2;

function config(outDir: string): TrainConfigInput {
  return {
    trainLimit: 4200,
    testLimit: 300,
    epochs: EPOCHS,
    mining: { searchBudget: 64 },
    outDir,
    quiet: true,
    logEveryBatches: 1,
  };
}

const CHILD = new URL("./fixtures/train_until_killed.ts", import.meta.url).pathname;

/**
 * Starts a training child (a new run in `dir`, or a resume of it) with the train task's permissions, its
 * writes limited to `dir`'s parent (the run and the marker file).
 */
async function startChild(dir: string, fresh: boolean, args: string[]): Promise<Deno.ChildProcess> {
  const perms = (await taskPermissions("train")).map((p) =>
    p.startsWith("--allow-write") ? `--allow-write=${dir.slice(0, dir.lastIndexOf("/"))}` : p
  );
  const what = fresh ? { config: config(dir) } : { resume: dir };
  return new Deno.Command("deno", {
    args: ["run", ...perms, CHILD, JSON.stringify(what), ...args],
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

async function waitFor(cond: () => Promise<boolean>, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const t0 = Date.now();
  while (!(await cond())) {
    if (exited) {
      throw new Error(`the child exited before ${what}:\n${await new Response(child.stderr).text()}`);
    }
    if (Date.now() - t0 > 300_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function kill(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stderr.cancel().catch(() => {});
  assert.equal(status.signal, "SIGKILL", `the child was not killed (exit ${status.code})`);
}

const logLines = (dir: string) =>
  Deno.readTextFile(`${dir}/log.jsonl`).then((t) => t.split("\n").length - 1, () => 0);

/** Runs (or resumes) the run in `dir` until it reaches `phase` of `epoch`, and kills it there. */
async function killAtPhase(dir: string, fresh: boolean, phase: TrainPhase, epoch: number): Promise<void> {
  const marker = `${dir}.reached`;
  const child = await startChild(dir, fresh, [phase, String(epoch), marker]);
  await waitFor(() => Deno.stat(marker).then(() => true, () => false), child, `${phase} of epoch ${epoch}`);
  await kill(child);
  await Deno.remove(marker);
}

/** Runs (or resumes) the run in `dir` and kills it once its log holds `records` lines. */
async function killAtLogLength(dir: string, fresh: boolean, records: number): Promise<void> {
  const child = await startChild(dir, fresh, []);
  await waitFor(async () => (await logLines(dir)) >= records, child, `${records} log records`);
  await kill(child);
}

/** Resumes `dir` in this process to the end and compares it with the uninterrupted run. */
async function resumeAndCompare(dir: string, reference: string, what: string): Promise<void> {
  const result = await train({}, { resume: dir });
  assert.equal(result.history.length, EPOCHS, `${what}: history covers every epoch`);
  await assertSameRun(dir, reference, what);
  const warnings: string[] = [];
  const log = parseRunLog(await Deno.readTextFile(`${dir}/log.jsonl`), "log.jsonl", warnings);
  assert.deepEqual(warnings, [], `${what}: the log has a cut line`);
  assert.deepEqual(log.epochs.map((e) => e.epoch), Array.from({ length: EPOCHS }, (_, i) => i + 1));
  assert.ok(log.end, `${what}: the log has no end record`);
  assert.deepEqual(
    (await listDir(dir)).filter((n) => !/^(config|log|summary|checkpoint|test-)/.test(n)),
    [],
    `${what}: temporary or lock files left behind`,
  );
}

Deno.test({
  name: "kill -9 anywhere in a default FANNG run, then resume: bit-identical checkpoint and test embeddings",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const root = await Deno.makeTempDir({ prefix: "dml-kill-" });
    try {
      const reference = `${root}/uninterrupted`;
      await train(config(reference));
      // One run killed at every phase in turn, each kill striking the run resumed from the one before.
      const points: [TrainPhase, number][] = [
        ["mine", 1], // before the first checkpoint: the resume starts over
        ["mine", 2],
        ["train", 2],
        ["evaluate", 2],
        ["checkpoint", 2], // the epoch is in the log, its checkpoint not yet written
        ["outputs", EPOCHS], // every epoch checkpointed, summary and embeddings not yet written
      ];
      await t.step(`killed at ${points.map(([p, e]) => `${p} ${e}`).join(", ")} in turn`, async () => {
        const dir = `${root}/phases`;
        for (const [i, [phase, epoch]] of points.entries()) {
          await killAtPhase(dir, i === 0, phase, epoch);
          if (phase === "checkpoint") {
            // What a kill in the middle of the write leaves: a temporary file and a cut log line.
            await Deno.writeFile(`${dir}/checkpoint.bin.tmp-4242-deadbeef`, new Uint8Array(1000));
            await Deno.writeTextFile(`${dir}/log.jsonl`, '{"time":"2025-01-01T00:00:00Z","type":"ba', {
              append: true,
            });
          }
        }
        await resumeAndCompare(dir, reference, "killed at every phase");
      });
      // Random moments: at seeded random log lengths (one record per batch), once in each epoch (a resume
      // cuts the log back to its checkpoint, so the second kill strikes the resumed run in epoch 2).
      const total = await logLines(reference);
      const half = Math.floor(total / 2);
      const rng = new Rng(11);
      const cuts = [2 + rng.int(half - 4), half + 2 + rng.int(total - half - 4)];
      await t.step(`killed at log lengths ${cuts.join(", then ")} (of ${total})`, async () => {
        const dir = `${root}/random`;
        for (const [i, records] of cuts.entries()) await killAtLogLength(dir, i === 0, records);
        await resumeAndCompare(dir, reference, `killed at log lengths ${cuts.join(", ")}`);
      });
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
