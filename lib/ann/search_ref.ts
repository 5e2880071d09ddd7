/**
 * Plain-TS reference of the batched FANNG graph search (kernels/fanng_search.wgsl `search`), iteration for
 * iteration: the test oracle of the GPU kernel and a no-GPU fallback for small inputs. docs/ann-search.md
 * describes the algorithm; in short (docs/method.md section 5, with hnswlib's stopping rule):
 *
 * Per query: a visited set, a min-queue of candidates keyed by (distance, vertex), and the results, the
 * `max(ef, k)` best evaluated vertices that pass the filter (ef 0: k). Self-search starts with the query's own
 * vertex queued at distance 0 (never evaluated, never a result). Each iteration, while fewer than `budget`
 * distances have been evaluated:
 *   1. bound = the key of the max(ef, k)-th result when ef > 0 and that many results are held, else +Inf;
 *      a vertex's key is its distance d, or with a radius filter r its distance from the sphere |d - r|
 *      (results lie beyond r, so the walk spreads from the sphere, inward and outward);
 *   2. sources: the next `width * R` entry vertices while entries are left (R = the graph's maximum degree);
 *      otherwise stop if the queue is empty or (ef > 0) its first candidate's key is above the bound, else
 *      take up to `width` candidates with the smallest keys out of the queue (each no farther than the bound);
 *   3. every source edge (in order) to a vertex not yet visited: mark it visited and evaluate its distance
 *      (a NaN distance counts as +Inf, and so does a NaN radius);
 *   4. merge the new vertices: nearest-any (any label, never the query itself) keeps the closest; those that
 *      pass the filter compete for the results; those whose key is below the bound join the queue (the key
 *      of a vertex that fails the label filter multiplied by the label penalty, when one is given).
 * Step 4 reads the bound of step 1 only, so its outcome does not depend on the order of the new vertices
 * (the GPU merges them in any order). The last iteration may pass the budget by up to width * R - 1.
 * Ties are broken by vertex id everywhere: every list is ordered by (distance, vertex).
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
  /** Per-query radius [Q]: keep results with d > minDistanceScale * minDistance[q] (f32 product). */
  minDistance?: Float32Array;
  /** Multiplier of `minDistance` (default 1). */
  minDistanceScale?: number;
  /** With labels: queue keys of vertices that fail the label filter are multiplied by this (default 1). */
  labelPenalty?: number;
}

/** Parameters of {@link searchRef}, the same as the GPU kernel's. */
export interface SearchRefOptions {
  /** No iteration starts once this many distances have been evaluated. */
  budget: number;
  /**
   * hnswlib's ef: the natural stop (0 = off: the budget or an empty queue ends the search).
   * @default 0
   */
  ef?: number;
  /**
   * Candidates expanded per iteration (default 1).
   * @default 1
   */
  width?: number;
  /** Entry vertices: shared (`entryStride` 0) or [Q x entryStride]. */
  entries: Uint32Array;
  /** Entries per query in `entries` (0: every query shares them). */
  entryStride: number;
  /**
   * Self-search: query q is base vertex q (queued at distance 0, never a result). Queries must be the base.
   * @default false
   */
  self?: boolean;
  /**
   * Which vertices may be results.
   * @default none: every vertex may be a result
   */
  filter?: SearchFilterRef;
}

/** Host search results: [Q x k] ascending, NO_VERTEX / +Inf where missing. */
export interface SearchRefResult {
  /** [Q x k] result vertices, ascending; NO_VERTEX where missing. */
  indices: Uint32Array;
  /** [Q x k] squared distances; +Inf where missing. */
  distances: Float32Array;
  /** [Q] nearest vertex of any label found. */
  nearestAny: Uint32Array;
  /** [Q] its squared distance. */
  nearestAnyDistance: Float32Array;
  /** Distance evaluations per query. */
  evaluations: Uint32Array;
}

/** A binary min-heap of (distance, vertex) under {@link before}. */
class MinQueue {
  readonly d: number[] = [];
  readonly v: number[] = [];

  get size(): number {
    return this.d.length;
  }

  push(d: number, v: number): void {
    let i = this.d.length;
    this.d.push(d);
    this.v.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(d, v, this.d[p], this.v[p])) break;
      this.d[i] = this.d[p];
      this.v[i] = this.v[p];
      i = p;
    }
    this.d[i] = d;
    this.v[i] = v;
  }

  pop(): number {
    const top = this.v[0];
    const d = this.d.pop()!, v = this.v.pop()!;
    const n = this.d.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(this.d[c + 1], this.v[c + 1], this.d[c], this.v[c])) c++;
      if (!before(this.d[c], this.v[c], d, v)) break;
      this.d[i] = this.d[c];
      this.v[i] = this.v[c];
      i = c;
    }
    this.d[i] = d;
    this.v[i] = v;
    return top;
  }
}

const nanToInf = (x: number) => (Number.isNaN(x) ? Infinity : x);

/** Squared distance as the kernel defines it: NaN counts as +Inf. */
function searchDistance(a: HostMatrix, i: number, b: HostMatrix, j: number): number {
  return nanToInf(sqDistRows(a, i, b, j));
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
  const scale = Math.fround(f.minDistanceScale ?? 1);
  const ef = options.ef ?? 0, width = options.width ?? 1;
  const keep = ef > 0 ? Math.max(ef, k) : k;
  const slots = width * r;
  const entryCount = options.entryStride > 0 ? options.entryStride : options.entries.length;
  for (let qi = 0; qi < q; qi++) {
    const self = options.self ? qi : NO_VERTEX;
    const qlabel = useLabels ? f.queryLabels![qi] : 0;
    const minD = useMin ? nanToInf(Math.fround(scale * f.minDistance![qi])) : 0;
    // The queue's key: with a radius filter, the distance from the exclusion sphere |d - r| (f32; NaN from
    // r = +Inf as +Inf), else d.
    const ringKey = (d: number) => useMin ? nanToInf(Math.fround(Math.abs(Math.fround(d - minD)))) : d;
    const penalty = Math.fround(f.labelPenalty ?? 1), penalised = useLabels && penalty !== 1;
    const visited = new Set<number>();
    const queue = new MinQueue();
    const resD: number[] = [], resV: number[] = [];
    let evals = 0, anyD = Infinity, anyV = NO_VERTEX, nextEntry = 0;
    if (self < n) {
      visited.add(self);
      queue.push(0, self);
    }
    const sources: number[] = [];
    while (evals < options.budget) {
      const bound = ef > 0 && resD.length >= keep ? ringKey(resD[keep - 1]) : Infinity;
      sources.length = 0;
      if (nextEntry < entryCount) {
        const end = Math.min(entryCount, nextEntry + slots);
        for (; nextEntry < end; nextEntry++) {
          sources.push(options.entries[qi * options.entryStride + nextEntry]);
        }
      } else {
        if (queue.size === 0 || queue.d[0] > bound) break;
        while (sources.length < slots && queue.size > 0 && !(queue.d[0] > bound)) {
          const v = queue.pop();
          for (let e = 0; e < r; e++) sources.push(e < degrees[v] ? adjacency[v * r + e] : NO_VERTEX);
        }
      }
      for (const c of sources) {
        if (c >= n || visited.has(c)) continue;
        visited.add(c);
        const d = options.self ? searchDistance(base, qi, base, c) : searchDistance(queries, qi, base, c);
        evals++;
        if (before(d, c, anyD, anyV)) [anyD, anyV] = [d, c];
        const labelOk = !useLabels || f.labels![c] !== qlabel;
        if (labelOk && (!useMin || d > minD)) {
          let i = resD.length;
          while (i > 0 && before(d, c, resD[i - 1], resV[i - 1])) i--;
          if (i < keep) {
            resD.splice(i, 0, d);
            resV.splice(i, 0, c);
            if (resD.length > keep) {
              resD.pop();
              resV.pop();
            }
          }
        }
        const key = labelOk || !penalised ? ringKey(d) : nanToInf(Math.fround(ringKey(d) * penalty));
        if (key < bound) queue.push(key, c);
      }
    }
    for (let i = 0; i < Math.min(k, resD.length); i++) {
      out.indices[qi * k + i] = resV[i];
      out.distances[qi * k + i] = resD[i];
    }
    out.nearestAny[qi] = anyV;
    out.nearestAnyDistance[qi] = anyD;
    out.evaluations[qi] = evals;
  }
  return out;
}

/**
 * Reference of the scoring ceiling (kernels/fanng_search.wgsl `ceiling`): query row q walks `steps` vertices
 * from vertex q mod N (next: edge step mod degree; stops at a vertex without edges), scoring every neighbour
 * of each; lane l of a team of `lanes` scores edges l, l + lanes, ... and sums its distances in f32. Returns
 * the sums [queries x lanes] and the distances computed per query.
 */
export function ceilingRef(
  base: HostMatrix,
  graph: PaddedGraph,
  queries: HostMatrix,
  steps: number,
  lanes: number,
): { sums: Float32Array; evaluations: Uint32Array } {
  const n = graph.vertexCount, r = graph.maxDegree;
  const sums = new Float32Array(queries.rows * lanes), evaluations = new Uint32Array(queries.rows);
  for (let q = 0; q < queries.rows && n > 0; q++) {
    let v = q % n;
    for (let s = 0; s < steps; s++) {
      const deg = Math.min(graph.degrees[v], r);
      if (deg === 0) break;
      for (let e = 0; e < deg; e++) {
        const i = q * lanes + (e % lanes);
        sums[i] = Math.fround(sums[i] + searchDistance(queries, q, base, graph.adjacency[v * r + e]));
      }
      evaluations[q] += deg;
      v = graph.adjacency[v * r + (s % deg)];
    }
  }
  return { sums, evaluations };
}

/**
 * Reference of kernels/fanng_search.wgsl `nearest_edge`: for vertices start .. start + count - 1, the first
 * edge (NO_VERTEX when the vertex has none, or it is out of range) and its squared distance (+Inf), and 1
 * evaluation where there was an edge.
 */
export function nearestEdgeRef(
  base: HostMatrix,
  graph: PaddedGraph,
  start = 0,
  count = graph.vertexCount - start,
): { nearestAny: Uint32Array; nearestAnyDistance: Float32Array; evaluations: Uint32Array } {
  const n = graph.vertexCount, r = graph.maxDegree;
  const nearestAny = new Uint32Array(count).fill(NO_VERTEX);
  const nearestAnyDistance = new Float32Array(count).fill(Infinity);
  const evaluations = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const v = start + i;
    if (Math.min(graph.degrees[v], r) === 0) continue;
    const c = graph.adjacency[v * r];
    if (c >= n) continue;
    nearestAny[i] = c;
    nearestAnyDistance[i] = searchDistance(base, v, base, c);
    evaluations[i] = 1;
  }
  return { nearestAny, nearestAnyDistance, evaluations };
}

/**
 * Reference of kernels/fanng_search.wgsl `rerank`: for each query (row i of `queries`, or base row
 * selfStart + i when `queries` is "self"), the k nearest of its candidates (row i of [Q x cands]
 * `candidates`; NO_VERTEX and ids >= N skipped) by squared distance in `base`, ascending by (distance,
 * vertex), NO_VERTEX / +Inf where fewer; nearest-any is the first result, evaluations the candidates scored.
 */
export function rerankRef(
  base: HostMatrix,
  queries: HostMatrix | "self",
  candidates: Uint32Array,
  cands: number,
  k: number,
  selfStart = 0,
): SearchRefResult {
  const q = candidates.length / cands, n = base.rows;
  const qm = queries === "self" ? base : queries, offset = queries === "self" ? selfStart : 0;
  const indices = new Uint32Array(q * k).fill(NO_VERTEX);
  const distances = new Float32Array(q * k).fill(Infinity);
  const evaluations = new Uint32Array(q);
  for (let i = 0; i < q; i++) {
    const scored: [number, number][] = [];
    for (let c = 0; c < cands; c++) {
      const v = candidates[i * cands + c];
      if (v >= n) continue;
      scored.push([searchDistance(qm, i + offset, base, v), v]);
    }
    evaluations[i] = scored.length;
    scored.sort((a, b) => (before(a[0], a[1], b[0], b[1]) ? -1 : before(b[0], b[1], a[0], a[1]) ? 1 : 0));
    scored.slice(0, k).forEach(([d, v], j) => {
      indices[i * k + j] = v;
      distances[i * k + j] = d;
    });
  }
  const nearestAny = Uint32Array.from({ length: q }, (_, i) => indices[i * k]);
  const nearestAnyDistance = Float32Array.from({ length: q }, (_, i) => distances[i * k]);
  return { indices, distances, nearestAny, nearestAnyDistance, evaluations };
}
