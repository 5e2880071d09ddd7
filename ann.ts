/**
 * The FANNG index's internals and the index file formats: the graph in its two shapes (adjacency lists
 * and the padded GPU layout), its checks (validity, the occlusion rule, degree statistics), the `.fanng`
 * file (docs/formats.md), the GPU-side graph and vector blocks a {@link FanngIndex} holds, and the
 * retrieval artifact's encoder and decoder. Most users need only `FanngIndex` and `Retriever` from
 * `mod.ts`; docs/ann-build.md and docs/ann-search.md describe the build and the search.
 *
 * @example A graph through its file format
 * ```ts
 * import { decodeGraph, encodeGraph, type FanngGraph, validateGraph } from "./ann.ts";
 *
 * // Three points on a line; each vertex's edges sorted by length.
 * const graph: FanngGraph = {
 *   vertexCount: 3,
 *   dims: 1,
 *   maxDegree: 2,
 *   offsets: new Uint32Array([0, 1, 3, 4]),
 *   neighbours: new Uint32Array([1, 0, 2, 1]),
 *   lengths: new Float32Array([1, 1, 4, 4]),
 *   entries: new Uint32Array([0]),
 * };
 * validateGraph(graph);
 * const back = decodeGraph(encodeGraph(graph));
 * console.log(back.vertexCount, [...back.neighbours]); // 3 [1, 0, 2, 1]
 * ```
 * @module
 */

export {
  degreeStats,
  type FanngGraph,
  graphFromPadded,
  graphProblem,
  NO_VERTEX,
  type OcclusionViolation,
  occlusionViolations,
  paddedFromGraph,
  type PaddedGraph,
  type Projection,
  validateGraph,
} from "./lib/ann/graph.ts";
export { fitProjection, projectRows } from "./lib/ann/pca.ts";
export { type RerankOptions, runRerank } from "./lib/ann/rerank.ts";
export {
  decodeGraph,
  encodeGraph,
  FANNG_FORMAT_VERSION,
  FANNG_MAGIC,
  loadGraph,
  saveGraph,
} from "./lib/ann/file.ts";
export { defaultSearchShape, type SearchShape } from "./lib/ann/search.ts";
export { GpuGraph } from "./lib/ann/gpu_graph.ts";
export { type BlockLayout, VectorBlocks } from "./lib/ann/vectors.ts";
export {
  decodeRetrievalIndex,
  encodeRetrievalIndex,
  RETRIEVAL_FORMAT_VERSION,
  RETRIEVAL_MAGIC,
  type RetrievalContents,
  type RetrievalHeader,
  type RetrievalInput,
  type SectionEntry,
} from "./lib/retrieval/format.ts";
