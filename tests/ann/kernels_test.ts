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
import { runSearch, type SearchKernelOptions } from "../../lib/ann/search.ts";
import { searchRef } from "../../lib/ann/search_ref.ts";
import { randomPairs } from "../../lib/ann/edges.ts";
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

Deno.test("search: GPU matches the reference (self and outside queries, entries, filters, rounds)", async () => {
  const rng = new Rng(5);
  const data = intMatrix(rng, 353, 11, 6);
  const queries = intMatrix(rng, 131, 11, 6);
  const layout = { count: 3, w4: 1 };
  const { vectors, graph, ref } = await builtPair(data, 8, 16, layout);
  using qv = VectorBlocks.fromHost(gpu, queries, layout);
  const labels = Int32Array.from({ length: data.rows }, () => rng.int(4));
  const qlabels = Int32Array.from({ length: queries.rows }, () => rng.int(4));
  const selfQlabels = labels;
  const minD = Float32Array.from({ length: Math.max(data.rows, queries.rows) }, () => rng.int(40));
  using labelsBuf = GpuBuffer.fromArray(gpu, labels);
  using qlabelsBuf = GpuBuffer.fromArray(gpu, qlabels);
  using minBuf = GpuBuffer.fromArray(gpu, minD.slice(0, queries.rows));
  using selfMinBuf = GpuBuffer.fromArray(gpu, minD.slice(0, data.rows));
  const shared = new Uint32Array([0, 17, 17, 5000, 300]);
  using sharedBuf = GpuBuffer.fromArray(gpu, shared);
  const perQuery = Uint32Array.from({ length: queries.rows * 2 }, () => rng.int(data.rows));
  using perQueryBuf = GpuBuffer.fromArray(gpu, perQuery);
  const none = new Uint32Array([NO_VERTEX]);
  using noneBuf = GpuBuffer.fromArray(gpu, none);

  type Case = {
    what: string;
    self: boolean;
    k: number;
    budget: number;
    entries: [Uint32Array, GpuBuffer<"u32">, number];
    filter?: "labels" | "min" | "both";
    stepCap?: number;
    stopRatio?: number;
  };
  const cases: Case[] = [
    { what: "self, no entries", self: true, k: 10, budget: 40, entries: [none, noneBuf, 0] },
    { what: "self, budget 0", self: true, k: 3, budget: 0, entries: [none, noneBuf, 0] },
    {
      what: "self, filtered, rounds",
      self: true,
      k: 7,
      budget: 90,
      entries: [shared, sharedBuf, 0],
      filter: "both",
      stepCap: 5,
    },
    { what: "outside, shared entries", self: false, k: 10, budget: 60, entries: [shared, sharedBuf, 0] },
    {
      what: "outside, per-query entries",
      self: false,
      k: 4,
      budget: 25,
      entries: [perQuery, perQueryBuf, 2],
    },
    {
      what: "outside, label filter",
      self: false,
      k: 5,
      budget: 80,
      entries: [shared, sharedBuf, 0],
      filter: "labels",
    },
    {
      what: "outside, radius, rounds",
      self: false,
      k: 6,
      budget: 70,
      entries: [shared, sharedBuf, 0],
      filter: "min",
      stepCap: 1,
    },
    {
      what: "self, filtered, early stop, rounds",
      self: true,
      k: 3,
      budget: 200,
      entries: [shared, sharedBuf, 0],
      filter: "both",
      stepCap: 3,
      stopRatio: 1.5,
    },
    {
      what: "outside, early stop",
      self: false,
      k: 1,
      budget: 150,
      entries: [shared, sharedBuf, 0],
      stopRatio: 1,
    },
    {
      what: "outside, more than reachable",
      self: false,
      k: 400,
      budget: 1000,
      entries: [shared, sharedBuf, 0],
    },
  ];
  for (const c of cases) {
    const q = c.self ? data : queries;
    const useLabels = c.filter === "labels" || c.filter === "both";
    const useMin = c.filter === "min" || c.filter === "both";
    const opts: SearchKernelOptions = {
      k: c.k,
      budget: c.budget,
      entries: c.entries[1],
      entryStride: c.entries[2],
      self: c.self,
      labels: useLabels ? labelsBuf : undefined,
      queryLabels: useLabels ? (c.self ? labelsBuf : qlabelsBuf) : undefined,
      minDistance: useMin ? (c.self ? selfMinBuf : minBuf) : undefined,
      minDistanceScale: useMin ? 1.5 : undefined,
      stepCap: c.stepCap,
      stopRatio: c.stopRatio,
    };
    const out = await noGpuErrors(gpu, () => runSearch(vectors, graph, c.self ? "self" : qv, opts));
    const refOptions = {
      budget: c.budget,
      entries: c.entries[0],
      entryStride: c.entries[2],
      self: c.self,
      stopRatio: c.stopRatio,
      filter: {
        labels: useLabels ? labels : undefined,
        queryLabels: useLabels ? (c.self ? selfQlabels : qlabels) : undefined,
        minDistance: useMin ? minD.slice(0, q.rows) : undefined,
        minDistanceScale: useMin ? 1.5 : undefined,
      },
    };
    const want = searchRef(data, ref, q, c.k, refOptions);
    if (c.stopRatio) {
      const full = searchRef(data, ref, q, c.k, { ...refOptions, stopRatio: 0 });
      const total = (e: Uint32Array) => e.reduce((a, b) => a + b, 0);
      assert.ok(total(want.evaluations) < total(full.evaluations), `${c.what}: the early stop never fired`);
    }
    assert.deepEqual(Array.from(await out.indices.read()), Array.from(want.indices), `${c.what}: indices`);
    assert.deepEqual(
      Array.from(await out.distances.read()),
      Array.from(want.distances),
      `${c.what}: distances`,
    );
    assert.deepEqual(
      Array.from(await out.nearestAny.read()),
      Array.from(want.nearestAny),
      `${c.what}: nearest any`,
    );
    assert.deepEqual(
      Array.from(await out.nearestAnyDistance.read()),
      Array.from(want.nearestAnyDistance),
      `${c.what}: nearest-any distance`,
    );
    assert.deepEqual(
      Array.from(await out.evaluations.read()),
      Array.from(want.evaluations),
      `${c.what}: evaluations`,
    );
    for (const b of Object.values(out)) b.destroy();
  }
  vectors.destroy();
  graph.destroy();
});

Deno.test("search: queries in several dispatch chunks and a sub-range self-search match the reference", async () => {
  const rng = new Rng(6);
  const data = intMatrix(rng, 200, 5);
  const queries = intMatrix(rng, 300, 5);
  const { vectors, graph, ref } = await builtPair(data, 6, 12);
  using qv = VectorBlocks.fromHost(gpu, queries);
  using entries = GpuBuffer.fromArray(gpu, new Uint32Array([3, 99]));
  const opts = { k: 5, budget: 30, entries, entryStride: 0, chunk: 64 };
  const out = await runSearch(vectors, graph, qv, opts);
  const want = searchRef(data, ref, queries, 5, {
    budget: 30,
    entries: new Uint32Array([3, 99]),
    entryStride: 0,
  });
  assert.deepEqual(Array.from(await out.indices.read()), Array.from(want.indices));
  for (const b of Object.values(out)) b.destroy();
  // Vertices 70..129 only: the same rows as a full self-search.
  const part = await runSearch(vectors, graph, "self", { ...opts, self: true, selfStart: 70, selfCount: 60 });
  const full = searchRef(data, ref, data, 5, {
    budget: 30,
    entries: new Uint32Array([3, 99]),
    entryStride: 0,
    self: true,
  });
  assert.deepEqual(Array.from(await part.indices.read()), Array.from(full.indices.subarray(70 * 5, 130 * 5)));
  for (const b of Object.values(part)) b.destroy();
  vectors.destroy();
  graph.destroy();
});
