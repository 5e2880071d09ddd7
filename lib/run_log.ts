/**
 * The records a training run writes to its folder's `log.jsonl` (see README "Train"): the writer
 * (lib/train.ts) and the readers (lib/viz) share these types.
 * @module
 */

/** Mining statistics of one epoch. */
export interface MiningStats {
  /** Anchors mined for. */
  anchors: number;
  /** Triplets that were mined (smart) this epoch. */
  smart: number;
  /** Anchors for which the miner found no qualifying negative or positive (random triplet instead). */
  fallback: number;
  /** smart / anchors. */
  smartFraction: number;
  /** Mean d(a,p) and d(a,n) over the mined triplets (NaN when none). */
  meanDap: number;
  /** Mean d(a,n) over the mined triplets (NaN when none). */
  meanDan: number;
  /** Mean distance evaluations per anchor in the graph search (FANNG only). */
  evaluations?: number;
}

/** Test-split metrics of one evaluation. */
export interface EvalSummary {
  /** Recall@K by K. */
  recall: Record<string, number>;
  /** NMI of k-means on the test embeddings. */
  nmi?: number;
  /** Adjusted mutual information, when computed. */
  ami?: number;
  /** MAP@R, when asked for. */
  mapAtR?: number;
  /** R-Precision, when asked for. */
  rPrecision?: number;
  /** Precision@1, when computed. */
  precisionAt1?: number;
}

/** Everything logged about one epoch. */
export interface EpochReport {
  /** Epoch number, from 1. */
  epoch: number;
  /** kappa at the end of the epoch; `kappaMined` the one the epoch's mining used. */
  kappa: number;
  /** kappa the epoch's mining used. */
  kappaMined: number;
  /** Which bound kappa sat at when the epoch ended, if any. */
  kappaBound: "min" | "max" | null;
  /** Fraction of the epoch's triplets with d(a,p) >= d(a,n). */
  trainError: number;
  /** Mean total loss. */
  loss: number;
  /** Mean triplet loss. */
  tripletLoss: number;
  /** Mean global loss (unweighted). */
  globalLoss: number;
  /** The epoch's mining statistics. */
  mining: MiningStats;
  /** Test metrics, on epochs that evaluate. */
  eval?: EvalSummary;
  /** Wall seconds of the epoch. */
  epochSec: number;
  /** Training triplets per second. */
  tripletsPerSec: number;
  /** Seconds per phase. */
  timing: { embedSec: number; graphSec: number; mineSec: number; trainSec: number; evalSec: number };
}
