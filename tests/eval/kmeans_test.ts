import assert from "node:assert/strict";
import { kmeans, kmeansAssign } from "../../lib/eval/kmeans.ts";
import { kmeansAssignRef, kmeansRef } from "../../lib/eval/kmeans_ref.ts";
import { groupByCluster, relocateEmpty } from "../../lib/eval/lloyd.ts";
import { nmi } from "../../lib/eval/nmi.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { ShapeError, UserError } from "../../lib/errors.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";

/** Gaussian blobs around well separated centres; returns the data and the true blob of each point. */
function blobs(
  rng: Rng,
  n: number,
  dim: number,
  k: number,
  spread = 0.05,
): { data: HostMatrix; labels: Int32Array } {
  const centres = rng.normalArray(k * dim, 3);
  const labels = new Int32Array(n).map((_, i) => i % k);
  rng.shuffle(labels);
  const data = new Float32Array(n * dim).map((_, t) =>
    centres[labels[Math.floor(t / dim)] * dim + (t % dim)] + spread * rng.normal()
  );
  return { data: { rows: n, cols: dim, data }, labels };
}

Deno.test("GPU k-means assignment equals the reference exactly on integer data (ties), blocked or not", async () => {
  const gpu = await getGpu();
  const rng = new Rng(1);
  for (
    const [n, dim, k, restarts] of [[1, 1, 1, 1], [7, 3, 2, 3], [1001, 5, 10, 2], [300, 64, 7, 1], [
      129,
      67,
      3,
      4,
    ]]
  ) {
    const data = { rows: n, cols: dim, data: new Float32Array(n * dim).map(() => rng.int(5)) };
    const cents = {
      rows: restarts * k,
      cols: dim,
      data: new Float32Array(restarts * k * dim).map(() => rng.int(5)),
    };
    const ref = kmeansAssignRef(data, cents, k);
    using x = GpuBuffer.fromArray(gpu, data.data, [n, dim]);
    // Blocks of 128 rows: two 256-byte-aligned groups of 64 rows for any row size.
    for (const chunkBytes of [undefined, 512 * dim]) {
      const got = await kmeansAssign(x, cents, k, chunkBytes);
      assert.deepEqual(got.assign, ref.assign, `assign n=${n} dim=${dim} k=${k} chunk=${chunkBytes}`);
      assert.deepEqual(got.dist, ref.dist, `dist n=${n} dim=${dim} k=${k}`);
    }
  }
});

Deno.test("GPU k-means assignment is close to the reference on float data", async () => {
  const gpu = await getGpu();
  const rng = new Rng(4);
  const n = 500, dim = 19, k = 6;
  const data = { rows: n, cols: dim, data: rng.normalArray(n * dim) };
  const cents = { rows: 2 * k, cols: dim, data: rng.normalArray(2 * k * dim) };
  using x = GpuBuffer.fromArray(gpu, data.data, [n, dim]);
  const got = await kmeansAssign(x, cents, k);
  const ref = kmeansAssignRef(data, cents, k);
  assertAllClose(got.dist, ref.dist, { rtol: 1e-5, atol: 1e-5, what: "distances" });
  const differ = got.assign.filter((a, i) => a !== ref.assign[i]).length;
  assert.ok(differ <= 2, `${differ} assignments differ`); // only at near-ties from rounding
  await assert.rejects(
    () => kmeansAssign(x, { rows: 2 * k, cols: dim + 1, data: new Float32Array(2 * k * (dim + 1)) }, k),
    ShapeError,
  );
});

Deno.test("k-means finds well separated blobs (NMI 1) and matches the reference, blocked or not", async () => {
  const rng = new Rng(8);
  for (const [n, dim, k] of [[400, 16, 5], [1001, 3, 9]]) {
    const { data, labels } = blobs(rng, n, dim, k);
    const ref = await kmeansRef(data, k, { seed: 3 });
    const got = await kmeans(data, k, { seed: 3 });
    // Data in row blocks; a histogram budget that forces grouping blocks of n / 2 points.
    const blocked = await kmeans(data, k, { seed: 3, chunkBytes: 512 * dim, histBytes: 3 * 2 * k * 4 });
    for (const r of [ref, got, blocked]) {
      assert.equal(nmi(labels, r.assignments), 1, `n=${n}: clusters recover the blobs`);
      assert.ok(r.converged);
      assert.ok(r.inertias.every((v) => v >= r.inertia), "best restart has the lowest inertia");
    }
    assert.deepEqual(got.assignments, ref.assignments);
    assert.deepEqual(blocked.assignments, got.assignments);
    // The GPU's f32 expansion ||x||^2 + ||c||^2 - 2 x.c loses a few ulps of ||x||^2 + ||c||^2 per point.
    let bound = 0;
    for (let i = 0; i < n; i++) {
      const c = ref.assignments[i];
      for (let d = 0; d < dim; d++) {
        bound += (data.data[i * dim + d] ** 2 + ref.centroids.data[c * dim + d] ** 2) * 2 ** -21;
      }
    }
    assert.ok(Math.abs(got.inertia - ref.inertia) <= bound, `inertia ${got.inertia} vs ${ref.inertia}`);
    assertAllClose(got.centroids.data, ref.centroids.data, { atol: 1e-5, what: "centroids" });
    assert.deepEqual([got.centroids.rows, got.centroids.cols], [k, dim]);
  }
});

Deno.test("k-means is deterministic for a seed, takes GPU buffers, and reports its inertia", async () => {
  const gpu = await getGpu();
  const rng = new Rng(12);
  const { data } = blobs(rng, 300, 8, 4, 1.5);
  using x = GpuBuffer.fromArray(gpu, data.data, [300, 8]);
  const a = await kmeans(x, 4, { seed: 5, restarts: 2 });
  const b = await kmeans(data, 4, { seed: 5, restarts: 2 });
  assert.deepEqual(a.assignments, b.assignments);
  assert.equal(a.inertia, b.inertia);
  assert.ok(!x.destroyed, "a caller's buffer is left alone");
  // Inertia is the sum of squared distances to the returned centroids.
  let inertia = 0;
  for (let i = 0; i < 300; i++) {
    for (let d = 0; d < 8; d++) {
      inertia += (data.data[i * 8 + d] - a.centroids.data[a.assignments[i] * 8 + d]) ** 2;
    }
  }
  assert.ok(Math.abs(inertia - a.inertia) <= 1e-4 * inertia, `${inertia} vs ${a.inertia}`);
});

Deno.test("k-means keeps every cluster populated when points repeat, and checks k", async () => {
  // 6 distinct points, each repeated; k = 6 must give one cluster per distinct point.
  const base = [0, 0, 10, 0, 0, 10, 10, 10, 5, 5, 20, 20];
  const data = {
    rows: 60,
    cols: 2,
    data: Float32Array.from({ length: 120 }, (_, t) => base[(Math.floor(t / 2) % 6) * 2 + (t % 2)]),
  };
  const r = await kmeans(data, 6, { seed: 1, restarts: 4 });
  assert.equal(new Set(r.assignments).size, 6);
  assert.equal(r.inertia, 0);
  await assert.rejects(() => kmeans(data, 61), UserError);
  await assert.rejects(() => kmeans(data, 0), UserError);
  await assert.rejects(() => kmeans(data, 2, { restarts: 0 }), UserError);
});

Deno.test("empty clusters take the farthest points; grouping is a stable counting sort", () => {
  const assign = new Uint32Array([0, 0, 0, 2, 2]);
  const dist = new Float32Array([1, 5, 3, 9, 0]);
  assert.equal(relocateEmpty(assign, dist, 4), 2);
  // Clusters 1 and 3 were empty: the farthest point (3) goes to 1, the next (1) to 3; both donors keep members.
  assert.deepEqual([...assign], [0, 3, 0, 1, 2]);
  const g = groupByCluster(new Uint32Array([1, 0, 1, 2, 0, /* restart 2 */ 0, 0, 0, 0, 0]), 5, 3, 2);
  assert.deepEqual([...g.order], [1, 4, 0, 2, 3, 0, 1, 2, 3, 4]);
  assert.deepEqual([...g.offsets], [0, 2, 4, 5, 0, 5, 5, 5]);
});

Deno.test("k-means tol: 0 iterates until no point moves; the default stops once the inertia settles", async () => {
  const rng = new Rng(21);
  const { data } = blobs(rng, 2000, 8, 6, 2.5); // overlapping blobs: many small late moves
  const strict = await kmeans(data, 6, { tol: 0, seed: 1 });
  const loose = await kmeans(data, 6, { seed: 1 });
  assert.ok(strict.converged && loose.converged);
  assert.ok(loose.iterations <= strict.iterations, `${loose.iterations} > ${strict.iterations}`);
  assert.ok(loose.inertia <= strict.inertia * (1 + 1e-3), "settling early costs little inertia");
  const capped = await kmeans(data, 6, { tol: 0, maxIters: 2, seed: 1 });
  assert.equal(capped.iterations, 2);
  await assert.rejects(() => kmeans(data, 6, { tol: -1 }), UserError);
});

Deno.test("GPU seeding equals the reference exactly on integer data: k-means++ and rounds of many centres", async () => {
  const rng = new Rng(31);
  // maxIters 1: the seeds and the assignment to them, all exact in f32 on small integers.
  for (
    const [n, dim, k, restarts, levels, extra] of [
      [1, 1, 1, 1, 3, {}],
      [40, 3, 5, 2, 4, {}],
      [700, 7, 70, 2, 6, { chunkBytes: 2048 }], // rounds of 2 centres (point by point), data in blocks
      [1500, 5, 1100, 1, 9, { loopBudget: 200 }], // rounds of 18 centres (tiles), loop windows
      [601, 64, 40, 3, 3, {}],
    ] as const
  ) {
    const data = { rows: n, cols: dim, data: new Float32Array(n * dim).map(() => rng.int(levels)) };
    const opts = { seed: n, restarts, maxIters: 1 };
    const ref = await kmeansRef(data, k, opts);
    const got = await kmeans(data, k, { ...opts, ...extra });
    const what = `n=${n} dim=${dim} k=${k}`;
    assert.deepEqual(got.assignments, ref.assignments, what);
    assert.deepEqual(got.centroids, ref.centroids, what);
    assert.deepEqual(got.inertias, ref.inertias, what);
    assert.equal(got.iterations, 1);
  }
});

Deno.test("GPU k-means equals the reference when clusters stay empty (repeated points, more clusters than points)", async () => {
  // 3 distinct points repeated: after 3 centres every weight is 0, the rest are drawn uniformly (duplicates),
  // their clusters stay empty and the host is asked to refill them (nothing to move: every distance is 0).
  const base = [0, 0, 4, 0, 0, 4];
  const data = {
    rows: 30,
    cols: 2,
    data: Float32Array.from({ length: 60 }, (_, t) => base[(Math.floor(t / 2) % 3) * 2 + (t % 2)]),
  };
  for (const restarts of [1, 3]) {
    const ref = await kmeansRef(data, 5, { seed: 4, restarts });
    const got = await kmeans(data, 5, { seed: 4, restarts });
    assert.deepEqual(got.assignments, ref.assignments);
    assert.deepEqual(got.inertias, ref.inertias);
    assert.equal(got.iterations, ref.iterations);
    assert.equal(got.converged, ref.converged);
    assert.equal(got.inertia, 0);
  }
});

Deno.test("GPU k-means equals the reference when empty clusters take the farthest points", async () => {
  // A case found by search: an update leaves clusters empty while far points remain.
  const rng = new Rng(82);
  const n = 30 + rng.int(200), dim = 1 + rng.int(2), k = 2 + rng.int(Math.floor(n / 2));
  const data = { rows: n, cols: dim, data: new Float32Array(n * dim).map(() => rng.normal() * 10) };
  const ref = await kmeansRef(data, k, { seed: 82, restarts: 2 });
  const got = await kmeans(data, k, { seed: 82, restarts: 2 });
  assert.ok(ref.refills > 0, "the case refills empty clusters");
  assert.equal(got.refills, ref.refills);
  assert.deepEqual(got.assignments, ref.assignments);
  assert.equal(got.iterations, ref.iterations);
  assert.equal(got.converged, ref.converged);
});
