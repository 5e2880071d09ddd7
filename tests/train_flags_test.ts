/** The flag table of `deno task train`: help, parsing and the naming of options in messages. */
import assert from "node:assert/strict";
import { defaultConfig, RESUMABLE_FIELDS, validateConfig } from "../lib/config.ts";
import { UserError } from "../lib/errors.ts";
import { train } from "../lib/train.ts";
import { flagFor, parseTrainArgs, TRAIN_FLAGS, trainHelp } from "../tasks/train_flags.ts";
import { assertRefused, denoTask, withTemp } from "./reliability/helpers.ts";

/** A value for flag `f` other than its default, as command-line text and as the parsed value. */
function sample(option: string, kind: string): { text?: string; value: unknown } {
  const d = valueAt(defaultConfig(), option);
  switch (kind) {
    case "number":
      return { text: String(Number(d ?? 0) + 3), value: Number(d ?? 0) + 3 };
    case "numbers":
      return { text: "3,7", value: [3, 7] };
    default:
      return { text: `text-${option}`, value: `text-${option}` };
  }
}

function valueAt(o: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((x, k) => (x as Record<string, unknown> | undefined)?.[k], o);
}

/** The config's leaves as dotted paths (arrays and the dataset are leaves). */
function leaves(o: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return path !== "dataset" && v && typeof v === "object" && !Array.isArray(v)
      ? leaves(v as Record<string, unknown>, path)
      : [path];
  });
}

Deno.test("train flags: every table entry is in --help, with its default", () => {
  const help = trainHelp(RESUMABLE_FIELDS);
  for (const f of TRAIN_FLAGS) {
    const line = help.split("\n").find((l) => new RegExp(`^\\s+(-h, )?--${f.flag}( |$)`).test(l));
    assert.ok(line, `--${f.flag} is missing from --help`);
    const d = valueAt(defaultConfig(), f.option);
    if (f.kind === "number" && !f.shownDefault) assert.ok(line.endsWith(`[${d}]`), line);
  }
  // The resume rule lists exactly the resumable fields' flags.
  for (const field of RESUMABLE_FIELDS) {
    assert.match(help, new RegExp(`only[^]*${flagFor(field)}[^]*may change`));
  }
  assert.equal(new Set(TRAIN_FLAGS.map((f) => f.flag)).size, TRAIN_FLAGS.length, "a flag is declared twice");
});

Deno.test("train flags: every config field has a flag, and every flag round-trips onto its option", () => {
  for (const path of leaves(defaultConfig() as unknown as Record<string, unknown>)) {
    assert.notEqual(flagFor(path), path, `config field ${path} has no flag`);
  }
  for (const f of TRAIN_FLAGS) {
    if (f.option.startsWith("dataset.")) continue; // below: the data flags build one dataset
    const { text, value } = sample(f.option, f.kind);
    const args = f.kind === "switch" ? [`--${f.flag}`] : [`--${f.flag}`, text!];
    const parsed = parseTrainArgs(args);
    const got = f.option === "resume" || f.option === "overwrite" || f.option === "help"
      ? parsed[f.option as "resume" | "overwrite" | "help"]
      : valueAt(parsed.input, f.option);
    assert.deepEqual(got, f.kind === "switch" ? f.value : value, args.join(" "));
    assert.equal(flagFor(f.option), `--${f.flag}`);
  }
  assert.deepEqual(parseTrainArgs(["--data", "/d", "--split", "disjoint"]).input.dataset, {
    kind: "idx",
    dir: "/d",
    split: "disjoint",
  });
  assert.deepEqual(parseTrainArgs(["--features", "/f"]).input.dataset, {
    kind: "features",
    dir: "/f",
    views: "all",
  });
  assert.deepEqual(parseTrainArgs([]).input, {}, "no flags: no overrides");
  assert.equal(flagFor("dataset"), "--data/--split/--features/--views");
  assert.equal(flagFor("dataset.dir"), "--data/--features");
});

Deno.test("train flags: a library message names config fields; the CLI renders it with flags", async () => {
  const bad = { ...defaultConfig(), mining: { ...defaultConfig().mining, searchEf: -1 } };
  let err: unknown;
  try {
    validateConfig(bad);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UserError);
  assert.match(err.message, /^mining\.searchEf must be an integer in 0\.\.\d+/);
  assert.doesNotMatch(err.message, /--/);
  assert.match(err.render(flagFor), /^--search-ef must be an integer in 0\.\.\d+/);
  // A message without options renders as itself.
  assert.equal(new UserError("plain").render(flagFor), "plain");
  await withTemp("dml-flags-msg-", async (dir) => {
    await assert.rejects(
      () => train({ quiet: true, outDir: `${dir}/run`, controller: { kappaMin: 8, kappaMax: 2 } }),
      (e: Error) =>
        e instanceof UserError && /controller\.kappaMin 8 is above controller\.kappaMax 2/.test(e.message),
    );
    await assert.rejects(
      () => train({ quiet: true, outDir: `${dir}/run` }, { resume: `${dir}/run`, overwrite: true }),
      (e: Error) => /^resume and overwrite exclude each other/.test(e.message),
    );
    assertRefused(
      await denoTask("train", ["--out", `${dir}/cli`, "--search-ef", "5000"]),
      /^error: --search-ef must be an integer in 0\.\.\d+ \(0 = the default\)$/m,
    );
    assertRefused(
      await denoTask("train", ["--out", `${dir}/cli`, "--kappa-min", "8", "--kappa-max", "2"]),
      /--kappa-min 8 is above --kappa-max 2/,
    );
  });
});
