/**
 * The one place that decides the FANNG search defaults, per use. Every caller (FanngIndex.search and
 * selfSearch, the two passes of mining's filtered search, the training CLI's "0 = default") reads them
 * here. `ef` is hnswlib's: the search ends once its closest unexpanded candidate is farther than the
 * max(ef, k)-th result; `budget` caps the distance evaluations per query whatever happens. Chosen from the
 * measurements in docs/ann-search.md (recall@10 >= 0.95 on the 100k clustered set for `self`, Fashion-MNIST
 * test queries for `search`; mining's negatives as good as exact search's for `filtered`).
 * @module
 */

/** What a search is for. */
export type SearchUse =
  /** Outside queries (`FanngIndex.search`): from the nearest stored entry vertex, best-first. */
  | "search"
  /** Each indexed point's nearest other points (`FanngIndex.selfSearch`). */
  | "self"
  /** The nearest point of any label (k = 1): eps_a, the first pass of a scale-only radius filter. */
  | "nearest"
  /**
   * Label- and radius-filtered self-search (mining's negatives): rejected vertices are walked through, so
   * the search must cross the exclusion radius before its first result; it needs the larger budget.
   */
  | "filtered"
  /**
   * Smart mining's negatives (lib/mining/search.ts): "filtered", plus the fixed entry vertices and an
   * in-filter walk (infinite label penalty), so the walk never crosses the anchor's own class (on
   * Fashion-MNIST 4.6x fewer evaluations than the plain walk; half the anchors get their exact nearest
   * negative, the others a farther one, docs/ann-search.md). Its budget is a quarter of "filtered": the
   * walk's queue and hash are sized by the budget, and at kappa 1-4 no anchor needs more than 250
   * evaluations.
   */
  | "mining";

/** Budget and ef of one use. */
export interface SearchDefaults {
  /** Most distance evaluations per query. */
  readonly budget: number;
  /** Size of the candidate list: the search ends once its closest unexpanded candidate is farther than the ef-th result. */
  readonly ef: number;
  /** Fixed entry vertices searched besides the query's own vertex (self-search); 0: none. */
  readonly entryCount: number;
  /** Queue-key factor of vertices that fail the label filter (lib/ann/index.ts SearchFilter.labelPenalty). */
  readonly labelPenalty: number;
  /**
   * Candidates an unfiltered search of a projected index keeps for exact re-ranking (lib/ann/index.ts
   * SearchOptions.rerank; 0 for the filtered uses, which walk the vectors themselves).
   */
  readonly rerank: number;
}

const DEFAULTS: Readonly<Record<SearchUse, SearchDefaults>> = {
  search: { budget: 512, ef: 32, entryCount: 16, labelPenalty: 1, rerank: 40 },
  self: { budget: 1024, ef: 16, entryCount: 0, labelPenalty: 1, rerank: 32 },
  nearest: { budget: 64, ef: 1, entryCount: 0, labelPenalty: 1, rerank: 0 },
  filtered: { budget: 2048, ef: 8, entryCount: 0, labelPenalty: 1, rerank: 0 },
  mining: { budget: 512, ef: 8, entryCount: 16, labelPenalty: Infinity, rerank: 0 },
};

/** The defaults of `use`. */
export function searchDefaults(use: SearchUse): SearchDefaults {
  return DEFAULTS[use];
}
