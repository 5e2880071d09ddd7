import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { encodeKnnSqL2, type KnnOptions, knnSqL2, knnSqL2Ref } from "../../lib/ops/knn.ts";
import { NO_INDEX, type TopkFilter } from "../../lib/ops/topk.ts";
import { pairwiseSqL2Ref } from "../../lib/ops/distance.ts";
import { ShapeError, UserError } from "../../lib/errors.ts";
import { type HostMatrix, selectRows } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { filterInputs, type FilterPair, filterPair } from "./topk_filters.ts";

const gpu = await getGpu();

/** Small-integer coordinates: every distance is exact in f32, so GPU and reference must agree exactly. */
function intMatrix(rng: Rng, rows: number, cols: number): HostMatrix {
  return { rows, cols, data: new Float32Array(rows * cols).map(() => rng.int(5) - 2) };
}

async function runKnn(
  q: HostMatrix,
  b: HostMatrix,
  k: number,
  filter?: TopkFilter,
  options?: KnnOptions,
): Promise<{ indices: Uint32Array; distances: Float32Array }> {
  using qb = GpuBuffer.fromArray(gpu, q.data, [q.rows, q.cols]);
  using bb = GpuBuffer.fromArray(gpu, b.data, [b.rows, b.cols]);
  using r = await knnSqL2(qb, bb, k, filter, options);
  return { indices: await r.indices.read(), distances: await r.distances.read() };
}

async function checkExact(
  q: HostMatrix,
  b: HostMatrix,
  k: number,
  filter: FilterPair = {},
  options?: KnnOptions,
): Promise<void> {
  const got = await runKnn(q, b, k, filter.gpu, options);
  const ref = knnSqL2Ref(q, b, k, filter.host);
  const what = `${q.rows}x${b.rows}x${q.cols} k=${k} ${JSON.stringify(options ?? {})}`;
  assert.deepEqual(got.indices, ref.indices, `indices ${what}`);
  assert.deepEqual(got.distances, ref.distances, `distances ${what}`);
}

Deno.test("knnSqL2 matches the reference exactly on integer data (ties to the smaller index)", async () => {
  const rng = new Rng(1);
  for (
    const [m, n, d, k] of [[1, 1, 1, 1], [33, 517, 7, 10], [100, 2000, 64, 32], [17, 300, 12, 256], [
      5,
      3,
      4,
      8,
    ]]
  ) {
    await checkExact(intMatrix(rng, m, d), intMatrix(rng, n, d), k);
  }
});

Deno.test("knnSqL2 streams the base in blocks: forced small blocks and bindings agree exactly", async () => {
  const rng = new Rng(2);
  const q = intMatrix(rng, 150, 9), b = intMatrix(rng, 1001, 9);
  await checkExact(q, b, 16, {}, { baseBlock: 128, queryBlock: 64 });
  await checkExact(q, b, 5, {}, { maxBindingBytes: 16384 });
  await checkExact(q, b, 3, {}, { baseBlock: 100, kernel: "tiled" }); // odd block widths: scalar paths
  await checkExact(q, b, 3, {}, { kernel: "reg4" });
});

Deno.test("knnSqL2 filters match the reference: self with offset, labels, radius", async () => {
  const rng = new Rng(3);
  const base = intMatrix(rng, 400, 6);
  // Queries are base rows 50..149: excludeSelf with selfOffset 50 drops each query's own row.
  const queries = selectRows(base, Array.from({ length: 100 }, (_, i) => 50 + i));
  const rowLabels = new Int32Array(100).map(() => rng.int(3));
  const colLabels = new Int32Array(400).map(() => rng.int(3));
  const rowMin = new Float32Array(100).map(() => rng.int(6));
  using inputs = filterInputs(gpu, { rowLabels, colLabels, rowMinDistance: rowMin });
  await checkExact(queries, base, 7, filterPair(inputs, { excludeSelf: true, selfOffset: 50 }));
  await checkExact(queries, base, 7, filterPair(inputs, { labelMode: "different" }), { baseBlock: 128 });
  await checkExact(
    queries,
    base,
    7,
    filterPair(inputs, { excludeSelf: true, selfOffset: 50, labelMode: "same", radius: true }),
    { baseBlock: 128 },
  );
  // The self filter really removes the zero distance: without it each query finds itself first.
  const plain = await runKnn(queries, base, 1);
  assert.deepEqual(plain.distances, new Float32Array(100));
});

Deno.test("knnSqL2 on float data agrees with the reference up to f32 near-ties", async () => {
  const rng = new Rng(4);
  const q = { rows: 60, cols: 33, data: rng.normalArray(60 * 33) };
  const b = { rows: 700, cols: 33, data: rng.normalArray(700 * 33) };
  const k = 20;
  const got = await runKnn(q, b, k, {}, { baseBlock: 256 });
  const ref = knnSqL2Ref(q, b, k);
  const exact = pairwiseSqL2Ref(q, b).data;
  for (let i = 0; i < q.rows; i++) {
    for (let t = 0; t < k; t++) {
      const j = got.indices[i * k + t];
      const tol = 1e-4 * (1 + ref.distances[i * k + t]);
      // Each returned neighbour's distance is right, and the t-th distance matches the reference's.
      assert.ok(Math.abs(got.distances[i * k + t] - exact[i * b.rows + j]) <= tol, `row ${i} rank ${t}`);
      assert.ok(Math.abs(got.distances[i * k + t] - ref.distances[i * k + t]) <= tol, `row ${i} rank ${t}`);
      if (t > 0) assert.ok(got.distances[i * k + t] >= got.distances[i * k + t - 1]);
    }
  }
});

Deno.test("knnSqL2: NaN rows are never selected; k > N fills with NO_INDEX and +Infinity", async () => {
  const rng = new Rng(5);
  const q = intMatrix(rng, 4, 5), b = intMatrix(rng, 6, 5);
  q.data[1 * 5 + 2] = NaN; // query 1: every distance NaN, nothing qualifies
  b.data[3 * 5 + 0] = NaN; // base row 3 is never a neighbour
  const got = await runKnn(q, b, 8);
  const ref = knnSqL2Ref(q, b, 8);
  assert.deepEqual(got.indices, ref.indices);
  assert.deepEqual(got.distances, ref.distances);
  assert.ok(got.indices.subarray(8, 16).every((j) => j === NO_INDEX));
  assert.ok(!got.indices.includes(3));
  assert.equal(got.indices[7], NO_INDEX); // 5 valid base rows < k = 8
});

Deno.test("encodeKnnSqL2 chains in one batch; bad shapes and k are rejected", async () => {
  const rng = new Rng(6);
  const q = intMatrix(rng, 20, 8), b = intMatrix(rng, 90, 8);
  using qb = GpuBuffer.fromArray(gpu, q.data, [20, 8]);
  using bb = GpuBuffer.fromArray(gpu, b.data, [90, 8]);
  const batch = new CommandBatch(gpu);
  using r = await encodeKnnSqL2(batch, qb, bb, 4, {}, { baseBlock: 32 });
  await batch.submit();
  assert.deepEqual(await r.indices.read(), knnSqL2Ref(q, b, 4).indices);

  using b7 = GpuBuffer.zeros(gpu, "f32", [90, 7]);
  await assert.rejects(() => knnSqL2(qb, b7, 4), (e: Error) => {
    assert.ok(e instanceof ShapeError);
    assert.match(e.message, /\[20 x 8\].*\[90 x 7\]/);
    return true;
  });
  await assert.rejects(() => knnSqL2(qb, bb, 0), UserError);
  await assert.rejects(() => knnSqL2(qb, bb, 300), /k must be an integer from 1 to 256/);
  using empty = GpuBuffer.zeros(gpu, "f32", [0, 8]);
  await assert.rejects(() => knnSqL2(qb, empty, 1), ShapeError);
  assert.throws(() => knnSqL2Ref(q, { rows: 1, cols: 3, data: new Float32Array(3) }, 1), ShapeError);
});
