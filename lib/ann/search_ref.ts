/**
 * Plain-TS reference of the batched FANNG search (kernels/fanng.wgsl `search`), step for step: the test
 * oracle for the GPU kernel and a no-GPU fallback for small inputs.
 *
 * Backtracking best-first search (method.md section 5): a priority queue of (distance, vertex, next edge)
 * ordered by (distance, vertex); each step takes the first entry with edges left, advances its edge index
 * and evaluates that edge's target unless already visited; every evaluated vertex enters the queue. It
 * stops after `budget` distance evaluations, when no entry has edges left, or (with `stopRatio` r > 0) when k
 * results are held and the first entry with edges left is farther than r times the k-th. Results are the k best
 * evaluated vertices that pass the filter; vertices that fail it are still walked through. (The kernel keeps
 * the queue as a binary heap; the order of expansions is the same, since (distance, vertex) keys are unique.)
 * @module
 */
import type { HostMatrix } from "../util/matrix.ts";
import { before, sqDistRows } from "./distance_ref.ts";
import { NO_VERTEX, type PaddedGraph } from "./graph.ts";

/** The filter of a search: keep results whose label differs from the query's and whose distance exceeds a radius. */
export interface SearchFilterRef {
  /** Base labels [N] (with `queryLabels`: keep results whose label differs from the query's). */
  labels?: Int32Array;
  /** Query labels [Q]. */
  queryLabels?: Int32Array;
  /** Per-query radius [Q]: keep results with d > minDistanceScale * minDistance[q]. */
  minDistance?: Float32Array;
  /** Multiplier of `minDistance` (default 1). */
  minDistanceScale?: number;
}

/** Parameters of {@link searchRef}, the same as the GPU kernel's. */
export interface SearchRefOptions {
  /** Distance evaluations per query. */
  budget: number;
  /** Entry vertices: shared (`entryStride` 0) or [Q x entryStride]. */
  entries: Uint32Array;
  entryStride: number;
  /** Self-search: query q is base vertex q (pushed at distance 0, never a result). Queries must be the base. */
  self?: boolean;
  filter?: SearchFilterRef;
  /** Early stop ratio (0 or absent: off); see SearchOptions.stopRatio in lib/ann/index.ts. */
  stopRatio?: number;
}

/** Host search results: [Q x k] ascending, NO_VERTEX / +Inf where missing. */
export interface SearchRefResult {
  indices: Uint32Array;
  distances: Float32Array;
  nearestAny: Uint32Array;
  nearestAnyDistance: Float32Array;
  /** Distance evaluations per query. */
  evaluations: Uint32Array;
}

/** Searches `graph` over `base` for every row of `queries`. */
export function searchRef(
  base: HostMatrix,
  graph: PaddedGraph,
  queries: HostMatrix,
  k: number,
  options: SearchRefOptions,
): SearchRefResult {
  const q = queries.rows, n = graph.vertexCount, r = graph.maxDegree;
  const { adjacency, degrees } = graph;
  const out: SearchRefResult = {
    indices: new Uint32Array(q * k).fill(NO_VERTEX),
    distances: new Float32Array(q * k).fill(Infinity),
    nearestAny: new Uint32Array(q).fill(NO_VERTEX),
    nearestAnyDistance: new Float32Array(q).fill(Infinity),
    evaluations: new Uint32Array(q),
  };
  const f = options.filter ?? {};
  const useLabels = !!(f.labels && f.queryLabels), useMin = !!f.minDistance;
  const scale = f.minDistanceScale ?? 1;
  const stop = Math.fround(options.stopRatio ?? 0);
  const EXHAUSTED = NO_VERTEX;
  const entryCount = options.entryStride > 0 ? options.entryStride : options.entries.length;
  for (let qi = 0; qi < q; qi++) {
    const self = options.self ? qi : NO_VERTEX;
    const qlabel = useLabels ? f.queryLabels![qi] : 0;
    const minD = useMin ? Math.fround(scale * f.minDistance![qi]) : 0;
    const visited = new Set<number>();
    // The queue: entries sorted by (distance, vertex); `head` is the first with edges left.
    const qd: number[] = [], qv: number[] = [], qe: number[] = [];
    let head = 0, evals = 0, anyD = Infinity, anyV = NO_VERTEX;
    const resD: number[] = [], resV: number[] = [];
    const enqueue = (d: number, v: number) => {
      if (degrees[v] === 0) return; // nothing to follow from it
      let i = qd.length;
      while (i > 0 && before(d, v, qd[i - 1], qv[i - 1])) i--;
      qd.splice(i, 0, d);
      qv.splice(i, 0, v);
      qe.splice(i, 0, 0);
      if (i <= head) head = i;
    };
    const consider = (d: number, v: number) => {
      if (v === self) return;
      if (before(d, v, anyD, anyV)) [anyD, anyV] = [d, v];
      if (useLabels && f.labels![v] === qlabel) return;
      if (useMin && !(d > minD)) return;
      let i = 0;
      while (i < resD.length && !before(d, v, resD[i], resV[i])) i++;
      if (i >= k) return;
      resD.splice(i, 0, d);
      resV.splice(i, 0, v);
      if (resD.length > k) {
        resD.pop();
        resV.pop();
      }
    };
    const evaluate = (v: number) => {
      const d = options.self ? sqDistRows(base, qi, base, v) : sqDistRows(queries, qi, base, v);
      evals++;
      consider(d, v);
      enqueue(d, v);
    };
    if (self < n) {
      visited.add(self);
      enqueue(0, self);
    }
    for (let e = 0; e < entryCount && evals < options.budget; e++) {
      const v = options.entries[qi * options.entryStride + e];
      if (v >= n || visited.has(v)) continue;
      visited.add(v);
      evaluate(v);
    }
    while (evals < options.budget) {
      while (head < qd.length && qe[head] === EXHAUSTED) head++;
      if (head >= qd.length) break;
      if (stop > 0 && resD.length === k && qd[head] > Math.fround(stop * resD[k - 1])) break;
      const v = qv[head], e = qe[head];
      const deg = Math.min(degrees[v], r);
      qe[head] = e + 1 >= deg ? EXHAUSTED : e + 1;
      const c = adjacency[v * r + e];
      if (c >= n || visited.has(c)) continue;
      visited.add(c);
      evaluate(c);
    }
    for (let i = 0; i < resD.length; i++) {
      out.indices[qi * k + i] = resV[i];
      out.distances[qi * k + i] = resD[i];
    }
    out.nearestAny[qi] = anyV;
    out.nearestAnyDistance[qi] = anyD;
    out.evaluations[qi] = evals;
  }
  return out;
}
