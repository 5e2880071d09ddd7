/**
 * The FANNG kernels against their plain-TS references, on integer-valued data (every distance exact in
 * f32, so GPU and reference must agree bit for bit, ties included), at awkward sizes, with vectors split
 * over several column blocks, and with per-dispatch work caps small enough to force many resumed rounds.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { Rng } from "../../lib/util/rng.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { knnSqL2Ref } from "../../lib/ops/knn.ts";
import { type BlockLayout, blockLayout, VectorBlocks } from "../../lib/ann/vectors.ts";
import { GpuGraph } from "../../lib/ann/gpu_graph.ts";
import { NO_VERTEX, type PaddedGraph } from "../../lib/ann/graph.ts";
import { prune, pruneRef } from "../../lib/ann/prune.ts";
import { greedyRef, runGreedy } from "../../lib/ann/traverse_add.ts";
import { randomPairs } from "../../lib/ann/edges.ts";
import { runRerank } from "../../lib/ann/rerank.ts";
import { assertSameGraph, emptyPadded, intMatrix, noGpuErrors } from "./helpers.ts";

const gpu = await getGpu();

/** Exact k-nearest candidate lists (self excluded) as [n x k]. */
function exactCandidates(data: HostMatrix, k: number): Uint32Array {
  return knnSqL2Ref(data, data, Math.min(k, Math.max(1, data.rows - 1)), { excludeSelf: true }).indices;
}

/** A graph built by pruning exact candidates, on the GPU and in the reference, checked equal. */
async function builtPair(
  data: HostMatrix,
  r: number,
  c: number,
  layout?: BlockLayout,
  checkCap?: number,
): Promise<{ vectors: VectorBlocks; graph: GpuGraph; ref: PaddedGraph }> {
  const n = data.rows;
  const cand = exactCandidates(data, c);
  const slots = cand.length / n;
  const vectors = VectorBlocks.fromHost(gpu, data, layout);
  const graph = new GpuGraph(gpu, n, r);
  using candBuf = GpuBuffer.fromArray(gpu, cand, [n, slots]);
  await noGpuErrors(gpu, () => prune(vectors, graph, candBuf, { merge: false, checkCap }));
  const ref = emptyPadded(n, r);
  pruneRef(data, ref, cand, slots, { merge: false });
  assertSameGraph(await graph.toPadded(), ref, `prune n=${n} d=${data.cols}`);
  return { vectors, graph, ref };
}

Deno.test("vectors: column blocks round-trip, from the host and from the GPU", async () => {
  const rng = new Rng(1);
  for (
    const [rows, cols, layout] of [[1, 1, undefined], [37, 13, { count: 3, w4: 2 }], [
      300,
      65,
      undefined,
    ]] as const
  ) {
    const m = { rows, cols, data: rng.uniformArray(rows * cols) };
    using a = VectorBlocks.fromHost(gpu, m, layout);
    assert.deepEqual(await a.toHost(), m);
    using src = GpuBuffer.fromArray(gpu, m.data, [rows, cols]);
    const batch = new CommandBatch(gpu);
    using b = await VectorBlocks.encodeFrom(batch, src, layout);
    await batch.submit();
    assert.deepEqual(await b.toHost(), m);
  }
  // 60,000 x 784 floats need two 128 MiB blocks; too much data for four blocks is a UserError.
  assert.deepEqual(blockLayout(60000, 784, 128 * 2 ** 20), { count: 2, w4: 98 });
  assert.throws(() => blockLayout(1 << 22, 1024, 128 * 2 ** 20), /do not fit/);
});

Deno.test("vectors: f16 halves hold each value times a power of two, rounded to a neighbouring half; bad shapes are refused", async () => {
  const rng = new Rng(2);
  for (const [rows, cols, spread] of [[1, 8, 1], [37, 24, 3e-3], [300, 64, 900]] as const) {
    const m = { rows, cols, data: rng.normalArray(rows * cols, spread) };
    using a = VectorBlocks.fromHost(gpu, m);
    using h = await a.toHalf();
    const max = m.data.reduce((x, v) => Math.max(x, Math.abs(v)), 0);
    assert.equal(h.halfScale, 2 ** (14 - Math.ceil(Math.log2(max))), `scale for ${rows} x ${cols}`);
    assert.equal(h.layout.w4 * 2, a.layout.w4);
    const got = await h.toHost();
    for (let i = 0; i < m.data.length; i++) {
      const x = Math.fround(m.data[i] * h.halfScale), near = Math.f16round(x);
      // WGSL lets the conversion round either way: the nearest half, or its neighbour on x's other side.
      const other = Math.f16round(near + (x - near) * 2);
      assert.ok(got.data[i] === near || got.data[i] === other, `value ${i}: ${got.data[i]} for ${x}`);
    }
    // Queries in the base's scale.
    using q = await a.toHalf(h.halfScale / 4);
    assert.equal(q.halfScale, h.halfScale / 4);
  }
  // Past the f16 range: saturated.
  using big = VectorBlocks.fromHost(gpu, {
    rows: 1,
    cols: 8,
    data: Float32Array.from([1e6, -1e6, 1, 0, 0, 0, 0, 0]),
  });
  using bigHalf = await big.toHalf(1);
  assert.deepEqual(Array.from((await bigHalf.toHost()).data.slice(0, 3)), [65504, -65504, 1]);
  // Two blocks, an odd number of vec4s, halves again, a scale that is not a power of two.
  using twoBlocks = VectorBlocks.fromHost(gpu, { rows: 2, cols: 16, data: new Float32Array(32) }, {
    count: 2,
    w4: 2,
  });
  await assert.rejects(() => twoBlocks.toHalf(), /one f32 column block of an even number of vec4s/);
  using odd = VectorBlocks.fromHost(gpu, { rows: 2, cols: 4, data: new Float32Array(8) });
  await assert.rejects(() => odd.toHalf(), /got 1 block\(s\) of 1/);
  await assert.rejects(() => bigHalf.toHalf(), /already in halves/);
  await assert.rejects(() => big.toHalf(3), /power of two/);
  // Kernels that compute in f32 rows refuse halves.
  using cand = GpuBuffer.fromArray(gpu, new Uint32Array([0]), [1, 1]);
  await assert.rejects(() => runRerank(bigHalf, "self", cand, { k: 1 }), /needs f32 vectors/);
});

Deno.test("prune: GPU matches the reference (sizes 1, 2, primes; several blocks; resumed rounds)", async () => {
  const rng = new Rng(2);
  const cases: [number, number, number, number, BlockLayout | undefined, number | undefined][] = [
    [1, 3, 4, 8, undefined, undefined],
    [2, 1, 4, 8, undefined, undefined],
    [7, 5, 3, 6, undefined, undefined],
    [257, 13, 12, 24, { count: 3, w4: 2 }, undefined],
    [211, 6, 8, 16, undefined, 8], // checkCap 8: many rounds
    [300, 1, 6, 12, undefined, undefined], // D = 1: many ties
  ];
  for (const [n, d, r, c, layout, cap] of cases) {
    const { vectors, graph } = await builtPair(intMatrix(rng, n, d), r, c, layout, cap);
    vectors.destroy();
    graph.destroy();
  }
});

Deno.test("prune: merging extra candidates (reverse-edge style) matches the reference", async () => {
  const rng = new Rng(3);
  const data = intMatrix(rng, 301, 9);
  const { vectors, graph, ref } = await builtPair(data, 10, 20);
  const slots = 7;
  const extra = Uint32Array.from({ length: data.rows * slots }, (_, i) => {
    const v = Math.floor(i / slots);
    if (v % 3 === 0) return NO_VERTEX; // rows without candidates stay untouched
    return i % 5 === 0 ? v : i % 4 === 0 ? NO_VERTEX : rng.int(data.rows + 3); // self, gaps, out of range
  });
  using extraBuf = GpuBuffer.fromArray(gpu, extra, [data.rows, slots]);
  for (const checkCap of [undefined, 3]) {
    const g = GpuGraph.fromPadded(gpu, await graph.toPadded());
    await noGpuErrors(gpu, () => prune(vectors, g, extraBuf, { merge: true, onlyWithExtra: true, checkCap }));
    const want = structuredClone(ref);
    pruneRef(data, want, extra, slots, { merge: true, onlyWithExtra: true });
    assertSameGraph(await g.toPadded(), want, `merge (checkCap ${checkCap})`);
    g.destroy();
  }
  // A sub-range with candidates whose first row is vertex 100.
  const sub = extra.slice(100 * slots, 150 * slots);
  using subBuf = GpuBuffer.fromArray(gpu, sub, [50, slots]);
  await prune(vectors, graph, subBuf, { merge: true, start: 100, count: 50, extraRow0: 100 });
  pruneRef(data, ref, sub, slots, { merge: true, start: 100, count: 50, extraRow0: 100 });
  assertSameGraph(await graph.toPadded(), ref, "merge of a range");
  vectors.destroy();
  graph.destroy();
});

Deno.test("greedy walks: GPU matches the reference, also when resumed every hop", async () => {
  const rng = new Rng(4);
  const data = intMatrix(rng, 400, 7);
  const { vectors, graph, ref } = await builtPair(data, 6, 12, { count: 2, w4: 1 });
  const pairs = randomPairs(data.rows, 999, (m) => rng.int(m));
  pairs[0] = 5000; // an out-of-range walk reports "reached"
  const want = greedyRef(data, ref, pairs);
  assert.ok(
    want.some((s) => s === NO_VERTEX) && want.some((s) => s !== NO_VERTEX),
    "walks both succeed and fail",
  );
  for (const hops of [undefined, 1]) {
    using buf = GpuBuffer.fromArray(gpu, pairs.slice(), [999, 2]);
    using stops = await noGpuErrors(gpu, () => runGreedy(vectors, graph, buf, hops));
    assert.deepEqual(Array.from(await stops.read()), Array.from(want), `hops per round ${hops}`);
  }
  vectors.destroy();
  graph.destroy();
});
