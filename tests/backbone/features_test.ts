/** The feature cache: extraction, views, loading as a Dataset, resume, invalidation, bad images. */
import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import { extractFeatures, type ExtractOptions, loadFeatureDataset } from "../../lib/backbone/features.ts";
import { OnnxBackbone } from "../../lib/backbone/onnx.ts";
import { type PreprocessSpec, viewCrop, writeView } from "../../lib/backbone/preprocess.ts";
import { listCub } from "../../lib/data/cub.ts";
import { readImage } from "../../lib/data/image.ts";
import { assertAllClose } from "../helpers.ts";
import { buildSmallCnn } from "../fixtures/small_cnn.ts";
import { writeCubFixture } from "../fixtures/image_folders.ts";

const quiet = { log: () => {} };
const spec: PreprocessSpec = { preset: "torchvision", resize: 24, crop: 20 };
const root = await Deno.makeTempDir({ prefix: "dml-features-" });
await writeCubFixture(`${root}/cub`, { classes: [1, 2, 101, 102], perClass: 3 });
const cnn = buildSmallCnn(21, 20);
const net = await OnnxBackbone.load(cnn.bytes, { provider: "wasm", ...quiet });

function opts(outDir: string, extra: Partial<ExtractOptions> = {}): ExtractOptions {
  return {
    outDir,
    preprocess: spec,
    views: 3,
    seed: 5,
    batch: 5,
    shardSize: 4,
    quiet: true,
    ...quiet,
    ...extra,
  };
}

function rejectsWith(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  return assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("features: extraction writes a complete cache that loads as a Dataset with K views per image", async () => {
  const ds = await listCub(`${root}/cub`);
  const out = `${root}/full`;
  const res = await extractFeatures(ds, net, opts(out));
  assert.equal(res.manifest.complete, true);
  assert.equal(res.manifest.featureDim, cnn.featureDim);
  assert.equal(res.shardsComputed, 4, "two shards per split (6 images, shards of 4)");
  assert.deepEqual(res.manifest.splits.train.shards.map((s) => [s.file, s.start, s.count]), [
    ["train-00000.f32", 0, 4],
    ["train-00001.f32", 4, 2],
  ]);
  assert.equal((await Deno.stat(`${out}/train-00000.f32`)).size, 4 * 3 * cnn.featureDim * 4);

  const all = await loadFeatureDataset(out);
  assert.equal(all.trainViewsPerImage, 3);
  assert.deepEqual([all.train.features.rows, all.train.features.cols], [18, cnn.featureDim]);
  assert.deepEqual(Array.from(all.train.labels), [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual([all.test.features.rows, Array.from(all.test.labels)], [6, [
    101,
    101,
    101,
    102,
    102,
    102,
  ]]);
  assert.equal(all.train.id!(4), "images/001.Bird_1/Bird_1_1.jpg#view1");
  assert.deepEqual(all.train.image!(4), { kind: "file", path: `${ds.root}/images/001.Bird_1/Bird_1_1.jpg` });
  assert.equal(all.classNames?.get(102), "102.Bird_102");

  // Every row equals running the backbone on that image's view directly.
  const x = new Float32Array(3 * 20 * 20);
  for (const [i, v] of [[0, 0], [1, 2], [5, 1]]) {
    const img = await readImage(ds.train[i].path);
    writeView(img, viewCrop(img.width, img.height, spec, v, i, 5), spec, x, 0);
    const want = await net.run(x, 1, 20);
    const row = all.train.features.data.subarray(
      (i * 3 + v) * cnn.featureDim,
      (i * 3 + v + 1) * cnn.featureDim,
    );
    assertAllClose(row, want.data, { atol: 1e-6, what: `train image ${i} view ${v}` });
  }
  // Views differ from each other; the centre-only dataset picks view 0.
  const centre = await loadFeatureDataset(out, { views: "centre" });
  assert.deepEqual([centre.train.features.rows, centre.trainViewsPerImage], [6, 1]);
  assert.deepEqual(
    centre.train.features.data.subarray(cnn.featureDim, 2 * cnn.featureDim),
    all.train.features.data.subarray(3 * cnn.featureDim, 4 * cnn.featureDim),
  );
  assert.notDeepEqual(
    all.train.features.data.subarray(0, cnn.featureDim),
    all.train.features.data.subarray(cnn.featureDim, 2 * cnn.featureDim),
  );
  assert.equal(centre.train.id!(1), "images/001.Bird_1/Bird_1_1.jpg");
});

Deno.test("features: an interrupted extraction resumes where it stopped and gives the same bytes", async () => {
  const ds = await listCub(`${root}/cub`);
  const out = `${root}/resume`;
  const first = await extractFeatures(ds, net, opts(out, { maxShards: 1 }));
  assert.equal(first.manifest.complete, false);
  assert.equal(first.shardsComputed, 1);
  await rejectsWith(() => loadFeatureDataset(out), /incomplete .* resume/);
  // A shard file written but not yet listed (killed between the two writes) is simply recomputed.
  await Deno.writeFile(`${out}/train-00001.f32`, new Uint8Array(7));
  const second = await extractFeatures(ds, net, opts(out, { shardSize: 5 })); // the cache's size (4) wins
  assert.deepEqual([second.shardsReused, second.shardsComputed, second.manifest.complete], [1, 3, true]);
  for (const f of ["train-00000.f32", "train-00001.f32", "test-00000.f32", "test-00001.f32"]) {
    assert.deepEqual(await Deno.readFile(`${out}/${f}`), await Deno.readFile(`${root}/full/${f}`), f);
  }
  const again = await extractFeatures(ds, net, opts(out));
  assert.equal(again.shardsComputed, 0, "complete cache with the same key: nothing to do");
});

Deno.test("features: decoding on worker threads gives the same bytes as on the calling thread", async () => {
  const ds = await listCub(`${root}/cub`);
  const out = `${root}/workers`;
  const res = await extractFeatures(ds, net, opts(out, { decodeWorkers: 2 }));
  assert.equal(res.manifest.complete, true);
  for (const f of ["train-00000.f32", "train-00001.f32", "test-00000.f32", "test-00001.f32"]) {
    assert.deepEqual(await Deno.readFile(`${out}/${f}`), await Deno.readFile(`${root}/full/${f}`), f);
  }
});

Deno.test("features: a batch smaller than the views per image still runs (one image per batch)", async () => {
  const ds = await listCub(`${root}/cub`);
  await extractFeatures(ds, net, opts(`${root}/small-batch`, { batch: 2, shardSize: 256 }));
  const a = await loadFeatureDataset(`${root}/small-batch`), b = await loadFeatureDataset(`${root}/full`);
  assertAllClose(a.train.features.data, b.train.features.data, { atol: 1e-5, what: "batch 2 vs batch 5" });
  assertAllClose(a.test.features.data, b.test.features.data, { atol: 1e-5, what: "test rows" });
});

Deno.test("features: another model, preset or view count never reuses a cache; --overwrite replaces it", async () => {
  const ds = await listCub(`${root}/cub`);
  const out = `${root}/stale`;
  const a = await extractFeatures(ds, net, opts(out, { views: 1 }));
  await rejectsWith(
    () => extractFeatures(ds, net, opts(out, { views: 1, preprocess: { ...spec, preset: "caffe" } })),
    /different settings \(preprocessing preset: torchvision -> caffe\).*set overwrite/,
  );
  await rejectsWith(() => extractFeatures(ds, net, opts(out, { views: 2 })), /views: 1 -> 2/);
  const other = await OnnxBackbone.load(buildSmallCnn(99, 20).bytes, { provider: "wasm", ...quiet });
  await rejectsWith(() => extractFeatures(ds, other, opts(out, { views: 1 })), /model file \(sha256\)/);
  const b = await extractFeatures(ds, other, opts(out, { views: 1, overwrite: true }));
  assert.notEqual(a.manifest.keyHash, b.manifest.keyHash);
  assert.equal(b.shardsComputed, 4);
  const loaded = await loadFeatureDataset(out);
  assert.equal(loaded.manifest.key.model.sha256, other.modelHash);
  await other.release();

  await Deno.mkdir(`${root}/notes`, { recursive: true });
  await Deno.writeTextFile(`${root}/notes/todo.txt`, "mine");
  await rejectsWith(
    () => extractFeatures(ds, net, opts(`${root}/notes`)),
    /not empty and holds no feature cache/,
  );
  await rejectsWith(() => loadFeatureDataset(`${root}/notes`), /not a feature cache/);
});

Deno.test("features: an unreadable image stops extraction unless skipping is asked for", async () => {
  const dir = `${root}/badcub`;
  await writeCubFixture(dir, { classes: [1, 101], perClass: 3 });
  await Deno.writeFile(`${dir}/images/001.Bird_1/Bird_1_1.jpg`, new TextEncoder().encode("not a picture"));
  const ds = await listCub(dir);
  for (const decodeWorkers of [0, 2]) {
    await rejectsWith(
      () => extractFeatures(ds, net, opts(`${root}/bad1-${decodeWorkers}`, { decodeWorkers })),
      /Bird_1_1\.jpg.*set skipBadImages/,
    );
  }
  const warnings: string[] = [];
  const res = await extractFeatures(ds, net, {
    ...opts(`${root}/bad2`),
    skipBadImages: true,
    decodeWorkers: 2,
    log: (l) => warnings.push(l),
  });
  assert.ok(warnings.some((w) => /WARNING: skipping .*Bird_1_1\.jpg/.test(w)));
  assert.deepEqual(res.manifest.skipped.map((s) => [s.split, s.index, s.id]), [[
    "train",
    1,
    "images/001.Bird_1/Bird_1_1.jpg",
  ]]);
  const loaded = await loadFeatureDataset(`${root}/bad2`);
  assert.equal(loaded.train.features.rows, 2 * 3);
  assert.equal(loaded.train.id!(3), "images/001.Bird_1/Bird_1_2.jpg#view0");
});

Deno.test("features: a damaged shard is reported instead of silently reused", async () => {
  const ds = await listCub(`${root}/cub`);
  const out = `${root}/damaged`;
  await extractFeatures(ds, net, opts(out, { maxShards: 2 }));
  await Deno.writeFile(`${out}/train-00000.f32`, new Uint8Array(12));
  await rejectsWith(() => extractFeatures(ds, net, opts(out)), /wrong size .* damaged/);
});

Deno.test({
  name: "features: cleanup",
  fn: async () => {
    await net.release();
    await Deno.remove(root, { recursive: true });
  },
});
