/**
 * Helpers of the reliability suite: command-line runs of the tasks exactly as a user starts them (`deno
 * task <name>`, so with the permissions deno.json gives each task), child processes with a task's
 * permissions, tiny data sets, and bit-for-bit comparison of run folders.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { decodeCheckpoint } from "../../lib/model/checkpoint.ts";
import { UserError } from "../../lib/errors.ts";
import { cyclingLabels, writeIdxFolder } from "../fixtures/idx.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

const decoder = new TextDecoder();

/** What a finished command printed and returned. */
export interface CommandResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Runs `deno task <name> <args>` in the repository root, as a user would. */
export async function denoTask(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  const out = await new Deno.Command("deno", {
    args: ["task", "--quiet", name, ...args],
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    signal: out.signal,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** The `deno run` permission flags deno.json gives task `name`. */
export async function taskPermissions(name: string): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks as Record<string, string>;
  const words = tasks[name].split(/\s+/);
  return words.filter((w) => w.startsWith("--allow-") || w.startsWith("--deny-"));
}

/** Asserts the CLI refused with exit 1 and one `error:` line naming `pattern`, no stack trace. */
export function assertRefused(r: CommandResult, pattern: RegExp): void {
  const lines = r.stderr.trim().split("\n").filter((l) => l.trim());
  assert.equal(r.code, 1, `exit ${r.code}, expected 1; stderr:\n${r.stderr}`);
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Stack backtrace|Uncaught/);
}

/** Writes a tiny separable IDX data set (`classes` classes) under `dir`; returns its folder. */
export async function tinyIdx(dir: string, classes = 5, train = 200, test = 100): Promise<string> {
  await writeIdxFolder(`${dir}/data`, {
    train: cyclingLabels(classes, train),
    test: cyclingLabels(classes, test),
  });
  return `${dir}/data`;
}

/** File names in `dir`, sorted ([] when it does not exist). */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

/**
 * Asserts that two run folders end in the same state, bit for bit: the final checkpoint (head, optimiser,
 * controller, FANNG graph, epoch) and the test embeddings, plus equal metrics in summary.json.
 */
export async function assertSameRun(actualDir: string, expectedDir: string, what: string): Promise<void> {
  const [a, b] = await Promise.all([
    Deno.readFile(`${actualDir}/checkpoint.bin`),
    Deno.readFile(`${expectedDir}/checkpoint.bin`),
  ]);
  const ca = decodeCheckpoint(a, `${what}: checkpoint`), cb = decodeCheckpoint(b, "reference checkpoint");
  const bytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  ca.params.forEach((p, i) => {
    assertSameBytes(bytes(p.weight), bytes(cb.params[i].weight), `${what}: layer ${i} weights`);
    assertSameBytes(bytes(p.bias), bytes(cb.params[i].bias), `${what}: layer ${i} biases`);
  });
  ca.optimizer!.velocities.forEach((v, i) => {
    assertSameBytes(bytes(v.weight), bytes(cb.optimizer!.velocities[i].weight), `${what}: momentum ${i}`);
  });
  assert.equal(ca.optimizer!.steps, cb.optimizer!.steps, `${what}: optimiser steps`);
  assert.deepEqual(ca.meta.controller, cb.meta.controller, `${what}: controller state`);
  assert.equal(ca.meta.epoch, cb.meta.epoch, `${what}: epoch`);
  assert.deepEqual(Object.keys(ca.blobs ?? {}), Object.keys(cb.blobs ?? {}), `${what}: saved state`);
  for (const [name, blob] of Object.entries(cb.blobs ?? {})) {
    assertSameBytes(ca.blobs![name], blob, `${what}: checkpoint blob ${name} (the FANNG graph)`);
  }
  const metrics = (r: { epoch: number; eval?: unknown; trainError: number; kappa: number }[]) =>
    r.map(({ epoch, eval: ev, trainError, kappa }) => ({ epoch, ev, trainError, kappa }));
  assert.deepEqual(
    metrics(ca.meta.reports as never),
    metrics(cb.meta.reports as never),
    `${what}: epoch metrics differ`,
  );
  const [ea, eb] = await Promise.all([
    Deno.readFile(`${actualDir}/test-embeddings.f32`),
    Deno.readFile(`${expectedDir}/test-embeddings.f32`),
  ]);
  assertSameBytes(ea, eb, `${what}: test embeddings`);
  const [sa, sb] = await Promise.all([
    Deno.readTextFile(`${actualDir}/summary.json`).then(JSON.parse),
    Deno.readTextFile(`${expectedDir}/summary.json`).then(JSON.parse),
  ]);
  assert.equal(sa.epochs, sb.epochs, `${what}: summary.json epochs`);
  assert.deepEqual(sa.final, sb.final, `${what}: summary.json final metrics`);
}

/** An assert.rejects/throws validator: a UserError whose message matches `pattern`. */
export function refuses(pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof UserError, `not a UserError: ${e}`);
    assert.match((e as Error).message, pattern);
    return true;
  };
}

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTemp(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts equal bytes, reporting the first difference (node's deepEqual diff is very slow on large arrays). */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (actual.length !== expected.length) {
    assert.fail(`${what}: ${actual.length} bytes, expected ${expected.length}`);
  }
  let first = -1, count = 0;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count) assert.fail(`${what}: ${count} of ${actual.length} bytes differ, the first at byte ${first}`);
}
