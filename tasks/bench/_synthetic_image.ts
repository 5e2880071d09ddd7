/**
 * Synthetic pictures for benches and tests: each class its own colour pattern, so features differ
 * between classes.
 * @module
 */
import type { RgbImage } from "../../lib/data/image.ts";
import { Rng } from "../../lib/util/rng.ts";

/** A synthetic picture for class `cls`: a colour gradient with a class-dependent stripe, plus noise. */
export function syntheticImage(cls: number, index: number, width: number, height: number): RgbImage {
  const rng = new Rng(cls * 1000 + index);
  const data = new Uint8Array(width * height * 3);
  const base = [(cls * 67) % 256, (cls * 131) % 256, (cls * 29 + 80) % 256];
  const period = 4 + (cls % 7);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const stripe = Math.floor((x + y * (cls % 3)) / period) % 2 ? 60 : -60;
      for (let c = 0; c < 3; c++) {
        const v = base[c] + stripe * (c === cls % 3 ? 1 : 0.3) + (x / width) * 40 + rng.int(21) - 10;
        data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, data };
}
