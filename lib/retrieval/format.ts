/**
 * The retrieval index artifact (`index.bin`, written by `deno task index`): everything a search needs in
 * one self-describing, versioned, checksummed file: the embedding head, the gallery's embeddings, its
 * FANNG graph, labels, sample identities and, optionally, the gallery's pixels. Pure bytes in, bytes out:
 * no file system, so the same code reads it in Deno and in a browser.
 *
 * Layout (little-endian):
 * ```
 * offset 0       8 bytes  magic "DMLRETRV"
 *        8       u32      format version (1)
 *        12      u32      H = byte length of the JSON header (padded with spaces so 16 + H is a multiple of 8)
 *        16      H bytes  JSON header, UTF-8 (RetrievalHeader: what the index is, where it came from, and
 *                         `sections`: [{name, offset, bytes}] in file order)
 *        16 + H  sections, each starting at a multiple of 8 (zero padding between them):
 *                  head        f32  per layer: weight [inDim x outDim] row-major, then bias [outDim]
 *                  embeddings  f32  [N x D] gallery embeddings (the head's output)
 *                  labels      i32  [N]
 *                  ids         UTF-8 text, the N sample identities joined by "\n"
 *                  graph       the FANNG graph in its own file format (lib/ann/file.ts, encodeGraph)
 *                  pixels      u8   [N x height x width x channels] (optional)
 *        end - 4 u32      CRC-32 (IEEE) of every byte before it
 * ```
 * Decoding checks the magic, the version, the section table (in bounds, in order, aligned, nothing
 * after the last but the checksum), the checksum, every section's size against the header, the head's
 * layer shapes against its config and the embeddings, and the graph (decodeGraph) against N and D. Each
 * failure is one UserError naming the file and what to do.
 * @module
 */
import { UserError } from "../errors.ts";
import { decodeGraph } from "../ann/file.ts";
import type { FanngGraph } from "../ann/graph.ts";
import { crc32 } from "../model/checkpoint.ts";
import {
  headLayerShapes,
  type LayerParams,
  type ResolvedHeadConfig,
  resolveHeadConfig,
} from "../model/head.ts";
import type { PreprocessSpec } from "../backbone/preprocess.ts";
import type { DatasetConfig } from "../config.ts";
import type { HostMatrix } from "../util/matrix.ts";

/** The file's magic bytes. */
export const RETRIEVAL_MAGIC = "DMLRETRV";
/** The format version this code writes and reads. */
export const RETRIEVAL_FORMAT_VERSION = 1;
/** The artifact's file name inside an index folder. */
export const RETRIEVAL_FILE = "index.bin";

/** What the head's input is, so queries can be made the way the gallery was. */
export type FeatureSource =
  | {
    /** Raw pixels scaled to [0, 1] (IDX data sets such as Fashion-MNIST): value = byte / 255. */
    kind: "pixels";
    width: number;
    height: number;
    channels: 1 | 3;
  }
  | {
    /** Backbone features from a feature cache (`deno task features`). */
    kind: "backbone";
    /** sha256 of the ONNX model file and the exposed output tensor. */
    model: { sha256: string; output: string };
    preprocess: PreprocessSpec;
    featureDim: number;
    /** The feature cache folder the run trained on. */
    cache: string;
  };

/** One section of the file. */
export interface SectionEntry {
  /** Section name (head, embeddings, labels, ids, graph, pixels). */
  name: string;
  /** Byte offset from the start of the file (a multiple of 8). */
  offset: number;
  /** Length in bytes. */
  bytes: number;
}

/** The JSON header. */
export interface RetrievalHeader {
  /** Always "dml-retrieval-index". */
  format: "dml-retrieval-index";
  /** Format version (1). */
  version: number;
  /** ISO time of writing. */
  createdAt: string;
  /** Gallery items N. */
  count: number;
  /** Embedding dimension D (the head's output). */
  dims: number;
  /** The head's config and layer shapes. */
  head: { config: ResolvedHeadConfig; layers: { inDim: number; outDim: number }[] };
  /** What the gallery's features are (pixels, or a feature cache's backbone). */
  features: FeatureSource;
  /** Which split(s) of the run the gallery holds (train items first for "all"), and the data set's name. */
  gallery: { split: "train" | "test" | "all"; dataset: string };
  /** The run's data as its config names it (queries by test row load it again). */
  data: { dataset: DatasetConfig; trainLimit: number; testLimit: number };
  /**
   * What an id is: `idx-row` ("<train|t10k>/<row>": the row of the IDX file) or `path` (an image path
   * relative to `root`).
   */
  identities: { kind: "idx-row" } | { kind: "path"; root: string };
  /** Class names by label, when known. */
  classes: [number, string][] | null;
  /** The FANNG graph's build settings and time. */
  graph: { maxDegree: number; seed: number; buildSeconds: number };
  /** The default search budget (distance evaluations per query). */
  search: { budget: number };
  /** Gallery pixels (section `pixels`), for thumbnails and raw-pixel queries. */
  pixels: { width: number; height: number; channels: 1 | 3 } | null;
  /** The run the index was made from. */
  source: {
    run: string;
    epochs: number | null;
    /** The run's final test metrics (Recall@K by K, NMI), when it recorded them. */
    recall: Record<string, number> | null;
    adapter: string;
  };
  /** The sections in file order. */
  sections: SectionEntry[];
}

/** Everything the file holds, decoded. */
export interface RetrievalContents {
  /** The JSON header. */
  header: RetrievalHeader;
  /** The head's parameters. */
  params: LayerParams[];
  /** [N x D] gallery embeddings. */
  embeddings: HostMatrix;
  /** [N] labels. */
  labels: Int32Array;
  /** [N] sample identities. */
  ids: string[];
  /** The FANNG graph over the embeddings. */
  graph: FanngGraph;
  /** Gallery pixels, when stored. */
  pixels: Uint8Array | null;
}

/** What {@link encodeRetrievalIndex} needs: the header without its section table, and the data. */
export interface RetrievalInput {
  /** The header's descriptive fields. */
  header: Omit<RetrievalHeader, "sections" | "format" | "version" | "count" | "dims">;
  /** The head's parameters. */
  params: readonly LayerParams[];
  /** [N x D] gallery embeddings. */
  embeddings: HostMatrix;
  /** [N] labels. */
  labels: Int32Array;
  /** [N] sample identities. */
  ids: readonly string[];
  /** The graph in its file format (`FanngIndex.toBytes()`). */
  graphBytes: Uint8Array;
  /** Gallery pixels to store, if any. */
  pixels?: Uint8Array | null;
}

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const align8 = (n: number) => Math.ceil(n / 8) * 8;

function bytesOf(a: Float32Array | Int32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Serialises an index (the inverse of {@link decodeRetrievalIndex}). */
export function encodeRetrievalIndex(input: RetrievalInput): Uint8Array {
  if (!LE) throw new Error("retrieval index files are written on little-endian hosts only");
  const { embeddings, labels, ids, params } = input;
  if (ids.some((id) => id.includes("\n"))) throw new UserError("a sample id contains a line break");
  const headValues = new Float32Array(params.reduce((s, p) => s + p.weight.length + p.bias.length, 0));
  let o = 0;
  for (const p of params) {
    headValues.set(p.weight, o);
    headValues.set(p.bias, o + p.weight.length);
    o += p.weight.length + p.bias.length;
  }
  const parts: [string, Uint8Array][] = [
    ["head", bytesOf(headValues)],
    ["embeddings", bytesOf(embeddings.data)],
    ["labels", bytesOf(labels)],
    ["ids", new TextEncoder().encode(ids.join("\n"))],
    ["graph", input.graphBytes],
  ];
  if (input.pixels) parts.push(["pixels", input.pixels]);
  const header: RetrievalHeader = {
    format: "dml-retrieval-index",
    version: RETRIEVAL_FORMAT_VERSION,
    ...input.header,
    count: embeddings.rows,
    dims: embeddings.cols,
    sections: [],
  };
  // The header's length depends on the offsets it lists: lay out for a guessed length until it holds.
  let headerBytes = new Uint8Array();
  for (let guess = 0, pass = 0; pass < 16; pass++) {
    let offset = 16 + guess;
    header.sections = parts.map(([name, b]) => {
      const entry = { name, offset, bytes: b.length };
      offset = align8(offset + b.length);
      return entry;
    });
    let text = JSON.stringify(header);
    const raw = new TextEncoder().encode(text).length;
    text += " ".repeat(align8(16 + raw) - 16 - raw);
    headerBytes = new TextEncoder().encode(text);
    if (headerBytes.length === guess) break;
    guess = headerBytes.length;
  }
  if (header.sections[0].offset !== 16 + headerBytes.length) {
    throw new Error("index header layout did not settle");
  }
  const last = header.sections.at(-1)!;
  const total = last.offset + last.bytes + 4;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(RETRIEVAL_MAGIC), 0);
  view.setUint32(8, RETRIEVAL_FORMAT_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  out.set(headerBytes, 16);
  parts.forEach(([, b], i) => out.set(b, header.sections[i].offset));
  view.setUint32(total - 4, crc32(out.subarray(0, total - 4)), true);
  return out;
}

/** Parses and checks an index file's bytes; `source` (a path or URL) names it in every error. */
export function decodeRetrievalIndex(bytes: Uint8Array, source = "retrieval index"): RetrievalContents {
  if (!LE) throw new Error("retrieval index files are read on little-endian hosts only");
  const fail = (why: string): never => {
    throw new UserError(
      `${source} is not a usable retrieval index: ${why}. Rebuild it with 'deno task index <run-dir>'.`,
    );
  };
  if (bytes.length < 20) fail(`it has ${bytes.length} bytes, fewer than the 20-byte frame`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== RETRIEVAL_MAGIC) fail(`bad magic ${JSON.stringify(magic)} (expected ${RETRIEVAL_MAGIC})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== RETRIEVAL_FORMAT_VERSION) {
    fail(
      `format version ${version} is not supported (this toolkit reads version ${RETRIEVAL_FORMAT_VERSION})`,
    );
  }
  const h = view.getUint32(12, true);
  if (16 + h + 4 > bytes.length) {
    fail(`truncated: ${bytes.length} bytes, the header alone announces ${16 + h + 4}`);
  }
  let header: RetrievalHeader;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(16, 16 + h)));
  } catch {
    return fail("its header is not valid JSON (the file is damaged)");
  }
  if (header?.format !== "dml-retrieval-index" || !Array.isArray(header.sections)) {
    fail("its header does not describe a retrieval index");
  }
  // The section table: in order, aligned, inside the file, the checksum right after the last one.
  let end = 16 + h;
  for (const s of header.sections) {
    if (!Number.isInteger(s.offset) || !Number.isInteger(s.bytes) || s.offset % 8 || s.offset < end) {
      fail(`section '${s.name}' is misplaced (offset ${s.offset})`);
    }
    end = s.offset + s.bytes;
  }
  if (bytes.length < end + 4) fail(`truncated: ${bytes.length} bytes, the header announces ${end + 4}`);
  if (bytes.length > end + 4) fail(`${bytes.length - end - 4} unexpected bytes after the data`);
  if (crc32(bytes.subarray(0, end)) !== view.getUint32(end, true)) {
    fail("checksum mismatch (the file is corrupt)");
  }
  const section = (name: string, size?: number): Uint8Array => {
    const s = header.sections.find((e) => e.name === name);
    if (!s) return fail(`it has no '${name}' section`);
    if (size !== undefined && s.bytes !== size) {
      fail(`section '${name}' has ${s.bytes} bytes, the header's shapes need ${size}`);
    }
    return bytes.slice(s.offset, s.offset + s.bytes); // a copy: aligned, and independent of `bytes`
  };
  const { count: n, dims } = header;
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(dims) || dims < 1) {
    fail(`bad gallery shape ${n} x ${dims}`);
  }
  let config: ResolvedHeadConfig;
  try {
    config = resolveHeadConfig(header.head?.config);
  } catch (e) {
    return fail(`its head config is invalid (${(e as Error).message})`);
  }
  const shapes = headLayerShapes(config);
  const layers = header.head.layers ?? [];
  if (
    layers.length !== shapes.length ||
    shapes.some((s, i) => s.inDim !== layers[i].inDim || s.outDim !== layers[i].outDim)
  ) {
    fail("the head's layer shapes disagree with its config");
  }
  if (config.outDim !== dims) {
    fail(`the head makes ${config.outDim}-d embeddings but the gallery's are ${dims}-d`);
  }
  const headFloats = shapes.reduce((s, l) => s + l.inDim * l.outDim + l.outDim, 0);
  const headValues = new Float32Array(section("head", 4 * headFloats).buffer);
  let o = 0;
  const params = shapes.map((s) => {
    const weight = headValues.subarray(o, o + s.inDim * s.outDim);
    const bias = headValues.subarray(o + s.inDim * s.outDim, o + s.inDim * s.outDim + s.outDim);
    o += s.inDim * s.outDim + s.outDim;
    return { ...s, weight, bias };
  });
  const embeddings = new Float32Array(section("embeddings", 4 * n * dims).buffer);
  const bad = embeddings.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) fail(`embedding ${Math.floor(bad / dims)} holds a non-finite value`);
  const labels = new Int32Array(section("labels", 4 * n).buffer);
  const ids = new TextDecoder().decode(section("ids")).split("\n");
  if (ids.length !== n) fail(`it lists ${ids.length} sample ids for ${n} gallery items`);
  const graph = decodeGraph(section("graph"), `${source} (its graph section)`);
  if (graph.vertexCount !== n || graph.dims !== dims) {
    fail(`its graph is over ${graph.vertexCount} x ${graph.dims} vectors, the gallery is ${n} x ${dims}`);
  }
  let pixels: Uint8Array | null = null;
  if (header.pixels) {
    const { width, height, channels } = header.pixels;
    pixels = section("pixels", n * width * height * channels);
  }
  if (header.features?.kind === "pixels") {
    const f = header.features;
    if (f.width * f.height * f.channels !== config.inDim) {
      fail(
        `its ${f.width} x ${f.height} x ${f.channels} pixel inputs do not fit the head's ${config.inDim} inputs`,
      );
    }
  } else if (header.features?.kind === "backbone") {
    if (header.features.featureDim !== config.inDim) {
      fail(
        `its ${header.features.featureDim}-d backbone features do not fit the head's ${config.inDim} inputs`,
      );
    }
  } else {
    fail("its header does not say what the head's inputs are");
  }
  return {
    header,
    params,
    embeddings: { rows: n, cols: dims, data: embeddings },
    labels,
    ids,
    graph,
    pixels,
  };
}
