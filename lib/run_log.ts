/**
 * The records a training run writes to its folder's `log.jsonl` (see README "Train"): the writer
 * (lib/train.ts) and the readers (lib/viz) share these types.
 * @module
 */

/** Mining statistics of one epoch. */
export interface MiningStats {
  anchors: number;
  /** Triplets that were mined (smart) this epoch. */
  smart: number;
  /** Anchors for which the miner found no qualifying negative or positive (random triplet instead). */
  fallback: number;
  smartFraction: number;
  /** Mean d(a,p) and d(a,n) over the mined triplets (NaN when none). */
  meanDap: number;
  meanDan: number;
  /** Mean distance evaluations per anchor in the graph search (FANNG only). */
  evaluations?: number;
}

/** Test-split metrics of one evaluation. */
export interface EvalSummary {
  recall: Record<string, number>;
  nmi?: number;
  ami?: number;
  mapAtR?: number;
  rPrecision?: number;
  precisionAt1?: number;
}

/** Everything logged about one epoch. */
export interface EpochReport {
  epoch: number;
  /** kappa at the end of the epoch; `kappaMined` the one the epoch's mining used. */
  kappa: number;
  kappaMined: number;
  kappaBound: "min" | "max" | null;
  trainError: number;
  loss: number;
  tripletLoss: number;
  globalLoss: number;
  mining: MiningStats;
  eval?: EvalSummary;
  epochSec: number;
  tripletsPerSec: number;
  timing: { embedSec: number; graphSec: number; mineSec: number; trainSec: number; evalSec: number };
}
