/**
 * The library refuses what it cannot compute correctly instead of returning garbage: destroyed buffers,
 * wrong element types, unknown filter modes, host matrices shorter than their shape, damaged FANNG headers
 * (D and R are inside the version 2 checksum; version 1 files still read); NaN rows give no neighbours,
 * in a deterministic order, on the GPU as in the reference.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { refuses } from "./helpers.ts";
import { pairwiseSqL2 } from "../../lib/ops/distance.ts";
import { knnSqL2, knnSqL2Ref } from "../../lib/ops/knn.ts";
import { NO_INDEX, topkSmallest, topkSmallestRef } from "../../lib/ops/topk.ts";
import { FanngIndex } from "../../lib/ann/index.ts";
import { decodeGraph, encodeGraph, FANNG_FORMAT_VERSION, FANNG_HEADER_BYTES } from "../../lib/ann/file.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("a destroyed buffer is refused by name, never read as zeros", async () => {
  const gpu = await getGpu();
  const mark = gpu.errorCount;
  const q = GpuBuffer.fromArray(gpu, new Float32Array(16).fill(1), [4, 4], "queries");
  using b = GpuBuffer.fromArray(gpu, new Float32Array(8).fill(2), [2, 4]);
  q.destroy();
  await assert.rejects(() => pairwiseSqL2(q, b), refuses(/pairwiseSqL2: queries \[4 x 4\] was destroyed/));
  await assert.rejects(() => knnSqL2(b, q, 1), refuses(/knnSqL2: base \[4 x 4\] was destroyed/));
  await assert.rejects(() => q.read(), refuses(/reading a destroyed buffer 'queries'/));
  assert.throws(() => q.write(new Float32Array(4)), refuses(/writing to a destroyed buffer/));
  const view = b.reshape([8]);
  b.destroy();
  assert.ok(view.destroyed, "a view outlived the storage it shares");
  await assert.rejects(() => topkSmallest(view.reshape([2, 4]), 1), refuses(/destroyed/));
  assert.deepEqual(gpu.errorsSince(mark), [], "the GPU saw work on a destroyed buffer");
});

Deno.test("top-k refuses a u32 matrix, unknown label modes and filters of the wrong type", async () => {
  const gpu = await getGpu();
  using u = GpuBuffer.fromArray(gpu, new Uint32Array([3, 1, 2, 0]), [2, 2]);
  using v = GpuBuffer.fromArray(gpu, new Float32Array([3, 1, 2, 0]), [2, 2]);
  using labels = GpuBuffer.fromArray(gpu, new Int32Array([0, 1]));
  using radius = GpuBuffer.fromArray(gpu, new Int32Array([0, 0]));
  await assert.rejects(
    () => topkSmallest(u as unknown as GpuBuffer<"f32">, 1),
    refuses(/topkSmallest: values must be a f32 buffer, got u32/),
  );
  await assert.rejects(
    () => topkSmallest(v, 1, { rowLabels: labels, colLabels: labels, labelMode: "bogus" as "same" }),
    refuses(/labelMode must be "different" or "same", got "bogus"/),
  );
  await assert.rejects(
    () => topkSmallest(v, 1, { rowMinDistance: radius as unknown as GpuBuffer<"f32"> }),
    refuses(/rowMinDistance must be a f32 buffer, got i32/),
  );
  await assert.rejects(
    () => knnSqL2(v, v, 1, { rowLabels: labels, colLabels: labels, labelMode: "other" as "same" }),
    refuses(/knnSqL2: labelMode/),
  );
});

Deno.test("NaN rows: no neighbours and never selected, sorted the same on the GPU as in the reference", async () => {
  const gpu = await getGpu();
  const rng = new Rng(5);
  const n = 37, d = 5;
  const data = Float32Array.from({ length: n * d }, () => rng.int(9));
  data.fill(NaN, 4 * d, 5 * d); // a whole NaN row
  data[11 * d + 3] = NaN; // one NaN coordinate
  const host = { rows: n, cols: d, data };
  using x = GpuBuffer.fromArray(gpu, data, [n, d]);
  using knn = await knnSqL2(x, x, 6, { excludeSelf: true });
  const ref = knnSqL2Ref(host, host, 6, { excludeSelf: true });
  const [idx, dist] = [await knn.indices.read(), await knn.distances.read()];
  assert.deepEqual(idx, ref.indices);
  assert.deepEqual(dist, ref.distances);
  for (const row of [4, 11]) assert.ok(idx.subarray(row * 6, row * 6 + 6).every((i) => i === NO_INDEX));
  assert.ok(!idx.includes(4) && !idx.includes(11), "a NaN row was selected as a neighbour");
  using dm = await pairwiseSqL2(x, x);
  const values = await dm.read();
  using top = await topkSmallest(dm, 6);
  assert.deepEqual(await top.indices.read(), topkSmallestRef({ rows: n, cols: n, data: values }, 6).indices);
  // FANNG indexes finite vectors only: a NaN is refused up front, naming where it is.
  await assert.rejects(
    () => FanngIndex.build(gpu, host),
    refuses(/non-finite value \(NaN\) at row 4, column 0/),
  );
});

Deno.test("FanngIndex.fromGraph refuses a host matrix shorter than its shape or of another shape", async () => {
  const gpu = await getGpu();
  const rng = new Rng(9);
  const data = { rows: 50, cols: 4, data: Float32Array.from({ length: 200 }, () => rng.float()) };
  using index = await FanngIndex.build(gpu, data);
  const graph = decodeGraph(index.toBytes());
  await assert.rejects(
    () => FanngIndex.fromGraph(gpu, graph, { rows: 50, cols: 4, data: data.data.subarray(0, 120) }),
    refuses(/claim \[50 x 4\] but hold 120 values/),
  );
  await assert.rejects(
    () => FanngIndex.fromGraph(gpu, graph, { rows: 40, cols: 5, data: data.data }),
    refuses(/\[50 x 4\] vectors but the data given is \[40 x 5\]/),
  );
  await assert.rejects(
    () => index.search({ rows: 3, cols: 4, data: new Float32Array(5) }, 1),
    refuses(/queries claim \[3 x 4\] but hold 5 values/),
  );
});

/** FNV-1a over 32-bit words, as lib/ann/file.ts computes it. */
function fnv(words: Uint32Array, h = 0x811c9dc5): number {
  for (const w of words) h = Math.imul(h ^ w, 0x01000193);
  return h >>> 0;
}

Deno.test("FANNG files: D and R sit inside the checksum, a flipped projection dims is caught (version 3); version 1 files still read", async () => {
  const gpu = await getGpu();
  const rng = new Rng(13);
  const data = { rows: 60, cols: 3, data: Float32Array.from({ length: 180 }, () => rng.float()) };
  using index = await FanngIndex.build(gpu, data);
  const bytes = index.toBytes();
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(8, true), FANNG_FORMAT_VERSION);
  assert.equal(FANNG_FORMAT_VERSION, 3);
  for (const [offset, what] of [[20, "D"], [24, "maxDegree"]] as const) {
    const flipped = bytes.slice();
    new DataView(flipped.buffer).setUint32(offset, view.getUint32(offset, true) + 1, true);
    assert.throws(() => decodeGraph(flipped, "g.fanng"), refuses(/checksum mismatch/), `flipped ${what}`);
  }
  // A flipped projection dims announces a basis the file does not hold.
  const projected = bytes.slice();
  new DataView(projected.buffer).setUint32(36, 1, true);
  assert.throws(() => decodeGraph(projected, "g.fanng"), refuses(/truncated.*a 3 x 1 projection/));
  // The same graph as version 1: the checksum covers the payload only.
  const v1 = bytes.slice();
  const v1view = new DataView(v1.buffer);
  v1view.setUint32(8, 1, true);
  v1view.setUint32(40, fnv(new Uint32Array(v1.buffer.slice(FANNG_HEADER_BYTES))), true);
  const graph = decodeGraph(v1, "old.fanng");
  assert.deepEqual(encodeGraph(graph), bytes, "version 1 did not read back as the same graph");
  using restored = await FanngIndex.fromGraph(gpu, graph, data, "old.fanng");
  using a = await restored.selfSearch(3);
  using b = await index.selfSearch(3);
  assert.deepEqual(await a.indices.read(), await b.indices.read());
});
