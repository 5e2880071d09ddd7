// EmbeddingHead: forward against embedRef (tolerance |d| <= 1e-5 + 1e-3 |expected|), features larger
// than one storage binding, parameters round trip, seeded initialisation, config errors.
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { ShapeError, UserError } from "../../lib/errors.ts";
import { EmbeddingHead, embedRef, type HeadConfig, initHeadParameters } from "../../lib/model/head.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";

Deno.test("embed matches embedRef for one layer, hidden layers, normalize on and off", async () => {
  const gpu = await getGpu();
  const rng = new Rng(51);
  const configs: HeadConfig[] = [
    { inDim: 13, outDim: 5, seed: 1 },
    { inDim: 13, outDim: 5, normalize: false, seed: 2, init: "torch-default" },
    { inDim: 20, outDim: 7, hidden: [9, 6], seed: 3 },
    { inDim: 1, outDim: 1, seed: 4 },
  ];
  for (const config of configs) {
    for (const rows of [1, 67]) {
      const x = { rows, cols: config.inDim, data: rng.uniformArray(rows * config.inDim, -1, 1) };
      using head = EmbeddingHead.create(gpu, config);
      using xb = GpuBuffer.fromArray(gpu, x.data, [rows, config.inDim]);
      using e = await head.embed(xb);
      assert.deepEqual(e.shape, [rows, config.outDim]);
      const want = embedRef(await head.parameters(), config, x).data;
      assertAllClose(await e.read(), want, { atol: 1e-5, rtol: 1e-3, what: JSON.stringify(config) });
    }
  }
});

Deno.test("embedAll handles a feature matrix larger than one storage binding (row blocks)", async () => {
  const gpu = await getGpu();
  const cols = 784;
  const rows = Math.floor(gpu.maxBindingBytes / (cols * 4)) + 2000; // just past one binding
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 1000; // cheap, deterministic
  using features = GpuBuffer.fromArray(gpu, data, [rows, cols]);
  assert.ok(features.byteLength > gpu.maxBindingBytes);
  const config = { inDim: cols, outDim: 16, seed: 5 };
  using head = EmbeddingHead.create(gpu, config);
  using e = await head.embedAll(features);
  const params = await head.parameters();
  // Rows around the block boundary and at both ends.
  const boundary = Math.floor(gpu.maxBindingBytes / (cols * 4 * 64)) * 64;
  for (const r of [0, boundary - 1, boundary, boundary + 1, rows - 1]) {
    const want =
      embedRef(params, config, { rows: 1, cols, data: data.subarray(r * cols, (r + 1) * cols) }).data;
    assertAllClose(await e.read(r * 16, 16), want, { atol: 1e-5, rtol: 1e-3, what: `row ${r}` });
  }
});

Deno.test("parameters round-trip; initialisation is seeded and within the stated bounds", async () => {
  const gpu = await getGpu();
  const config = { inDim: 30, outDim: 10, hidden: [20] };
  const a = initHeadParameters({ ...config, seed: 7 });
  const b = initHeadParameters({ ...config, seed: 7 });
  const c = initHeadParameters({ ...config, seed: 8 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a[0].weight, c[0].weight);
  const xavier = Math.sqrt(6 / (30 + 20));
  assert.ok(a[0].weight.every((v) => Math.abs(v) <= xavier) && a[0].bias.every((v) => v === 0));
  assert.ok(Math.max(...a[0].weight.map(Math.abs)) > 0.9 * xavier);
  const torch = initHeadParameters({ ...config, init: "torch-default" });
  assert.ok(torch[1].weight.every((v) => Math.abs(v) <= 1 / Math.sqrt(20)));
  assert.ok(torch[1].bias.some((v) => v !== 0));
  using head = EmbeddingHead.create(gpu, { ...config, seed: 7 });
  assert.deepEqual(await head.parameters(), a);
  head.setParameters(c);
  assert.deepEqual(await head.parameters(), c);
  assert.throws(() => head.setParameters(c.slice(0, 1)), ShapeError);
});

Deno.test("head config and input errors are clear", async () => {
  const gpu = await getGpu();
  assert.throws(() => EmbeddingHead.create(gpu, { inDim: 0, outDim: 4 }), UserError);
  assert.throws(() => EmbeddingHead.create(gpu, { inDim: 4, outDim: 4, hidden: [3, -1] }), /hidden/);
  assert.throws(() => EmbeddingHead.create(gpu, { inDim: 4, outDim: 2.5 }), /outDim/);
  using head = EmbeddingHead.create(gpu, { inDim: 4, outDim: 2 });
  using x = GpuBuffer.zeros(gpu, "f32", [3, 5]);
  await assert.rejects(
    () => head.embed(x),
    (e: Error) => e instanceof ShapeError && /\[3 x 5\].*4 columns/.test(e.message),
  );
});
