/**
 * The FANNG graph: one vertex per point, directed edges in CSR form, each vertex's edges sorted by length
 * (squared L2, ties by target id), at most `maxDegree` per vertex. The GPU keeps the same graph padded to
 * `maxDegree` slots per vertex ({@link PaddedGraph}); this module converts between the two and checks the
 * structure and the occlusion rule (docs/method.md section 5) on the host.
 *
 * Occlusion rule: edge v -> c is occluded by edge v -> u when d(v,u) < d(v,c) and d(u,c) < d(v,c). A built
 * graph never keeps an edge that a shorter kept edge of the same vertex occludes.
 * @module
 */
import { UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { sqDistRows } from "./distance_ref.ts";

/** Marks an empty slot in padded adjacency rows and a missing result. */
export const NO_VERTEX = 0xffffffff;

/** A directed graph in CSR form with edges sorted by length. */
export interface FanngGraph {
  /** Number of vertices (points). */
  readonly vertexCount: number;
  /** Dimension of the vectors the graph was built on. */
  readonly dims: number;
  /** Maximum out-degree. */
  readonly maxDegree: number;
  /** [vertexCount + 1]: vertex v's edges are neighbours[offsets[v] .. offsets[v + 1]). */
  readonly offsets: Uint32Array;
  /** Edge targets, each vertex's sorted by (length, id). */
  readonly neighbours: Uint32Array;
  /** Squared edge lengths, parallel to `neighbours`. */
  readonly lengths: Float32Array;
  /** Entry vertices for searches of outside queries (`entryPoints` "nearest" and "fixed"). */
  readonly entries: Uint32Array;
  /**
   * The PCA projection the graph was built in (lib/ann/pca.ts), when it was: edge lengths are then squared
   * distances between projected rows, and unfiltered searches walk the projection (docs/ann-search.md).
   */
  readonly projection?: Projection;
}

/**
 * A linear map of D-dimensional rows onto `dims` principal directions: y = x basis, `basis` [D x dims]
 * row-major with orthonormal columns (no centring: distances between projected rows do not depend on it).
 */
export interface Projection {
  /** Dimension of the projected rows. */
  readonly dims: number;
  /** [D x dims] row-major. */
  readonly basis: Float32Array;
}

/** The GPU form: every vertex has `maxDegree` slots; unused ones hold NO_VERTEX and +Inf. */
export interface PaddedGraph {
  /** Number of vertices. */
  readonly vertexCount: number;
  /** Slots per vertex (the maximum out-degree). */
  readonly maxDegree: number;
  /** [vertexCount x maxDegree] targets. */
  readonly adjacency: Uint32Array;
  /** [vertexCount x maxDegree] squared lengths. */
  readonly lengths: Float32Array;
  /** [vertexCount] out-degrees. */
  readonly degrees: Uint32Array;
}

/** Out-degree of vertex `v`. */
export function degreeOf(graph: FanngGraph, v: number): number {
  return graph.offsets[v + 1] - graph.offsets[v];
}

/** Compacts a padded graph into CSR. */
export function graphFromPadded(
  padded: PaddedGraph,
  dims: number,
  entries: Uint32Array,
  projection?: Projection,
): FanngGraph {
  const { vertexCount: n, maxDegree: r, adjacency, lengths, degrees } = padded;
  const offsets = new Uint32Array(n + 1);
  for (let v = 0; v < n; v++) offsets[v + 1] = offsets[v] + Math.min(degrees[v], r);
  const edges = offsets[n];
  const neighbours = new Uint32Array(edges), len = new Float32Array(edges);
  for (let v = 0; v < n; v++) {
    const deg = offsets[v + 1] - offsets[v];
    neighbours.set(adjacency.subarray(v * r, v * r + deg), offsets[v]);
    len.set(lengths.subarray(v * r, v * r + deg), offsets[v]);
  }
  return {
    vertexCount: n,
    dims,
    maxDegree: r,
    offsets,
    neighbours,
    lengths: len,
    entries,
    ...(projection ? { projection } : {}),
  };
}

/** Expands a CSR graph to the padded GPU form. */
export function paddedFromGraph(graph: FanngGraph): PaddedGraph {
  const { vertexCount: n, maxDegree: r } = graph;
  const adjacency = new Uint32Array(n * r).fill(NO_VERTEX);
  const lengths = new Float32Array(n * r).fill(Infinity);
  const degrees = new Uint32Array(n);
  for (let v = 0; v < n; v++) {
    const a = graph.offsets[v], deg = graph.offsets[v + 1] - a;
    degrees[v] = deg;
    adjacency.set(graph.neighbours.subarray(a, a + deg), v * r);
    lengths.set(graph.lengths.subarray(a, a + deg), v * r);
  }
  return { vertexCount: n, maxDegree: r, adjacency, lengths, degrees };
}

/**
 * The first structural problem of a graph, or undefined when there is none: offsets must start at 0, never
 * decrease and end at the edge count; degrees at most maxDegree; targets in range, not the vertex itself,
 * not repeated within a vertex; each vertex's edges sorted by (length, id); entries in range; a projection
 * of finite values shaped [dims x p].
 */
export function graphProblem(graph: FanngGraph): string | undefined {
  const { vertexCount: n, maxDegree, offsets, neighbours, lengths, entries } = graph;
  if (offsets.length !== n + 1) return `offsets has ${offsets.length} entries, expected ${n + 1}`;
  if (offsets[0] !== 0) return `offsets[0] is ${offsets[0]}, expected 0`;
  if (offsets[n] !== neighbours.length) {
    return `offsets end at ${offsets[n]} but there are ${neighbours.length} edges`;
  }
  if (lengths.length !== neighbours.length) {
    return `${lengths.length} edge lengths for ${neighbours.length} edges`;
  }
  const seen = new Set<number>();
  for (let v = 0; v < n; v++) {
    const a = offsets[v], b = offsets[v + 1];
    if (b < a) return `offsets decrease at vertex ${v}`;
    if (b - a > maxDegree) return `vertex ${v} has ${b - a} edges, over the maximum degree ${maxDegree}`;
    seen.clear();
    for (let e = a; e < b; e++) {
      const c = neighbours[e];
      if (c >= n) return `vertex ${v} has an edge to ${c}, outside 0..${n - 1}`;
      if (c === v) return `vertex ${v} has an edge to itself`;
      if (seen.has(c)) return `vertex ${v} has two edges to ${c}`;
      seen.add(c);
      if (!(lengths[e] >= 0)) return `vertex ${v} has an edge of length ${lengths[e]}`;
      if (
        e > a && (lengths[e] < lengths[e - 1] || (lengths[e] === lengths[e - 1] && c < neighbours[e - 1]))
      ) {
        return `vertex ${v}'s edges are not sorted by length`;
      }
    }
  }
  for (const e of entries) if (e >= n) return `entry vertex ${e} is outside 0..${n - 1}`;
  return graph.projection ? projectionProblem(graph.projection, graph.dims) : undefined;
}

/** The first problem of `projection` as the map of `inDims`-dimensional rows, or undefined. */
function projectionProblem(projection: Projection, inDims: number): string | undefined {
  const { dims, basis } = projection;
  if (!Number.isInteger(dims) || dims < 1 || dims > inDims) {
    return `its projection has ${dims} dimensions (expected 1..${inDims})`;
  }
  if (basis.length !== inDims * dims) {
    return `its projection basis has ${basis.length} values, expected ${inDims} x ${dims}`;
  }
  for (let i = 0; i < basis.length; i++) {
    if (!Number.isFinite(basis[i])) return `its projection basis has a non-finite value at ${i}`;
  }
  return undefined;
}

/** Throws a UserError naming the first structural problem of `graph` (see {@link graphProblem}). */
export function validateGraph(graph: FanngGraph, what = "FANNG graph"): void {
  const problem = graphProblem(graph);
  if (problem) {
    throw new UserError(
      `${what} is invalid: ${problem}. Rebuild the index (FanngIndex.build) and save it again.`,
    );
  }
}

/** An edge kept although a shorter kept edge of the same vertex occludes it. */
export interface OcclusionViolation {
  /** The vertex whose edges break the rule. */
  vertex: number;
  /** The occluded edge's target. */
  occluded: number;
  /** The shorter edge's target that occludes it. */
  by: number;
}

/**
 * Lists the violations of the occlusion rule in `graph` over `data` (at most `limit`), computing distances
 * on the host in f64. The GPU decides in f32, so comparisons allow a relative `tolerance`: an edge counts
 * as occluded only when d(v,u) and d(u,c) are both below d(v,c) by more than it. Stored lengths are checked
 * against the data too; a mismatch is reported with `by === occluded`.
 */
export function occlusionViolations(
  graph: FanngGraph,
  data: HostMatrix,
  { limit = 10, tolerance = 1e-5 }: { limit?: number; tolerance?: number } = {},
): OcclusionViolation[] {
  const out: OcclusionViolation[] = [];
  const rel = (a: number, b: number) => Math.abs(a - b) <= 10 * tolerance * Math.max(1, Math.abs(b));
  for (let v = 0; v < graph.vertexCount && out.length < limit; v++) {
    const a = graph.offsets[v], b = graph.offsets[v + 1];
    for (let j = a; j < b && out.length < limit; j++) {
      const c = graph.neighbours[j];
      const dvc = sqDistRows(data, v, data, c);
      if (!rel(graph.lengths[j], dvc)) {
        out.push({ vertex: v, occluded: c, by: c });
        continue;
      }
      for (let i = a; i < j; i++) {
        const u = graph.neighbours[i];
        const below = dvc - tolerance * Math.max(1, dvc);
        if (sqDistRows(data, v, data, u) < below && sqDistRows(data, u, data, c) < below) {
          out.push({ vertex: v, occluded: c, by: u });
          break;
        }
      }
    }
  }
  return out;
}

/** Degree statistics of a graph. */
export function degreeStats(graph: FanngGraph): { mean: number; min: number; max: number; zero: number } {
  let min = Infinity, max = 0, zero = 0;
  for (let v = 0; v < graph.vertexCount; v++) {
    const d = degreeOf(graph, v);
    min = Math.min(min, d);
    max = Math.max(max, d);
    if (d === 0) zero++;
  }
  const n = graph.vertexCount;
  return { mean: n ? graph.neighbours.length / n : 0, min: n ? min : 0, max, zero };
}
