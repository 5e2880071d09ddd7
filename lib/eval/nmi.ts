/**
 * Clustering agreement: normalized mutual information (arithmetic-mean normalisation) and adjusted mutual
 * information, computed the way scikit-learn 1.2 does (`normalized_mutual_info_score`,
 * `adjusted_mutual_info_score` with `average_method="arithmetic"`), in float64 on the host. The contingency
 * table is kept sparse (its nonzero cells), and the expected mutual information is summed over distinct
 * pairs of class sizes, so 10,000+ classes (Stanford Online Products) cost O(N) memory and seconds.
 *
 * @example
 * ```ts
 * import { ami, nmi } from "./nmi.ts";
 * const classes = new Int32Array([0, 0, 1, 1]);
 * const clusters = new Int32Array([5, 5, 7, 7]);
 * nmi(classes, clusters); // 1
 * ami(classes, clusters); // 1
 * ```
 * @module
 */
import { ShapeError } from "../errors.ts";

/**
 * A contingency table of two labelings, sparse: cell t is row `cellRows[t]`, column `cellCols[t]`, count
 * `cellCounts[t]` = |{n : a[n] = that row's value, b[n] = that column's}|; only nonzero cells, in row-major
 * order.
 */
export interface Contingency {
  /** Distinct labels of the first labelling. */
  rows: number;
  /** Distinct labels of the second. */
  cols: number;
  /** Row of each non-zero cell. */
  cellRows: Uint32Array;
  /** Column of each non-zero cell. */
  cellCols: Uint32Array;
  /** Count of each non-zero cell. */
  cellCounts: Float64Array;
  /** Row sums (sizes of the classes of the first labeling). */
  rowSums: Float64Array;
  /** Column sums (sizes of the classes of the second labeling). */
  colSums: Float64Array;
  /** Number of samples. */
  total: number;
}

/** Maps arbitrary integer labels to dense ids 0..classes-1 in ascending label order. */
export function denseLabels(labels: Int32Array): { ids: Int32Array; classes: number; values: Int32Array } {
  const values = Int32Array.from(new Set(labels)).sort();
  const index = new Map<number, number>();
  values.forEach((v, i) => index.set(v, i));
  const ids = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) ids[i] = index.get(labels[i])!;
  return { ids, classes: values.length, values };
}

/** The contingency table of labelings `a` (rows) and `b` (columns). */
export function contingency(a: Int32Array, b: Int32Array): Contingency {
  if (a.length !== b.length) {
    throw new ShapeError(`labelings have different lengths: [${a.length}] and [${b.length}]`);
  }
  const da = denseLabels(a), db = denseLabels(b);
  const rows = da.classes, cols = db.classes;
  const rowSums = new Float64Array(rows), colSums = new Float64Array(cols);
  // Cell keys row * cols + col (exact below 2^53), sorted: row-major order.
  const keys = new Float64Array(a.length);
  for (let n = 0; n < a.length; n++) {
    keys[n] = da.ids[n] * cols + db.ids[n];
    rowSums[da.ids[n]]++;
    colSums[db.ids[n]]++;
  }
  keys.sort();
  let cells = 0;
  for (let n = 0; n < keys.length; n++) if (n === 0 || keys[n] !== keys[n - 1]) cells++;
  const cellRows = new Uint32Array(cells), cellCols = new Uint32Array(cells);
  const cellCounts = new Float64Array(cells);
  let t = -1;
  for (let n = 0; n < keys.length; n++) {
    if (n === 0 || keys[n] !== keys[n - 1]) {
      t++;
      cellRows[t] = Math.floor(keys[n] / cols);
      cellCols[t] = keys[n] - cellRows[t] * cols;
    }
    cellCounts[t]++;
  }
  return { rows, cols, cellRows, cellCols, cellCounts, rowSums, colSums, total: a.length };
}

/** Shannon entropy (natural log) of a labeling given its class sizes, as scikit-learn's `entropy`. */
function entropyOfSizes(sizes: Float64Array, total: number): number {
  if (total === 0) return 1;
  const nonzero = sizes.filter((s) => s > 0);
  if (nonzero.length <= 1) return 0;
  const logTotal = Math.log(total);
  let h = 0;
  for (const s of nonzero) h += (s / total) * (Math.log(s) - logTotal);
  return -h;
}

/** Shannon entropy (nats) of a labeling. */
export function entropy(labels: Int32Array): number {
  const { ids, classes } = denseLabels(labels);
  const sizes = new Float64Array(classes);
  for (const i of ids) sizes[i]++;
  return entropyOfSizes(sizes, labels.length);
}

/** Mutual information (nats) from a contingency table, as scikit-learn's `mutual_info_score`. */
export function mutualInfoOf(c: Contingency): number {
  if (c.rows === 1 || c.cols === 1) return 0;
  const n = c.total;
  const logN = Math.log(n);
  // log(pi.sum()) + log(pj.sum()) with both sums equal to n.
  const logSums = 2 * logN;
  let mi = 0;
  for (let t = 0; t < c.cellCounts.length; t++) {
    const nij = c.cellCounts[t];
    const pij = nij / n;
    const logOuter = -Math.log(c.rowSums[c.cellRows[t]] * c.colSums[c.cellCols[t]]) + logSums;
    let term = pij * (Math.log(nij) - logN) + pij * logOuter;
    if (Math.abs(term) < Number.EPSILON) term = 0;
    mi += term;
  }
  return Math.max(mi, 0);
}

/** Mutual information (nats) between two labelings. */
export function mutualInfo(a: Int32Array, b: Int32Array): number {
  return mutualInfoOf(contingency(a, b));
}

/** True in scikit-learn's "no split at all" limit case (both labelings one class, or both empty). */
function bothTrivial(c: Contingency): boolean {
  return (c.rows === 1 && c.cols === 1) || (c.rows === 0 && c.cols === 0);
}

/**
 * Normalized mutual information with arithmetic-mean normalisation: MI / ((H(a) + H(b)) / 2).
 * Symmetric; 1 for identical partitions (up to renaming); 0 when independent.
 */
export function nmi(a: Int32Array, b: Int32Array): number {
  const c = contingency(a, b);
  if (bothTrivial(c)) return 1;
  const mi = mutualInfoOf(c);
  if (mi === 0) return 0;
  const normalizer = Math.max(
    (entropyOfSizes(c.rowSums, c.total) + entropyOfSizes(c.colSums, c.total)) / 2,
    Number.EPSILON,
  );
  return mi / normalizer;
}

/**
 * Natural log of the gamma function for x > 0: Stirling's series after shifting x up to >= 15
 * (relative error near 1e-16, like the C library's lgamma).
 */
export function lgamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`lgamma needs x > 0, got ${x}`);
  let shift = 0;
  let prod = 1;
  while (x < 15) {
    prod *= x;
    x += 1;
    // Keep the product finite: fold it into the shift once it gets large.
    if (prod > 1e280) {
      shift += Math.log(prod);
      prod = 1;
    }
  }
  shift += Math.log(prod);
  const inv = 1 / x, inv2 = inv * inv;
  // Bernoulli terms B_2k / (2k (2k-1) x^(2k-1)), k = 1..7.
  const series = inv *
    (1 / 12 +
      inv2 * (-1 / 360 +
          inv2 * (1 / 1260 +
              inv2 * (-1 / 1680 + inv2 * (1 / 1188 + inv2 * (-691 / 360360 + inv2 * (1 / 156)))))));
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series - shift;
}

/** Distinct values of `sizes` (ascending) and how often each occurs. */
function sizeCounts(sizes: Float64Array): { values: number[]; counts: number[] } {
  const m = new Map<number, number>();
  for (const v of sizes) m.set(v, (m.get(v) ?? 0) + 1);
  const values = [...m.keys()].sort((x, y) => x - y);
  return { values, counts: values.map((v) => m.get(v)!) };
}

/**
 * Expected mutual information of two random labelings with the marginals of `c` (the hypergeometric model
 * of Vinh, Epps and Bailey 2010), the terms of scikit-learn's `expected_mutual_information`. The term of a
 * (row, column) pair depends only on their sizes, so it is computed once per distinct pair of sizes and
 * weighted by how many pairs share them (at most about sqrt(2N) distinct sizes per side).
 */
export function expectedMutualInfo(c: Contingency): number {
  if (c.rows === 1 || c.cols === 1) return 0;
  const N = c.total;
  // Table indexed by integer counts: lgamma(n + 1) for n in 0..N.
  const logN = Math.log(N);
  const lgam1 = new Float64Array(N + 1);
  for (let n = 0; n <= N; n++) lgam1[n] = lgamma(n + 1);
  const glnN = lgam1[N];
  const A = sizeCounts(c.rowSums), B = sizeCounts(c.colSums);
  let emi = 0;
  A.values.forEach((ai, x) => {
    B.values.forEach((bj, y) => {
      const start = Math.max(1, ai - N + bj);
      const end = Math.min(ai, bj);
      const base = lgam1[ai] + lgam1[bj] + lgam1[N - ai] + lgam1[N - bj] - glnN;
      const logA = Math.log(ai), logB = Math.log(bj);
      let term = 0;
      for (let nij = start; nij <= end; nij++) {
        const term2 = logN + Math.log(nij) - logA - logB;
        const gln = base - lgam1[nij] - lgam1[ai - nij] - lgam1[bj - nij] - lgam1[N - ai - bj + nij];
        term += (nij / N) * term2 * Math.exp(gln);
      }
      emi += A.counts[x] * B.counts[y] * term;
    });
  });
  return emi;
}

/**
 * Adjusted mutual information (arithmetic normalisation): (MI - E[MI]) / (mean(H(a), H(b)) - E[MI]).
 * 1 for identical partitions, about 0 for independent ones (can be negative).
 */
export function ami(a: Int32Array, b: Int32Array): number {
  const c = contingency(a, b);
  if (bothTrivial(c)) return 1;
  const mi = mutualInfoOf(c);
  const emi = expectedMutualInfo(c);
  const normalizer = (entropyOfSizes(c.rowSums, c.total) + entropyOfSizes(c.colSums, c.total)) / 2;
  let denominator = normalizer - emi;
  // As scikit-learn: keep the sign, avoid 0/0 when the expectation equals the maximum.
  denominator = denominator < 0
    ? Math.min(denominator, -Number.EPSILON)
    : Math.max(denominator, Number.EPSILON);
  return (mi - emi) / denominator;
}
