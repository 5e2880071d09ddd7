import assert from "node:assert/strict";
import { evaluateEmbeddings } from "../../lib/eval/evaluate.ts";
import { kmeans } from "../../lib/eval/kmeans.ts";
import { ami, nmi } from "../../lib/eval/nmi.ts";
import { retrievalMetricsRef } from "../../lib/eval/retrieval_ref.ts";
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
