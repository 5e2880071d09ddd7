/**
 * Building a retrieval index from a head and a gallery: the head embeds the gallery on the GPU (in row
 * blocks, reporting progress), a FANNG graph is built over the embeddings, and everything is encoded as
 * one artifact (lib/retrieval/format.ts). No file system here: `indexRun` (lib/retrieval/run_index.ts)
 * reads a run folder and writes the file.
 * @module
 */
import { FanngIndex } from "../ann/index.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { EmbeddingHead, type LayerParams, type ResolvedHeadConfig } from "../model/head.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { decodeRetrievalIndex, encodeRetrievalIndex, type RetrievalHeader } from "./format.ts";

/** The default graph search budget recorded in new indexes (distance evaluations per query). */
export const DEFAULT_SEARCH_BUDGET = 256;

/** What a gallery index is built from. */
export interface GalleryInput {
  /** The trained head (config and parameters). */
  head: { config: ResolvedHeadConfig; params: readonly LayerParams[] };
  /** Gallery features [N x inDim] (the head's inputs). */
  features: HostMatrix;
  /** [N] class labels. */
  labels: Int32Array;
  /** [N] sample identities. */
  ids: readonly string[];
  /** Gallery pixels [N x height x width x channels], when they should travel with the index. */
  pixels?: Uint8Array | null;
  /** Header fields that describe the data and the run. */
  header: Pick<
    RetrievalHeader,
    "features" | "gallery" | "data" | "identities" | "classes" | "pixels" | "source"
  >;
}

/** Build settings. */
export interface GalleryBuildOptions {
  /**
   * FANNG maximum out-degree (default 32).
   * @default 32
   */
  maxDegree?: number;
  /**
   * Seed of the graph construction (default 1).
   * @default 1
   */
  seed?: number;
  /**
   * Default search budget stored in the index (default {@link DEFAULT_SEARCH_BUDGET}).
   * @default {@link DEFAULT_SEARCH_BUDGET}
   */
  budget?: number;
  /**
   * Rows embedded per GPU submission (default 8,192).
   * @default 8,192
   */
  block?: number;
  /** Called as the gallery is embedded (rows done) and when each phase starts. */
  onProgress?: (event: { phase: "embed" | "graph" | "encode"; done: number; total: number }) => void;
}

/** The artifact's bytes and what building it took. */
export interface BuiltGallery {
  /** The index.bin bytes. */
  bytes: Uint8Array;
  /** Its header. */
  header: RetrievalHeader;
  /** Seconds spent embedding, building the graph and encoding. */
  seconds: { embed: number; graph: number; encode: number };
}

/** Embeds the gallery, builds its graph and encodes the index. */
export async function buildGalleryIndex(
  gpu: Gpu,
  input: GalleryInput,
  options: GalleryBuildOptions = {},
): Promise<BuiltGallery> {
  const { features } = input;
  const n = features.rows;
  const progress = options.onProgress ?? (() => {});
  const maxDegree = options.maxDegree ?? 32;
  const seed = options.seed ?? 1;
  const block = options.block ?? 8192;

  let t = performance.now();
  using head = EmbeddingHead.fromParameters(gpu, input.head.config, input.head.params);
  const dims = head.outDim;
  const embeddings = new Float32Array(n * dims);
  progress({ phase: "embed", done: 0, total: n });
  for (let r0 = 0; r0 < n; r0 += block) {
    const rows = Math.min(block, n - r0);
    using x = GpuBuffer.fromArray(
      gpu,
      features.data.subarray(r0 * features.cols, (r0 + rows) * features.cols),
      [rows, features.cols],
    );
    using e = await head.embedAll(x);
    embeddings.set(await e.read(), r0 * dims);
    progress({ phase: "embed", done: r0 + rows, total: n });
  }
  const embedSec = (performance.now() - t) / 1000;

  t = performance.now();
  progress({ phase: "graph", done: 0, total: n });
  const matrix = { rows: n, cols: dims, data: embeddings };
  using index = await FanngIndex.build(gpu, matrix, { maxDegree, seed });
  const graphBytes = index.toBytes();
  const graphSec = (performance.now() - t) / 1000;
  progress({ phase: "graph", done: n, total: n });

  t = performance.now();
  progress({ phase: "encode", done: 0, total: n });
  const bytes = encodeRetrievalIndex({
    header: {
      ...input.header,
      createdAt: new Date().toISOString(),
      head: {
        config: input.head.config,
        layers: input.head.params.map((p) => ({ inDim: p.inDim, outDim: p.outDim })),
      },
      graph: { maxDegree, seed, buildSeconds: Math.round(graphSec * 1000) / 1000 },
      search: { budget: options.budget ?? DEFAULT_SEARCH_BUDGET },
    },
    params: input.head.params,
    embeddings: matrix,
    labels: input.labels,
    ids: input.ids,
    graphBytes,
    pixels: input.pixels,
  });
  const encodeSec = (performance.now() - t) / 1000;
  progress({ phase: "encode", done: n, total: n });
  // Read back what was written: the file a search will open passes every check before it is saved.
  const { header } = decodeRetrievalIndex(bytes, "the new index");
  return { bytes, header, seconds: { embed: embedSec, graph: graphSec, encode: encodeSec } };
}
