// SGD kernel against the plain-TS reference over several steps (momentum, weight decay, lr changes,
// split-K partial sums). Tolerance: |d| <= 1e-6 + 1e-5 |expected| (a handful of f32 operations).
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { ShapeError } from "../../lib/errors.ts";
import { encodeSgdUpdate, sgdUpdateRef } from "../../lib/ops/sgd.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";

Deno.test("sgd matches the reference over several steps with momentum, weight decay, lr changes and split-K partials", async () => {
  const gpu = await getGpu();
  const rng = new Rng(41);
  for (const [n, splits] of [[4, 1], [260, 3], [4 * 17000, 2]]) {
    const w0 = rng.uniformArray(n, -1, 1);
    using w = GpuBuffer.fromArray(gpu, w0);
    using v = GpuBuffer.zeros(gpu, "f32", [n]);
    using g = GpuBuffer.zeros(gpu, "f32", [splits, n]);
    const wRef = Float32Array.from(w0), vRef = new Float32Array(n);
    const schedule = [
      { lr: 0.1, momentum: 0.9, weightDecay: 0 },
      { lr: 0.05, momentum: 0.9, weightDecay: 0.01 },
      { lr: 0.5, momentum: 0.5, weightDecay: 1e-3 },
      { lr: 0.01, momentum: 0, weightDecay: 0 },
    ];
    for (const hyper of schedule) {
      const parts = rng.uniformArray(splits * n, -1, 1);
      g.write(parts);
      const sum = new Float64Array(n);
      for (let s = 0; s < splits; s++) for (let i = 0; i < n; i++) sum[i] += parts[s * n + i];
      const batch = new CommandBatch(gpu);
      await encodeSgdUpdate(batch, w, v, g, { ...hyper, splits });
      await batch.submit();
      sgdUpdateRef(wRef, vRef, sum, hyper);
      assertAllClose(await w.read(), wRef, { atol: 1e-6, rtol: 1e-5, what: `w n=${n} splits=${splits}` });
      assertAllClose(await v.read(), vRef, { atol: 1e-6, rtol: 1e-5, what: `v n=${n}` });
      if (splits > 1) {
        assertAllClose(await g.read(0, n), sum, { atol: 1e-6, rtol: 1e-5, what: "reduced gradient" });
      }
    }
  }
});

Deno.test("sgd with apply: false only reduces the partial sums", async () => {
  const gpu = await getGpu();
  using w = GpuBuffer.fromArray(gpu, new Float32Array([1, 2, 3, 4]));
  using v = GpuBuffer.fromArray(gpu, new Float32Array([5, 6, 7, 8]));
  using g = GpuBuffer.fromArray(gpu, new Float32Array([1, 1, 1, 1, 2, 2, 2, 2]), [2, 4]);
  const batch = new CommandBatch(gpu);
  await encodeSgdUpdate(batch, w, v, g, { lr: 1, momentum: 0.9, weightDecay: 0, splits: 2, apply: false });
  await batch.submit();
  assert.deepEqual([...(await w.read())], [1, 2, 3, 4]);
  assert.deepEqual([...(await v.read())], [5, 6, 7, 8]);
  assert.deepEqual([...(await g.read(0, 4))], [3, 3, 3, 3]);
});

Deno.test("sgd rejects lengths that are not multiples of 4 and mismatched buffers", async () => {
  const gpu = await getGpu();
  using w = GpuBuffer.zeros(gpu, "f32", [6]);
  using v = GpuBuffer.zeros(gpu, "f32", [6]);
  using w8 = GpuBuffer.zeros(gpu, "f32", [8]);
  const batch = new CommandBatch(gpu);
  await assert.rejects(
    () => encodeSgdUpdate(batch, w, v, v, { lr: 1, momentum: 0, weightDecay: 0 }),
    ShapeError,
  );
  await assert.rejects(
    () => encodeSgdUpdate(batch, w8, v, w8, { lr: 1, momentum: 0, weightDecay: 0 }),
    ShapeError,
  );
  await assert.rejects(
    () => encodeSgdUpdate(batch, w8, w8, w8, { lr: NaN, momentum: 0, weightDecay: 0 }),
    RangeError,
  );
});
