// L2 normalisation kernels (kernels/normalize.wgsl) against the references, tfjs autodiff and f64
// finite differences. Tolerance: |d| <= 1e-5 * max|expected| + 1e-4 * |expected|.
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import {
  encodeL2NormalizeBackward,
  encodeL2NormalizeForward,
  l2Normalize,
  l2NormalizeBackwardRef,
  l2NormalizeForwardRef,
  NORMALIZE_EPS,
} from "../../lib/ops/normalize.ts";
import { l2NormalizeRowsRef } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";
import { maxAbs, tf } from "./oracles.ts";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) =>
  assertAllClose(a, b, { atol: 1e-5 * Math.max(1, maxAbs(b)), rtol: 1e-4, what });

Deno.test("normalize forward matches the reference (zero rows stay zero, norms kept) for awkward shapes", async () => {
  const gpu = await getGpu();
  const rng = new Rng(21);
  for (const [rows, dim] of [[1, 1], [5, 3], [67, 64], [130, 17]]) {
    const z = rng.uniformArray(rows * dim, -2, 2);
    z.fill(0, 0, dim); // row 0 is all zeros
    using zb = GpuBuffer.fromArray(gpu, z, [rows, dim]);
    const { out, norms } = await l2Normalize(zb);
    using o = out, n = norms;
    const ref = l2NormalizeForwardRef({ rows, cols: dim, data: z });
    close(await o.read(), ref.out.data, `e ${rows}x${dim}`);
    close(await n.read(), ref.norms, `norms ${rows}x${dim}`);
    close(ref.out.data, l2NormalizeRowsRef({ rows, cols: dim, data: z }).data, "matches the util reference");
  }
});

Deno.test("normalize works on row blocks and padded strides", async () => {
  const gpu = await getGpu();
  const rng = new Rng(22);
  const rows = 300, dim = 5, ld = 8;
  const z = rng.uniformArray(rows * ld, -1, 1);
  using zb = GpuBuffer.fromArray(gpu, z, [rows, ld]);
  using out = GpuBuffer.zeros(gpu, "f32", [rows, dim]);
  using norms = GpuBuffer.zeros(gpu, "f32", [rows]);
  const batch = new CommandBatch(gpu);
  for (const start of [0, 64, 128, 192, 256]) {
    await encodeL2NormalizeForward(batch, zb, {
      rowStart: start,
      rows: Math.min(64, rows - start),
      dim,
      ldIn: ld,
      out,
      norms,
    });
  }
  await batch.submit();
  const zu = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) zu.set(z.subarray(r * ld, r * ld + dim), r * dim);
  close(await out.read(), l2NormalizeForwardRef({ rows, cols: dim, data: zu }).out.data, "blocked");
});

Deno.test("normalize backward matches the reference, tfjs autodiff and finite differences", async () => {
  const gpu = await getGpu();
  const rng = new Rng(23);
  for (const [rows, dim] of [[1, 1], [4, 3], [37, 64], [129, 7]]) {
    const z = rng.uniformArray(rows * dim, -2, 2);
    const g = rng.uniformArray(rows * dim, -1, 1);
    const fwd = l2NormalizeForwardRef({ rows, cols: dim, data: z });
    const ref = l2NormalizeBackwardRef(fwd.out, { rows, cols: dim, data: g }, fwd.norms).data;
    const tfGrad = tf.tidy(() => {
      const gt = tf.tensor2d(g, [rows, dim]);
      return tf.grad((x: tf.Tensor) =>
        tf.sum(tf.mul(gt, tf.div(x, tf.maximum(tf.norm(x, "euclidean", 1, true), NORMALIZE_EPS))))
      )(tf.tensor2d(z, [rows, dim])).dataSync() as Float32Array;
    });
    close(ref, tfGrad, `reference vs tfjs ${rows}x${dim}`);
    // f64 central differences of sum(g * z / ||z||) for a few entries.
    for (let c = 0; c < 3; c++) {
      const r = rng.int(rows), j = rng.int(dim), h = 1e-6;
      const f = (v: number) => {
        const row = Array.from(z.subarray(r * dim, (r + 1) * dim), (x, q) => (q === j ? v : x));
        const n = Math.sqrt(row.reduce((s, x) => s + x * x, 0));
        return row.reduce((s, x, q) => s + g[r * dim + q] * x / n, 0);
      };
      const fd = (f(z[r * dim + j] + h) - f(z[r * dim + j] - h)) / (2 * h);
      assert.ok(
        Math.abs(fd - ref[r * dim + j]) <= 1e-4 * Math.max(1, Math.abs(fd)),
        `FD ${fd} vs ${ref[r * dim + j]}`,
      );
    }
    using zb = GpuBuffer.fromArray(gpu, z, [rows, dim]);
    using gb = GpuBuffer.fromArray(gpu, g, [rows, dim]);
    const batch = new CommandBatch(gpu);
    const { out: e, norms } = await encodeL2NormalizeForward(batch, zb);
    const ld = dim + 3; // a padded output stride, as the training step uses
    using dz = await encodeL2NormalizeBackward(batch, e, gb, norms, { ldOut: ld });
    await batch.submit();
    e.destroy();
    norms.destroy();
    const got = await dz.read();
    const unpadded = new Float32Array(rows * dim);
    for (let r = 0; r < rows; r++) unpadded.set(got.subarray(r * ld, r * ld + dim), r * dim);
    close(unpadded, tfGrad, `GPU vs tfjs ${rows}x${dim}`);
  }
});

Deno.test("normalize backward of a zero row is the clamped (linear) regime", async () => {
  const gpu = await getGpu();
  using z = GpuBuffer.zeros(gpu, "f32", [1, 3]);
  using g = GpuBuffer.fromArray(gpu, new Float32Array([1e-12, -2e-12, 0]), [1, 3]);
  const batch = new CommandBatch(gpu);
  const { out: e, norms } = await encodeL2NormalizeForward(batch, z);
  using dz = await encodeL2NormalizeBackward(batch, e, g, norms);
  await batch.submit();
  assert.deepEqual([...(await e.read())], [0, 0, 0]);
  assertAllClose(await dz.read(), [1, -2, 0], { rtol: 1e-6 });
  e.destroy();
  norms.destroy();
});
