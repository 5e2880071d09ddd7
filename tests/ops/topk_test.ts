import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import {
  encodeTopkSmallest,
  NO_INDEX,
  TOPK_MAX_K,
  type TopkOptions,
  topkSmallest,
  topkSmallestRef,
} from "../../lib/ops/topk.ts";
import { ShapeError, UserError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";
import { filterInputs, type FilterPair, filterPair, type FilterSpec } from "./topk_filters.ts";

const gpu = await getGpu();

/** Small integers (many ties) with NaN, +Inf and -Inf sprinkled in. */
function values(rng: Rng, rows: number, cols: number): Float32Array {
  const v = new Float32Array(rows * cols).map(() => rng.int(20));
  for (let t = 0; t < Math.ceil(v.length / 50); t++) {
    v[rng.int(v.length)] = [NaN, Infinity, -Infinity, NaN][t % 4];
  }
  return v;
}

/** Runs topkSmallest and checks indices and values against the reference exactly. */
async function check(
  data: Float32Array,
  rows: number,
  cols: number,
  k: number,
  filter: FilterPair = {},
  options: TopkOptions = {},
): Promise<void> {
  using v = GpuBuffer.fromArray(gpu, data, [rows, cols]);
  const batch = new CommandBatch(gpu);
  using r = await encodeTopkSmallest(batch, v, k, filter.gpu, options);
  await batch.submit();
  const ref = topkSmallestRef({ rows, cols, data }, k, filter.host);
  const what = `${rows}x${cols} k=${k} ${JSON.stringify(options)}`;
  assert.deepEqual(await r.indices.read(), ref.indices, `indices ${what}`);
  assert.deepEqual(await r.distances.read(), ref.distances, `values ${what}`);
  assert.equal(r.k, k);
  assert.deepEqual(r.indices.shape, [rows, k]);
}

Deno.test("topkSmallest matches the reference exactly (ties, NaN, +-Inf, k > N, split rows)", async () => {
  const rng = new Rng(1);
  // [rows, cols, k, segments]: 1, primes, non-multiples of 4 (scalar scan) and multiples (vec4 scan).
  const cases: [number, number, number, number | undefined][] = [
    [1, 1, 1, undefined],
    [7, 100, 5, undefined],
    [3, 10, 20, undefined], // k > N: filled with NO_INDEX / +Inf
    [13, 1001, 32, 3],
    [11, 1000, 32, 4],
    [5, 513, 256, 2],
    [2, 3000, 256, 1],
    [9, 4096, 10, 7],
    [64, 257, 1, undefined],
  ];
  for (const [rows, cols, k, segments] of cases) {
    await check(values(rng, rows, cols), rows, cols, k, {}, { segments });
  }
});

Deno.test("topkSmallest fills short rows with NO_INDEX and +Infinity and ranks +Inf last", async () => {
  using v = GpuBuffer.fromArray(gpu, new Float32Array([Infinity, NaN, 2, NaN, -Infinity, NaN]), [1, 6]);
  using r = await topkSmallest(v, 5);
  assert.deepEqual(await r.indices.read(), new Uint32Array([4, 2, 0, NO_INDEX, NO_INDEX]));
  assert.deepEqual(await r.distances.read(), new Float32Array([-Infinity, 2, Infinity, Infinity, Infinity]));
});

Deno.test("topkSmallest filters match the reference: self, labels (different/same), radius, combined", async () => {
  const rng = new Rng(2);
  const rows = 37, cols = 211, k = 12;
  const data = values(rng, rows, cols);
  const rowLabels = new Int32Array(rows).map(() => rng.int(4));
  const colLabels = new Int32Array(cols).map(() => rng.int(4));
  const rowMin = new Float32Array(rows).map(() => rng.int(8) - 0.5);
  rowMin[3] = NaN; // a NaN radius keeps nothing (value > NaN is false)
  using inputs = filterInputs(gpu, { rowLabels, colLabels, rowMinDistance: rowMin });
  const filters: FilterSpec[] = [
    { excludeSelf: true },
    { excludeSelf: true, selfOffset: 100 },
    { labelMode: "different" },
    { labelMode: "same" },
    { radius: true },
    { excludeSelf: true, selfOffset: 5, labelMode: "same", radius: true },
  ];
  for (const spec of filters) {
    const f = filterPair(inputs, spec);
    await check(data, rows, cols, k, f);
    await check(data, rows, cols, k, f, { segments: 3 });
  }
  // Scalar-scan path (cols % 4 != 0) with every filter.
  const colLabels2 = colLabels.subarray(0, 203);
  using cl2 = GpuBuffer.fromArray(gpu, colLabels2);
  const scalarInputs = {
    gpu: { ...inputs.gpu, colLabels: cl2 },
    host: { ...inputs.host, colLabels: colLabels2 },
  };
  await check(
    values(rng, rows, 203),
    rows,
    203,
    k,
    filterPair(scalarInputs, { excludeSelf: true, labelMode: "different", radius: true }),
  );
});

Deno.test("topkSmallest blocks rows that exceed a binding and splits past one dispatch", async () => {
  const rng = new Rng(3);
  // Forced 8 KiB bindings: row blocks of values and of the outputs, bound from unaligned starts.
  await check(values(rng, 301, 60), 301, 60, 7, {}, { maxBindingBytes: 8192 });
  await check(values(rng, 97, 33), 97, 33, 3, {}, { maxBindingBytes: 4096, segments: 2 });
  // 70,000 rows x 64 segments = 70,000 workgroups of 64: more than one dispatch dimension holds.
  const rows = 70000, cols = 64;
  await check(values(rng, rows, cols), rows, cols, 1, {}, { segments: 64 });
});

Deno.test("topkSmallest rejects bad k, bad filters and bad shapes", async () => {
  using v = GpuBuffer.zeros(gpu, "f32", [4, 8]);
  for (const k of [0, TOPK_MAX_K + 1, 2.5]) {
    await assert.rejects(
      () => topkSmallest(v, k),
      (e: Error) => e instanceof UserError && /k must be/.test(e.message),
    );
  }
  using flat = GpuBuffer.zeros(gpu, "f32", [8]);
  await assert.rejects(() => topkSmallest(flat, 1), ShapeError);
  using rl = GpuBuffer.zeros(gpu, "i32", [3]);
  using cl = GpuBuffer.zeros(gpu, "i32", [8]);
  await assert.rejects(() => topkSmallest(v, 1, { rowLabels: rl, colLabels: cl }), (e: Error) => {
    assert.ok(e instanceof ShapeError);
    assert.match(e.message, /rowLabels \[3\].*\[4 x 8\]/);
    return true;
  });
  await assert.rejects(() => topkSmallest(v, 1, { rowLabels: rl }), /needs both rowLabels and colLabels/);
  using rm = GpuBuffer.zeros(gpu, "f32", [5]);
  await assert.rejects(() => topkSmallest(v, 1, { rowMinDistance: rm }), ShapeError);
  assert.throws(
    () => topkSmallestRef({ rows: 1, cols: 1, data: new Float32Array(1) }, TOPK_MAX_K + 1),
    UserError,
  );
});
