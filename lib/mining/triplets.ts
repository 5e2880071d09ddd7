/**
 * Random triplets and the assembly of one epoch's triplet list: every training sample is the anchor of
 * exactly one triplet, anchors in a seeded random order, cut into batches; in each batch up to
 * round(minedFraction * batch length) anchors use their mined (smart) triplet where they have one, the
 * rest get a random triplet (random positive of the class, random negative of another class).
 * @module
 */
import type { Rng } from "../util/rng.ts";
import type { ClassIndex } from "./classes.ts";

/** One epoch's triplets, row-major [count x 3] (anchor, positive, negative). */
export interface EpochTriplets {
  /** [count x 3] anchor, positive, negative. */
  triplets: Uint32Array;
  /** 1 where the triplet is a mined one. */
  mined: Uint8Array;
  /** Triplets in the epoch. */
  count: number;
}

/** Mined partners per anchor (-1 where the miner found none). */
export interface MinedPartners {
  /** Positive per anchor (-1: none). */
  positive: Int32Array;
  /** Negative per anchor (-1: none). */
  negative: Int32Array;
}

/** A random triplet for each anchor. */
export function randomTriplets(classes: ClassIndex, anchors: ArrayLike<number>, rng: Rng): Uint32Array {
  const out = new Uint32Array(anchors.length * 3);
  for (let i = 0; i < anchors.length; i++) {
    const a = anchors[i];
    out[3 * i] = a;
    out[3 * i + 1] = classes.randomPositive(a, rng);
    out[3 * i + 2] = classes.randomNegative(a, rng);
  }
  return out;
}

/** A seeded random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Uint32Array {
  return rng.shuffle(Uint32Array.from({ length: n }, (_, i) => i));
}

/**
 * Builds the epoch's triplets over `order` (the anchors in batch order). Without `mined`, all are random.
 */
export function assembleEpoch(
  classes: ClassIndex,
  order: Uint32Array,
  batchSize: number,
  minedFraction: number,
  mined: MinedPartners | undefined,
  rng: Rng,
): EpochTriplets {
  const count = order.length;
  const triplets = new Uint32Array(count * 3);
  const isMined = new Uint8Array(count);
  for (let start = 0; start < count; start += batchSize) {
    const end = Math.min(count, start + batchSize);
    let quota = mined ? Math.round(minedFraction * (end - start)) : 0;
    for (let i = start; i < end; i++) {
      const a = order[i];
      triplets[3 * i] = a;
      if (quota > 0 && mined!.positive[a] >= 0 && mined!.negative[a] >= 0) {
        triplets[3 * i + 1] = mined!.positive[a];
        triplets[3 * i + 2] = mined!.negative[a];
        isMined[i] = 1;
        quota--;
      } else {
        triplets[3 * i + 1] = classes.randomPositive(a, rng);
        triplets[3 * i + 2] = classes.randomNegative(a, rng);
      }
    }
  }
  return { triplets, mined: isMined, count };
}
