// Linear layer kernels against the plain-TS references, tfjs-core autodiff and f64 finite differences.
// Tolerances: GPU f32 vs references |d| <= 1e-4 * max|expected| + 1e-3 * |expected| (accumulation order
// differs); vs finite differences the same bound (the layer is linear in W and b).
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { alignedRowBlock, GpuBuffer, rowBlocks } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { ShapeError } from "../../lib/errors.ts";
import {
  augmentedLength,
  encodeLinearGradInput,
  encodeLinearGradWeight,
  linearForward,
  linearForwardRef,
  linearGradInputRef,
  linearGradWeightRef,
  type LinearTiles,
  packAugmented,
  paddedWidth,
  unpackAugmented,
} from "../../lib/ops/linear.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";
import { maxAbs, tf } from "../model/oracles.ts";

const SOFTWARE: LinearTiles = {
  wg: 64,
  forward: { tr: 4, tcv: 4 },
  gradWeight: { tk: 8, tcv: 2, splitRows: 1 << 30 },
  gradInput: { tr: 4, tk: 2 },
};
const HARDWARE: LinearTiles = {
  wg: 64,
  forward: { tr: 2, tcv: 1 },
  gradWeight: { tk: 4, tcv: 1, splitRows: 32 },
  gradInput: { tr: 2, tk: 1 },
};
// Both tile sets run here (the adapter picks one); the shapes below leave partial tiles and splits.
const TILES = { software: SOFTWARE, hardware: HARDWARE };

const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) =>
  assertAllClose(a, b, { atol: 1e-4 * Math.max(1, maxAbs(b)), rtol: 1e-3, what });

function padRows(m: Float32Array, rows: number, cols: number): Float32Array {
  const w = paddedWidth(cols);
  const out = new Float32Array(rows * w);
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * cols, (r + 1) * cols), r * w);
  return out;
}

function unpadRows(m: Float32Array, rows: number, cols: number): Float32Array {
  const w = paddedWidth(cols);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * w, r * w + cols), r * cols);
  return out;
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [7, 13, 5], [37, 31, 67], [130, 64, 64], [3, 4, 4]];

Deno.test("linear forward matches the reference for awkward shapes, ReLU on/off, every tile set", async () => {
  const gpu = await getGpu();
  const rng = new Rng(11);
  for (const [rows, k, o] of SHAPES) {
    const x = rng.uniformArray(rows * k, -1, 1),
      w = rng.uniformArray(k * o, -1, 1),
      b = rng.uniformArray(o, -1, 1);
    using xb = GpuBuffer.fromArray(gpu, x, [rows, k]);
    using wb = GpuBuffer.fromArray(gpu, packAugmented({ inDim: k, outDim: o }, w, b));
    for (const relu of [false, true]) {
      const want = linearForwardRef({ rows, cols: k, data: x }, w, b, relu).data;
      for (const [name, tiles] of Object.entries(TILES)) {
        using y = await linearForward(xb, wb, { inDim: k, outDim: o }, { relu, tiles });
        assert.deepEqual(y.shape, [rows, paddedWidth(o)]);
        const got = await y.read();
        close(unpadRows(got, rows, o), want, `forward ${rows}x${k}->${o} relu=${relu} ${name}`);
        assert.equal(maxAbs(got.filter((_, i) => i % paddedWidth(o) >= o)), 0, "padding columns are 0");
      }
    }
  }
});

Deno.test("linear forward works in row blocks (input larger than a binding) and with padded strides", async () => {
  const gpu = await getGpu();
  const rng = new Rng(12);
  const rows = 1000, k = 21, ldx = 24, o = 9;
  const x = rng.uniformArray(rows * ldx, -1, 1), w = rng.uniformArray(k * o, -1, 1), b = rng.uniformArray(o);
  using xb = GpuBuffer.fromArray(gpu, x, [rows, ldx]);
  using wb = GpuBuffer.fromArray(gpu, packAugmented({ inDim: k, outDim: o }, w, b));
  const maxBindingBytes = 64 * ldx * 4 * 2; // 128-row blocks
  assert.equal(rowBlocks(rows, alignedRowBlock(gpu, [ldx * 4, 16 * 4], maxBindingBytes, rows)).length, 8);
  using y = await linearForward(xb, wb, { inDim: k, outDim: o }, { maxBindingBytes, ldx, ldy: 16 });
  const xu = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) xu.set(x.subarray(r * ldx, r * ldx + k), r * k);
  const want = linearForwardRef({ rows, cols: k, data: xu }, w, b).data;
  const got = await y.read();
  const unpadded = new Float32Array(rows * o);
  for (let r = 0; r < rows; r++) unpadded.set(got.subarray(r * 16, r * 16 + o), r * o);
  close(unpadded, want, "blocked forward");
});

Deno.test("pack/unpack of augmented parameters round-trips and pads with zeros", () => {
  const shape = { inDim: 3, outDim: 5 };
  const w = Float32Array.from({ length: 15 }, (_, i) => i + 1), b = Float32Array.from([-1, -2, -3, -4, -5]);
  const aug = packAugmented(shape, w, b);
  assert.equal(aug.length, augmentedLength(shape));
  assert.deepEqual([...aug.subarray(0, 8)], [1, 2, 3, 4, 5, 0, 0, 0]);
  assert.deepEqual([...aug.subarray(24, 32)], [-1, -2, -3, -4, -5, 0, 0, 0]);
  const back = unpackAugmented(shape, aug);
  assert.deepEqual(back.weight, w);
  assert.deepEqual(back.bias, b);
  assert.throws(() => packAugmented(shape, w, new Float32Array(4)), ShapeError);
});

/** Runs grad_weight with `tiles` and sums the split-K partials on the host. */
async function gradWeightGpu(
  x: Float32Array,
  dz: Float32Array,
  rows: number,
  k: number,
  o: number,
  tiles: LinearTiles,
): Promise<{ weight: Float32Array; bias: Float32Array; splits: number }> {
  const gpu = await getGpu();
  using xb = GpuBuffer.fromArray(gpu, x, [rows, k]);
  using dzb = GpuBuffer.fromArray(gpu, padRows(dz, rows, o), [rows, paddedWidth(o)]);
  const batch = new CommandBatch(gpu);
  const { partials, splits } = await encodeLinearGradWeight(batch, xb, dzb, { inDim: k, outDim: o }, {
    tiles,
  });
  await batch.submit();
  using p = partials;
  const all = await p.read();
  const len = augmentedLength({ inDim: k, outDim: o });
  const sum = new Float32Array(len);
  for (let s = 0; s < splits; s++) for (let i = 0; i < len; i++) sum[i] += all[s * len + i];
  return { ...unpackAugmented({ inDim: k, outDim: o }, sum), splits };
}

Deno.test("linear grad_weight (split-K, bias row) matches the reference and tfjs autodiff", async () => {
  const rng = new Rng(13);
  for (const [rows, k, o] of SHAPES) {
    const x = rng.uniformArray(rows * k, -1, 1), dz = rng.uniformArray(rows * o, -1, 1);
    const w = rng.uniformArray(k * o, -1, 1), b = rng.uniformArray(o);
    const ref = linearGradWeightRef({ rows, cols: k, data: x }, { rows, cols: o, data: dz });
    // tfjs: d/dW, d/db of sum(dz * (x W + b)).
    const [gw, gb] = tf.tidy(() => {
      const xt = tf.tensor2d(x, [rows, k]), g = tf.tensor2d(dz, [rows, o]);
      const grads = tf.grads((wt: tf.Tensor, bt: tf.Tensor) =>
        tf.sum(tf.mul(g, tf.add(tf.matMul(xt, wt as tf.Tensor2D), bt)))
      )([tf.tensor2d(w, [k, o]), tf.tensor1d(b)]);
      return grads.map((t) => t.dataSync() as Float32Array);
    });
    close(ref.weight, gw, "reference dW vs tfjs");
    close(ref.bias, gb, "reference db vs tfjs");
    for (const [name, tiles] of Object.entries(TILES)) {
      const got = await gradWeightGpu(x, dz, rows, k, o, tiles);
      close(got.weight, gw, `dW ${rows}x${k}->${o} ${name} (${got.splits} splits)`);
      close(got.bias, gb, `db ${rows}x${k}->${o} ${name}`);
    }
  }
});

Deno.test("linear grad_input through the ReLU matches the reference, tfjs and finite differences", async () => {
  const gpu = await getGpu();
  const rng = new Rng(14);
  for (const [rows, k, o] of SHAPES) {
    const h = rng.uniformArray(rows * k, -1, 1); // pre-activations of the layer below
    const act = h.map((v) => Math.max(0, v));
    const w = rng.uniformArray(k * o, -1, 1), b = rng.uniformArray(o), dz = rng.uniformArray(rows * o, -1, 1);
    const ref = linearGradInputRef({ rows, cols: o, data: dz }, w, { rows, cols: k, data: act }).data;
    const tfGrad = tf.tidy(() => {
      const g = tf.tensor2d(dz, [rows, o]), wt = tf.tensor2d(w, [k, o]), bt = tf.tensor1d(b);
      return tf.grad((ht: tf.Tensor) =>
        tf.sum(tf.mul(g, tf.add(tf.matMul(tf.relu(ht) as tf.Tensor2D, wt), bt)))
      )(
        tf.tensor2d(h, [rows, k]),
      ).dataSync() as Float32Array;
    });
    close(ref, tfGrad, "reference dX vs tfjs");
    // Finite differences of f(h) = sum(dz * (relu(h) W + b)) in f64 at a few entries.
    for (let c = 0; c < 4; c++) {
      const r = rng.int(rows), i = rng.int(k), eps = 1e-6;
      if (Math.abs(h[r * k + i]) < 1e-3) continue; // too close to the ReLU kink
      const f = (hv: number) => {
        let s = 0;
        for (let j = 0; j < o; j++) {
          let y = b[j];
          for (let q = 0; q < k; q++) y += Math.max(0, q === i ? hv : h[r * k + q]) * w[q * o + j];
          s += dz[r * o + j] * y;
        }
        return s;
      };
      const fd = (f(h[r * k + i] + eps) - f(h[r * k + i] - eps)) / (2 * eps);
      assert.ok(
        Math.abs(fd - ref[r * k + i]) <= 1e-4 * Math.max(1, Math.abs(fd)),
        `FD ${fd} vs ${ref[r * k + i]}`,
      );
    }
    using dzb = GpuBuffer.fromArray(gpu, padRows(dz, rows, o), [rows, paddedWidth(o)]);
    using wb = GpuBuffer.fromArray(gpu, packAugmented({ inDim: k, outDim: o }, w, b));
    using ab = GpuBuffer.fromArray(gpu, act, [rows, k]);
    for (const [name, tiles] of Object.entries(TILES)) {
      const batch = new CommandBatch(gpu);
      using dx = await encodeLinearGradInput(batch, dzb, wb, ab, { inDim: k, outDim: o }, { tiles });
      await batch.submit();
      assert.deepEqual(dx.shape, [rows, paddedWidth(k)]);
      close(unpadRows(await dx.read(), rows, k), tfGrad, `dX ${rows}x${k}->${o} ${name}`);
    }
  }
});

Deno.test("linear ops reject mismatched shapes with a ShapeError naming both", async () => {
  const gpu = await getGpu();
  using x = GpuBuffer.zeros(gpu, "f32", [4, 6]);
  using w = GpuBuffer.zeros(gpu, "f32", [augmentedLength({ inDim: 5, outDim: 3 })]);
  await assert.rejects(() => linearForward(x, w, { inDim: 5, outDim: 3 }), (e: Error) => {
    assert.ok(e instanceof ShapeError);
    assert.match(e.message, /\[4 x 6\].*5 columns/);
    return true;
  });
  await assert.rejects(() => linearForward(x, w, { inDim: 6, outDim: 3 }), ShapeError);
});
