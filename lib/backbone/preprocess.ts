/**
 * Image preprocessing for ImageNet backbones: pick a crop (the centre crop for evaluation, random crops
 * with horizontal flips for training views), resample it to the network's input size and normalise it
 * the way the weights were trained, writing straight into an NCHW float batch.
 *
 * Geometry (both presets): scale the image so its shorter side is `resize` (256), then take a `crop`
 * x `crop` (224) window: centred for view 0, uniformly random for views 1..K-1, each of those mirrored
 * with probability 1/2. The crop is resampled directly from the original pixels (one antialiased
 * bilinear pass over the crop's footprint), which equals resizing the whole image and then cropping.
 *
 * Presets:
 * - `caffe`: BGR channel order, values 0-255 minus the per-channel mean B 104, G 117, R 123 (Caffe's
 *   bvlc_googlenet, hence the ONNX Model Zoo googlenet-*.onnx).
 * - `torchvision`: RGB, values in [0, 1], minus ImageNet mean (0.485, 0.456, 0.406), divided by std
 *   (0.229, 0.224, 0.225) (torchvision's googlenet and most PyTorch exports).
 *
 * @example
 * ```ts
 * import { PRESETS, viewCrop, writeView } from "./preprocess.ts";
 * const spec = { preset: "caffe" as const, resize: 256, crop: 224 };
 * const batch = new Float32Array(3 * 224 * 224);
 * // writeView(img, viewCrop(img.width, img.height, spec, 0, 0, 1), spec, batch, 0);
 * ```
 * @module
 */
import { UserError } from "../errors.ts";
import { type Rect, resampleRegion, type RgbImage } from "../data/image.ts";
import { Rng } from "../util/rng.ts";

/** Preprocessing preset names. */
export type PresetName = "caffe" | "torchvision";

/** How a preset maps 8-bit RGB to network input. */
export interface Preset {
  /** Channel order of the network input, as indexes into RGB (caffe: [2, 1, 0] = BGR). */
  order: [number, number, number];
  /** Per-network-channel value = (pixel * scale - mean) / std. */
  scale: number;
  /** Per-channel mean subtracted (in the preset's channel order and scale). */
  mean: [number, number, number];
  /** Per-channel divisor after the mean. */
  std: [number, number, number];
}

/** The presets by name (channel-wise values given in network channel order). */
export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  caffe: { order: [2, 1, 0], scale: 1, mean: [104, 117, 123], std: [1, 1, 1] },
  torchvision: {
    order: [0, 1, 2],
    scale: 1 / 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  },
};

/** Everything that decides the network input for an image and view (part of the feature cache key). */
export interface PreprocessSpec {
  /** Channel order, scale and normalisation. */
  preset: PresetName;
  /** Shorter side after resizing (default 256). */
  resize: number;
  /** Square crop side fed to the network (default 224). */
  crop: number;
}

/** The default spec for a preset: shorter side 256, centre crop 224. */
export function defaultSpec(preset: PresetName): PreprocessSpec {
  return { preset, resize: 256, crop: 224 };
}

/** Checks a spec and returns its preset; UserError on a bad name or size. */
export function checkSpec(spec: PreprocessSpec): Preset {
  const preset = PRESETS[spec.preset];
  if (!preset) {
    throw new UserError(
      `unknown preprocessing preset '${spec.preset}': use one of ${Object.keys(PRESETS).join(", ")}`,
    );
  }
  if (
    !(Number.isInteger(spec.crop) && spec.crop > 0 && Number.isInteger(spec.resize) &&
      spec.resize >= spec.crop)
  ) {
    throw new UserError(
      `bad preprocessing sizes: resize ${spec.resize}, crop ${spec.crop} (need integers with resize >= crop > 0)`,
    );
  }
  return preset;
}

/** Where a view's crop lies in the original image, and whether it is mirrored. */
export interface ViewCrop {
  /** Source rectangle the crop samples. */
  region: Rect;
  /** Mirror horizontally. */
  flip: boolean;
}

/** A seed for (image, view) that does not depend on batch order, so resumed runs reproduce views. */
function viewSeed(seed: number, image: number, view: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ image;
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ Math.imul(view + 1, 0x27d4eb2f);
  return (h ^ (h >>> 13)) >>> 0;
}

/**
 * The crop of view `view` of image number `image` (`width` x `height` pixels): view 0 is the centre
 * crop, views >= 1 a random crop and a random mirror drawn from (`seed`, `image`, `view`).
 */
export function viewCrop(
  width: number,
  height: number,
  spec: PreprocessSpec,
  view: number,
  image: number,
  seed: number,
): ViewCrop {
  const scale = spec.resize / Math.min(width, height);
  const side = spec.crop / scale; // the crop's side in original pixels
  const spanX = width - side, spanY = height - side;
  if (view === 0) return { region: { x: spanX / 2, y: spanY / 2, width: side, height: side }, flip: false };
  const rng = new Rng(viewSeed(seed, image, view));
  // Integer offsets in the resized image, as a random crop of the resized picture would take.
  const maxX = Math.max(0, Math.round(width * scale) - spec.crop);
  const maxY = Math.max(0, Math.round(height * scale) - spec.crop);
  const ox = rng.int(maxX + 1), oy = rng.int(maxY + 1);
  const flip = rng.float() < 0.5;
  return {
    region: {
      x: Math.min(spanX, ox / scale),
      y: Math.min(spanY, oy / scale),
      width: side,
      height: side,
    },
    flip,
  };
}

/**
 * Resamples a view of `img` and writes it, normalised, as one CHW item of an NCHW batch:
 * `out[offset + c * crop * crop + y * crop + x]`.
 */
export function writeView(
  img: RgbImage,
  view: ViewCrop,
  spec: PreprocessSpec,
  out: Float32Array,
  offset: number,
): void {
  const p = checkSpec(spec);
  const n = spec.crop;
  const plane = n * n;
  // value for network channel c from RGB: (rgb[order[c]] * scale - mean[c]) / std[c]
  const a = p.std.map((s) => p.scale / s);
  const b = p.std.map((s, c) => -p.mean[c] / s);
  const inv = [p.order.indexOf(0), p.order.indexOf(1), p.order.indexOf(2)]; // network channel of R, G, B
  const oR = offset + inv[0] * plane, oG = offset + inv[1] * plane, oB = offset + inv[2] * plane;
  const aR = a[inv[0]], aG = a[inv[1]], aB = a[inv[2]];
  const bR = b[inv[0]], bG = b[inv[1]], bB = b[inv[2]];
  resampleRegion(img, view.region, n, n, view.flip, (x, y, r, g, bl) => {
    const i = y * n + x;
    out[oR + i] = r * aR + bR;
    out[oG + i] = g * aG + bG;
    out[oB + i] = bl * aB + bB;
  });
}
