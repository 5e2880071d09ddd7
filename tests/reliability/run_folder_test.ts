/**
 * A run folder is never lost or mixed, and a resume is honest: one process at a time (a lock with its pid;
 * a stale lock taken over), an existing run is never overwritten unasked, a resume changes only what it may
 * (and logs it), a finished run keeps its summary, a cut log line is repaired, a run killed before its first
 * checkpoint resumes from the start, and every bad folder ends in one message.
 */
import assert from "node:assert/strict";
import { train, type TrainPhase } from "../../lib/train.ts";
import type { TrainConfigInput } from "../../lib/config.ts";
import { JsonlWriter, readJsonl } from "../../lib/util/jsonl.ts";
import { FolderLock } from "../../lib/util/lock.ts";
import { fsErrorMessage } from "../../lib/util/fs.ts";
import { readRunDir } from "../../lib/viz/run_dir.ts";
import {
  assertRefused,
  assertSameRun,
  denoTask,
  listDir,
  refuses,
  taskPermissions,
  tinyIdx,
  withTemp,
} from "./helpers.ts";

function cfg(data: string, out: string, extra: TrainConfigInput = {}): TrainConfigInput {
  return {
    dataset: { kind: "idx", dir: data, split: "seen" },
    batchSize: 32,
    epochs: 1,
    outDir: out,
    quiet: true,
    logEveryBatches: 1,
    mining: { search: "exact" },
    ...extra,
  };
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await listDir(dir)) {
    const bytes = await Deno.readFile(`${dir}/${name}`).catch(() => new Uint8Array());
    out[name] = `${bytes.length}:${bytes.reduce((h, b) => (h * 31 + b) >>> 0, 7)}`;
  }
  return out;
}

const CHILD = new URL("./fixtures/train_until_killed.ts", import.meta.url).pathname;

/** A training child parked at `phase` of `epoch` (holding the run's lock) until killed. */
async function parkedChild(root: string, config: TrainConfigInput, phase: TrainPhase, epoch: number) {
  const marker = `${root}/parked`;
  const perms = (await taskPermissions("train")).map((p) =>
    p.startsWith("--allow-write") ? `--allow-write=${root}` : p
  );
  const child = new Deno.Command("deno", {
    args: ["run", ...perms, CHILD, JSON.stringify({ config }), phase, String(epoch), marker],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; !(await Deno.stat(marker).then(() => true, () => false)); i++) {
    if (i > 15000) throw new Error("the child never reached its phase");
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

Deno.test({
  name:
    "two runs on one folder: the second is refused naming the first's pid; a dead run's lock is taken over",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withTemp("dml-lock-", async (root) => {
      const data = await tinyIdx(root);
      const out = `${root}/run`;
      const child = await parkedChild(root, cfg(data, out, { epochs: 2 }), "train", 1);
      try {
        const before = await snapshot(out);
        await assert.rejects(
          () => train(cfg(data, out)),
          refuses(new RegExp(`run folder .*run is in use by another process \\(pid ${child.pid}, train`)),
        );
        await assert.rejects(
          () => train({ epochs: 3 }, { resume: out }),
          refuses(/in use by another process/),
        );
        const cli = await denoTask("train", ["--data", data, "--out", out, "--quiet", "--overwrite"]);
        assertRefused(cli, /in use by another process \(pid \d+/);
        assert.deepEqual(await snapshot(out), before, "the refused runs changed the folder");
      } finally {
        child.kill("SIGKILL");
        await child.status;
      }
      // The killed run left its lock file behind: a resume takes it over and says so in the log.
      assert.ok((await listDir(out)).includes(".lock"));
      await train({}, { resume: out });
      const resume = (await readJsonl<{ type: string; staleLockOf?: number }>(`${out}/log.jsonl`))
        .find((r) => r.type === "resume");
      assert.equal(resume?.staleLockOf, child.pid);
      assert.ok(!(await listDir(out)).includes(".lock"), "the lock file stays after the run");
    }),
});

Deno.test("the folder lock: exclusive while held, released by release(), reports a dead owner's pid", async () => {
  await withTemp("dml-folderlock-", async (dir) => {
    const path = `${dir}/.lock`;
    const first = await FolderLock.acquire(path, "test folder");
    // flock is per open file: a second open in the same process is refused like another process.
    await assert.rejects(
      () => FolderLock.acquire(path, "test folder"),
      refuses(/test folder is in use.*pid/),
    );
    first.release();
    assert.deepEqual(await listDir(dir), []);
    await Deno.writeTextFile(path, JSON.stringify({ pid: 999999, since: "2025-01-01T00:00:00Z" }));
    using second = await FolderLock.acquire(path, "test folder");
    assert.equal(second.staleOwner?.pid, 999999);
  });
});

Deno.test("an existing run folder is refused unless --overwrite; foreign files and files as --out always", async () => {
  await withTemp("dml-exists-", async (root) => {
    const data = await tinyIdx(root);
    const out = `${root}/run`;
    await train(cfg(data, out));
    const before = await snapshot(out);
    await assert.rejects(
      () => train(cfg(data, out)),
      refuses(/already holds a run .*continue it with resume .*overwrite/),
    );
    assert.deepEqual(await snapshot(out), before);
    const r = await train(cfg(data, out, { seed: 5 }), { overwrite: true });
    assert.equal(r.history.length, 1);
    assert.equal(JSON.parse(await Deno.readTextFile(`${out}/config.json`)).seed, 5);
    await assert.rejects(() => train({}, { resume: out, overwrite: true }), refuses(/exclude each other/));
    // A folder with other files is not a run folder, even with --overwrite.
    await Deno.mkdir(`${root}/mine`);
    await Deno.writeTextFile(`${root}/mine/notes.txt`, "keep me");
    for (const overwrite of [false, true]) {
      await assert.rejects(
        () => train(cfg(data, `${root}/mine`), { overwrite }),
        refuses(/is not empty and is not a run folder \(it holds notes\.txt\)/),
      );
    }
    assert.deepEqual(await listDir(`${root}/mine`), ["notes.txt"]);
    await Deno.writeTextFile(`${root}/file`, "x");
    await assert.rejects(() => train(cfg(data, `${root}/file`)), refuses(/is a file, not a folder/));
    await assert.rejects(
      () => train(cfg(data, `${root}/file/sub`)),
      refuses(/a part of the path is a file|is a file|not a folder/),
    );
  });
});

Deno.test("a resume changes only the flags it may, records them, and refuses the rest by name", async () => {
  await withTemp("dml-resume-rules-", async (root) => {
    const data = await tinyIdx(root);
    const out = `${root}/run`;
    await train(cfg(data, out, { mining: { miner: "random" }, optim: { momentum: 0.5 }, epochs: 2 }));
    const before = await snapshot(out);
    await assert.rejects(
      () => train({ epochs: 3, optim: { lr: 0.01 } }, { resume: out }),
      refuses(/cannot change optim\.lr \(saved 0\.05, given 0\.01\).*may change only epochs/),
    );
    await assert.rejects(
      () => train({ epochs: 3, mining: { searchEf: 24 } }, { resume: out }),
      refuses(/cannot change mining\.searchEf/),
    );
    await assert.rejects(
      () => train({ outDir: `${root}/elsewhere` }, { resume: out }),
      refuses(/outDir cannot be combined with resume/),
    );
    assert.deepEqual(await snapshot(out), before, "a refused resume changed the folder");
    // Same values as saved are no change; epochs and the log cadence may change.
    const r = await train(
      { epochs: 3, logEveryBatches: 2, optim: { lr: 0.05 }, mining: { miner: "random" } },
      { resume: out },
    );
    assert.deepEqual(r.epochs.map((e) => e.epoch), [3]);
    assert.equal(r.config.optim.momentum, 0.5, "the saved momentum was reset");
    assert.equal(r.config.mining.miner, "random");
    const saved = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
    assert.equal(saved.epochs, 3);
    assert.equal(saved.logEveryBatches, 2);
    const resume = (await readJsonl<{ type: string; changed?: unknown }>(`${out}/log.jsonl`))
      .find((x) => x.type === "resume");
    assert.deepEqual(resume?.changed, [
      { field: "epochs", from: 2, to: 3 },
      { field: "logEveryBatches", from: 1, to: 2 },
    ]);
  });
});

Deno.test("resuming a finished run keeps its summary; training on covers every epoch with one end record", async () => {
  await withTemp("dml-finished-", async (root) => {
    const data = await tinyIdx(root);
    const out = `${root}/run`;
    await train(cfg(data, out, { epochs: 2 }));
    const before = await snapshot(out);
    await assert.rejects(
      () => train({}, { resume: out }),
      refuses(/finished all its 2 epochs.*resume it with epochs N/),
    );
    await assert.rejects(() => train({ epochs: 1 }, { resume: out }), refuses(/trained 2 epochs already/));
    assert.deepEqual(await snapshot(out), before, "the summary or another file changed");
    const r = await train({ epochs: 3 }, { resume: out });
    assert.equal(r.history.length, 3);
    const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    assert.equal(summary.epochs, 3);
    assert.deepEqual(summary.table.map((t: { epoch: number }) => t.epoch), [1, 2, 3]);
    const types = (await readJsonl<{ type: string }>(`${out}/log.jsonl`)).map((x) => x.type);
    assert.equal(types.filter((t) => t === "end").length, 1);
    assert.equal(types.filter((t) => t === "epoch").length, 3);
  });
});

Deno.test("a log line cut by a kill is dropped on resume, and the report reads the log", async () => {
  await withTemp("dml-cutline-", async (root) => {
    const data = await tinyIdx(root);
    const out = `${root}/run`;
    await train(cfg(data, out, { epochs: 1 }));
    await Deno.writeTextFile(`${out}/log.jsonl`, '{"time":"2025-01-01T00:00:00.000Z","type":"batch","ep', {
      append: true,
    });
    await train({ epochs: 2 }, { resume: out });
    const text = await Deno.readTextFile(`${out}/log.jsonl`);
    text.trim().split("\n").forEach((line, i) =>
      assert.doesNotThrow(() => JSON.parse(line), `line ${i + 1}`)
    );
    const run = await readRunDir(out);
    assert.deepEqual(run.warnings, []);
    assert.deepEqual(run.log.epochs.map((e) => e.epoch), [1, 2]);
  });
});

Deno.test("JsonlWriter repairs a cut last line, cuts back to a position, and readJsonl names a bad line", async () => {
  await withTemp("dml-jsonl-", async (dir) => {
    const path = `${dir}/log.jsonl`;
    await Deno.writeTextFile(path, '{"a":1}\n{"b":2}\n{"c":');
    const w = new JsonlWriter(path);
    assert.deepEqual(w.repair, { droppedBytes: 0, cutLineBytes: 5 });
    w.write({ time: "t", d: 4 });
    const at = w.bytes;
    w.write({ time: "t", e: 5 });
    w.close();
    assert.equal(await Deno.readTextFile(path), '{"a":1}\n{"b":2}\n{"time":"t","d":4}\n{"time":"t","e":5}\n');
    using again = new JsonlWriter(path, { truncateTo: at });
    assert.equal(again.repair.droppedBytes, '{"time":"t","e":5}\n'.length);
    assert.equal((await Deno.readTextFile(path)).split("\n").length - 1, 3);
    await Deno.writeTextFile(path, '{"a":1}\n{"b":\n{"c":3}\n');
    await assert.rejects(() => readJsonl(path), refuses(/line 2 is not valid JSON/));
    await Deno.writeTextFile(path, '{"a":1}\n{"b":');
    assert.deepEqual(await readJsonl(path), [{ a: 1 }]);
  });
});

Deno.test("a run stopped before its first checkpoint resumes from the start, as if uninterrupted", async () => {
  await withTemp("dml-nockpt-", async (root) => {
    const data = await tinyIdx(root);
    const out = `${root}/run`;
    await assert.rejects(() =>
      train(cfg(data, out, { epochs: 2 }), {
        onPhase: (phase) => {
          if (phase === "train") throw new Error("crash in the first epoch");
        },
      }), /crash/);
    assert.ok(!(await listDir(out)).includes("checkpoint.bin"));
    const r = await train({}, { resume: out });
    assert.deepEqual(r.history.map((e) => e.epoch), [1, 2]);
    await train(cfg(data, `${root}/reference`, { epochs: 2 }));
    await assertSameRun(out, `${root}/reference`, "resumed from no checkpoint");
  });
});

Deno.test("bad resume folders: missing, not a run, truncated config.json, damaged checkpoint", async () => {
  await withTemp("dml-badresume-", async (root) => {
    const data = await tinyIdx(root);
    await assert.rejects(() => train({}, { resume: `${root}/nowhere` }), refuses(/does not exist/));
    await Deno.mkdir(`${root}/empty`);
    await assert.rejects(() => train({}, { resume: `${root}/empty` }), refuses(/not a run folder/));
    const out = `${root}/run`;
    await train(cfg(data, out, { epochs: 1 }));
    const config = await Deno.readTextFile(`${out}/config.json`);
    await Deno.writeTextFile(`${out}/config.json`, config.slice(0, config.length / 2));
    await assert.rejects(
      () => train({ epochs: 2 }, { resume: out }),
      refuses(/config\.json is not valid JSON/),
    );
    await Deno.writeTextFile(`${out}/config.json`, config);
    const ckpt = await Deno.readFile(`${out}/checkpoint.bin`);
    await Deno.writeFile(`${out}/checkpoint.bin`, ckpt.slice(0, ckpt.length - 100));
    await assert.rejects(() => train({ epochs: 2 }, { resume: out }), refuses(/checkpoint.*truncated/));
    assert.ok(!(await listDir(out)).includes(".lock"), "a refused resume left its lock");
  });
});

Deno.test("file-system refusals become one message naming the path and what to do", () => {
  assert.match(
    fsErrorMessage(new Deno.errors.NotCapable("x"), "/etc/run", "write"),
    /cannot write \/etc\/run: it is outside the folders this task may write/,
  );
  assert.match(
    fsErrorMessage(new Deno.errors.PermissionDenied("x"), "/srv/run", "write"),
    /cannot write \/srv\/run: permission denied; choose a folder you may write/,
  );
});

Deno.test("the train command: --out outside its write permission, a cut config on resume: one line, exit 1", async () => {
  await withTemp("dml-cli-folder-", async (root) => {
    const data = await tinyIdx(root);
    const outside = await denoTask("train", ["--data", data, "--out", "/var/dml-test-run", "--quiet"]);
    assertRefused(outside, /cannot write \/var\/dml-test-run: it is outside the folders this task may write/);
    assert.deepEqual(await listDir("/var/dml-test-run"), []);
    const out = `${root}/run`;
    await train(cfg(data, out));
    await Deno.writeTextFile(`${out}/config.json`, '{"dataset": {"kind"');
    assertRefused(await denoTask("train", ["--resume", out]), /config\.json is not valid JSON/);
  });
});
