/**
 * The retrieval index artifact (lib/retrieval/format.ts): round trip, and every damaged, truncated or
 * mismatched file refused with one UserError that names the file.
 */
import assert from "node:assert/strict";
import { FanngIndex } from "../../lib/ann/index.ts";
import { UserError } from "../../lib/errors.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { initHeadParameters, resolveHeadConfig } from "../../lib/model/head.ts";
import {
  decodeRetrievalIndex,
  encodeRetrievalIndex,
  RETRIEVAL_FORMAT_VERSION,
  type RetrievalInput,
} from "../../lib/retrieval/format.ts";
import { openRetriever } from "../../lib/retrieval/open.ts";
import { Rng } from "../../lib/util/rng.ts";

const gpu = await getGpu();
const rng = new Rng(5);

/** A small but complete index: N items of D-d embeddings, a real graph over them, a 12 x 12 pixel head. */
async function sample(n = 37, dims = 8): Promise<RetrievalInput> {
  const config = resolveHeadConfig({ inDim: 144, outDim: dims, hidden: [16], seed: 3 });
  const embeddings = { rows: n, cols: dims, data: rng.normalArray(n * dims, 1) };
  using index = await FanngIndex.build(gpu, embeddings, { maxDegree: 8, seed: 2 });
  return {
    header: {
      createdAt: "2025-01-01T00:00:00.000Z",
      head: { config, layers: [{ inDim: 144, outDim: 16 }, { inDim: 16, outDim: dims }] },
      features: { kind: "pixels", width: 12, height: 12, channels: 1 },
      gallery: { split: "test", dataset: "tiny" },
      data: { dataset: { kind: "idx", dir: "/nowhere", split: "seen" }, trainLimit: 0, testLimit: 0 },
      identities: { kind: "idx-row" },
      classes: [[0, "zero"], [1, "one"]],
      graph: { maxDegree: 8, seed: 2, buildSeconds: 0.1 },
      search: { budget: 256 },
      pixels: { width: 12, height: 12, channels: 1 },
      source: { run: "runs/x", epochs: 2, recall: { "1": 0.9 }, adapter: "test" },
    },
    params: initHeadParameters(config),
    embeddings,
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    ids: Array.from({ length: n }, (_, i) => `t10k/${i}`),
    graphBytes: index.toBytes(),
    pixels: Uint8Array.from({ length: n * 144 }, (_, i) => i % 251),
  };
}

const good = await sample();
const bytes = encodeRetrievalIndex(good);

function refused(b: Uint8Array, pattern: RegExp, name = "/runs/r/index/index.bin"): void {
  assert.throws(() => decodeRetrievalIndex(b, name), (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.ok(e.message.startsWith(name), `the message names the file: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

/** The header's JSON, its offset and length. */
function headerOf(b: Uint8Array) {
  const h = new DataView(b.buffer, b.byteOffset).getUint32(12, true);
  return { json: JSON.parse(new TextDecoder().decode(b.subarray(16, 16 + h))), h };
}

Deno.test("retrieval index: round trip keeps every section and the header", () => {
  const c = decodeRetrievalIndex(bytes, "x");
  assert.equal(c.header.version, RETRIEVAL_FORMAT_VERSION);
  assert.equal(c.header.count, 37);
  assert.equal(c.header.dims, 8);
  assert.deepEqual(c.embeddings.data, good.embeddings.data);
  assert.deepEqual(c.labels, good.labels);
  assert.deepEqual(c.ids, good.ids);
  assert.deepEqual(c.pixels, good.pixels);
  assert.equal(c.params.length, 2);
  c.params.forEach((p, i) => {
    assert.deepEqual(p.weight, good.params[i].weight);
    assert.deepEqual(p.bias, good.params[i].bias);
  });
  assert.equal(c.graph.vertexCount, 37);
  assert.deepEqual(c.graph.neighbours, decodeRetrievalIndex(bytes).graph.neighbours);
  assert.deepEqual(c.header.classes, [[0, "zero"], [1, "one"]]);
  // Sections start at multiples of 8, in order, and the file ends with the checksum right after the last.
  for (const s of c.header.sections) assert.equal(s.offset % 8, 0, s.name);
  const last = c.header.sections.at(-1)!;
  assert.equal(bytes.length, last.offset + last.bytes + 4);
  // Without pixels: no section, no header entry.
  const bare = decodeRetrievalIndex(
    encodeRetrievalIndex({ ...good, pixels: null, header: { ...good.header, pixels: null } }),
  );
  assert.equal(bare.pixels, null);
  assert.ok(!bare.header.sections.some((s) => s.name === "pixels"));
});

Deno.test("retrieval index: a flipped byte anywhere, truncation, extra bytes, wrong magic or version are refused", () => {
  for (const at of [0, 9, 20, bytes.length >> 1, bytes.length - 40, bytes.length - 1]) {
    const bad = bytes.slice();
    bad[at] ^= 0x10;
    refused(bad, /magic|version|header|checksum|misplaced|truncated/);
  }
  const mid = bytes.slice();
  mid[bytes.length >> 1] ^= 0x01;
  refused(mid, /checksum mismatch \(the file is corrupt\)/);
  refused(bytes.subarray(0, bytes.length - 1), /truncated: \d+ bytes, the header announces \d+/);
  refused(bytes.subarray(0, 100), /truncated/);
  refused(bytes.subarray(0, 10), /fewer than the 20-byte frame/);
  refused(new Uint8Array([...bytes, 0, 0, 0, 0]), /4 unexpected bytes after the data/);
  const magic = bytes.slice();
  magic.set(new TextEncoder().encode("FANNGRPH"));
  refused(magic, /bad magic "FANNGRPH"/);
  const version = bytes.slice();
  new DataView(version.buffer).setUint32(8, 99, true);
  refused(version, /format version 99 is not supported/);
});

Deno.test("retrieval index: sections that do not fit each other are refused, checksum or not", async () => {
  const g = await sample(37, 8);
  // Each file below has a valid checksum: encodeRetrievalIndex writes what it is given.
  refused(
    encodeRetrievalIndex({ ...g, labels: g.labels.subarray(0, 30) }),
    /section 'labels' has 120 bytes, the header's shapes need 148/,
  );
  refused(encodeRetrievalIndex({ ...g, ids: g.ids.slice(1) }), /lists 36 sample ids for 37 gallery items/);
  const other = await sample(20, 8);
  refused(
    encodeRetrievalIndex({ ...g, graphBytes: other.graphBytes }),
    /its graph is over 20 x 8 vectors, the gallery is 37 x 8/,
  );
  const wide = await sample(37, 6);
  refused(
    encodeRetrievalIndex({ ...g, embeddings: wide.embeddings, graphBytes: wide.graphBytes }),
    /the head makes 8-d embeddings but the gallery's are 6-d/,
  );
  refused(
    encodeRetrievalIndex({ ...g, params: g.params.slice(0, 1) }),
    /section 'head' has \d+ bytes, the header's shapes need \d+/,
  );
  refused(
    encodeRetrievalIndex({
      ...g,
      header: { ...g.header, features: { kind: "pixels", width: 28, height: 28, channels: 1 } },
    }),
    /28 x 28 x 1 pixel inputs do not fit the head's 144 inputs/,
  );
  const nan = g.embeddings.data.slice();
  nan[8 * 5 + 2] = NaN;
  refused(
    encodeRetrievalIndex({ ...g, embeddings: { ...g.embeddings, data: nan } }),
    /embedding 5 holds a non-finite value/,
  );
  // A damaged graph inside an intact file: the graph's own check names the file too.
  const graph = g.graphBytes.slice();
  graph[graph.length - 1] ^= 0xff;
  refused(
    encodeRetrievalIndex({ ...g, graphBytes: graph }),
    /\(its graph section\) is not a valid FANNG graph file/,
  );
});

Deno.test("retrieval index: the header lists where each section is; a moved section is refused", () => {
  const { json, h } = headerOf(bytes);
  assert.deepEqual(json.sections.map((s: { name: string }) => s.name), [
    "head",
    "embeddings",
    "labels",
    "ids",
    "graph",
    "pixels",
  ]);
  assert.equal(json.sections[0].offset, 16 + h);
  // Rewrite the header with an overlapping section, same length, valid checksum over the whole.
  json.sections[2].offset = json.sections[1].offset;
  let text = JSON.stringify(json);
  text += " ".repeat(h - new TextEncoder().encode(text).length);
  const bad = bytes.slice();
  bad.set(new TextEncoder().encode(text), 16);
  refused(bad, /section 'labels' is misplaced/);
});

Deno.test("retrieval index: opening a missing file or folder names it and says what to do", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-retrieval-" });
  try {
    await assert.rejects(
      () => openRetriever(`${dir}/nope`),
      (e: unknown) =>
        e instanceof UserError &&
        e.message === `${dir}/nope not found: build an index with 'deno task index <run-dir>' first`,
    );
    await assert.rejects(
      () => openRetriever(dir),
      (e: unknown) => e instanceof UserError && e.message.startsWith(`${dir}/index.bin not found`),
    );
    await Deno.writeFile(`${dir}/index.bin`, bytes.subarray(0, 5000));
    await assert.rejects(
      () => openRetriever(dir),
      (e: unknown) =>
        e instanceof UserError &&
        /^\S+\/index\.bin is not a usable retrieval index: truncated/.test(e.message),
    );
    await Deno.writeFile(`${dir}/index.bin`, bytes);
    using r = await openRetriever(dir);
    assert.equal(r.size, 37);
    assert.equal(r.source, `${dir}/index.bin`);
    assert.equal(r.className(1), "one");
    assert.equal(r.className(7), "7");
    assert.deepEqual(r.pixels(2), good.pixels!.subarray(2 * 144, 3 * 144));
    assert.throws(() => r.id(37), /gallery item 37 is outside 0..36/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
