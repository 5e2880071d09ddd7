/** Preprocessing: presets, crop geometry (centre and random views), and crop == resize-then-crop. */
import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import { resampleRgb, type RgbImage } from "../../lib/data/image.ts";
import {
  checkSpec,
  defaultSpec,
  type PreprocessSpec,
  viewCrop,
  writeView,
} from "../../lib/backbone/preprocess.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";

function randomImage(w: number, h: number, seed: number): RgbImage {
  const rng = new Rng(seed);
  return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)) };
}

Deno.test("preprocess: caffe is BGR minus (104,117,123); torchvision is RGB/255 with ImageNet mean/std", () => {
  const img: RgbImage = { width: 10, height: 8, data: new Uint8Array(240) };
  for (let i = 0; i < 80; i++) img.data.set([200, 100, 50], i * 3);
  const spec: PreprocessSpec = { preset: "caffe", resize: 6, crop: 4 };
  const out = new Float32Array(3 * 16 + 5).fill(NaN);
  writeView(img, viewCrop(10, 8, spec, 0, 0, 0), spec, out, 5);
  assertAllClose(out.subarray(5, 21), new Float32Array(16).fill(50 - 104), { atol: 1e-4, what: "caffe B" });
  assertAllClose(out.subarray(21, 37), new Float32Array(16).fill(100 - 117), { atol: 1e-4, what: "caffe G" });
  assertAllClose(out.subarray(37, 53), new Float32Array(16).fill(200 - 123), { atol: 1e-4, what: "caffe R" });
  assert.ok(out.subarray(0, 5).every(Number.isNaN), "writes only its own item");

  const tv: PreprocessSpec = { preset: "torchvision", resize: 6, crop: 4 };
  const o2 = new Float32Array(48);
  writeView(img, viewCrop(10, 8, tv, 0, 0, 0), tv, o2, 0);
  assertAllClose(o2.subarray(0, 16), new Float32Array(16).fill((200 / 255 - 0.485) / 0.229), { atol: 1e-5 });
  assertAllClose(o2.subarray(16, 32), new Float32Array(16).fill((100 / 255 - 0.456) / 0.224), { atol: 1e-5 });
  assertAllClose(o2.subarray(32, 48), new Float32Array(16).fill((50 / 255 - 0.406) / 0.225), { atol: 1e-5 });
});

Deno.test("preprocess: the centre crop equals resizing the whole image then cropping", () => {
  // 300x200 with the shorter side to 100 is exactly 150x100; a centre crop of 80 starts at (35, 10).
  const img = randomImage(300, 200, 3);
  const spec: PreprocessSpec = { preset: "torchvision", resize: 100, crop: 80 };
  const view = viewCrop(300, 200, spec, 0, 0, 0);
  assert.deepEqual(view, { region: { x: 70, y: 20, width: 160, height: 160 }, flip: false });
  const out = new Float32Array(3 * 80 * 80);
  writeView(img, view, { ...spec, preset: "caffe" }, out, 0);
  const resized = resampleRgb(img, { x: 0, y: 0, width: 300, height: 200 }, 150, 100);
  for (let y = 0; y < 80; y++) {
    for (let x = 0; x < 80; x++) {
      const r = resized.data[((y + 10) * 150 + x + 35) * 3];
      const got = out[2 * 6400 + y * 80 + x] + 123; // caffe channel 2 is R
      assert.ok(Math.abs(got - r) <= 0.51, `(${x},${y}): ${got} vs ${r}`);
    }
  }
});

Deno.test("preprocess: random views stay inside the image, are seeded per (image, view), and flip half the time", () => {
  const spec = defaultSpec("caffe");
  let flips = 0;
  const offsets = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const [w, h] = [500 - (i % 7) * 40, 375 + (i % 5) * 30];
    const v = viewCrop(w, h, spec, 1 + (i % 3), i, 42);
    assert.deepEqual(v, viewCrop(w, h, spec, 1 + (i % 3), i, 42), "deterministic");
    const { x, y, width, height } = v.region;
    assert.ok(
      x >= 0 && y >= 0 && x + width <= w + 1e-9 && y + height <= h + 1e-9,
      `inside: ${JSON.stringify(v)}`,
    );
    assert.ok(Math.abs(width - 224 * Math.min(w, h) / 256) < 1e-9);
    flips += v.flip ? 1 : 0;
    offsets.add(`${x.toFixed(3)},${y.toFixed(3)}`);
  }
  assert.ok(flips > 70 && flips < 130, `flips ${flips}/200`);
  assert.ok(offsets.size > 150, "crops vary");
  assert.notDeepEqual(viewCrop(500, 375, spec, 1, 0, 1), viewCrop(500, 375, spec, 1, 0, 2), "seed matters");
  assert.deepEqual(viewCrop(500, 375, spec, 0, 7, 9).flip, false, "view 0 is the unflipped centre crop");
});

Deno.test("preprocess: a flipped view is the mirror of the same crop unflipped", () => {
  const img = randomImage(64, 48, 5);
  const spec: PreprocessSpec = { preset: "torchvision", resize: 40, crop: 32 };
  const region = viewCrop(64, 48, spec, 0, 0, 0).region;
  const a = new Float32Array(3 * 32 * 32), b = new Float32Array(3 * 32 * 32);
  writeView(img, { region, flip: false }, spec, a, 0);
  writeView(img, { region, flip: true }, spec, b, 0);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) assert.equal(b[c * 1024 + y * 32 + x], a[c * 1024 + y * 32 + 31 - x]);
    }
  }
});

Deno.test("preprocess: bad presets and sizes are UserErrors", () => {
  assert.throws(() => checkSpec({ preset: "keras" as "caffe", resize: 256, crop: 224 }), UserError);
  assert.throws(() => checkSpec({ preset: "caffe", resize: 200, crop: 224 }), UserError);
  assert.throws(() => checkSpec({ preset: "caffe", resize: 256, crop: 0 }), UserError);
});
