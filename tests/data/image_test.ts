/** Image decoding (JPEG, PNG) and antialiased resampling against an independent 2-D reference. */
import assert from "node:assert/strict";
import * as png from "npm:fast-png@8.0.0";
import { UserError } from "../../lib/errors.ts";
import {
  decodeImage,
  encodeJpeg,
  encodePng,
  ImageDecodeError,
  readImage,
  resampleRgb,
  type RgbImage,
} from "../../lib/data/image.ts";
import { Rng } from "../../lib/util/rng.ts";
import { syntheticImage } from "../../tasks/bench/_synthetic_image.ts";

function randomImage(w: number, h: number, seed: number): RgbImage {
  const rng = new Rng(seed);
  return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)) };
}

/** Independent reference: every output pixel is a normalised 2-D sum of triangle weights over all pixels. */
function resampleNaive(
  img: RgbImage,
  x0: number,
  y0: number,
  rw: number,
  rh: number,
  ow: number,
  oh: number,
) {
  const sx = rw / ow, sy = rh / oh;
  const supX = Math.max(1, sx), supY = Math.max(1, sy);
  const out = new Float64Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    const cy = y0 + (y + 0.5) * sy;
    for (let x = 0; x < ow; x++) {
      const cx = x0 + (x + 0.5) * sx;
      let total = 0;
      const acc = [0, 0, 0];
      for (let v = 0; v < img.height; v++) {
        const wy = Math.max(0, 1 - Math.abs((v + 0.5 - cy) / supY));
        if (!wy) continue;
        for (let u = 0; u < img.width; u++) {
          const wx = Math.max(0, 1 - Math.abs((u + 0.5 - cx) / supX));
          if (!wx) continue;
          total += wx * wy;
          for (let c = 0; c < 3; c++) acc[c] += wx * wy * img.data[(v * img.width + u) * 3 + c];
        }
      }
      for (let c = 0; c < 3; c++) out[(y * ow + x) * 3 + c] = acc[c] / total;
    }
  }
  return out;
}

/** The RGB bytes our decoder gives for a PNG written by fast-png (an encoder independent of ours). */
function decodedPng(
  width: number,
  height: number,
  channels: number,
  depth: 8 | 16,
  data: Uint8Array | Uint16Array,
  palette?: [number, number, number][],
): number[] {
  const file = png.encode({ width, height, data, channels, depth, ...(palette ? { palette } : {}) });
  return Array.from(decodeImage(file).data);
}

Deno.test("image: PNG round-trips exactly; grey, palette and 16-bit PNGs decode to RGB", () => {
  const img = randomImage(13, 7, 1);
  assert.deepEqual(decodeImage(encodePng(img)), img);
  const grey = decodedPng(3, 2, 1, 8, Uint8Array.from([0, 50, 100, 150, 200, 255]));
  assert.deepEqual(grey.slice(0, 6), [0, 0, 0, 50, 50, 50]);
  const deep = decodedPng(2, 1, 3, 16, Uint16Array.from([0, 65535, 4660, 256, 512, 1024]));
  assert.deepEqual(deep, [0, 255, 18, 1, 2, 4]);
  assert.deepEqual(decodedPng(1, 1, 4, 8, Uint8Array.from([9, 8, 7, 128])), [9, 8, 7]);
  const indexed = decodedPng(2, 1, 1, 8, Uint8Array.from([1, 0]), [[10, 20, 30], [40, 50, 60]]);
  assert.deepEqual(indexed, [40, 50, 60, 10, 20, 30]);
});

Deno.test("image: JPEG encode/decode keeps a smooth picture within JPEG error", () => {
  const img = syntheticImage(3, 0, 40, 30);
  const back = decodeImage(encodeJpeg(img, 95));
  assert.equal(back.width, 40);
  assert.equal(back.height, 30);
  let err = 0;
  for (let i = 0; i < img.data.length; i++) err += Math.abs(img.data[i] - back.data[i]);
  assert.ok(err / img.data.length < 12, `mean abs error ${err / img.data.length}`);
});

Deno.test("image: unreadable, unknown and missing files are clear errors", async () => {
  assert.throws(() => decodeImage(new Uint8Array([1, 2, 3, 4, 5]), "x.jpg"), ImageDecodeError);
  const truncated = encodeJpeg(syntheticImage(1, 1, 32, 32)).subarray(0, 40);
  assert.throws(
    () => decodeImage(truncated, "cut.jpg"),
    (e: unknown) => e instanceof ImageDecodeError && /cut\.jpg/.test(e.message),
  );
  await assert.rejects(
    () => readImage("/nonexistent/bird.jpg"),
    (e: unknown) => e instanceof UserError && /not found/.test(e.message),
  );
});

Deno.test("resample: identity, downscaling and upscaling match the 2-D reference", () => {
  const img = randomImage(23, 17, 2);
  assert.deepEqual(resampleRgb(img, { x: 0, y: 0, width: 23, height: 17 }, 23, 17), img);
  for (const [ow, oh] of [[11, 8], [7, 13], [5, 3], [31, 29], [1, 1]]) {
    const got = resampleRgb(img, { x: 0, y: 0, width: 23, height: 17 }, ow, oh);
    const want = resampleNaive(img, 0, 0, 23, 17, ow, oh);
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got.data[i] - want[i]) <= 0.51, `${ow}x${oh} at ${i}: ${got.data[i]} vs ${want[i]}`);
    }
  }
  // A fractional region (a crop) and a mirrored output.
  const region = { x: 3.25, y: 1.5, width: 12.5, height: 12.5 };
  const got = resampleRgb(img, region, 6, 6);
  const want = resampleNaive(img, region.x, region.y, region.width, region.height, 6, 6);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got.data[i] - want[i]) <= 0.51);
  const flipped = resampleRgb(img, region, 6, 6, true);
  for (let y = 0; y < 6; y++) {
    for (let x = 0; x < 6; x++) {
      for (let c = 0; c < 3; c++) {
        assert.equal(flipped.data[(y * 6 + x) * 3 + c], got.data[(y * 6 + 5 - x) * 3 + c]);
      }
    }
  }
});
