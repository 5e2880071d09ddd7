/**
 * `deno task features` end to end on generated data: a GoogLeNet-architecture ONNX file (224x224,
 * real widths, random weights) and a CUB-format folder of JPEGs -> a cache that loads as N x 1024 and
 * that the training loop (lib/train.ts, what `deno task train --features` runs) trains on.
 */
import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import { loadFeatureDataset } from "../../lib/backbone/features.ts";
import { featuresMain } from "../../tasks/features.ts";
import { train } from "../../lib/train.ts";
import { buildGoogLeNet } from "../../tasks/bench/_googlenet.ts";
import { writeCubFixture } from "../fixtures/image_folders.ts";

Deno.test("deno task features: CUB folder + GoogLeNet ONNX file -> pool5 cache (K=2 views) that loads for training", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-features-task-" });
  try {
    await Deno.writeFile(`${dir}/googlenet.onnx`, buildGoogLeNet({ seed: 3 }).bytes);
    await writeCubFixture(`${dir}/CUB_200_2011`, { classes: [1, 2, 101, 102], perClass: 2 });
    const args = ["--dataset", "cub", "--root", dir, "--model", `${dir}/googlenet.onnx`, "--output", "pool5"];
    const out = await featuresMain([...args, "--views", "2", "--out", `${dir}/feats`, "--quiet"]);
    assert.equal(out, `${dir}/feats`);
    const ds = await loadFeatureDataset(`${dir}/feats`);
    assert.deepEqual([ds.train.features.rows, ds.train.features.cols], [8, 1024]);
    assert.deepEqual([ds.test.features.rows, ds.test.features.cols], [4, 1024]);
    assert.deepEqual(Array.from(ds.train.labels), [1, 1, 1, 1, 2, 2, 2, 2]);
    assert.deepEqual(Array.from(ds.test.labels), [101, 101, 102, 102]);
    assert.ok(ds.train.features.data.every(Number.isFinite));
    const key = ds.manifest.key;
    assert.equal(key.model.output, "pool5/7x7_s1_1");
    assert.deepEqual(
      key.preprocess,
      { preset: "caffe", resize: 256, crop: 224 },
      "auto preset: Caffe names -> caffe",
    );
    assert.match(ds.manifest.provider, /^(wasm|webgpu) /);

    // `deno task train --features <dir>` trains the head on it (in-process: the test task has no --allow-run).
    const run = await train({
      dataset: { kind: "features", dir: `${dir}/feats`, views: "all" },
      epochs: 1,
      batchSize: 4,
      outDir: `${dir}/run`,
      quiet: true,
    });
    assert.equal(run.epochs.length, 1);
    assert.equal(run.config.dataset.kind, "features");
    const recall1 = run.epochs[0].eval?.recall["1"];
    assert.ok(recall1 !== undefined && recall1 >= 0 && recall1 <= 1, `R@1 ${recall1}`);

    // Running it again with the same flags reuses the cache; another preset refuses to touch it.
    assert.equal(
      await featuresMain([...args, "--views", "2", "--out", `${dir}/feats`, "--quiet"]),
      `${dir}/feats`,
    );
    await assert.rejects(
      () =>
        featuresMain([
          ...args,
          "--views",
          "2",
          "--out",
          `${dir}/feats`,
          "--preset",
          "torchvision",
          "--quiet",
        ]),
      (e: unknown) => e instanceof UserError && /preprocessing preset: caffe -> torchvision/.test(e.message),
    );
    await assert.rejects(
      () => featuresMain([...args.slice(0, 6), "--output", "pool9", "--out", `${dir}/x`, "--quiet"]),
      (e: unknown) =>
        e instanceof UserError && /no tensor named 'pool9'.*inception_5b\/output_1/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task features: missing or bad flags are one-line UserErrors", async () => {
  await assert.rejects(
    () => featuresMain(["--dataset", "cub"]),
    /--dataset, --root and --model are required/,
  );
  await assert.rejects(
    () => featuresMain(["--dataset", "imagenet", "--root", "/x", "--model", "/m.onnx"]),
    /--dataset must be one of cub, cars, folder/,
  );
  await assert.rejects(
    () => featuresMain(["--dataset", "cub", "--root", "/nonexistent", "--model", "/m.onnx"]),
    (e: unknown) => e instanceof UserError && /not a CUB-200-2011 folder/.test(e.message),
  );
  await assert.rejects(
    () => featuresMain(["--dataset", "cub", "--root", "/x", "--model", "/m.onnx", "--views", "0"]),
    /--views must be a whole number >= 1/,
  );
});
