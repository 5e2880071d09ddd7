/**
 * Shared by the retrieval tests: a small trained run over a tiny IDX data set, and the repository's own
 * task command lines (from deno.json) run as child processes, so a test runs exactly what a user runs.
 * @module
 */
import { fileURLToPath } from "node:url";
import { train } from "../../lib/train.ts";
import type { SearchRecord } from "../../tasks/search.ts";
import { cyclingLabels, writeIdxFolder } from "../fixtures/idx.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The arguments of `deno task <name>` after "deno" (deno.json's command line, split on spaces). */
export async function taskArgs(name: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const line = config.tasks?.[name] as string | undefined;
  if (!line?.startsWith("deno ")) throw new Error(`deno.json has no 'deno ...' task named ${name}`);
  return line.slice("deno ".length).trim().split(/\s+/);
}

/** What a task printed and how it ended. */
export interface TaskOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno task <name> <args>` as a child process (from the repository root) and waits for it. */
export async function runTaskCli(name: string, args: string[]): Promise<TaskOutput> {
  const out = await new Deno.Command("deno", {
    args: [...(await taskArgs(name)), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** `deno task search <index> --test-row <rows> --k <k> --json <flags>` as a child process: its records. */
export async function searchJson(
  index: string,
  rows: readonly number[],
  k: number,
  flags: string[] = [],
): Promise<SearchRecord[]> {
  const out = await runTaskCli("search", [
    index,
    "--test-row",
    rows.join(","),
    "--k",
    String(k),
    "--json",
    ...flags,
  ]);
  if (out.code !== 0) throw new Error(`deno task search failed (${out.code}): ${out.stderr}`);
  return out.stdout.trim().split("\n").map((l) => JSON.parse(l) as SearchRecord);
}

/** A finished training run over a tiny IDX data set (5 classes, 28 x 28 grey pictures). */
export interface TinyRun {
  data: string;
  run: string;
  testRows: number;
}

/** Trains `epochs` epochs on a tiny IDX folder written under `dir`. */
export async function trainTinyRun(
  dir: string,
  { train: nTrain = 300, test = 150, epochs = 2 } = {},
): Promise<TinyRun> {
  await writeIdxFolder(`${dir}/data`, {
    train: cyclingLabels(5, nTrain),
    test: cyclingLabels(5, test),
    side: 28,
  });
  await train({
    dataset: { kind: "idx", dir: `${dir}/data`, split: "seen" },
    batchSize: 32,
    epochs,
    outDir: `${dir}/run`,
    quiet: true,
    mining: { search: "exact" },
  });
  return { data: `${dir}/data`, run: `${dir}/run`, testRows: test };
}
