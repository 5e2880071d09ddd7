/** The features task renders the options named in extractFeatures' messages as its own flags. */
import assert from "node:assert/strict";
import { UserError } from "../lib/errors.ts";
import { FEATURES_FLAGS } from "../tasks/features.ts";

Deno.test("features task: library option names become its flags", () => {
  const names = ["outDir", "preprocess.crop", "views", "overwrite", "skipBadImages"];
  assert.deepEqual(names.map(FEATURES_FLAGS), [
    "--out",
    "--crop",
    "--views",
    "--overwrite",
    "--skip-bad-images",
  ]);
  const e = new UserError((n) => `choose another ${n("outDir")} folder, or set ${n("overwrite")}`);
  assert.equal(e.message, "choose another outDir folder, or set overwrite");
  assert.equal(e.render(FEATURES_FLAGS), "choose another --out folder, or set --overwrite");
});
