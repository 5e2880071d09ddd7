import assert from "node:assert/strict";
import { evaluateEmbeddings } from "../../lib/eval/evaluate.ts";
import { kmeans } from "../../lib/eval/kmeans.ts";
import { ami, nmi } from "../../lib/eval/nmi.ts";
import { retrievalMetrics } from "../../lib/eval/retrieval.ts";
import { retrievalMetricsRef } from "../../lib/eval/retrieval_ref.ts";
import { pairwiseSqL2 } from "../../lib/ops/distance.ts";
import { train } from "../../lib/train.ts";
import { parseTrainArgs } from "../../tasks/train_flags.ts";
import { cyclingLabels, writeIdxFolder } from "../fixtures/idx.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { ShapeError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";
import { oracleCases } from "./oracles.ts";

Deno.test("evaluateEmbeddings reports the oracle retrieval metrics and NMI/AMI of its own clustering", async () => {
  for (const c of oracleCases()) {
    const r = await evaluateEmbeddings(c.embeddings, c.labels, { seed: 2 });
    const e = c.expected;
    for (
      const [got, want] of [
        [r.recall[1], e.recall_at_1],
        [r.recall[8], e.recall_at_8],
        [r.precisionAt1, e.precision_at_1],
        [r.mapAtR!, e.mean_average_precision_at_r],
        [r.rPrecision!, e.r_precision],
      ]
    ) assert.ok(Math.abs(got - want) <= 1e-9, `${c.name}: ${got} vs ${want}`);
    // NMI and AMI are those of the returned clusters, which are k-means with k = number of classes.
    assert.equal(new Set(r.clusters).size <= new Set(c.labels).size, true);
    assert.equal(r.nmi, nmi(c.labels, r.clusters!));
    assert.equal(r.ami, ami(c.labels, r.clusters!));
    const again = await kmeans(c.embeddings, new Set(c.labels).size, { seed: 2 });
    assert.deepEqual(r.clusters, again.assignments);
  }
});

Deno.test("evaluateEmbeddings on GPU input with options off, and on separable classes", async () => {
  const gpu = await getGpu();
  const rng = new Rng(1);
  const n = 240, dim = 16, classes = 6;
  const centres = rng.normalArray(classes * dim, 5);
  const labels = new Int32Array(n).map((_, i) => 10 + (i % classes));
  const data = new Float32Array(n * dim).map((_, t) =>
    centres[(labels[Math.floor(t / dim)] - 10) * dim + (t % dim)] + 0.1 * rng.normal()
  );
  using x = GpuBuffer.fromArray(gpu, data, [n, dim]);
  const full = await evaluateEmbeddings(x, labels, { recallKs: [1, 3] });
  assert.equal(full.recall[1], 1);
  assert.equal(full.recall[3], 1);
  assert.equal(full.mapAtR, 1);
  assert.equal(full.nmi, 1);
  assert.ok(Math.abs(full.ami! - 1) < 1e-12);
  const quick = await evaluateEmbeddings(x, labels, { mapAtR: false, nmi: false, blockRows: 17 });
  assert.equal(quick.mapAtR, undefined);
  assert.equal(quick.nmi, undefined);
  assert.equal(quick.clusters, undefined);
  assert.deepEqual(quick.recall, retrievalMetricsRef({ rows: n, cols: dim, data }, labels).recall);
  assert.ok(!x.destroyed);
  await assert.rejects(() => evaluateEmbeddings(x, new Int32Array(n - 1)), ShapeError);
});

Deno.test("query/gallery evaluation (In-Shop protocol) equals the plain-TS reference, blocked or fused", async () => {
  const rng = new Rng(23);
  const dim = 6;
  // Integer data: every distance is exact in f32, so GPU and reference order ties alike.
  const mk = (n: number) => ({ rows: n, cols: dim, data: new Float32Array(n * dim).map(() => rng.int(4)) });
  for (const [nq, ng, classes] of [[1, 1, 1], [37, 53, 5], [301, 129, 40], [200, 700, 9]]) {
    const q = mk(nq), g = mk(ng);
    // Some query labels have no gallery sample (excluded and counted), some gallery labels no query.
    const ql = new Int32Array(nq).map(() => rng.int(classes + 2));
    const gl = new Int32Array(ng).map(() => rng.int(classes) - 1);
    const ks = [1, 2, 5, 10];
    const ref = retrievalMetricsRef(q, ql, { recallKs: ks, gallery: { embeddings: g, labels: gl } });
    const gallery = { embeddings: g, labels: gl };
    for (const opts of [{}, { blocked: true }, { blockRows: 7 }]) {
      const got = await retrievalMetrics(q, ql, { recallKs: ks, gallery, ...opts });
      assert.deepEqual(got, ref, `nq=${nq} ng=${ng} ${JSON.stringify(opts)}`);
      const quick = await retrievalMetrics(q, ql, { recallKs: ks, gallery, mapAtR: false, ...opts });
      assert.deepEqual(quick.recall, ref.recall);
      assert.equal(quick.queriesExcluded, ref.queriesExcluded);
    }
    const e = await evaluateEmbeddings(q, ql, { recallKs: ks, gallery });
    assert.deepEqual(e.recall, ref.recall);
    assert.equal(e.mapAtR, ref.mapAtR);
    assert.equal(e.clusters!.length, nq, "the clustering is of the queries");
  }
  await assert.rejects(
    () =>
      evaluateEmbeddings(mk(3), new Int32Array(3), {
        gallery: { embeddings: mk(4), labels: new Int32Array(3) },
      }),
    ShapeError,
  );
});

Deno.test("Recall@K of a single set: the fused tiles equal the blocked path and the reference on float data", async () => {
  const gpu = await getGpu();
  const rng = new Rng(41);
  for (const [n, dim, classes] of [[2, 1, 1], [97, 8, 5], [1000, 64, 31], [1503, 3, 400]]) {
    const data = rng.normalArray(n * dim);
    const labels = new Int32Array(n).map(() => rng.int(classes));
    using x = GpuBuffer.fromArray(gpu, data, [n, dim]);
    using d = await pairwiseSqL2(x, x);
    const dist = await d.read();
    const ref = retrievalMetricsRef({ rows: n, cols: dim, data }, labels, {
      recallKs: [1, 2, 4, 8, 32],
      distanceRow: (q) => dist.subarray(q * n, (q + 1) * n),
    });
    const fused = await retrievalMetrics(x, labels, { recallKs: [1, 2, 4, 8, 32], mapAtR: false });
    const blocked = await retrievalMetrics(x, labels, {
      recallKs: [1, 2, 4, 8, 32],
      mapAtR: false,
      blocked: true,
    });
    assert.deepEqual(fused.recall, ref.recall, `n=${n}`);
    assert.deepEqual(blocked.recall, ref.recall, `n=${n}`);
    assert.equal(fused.precisionAt1, ref.precisionAt1);
  }
});

Deno.test("evaluation reports progress per part; the bar appears only for long parts", async () => {
  const rng = new Rng(2);
  const n = 300, dim = 8;
  const data = { rows: n, cols: dim, data: rng.normalArray(n * dim) };
  const labels = new Int32Array(n).map(() => rng.int(6));
  const seen: string[] = [];
  const r = await evaluateEmbeddings(data, labels, {
    mapAtR: false,
    progress: "test",
    onProgress: (part, done, total) => seen.push(`${part} ${done}/${total}`),
  });
  assert.ok(seen.includes("retrieval 1/1"), seen.join(", "));
  assert.ok(seen.some((s) => s.startsWith("k-means ")), seen.join(", "));
  assert.ok(r.timings.retrievalMs >= 0 && r.timings.kmeansMs >= 0 && r.timings.nmiMs >= 0);
});

Deno.test("--eval-every N evaluates every N epochs and after the last", async () => {
  const { input } = parseTrainArgs(["--eval-every", "2"]);
  assert.equal(input.eval!.every, 2);
  const dir = await Deno.makeTempDir({ prefix: "dml-eval-every-" });
  try {
    await writeIdxFolder(`${dir}/data`, { train: cyclingLabels(4, 64), test: cyclingLabels(4, 40) });
    const result = await train({
      dataset: { kind: "idx", dir: `${dir}/data`, split: "seen" },
      batchSize: 16,
      epochs: 3,
      outDir: `${dir}/run`,
      quiet: true,
      mining: { miner: "random" },
      eval: { every: 2 },
    });
    assert.deepEqual(result.epochs.map((e) => e.eval !== undefined), [false, true, true]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
