/**
 * FanngIndex end to end: recall floors against exact kNN (random data and a Fashion-MNIST subset, through
 * both construction paths), filtered search against an exact filtered brute force, the occlusion rule on
 * every built graph, degenerate inputs, refresh, save/load and file errors.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { UserError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { knnSqL2Ref } from "../../lib/ops/knn.ts";
import { FASHION_MNIST_DIR, loadIdxSplit } from "../../lib/data/idx.ts";
import { FanngIndex } from "../../lib/ann/index.ts";
import { searchDefaults } from "../../lib/ann/search_defaults.ts";
import { degreeStats, NO_VERTEX, occlusionViolations, validateGraph } from "../../lib/ann/graph.ts";
import { decodeGraph } from "../../lib/ann/file.ts";
import { sqDistRows } from "../../lib/ann/distance_ref.ts";
import { blobs, noGpuErrors, recallAt } from "./helpers.ts";

const gpu = await getGpu();

/** Builds, then checks the structure and the occlusion rule of the graph (every built graph gets this). */
async function checkedBuild(
  data: HostMatrix | GpuBuffer<"f32">,
  host: HostMatrix,
  options = {},
): Promise<FanngIndex> {
  const index = await noGpuErrors(gpu, () => FanngIndex.build(gpu, data, options));
  validateGraph(index.graph);
  assert.equal(index.graph.vertexCount, host.rows);
  // A graph built in a projection obeys the rule between the projected rows.
  const space = index.graph.projection ? await index.walkVectors.toHost() : host;
  assert.deepEqual(occlusionViolations(index.graph, space, { limit: 3 }), [], "occlusion rule");
  return index;
}

function exact(base: HostMatrix, queries: HostMatrix, k: number, self = false): Uint32Array {
  return knnSqL2Ref(queries, base, k, self ? { excludeSelf: true } : {}).indices;
}

Deno.test("index: random 24-d blobs, exact and insertion builds, self and outside recall", async () => {
  const rng = new Rng(11);
  // Queries from the same clusters as the data.
  const all = blobs(rng, 3300, 24, 30, 3).data;
  const data = { rows: 3000, cols: 24, data: all.data.subarray(0, 3000 * 24) };
  const queries = { rows: 300, cols: 24, data: all.data.subarray(3000 * 24) };
  const selfTruth = exact(data, data, 10, true);
  const truth = exact(data, queries, 10);
  // exactLimit 4096 > N: candidates from exact kNN; 700: insertion through the graph, then traverse-add.
  for (const options of [{}, { exactLimit: 700, traverseAddIters: 0.5 }]) {
    using index = await checkedBuild(data, data, options);
    using self = await index.selfSearch(10, { budget: 256 });
    const selfRecall = recallAt(await self.indices.read(), selfTruth, data.rows, 10);
    using res = await index.search(queries, 10, { budget: 256 });
    const recall = recallAt(await res.indices.read(), truth, queries.rows, 10);
    assert.ok(selfRecall >= 0.9, `self-search recall ${selfRecall} (${JSON.stringify(options)})`);
    assert.ok(recall >= 0.95, `search recall ${recall} (${JSON.stringify(options)})`);
    assert.ok(self.evaluations <= 256 && self.evaluations > 10);
    // The nearest-any output is the true nearest neighbour for nearly every point.
    const any = await self.nearestAny.read();
    let same = 0;
    for (let i = 0; i < data.rows; i++) same += any[i] === selfTruth[i * 10] ? 1 : 0;
    assert.ok(same / data.rows >= 0.97, `nearest-any agreement ${same / data.rows}`);
  }
});

Deno.test("index: Fashion-MNIST subset through the PCA path, recall floors", async () => {
  const train = await loadIdxSplit(FASHION_MNIST_DIR, "train");
  const test = await loadIdxSplit(FASHION_MNIST_DIR, "t10k");
  const n = 5000, q = 500, d = 784;
  const base: HostMatrix = { rows: n, cols: d, data: train.features.data.subarray(0, n * d) };
  const queries: HostMatrix = { rows: q, cols: d, data: test.features.data.subarray(0, q * d) };
  const selfSample = Uint32Array.from({ length: 400 }, (_, i) => i * 12);
  const sampleRows: HostMatrix = {
    rows: selfSample.length,
    cols: d,
    data: Float32Array.from(
      { length: selfSample.length * d },
      (_, j) => base.data[selfSample[Math.floor(j / d)] * d + (j % d)],
    ),
  };
  // Exact answers for the sample (self excluded: ask for 11 and drop the point itself).
  const raw = exact(base, sampleRows, 11);
  const selfTruth = new Uint32Array(selfSample.length * 10);
  selfSample.forEach((v, i) =>
    selfTruth.set(Array.from(raw.subarray(i * 11, i * 11 + 11)).filter((x) => x !== v).slice(0, 10), i * 10)
  );
  const truth = exact(base, queries, 10);
  // exactLimit 2000: the first 2,000 points get exact candidates, the rest are inserted through the graph.
  using index = await checkedBuild(base, base, { exactLimit: 2000 });
  assert.equal(index.stats.projectionDims, 96);
  using self = await index.selfSearch(10, { budget: 128 });
  const all = await self.indices.read();
  const picked = new Uint32Array(selfSample.length * 10);
  selfSample.forEach((v, i) => picked.set(all.subarray(v * 10, v * 10 + 10), i * 10));
  const selfRecall = recallAt(picked, selfTruth, selfSample.length, 10);
  using res = await index.search(queries, 10, { budget: 256 });
  const recall = recallAt(await res.indices.read(), truth, q, 10);
  assert.ok(selfRecall >= 0.93, `self-search recall@10 ${selfRecall}`);
  assert.ok(recall >= 0.95, `test-query recall@10 ${recall}`);
  assert.ok(degreeStats(index.graph).zero === 0, "every vertex has an edge");
});

Deno.test("index: a projected index re-ranks by true distance, filters in the vectors, and keeps its basis through save, load and refresh", async () => {
  const train = await loadIdxSplit(FASHION_MNIST_DIR, "train");
  const n = 3000, q = 200, d = 784;
  const base: HostMatrix = { rows: n, cols: d, data: train.features.data.subarray(0, n * d) };
  const queries: HostMatrix = { rows: q, cols: d, data: train.features.data.subarray(n * d, (n + q) * d) };
  const labels = Int32Array.from(train.labels.subarray(0, n));
  const truth = exact(base, queries, 10);
  using index = await checkedBuild(base, base, { exactLimit: 1000, projectionDims: 48 });
  assert.equal(index.graph.projection?.dims, 48);
  assert.equal(index.walkVectors.dims, 48);
  // Re-ranked results carry true squared distances, ascending; more candidates find more true neighbours.
  using few = await index.search(queries, 10, { rerank: 10 });
  using many = await index.search(queries, 10, { rerank: 64 });
  const [idx, dist] = [await many.indices.read(), await many.distances.read()];
  for (let i = 0; i < q; i += 17) {
    for (let j = 0; j < 10; j++) {
      const want = sqDistRows(queries, i, base, idx[i * 10 + j]);
      assert.ok(
        Math.abs(dist[i * 10 + j] - want) <= 1e-4 * want,
        `query ${i} result ${j}: ${dist[i * 10 + j]} vs ${want}`,
      );
      if (j > 0) assert.ok(dist[i * 10 + j] >= dist[i * 10 + j - 1]);
    }
  }
  const recallFew = recallAt(await few.indices.read(), truth, q, 10);
  const recallMany = recallAt(idx, truth, q, 10);
  assert.ok(
    recallMany >= 0.95 && recallMany > recallFew,
    `rerank 64: ${recallMany}, rerank 10: ${recallFew}`,
  );
  assert.deepEqual(await many.nearestAny.read(), Uint32Array.from({ length: q }, (_, i) => idx[i * 10]));
  // rerank 0 walks the vectors themselves over the same graph.
  using walked = await index.search(queries, 10, { rerank: 0, ef: 64 });
  assert.ok(recallAt(await walked.indices.read(), truth, q, 10) >= 0.9);
  await assert.rejects(() => index.search(queries, 10, { rerank: -1 }), UserError);
  // A label filter walks the vectors: what it keeps is exact (other labels only, true distances).
  using self = await index.selfSearch(5, { filter: { labels, queryLabels: labels } });
  const [sIdx, sDist] = [await self.indices.read(), await self.distances.read()];
  for (let v = 0; v < n; v += 97) {
    for (let j = 0; j < 5; j++) {
      const u = sIdx[v * 5 + j];
      if (u === NO_VERTEX) continue;
      assert.notEqual(labels[u], labels[v]);
      const want = sqDistRows(base, v, base, u);
      assert.ok(Math.abs(sDist[v * 5 + j] - want) <= 1e-4 * want);
    }
  }
  // Save and load: the same basis, the same results.
  const loaded = await FanngIndex.fromGraph(gpu, decodeGraph(index.toBytes()), base);
  assert.deepEqual(loaded.graph.projection, index.graph.projection);
  // Two searches started together (the first projected searches: they share the halves one of them makes).
  const [again, twice] = await Promise.all([0, 1].map(() => loaded.search(queries, 10, { rerank: 64 })));
  assert.deepEqual(await again.indices.read(), idx);
  assert.deepEqual(await twice.indices.read(), idx);
  [again, twice].forEach((r) => r[Symbol.dispose]());
  // Refresh after the points moved: the same basis, the graph rebuilt in it, the rule kept.
  const moved = { ...base, data: base.data.map((x, i) => x + 0.01 * Math.sin(i)) };
  await loaded.refresh(moved);
  assert.deepEqual(loaded.graph.projection, index.graph.projection);
  assert.deepEqual(occlusionViolations(loaded.graph, await loaded.walkVectors.toHost(), { limit: 3 }), []);
  using after = await loaded.search(moved, 1, { entryPoints: "fixed" });
  const selfHits = Array.from(await after.indices.read()).filter((v, i) => v === i).length;
  assert.ok(selfHits / n >= 0.99, `after refresh, each moved point finds itself: ${selfHits / n}`);
  loaded[Symbol.dispose]();
});

/** The miner's two calls: eps from an unfiltered pass, then other labels outside kappa * eps. */
async function checkFiltered(
  data: HostMatrix,
  labels: Int32Array,
  kappa: number,
  budget: number,
  floor: number,
): Promise<void> {
  const k = 8;
  using index = await checkedBuild(data, data);
  using labelBuf = GpuBuffer.fromArray(gpu, labels);
  // The nearest pass of the one-call form below uses the "nearest" ef; the filtered pass spends its budget.
  using first = await index.selfSearch(1, { budget: 64, ef: searchDefaults("nearest").ef });
  const eps = await first.nearestAnyDistance.read();
  using res = await index.selfSearch(k, {
    budget,
    ef: 0,
    filter: {
      labels: labelBuf,
      queryLabels: labelBuf,
      minDistance: first.nearestAnyDistance,
      minDistanceScale: kappa,
    },
  });
  const idx = await res.indices.read(), dist = await res.distances.read();
  // Every result qualifies: other label, outside the radius, ascending.
  for (let i = 0; i < data.rows; i++) {
    for (let j = 0; j < k; j++) {
      const c = idx[i * k + j];
      if (c === NO_VERTEX) {
        assert.equal(dist[i * k + j], Infinity);
        continue;
      }
      assert.notEqual(labels[c], labels[i]);
      assert.ok(dist[i * k + j] > Math.fround(kappa * eps[i]), "outside the exclusion radius");
      if (j > 0) assert.ok(dist[i * k + j] >= dist[i * k + j - 1]);
    }
  }
  const radius = eps.map((e) => Math.fround(kappa * e));
  const truth = knnSqL2Ref(data, data, k, {
    rowLabels: labels,
    colLabels: labels,
    labelMode: "different",
    rowMinDistance: radius,
  }).indices;
  const recall = recallAt(idx, truth, data.rows, k);
  assert.ok(recall >= floor, `filtered recall@${k} ${recall} (kappa ${kappa}, budget ${budget})`);
  // The one-call form (minDistanceScale without minDistance) runs the same first pass itself.
  using one = await index.selfSearch(k, {
    budget,
    ef: 0,
    nearestBudget: 64,
    filter: { labels, queryLabels: labels, minDistanceScale: kappa },
  });
  assert.deepEqual(await one.indices.read(), idx);
  assert.deepEqual(await one.nearestAnyDistance.read(), eps);
  assert.ok(Math.abs(one.evaluations - (first.evaluations + res.evaluations)) < 1e-6);
}

Deno.test("index: filtered self-search keeps only qualifying results and matches exact filtered kNN", async () => {
  // Overlapping classes (like real embeddings).
  const near = blobs(new Rng(13), 2500, 8, 8, 2);
  await checkFiltered(near.data, near.labels, 2, 512, 0.95);
  // Well-separated classes: each search must walk through its whole class (~300 points) and cross to
  // another cluster over edges that traverse-add created.
  const apart = blobs(new Rng(14), 2500, 16, 8, 2.5);
  await checkFiltered(apart.data, apart.labels, 4, 2048, 0.99);
});

Deno.test("index: degenerate inputs (N = 1, N < k, duplicates, all-equal points, D = 1)", async () => {
  // N = 1: no edges, self-search finds nothing, a query finds the point.
  {
    const one = { rows: 1, cols: 3, data: new Float32Array([1, 2, 3]) };
    using index = await checkedBuild(one, one);
    using self = await index.selfSearch(4);
    assert.deepEqual(Array.from(await self.indices.read()), [NO_VERTEX, NO_VERTEX, NO_VERTEX, NO_VERTEX]);
    assert.equal((await self.nearestAny.read())[0], NO_VERTEX);
    using res = await index.search({ rows: 1, cols: 3, data: new Float32Array([1, 2, 4]) }, 2);
    assert.deepEqual(Array.from(await res.indices.read()), [0, NO_VERTEX]);
    assert.deepEqual(Array.from(await res.distances.read()), [1, Infinity]);
  }
  // N < k: every other point, then padding.
  {
    const five = { rows: 5, cols: 2, data: new Float32Array([0, 0, 1, 0, 3, 0, 0, 5, 9, 9]) };
    using index = await checkedBuild(five, five);
    using self = await index.selfSearch(8, { budget: 100 });
    const idx = await self.indices.read();
    assert.deepEqual(Array.from(idx.subarray(0, 8)), [
      1,
      2,
      3,
      4,
      NO_VERTEX,
      NO_VERTEX,
      NO_VERTEX,
      NO_VERTEX,
    ]);
  }
  // Duplicates: each point's duplicate is its nearest other point, at distance 0.
  {
    const rng = new Rng(14);
    const half = rng.normalArray(200 * 6);
    const dup = { rows: 400, cols: 6, data: new Float32Array([...half, ...half]) };
    using index = await checkedBuild(dup, dup);
    using self = await index.selfSearch(1, { budget: 64 });
    const idx = await self.indices.read(), dist = await self.distances.read();
    for (let i = 0; i < 400; i++) {
      assert.equal(idx[i], (i + 200) % 400);
      assert.equal(dist[i], 0);
    }
  }
  // All points equal: every edge has length 0 (no occlusion), results are other points at distance 0.
  {
    const same = { rows: 300, cols: 4, data: new Float32Array(1200).fill(0.5) };
    using index = await checkedBuild(same, same, { exactLimit: 100 });
    using self = await index.selfSearch(5, { budget: 32 });
    const idx = await self.indices.read(), dist = await self.distances.read();
    for (let i = 0; i < 300; i++) {
      for (let j = 0; j < 5; j++) {
        assert.notEqual(idx[i * 5 + j], i);
        assert.ok(idx[i * 5 + j] < 300);
        assert.equal(dist[i * 5 + j], 0);
      }
    }
  }
  // D = 1: points on a line; the exact neighbours are found.
  {
    const rng = new Rng(15);
    const line = { rows: 1000, cols: 1, data: rng.uniformArray(1000, 0, 100) };
    using index = await checkedBuild(line, line, { exactLimit: 300 });
    using self = await index.selfSearch(5, { budget: 64 });
    const recall = recallAt(await self.indices.read(), exact(line, line, 5, true), 1000, 5);
    assert.ok(recall >= 0.95, `D = 1 recall ${recall}`);
  }
  // Empty data and wrong shapes.
  {
    const empty = { rows: 0, cols: 3, data: new Float32Array(0) };
    using index = await FanngIndex.build(gpu, empty);
    using res = await index.search({ rows: 2, cols: 3, data: new Float32Array(6) }, 3);
    assert.deepEqual(Array.from(await res.indices.read()), new Array(6).fill(NO_VERTEX));
    await assert.rejects(() => index.search({ rows: 1, cols: 2, data: new Float32Array(2) }, 1), UserError);
    await assert.rejects(() => index.search({ rows: 1, cols: 3, data: new Float32Array(3) }, 0), UserError);
    await assert.rejects(() => index.selfSearch(1, { budget: 1e9 }), UserError);
  }
});

Deno.test("index: refresh after the points moved keeps the rule and the recall; built from a GPU buffer", async () => {
  const rng = new Rng(16);
  const { data } = blobs(rng, 2000, 32, 20, 3);
  using buf = GpuBuffer.fromArray(gpu, data.data, [data.rows, data.cols]);
  using index = await checkedBuild(buf, data, { exactLimit: 500 });
  const moved = { ...data, data: data.data.map((x) => x + 0.15 * rng.normal()) };
  buf.write(moved.data);
  const same = await noGpuErrors(gpu, () => index.refresh(buf));
  assert.equal(same, index);
  validateGraph(index.graph);
  assert.deepEqual(occlusionViolations(index.graph, moved, { limit: 3 }), []);
  using self = await index.selfSearch(10, { budget: 256 });
  const recall = recallAt(await self.indices.read(), exact(moved, moved, 10, true), moved.rows, 10);
  assert.ok(recall >= 0.9, `recall after refresh ${recall}`);
  await assert.rejects(() => index.refresh({ rows: 10, cols: 32, data: new Float32Array(320) }), UserError);
});

Deno.test("index: fromGraph with refreshStateBytes refreshes exactly like the original; damaged state is a UserError", async () => {
  const rng = new Rng(17);
  const { data } = blobs(rng, 1200, 16, 12, 3);
  const opts = { exactLimit: 300, quiet: true };
  using original = await FanngIndex.build(gpu, data, opts);
  const state = await original.refreshStateBytes();
  using restored = await FanngIndex.fromGraph(gpu, original.graph, data, "the saved graph", state);
  const moved = { ...data, data: data.data.map((x) => x + 0.1 * rng.normal()) };
  await original.refresh(moved, opts);
  await restored.refresh(moved, opts);
  assert.deepEqual(restored.graph.neighbours, original.graph.neighbours);
  assert.deepEqual(restored.graph.offsets, original.graph.offsets);
  await assert.rejects(
    () =>
      FanngIndex.fromGraph(gpu, original.graph, data, "the saved graph", state.subarray(0, state.length - 4)),
    (e: unknown) =>
      e instanceof UserError && /the saved graph is not a valid FANNG refresh state/.test(e.message),
  );
});

Deno.test("index: save/load round trip gives the same graph and results; bad files and data are UserErrors", async () => {
  const rng = new Rng(17);
  const { data } = blobs(rng, 800, 12, 10);
  using index = await checkedBuild(data, data);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/index.fanng`;
    await index.save(path);
    using loaded = await FanngIndex.load(gpu, path, data);
    assert.deepEqual(loaded.graph, index.graph);
    using a = await index.search(data, 5, { budget: 64, entryPoints: "sampled", seed: 3 });
    using b = await loaded.search(data, 5, { budget: 64, entryPoints: "sampled", seed: 3 });
    assert.deepEqual(await b.indices.read(), await a.indices.read());
    await assert.rejects(
      () => FanngIndex.load(gpu, path, { rows: 800, cols: 11, data: new Float32Array(8800) }),
      (e) => {
        assert.ok(e instanceof UserError);
        assert.match((e as Error).message, /pass the vectors the index was built on/);
        return true;
      },
    );
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 9));
    await assert.rejects(() => FanngIndex.load(gpu, path, data), (e) => {
      assert.ok(e instanceof UserError);
      assert.match((e as Error).message, /truncated/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  index[Symbol.dispose]();
  await assert.rejects(() => index.selfSearch(1), /after dispose/);
});
