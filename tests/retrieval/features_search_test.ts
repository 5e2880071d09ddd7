/**
 * Retrieval on a feature-cache run: `deno task features` (a small CNN ONNX file over a CUB-format folder
 * of JPEGs) -> train -> `deno task index` -> `deno task search` by test row and by image through the
 * backbone the index records.
 */
import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import { train } from "../../lib/train.ts";
import { indexMain } from "../../tasks/index.ts";
import { featuresMain } from "../../tasks/features.ts";
import { searchMain } from "../../tasks/search.ts";
import { writeCubFixture } from "../fixtures/image_folders.ts";
import { buildSmallCnn } from "../fixtures/small_cnn.ts";

const quiet = () => {};

Deno.test("index and search on a feature cache: image ids, test rows, --image through the recorded backbone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-features-search-" });
  try {
    await Deno.writeFile(`${dir}/cnn.onnx`, buildSmallCnn(21, 20).bytes);
    await Deno.writeFile(`${dir}/other.onnx`, buildSmallCnn(99, 20).bytes);
    await writeCubFixture(`${dir}/CUB_200_2011`, { classes: [1, 2, 3, 101, 102, 103], perClass: 4 });
    const features = ["--dataset", "cub", "--root", `${dir}/CUB_200_2011`, "--model", `${dir}/cnn.onnx`];
    const prep = ["--preset", "torchvision", "--resize", "24", "--crop", "20", "--provider", "wasm"];
    await featuresMain([...features, ...prep, "--views", "2", "--out", `${dir}/feats`, "--quiet"]);
    await train({
      dataset: { kind: "features", dir: `${dir}/feats`, views: "all" },
      epochs: 2,
      batchSize: 8,
      outDir: `${dir}/run`,
      quiet: true,
      mining: { search: "exact" },
    });
    const built = (await indexMain([`${dir}/run`, "--quiet"]))!;
    const h = built.header;
    assert.equal(h.count, 12, "the test split: 3 classes x 4 images, one row each");
    assert.equal(h.features.kind, "backbone");
    if (h.features.kind !== "backbone") return;
    assert.deepEqual(h.features.preprocess, { preset: "torchvision", resize: 24, crop: 20 });
    assert.equal(h.features.model.output, "/avgpool/GlobalAveragePool_output_0");
    assert.deepEqual(h.identities, { kind: "path", root: `${dir}/CUB_200_2011` });
    assert.equal(h.pixels, null);
    assert.deepEqual(h.classes?.find(([l]) => l === 102), [102, "102.Bird_102"]);

    const byRow = (await searchMain(
      [`${dir}/run/index`, "--test-row", "5", "--k", "3", "--html", `${dir}/s.html`],
      quiet,
    ))!;
    const rec = byRow.records[0];
    assert.equal(rec.query.id, "images/102.Bird_102/Bird_102_1.jpg");
    assert.equal(rec.query.class, "102.Bird_102");
    assert.equal(rec.neighbours.length, 3);
    assert.ok(rec.neighbours.every((n) => n.id.startsWith("images/") && n.id !== rec.query.id));
    const html = await Deno.readTextFile(`${dir}/s.html`);
    assert.equal(html.match(/src="data:image\/jpeg;base64,/g)?.length, 4, "thumbnails from the image files");

    // The query's own image through the recorded backbone lands on its own gallery item.
    const image = `${dir}/CUB_200_2011/${rec.query.id}`;
    const byImage = (await searchMain(
      [`${dir}/run/index`, "--image", image, "--model", `${dir}/cnn.onnx`, "--provider", "wasm", "--k", "2"],
      quiet,
    ))!;
    assert.equal(byImage.records[0].neighbours[0].id, rec.query.id);
    assert.ok(
      byImage.records[0].neighbours[0].distance < 1e-3,
      `${byImage.records[0].neighbours[0].distance}`,
    );

    const refuses = (args: string[], pattern: RegExp) =>
      assert.rejects(() => searchMain([`${dir}/run/index`, ...args], quiet), (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.match(e.message, pattern);
        return true;
      });
    await refuses(
      ["--image", image],
      /built on features of the ONNX model with sha256 [0-9a-f]{12}.*set model to that model file/,
    );
    await refuses(
      ["--image", image, "--model", `${dir}/other.onnx`, "--provider", "wasm"],
      /other\.onnx is not the backbone this index was built with/,
    );
    await refuses(["--vector", `${dir}/cnn.onnx`], /not whole rows of \d+ float32 values/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
