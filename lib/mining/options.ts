/**
 * The miner's settings (`TrainConfig.mining`): which miner, its neighbour search, and the FANNG search's
 * knobs; their defaults and checks live here, beside the code that reads them.
 * @module
 */
import { checkOption } from "../errors.ts";
import { MAX_BUDGET, SEARCH_MAX_K } from "../ann/search.ts";

/** Which triplets the miner produces. */
export type MinerKind = "smart" | "random" | "semihard" | "batchhard";

/** The miners, in the order the help text lists them. */
export const MINER_KINDS: readonly MinerKind[] = ["smart", "random", "semihard", "batchhard"];

/** Mining settings. */
export interface MiningConfig {
  /** Which miner chooses the triplets (docs/method.md section 3). */
  miner: MinerKind;
  /** Nearest-neighbour search for smart mining: the FANNG graph or exact GPU brute force. */
  search: "fanng" | "exact";
  /** Fraction of each batch made of mined triplets (the rest random). */
  minedFraction: number;
  /**
   * Most distance evaluations per anchor of the FANNG negative search; 0 = the default of
   * lib/ann/search_defaults.ts ("mining").
   */
  searchBudget: number;
  /**
   * ef of the FANNG negative search (it ends once its closest candidate is farther than the ef-th
   * qualifying result); 0 = the default of lib/ann/search_defaults.ts ("mining").
   */
  searchEf: number;
  /**
   * How much later the FANNG negative search expands an anchor's own class: the queue-key factor of
   * vertices of the anchor's label (>= 1; lib/ann/index.ts SearchFilter.labelPenalty). Lower is more
   * thorough and slower (1: the plain filtered walk); 0 = the default of lib/ann/search_defaults.ts
   * ("mining": never expand the own class).
   */
  searchLabelPenalty: number;
  /** FANNG maximum out-degree. */
  maxDegree: number;
  /** In-batch miners: classes per batch (batch size / this = samples per class). */
  classesPerBatch: number;
}

/** The defaults (docs/method.md sections 1 and 4): smart mining over a FANNG graph of degree 32. */
export function defaultMiningConfig(): MiningConfig {
  return {
    miner: "smart",
    search: "fanng",
    minedFraction: 1,
    searchBudget: 0,
    searchEf: 0,
    searchLabelPenalty: 0,
    maxDegree: 32,
    classesPerBatch: 8,
  };
}

const isPosInt = (n: number) => Number.isInteger(n) && n > 0;

/** Checks mining settings; throws an OptionError naming the field (under `prefix`, e.g. `mining.`). */
export function validateMiningConfig(c: MiningConfig, prefix = ""): void {
  const at = (field: keyof MiningConfig) => `${prefix}${field}`;
  checkOption(
    MINER_KINDS.includes(c.miner),
    (n) => `unknown ${n(at("miner"))} '${c.miner}': one of ${MINER_KINDS.join(", ")}`,
  );
  checkOption(
    ["fanng", "exact"].includes(c.search),
    (n) => `${n(at("search"))} must be 'fanng' or 'exact', got '${c.search}'`,
  );
  checkOption(
    c.minedFraction >= 0 && c.minedFraction <= 1,
    (n) => `${n(at("minedFraction"))} must be in [0, 1], got ${c.minedFraction}`,
  );
  checkOption(
    Number.isInteger(c.searchBudget) && c.searchBudget >= 0 && c.searchBudget <= MAX_BUDGET,
    (n) => `${n(at("searchBudget"))} must be an integer in 0..${MAX_BUDGET} (0 = the default)`,
  );
  checkOption(
    Number.isInteger(c.searchEf) && c.searchEf >= 0 && c.searchEf <= SEARCH_MAX_K,
    (n) => `${n(at("searchEf"))} must be an integer in 0..${SEARCH_MAX_K} (0 = the default)`,
  );
  checkOption(
    c.searchLabelPenalty === 0 || (Number.isFinite(c.searchLabelPenalty) && c.searchLabelPenalty >= 1),
    (n) =>
      `${n(at("searchLabelPenalty"))} must be 0 (the default) or a number >= 1, got ${c.searchLabelPenalty}`,
  );
  checkOption(isPosInt(c.maxDegree), (n) => `${n(at("maxDegree"))} must be a positive integer`);
  checkOption(
    isPosInt(c.classesPerBatch) && c.classesPerBatch >= 2,
    (n) => `${n(at("classesPerBatch"))} must be an integer >= 2`,
  );
}
