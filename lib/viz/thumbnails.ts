/**
 * Sample pictures as data URLs, for embedding in SVG figures and HTML pages: raw pixels are encoded as
 * PNG (fast-png); image files are decoded and shrunk to thumbnails (lib/data/image.ts) and embedded as
 * JPEG, or embedded as they are when they cannot be decoded here (typed by their leading bytes).
 * @module
 */
import type { SampleImage } from "../data/dataset.ts";
import { fmtShape, ShapeError, UserError } from "../errors.ts";

/** Base64 of `bytes` (chunked, so large images do not overflow the argument limit). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Encodes 8-bit grey (1 channel) or RGB (3 channels) pixels, row-major, as PNG bytes. */
export async function encodePixelsPng(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: 1 | 3,
): Promise<Uint8Array> {
  if (pixels.length !== width * height * channels) {
    throw new ShapeError(
      `pixels of length ${pixels.length} do not fit an image of ${fmtShape([height, width, channels])}`,
    );
  }
  const { encode } = await import("npm:fast-png@8.0.0");
  return encode({ width, height, data: pixels, channels, depth: 8 });
}

/** The MIME type of an image file from its first bytes (PNG, JPEG, GIF, WebP), or undefined. */
export function sniffImageMime(bytes: Uint8Array): string | undefined {
  const starts = (sig: number[], at = 0) => sig.every((b, i) => bytes[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47])) return "image/png";
  if (starts([0xff, 0xd8, 0xff])) return "image/jpeg";
  if (starts([0x47, 0x49, 0x46, 0x38])) return "image/gif";
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return "image/webp";
  return undefined;
}

/** Options for {@link sampleImageDataUrl}. */
export interface ThumbnailOptions {
  /**
   * Longest side of a thumbnail made from an image file, in pixels (default 128).
   * @default 128
   */
  maxSide?: number;
}

/**
 * A `data:` URL showing `img`. Pixels become a PNG as they are. A file is decoded and, when larger than
 * `maxSide`, resampled down (antialiased) and embedded as JPEG; a file the decoder cannot read (GIF,
 * WebP) is embedded unchanged.
 */
export async function sampleImageDataUrl(img: SampleImage, opts: ThumbnailOptions = {}): Promise<string> {
  if (img.kind === "pixels") {
    const png = await encodePixelsPng(img.pixels, img.width, img.height, img.channels);
    return `data:image/png;base64,${bytesToBase64(png)}`;
  }
  const maxSide = opts.maxSide ?? 128;
  const bytes = await Deno.readFile(img.path).catch((e) => {
    throw new UserError(`cannot read image ${img.path}: ${e instanceof Error ? e.message : e}`);
  });
  const mime = sniffImageMime(bytes);
  if (mime === "image/jpeg" || mime === "image/png") {
    const { decodeImage, encodeJpeg, resampleRgb } = await import("../data/image.ts");
    const full = decodeImage(bytes, img.path);
    const scale = Math.min(1, maxSide / Math.max(full.width, full.height));
    if (scale === 1) return `data:${mime};base64,${bytesToBase64(bytes)}`;
    const w = Math.max(1, Math.round(full.width * scale)), h = Math.max(1, Math.round(full.height * scale));
    const thumb = resampleRgb(full, { x: 0, y: 0, width: full.width, height: full.height }, w, h);
    return `data:image/jpeg;base64,${bytesToBase64(encodeJpeg(thumb, 88))}`;
  }
  if (!mime) throw new UserError(`${img.path} is not a PNG, JPEG, GIF or WebP image`);
  return `data:${mime};base64,${bytesToBase64(bytes)}`;
}
