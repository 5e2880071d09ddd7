// Triplet + global loss kernel against the f64 reference, tfjs autodiff and f64 finite differences.
// Tolerances: scalars and distances |d| <= 1e-5 * max(1, |expected|) + 1e-4 |expected|; gradients
// |d| <= 1e-5 * max(1, max|expected|) + 1e-3 |expected| (f32 sums over the batch in another order).
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { ShapeError, UserError } from "../../lib/errors.ts";
import {
  DEFAULT_LOSS_CONFIG,
  type LossScalars,
  tripletLossBackward,
  type TripletLossConfig,
  tripletLossForward,
  tripletLossRef,
} from "../../lib/ops/losses.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";
import { lossF64, maxAbs, tfEmbeddingGradient } from "../model/oracles.ts";

function closeScalars(got: LossScalars, want: LossScalars, what: string): void {
  for (const k of Object.keys(want) as (keyof LossScalars)[]) {
    assertAllClose([got[k]], [want[k]], {
      atol: 1e-5 * Math.max(1, Math.abs(want[k])),
      rtol: 1e-4,
      what: `${what} ${k}`,
    });
  }
}

const closeGrad = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) =>
  assertAllClose(a, b, { atol: 1e-5 * Math.max(1, maxAbs(b)), rtol: 1e-3, what });

/** Sums slot gradients [3B x D] into per-row gradients [rows x D]. */
function scatterSlots(
  grad: ArrayLike<number>,
  triplets: Uint32Array,
  rows: number,
  dim: number,
): Float64Array {
  const out = new Float64Array(rows * dim);
  triplets.forEach((r, s) => {
    for (let j = 0; j < dim; j++) out[r * dim + j] += grad[s * dim + j];
  });
  return out;
}

function randomTriplets(rng: Rng, count: number, rows: number): Uint32Array {
  return Uint32Array.from({ length: 3 * count }, () => rng.int(rows));
}

const CONFIGS: TripletLossConfig[] = [
  DEFAULT_LOSS_CONFIG,
  { margin: 0.5, globalWeight: 0, lambda: 1, t: 0.4 },
  { margin: 0, globalWeight: 2.5, lambda: 0.3, t: 1.5 },
];

Deno.test("loss forward: scalars and distances match the reference (batch 1, primes, > one workgroup)", async () => {
  const gpu = await getGpu();
  const rng = new Rng(31);
  for (const [count, rows, dim] of [[1, 3, 1], [2, 5, 3], [37, 20, 64], [300, 100, 8]]) {
    const emb: HostMatrix = { rows, cols: dim, data: rng.uniformArray(rows * dim, -0.5, 0.5) };
    const t = randomTriplets(rng, count, rows);
    using eb = GpuBuffer.fromArray(gpu, emb.data, [rows, dim]);
    using tb = GpuBuffer.fromArray(gpu, t, [count, 3]);
    for (const config of CONFIGS) {
      const ref = tripletLossRef(emb, t, config);
      const r = await tripletLossForward(eb, tb, config);
      using d = r.dists;
      closeScalars(r.scalars, ref.scalars, `B=${count}`);
      const dists = await d.read();
      assertAllClose(dists.filter((_, i) => i % 2 === 0), ref.dap, { rtol: 1e-4, atol: 1e-6, what: "dap" });
      assertAllClose(dists.filter((_, i) => i % 2 === 1), ref.dan, { rtol: 1e-4, atol: 1e-6, what: "dan" });
    }
  }
});

Deno.test("loss backward: slot gradients match the reference; summed per row they match tfjs autodiff and finite differences (repeated indices)", async () => {
  const gpu = await getGpu();
  const rng = new Rng(32);
  for (const [count, rows, dim] of [[1, 3, 2], [7, 4, 5], [64, 30, 16]]) {
    const emb: HostMatrix = { rows, cols: dim, data: rng.uniformArray(rows * dim, -0.5, 0.5) };
    const t = randomTriplets(rng, count, rows);
    t[0] = t[1]; // a sample twice in one triplet (a == p)
    using eb = GpuBuffer.fromArray(gpu, emb.data, [rows, dim]);
    using tb = GpuBuffer.fromArray(gpu, t, [count, 3]);
    for (const config of CONFIGS) {
      const ref = tripletLossRef(emb, t, config);
      const r = await tripletLossBackward(eb, tb, config);
      using _d = r.dists, g = r.grad!;
      const slot = await g.read();
      closeGrad(slot, ref.grad.data, `slot grads B=${count}`);
      const perRow = scatterSlots(slot, t, rows, dim);
      const tfr = tfEmbeddingGradient(emb, t, config);
      assertAllClose([r.scalars.loss], [tfr.loss], { rtol: 1e-4, atol: 1e-6, what: "loss vs tfjs" });
      closeGrad(perRow, tfr.grad, `row grads vs tfjs B=${count}`);
      // f64 central differences of the loss written from the spec, at a few entries.
      const data64 = Float64Array.from(emb.data);
      const lossAt = () => lossF64([], [], [dim], false, { cols: dim, data: data64 }, t, config);
      for (let c = 0; c < 3; c++) {
        const i = rng.int(rows * dim), h = 1e-6, x0 = data64[i];
        data64[i] = x0 + h;
        const up = lossAt();
        data64[i] = x0 - h;
        const down = lossAt();
        data64[i] = x0;
        const fd = (up - down) / (2 * h);
        assert.ok(
          Math.abs(fd - perRow[i]) <= 1e-3 * Math.max(0.1, Math.abs(fd)),
          `FD ${fd} vs ${perRow[i]} at ${i}`,
        );
      }
    }
  }
});

Deno.test("loss in slot layout (no index buffer) equals the indexed form", async () => {
  const gpu = await getGpu();
  const rng = new Rng(33);
  const count = 11, dim = 6;
  const emb: HostMatrix = { rows: 3 * count, cols: dim, data: rng.uniformArray(3 * count * dim, -1, 1) };
  using eb = GpuBuffer.fromArray(gpu, emb.data, [3 * count, dim]);
  const r = await tripletLossBackward(eb, undefined, DEFAULT_LOSS_CONFIG);
  using _d = r.dists, g = r.grad!;
  const ref = tripletLossRef(emb, null, DEFAULT_LOSS_CONFIG);
  closeScalars(r.scalars, ref.scalars, "slot layout");
  closeGrad(await g.read(), ref.grad.data, "slot layout grads");
});

Deno.test("easy triplets give zero loss and exactly zero gradients; the error counts d(a,p) >= d(a,n)", async () => {
  const gpu = await getGpu();
  // Triplet 0: p at the anchor, n far; triplet 1: d(a,p) == d(a,n) (an error, hinge active).
  const emb = new Float32Array([0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 1]);
  using eb = GpuBuffer.fromArray(gpu, emb, [6, 2]);
  using easy = GpuBuffer.fromArray(gpu, new Uint32Array([0, 1, 2]), [1, 3]);
  const config = { margin: 0.2, globalWeight: 0, lambda: 1, t: 0.4 };
  const r = await tripletLossBackward(eb, easy, config);
  using _d = r.dists, g = r.grad!;
  assert.equal(r.scalars.loss, 0);
  assert.equal(r.scalars.error, 0);
  assert.equal(r.scalars.activeFraction, 0);
  assert.equal(maxAbs(await g.read()), 0);
  using tie = GpuBuffer.fromArray(gpu, new Uint32Array([3, 4, 5, 0, 1, 2]), [2, 3]);
  const r2 = await tripletLossForward(eb, tie, config);
  using _d2 = r2.dists;
  assert.equal(r2.scalars.error, 0.5);
  assert.equal(r2.scalars.activeFraction, 0.5);
  assertAllClose([r2.scalars.tripletLoss], [0.1], { rtol: 1e-6 });
});

Deno.test("hinges exactly at 0 are inactive (subgradient 0, as tfjs relu) for both the triplet and the global hinge", async () => {
  const gpu = await getGpu();
  // a = (0,0), p = (0.5,0), n = (0.5,0.5): d(a,p) = 0.25, d(a,n) = 0.5, exact in f32.
  const emb = new Float32Array([0, 0, 0.5, 0, 0.5, 0.5]);
  const t = new Uint32Array([0, 1, 2]);
  using eb = GpuBuffer.fromArray(gpu, emb, [3, 2]);
  using tb = GpuBuffer.fromArray(gpu, t, [1, 3]);
  // margin 0.25: h = 0.25 - 0.5 + 0.25 = 0; t 0.25: mean gap + t = 0. One triplet: variances are 0.
  const config = { margin: 0.25, globalWeight: 1, lambda: 1, t: 0.25 };
  const r = await tripletLossBackward(eb, tb, config);
  using _d = r.dists, g = r.grad!;
  assert.equal(r.scalars.activeFraction, 0);
  assert.equal(r.scalars.loss, 0);
  const grad = await g.read();
  assert.equal(maxAbs(grad), 0);
  const tfr = tfEmbeddingGradient({ rows: 3, cols: 2, data: emb }, t, config);
  assert.equal(maxAbs(tfr.grad), 0);
  // Just past the hinge the gradient switches on (margin + 1e-3).
  const r2 = await tripletLossBackward(eb, tb, { ...config, margin: 0.251 });
  using _d2 = r2.dists, g2 = r2.grad!;
  assert.equal(r2.scalars.activeFraction, 1);
  const ref = tripletLossRef({ rows: 3, cols: 2, data: emb }, t, { ...config, margin: 0.251 });
  closeGrad(await g2.read(), ref.grad.data, "past the hinge");
  assert.ok(maxAbs(ref.grad.data) > 0.5);
});

Deno.test("loss rejects bad settings and empty or short inputs", async () => {
  const gpu = await getGpu();
  using eb = GpuBuffer.zeros(gpu, "f32", [3, 2]);
  using tb = GpuBuffer.fromArray(gpu, new Uint32Array([0, 1, 2]), [1, 3]);
  await assert.rejects(() => tripletLossForward(eb, tb, { ...DEFAULT_LOSS_CONFIG, margin: -1 }), UserError);
  await assert.rejects(() => tripletLossForward(eb, tb, { ...DEFAULT_LOSS_CONFIG, t: NaN }), UserError);
  using empty = GpuBuffer.zeros(gpu, "u32", [0, 3]);
  await assert.rejects(() => tripletLossForward(eb, empty, DEFAULT_LOSS_CONFIG), ShapeError);
  using short = GpuBuffer.zeros(gpu, "f32", [2, 2]);
  await assert.rejects(() => tripletLossForward(short, undefined, DEFAULT_LOSS_CONFIG), ShapeError);
});
