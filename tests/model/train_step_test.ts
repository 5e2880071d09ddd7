// The whole training step: gradients of every layer against tfjs autodiff and f64 finite differences
// (repeated indices, batch 1, hidden layers, normalize on/off), several SGD steps against the plain-TS
// optimiser fed with tfjs gradients, the GPU index-slice path, pipelined batches, a short training run,
// and input errors.
// Tolerances: gradients |d| <= 1e-4 * max(1e-2, max|expected|) + 2e-3 |expected| (f32 vs f32 in another
// order through normalisation and variances); parameters after steps |d| <= 1e-5 + 1e-3 |expected|.
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { ShapeError, UserError } from "../../lib/errors.ts";
import { EmbeddingHead, type HeadConfig, type LayerParams } from "../../lib/model/head.ts";
import { SgdMomentumRef } from "../../lib/model/optimizer.ts";
import { type LossConfig, TrainStep } from "../../lib/model/train_step.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";
import { finiteDifferences, maxAbs, tfHeadGradients } from "./oracles.ts";

const LOSS: LossConfig = { margin: 0.2, globalWeight: 1, lambda: 1, t: 0.4 };
const OPT = { lr: 0.05, momentum: 0.9, weightDecay: 0 };

const closeGrad = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) =>
  assertAllClose(a, b, { atol: 1e-4 * Math.max(1e-2, maxAbs(b)), rtol: 2e-3, what });

function features(rng: Rng, rows: number, cols: number): HostMatrix {
  return { rows, cols, data: rng.uniformArray(rows * cols, 0, 1) };
}

/** Triplets with repeats: the same sample in several triplets and twice within one. */
function tripletsWithRepeats(rng: Rng, count: number, rows: number): Uint32Array {
  const t = Uint32Array.from({ length: 3 * count }, () => rng.int(Math.min(rows, 2 + count)));
  if (count > 1) t[5] = t[3]; // n == a in triplet 1
  return t;
}

const CASES: { config: HeadConfig; loss: LossConfig; counts: number[] }[] = [
  { config: { inDim: 23, outDim: 6, seed: 1 }, loss: LOSS, counts: [1, 9] },
  { config: { inDim: 17, outDim: 5, hidden: [11], seed: 2 }, loss: LOSS, counts: [7] },
  {
    config: { inDim: 10, outDim: 3, normalize: false, seed: 3, init: "torch-default" },
    loss: { margin: 0.5, globalWeight: 0.5, lambda: 2, t: 0.1 },
    counts: [6],
  },
  { config: { inDim: 9, outDim: 4, hidden: [6, 5], normalize: false, seed: 4 }, loss: LOSS, counts: [5] },
];

Deno.test("step gradients match tfjs autodiff and f64 finite differences (repeats, batch 1, hidden layers, normalize on/off)", async () => {
  const gpu = await getGpu();
  const rng = new Rng(61);
  for (const { config, loss, counts } of CASES) {
    const f = features(rng, 40, config.inDim);
    using fb = GpuBuffer.fromArray(gpu, f.data, [f.rows, f.cols]);
    using head = EmbeddingHead.create(gpu, config);
    using step = new TrainStep(gpu, head, fb, loss, OPT);
    const params = await head.parameters();
    for (const count of counts) {
      const t = tripletsWithRepeats(rng, count, f.rows);
      const { scalars, grads } = await step.gradients(t);
      const oracle = { params, normalize: head.config.normalize };
      const want = tfHeadGradients(oracle, f, t, loss);
      const what = `${JSON.stringify(config)} B=${count}`;
      assertAllClose([scalars.loss], [want.loss], { rtol: 1e-4, atol: 1e-6, what: `loss ${what}` });
      grads.forEach((g, l) => {
        closeGrad(g.weight, want.grads[l].weight, `dW${l} ${what}`);
        closeGrad(g.bias, want.grads[l].bias, `db${l} ${what}`);
      });
      for (const [l, kind, i, fd] of finiteDifferences(oracle, f, t, loss, 3, 100 + count)) {
        const got = grads[l][kind][i];
        const scale = Math.max(1e-2, maxAbs(want.grads[l][kind]));
        assert.ok(
          Math.abs(got - fd) <= 2e-3 * Math.abs(fd) + 1e-4 * scale,
          `FD ${what} ${kind}${l}[${i}]: ${got} vs ${fd}`,
        );
      }
    }
    // gradients() does not update anything.
    assert.deepEqual(await head.parameters(), params);
  }
});

Deno.test("several SGD steps (momentum, weight decay, lr multipliers, lr change) match the plain-TS optimiser on tfjs gradients", async () => {
  const gpu = await getGpu();
  const rng = new Rng(62);
  const config: HeadConfig = { inDim: 12, outDim: 4, hidden: [8], seed: 9 };
  const opt = { lr: 0.1, momentum: 0.9, weightDecay: 0.01, lrMultipliers: [1, 10] };
  const f = features(rng, 30, config.inDim);
  using fb = GpuBuffer.fromArray(gpu, f.data, [f.rows, f.cols]);
  using head = EmbeddingHead.create(gpu, config);
  using step = new TrainStep(gpu, head, fb, LOSS, opt);
  const ref = new SgdMomentumRef(await head.parameters(), opt);
  for (let s = 0; s < 5; s++) {
    if (s === 3) {
      step.setLearningRate(0.02);
      ref.lr = 0.02;
    }
    const t = Uint32Array.from({ length: 3 * 8 }, () => rng.int(f.rows));
    const want = tfHeadGradients({ params: ref.params, normalize: true }, f, t, LOSS);
    const scalars = await step.step(t);
    assertAllClose([scalars.loss], [want.loss], { rtol: 1e-4, atol: 1e-6, what: `loss at step ${s}` });
    ref.step(want.grads);
    const got = await head.parameters();
    got.forEach((p, l) => {
      assertAllClose(p.weight, ref.params[l].weight, {
        atol: 1e-5,
        rtol: 1e-3,
        what: `W${l} after step ${s}`,
      });
      assertAllClose(p.bias, ref.params[l].bias, { atol: 1e-5, rtol: 1e-3, what: `b${l} after step ${s}` });
    });
  }
  assert.equal(step.optimizer.steps, 5);
  assert.equal(step.learningRate, 0.02);
  const state = await step.optimizerState();
  state.velocities.forEach((v, l) => {
    assertAllClose(v.weight, ref.velocities[l].weight, { atol: 1e-5, rtol: 1e-3, what: `velocity W${l}` });
  });
});

Deno.test("stepping a slice of a GPU triplet buffer equals stepping the host triplets; stepBatches keeps order", async () => {
  const gpu = await getGpu();
  const rng = new Rng(63);
  const config = { inDim: 16, outDim: 8, seed: 10 };
  const f = features(rng, 50, config.inDim);
  using fb = GpuBuffer.fromArray(gpu, f.data, [f.rows, f.cols]);
  const all = Uint32Array.from({ length: 3 * 100 }, () => rng.int(f.rows));
  using tb = GpuBuffer.fromArray(gpu, all, [100, 3]);
  const run = async (feed: (s: TrainStep) => Promise<number[]>): Promise<[LayerParams[], number[]]> => {
    using head = EmbeddingHead.create(gpu, config);
    using step = new TrainStep(gpu, head, fb, LOSS, OPT);
    const losses = await feed(step);
    return [await head.parameters(), losses];
  };
  const [pHost, lHost] = await run(async (s) => {
    const out = [];
    for (let o = 10; o < 100; o += 32) {
      out.push((await s.step(all.subarray(3 * o, 3 * Math.min(100, o + 32)))).loss);
    }
    return out;
  });
  const [pGpu, lGpu] = await run(async (s) => {
    const out = [];
    for (let o = 10; o < 100; o += 32) {
      out.push((await s.step(tb, { offset: o, count: Math.min(32, 100 - o) })).loss);
    }
    return out;
  });
  const order: number[] = [];
  const [pBatches, lBatches] = await run(async (s) =>
    (await s.stepBatches(tb, { batchSize: 32, offset: 10, maxInFlight: 3 }, (_, i, n) => order.push(i, n)))
      .map((x) => x.loss)
  );
  assert.deepEqual(lGpu, lHost);
  assert.deepEqual(pGpu, pHost);
  assert.deepEqual(lBatches, lHost);
  assert.deepEqual(pBatches, pHost);
  assert.deepEqual(order, [0, 32, 1, 32, 2, 26]);
});

Deno.test("a short run on a separable problem drives the loss down and the training error to 0", async () => {
  const gpu = await getGpu();
  const rng = new Rng(64);
  const classes = 4, per = 40, dim = 12;
  const centers = Array.from({ length: classes }, () => rng.normalArray(dim, 1));
  const data = new Float32Array(classes * per * dim);
  const labels: number[] = [];
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < per; i++) {
      const r = c * per + i;
      labels.push(c);
      for (let j = 0; j < dim; j++) data[r * dim + j] = centers[c][j] + 0.3 * rng.normal();
    }
  }
  const n = classes * per;
  const sample = (count: number) => {
    const t = new Uint32Array(3 * count);
    for (let i = 0; i < count; i++) {
      const a = rng.int(n), c = labels[a];
      t[3 * i] = a;
      t[3 * i + 1] = c * per + rng.int(per);
      let neg = rng.int(n);
      while (labels[neg] === c) neg = rng.int(n);
      t[3 * i + 2] = neg;
    }
    return t;
  };
  using fb = GpuBuffer.fromArray(gpu, data, [n, dim]);
  using head = EmbeddingHead.create(gpu, { inDim: dim, outDim: 8, seed: 11 });
  using step = new TrainStep(gpu, head, fb, LOSS, OPT);
  const probe = sample(600);
  const before = (await step.gradients(probe)).scalars;
  for (let epoch = 0; epoch < 8; epoch++) await step.stepBatches(sample(n), { batchSize: 32 });
  const after = (await step.gradients(probe)).scalars;
  assert.ok(before.error > 0.02, `the untrained head already separates the classes (error ${before.error})`);
  assert.equal(after.error, 0, `training error after the run: ${after.error}`);
  assert.ok(
    after.tripletLoss < 0.25 * before.tripletLoss,
    `triplet loss ${before.tripletLoss} -> ${after.tripletLoss}`,
  );
  assert.ok(after.loss < before.loss, `loss ${before.loss} -> ${after.loss}`);
});

Deno.test("training step input errors are clear", async () => {
  const gpu = await getGpu();
  using fb = GpuBuffer.zeros(gpu, "f32", [10, 4]);
  using head = EmbeddingHead.create(gpu, { inDim: 4, outDim: 2 });
  using other = GpuBuffer.zeros(gpu, "f32", [10, 5]);
  assert.throws(() => new TrainStep(gpu, head, other, LOSS, OPT), ShapeError);
  assert.throws(() => new TrainStep(gpu, head, fb, { ...LOSS, margin: -1 }, OPT), UserError);
  assert.throws(() => new TrainStep(gpu, head, fb, LOSS, { ...OPT, momentum: 1 }), UserError);
  assert.throws(
    () => new TrainStep(gpu, head, fb, LOSS, { ...OPT, lrMultipliers: [1, 10] }),
    /one per layer/,
  );
  using step = new TrainStep(gpu, head, fb, LOSS, OPT);
  await assert.rejects(() => step.step(new Uint32Array([0, 1, 10])), /index 10.*N = 10/);
  await assert.rejects(() => step.step(new Uint32Array([0, 1])), /\[T x 3\]/);
  await assert.rejects(() => step.step(new Uint32Array([0, 1, 2]), { offset: 1 }), UserError);
  await assert.rejects(() => step.step(new Uint32Array([0, 1, 2]), { count: 2 }), UserError);
  assert.throws(() => step.setLearningRate(-1), UserError);
  // The step still works after rejected calls.
  assert.ok(Number.isFinite((await step.step(new Uint32Array([0, 1, 2]))).loss));
});
