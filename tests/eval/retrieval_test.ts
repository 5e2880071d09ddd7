import assert from "node:assert/strict";
import { metricsFromRanks, queryRanks, retrievalMetrics } from "../../lib/eval/retrieval.ts";
import { retrievalMetricsRef } from "../../lib/eval/retrieval_ref.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { pairwiseSqL2 } from "../../lib/ops/distance.ts";
import { ShapeError, UserError } from "../../lib/errors.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { oracleCases } from "./oracles.ts";

const KS = [1, 2, 4, 8];

function close(a: number | undefined, b: number, tol: number, what: string): void {
  assert.ok(a !== undefined && Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
}

/** Integer coordinates in 0..levels-1: every distance is exact in f32 however it is computed, ties abound. */
function intData(rng: Rng, n: number, dim: number, levels: number): HostMatrix {
  return { rows: n, cols: dim, data: new Float32Array(n * dim).map(() => rng.int(levels)) };
}

Deno.test("retrieval metrics match pytorch-metric-learning's AccuracyCalculator on the oracles to 1e-9", async () => {
  for (const c of oracleCases()) {
    const e = c.expected;
    for (
      const [what, m] of [
        ["gpu", await retrievalMetrics(c.embeddings, c.labels)],
        ["gpu recall only", await retrievalMetrics(c.embeddings, c.labels, { mapAtR: false })],
        ["reference", retrievalMetricsRef(c.embeddings, c.labels)],
      ] as const
    ) {
      const name = `${c.name} ${what}`;
      close(m.precisionAt1, e.precision_at_1, 1e-9, `${name} P@1`);
      close(m.recall[1], e.recall_at_1, 1e-9, `${name} R@1`);
      close(m.recall[2], e.recall_at_2, 1e-9, `${name} R@2`);
      close(m.recall[4], e.recall_at_4, 1e-9, `${name} R@4`);
      close(m.recall[8], e.recall_at_8, 1e-9, `${name} R@8`);
      if (what !== "gpu recall only") {
        close(m.rPrecision, e.r_precision, 1e-9, `${name} R-Precision`);
        close(m.mapAtR, e.mean_average_precision_at_r, 1e-9, `${name} MAP@R`);
      } else {
        assert.equal(m.mapAtR, undefined);
      }
      assert.equal(m.queriesExcluded, 0);
    }
  }
});

Deno.test("retrieval metrics of a hand-computed example with ties and a lone query", async () => {
  // 1-D points and labels: A = 0, B = 1, C = 2 (index 5 is the only C: excluded and counted).
  const values = [0, 1, 1, 2, 4, 10, 4];
  const labels = new Int32Array([0, 1, 0, 0, 1, 2, 1]);
  const emb = { rows: 7, cols: 1, data: Float32Array.from(values) };
  // Per query (ties by index): first positive at ranks 1, 3, 1, 1, 0, -, 0; R = 2 for every kept query;
  // R-Precision 1/2, 0, 1/2, 1/2, 1/2, 1/2; AP@R 1/4, 0, 1/4, 1/4, 1/2, 1/2.
  const expected = {
    recall: { 1: 2 / 6, 2: 5 / 6, 3: 5 / 6, 4: 1, 8: 1 },
    precisionAt1: 2 / 6,
    rPrecision: 2.5 / 6,
    mapAtR: 1.75 / 6,
    queriesExcluded: 1,
  };
  for (
    const m of [
      retrievalMetricsRef(emb, labels, { recallKs: [1, 2, 3, 4, 8] }),
      await retrievalMetrics(emb, labels, { recallKs: [1, 2, 3, 4, 8] }),
      await retrievalMetrics(emb, labels, { recallKs: [1, 2, 3, 4, 8], blockRows: 1, bins: 2 }),
    ]
  ) {
    for (const k of [1, 2, 3, 4, 8] as const) close(m.recall[k], expected.recall[k], 1e-15, `R@${k}`);
    close(m.precisionAt1, expected.precisionAt1, 1e-15, "P@1");
    close(m.rPrecision, expected.rPrecision, 1e-15, "R-Precision");
    close(m.mapAtR, expected.mapAtR, 1e-15, "MAP@R");
    assert.equal(m.queriesExcluded, 1);
    assert.equal(m.queriesUsed, 6);
  }
  const ranks = await queryRanks(emb, labels, { allRanks: true, minDepth: 8, keepRanks: true });
  assert.deepEqual([...ranks.firstRank], [1, 3, 1, 1, 0, 0xffffffff, 0]);
  assert.deepEqual([...ranks.positives], [2, 2, 2, 2, 2, 0, 2]);
  // Query 4's positives (6 at distance 0, 1 at 9 after 3 at 4): ranks 0 and 2.
  assert.deepEqual([...ranks.positiveRanks!.subarray(4 * ranks.ranksWidth, 4 * ranks.ranksWidth + 2)], [
    0,
    2,
  ]);
});

Deno.test("GPU retrieval metrics equal the reference exactly on random integer data (ties), any block size", async () => {
  const rng = new Rng(11);
  const ks = [1, 2, 3, 5, 8, 100];
  for (
    const [n, dim, classes, levels] of [[1, 3, 1, 3], [2, 1, 1, 2], [37, 5, 4, 4], [301, 7, 13, 3], [
      600,
      3,
      3,
      4,
    ]]
  ) {
    const emb = intData(rng, n, dim, levels);
    const labels = new Int32Array(n).map(() => rng.int(classes) * 3 - 7);
    const ref = retrievalMetricsRef(emb, labels, { recallKs: ks });
    // The default path (kNN lists when every R and K is small, else blocks), then the blocked path: all at
    // once, one query per block (small n only: each block is a GPU round trip), odd blocks with crowded
    // bins, blocks sized by a byte budget.
    const blockings = [{}, { blocked: true }, { blocked: true, blockRows: n < 100 ? 1 : 61, bins: 64 }, {
      blocked: true,
      blockRows: 7,
      bins: 4,
    }, { blocked: true, blockBytes: 50_000 }];
    for (const opts of blockings) {
      const got = await retrievalMetrics(emb, labels, { recallKs: ks, ...opts });
      assert.deepEqual(got, ref, `n=${n} dim=${dim} ${JSON.stringify(opts)}`);
      const quick = await retrievalMetrics(emb, labels, { recallKs: ks, mapAtR: false, ...opts });
      assert.deepEqual(quick.recall, ref.recall);
      assert.equal(quick.precisionAt1, ref.precisionAt1);
    }
  }
});

Deno.test("GPU retrieval metrics equal the reference run on the GPU's own distances (float data)", async () => {
  const gpu = await getGpu();
  const rng = new Rng(5);
  for (const [n, dim, classes] of [[97, 8, 5], [257, 33, 2]]) {
    const emb = { rows: n, cols: dim, data: rng.normalArray(n * dim) };
    const labels = new Int32Array(n).map(() => rng.int(classes));
    using x = GpuBuffer.fromArray(gpu, emb.data, [n, dim]);
    using d = await pairwiseSqL2(x, x);
    const dist = await d.read();
    const ref = retrievalMetricsRef(emb, labels, {
      recallKs: KS,
      distanceRow: (q) => dist.subarray(q * n, (q + 1) * n),
    });
    assert.deepEqual(await retrievalMetrics(x, labels, { blockRows: 10 }), ref);
  }
});

Deno.test("lone-label queries are excluded from every retrieval metric and counted", async () => {
  const rng = new Rng(9);
  const n = 120;
  const emb = intData(rng, n, 4, 5);
  // Labels 0..3 shared by many; labels 100.. given to one sample each.
  const labels = new Int32Array(n).map((_, i) => (i % 10 === 0 ? 100 + i : rng.int(4)));
  const lone = labels.filter((l) => l >= 100).length;
  const got = await retrievalMetrics(emb, labels);
  assert.equal(got.queriesExcluded, lone);
  assert.equal(got.queriesUsed, n - lone);
  assert.deepEqual(got, retrievalMetricsRef(emb, labels));
  const allLone = await retrievalMetrics(emb, Int32Array.from({ length: n }, (_, i) => i));
  assert.equal(allLone.queriesExcluded, n);
  assert.equal(allLone.recall[1], 0);
  assert.equal(allLone.mapAtR, 0);
});

Deno.test("Recall@K for K beyond R: first ranks past R stay exact", async () => {
  const rng = new Rng(2);
  const n = 200;
  const emb = intData(rng, n, 2, 30);
  const labels = Int32Array.from({ length: n }, (_, i) => i >> 1); // pairs: R = 1
  const ks = [1, 2, 4, 8, 16, 64];
  assert.deepEqual(
    await retrievalMetrics(emb, labels, { recallKs: ks }),
    retrievalMetricsRef(emb, labels, { recallKs: ks }),
  );
  const ranks = await queryRanks(emb, labels, { allRanks: false });
  const byRank = metricsFromRanks(ranks, ks);
  assert.deepEqual(byRank.recall, retrievalMetricsRef(emb, labels, { recallKs: ks }).recall);
});

Deno.test("retrieval metrics reject mismatched shapes and bad Ks", async () => {
  const emb = { rows: 3, cols: 2, data: new Float32Array(6) };
  await assert.rejects(() => retrievalMetrics(emb, new Int32Array(4)), ShapeError);
  await assert.rejects(() => retrievalMetrics(emb, new Int32Array(3), { recallKs: [0] }), UserError);
  await assert.rejects(() => retrievalMetrics(emb, new Int32Array(3), { recallKs: [1.5] }), UserError);
});
