import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { ClassIndex } from "../../lib/mining/classes.ts";
import { mineSmart, mineSmartRef, softestHarderPositives } from "../../lib/mining/smart.ts";
import { ExactSearch, FanngSearch } from "../../lib/mining/search.ts";
import { Rng } from "../../lib/util/rng.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";

/** Clustered data: `classes` Gaussian blobs of unequal size, with overlap so the boundary matters. */
function blobs(
  n: number,
  dim: number,
  classes: number,
  seed: number,
): { emb: HostMatrix; labels: Int32Array } {
  const rng = new Rng(seed);
  const centres = Array.from({ length: classes }, () => rng.normalArray(dim, 1));
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7 + rng.int(3)) % classes);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) data[i * dim + j] = centres[labels[i]][j] + 0.8 * rng.normal();
  }
  return { emb: { rows: n, cols: dim, data }, labels };
}

/** Runs `fn` and records the element count of every GpuBuffer read it makes. */
async function countingReads<T>(fn: () => Promise<T>): Promise<{ result: T; reads: number[] }> {
  const reads: number[] = [];
  const read = GpuBuffer.prototype.read;
  GpuBuffer.prototype.read = function (this: GpuBuffer, start?: number, count?: number) {
    reads.push(count ?? this.length - (start ?? 0));
    return read.call(this, start, count);
  } as typeof read;
  try {
    return { result: await fn(), reads };
  } finally {
    GpuBuffer.prototype.read = read;
  }
}

Deno.test("smart mining on the GPU (exact search) matches the plain-TS reference", async () => {
  const gpu = await getGpu();
  for (const [n, dim, classes, kappa] of [[97, 5, 3, 4], [331, 17, 7, 1], [200, 64, 10, 16]]) {
    const { emb, labels } = blobs(n, dim, classes, n);
    const ci = ClassIndex.build(labels);
    const ref = mineSmartRef(emb, ci, kappa);
    using e = GpuBuffer.fromArray(gpu, emb.data, [n, dim]);
    using l = GpuBuffer.fromArray(gpu, labels);
    const got = await mineSmart(e, ci, kappa, new ExactSearch(e, l));
    // Distances come from different summation orders (GPU f32 vs reference): compare with tolerance, and
    // the chosen partners wherever the reference's choice is not within rounding of a tie.
    let agree = 0, comparable = 0;
    for (let a = 0; a < n; a++) {
      assert.ok(Math.abs(got.eps[a] - ref.eps[a]) <= 1e-4 * (1 + ref.eps[a]), `eps of ${a}`);
      if ((got.negative[a] < 0) !== (ref.negative[a] < 0)) continue;
      comparable++;
      if (got.negative[a] === ref.negative[a] && got.positive[a] === ref.positive[a]) agree++;
    }
    assert.ok(comparable >= n - 2, `n=${n}: ${n - comparable} anchors differ in having a negative`);
    assert.ok(
      agree >= comparable - 2,
      `n=${n}: only ${agree} of ${comparable} anchors agree with the reference`,
    );
    for (let a = 0; a < n; a++) {
      if (got.negative[a] < 0) continue;
      assert.notEqual(labels[got.negative[a]], labels[a]);
      assert.ok(got.dan[a] > kappa * got.eps[a] * (1 - 1e-6), "negative inside the exclusion boundary");
      if (got.positive[a] >= 0) {
        assert.equal(labels[got.positive[a]], labels[a]);
        assert.notEqual(got.positive[a], a);
        assert.ok(got.dap[a] > got.dan[a], "positive not harder than the negative");
      }
    }
  }
});

Deno.test("smart mining through the FANNG graph finds nearly the same triplets as exact search", async () => {
  const gpu = await getGpu();
  const n = 3000, dim = 16;
  const { emb, labels } = blobs(n, dim, 10, 11);
  const ci = ClassIndex.build(labels);
  using e = GpuBuffer.fromArray(gpu, emb.data, [n, dim]);
  using l = GpuBuffer.fromArray(gpu, labels);
  const exact = await mineSmart(e, ci, 2, new ExactSearch(e, l));
  using fanng = new FanngSearch(l, { maxDegree: 32, budget: 0, seed: 1 });
  await fanng.update(e);
  const approx = await mineSmart(e, ci, 2, fanng);
  // Mining's walk (lib/ann/search_defaults.ts "mining") never expands the anchor's own class, so it trades
  // exact matches for far fewer evaluations; what it finds must still be nearly as hard. A finite label
  // penalty buys matches back with evaluations.
  const agreement = (negative: Int32Array | Uint32Array, dan: Float32Array) => {
    let same = 0, withNeg = 0, ratio = 0;
    for (let a = 0; a < n; a++) {
      if (exact.negative[a] < 0) continue;
      withNeg++;
      if (negative[a] === exact.negative[a]) same++;
      ratio += dan[a] / exact.dan[a];
    }
    return { same: same / withNeg, ratio: ratio / withNeg };
  };
  const mined = agreement(approx.negative, approx.dan);
  assert.ok(mined.same >= 0.5, `mining found the exact negative for only ${mined.same.toFixed(3)}`);
  assert.ok(mined.ratio <= 1.1, `mining's negatives: ${mined.ratio.toFixed(3)}x as far as the exact ones`);
  using penalised = new FanngSearch(l, { maxDegree: 32, budget: 0, seed: 1, labelPenalty: 4 });
  await penalised.update(e);
  const slower = await mineSmart(e, ci, 2, penalised);
  const closer = agreement(slower.negative, slower.dan);
  assert.ok(closer.same >= 0.7, `penalty 4 found the exact negative for only ${closer.same.toFixed(3)}`);
  assert.ok(
    closer.ratio <= 1.05,
    `penalty 4: negatives ${closer.ratio.toFixed(3)}x as far as the exact ones`,
  );
  assert.ok(closer.same > mined.same && slower.evaluations! > approx.evaluations!);
  // The index's plain filtered walk (no label penalty) finds nearly all of them, with more evaluations.
  const plain = await fanng.index.selfSearchOutputs(1, {
    filter: { labels: l, queryLabels: l, minDistanceScale: 2 },
  });
  const full = agreement(await plain.indices.read(), await plain.distances.read());
  assert.ok(full.same >= 0.85, `the plain walk found the exact negative for only ${full.same.toFixed(3)}`);
  assert.ok(full.same > closer.same);
  const plainEvals = (await plain.evaluations.read()).reduce((s, x) => s + x, 0) / n;
  Object.values(plain).forEach((b) => b.destroy());
  assert.ok(
    approx.evaluations! > 0 && slower.evaluations! < plainEvals,
    `${slower.evaluations} vs ${plainEvals}`,
  );
});

Deno.test("smart mining on the GPU (exact search) equals the reference exactly on integer data, with one data readback", async () => {
  const gpu = await getGpu();
  const rng = new Rng(31);
  for (const [n, dim, classes, kappa] of [[61, 3, 2, 1], [257, 7, 5, 2.5], [500, 16, 9, 9]]) {
    const emb = { rows: n, cols: dim, data: Float32Array.from({ length: n * dim }, () => rng.int(5)) };
    const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
    const ci = ClassIndex.build(labels);
    const ref = mineSmartRef(emb, ci, kappa);
    using e = GpuBuffer.fromArray(gpu, emb.data, [n, dim]);
    using l = GpuBuffer.fromArray(gpu, labels);
    // Every GPU read during mining: control counters (one element) and the one data readback.
    const { result: got, reads } = await countingReads(() => mineSmart(e, ci, kappa, new ExactSearch(e, l)));
    assert.equal(reads.filter((c) => c > 1).length, 1, `reads ${reads}`);
    assert.deepEqual(Array.from(got.eps), Array.from(ref.eps), `eps, n ${n}`);
    assert.deepEqual(Array.from(got.negative), Array.from(ref.negative), `negatives, n ${n}`);
    assert.deepEqual(Array.from(got.dan), Array.from(ref.dan), `dan, n ${n}`);
    assert.deepEqual(Array.from(got.positive), Array.from(ref.positive), `positives, n ${n}`);
    assert.deepEqual(Array.from(got.dap), Array.from(ref.dap), `dap, n ${n}`);
    // The positive search alone, from host distances, agrees too.
    const alone = await softestHarderPositives(e, ci, ref.dan);
    assert.deepEqual(Array.from(alone.positive), Array.from(ref.positive));
  }
});

/** Blobs on the GPU with their class index and a FANNG search built over them (dispose to free all). */
async function blobSearch(
  n: number,
  dim: number,
  classes: number,
  seed: number,
  maxDegree: number,
  graphSeed: number,
) {
  const gpu = await getGpu();
  const { emb, labels } = blobs(n, dim, classes, seed);
  const e = GpuBuffer.fromArray(gpu, emb.data, [n, dim]);
  const l = GpuBuffer.fromArray(gpu, labels);
  const fanng = new FanngSearch(l, { maxDegree, budget: 0, seed: graphSeed });
  await fanng.update(e);
  return {
    emb,
    labels,
    ci: ClassIndex.build(labels),
    e,
    l,
    fanng,
    [Symbol.dispose]() {
      fanng[Symbol.dispose]();
      e.destroy();
      l.destroy();
    },
  };
}

Deno.test("smart mining through the FANNG graph keeps its data on the GPU: one data readback", async () => {
  using fx = await blobSearch(1500, 8, 6, 12, 24, 2);
  const { emb, labels, ci, e, fanng } = fx;
  const { result: got, reads } = await countingReads(() => mineSmart(e, ci, 3, fanng));
  assert.equal(reads.filter((c) => c > 1).length, 1, `reads ${reads}`);
  const ref = mineSmartRef(emb, ci, 3);
  let same = 0, withNeg = 0;
  for (let a = 0; a < emb.rows; a++) {
    if (ref.negative[a] < 0) continue;
    withNeg++;
    if (got.negative[a] === ref.negative[a]) same++;
    // Whatever the graph found obeys the rule exactly.
    if (got.negative[a] >= 0) {
      assert.notEqual(labels[got.negative[a]], labels[a]);
      assert.ok(got.dan[a] > Math.fround(3 * got.eps[a]));
    }
  }
  assert.ok(same / withNeg >= 0.5, `graph negatives equal to exact for ${same} of ${withNeg}`);
  assert.ok((got.evaluations ?? 0) > 0);
});

Deno.test("mining reports the negative search's progress: rising counts that end at two passes over the anchors", async () => {
  using fx = await blobSearch(700, 8, 5, 13, 16, 3);
  const { emb, ci, e, l, fanng } = fx;
  for (const search of [fanng, new ExactSearch(e, l)]) {
    const seen: [number, number][] = [];
    await mineSmart(e, ci, 2, search, (done, total) => seen.push([done, total]));
    assert.ok(seen.length >= 2, `${search.constructor.name}: ${seen.length} reports`);
    for (let i = 0; i < seen.length; i++) {
      assert.equal(seen[i][1], 2 * emb.rows);
      if (i > 0) assert.ok(seen[i][0] >= seen[i - 1][0], `${search.constructor.name}: counts fall`);
    }
    assert.equal(seen.at(-1)![0], 2 * emb.rows, `${search.constructor.name}: ends at ${seen.at(-1)![0]}`);
  }
});
