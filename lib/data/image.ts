/**
 * Image files: decode JPEG (jpeg-js) and PNG (fast-png) to 8-bit RGB, encode them back (for test
 * fixtures and figures), and resample a region of an image to a new size with an antialiased
 * bilinear (triangle) filter, the same kind of filter PIL's `resize(..., BILINEAR)` and torchvision's
 * `Resize(antialias=True)` apply.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng, resampleRgb } from "./image.ts";
 * // A grey 2 x 2 PNG through the codec, then resampled to 4 x 4 (readImage(path) reads a file).
 * const img = decodeImage(encodePng({ width: 2, height: 2, data: new Uint8Array(12).fill(200) }));
 * const thumb = resampleRgb(img, { x: 0, y: 0, width: img.width, height: img.height }, 4, 4);
 * ```
 * @module
 */
import jpeg from "npm:jpeg-js@0.4.4";
import * as png from "npm:fast-png@8.0.0";
import { UserError } from "../errors.ts";

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B. */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** [height x width x 3] bytes. */
  data: Uint8Array;
}

/** A rectangle in source pixel coordinates (may be fractional). */
export interface Rect {
  /** Left edge. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width. */
  width: number;
  /** Height. */
  height: number;
}

/** An image file could not be decoded. */
export class ImageDecodeError extends UserError {
  /** The error's name. */
  override name = "ImageDecodeError";
}

const MAX_MEGAPIXELS = 100;

/** True if `bytes` start like a JPEG (FF D8 FF). */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Decodes JPEG or PNG bytes (sniffed from the content, not the file name) to RGB. */
export function decodeImage(bytes: Uint8Array, source = "image"): RgbImage {
  try {
    if (isJpeg(bytes)) {
      const d = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        maxResolutionInMP: MAX_MEGAPIXELS,
        maxMemoryUsageInMB: 1024,
      });
      return { width: d.width, height: d.height, data: d.data };
    }
    if (png.hasPngSignature(bytes)) return pngToRgb(png.decode(bytes));
  } catch (e) {
    throw new ImageDecodeError(`${source}: cannot decode image (${(e as Error).message ?? e})`);
  }
  throw new ImageDecodeError(`${source}: not a JPEG or PNG file (unknown signature)`);
}

function pngToRgb(d: png.DecodedPng): RgbImage {
  const { width, height } = d;
  const n = width * height;
  let data = d.data;
  let channels = d.channels;
  if (d.palette) {
    data = png.convertIndexedToRgb(d);
    channels = d.palette[0]?.length ?? 3;
  }
  const shift = d.depth === 16 && !d.palette ? 8 : 0;
  const out = new Uint8Array(n * 3);
  if (channels >= 3) {
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) out[i * 3 + c] = data[i * channels + c] >> shift;
    }
  } else {
    const scale = !d.palette && d.depth < 8 ? 255 / ((1 << d.depth) - 1) : 1;
    for (let i = 0; i < n; i++) {
      const v = scale === 1 ? data[i * channels] >> shift : Math.round(data[i * channels] * scale);
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = v;
    }
  }
  return { width, height, data: out };
}

/** Reads and decodes an image file. Missing files and undecodable content are UserErrors. */
export async function readImage(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`image file not found: ${path}`);
    throw new ImageDecodeError(`${path}: cannot read file (${(e as Error).message})`);
  }
  return decodeImage(bytes, path);
}

/** Encodes RGB as a baseline JPEG (quality 1-100). */
export function encodeJpeg(img: RgbImage, quality = 90): Uint8Array {
  const n = img.width * img.height;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[i * 4] = img.data[i * 3];
    rgba[i * 4 + 1] = img.data[i * 3 + 1];
    rgba[i * 4 + 2] = img.data[i * 3 + 2];
    rgba[i * 4 + 3] = 255;
  }
  const out = jpeg.encode({ width: img.width, height: img.height, data: rgba }, quality).data;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Encodes RGB as an 8-bit PNG. */
export function encodePng(img: RgbImage): Uint8Array {
  return png.encode({ width: img.width, height: img.height, data: img.data, channels: 3, depth: 8 });
}

/**
 * Per-output-sample filter taps along one axis: output `i` covers source `[start + i*step,
 * start + (i+1)*step)`; a triangle filter of half-width max(1, step) around its centre, clamped to
 * the image edge (weights renormalised), like PIL's antialiased bilinear resampling.
 */
export interface AxisTaps {
  /** First source index of each output sample. */
  first: Int32Array;
  /** Number of taps of each output sample. */
  count: Int32Array;
  /** Weights, `maxTaps` per output sample. */
  weights: Float32Array;
  maxTaps: number;
}

/** Computes {@link AxisTaps} for `outSize` samples over `[start, start + length)` of an axis of `srcSize`. */
export function axisTaps(srcSize: number, start: number, length: number, outSize: number): AxisTaps {
  const step = length / outSize;
  const support = Math.max(1, step);
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const centre = start + (i + 0.5) * step;
    const lo = Math.max(0, Math.floor(centre - support + 0.5));
    const hi = Math.min(srcSize, Math.floor(centre + support + 0.5));
    let total = 0;
    let k = 0;
    for (let s = lo; s < hi && k < maxTaps; s++, k++) {
      const w = Math.max(0, 1 - Math.abs((s + 0.5 - centre) / support));
      weights[i * maxTaps + k] = w;
      total += w;
    }
    if (total === 0) {
      // The window fell between pixel centres at the edge: take the nearest pixel.
      const s = Math.min(srcSize - 1, Math.max(0, Math.floor(centre)));
      first[i] = s;
      count[i] = 1;
      weights[i * maxTaps] = 1;
      continue;
    }
    for (let j = 0; j < k; j++) weights[i * maxTaps + j] /= total;
    first[i] = lo;
    count[i] = k;
  }
  return { first, count, weights, maxTaps };
}

/**
 * Resamples the `region` of `img` to `outWidth x outHeight` (antialiased bilinear), optionally
 * mirrored left-right, and hands each output pixel to `sink(x, y, r, g, b)` as floats in [0, 255].
 * Separable: one horizontal pass over the source rows the region needs, then one vertical pass.
 */
export function resampleRegion(
  img: RgbImage,
  region: Rect,
  outWidth: number,
  outHeight: number,
  flip: boolean,
  sink: (x: number, y: number, r: number, g: number, b: number) => void,
): void {
  const tx = axisTaps(img.width, region.x, region.width, outWidth);
  const ty = axisTaps(img.height, region.y, region.height, outHeight);
  let rowLo = img.height, rowHi = 0;
  for (let y = 0; y < outHeight; y++) {
    rowLo = Math.min(rowLo, ty.first[y]);
    rowHi = Math.max(rowHi, ty.first[y] + ty.count[y]);
  }
  const rows = rowHi - rowLo;
  const tmp = new Float32Array(rows * outWidth * 3);
  const src = img.data;
  const w3 = img.width * 3;
  for (let r = 0; r < rows; r++) {
    const rowBase = (rowLo + r) * w3;
    for (let x = 0; x < outWidth; x++) {
      const f = tx.first[x], c = tx.count[x], wo = x * tx.maxTaps;
      let a = 0, b = 0, g = 0;
      for (let k = 0; k < c; k++) {
        const w = tx.weights[wo + k];
        const p = rowBase + (f + k) * 3;
        a += w * src[p];
        g += w * src[p + 1];
        b += w * src[p + 2];
      }
      const o = (r * outWidth + x) * 3;
      tmp[o] = a;
      tmp[o + 1] = g;
      tmp[o + 2] = b;
    }
  }
  for (let y = 0; y < outHeight; y++) {
    const f = ty.first[y] - rowLo, c = ty.count[y], wo = y * ty.maxTaps;
    for (let x = 0; x < outWidth; x++) {
      let a = 0, g = 0, b = 0;
      for (let k = 0; k < c; k++) {
        const w = ty.weights[wo + k];
        const p = ((f + k) * outWidth + x) * 3;
        a += w * tmp[p];
        g += w * tmp[p + 1];
        b += w * tmp[p + 2];
      }
      sink(flip ? outWidth - 1 - x : x, y, a, g, b);
    }
  }
}

/** Resamples `region` of `img` to a new RGB image (see {@link resampleRegion}). */
export function resampleRgb(
  img: RgbImage,
  region: Rect,
  outWidth: number,
  outHeight: number,
  flip = false,
): RgbImage {
  const data = new Uint8Array(outWidth * outHeight * 3);
  resampleRegion(img, region, outWidth, outHeight, flip, (x, y, r, g, b) => {
    const o = (y * outWidth + x) * 3;
    data[o] = Math.round(r);
    data[o + 1] = Math.round(g);
    data[o + 2] = Math.round(b);
  });
  return { width: outWidth, height: outHeight, data };
}
