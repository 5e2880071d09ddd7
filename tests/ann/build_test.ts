/**
 * The GPU build (lib/ann/build.ts, lib/ann/candidates.ts): pruning presorted kNN lists and the robust-pruning
 * scale against the reference, the partition, builds through the partition path (awkward sizes, the
 * occlusion rule, determinism, recall floors), refresh after the points moved, and option errors.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { UserError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { knnSqL2Ref } from "../../lib/ops/knn.ts";
import { VectorBlocks } from "../../lib/ann/vectors.ts";
import { GpuGraph } from "../../lib/ann/gpu_graph.ts";
import { NO_VERTEX, occlusionViolations, validateGraph } from "../../lib/ann/graph.ts";
import { prune, pruneRef } from "../../lib/ann/prune.ts";
import { emptyHostLists, knnMergeRef, NEW } from "../../lib/ann/knn_graph.ts";
import { partitionRows } from "../../lib/ann/candidates.ts";
import { type FanngBuildOptions, FanngIndex } from "../../lib/ann/index.ts";
import { assertSameGraph, blobs, emptyPadded, intMatrix, noGpuErrors, recallAt } from "./helpers.ts";

const gpu = await getGpu();

/** Exact kNN lists of width `width` (every other point offered to every row), with NEW flags. */
function exactLists(data: HostMatrix, width: number) {
  const n = data.rows, l = emptyHostLists(n, width);
  const all = Uint32Array.from({ length: n * n }, (_, i) => i % n);
  knnMergeRef(data, l, 0, n, all, n, Uint32Array.from({ length: n }, (_, i) => i));
  return l;
}

Deno.test("prune: presorted kNN lists give the computed-candidate graph; alpha > 1 matches the reference", async () => {
  const rng = new Rng(21);
  for (const [n, d, r, c] of [[1, 3, 4, 4], [2, 2, 3, 3], [131, 6, 7, 16], [263, 1, 5, 9]]) {
    const data = intMatrix(rng, n, d);
    const lists = exactLists(data, c);
    using vectors = VectorBlocks.fromHost(gpu, data);
    using ids = GpuBuffer.fromArray(gpu, lists.ids, [n, c]);
    using dists = GpuBuffer.fromArray(gpu, lists.dists, [n, c]);
    // The reference over plain candidates (flags stripped, distances computed).
    const plain = lists.ids.map((e) => (e === NO_VERTEX ? e : (e & ~NEW) >>> 0));
    const want = emptyPadded(n, r);
    pruneRef(data, want, plain, c, { merge: false });
    const wantPre = emptyPadded(n, r);
    pruneRef(data, wantPre, lists.ids, c, { merge: false, extraDistances: lists.dists });
    assertSameGraph(wantPre, want, `reference presorted n=${n}`);
    using graph = new GpuGraph(gpu, n, r);
    await noGpuErrors(
      gpu,
      () => prune(vectors, graph, ids, { merge: false, extraDistances: dists, checkCap: 5 }),
    );
    assertSameGraph(await graph.toPadded(), want, `GPU presorted n=${n}`);
    // Robust pruning keeps at least as many edges, identically on both sides, also when merging.
    for (const alpha of [1.3, 2]) {
      const wantA = emptyPadded(n, r);
      pruneRef(data, wantA, plain, c, { merge: false, alpha });
      using g = new GpuGraph(gpu, n, r);
      using plainBuf = GpuBuffer.fromArray(gpu, plain, [n, c]);
      await prune(vectors, g, plainBuf, { merge: false, alpha });
      assertSameGraph(await g.toPadded(), wantA, `alpha ${alpha} n=${n}`);
      for (let v = 0; v < n; v++) assert.ok(wantA.degrees[v] >= Math.min(want.degrees[v], r));
      const extra = Uint32Array.from({ length: n * 3 }, () => rng.int(n + 1));
      using extraBuf = GpuBuffer.fromArray(gpu, extra, [n, 3]);
      await prune(vectors, g, extraBuf, { merge: true, onlyWithExtra: true, alpha });
      pruneRef(data, wantA, extra, 3, { merge: true, onlyWithExtra: true, alpha });
      assertSameGraph(await g.toPadded(), wantA, `alpha ${alpha} merge n=${n}`);
    }
  }
  await assert.rejects(
    async () => {
      using v = VectorBlocks.fromHost(gpu, intMatrix(rng, 4, 2));
      using g = new GpuGraph(gpu, 4, 2);
      using e = GpuBuffer.fromArray(gpu, new Uint32Array(8), [4, 2]);
      await prune(v, g, e, { merge: false, alpha: 0.5 });
    },
    UserError,
  );
});

Deno.test("partition: a permutation grouped by home cluster; every point a member of its home", async () => {
  const rng = new Rng(22);
  for (const [n, clusters, overlap] of [[1, 1, 2], [5, 3, 2], [997, 13, 3], [1500, 1, 1]]) {
    const data = blobs(rng, n, 5, 4).data;
    using x = GpuBuffer.fromArray(gpu, data.data, [n, 5]);
    const part = await partitionRows(x, clusters, overlap, 200, new Rng(3));
    assert.deepEqual(Array.from(part.order).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
    const k = part.offsets.length - 1;
    assert.equal(part.offsets[k], n);
    assert.equal(part.members.length, n * Math.min(overlap, k));
    for (let c = 0; c < k; c++) {
      const members = new Set(part.members.subarray(part.memberOffsets[c], part.memberOffsets[c + 1]));
      for (let b = part.offsets[c]; b < part.offsets[c + 1]; b++) {
        assert.ok(members.has(b), `home ${b} in ${c}`);
      }
      for (let b = part.offsets[c] + 1; b < part.offsets[c + 1]; b++) {
        assert.ok(part.order[b - 1] < part.order[b]);
      }
    }
  }
});

/** Builds and checks the structure and the occlusion rule. */
async function checkedBuild(data: HostMatrix, options: FanngBuildOptions): Promise<FanngIndex> {
  const index = await noGpuErrors(gpu, () => FanngIndex.build(gpu, data, options));
  validateGraph(index.graph);
  assert.equal(index.graph.vertexCount, data.rows);
  if ((options.alpha ?? 1) === 1) {
    assert.deepEqual(occlusionViolations(index.graph, data, { limit: 3 }), [], "occlusion rule");
  }
  return index;
}

async function selfRecall(index: FanngIndex, data: HostMatrix, budget: number): Promise<number> {
  const k = Math.min(10, data.rows - 1);
  using res = await index.selfSearch(k, { budget });
  const truth = knnSqL2Ref(data, data, k, { excludeSelf: true }).indices;
  return recallAt(await res.indices.read(), truth, data.rows, k);
}

Deno.test("build: partition path at awkward sizes; deterministic; recall floors", async () => {
  const rng = new Rng(23);
  // Tiny sets forced through the partition path (exactLimit 1).
  for (const n of [2, 3, 17, 67]) {
    const data = intMatrix(rng, n, 3, 50);
    using index = await checkedBuild(data, { exactLimit: 1, clusterSize: 16, candidates: 8, maxDegree: 4 });
    assert.ok(index.stats.clusters >= 1);
  }
  const data = blobs(rng, 4001, 12, 20, 3).data;
  const options = {
    exactLimit: 1000,
    clusterSize: 300,
    maxClusterSize: 300,
    candidates: 32,
    maxDegree: 16,
    seed: 5,
    descentBelowRecall: 1, // NN-descent runs (the blocks' estimated recall is 0.997)
  };
  using a = await checkedBuild(data, options);
  using b = await checkedBuild(data, options);
  assert.deepEqual(a.graph.neighbours, b.graph.neighbours, "equal seeds, equal graphs");
  assert.deepEqual(a.graph.entries, b.graph.entries);
  assert.ok(a.stats.clusters === 13 && a.stats.descentUpdates.length >= 1, JSON.stringify(a.stats));
  const r = await selfRecall(a, data, 256);
  assert.ok(r >= 0.97, `self-search recall@10 ${r}`);
  // By default NN-descent does not start after blocks this good, and the recall holds.
  using skipped = await checkedBuild(data, { ...options, descentBelowRecall: undefined });
  assert.ok(skipped.stats.blockRecall >= 0.99 && skipped.stats.descentUpdates.length === 0);
  assert.ok((await selfRecall(skipped, data, 256)) >= 0.97);
  // Without overlap or NN-descent the clusters' borders are poorly linked: recall drops.
  using c = await checkedBuild(data, { ...options, clusterOverlap: 1, descentIters: 0 });
  const rc = await selfRecall(c, data, 256);
  assert.ok(rc < r, `recall without overlap ${rc} vs ${r}`);
  // Robust pruning (alpha 1.2) keeps more edges.
  using d = await checkedBuild(data, { ...options, alpha: 1.2 });
  assert.ok(d.graph.neighbours.length > a.graph.neighbours.length);
});

Deno.test("build: the partition coarsens until its blocks reach the recall target; exact fallback without clusters", async () => {
  const rng = new Rng(26);
  const data = blobs(rng, 4000, 12, 20, 3).data;
  // Clusters of 125 without overlap split the 20 blobs of 200: too poor; a coarser partition is kept.
  using a = await checkedBuild(data, {
    exactLimit: 500,
    clusterSize: 125,
    maxClusterSize: 4000,
    clusterOverlap: 1,
    blockRecallTarget: 0.95,
    maxDegree: 12,
  });
  assert.ok(a.stats.blockRecall >= 0.95 && a.stats.clusters < 32, JSON.stringify(a.stats));
  assert.ok(a.stats.seconds["blocks"] !== undefined);
  // Random 64-d vectors have no cluster structure: blocks would find little, so candidates are exact.
  const random: HostMatrix = { rows: 3000, cols: 64, data: rng.normalArray(3000 * 64) };
  const options = { exactLimit: 500, clusterSize: 100, maxClusterSize: 200, maxDegree: 12 };
  using b = await checkedBuild(random, options);
  assert.ok(b.stats.blockRecall < 0.5, JSON.stringify(b.stats));
  assert.ok(b.stats.seconds["candidates"] !== undefined && b.stats.seconds["blocks"] === undefined);
  assert.ok((await selfRecall(b, random, 512)) >= 0.8);
  // Without the fallback, the partition path runs anyway.
  using c = await checkedBuild(random, { ...options, exactFallback: 0 });
  assert.ok(c.stats.seconds["blocks"] !== undefined);
});

Deno.test("build: refresh after the points moved obeys the rule and keeps the recall of a fresh build", async () => {
  const rng = new Rng(24);
  const data = blobs(rng, 3001, 10, 15, 3).data;
  const moved: HostMatrix = { ...data, data: data.data.map((x) => x + 0.15 * rng.normal()) };
  const options = { exactLimit: 500, clusterSize: 250, candidates: 24, maxDegree: 12 };
  using index = await checkedBuild(data, options);
  await noGpuErrors(gpu, () => index.refresh(moved));
  validateGraph(index.graph);
  assert.deepEqual(occlusionViolations(index.graph, moved, { limit: 3 }), [], "occlusion rule after refresh");
  using fresh = await checkedBuild(moved, options);
  const refreshed = await selfRecall(index, moved, 192), built = await selfRecall(fresh, moved, 192);
  assert.ok(refreshed >= built - 0.02, `refresh recall ${refreshed} vs fresh ${built}`);
  assert.ok(index.stats.seconds["seeds"] !== undefined && index.stats.seconds["blocks"] === undefined);
  await assert.rejects(() => index.refresh({ rows: 3000, cols: 10, data: moved.data.subarray(0, 30000) }));
});

Deno.test("build: bad options are UserErrors that name the option", async () => {
  const data = intMatrix(new Rng(25), 50, 3);
  const bad: [FanngBuildOptions, RegExp][] = [
    [{ candidates: 0 }, /candidates/],
    [{ alpha: 0.9 }, /alpha/],
    [{ descentForward: 20, descentPerHub: 10 }, /descentPerHub/],
    [{ clusterOverlap: 0 }, /clusterOverlap/],
    [{ descentStop: -1 }, /descentStop/],
  ];
  for (const [options, message] of bad) {
    await assert.rejects(() => FanngIndex.build(gpu, data, options), (e: Error) => {
      assert.ok(e instanceof UserError && message.test(e.message), e.message);
      return true;
    });
  }
});
