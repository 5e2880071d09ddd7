import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import { decodeGraph, encodeGraph, FANNG_HEADER_BYTES, loadGraph, saveGraph } from "../../lib/ann/file.ts";
import {
  type FanngGraph,
  graphFromPadded,
  NO_VERTEX,
  occlusionViolations,
  paddedFromGraph,
  validateGraph,
} from "../../lib/ann/graph.ts";
import { reverseCandidates, traverseAddCandidates, unpermuteLists } from "../../lib/ann/edges.ts";

/** 4 points on a line: 0, 1, 3, 7; vertex 0 -> 1, 1 -> 0, 2; 2 -> 1, 3; 3 -> 2 (a valid FANNG graph). */
function lineGraph(): FanngGraph {
  return {
    vertexCount: 4,
    dims: 1,
    maxDegree: 2,
    offsets: new Uint32Array([0, 1, 3, 5, 6]),
    neighbours: new Uint32Array([1, 0, 2, 1, 3, 2]),
    lengths: new Float32Array([1, 1, 4, 4, 16, 16]),
    entries: new Uint32Array([0, 3]),
  };
}
const line = { rows: 4, cols: 1, data: new Float32Array([0, 1, 3, 7]) };

Deno.test("graph: a valid graph passes validation and has no occlusion violations", () => {
  const g = lineGraph();
  validateGraph(g);
  assert.deepEqual(occlusionViolations(g, line), []);
  // padded <-> CSR round trip
  const back = graphFromPadded(paddedFromGraph(g), 1, g.entries);
  assert.deepEqual(back, g);
  assert.equal(paddedFromGraph(g).adjacency[1], NO_VERTEX);
});

Deno.test("graph: validation names each structural problem", () => {
  const cases: [string, (g: FanngGraph) => FanngGraph, RegExp][] = [
    ["offset start", (g) => ({ ...g, offsets: Uint32Array.from([1, 1, 3, 5, 6]) }), /offsets\[0\]/],
    [
      "decreasing",
      (g) => ({ ...g, offsets: Uint32Array.from([0, 3, 1, 5, 6]) }),
      /decrease|over the maximum/,
    ],
    ["out of range", (g) => ({ ...g, neighbours: Uint32Array.from([9, 0, 2, 1, 3, 2]) }), /outside/],
    ["self edge", (g) => ({ ...g, neighbours: Uint32Array.from([0, 0, 2, 1, 3, 2]) }), /itself/],
    ["repeat", (g) => ({ ...g, neighbours: Uint32Array.from([1, 2, 2, 1, 3, 2]) }), /two edges|not sorted/],
    ["unsorted", (g) => ({ ...g, lengths: Float32Array.from([1, 4, 1, 4, 16, 16]) }), /not sorted/],
    ["degree", (g) => ({ ...g, maxDegree: 1 }), /maximum degree/],
    ["entry", (g) => ({ ...g, entries: Uint32Array.from([4]) }), /entry vertex/],
    ["edge count", (g) => ({ ...g, offsets: Uint32Array.from([0, 1, 3, 5, 5]) }), /edges/],
  ];
  for (const [what, edit, message] of cases) {
    assert.throws(() => validateGraph(edit(lineGraph())), (e: unknown) => {
      assert.ok(e instanceof UserError, what);
      assert.match((e as Error).message, message, what);
      return true;
    });
  }
});

Deno.test("graph: occlusionViolations finds an occluded edge and a wrong length", () => {
  // Vertex 0 keeps 0 -> 1 (length 1) and 0 -> 2 (length 9): 1 is closer to 2 (d 4) than 0 is, so 0 -> 2 is occluded.
  const bad: FanngGraph = {
    ...lineGraph(),
    maxDegree: 3,
    offsets: new Uint32Array([0, 2, 4, 6, 7]),
    neighbours: new Uint32Array([1, 2, 0, 2, 1, 3, 2]),
    lengths: new Float32Array([1, 9, 1, 4, 4, 16, 16]),
  };
  assert.deepEqual(occlusionViolations(bad, line), [{ vertex: 0, occluded: 2, by: 1 }]);
  const wrong = { ...lineGraph(), lengths: new Float32Array([2, 1, 4, 4, 16, 16]) };
  assert.deepEqual(occlusionViolations(wrong, line), [{ vertex: 0, occluded: 1, by: 1 }]);
});

Deno.test("file: encode/decode round trip, save/load through a file", async () => {
  const g = lineGraph();
  const bytes = encodeGraph(g);
  assert.equal(bytes.length, FANNG_HEADER_BYTES + 4 * (4 + 1 + 2 * 6 + 2));
  assert.deepEqual(decodeGraph(bytes), g);
  // A copy at an odd byte offset decodes too (the payload is realigned).
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(decodeGraph(shifted.subarray(1)), g);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/g.fanng`;
    await saveGraph(path, g);
    assert.deepEqual(await loadGraph(path), g);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["g.fanng"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file: a graph built in a projection keeps its basis (version 3); version 2 files still read", () => {
  const g: FanngGraph = {
    ...lineGraph(),
    dims: 3,
    projection: { dims: 2, basis: new Float32Array([0.6, 0, 0.8, 0, 0, 1]) },
  };
  const bytes = encodeGraph(g);
  assert.equal(bytes.length, FANNG_HEADER_BYTES + 4 * (4 + 1 + 2 * 6 + 2 + 3 * 2));
  assert.deepEqual(decodeGraph(bytes), g);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(8, true), 3);
  assert.equal(view.getUint32(36, true), 2);
  // A version 2 file: no projection, the same bytes otherwise (its checksum covers the header words).
  const plain = encodeGraph(lineGraph());
  const v2 = plain.slice();
  const v2view = new DataView(v2.buffer);
  v2view.setUint32(8, 2, true);
  let h = 0x811c9dc5;
  for (let i = 0; i < 8; i++) h = Math.imul(h ^ v2view.getUint32(8 + 4 * i, true), 0x01000193);
  for (let i = FANNG_HEADER_BYTES; i < v2.length; i += 4) {
    h = Math.imul(h ^ v2view.getUint32(i, true), 0x01000193);
  }
  v2view.setUint32(40, h >>> 0, true);
  assert.deepEqual(decodeGraph(v2), lineGraph());
  // Problems of the projection are named.
  assert.throws(
    () =>
      decodeGraph(
        encodeGraph({ ...g, projection: { dims: 2, basis: new Float32Array([0, NaN, 0, 0, 0, 1]) } }),
      ),
    /non-finite value at 1/,
  );
  assert.throws(
    () => decodeGraph(encodeGraph({ ...lineGraph(), projection: { dims: 2, basis: new Float32Array(2) } })),
    /projection dims 2 exceed the vectors' 1/,
  );
});

Deno.test("file: corrupt, truncated and missing files give a UserError that says what is wrong", async () => {
  const good = encodeGraph(lineGraph());
  const expectError = (bytes: Uint8Array, message: RegExp) =>
    assert.throws(() => decodeGraph(bytes, "g.fanng"), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match((e as Error).message, /g\.fanng is not a valid FANNG graph file/);
      assert.match((e as Error).message, message);
      return true;
    });
  expectError(good.subarray(0, 10), /less than the 64-byte header/);
  for (const cut of [FANNG_HEADER_BYTES, FANNG_HEADER_BYTES + 7, good.length - 1]) {
    expectError(good.subarray(0, cut), /truncated/);
  }
  const extra = new Uint8Array(good.length + 4);
  extra.set(good);
  expectError(extra, /unexpected bytes/);
  const magic = good.slice();
  magic[0] = 0x58;
  expectError(magic, /bad magic/);
  const version = good.slice();
  new DataView(version.buffer).setUint32(8, 99, true);
  expectError(version, /version 99/);
  for (let at = FANNG_HEADER_BYTES; at < good.length; at += 5) {
    const flipped = good.slice();
    flipped[at] ^= 0x10;
    expectError(flipped, /checksum/);
  }
  // A file whose checksum matches but whose graph is invalid (edge to a missing vertex).
  const broken = { ...lineGraph(), neighbours: new Uint32Array([1, 0, 2, 1, 7, 2]) };
  expectError(encodeGraph(broken), /outside/);
  await assert.rejects(() => loadGraph("/nonexistent/g.fanng"), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match((e as Error).message, /not found/);
    return true;
  });
});

Deno.test("edges: reverse candidates keep the shortest incoming edges; traverse-add groups targets", () => {
  // Rows of vertices 0..2 (maxDegree 2): 0 -> 2 (5), 1 -> 2 (3), 2 -> 0 (5), 2 -> 1 (3).
  const adj = new Uint32Array([2, NO_VERTEX, 2, NO_VERTEX, 1, 0]);
  const len = new Float32Array([5, Infinity, 3, Infinity, 3, 5]);
  const rev = reverseCandidates(3, 2, adj, len, new Uint32Array([1, 1, 2]), 0, 1);
  assert.deepEqual(Array.from(rev), [2, 2, 1]); // vertex 2 keeps its shorter incoming edge, from 1
  const pairs = new Uint32Array([0, 1, 2, 0, 1, 2, 0, 2]);
  const { extra, failures } = traverseAddCandidates(3, pairs, new Uint32Array([NO_VERTEX, 1, 1, 1]), 2);
  assert.equal(failures, 3);
  assert.deepEqual(Array.from(extra), [NO_VERTEX, NO_VERTEX, 0, 2, NO_VERTEX, NO_VERTEX]);
  // Build order 0,1,2 = caller ids 2,0,1.
  assert.deepEqual(
    Array.from(unpermuteLists(new Uint32Array([1, 2, 0]), 1, new Uint32Array([2, 0, 1]))),
    [1, 2, 0],
  );
});
