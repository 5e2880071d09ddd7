/**
 * In-batch mining baselines, for comparison in one toolkit: class-balanced batches (P classes x m
 * samples), then per anchor one triplet chosen from the batch's pairwise distances:
 * - batch-hard (Hermans et al. 2017): the farthest positive and the nearest negative;
 * - semi-hard (Schroff et al., FaceNet 2015): a random positive, and the nearest negative farther than
 *   it (d_ap < d_an); the band d_an < d_ap + margin is where such negatives usually lie; if no negative
 *   is farther than the positive, the farthest negative (the easiest) is used, as in TF-Addons.
 * Distances are squared L2 of the current embeddings, computed on the GPU by the caller.
 * @module
 */
import type { Rng } from "../util/rng.ts";
import type { ClassIndex } from "./classes.ts";

/**
 * A class-balanced batch of sample indices: `classesPerBatch` random classes, batchSize / classesPerBatch
 * samples each (without replacement while the class has enough), topped up to batchSize from random classes.
 */
export function sampleClassBalancedBatch(
  classes: ClassIndex,
  batchSize: number,
  classesPerBatch: number,
  rng: Rng,
): Uint32Array {
  const p = Math.min(classesPerBatch, classes.classCount);
  const perClass = Math.max(2, Math.floor(batchSize / p));
  const slots = rng.shuffle(Uint32Array.from({ length: classes.classCount }, (_, i) => i)).subarray(0, p);
  const out: number[] = [];
  for (let ci = 0; out.length < batchSize; ci = (ci + 1) % p) {
    const members = classes.membersOf(slots[ci]);
    const take = Math.min(perClass, batchSize - out.length);
    const pick = members.length >= take
      ? rng.shuffle(Uint32Array.from(members)).subarray(0, take)
      : Uint32Array.from(
        { length: take },
        () => members[rng.int(members.length)],
      );
    out.push(...pick);
    if (take < 2) break;
  }
  return Uint32Array.from(out.slice(0, batchSize));
}

/** Batch-hard triplets as local indices [B x 3]; anchors without a positive or negative are skipped. */
export function batchHardTriplets(dist: Float32Array, labels: ArrayLike<number>): Uint32Array {
  const b = labels.length;
  const out: number[] = [];
  for (let a = 0; a < b; a++) {
    let pos = -1, neg = -1;
    for (let j = 0; j < b; j++) {
      const d = dist[a * b + j];
      if (j === a) continue;
      if (labels[j] === labels[a]) {
        if (pos < 0 || d > dist[a * b + pos]) pos = j;
      } else if (neg < 0 || d < dist[a * b + neg]) neg = j;
    }
    if (pos >= 0 && neg >= 0) out.push(a, pos, neg);
  }
  return Uint32Array.from(out);
}

/** Semi-hard triplets as local indices [B x 3]; anchors without a positive or negative are skipped. */
export function semiHardTriplets(dist: Float32Array, labels: ArrayLike<number>, rng: Rng): Uint32Array {
  const b = labels.length;
  const out: number[] = [];
  for (let a = 0; a < b; a++) {
    const positives: number[] = [];
    for (let j = 0; j < b; j++) if (j !== a && labels[j] === labels[a]) positives.push(j);
    if (!positives.length) continue;
    const p = positives[rng.int(positives.length)];
    const dap = dist[a * b + p];
    let semi = -1, easiest = -1;
    for (let j = 0; j < b; j++) {
      if (labels[j] === labels[a]) continue;
      const d = dist[a * b + j];
      if (d > dap && (semi < 0 || d < dist[a * b + semi])) semi = j;
      if (easiest < 0 || d > dist[a * b + easiest]) easiest = j;
    }
    const n = semi >= 0 ? semi : easiest;
    if (n >= 0) out.push(a, p, n);
  }
  return Uint32Array.from(out);
}
