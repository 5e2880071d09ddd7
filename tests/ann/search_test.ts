/**
 * The team-per-query graph search (kernels/fanng_search.wgsl) against its plain-TS reference, on
 * integer-valued data (every distance exact in f32, so every output must agree bit for bit, ties included):
 * randomized cases over awkward sizes, graphs with empty and duplicate edges, several column blocks, every
 * filter, ef and budget, entry lists, self-search, width, team shapes, query chunks and resumed rounds;
 * NaN rows; the scoring ceiling; parameter errors.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { UserError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { knnSqL2Ref } from "../../lib/ops/knn.ts";
import { type BlockLayout, VectorBlocks } from "../../lib/ann/vectors.ts";
import { GpuGraph } from "../../lib/ann/gpu_graph.ts";
import { NO_VERTEX, type PaddedGraph } from "../../lib/ann/graph.ts";
import { pruneRef } from "../../lib/ann/prune.ts";
import {
  runCeiling,
  runNearestEdge,
  runSearch,
  type SearchKernelOptions,
  type SearchShape,
} from "../../lib/ann/search.ts";
import { ceilingRef, nearestEdgeRef, searchRef, type SearchRefOptions } from "../../lib/ann/search_ref.ts";
import { assertSameOutputs, intMatrix, noGpuErrors } from "./helpers.ts";

const gpu = await getGpu();

/** A random padded graph: degrees 0..r, targets anywhere (repeats and the vertex itself included). */
function randomGraph(rng: Rng, n: number, r: number): PaddedGraph {
  const adjacency = new Uint32Array(n * r).fill(NO_VERTEX), degrees = new Uint32Array(n);
  for (let v = 0; v < n; v++) {
    degrees[v] = rng.int(5) === 0 ? 0 : 1 + rng.int(r);
    for (let e = 0; e < degrees[v]; e++) adjacency[v * r + e] = rng.int(n);
  }
  return { vertexCount: n, maxDegree: r, adjacency, lengths: new Float32Array(n * r), degrees };
}

/** A FANNG-like graph: exact candidates pruned by the occlusion rule (the reference pruner). */
function prunedGraph(data: HostMatrix, r: number): PaddedGraph {
  const n = data.rows;
  const graph: PaddedGraph = {
    vertexCount: n,
    maxDegree: r,
    adjacency: new Uint32Array(n * r).fill(NO_VERTEX),
    lengths: new Float32Array(n * r).fill(Infinity),
    degrees: new Uint32Array(n),
  };
  const c = Math.min(2 * r, Math.max(1, n - 1));
  const cand = knnSqL2Ref(data, data, c, { excludeSelf: true }).indices;
  pruneRef(data, graph, cand, c, { merge: false });
  return graph;
}

const SHAPES: SearchShape[] = [
  { lanes: 8, queriesPerGroup: 1 },
  { lanes: 1, queriesPerGroup: 8 },
  { lanes: 4, queriesPerGroup: 2 },
  { lanes: 32, queriesPerGroup: 2 },
  { lanes: 2, queriesPerGroup: 64 },
  { lanes: 16, queriesPerGroup: 1 },
];

interface Case {
  data: HostMatrix;
  queries: HostMatrix;
  graph: PaddedGraph;
  layout?: BlockLayout;
  self: boolean;
  k: number;
  budget: number;
  ef: number;
  width: number;
  entries: Uint32Array;
  entryStride: number;
  labels?: Int32Array;
  queryLabels?: Int32Array;
  minDistance?: Float32Array;
  minDistanceScale?: number;
  labelPenalty?: number;
  shape: SearchShape;
  stepCap?: number;
  chunk?: number;
  /** Search f16 halves of the vectors (VectorBlocks.toHalf); the reference gets their values. */
  half?: boolean;
}

/** Runs one case on the GPU and in the reference and asserts every output equal. */
async function checkCase(c: Case, what: string): Promise<void> {
  const full = VectorBlocks.fromHost(gpu, c.data, c.layout);
  const vectors = c.half ? await full.toHalf() : full;
  const graph = GpuGraph.fromPadded(gpu, c.graph);
  using fullQueries = VectorBlocks.fromHost(gpu, c.queries, full.layout);
  using halfQueries = c.half ? await fullQueries.toHalf(vectors.halfScale) : undefined;
  const qv = halfQueries ?? fullQueries;
  const data = c.half ? await vectors.toHost() : c.data;
  const queries = c.half && !c.self ? await qv.toHost() : c.self ? data : c.queries;
  const bufs: GpuBuffer[] = [];
  const up = <T extends Int32Array | Float32Array | Uint32Array>(a: T) => {
    const b = GpuBuffer.fromArray(gpu, a);
    bufs.push(b);
    return b;
  };
  try {
    const opts: SearchKernelOptions = {
      k: c.k,
      budget: c.budget,
      ef: c.ef,
      width: c.width,
      entries: up(c.entries.length ? c.entries : new Uint32Array([NO_VERTEX])),
      entryStride: c.entryStride,
      self: c.self,
      labels: c.labels && up(c.labels),
      queryLabels: c.queryLabels && up(c.queryLabels),
      minDistance: c.minDistance && up(c.minDistance),
      minDistanceScale: c.minDistanceScale,
      labelPenalty: c.labelPenalty,
      shape: c.shape,
      stepCap: c.stepCap,
      chunk: c.chunk,
    };
    const out = await noGpuErrors(gpu, () => runSearch(vectors, graph, c.self ? "self" : qv, opts));
    const refOptions: SearchRefOptions = {
      budget: c.budget,
      ef: c.ef,
      width: c.width,
      entries: c.entries.length ? c.entries : new Uint32Array([NO_VERTEX]),
      entryStride: c.entryStride,
      self: c.self,
      filter: {
        labels: c.labels,
        queryLabels: c.queryLabels,
        minDistance: c.minDistance,
        minDistanceScale: c.minDistanceScale,
        labelPenalty: c.labelPenalty,
      },
    };
    const want = searchRef(data, c.graph, queries, c.k, refOptions);
    await assertSameOutputs(out, want, what);
    for (const b of Object.values(out)) b.destroy();
  } finally {
    bufs.forEach((b) => b.destroy());
    vectors.destroy();
    full.destroy();
    graph.destroy();
  }
}

Deno.test("search: GPU matches the reference on randomized cases (sizes, graphs, filters, ef, entries, shapes, rounds)", async () => {
  const rng = new Rng(20);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
  for (let i = 0; i < 48; i++) {
    const n = pick([1, 2, 5, 97, 131, 353]);
    const dims = pick([1, 3, 11, 33]);
    const layout = dims === 11 && rng.int(2)
      ? { count: 3, w4: 1 }
      : dims === 33 && rng.int(2)
      ? { count: 3, w4: 3 }
      : undefined;
    const data = intMatrix(rng, n, dims, 5);
    const self = rng.int(2) === 0;
    const queries = self ? data : intMatrix(rng, pick([1, 7, 70, 150]), dims, 5);
    const q = queries.rows;
    const r = pick([1, 4, 8, 13]);
    const graph = rng.int(2) ? randomGraph(rng, n, r) : prunedGraph(data, r);
    const entryKind = pick(["none", "shared", "perQuery"] as const);
    let entries = new Uint32Array(0), entryStride = 0;
    if (entryKind === "shared") {
      // Repeats, out-of-range ids and more entries than one iteration's slots.
      entries = Uint32Array.from(
        { length: 1 + rng.int(3 * r + 2) },
        () => rng.int(5) ? rng.int(n) : n + rng.int(9),
      );
    } else if (entryKind === "perQuery") {
      entryStride = 1 + rng.int(3);
      entries = Uint32Array.from({ length: q * entryStride }, () => rng.int(n));
    }
    const filter = pick(["none", "labels", "min", "both"] as const);
    const useLabels = filter === "labels" || filter === "both",
      useMin = filter === "min" || filter === "both";
    const c: Case = {
      data,
      queries,
      graph,
      layout,
      self,
      k: pick([1, 2, 7, 10]),
      budget: pick([0, 1, 17, 60, 150]),
      ef: pick([0, 0, 1, 5, 20]),
      width: pick([1, 1, 2, 3]),
      entries,
      entryStride,
      labels: useLabels ? Int32Array.from({ length: n }, () => rng.int(3)) : undefined,
      queryLabels: useLabels ? Int32Array.from({ length: q }, () => rng.int(3)) : undefined,
      minDistance: useMin ? Float32Array.from({ length: q }, () => rng.int(30)) : undefined,
      minDistanceScale: useMin ? pick([1, 1.5, 0.25]) : undefined,
      labelPenalty: useLabels ? pick([1, 1.5, 4, Infinity]) : undefined,
      shape: pick(SHAPES),
      stepCap: pick([undefined, undefined, 1, 2, 5]),
      chunk: q > 64 && rng.int(2) ? 64 : undefined,
    };
    const what =
      `case ${i}: n ${n} d ${dims} q ${q} r ${r} self ${self} k ${c.k} budget ${c.budget} ef ${c.ef} ` +
      `width ${c.width} entries ${entryKind} filter ${filter}${
        c.labelPenalty ? ` (label penalty ${c.labelPenalty})` : ""
      } shape ${c.shape.lanes}x${c.shape.queriesPerGroup} ` +
      `stepCap ${c.stepCap} chunk ${c.chunk}`;
    await checkCase(c, what);
  }
});

Deno.test("search: f16 halves walk as the reference does on their values (self, outside, ef, width, entries, rounds)", async () => {
  const rng = new Rng(23);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
  for (let i = 0; i < 16; i++) {
    const n = pick([1, 5, 97, 353]);
    // One column block of an even number of vec4s: 1, 2, 3 or 8 packed vec4s per row (odd counts: the tail).
    const dims = pick([8, 16, 24, 64]);
    const data = intMatrix(rng, n, dims, 7);
    if (n > 20 && rng.int(2)) data.data[3 * dims + 1] = NaN;
    const self = rng.int(2) === 0;
    const queries = self ? data : intMatrix(rng, pick([1, 70, 150]), dims, 7);
    const r = pick([4, 13]);
    const c: Case = {
      data,
      queries,
      graph: rng.int(2) ? randomGraph(rng, n, r) : prunedGraph(data, r),
      self,
      k: pick([1, 10]),
      budget: pick([17, 150]),
      ef: pick([0, 5, 20]),
      width: pick([1, 2]),
      entries: self ? new Uint32Array(0) : Uint32Array.from({ length: 3 }, () => rng.int(n)),
      entryStride: 0,
      shape: pick(SHAPES),
      stepCap: pick([undefined, 2]),
      chunk: queries.rows > 64 && rng.int(2) ? 64 : undefined,
      half: true,
    };
    const what =
      `half case ${i}: n ${n} d ${dims} q ${queries.rows} r ${r} self ${self} k ${c.k} ef ${c.ef} ` +
      `width ${c.width} shape ${c.shape.lanes}x${c.shape.queriesPerGroup} stepCap ${c.stepCap}`;
    await checkCase(c, what);
  }
});

Deno.test("search: more results than reachable, a big ef, and k past the queue give padded rows like the reference", async () => {
  const rng = new Rng(21);
  const data = intMatrix(rng, 353, 11, 6);
  const graph = prunedGraph(data, 8);
  const shared = new Uint32Array([0, 17, 17, 5000, 300]);
  for (const [k, ef, budget] of [[400, 0, 1000], [3, 300, 2000], [64, 64, 500]]) {
    await checkCase({
      data,
      queries: intMatrix(rng, 67, 11, 6),
      graph,
      self: false,
      k,
      budget,
      ef,
      width: 1,
      entries: shared,
      entryStride: 0,
      shape: SHAPES[0],
      stepCap: 3,
    }, `k ${k} ef ${ef} budget ${budget}`);
  }
});

Deno.test("search: a NaN row or query counts as +Inf away: sorted after every finite result, never out of order", async () => {
  const rng = new Rng(22);
  const data = intMatrix(rng, 120, 6, 5);
  for (const row of [3, 50, 51]) data.data[row * 6 + 2] = NaN;
  const queries = intMatrix(rng, 9, 6, 5);
  queries.data[4 * 6] = NaN; // query 4: every distance NaN
  const graph = prunedGraph({ ...data, data: data.data.map((x) => (Number.isNaN(x) ? 0 : x)) }, 6);
  for (const self of [true, false]) {
    await checkCase({
      data,
      queries: self ? data : queries,
      graph,
      self,
      k: 120,
      budget: 400,
      ef: 0,
      width: 1,
      entries: self ? new Uint32Array(0) : new Uint32Array([3, 0, 9]),
      entryStride: 0,
      shape: SHAPES[0],
    }, `NaN rows, self ${self}`);
  }
  // And the rows themselves: ascending, every +Inf after the finite ones, ties by id.
  const vectors = VectorBlocks.fromHost(gpu, data);
  using g = GpuGraph.fromPadded(gpu, graph);
  using none = GpuBuffer.fromArray(gpu, new Uint32Array([NO_VERTEX]));
  const out = await runSearch(vectors, g, "self", {
    k: 120,
    budget: 400,
    entries: none,
    entryStride: 0,
    self: true,
  });
  const idx = await out.indices.read(), dist = await out.distances.read();
  for (let qi = 0; qi < data.rows; qi++) {
    for (let j = 1; j < 120; j++) {
      const a = dist[qi * 120 + j - 1], b = dist[qi * 120 + j];
      const ia = idx[qi * 120 + j - 1], ib = idx[qi * 120 + j];
      assert.ok(!Number.isNaN(a) && !Number.isNaN(b), "no NaN distance is returned");
      if (ib === NO_VERTEX) continue; // padding (+Inf) closes the row
      assert.ok(ia !== NO_VERTEX && (a < b || (a === b && ia < ib)), `row ${qi} out of order at ${j}`);
    }
  }
  for (const b of Object.values(out)) b.destroy();
  vectors.destroy();
});

Deno.test("search: ef stops early on a good graph, and a larger ef finds more of the true neighbours", async () => {
  const rng = new Rng(23);
  const data = intMatrix(rng, 2000, 8, 16);
  const graph = prunedGraph(data, 16);
  const vectors = VectorBlocks.fromHost(gpu, data);
  using g = GpuGraph.fromPadded(gpu, graph);
  using none = GpuBuffer.fromArray(gpu, new Uint32Array([NO_VERTEX]));
  const truth = knnSqL2Ref(data, data, 10, { excludeSelf: true }).distances;
  const run = async (ef: number) => {
    const out = await runSearch(vectors, g, "self", {
      k: 10,
      budget: 2000,
      ef,
      entries: none,
      entryStride: 0,
      self: true,
    });
    const dist = await out.distances.read(), evals = await out.evaluations.read();
    for (const b of Object.values(out)) b.destroy();
    // Recall by distance (ties between equal distances count as found).
    let hit = 0;
    for (let i = 0; i < data.rows; i++) {
      const kth = truth[i * 10 + 9];
      for (let j = 0; j < 10; j++) if (dist[i * 10 + j] <= kth) hit++;
    }
    return { recall: hit / (10 * data.rows), evals: evals.reduce((a, b) => a + b, 0) / data.rows };
  };
  const small = await run(10), big = await run(64), off = await run(0);
  assert.ok(
    small.evals < big.evals && big.evals < off.evals,
    `evaluations ${small.evals} ${big.evals} ${off.evals}`,
  );
  assert.ok(
    small.recall <= big.recall && big.recall >= 0.99,
    `recall ef 10 ${small.recall}, ef 64 ${big.recall}`,
  );
  vectors.destroy();
});

Deno.test("search ceiling: GPU walk sums and counts match the reference for several shapes", async () => {
  const rng = new Rng(24);
  const data = intMatrix(rng, 211, 19, 4);
  const queries = intMatrix(rng, 77, 19, 4);
  const graph = randomGraph(rng, 211, 12);
  const vectors = VectorBlocks.fromHost(gpu, data, { count: 2, w4: 3 });
  using qv = VectorBlocks.fromHost(gpu, queries, vectors.layout);
  using g = GpuGraph.fromPadded(gpu, graph);
  for (const shape of SHAPES.slice(0, 4)) {
    const out = await noGpuErrors(gpu, () => runCeiling(vectors, g, qv, { steps: 9, shape }));
    const want = ceilingRef(data, graph, queries, out.steps, shape.lanes);
    assert.equal(out.steps, 9);
    assert.deepEqual(
      Array.from(await out.sums.read()),
      Array.from(want.sums),
      `sums, ${JSON.stringify(shape)}`,
    );
    assert.deepEqual(Array.from(await out.evaluations.read()), Array.from(want.evaluations));
    out.sums.destroy();
    out.evaluations.destroy();
  }
  vectors.destroy();
});

Deno.test("nearest edge: GPU matches the reference (layouts, empty rows, NaN, vertex ranges) and a search's first pass", async () => {
  const rng = new Rng(26);
  const cases: { n: number; d: number; layout?: BlockLayout; range?: [number, number] }[] = [
    { n: 1, d: 3 },
    { n: 97, d: 5 },
    { n: 300, d: 16, range: [37, 200] },
    { n: 131, d: 19, layout: { count: 3, w4: 2 } },
    { n: 250, d: 130 },
    { n: 64, d: 1, range: [63, 1] },
  ];
  for (const c of cases) {
    const data = intMatrix(rng, c.n, c.d, 6);
    if (c.n > 10) data.data[7 * c.d] = NaN; // a NaN row: its distances count as +Inf
    const graph = randomGraph(rng, c.n, 1 + rng.int(12));
    const vectors = VectorBlocks.fromHost(gpu, data, c.layout);
    using g = GpuGraph.fromPadded(gpu, graph);
    const [start, count] = c.range ?? [0, c.n];
    const out = await noGpuErrors(
      gpu,
      () => runNearestEdge(vectors, g, { selfStart: start, selfCount: count }),
    );
    const want = nearestEdgeRef(data, graph, start, count);
    const what = JSON.stringify(c);
    assert.deepEqual(Array.from(await out.nearestAny.read()), Array.from(want.nearestAny), `${what}: vertex`);
    assert.deepEqual(
      Array.from(await out.nearestAnyDistance.read()),
      Array.from(want.nearestAnyDistance),
      `${what}: distance`,
    );
    assert.deepEqual(
      Array.from(await out.evaluations.read()),
      Array.from(want.evaluations),
      `${what}: evals`,
    );
    Object.values(out).forEach((b) => b.destroy());
    vectors.destroy();
  }
  // On a FANNG graph (edges sorted, the nearest candidate always kept) it is what a search's first pass
  // finds: the nearest point of any label.
  const data = intMatrix(rng, 400, 6, 20);
  const graph = prunedGraph(data, 8);
  const vectors = VectorBlocks.fromHost(gpu, data);
  using g = GpuGraph.fromPadded(gpu, graph);
  using none = GpuBuffer.fromArray(gpu, new Uint32Array([NO_VERTEX]));
  const edge = await runNearestEdge(vectors, g);
  const pass = await runSearch(vectors, g, "self", {
    k: 1,
    budget: 64,
    ef: 1,
    entries: none,
    entryStride: 0,
    self: true,
  });
  assert.deepEqual(await edge.nearestAnyDistance.read(), await pass.nearestAnyDistance.read());
  const exact = knnSqL2Ref(data, data, 1, { excludeSelf: true }).distances;
  assert.deepEqual(await edge.nearestAnyDistance.read(), Float32Array.from(exact));
  [...Object.values(edge), ...Object.values(pass)].forEach((b) => b.destroy());
  await assert.rejects(
    () => runNearestEdge(vectors, g, { selfStart: 390, selfCount: 20 }),
    /outside 0\.\.399/,
  );
  vectors.destroy();
});

Deno.test("search: out-of-range parameters are UserErrors that name the parameter", async () => {
  const rng = new Rng(25);
  const data = intMatrix(rng, 10, 3);
  const vectors = VectorBlocks.fromHost(gpu, data);
  using g = GpuGraph.fromPadded(gpu, randomGraph(rng, 10, 4));
  using none = GpuBuffer.fromArray(gpu, new Uint32Array([NO_VERTEX]));
  const base = { k: 3, budget: 10, entries: none, entryStride: 0, self: true };
  const bad: [Partial<SearchKernelOptions>, RegExp][] = [
    [{ k: 0 }, /k must be/],
    [{ k: 5000 }, /k must be/],
    [{ budget: -1 }, /budget must be/],
    [{ ef: 2.5 }, /ef must be/],
    [{ width: 0 }, /width must be/],
    [{ labelPenalty: 0.5 }, /labelPenalty must be/],
    [{ labelPenalty: NaN }, /labelPenalty must be/],
    [{ shape: { lanes: 3, queriesPerGroup: 1 } }, /powers of two/],
  ];
  for (const [o, msg] of bad) {
    await assert.rejects(() => runSearch(vectors, g, "self", { ...base, ...o }), (e: Error) => {
      assert.ok(e instanceof UserError, `${JSON.stringify(o)}: ${e}`);
      assert.match(e.message, msg);
      return true;
    });
  }
  vectors.destroy();
});
