/**
 * The FANNG graph file (`.fanng`): a 64-byte header, then the CSR arrays. Little-endian throughout.
 *
 * | offset | type     | field                                                        |
 * |--------|----------|--------------------------------------------------------------|
 * | 0      | 8 bytes  | magic `FANNGRPH`                                              |
 * | 8      | u32      | format version (3)                                           |
 * | 12     | u32      | header size in bytes (64)                                    |
 * | 16     | u32      | vertex count N                                               |
 * | 20     | u32      | dims D of the vectors the graph was built on                 |
 * | 24     | u32      | maximum out-degree R                                         |
 * | 28     | u32      | edge count E                                                 |
 * | 32     | u32      | entry vertex count P                                         |
 * | 36     | u32      | projection dims p (0: the graph is over the vectors)         |
 * | 40     | u32      | checksum: FNV-1a (32-bit) over the 32-bit words at 8..40     |
 * |        |          | (version to flags), then the payload's                       |
 * | 44     | 20 bytes | reserved, zero                                               |
 * | 64     | u32[N+1] | offsets                                                      |
 * |        | u32[E]   | neighbours (each vertex's sorted by length, ties by id)      |
 * |        | f32[E]   | squared edge lengths                                         |
 * |        | u32[P]   | entry vertices                                               |
 * |        | f32[D*p] | projection basis [D x p], row-major (p > 0 only)             |
 *
 * The file size is exactly 64 + 4 * (N + 1 + 2E + P + D * p). With p > 0 the graph was built in the PCA
 * projection x -> x basis (lib/ann/pca.ts): its edge lengths are projected distances, and a loaded index
 * projects the vectors again with the stored basis. The vectors are not stored: `FanngIndex.load` takes them
 * separately and checks their shape against N and D. Reading checks the magic, version, sizes, checksum
 * and the graph's structure, and throws a UserError that says what is wrong.
 *
 * Version 2 (still read) has no projection (its word at 36 is a reserved 0). Version 1 (still read) is
 * version 2 except that its checksum covers the payload only, so a damaged D or R in its header shows only
 * as a shape or structure error.
 * @module
 */
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { type FanngGraph, graphProblem } from "./graph.ts";

/** The file's magic bytes. */
export const FANNG_MAGIC = "FANNGRPH";
/** The format version this code writes (it reads this one and version 1). */
export const FANNG_FORMAT_VERSION = 3;
/** Header size in bytes. */
export const FANNG_HEADER_BYTES = 64;

/**
 * FNV-1a over 32-bit little-endian words (a whole word at a time: fast, and enough to catch corruption),
 * continuing from `h` (so the header's words and the payload's chain into one sum).
 */
function checksum(words: Uint32Array, h = 0x811c9dc5): number {
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  return h >>> 0;
}

/** The header words the checksum of versions 2 and 3 covers: bytes 8..40 (version through projection dims). */
function headerWords(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length: 8 }, (_, i) => view.getUint32(8 + 4 * i, true));
}

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Serialises a graph to the file format. */
export function encodeGraph(graph: FanngGraph): Uint8Array {
  if (!LE) throw new Error("FANNG files are written on little-endian hosts only");
  const n = graph.vertexCount, e = graph.neighbours.length, p = graph.entries.length;
  const basis = graph.projection?.basis ?? new Float32Array(0);
  const payloadWords = n + 1 + 2 * e + p + basis.length;
  const bytes = new Uint8Array(FANNG_HEADER_BYTES + 4 * payloadWords);
  const payload = new Uint32Array(bytes.buffer, FANNG_HEADER_BYTES, payloadWords);
  payload.set(graph.offsets, 0);
  payload.set(graph.neighbours, n + 1);
  payload.set(new Uint32Array(graph.lengths.buffer, graph.lengths.byteOffset, e), n + 1 + e);
  payload.set(graph.entries, n + 1 + 2 * e);
  payload.set(new Uint32Array(basis.buffer, basis.byteOffset, basis.length), n + 1 + 2 * e + p);
  bytes.set(new TextEncoder().encode(FANNG_MAGIC), 0);
  const view = new DataView(bytes.buffer);
  const projectionDims = graph.projection?.dims ?? 0;
  const header = [
    FANNG_FORMAT_VERSION,
    FANNG_HEADER_BYTES,
    n,
    graph.dims,
    graph.maxDegree,
    e,
    p,
    projectionDims,
  ];
  header.forEach((v, i) => view.setUint32(8 + 4 * i, v, true));
  view.setUint32(40, checksum(payload, checksum(headerWords(bytes))), true);
  return bytes;
}

/** Parses and checks a graph file's bytes; `name` appears in error messages. */
export function decodeGraph(bytes: Uint8Array, name = "FANNG file"): FanngGraph {
  if (!LE) throw new Error("FANNG files are read on little-endian hosts only");
  const fail = (why: string): never => {
    throw new UserError(`${name} is not a valid FANNG graph file: ${why}. Rebuild and save the index again.`);
  };
  if (bytes.length < FANNG_HEADER_BYTES) fail(`it has ${bytes.length} bytes, less than the 64-byte header`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== FANNG_MAGIC) fail(`bad magic ${JSON.stringify(magic)} (expected ${FANNG_MAGIC})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (off: number) => view.getUint32(off, true);
  const version = u32(8);
  if (version < 1 || version > FANNG_FORMAT_VERSION) {
    fail(
      `format version ${version} is not supported (this toolkit reads versions 1 to ${FANNG_FORMAT_VERSION})`,
    );
  }
  if (u32(12) !== FANNG_HEADER_BYTES) fail(`header size ${u32(12)} (expected ${FANNG_HEADER_BYTES})`);
  const [n, dims, maxDegree, e, p] = [u32(16), u32(20), u32(24), u32(28), u32(32)];
  const projectionDims = version === 3 ? u32(36) : 0;
  if (projectionDims > dims) fail(`projection dims ${projectionDims} exceed the vectors' ${dims}`);
  const payloadWords = n + 1 + 2 * e + p + dims * projectionDims;
  const expected = FANNG_HEADER_BYTES + 4 * payloadWords;
  if (bytes.length < expected) {
    fail(
      `truncated: ${bytes.length} bytes, the header announces ${expected} (N ${n}, edges ${e}, entries ${p}` +
        `${projectionDims ? `, a ${dims} x ${projectionDims} projection` : ""})`,
    );
  }
  if (bytes.length > expected) fail(`${bytes.length - expected} unexpected bytes after the data`);
  // Copy the payload into an aligned buffer (the input may start at any byte offset).
  const payload = new Uint32Array(payloadWords);
  new Uint8Array(payload.buffer).set(bytes.subarray(FANNG_HEADER_BYTES, expected));
  const sum = version === 1 ? checksum(payload) : checksum(payload, checksum(headerWords(bytes)));
  if (sum !== u32(40)) fail("checksum mismatch (the header or the data is corrupt)");
  const graph: FanngGraph = {
    vertexCount: n,
    dims,
    maxDegree,
    offsets: payload.subarray(0, n + 1),
    neighbours: payload.subarray(n + 1, n + 1 + e),
    lengths: new Float32Array(payload.buffer, 4 * (n + 1 + e), e),
    entries: payload.subarray(n + 1 + 2 * e, n + 1 + 2 * e + p),
    ...(projectionDims
      ? {
        projection: {
          dims: projectionDims,
          basis: new Float32Array(payload.buffer, 4 * (n + 1 + 2 * e + p), dims * projectionDims),
        },
      }
      : {}),
  };
  const problem = graphProblem(graph);
  if (problem) fail(problem);
  return graph;
}

/** Writes a graph to `path` atomically. */
export async function saveGraph(path: string, graph: FanngGraph): Promise<void> {
  await writeFileAtomic(path, encodeGraph(graph));
}

/** Reads a graph file; a missing, truncated or corrupt file throws a UserError. */
export async function loadGraph(path: string): Promise<FanngGraph> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`FANNG graph file ${path} not found. Build the index and save it there first.`);
    }
    throw e;
  }
  return decodeGraph(bytes, path);
}
