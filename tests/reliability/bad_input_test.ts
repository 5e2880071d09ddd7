/**
 * Every bad input ends with one message naming the file or flag and what to do, exit 1 on the command line,
 * no stack trace, nothing written: damaged IDX files, damaged feature caches, contradictory or unknown
 * flags, a backend this OS does not have.
 */
import assert from "node:assert/strict";
import { loadIdxSplit } from "../../lib/data/idx.ts";
import { extractFeatures, FEATURE_CACHE_VERSION, loadFeatureDataset } from "../../lib/backbone/features.ts";
import { OnnxBackbone } from "../../lib/backbone/onnx.ts";
import { listCub } from "../../lib/data/cub.ts";
import { FolderLock } from "../../lib/util/lock.ts";
import { buildSmallCnn } from "../fixtures/small_cnn.ts";
import { writeCubFixture } from "../fixtures/image_folders.ts";
import { train } from "../../lib/train.ts";
import { parseTrainArgs } from "../../tasks/train_flags.ts";
import { writeIdxFolder } from "../fixtures/idx.ts";
import { assertRefused, denoTask, listDir, refuses, tinyIdx, withTemp } from "./helpers.ts";

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("a truncated or corrupt .gz IDX file is named in one message", async () => {
  await withTemp("dml-idxgz-", async (dir) => {
    await writeIdxFolder(dir, { train: [0, 1, 2, 0, 1, 2], test: [0, 1, 2] });
    const images = `${dir}/train-images-idx3-ubyte`;
    const gz = await gzip(await Deno.readFile(images));
    await Deno.remove(images);
    await Deno.writeFile(`${images}.gz`, gz.slice(0, gz.length - 12)); // cut before the trailer
    await assert.rejects(
      () => loadIdxSplit(dir, "train"),
      refuses(/train-images-idx3-ubyte\.gz is not a readable gzip file.*truncated or damaged; replace it/),
    );
    const corrupt = gz.slice();
    corrupt.fill(0xff, 20, 60);
    await Deno.writeFile(`${images}.gz`, corrupt);
    await assert.rejects(() => loadIdxSplit(dir, "train"), refuses(/train-images-idx3-ubyte\.gz/));
    const r = await denoTask("train", ["--data", dir, "--batch-size", "2", "--out", `${dir}/run`]);
    assertRefused(r, /train-images-idx3-ubyte\.gz/);
    assert.deepEqual((await listDir(dir)).filter((n) => n === "run"), []);
  });
});

/** A valid feature cache: 2 classes, `train` / `test` images, 3-d features, one shard per split. */
async function writeCache(dir: string, train = 6, test = 4): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const dim = 3;
  const split = (images: number, name: string) => ({
    images,
    views: 1,
    shardSize: 256,
    shards: [{ file: `${name}-00000.f32`, start: 0, count: images, rows: images, skipped: [] }],
  });
  const manifest = {
    format: "dml-features",
    version: FEATURE_CACHE_VERSION,
    key: { dataset: { format: "folder", name: "tiny", root: "/nowhere", listSha256: "x" } },
    keyHash: "x",
    featureDim: dim,
    splits: { train: split(train, "train"), test: split(test, "test") },
    skipped: [],
    complete: true,
    provider: "wasm",
    createdAt: "",
    updatedAt: "",
  };
  const samples = (n: number, p: string) => Array.from({ length: n }, (_, i) => [`${p}/${i}.jpg`, i % 2]);
  await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(manifest));
  await Deno.writeTextFile(
    `${dir}/samples.json`,
    JSON.stringify({ train: samples(train, "a"), test: samples(test, "b"), classes: [[0, "x"], [1, "y"]] }),
  );
  for (const [name, n] of [["train", train], ["test", test]] as const) {
    const values = Float32Array.from({ length: n * dim }, (_, i) => (i % 7) / 7 + Math.floor(i / dim) % 2);
    await Deno.writeFile(`${dir}/${name}-00000.f32`, new Uint8Array(values.buffer));
  }
}

async function edit(path: string, change: (value: Record<string, unknown>) => void): Promise<void> {
  const value = JSON.parse(await Deno.readTextFile(path));
  change(value);
  await Deno.writeTextFile(path, JSON.stringify(value));
}

Deno.test("damaged feature caches are refused, naming the file: never zero-filled rows or made-up labels", async () => {
  await withTemp("dml-cache-", async (root) => {
    const good = `${root}/good`;
    await writeCache(good);
    const ds = await loadFeatureDataset(good);
    assert.equal(ds.train.features.rows, 6);
    const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
      [
        "shards cover fewer images than samples.json lists",
        (d) =>
          edit(`${d}/samples.json`, (s) => {
            (s.train as unknown[]).push(["a/extra.jpg", 1], ["a/extra2.jpg", 0]);
          }),
        /samples\.json: train lists 8 samples but the manifest has 6 images/,
      ],
      [
        "the manifest claims more images than its shards hold",
        (d) =>
          edit(`${d}/manifest.json`, (m) => {
            (m.splits as { train: { images: number } }).train.images = 9;
          }),
        /manifest\.json: the train shards cover 6 of 9 images/,
      ],
      [
        "a label that is not a number",
        (d) =>
          edit(`${d}/samples.json`, (s) => {
            (s.train as unknown[][])[3][1] = "cat";
          }),
        /samples\.json: train sample 3 is \["a\/3\.jpg","cat"\], not \[id, integer label\]/,
      ],
      [
        "a missing shard",
        (d) => Deno.remove(`${d}/test-00000.f32`),
        /test-00000\.f32 is missing; the cache is damaged/,
      ],
      [
        "a truncated samples.json",
        async (d) => {
          const text = await Deno.readTextFile(`${d}/samples.json`);
          await Deno.writeTextFile(`${d}/samples.json`, text.slice(0, text.length / 2));
        },
        /samples\.json is not valid JSON/,
      ],
      [
        "a manifest without splits",
        (d) => edit(`${d}/manifest.json`, (m) => delete m.splits),
        /has no splits/,
      ],
      [
        "a short samples list",
        (d) =>
          edit(`${d}/samples.json`, (s) => {
            (s.test as unknown[]).pop();
          }),
        /samples\.json: test lists 3 samples but the manifest has 4 images/,
      ],
    ];
    for (const [what, damage, pattern] of cases) {
      const dir = `${root}/${what.replace(/\W+/g, "-")}`;
      await writeCache(dir);
      await damage(dir);
      await assert.rejects(() => loadFeatureDataset(dir), refuses(pattern), what);
      assert.match(
        await loadFeatureDataset(dir).then(() => "", (e) => e.message),
        /extract the features again, replacing this folder/,
        what,
      );
    }
    // Through the command line: one line, exit 1.
    const dir = `${root}/cli`;
    await writeCache(dir);
    await edit(`${dir}/samples.json`, (s) => ((s.train as unknown[][])[0][1] = "cat"));
    assertRefused(
      await denoTask("train", ["--features", dir, "--batch-size", "2", "--out", `${root}/run`]),
      /samples\.json: train sample 0/,
    );
  });
});

Deno.test("contradictory or unknown flags are refused: --views bogus, --data beside --features, --epochs 0", async () => {
  const refusesArgs = (args: string[], pattern: RegExp) =>
    assert.throws(() => parseTrainArgs(args), refuses(pattern), args.join(" "));
  refusesArgs(["--features", "/f", "--data", "/d"], /--features .* --data\/--split .* give one or the other/);
  refusesArgs(["--features", "/f", "--split", "disjoint"], /give one or the other/);
  refusesArgs(["--views", "centre"], /--views .* needs --features/);
  await withTemp("dml-flags-", async (dir) => {
    const data = await tinyIdx(dir);
    const base = { quiet: true, outDir: `${dir}/run` };
    await assert.rejects(
      () => train({ ...base, dataset: { kind: "features", dir, views: "bogus" as "all" } }),
      refuses(/dataset\.views must be 'all' or 'centre', got 'bogus'/),
    );
    await assert.rejects(
      () => train({ ...base, dataset: { kind: "idx", dir: data, split: "seen" }, epochs: 0 }),
      refuses(/^epochs must be an integer >= 1, got 0/),
    );
    assert.deepEqual(await listDir(`${dir}/run`), []);
    assertRefused(await denoTask("train", ["--features", dir, "--views", "bogus"]), /--views must be/);
    assertRefused(
      await denoTask("train", ["--data", data, "--epochs", "0"]),
      /--epochs must be an integer >= 1/,
    );
    assertRefused(await denoTask("train", ["--data", data, "--seed", "-3"]), /--seed/);
  });
});

Deno.test("experiment takes --seed=-3 like train does, and refuses an existing study folder", async () => {
  await withTemp("dml-experiment-", async (dir) => {
    const data = await tinyIdx(dir, 4, 80, 40);
    const out = `${dir}/study`;
    const args = [
      "kappa",
      ...["--data", data, "--seed=-3", "--epochs", "1", "--batch-size", "16", "--kappas", "2"],
      ...["--out", out, "--no-report", "--search", "exact"],
    ];
    const first = await denoTask("experiment", args);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(await Deno.readTextFile(`${out}/kappa-2/config.json`)).seed, -3);
    assertRefused(await denoTask("experiment", args), /already holds a study: replace it with --overwrite/);
    const again = await denoTask("experiment", [...args, "--overwrite"]);
    assert.equal(again.code, 0, again.stderr);
  });
});

Deno.test("a WebGPU backend this OS does not have is named, not blamed on a missing Vulkan driver", async () => {
  const other = Deno.build.os === "darwin" ? "dx12" : "metal";
  await withTemp("dml-backend-", async (dir) => {
    const data = await tinyIdx(dir);
    const r = await denoTask("train", ["--data", data, "--batch-size", "16", "--out", `${dir}/run`], {
      DENO_WEBGPU_BACKEND: other,
    });
    assertRefused(
      r,
      new RegExp(`DENO_WEBGPU_BACKEND=${other} names no backend available on ${Deno.build.os}`),
    );
    assert.deepEqual(await listDir(`${dir}/run`), []);
  });
});

Deno.test("two extractions into one feature cache: the second is refused while the first holds it", async () => {
  await withTemp("dml-cache-lock-", async (root) => {
    await writeCubFixture(`${root}/cub`, { classes: [1, 2, 101, 102], perClass: 1 });
    const net = await OnnxBackbone.load(buildSmallCnn(21, 20).bytes, { provider: "wasm", log: () => {} });
    try {
      const ds = await listCub(`${root}/cub`);
      const options = {
        outDir: `${root}/feats`,
        preprocess: { preset: "torchvision" as const, resize: 24, crop: 20 },
        quiet: true,
        log: () => {},
      };
      await Deno.mkdir(`${root}/feats`);
      {
        using _held = await FolderLock.acquire(`${root}/feats/.lock`, "another extraction", "features");
        await assert.rejects(
          () => extractFeatures(ds, net, options),
          refuses(/feature cache .*feats is in use/),
        );
      }
      await Deno.writeFile(`${root}/feats/train-00000.f32.tmp-4242-deadbeef`, new Uint8Array(10));
      const done = await extractFeatures(ds, net, options);
      assert.ok(done.manifest.complete);
      assert.deepEqual(
        (await listDir(`${root}/feats`)).filter((n) => n.includes("tmp") || n === ".lock"),
        [],
      );
    } finally {
      await net.release();
    }
  });
});
