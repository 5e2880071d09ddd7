/**
 * Candidate lists built on the host from small readbacks, so builds stay deterministic (GPU atomics would
 * make the order, and which candidates overflow a list, depend on scheduling): reverse edges, traverse-add
 * targets, and relabelling between a permuted build order and the caller's order.
 * @module
 */
import { NO_VERTEX } from "./graph.ts";

/**
 * Reverse-edge candidates: for every edge v -> c of the given rows, v becomes a candidate of c. Each vertex
 * keeps its `slots` shortest incoming edges (ties by source id). Returns [n x slots] (NO_VERTEX padded).
 * `adjacency`/`lengths`/`degrees` hold rows `rowStart ..` of a padded graph with `maxDegree` slots.
 */
export function reverseCandidates(
  n: number,
  maxDegree: number,
  adjacency: Uint32Array,
  lengths: Float32Array,
  degrees: Uint32Array,
  rowStart: number,
  slots: number,
): Uint32Array {
  const out = new Uint32Array(n * slots).fill(NO_VERTEX);
  const best = new Float32Array(n * slots).fill(Infinity);
  const count = new Uint32Array(n);
  for (let i = 0; i < degrees.length; i++) {
    const v = rowStart + i;
    for (let e = 0; e < Math.min(degrees[i], maxDegree); e++) {
      const c = adjacency[i * maxDegree + e], d = lengths[i * maxDegree + e];
      if (c >= n) continue;
      // Sorted insert into c's list of at most `slots` (rows arrive in increasing v, so ties keep v order).
      const base = c * slots;
      let m = count[c];
      if (m === slots) {
        if (!(d < best[base + slots - 1])) continue;
        m--;
      }
      let j = m;
      while (j > 0 && d < best[base + j - 1]) {
        best[base + j] = best[base + j - 1];
        out[base + j] = out[base + j - 1];
        j--;
      }
      best[base + j] = d;
      out[base + j] = v;
      count[c] = m + 1;
    }
  }
  return out;
}

/**
 * Traverse-add targets: pair p = (s, t) whose greedy walk stopped at u = stops[p] (NO_VERTEX: it reached
 * t) offers t as a new edge of u. Each vertex takes its first `slots` targets in pair order. Returns
 * [n x slots] (NO_VERTEX padded) and the number of failed walks.
 */
export function traverseAddCandidates(
  n: number,
  pairs: Uint32Array,
  stops: Uint32Array,
  slots: number,
): { extra: Uint32Array; failures: number } {
  const extra = new Uint32Array(n * slots).fill(NO_VERTEX);
  const count = new Uint32Array(n);
  let failures = 0;
  for (let p = 0; p < stops.length; p++) {
    const u = stops[p];
    if (u >= n) continue;
    failures++;
    if (count[u] < slots) extra[u * slots + count[u]++] = pairs[2 * p + 1];
  }
  return { extra, failures };
}

/** Random (s, t) pairs with s != t, as [count x 2]. */
export function randomPairs(n: number, count: number, next: (n: number) => number): Uint32Array {
  const pairs = new Uint32Array(2 * count);
  if (n < 2) return pairs.fill(NO_VERTEX);
  for (let p = 0; p < count; p++) {
    const s = next(n);
    let t = next(n - 1);
    if (t >= s) t++;
    pairs[2 * p] = s;
    pairs[2 * p + 1] = t;
  }
  return pairs;
}

/**
 * Maps rows of vertex lists from build order to caller order: `perm[i]` is the caller's id of build vertex
 * i; list row i (of `width` ids in build ids) becomes row perm[i] in caller ids.
 */
export function unpermuteLists(lists: Uint32Array, width: number, perm: Uint32Array): Uint32Array {
  const out = new Uint32Array(lists.length);
  for (let i = 0; i < perm.length; i++) {
    const dst = perm[i] * width;
    for (let j = 0; j < width; j++) {
      const c = lists[i * width + j];
      out[dst + j] = c < perm.length ? perm[c] : NO_VERTEX;
    }
  }
  return out;
}
