/**
 * The kNN-list kernels of the build (kernels/fanng.wgsl knn_merge, nnd_join, list_head) against their
 * plain-TS references on integer-valued data (distances exact in f32: GPU and reference agree bit for bit,
 * ties by id included), at awkward sizes, over several column blocks and with work split over dispatches.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { Rng } from "../../lib/util/rng.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { knnSqL2Ref } from "../../lib/ops/knn.ts";
import { type BlockLayout, VectorBlocks } from "../../lib/ann/vectors.ts";
import { NO_VERTEX } from "../../lib/ann/graph.ts";
import {
  emptyHostLists,
  encodeKnnMerge,
  type HostLists,
  KnnLists,
  knnMergeRef,
  listHeads,
  NEW,
  nnDescentIteration,
  nnDescentIterationRef,
  type NnDescentOptions,
} from "../../lib/ann/knn_graph.ts";
import { blobs, intMatrix, noGpuErrors, recallAt } from "./helpers.ts";

const gpu = await getGpu();

function assertSameLists(got: HostLists, want: HostLists, what: string): void {
  for (let v = 0; v < want.n; v++) {
    const w = want.width;
    assert.deepEqual(
      Array.from(got.ids.subarray(v * w, (v + 1) * w)),
      Array.from(want.ids.subarray(v * w, (v + 1) * w)),
      `${what}: ids of row ${v}`,
    );
    assert.deepEqual(
      Array.from(got.dists.subarray(v * w, (v + 1) * w)),
      Array.from(want.dists.subarray(v * w, (v + 1) * w)),
      `${what}: distances of row ${v}`,
    );
  }
}

/** A random block of `count` queries: `cols` local results over a map of `base` vertices (with gaps). */
function randomBlock(rng: Rng, n: number, count: number, cols: number, base: number) {
  const map = Uint32Array.from({ length: base }, () => (rng.int(10) === 0 ? n + rng.int(3) : rng.int(n)));
  const results = Uint32Array.from({ length: count * cols }, () => {
    const r = rng.int(12);
    return r === 0 ? NO_VERTEX : r === 1 ? base + rng.int(4) : rng.int(base);
  });
  return { map, results };
}

async function mergeBoth(
  data: HostMatrix,
  vectors: VectorBlocks,
  lists: KnnLists,
  ref: HostLists,
  rng: Rng,
  q0: number,
  count: number,
  cols: number,
  colsPerDispatch?: number,
): Promise<void> {
  const { map, results } = randomBlock(rng, data.rows, count, cols, 1 + rng.int(40));
  using mapBuf = GpuBuffer.fromArray(gpu, map);
  using resBuf = GpuBuffer.fromArray(gpu, results, [count, cols]);
  await noGpuErrors(gpu, async () => {
    const batch = new CommandBatch(gpu);
    await encodeKnnMerge(batch, vectors, lists, { q0, count, results: resBuf, map: mapBuf }, colsPerDispatch);
    await batch.submit();
  });
  knnMergeRef(data, ref, q0, count, results, cols, map);
}

Deno.test("knn merge: GPU matches the reference (sizes 1, primes, several blocks, split columns)", async () => {
  const rng = new Rng(11);
  const cases: [number, number, number, BlockLayout | undefined, number | undefined][] = [
    [1, 3, 4, undefined, undefined],
    [2, 5, 1, undefined, undefined],
    [97, 7, 6, undefined, 2],
    [331, 13, 9, { count: 3, w4: 2 }, undefined],
    [200, 1, 8, undefined, 3], // D = 1: many equal distances, ties by id
  ];
  for (const [n, d, width, layout, colsPer] of cases) {
    const data = intMatrix(rng, n, d);
    using vectors = VectorBlocks.fromHost(gpu, data, layout);
    using lists = KnnLists.empty(gpu, n, width);
    const ref = emptyHostLists(n, width);
    for (let round = 0; round < 4; round++) {
      const q0 = rng.int(n), count = 1 + rng.int(n - q0);
      await mergeBoth(data, vectors, lists, ref, rng, q0, count, 1 + rng.int(2 * width), colsPer);
    }
    assertSameLists(await lists.toHost(), ref, `merge n=${n} d=${d} width=${width}`);
    // Every row sorted by (distance, id), no id twice, never the vertex itself.
    for (let v = 0; v < n; v++) {
      const ids = Array.from(ref.ids.subarray(v * width, (v + 1) * width)).filter((e) => e !== NO_VERTEX)
        .map((e) => (e & ~NEW) >>> 0);
      assert.equal(new Set(ids).size, ids.length, `row ${v} repeats an id`);
      assert.ok(!ids.includes(v), `row ${v} lists itself`);
    }
  }
});

Deno.test("list heads: first columns, NEW flags kept or stripped", async () => {
  const rng = new Rng(12);
  const n = 131, width = 6;
  const h = emptyHostLists(n, width);
  for (let i = 0; i < h.ids.length; i++) {
    const r = rng.int(5);
    h.ids[i] = r === 0 ? NO_VERTEX : (rng.int(n) | (r === 1 ? NEW : 0)) >>> 0;
  }
  using lists = KnnLists.fromHost(gpu, h);
  for (const strip of [false, true]) {
    using heads = await listHeads(lists.ids, 4, strip);
    const got = await heads.read();
    for (let v = 0; v < n; v++) {
      for (let j = 0; j < 4; j++) {
        const e = h.ids[v * width + j];
        assert.equal(got[v * 4 + j], strip && e !== NO_VERTEX ? (e & ~NEW) >>> 0 : e, `row ${v} col ${j}`);
      }
    }
  }
});

/** Lists seeded with random entries (as a first NN-descent would start), host and GPU alike. */
function randomLists(rng: Rng, data: HostMatrix, width: number, seeds: number): HostLists {
  const n = data.rows, l = emptyHostLists(n, width);
  const results = Uint32Array.from({ length: n * seeds }, () => rng.int(n));
  const map = Uint32Array.from({ length: n }, (_, i) => i);
  knnMergeRef(data, l, 0, n, results, seeds, map);
  return l;
}

/** Ranges of consecutive blocks of `size` vertices, as the partition gives them. */
function comparedBlocks(n: number, size: number): Uint32Array {
  const out = new Uint32Array(2 * n);
  for (let v = 0; v < n; v++) {
    out[2 * v] = v - (v % size);
    out[2 * v + 1] = Math.min(n, v - (v % size) + size);
  }
  return out;
}

Deno.test("NN-descent iteration: GPU matches the reference (sizes 1, 2, primes; blocks; split hubs)", async () => {
  const rng = new Rng(13);
  const cases: [number, number, number, NnDescentOptions, BlockLayout | undefined][] = [
    [1, 3, 4, { forward: 2, reverse: 2, perHub: 3 }, undefined],
    [2, 2, 3, { forward: 2, reverse: 1, perHub: 2 }, undefined],
    [67, 5, 8, { forward: 4, reverse: 4, perHub: 6, hubsPerDispatch: 3 }, undefined],
    [89, 3, 6, { forward: 3, reverse: 4, perHub: 5, reverseOffer: 2 }, undefined],
    [263, 9, 10, { forward: 5, reverse: 0, perHub: 5 }, { count: 2, w4: 2 }],
    [401, 1, 6, { forward: 3, reverse: 5, perHub: 4, hubsPerDispatch: 1 }, undefined], // D = 1: ties
    [150, 4, 7, { forward: 5, reverse: 3, perHub: 6, compared: comparedBlocks(150, 37) }, undefined],
  ];
  for (const [n, d, width, o, layout] of cases) {
    const data = intMatrix(rng, n, d, 16);
    const ref = randomLists(rng, data, width, 3);
    using vectors = VectorBlocks.fromHost(gpu, data, layout);
    using lists = KnnLists.fromHost(gpu, ref);
    for (let it = 0; it < 3; it++) {
      const got = await noGpuErrors(gpu, () => nnDescentIteration(vectors, lists, o));
      const want = nnDescentIterationRef(data, ref, o);
      assert.equal(got, want, `n=${n} iteration ${it}: updates`);
      assertSameLists(await lists.toHost(), ref, `NN-descent n=${n} d=${d} iteration ${it}`);
    }
  }
});

Deno.test("NN-descent converges to the exact kNN graph on blobs from random lists", async () => {
  const rng = new Rng(14);
  const { data } = blobs(rng, 3000, 16, 12, 3);
  const width = 16, k = 10;
  using vectors = VectorBlocks.fromHost(gpu, data);
  using lists = KnnLists.fromHost(gpu, randomLists(rng, data, width, 8));
  const updates: number[] = [];
  for (let it = 0; it < 8; it++) {
    updates.push(await nnDescentIteration(vectors, lists, { forward: 16, reverse: 16, perHub: 16 }));
  }
  const got = await lists.toHost();
  const found = new Uint32Array(data.rows * k);
  for (let v = 0; v < data.rows; v++) {
    for (let j = 0; j < k; j++) found[v * k + j] = (got.ids[v * width + j] & ~NEW) >>> 0;
  }
  const truth = knnSqL2Ref(data, data, k, { excludeSelf: true }).indices;
  const recall = recallAt(found, truth, data.rows, k);
  assert.ok(recall > 0.97, `recall@10 of the lists ${recall} (updates per iteration ${updates})`);
  assert.ok(updates[updates.length - 1] < updates[0] / 20, `updates did not fall: ${updates}`);
});
