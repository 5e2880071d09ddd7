/**
 * Training-step benchmark: our GPU step (lib/model/train_step.ts: gather -> FC head -> L2 normalise ->
 * triplet + global loss -> backward -> SGD with momentum, one scalar readback per step) against the same
 * step in tfjs-core on its webgpu backend (gather, matMul + bias, normalise, the same loss, tf.train.momentum,
 * autodiff), measured in the same run with interleaved repetitions (medians; the machine is shared).
 *
 * Cases: the paper's head 1024 -> 64 at batch 128 and 512 (random features, N = 60,000: larger than one
 * storage binding, so the gather works in row blocks), and Fashion-MNIST pixels 784 -> 64 at batch 128
 * (the Debian package's training set, label-respecting random triplets). Each case runs in two modes:
 * "await each step" (read the scalars after every step, as a simple loop does) and "pipelined" (keep up
 * to 8 steps in flight and read the scalars as they come: ours through `TrainStep.stepBatches`, tfjs by
 * reading the cost tensors later). Then one full Fashion-MNIST epoch (60,000 triplets, batch 128) of ours
 * in both modes; tfjs's epoch is extrapolated from its per-step median. For orientation: PyTorch on this
 * kind of machine (2 CPU cores) runs that epoch in about 1.7 s.
 *
 * Run with `deno task bench` or `deno bench --allow-read --allow-env tasks/bench/train_step_bench.ts`.
 * @module
 */
import type * as tfTypes from "@tensorflow/tfjs-core";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { profile } from "../../lib/gpu/timing.ts";
import { FASHION_MNIST_DIR, loadIdxDataset } from "../../lib/data/idx.ts";
import { EmbeddingHead, type HeadConfig, initHeadParameters } from "../../lib/model/head.ts";
import { type LossConfig, TrainStep } from "../../lib/model/train_step.ts";
import { Rng } from "../../lib/util/rng.ts";
import { tfHeadLoss } from "./_tf_head.ts";
import { type Contender, loadTf, measure, printTable, record, recordSkipped } from "./_peers.ts";

type Tf = typeof tfTypes;

const gpu = await getGpu();
const LOSS: LossConfig = { margin: 0.2, globalWeight: 1, lambda: 1, t: 0.4 };
const OPT = { lr: 0.05, momentum: 0.9, weightDecay: 0 };
const N = 60000;
const REPS = 3;
const IN_FLIGHT = 8;

interface Data {
  name: string;
  features: Float32Array;
  dim: number;
  triplets: Uint32Array;
}

/** N x dim uniform features and random triplets (for the paper's 1024-d shape). */
function randomData(dim: number): Data {
  const rng = new Rng(dim);
  return {
    name: `random ${dim}-d`,
    features: rng.uniformArray(N * dim),
    dim,
    triplets: Uint32Array.from({ length: 3 * N }, () => rng.int(N)),
  };
}

/** Fashion-MNIST training pixels and one random valid triplet per anchor. */
async function fashionData(): Promise<Data> {
  const ds = await loadIdxDataset(FASHION_MNIST_DIR);
  const { features, labels } = { features: ds.train.features, labels: ds.train.labels };
  const rng = new Rng(7);
  const byClass = new Map<number, number[]>();
  labels.forEach((c, i) => byClass.set(c, [...(byClass.get(c) ?? []), i]));
  const n = labels.length;
  const triplets = new Uint32Array(3 * n);
  for (let a = 0; a < n; a++) {
    const same = byClass.get(labels[a])!;
    let neg = rng.int(n);
    while (labels[neg] === labels[a]) neg = rng.int(n);
    triplets.set([a, same[rng.int(same.length)], neg], 3 * a);
  }
  return { name: "Fashion-MNIST pixels", features: features.data, dim: features.cols, triplets };
}

let tfReady: Promise<Tf> | undefined;

/** tfjs-core on webgpu with all gradients registered (the @tensorflow/tfjs bundle registers them). */
function tfWithGradients(): Promise<Tf> {
  tfReady ??= (async () => {
    const tf = (await loadTf()) as unknown as Tf;
    await import("@tensorflow/tfjs");
    if (tf.getBackend() !== "webgpu") throw new Error(`tfjs backend is ${tf.getBackend()}, expected webgpu`);
    return tf;
  })();
  return tfReady;
}

/** tfjs's version of the step: variables, momentum optimiser and the loss graph on its own device. */
async function tfTrainer(data: Data, config: HeadConfig) {
  const tf = await tfWithGradients();
  const params = initHeadParameters(config);
  const rows = data.features.length / data.dim;
  const f = tf.tensor2d(data.features, [rows, data.dim]);
  const t = tf.tensor1d(Int32Array.from(data.triplets), "int32");
  const vars = params.flatMap((
    p,
  ) => [tf.variable(tf.tensor2d(p.weight, [p.inDim, p.outDim])), tf.variable(tf.tensor1d(p.bias))]);
  const opt = tf.train.momentum(OPT.lr, OPT.momentum);
  const head = { params, normalize: true };
  return {
    step(offset: number, count: number): tfTypes.Scalar {
      return opt.minimize(
        () => tfHeadLoss(tf, vars, head, f, tf.slice(t, 3 * offset, 3 * count) as tfTypes.Tensor1D, LOSS),
        true,
      )!;
    },
    dispose() {
      tf.dispose([f, t, ...vars]);
      opt.dispose();
    },
  };
}

function timed(fn: () => Promise<void>): () => Promise<{ wallMs: number }> {
  return async () => {
    const t0 = performance.now();
    await fn();
    return { wallMs: performance.now() - t0 };
  };
}

async function benchCase(data: Data, batch: number, peers: boolean): Promise<void> {
  const config = { inDim: data.dim, outDim: 64, seed: 1 };
  const caseName = `${data.name} ${data.dim}->64 B=${batch}`;
  const steps = Math.max(8, Math.round(2048 / batch));
  const perRun = steps * batch;
  using features = GpuBuffer.fromArray(gpu, data.features, [data.features.length / data.dim, data.dim]);
  using triplets = GpuBuffer.fromArray(gpu, data.triplets, [data.triplets.length / 3, 3]);
  using head = EmbeddingHead.create(gpu, config);
  using step = new TrainStep(gpu, head, features, LOSS, OPT);
  let ourOffset = 0, tfOffset = 0;
  const next = (o: number) => (o + perRun + perRun <= N ? o + perRun : 0);
  const awaited: Contender[] = [{
    name: "ours (WGSL)",
    run: timed(async () => {
      for (let s = 0; s < steps; s++) {
        await step.step(triplets, { offset: ourOffset + s * batch, count: batch });
      }
      ourOffset = next(ourOffset);
    }),
  }];
  const pipelined: Contender[] = [{
    name: "ours (WGSL)",
    run: timed(async () => {
      await step.stepBatches(triplets, {
        batchSize: batch,
        offset: ourOffset,
        count: perRun,
        maxInFlight: IN_FLIGHT,
      });
      ourOffset = next(ourOffset);
    }),
  }];
  let trainer: Awaited<ReturnType<typeof tfTrainer>> | undefined;
  let tfError: string | undefined;
  if (peers) {
    try {
      trainer = await tfTrainer(data, config);
    } catch (e) {
      tfError = (e as Error).message.split("\n")[0].slice(0, 100);
    }
  }
  if (trainer) {
    const tr = trainer;
    awaited.push({
      name: "tfjs-core webgpu",
      run: timed(async () => {
        for (let s = 0; s < steps; s++) {
          const cost = tr.step(tfOffset + s * batch, batch);
          await cost.data();
          cost.dispose();
        }
        tfOffset = next(tfOffset);
      }),
    });
    pipelined.push({
      name: "tfjs-core webgpu",
      run: timed(async () => {
        const costs: tfTypes.Scalar[] = [];
        for (let s = 0; s < steps; s++) {
          costs.push(tr.step(tfOffset + s * batch, batch));
          if (costs.length >= IN_FLIGHT) await readAndDispose(costs.shift()!);
        }
        for (const c of costs) await readAndDispose(c);
        tfOffset = next(tfOffset);
      }),
    });
  }
  record(`${caseName}, await each step`, await measure(awaited, REPS), perRun, "triplets");
  record(`${caseName}, pipelined`, await measure(pipelined, REPS), perRun, "triplets");
  if (tfError) recordSkipped(caseName, "tfjs-core webgpu", tfError);
  trainer?.dispose();
}

async function readAndDispose(t: tfTypes.Scalar): Promise<void> {
  await t.data();
  t.dispose();
}

/** One real epoch of ours in both modes, the per-pass GPU breakdown of a step, and the extrapolations. */
async function epochReport(data: Data): Promise<void> {
  using features = GpuBuffer.fromArray(gpu, data.features, [data.features.length / data.dim, data.dim]);
  using triplets = GpuBuffer.fromArray(gpu, data.triplets, [data.triplets.length / 3, 3]);
  using head = EmbeddingHead.create(gpu, { inDim: data.dim, outDim: 64, seed: 1 });
  using step = new TrainStep(gpu, head, features, LOSS, OPT);
  const batch = 128, count = data.triplets.length / 3;
  await step.stepBatches(triplets, { batchSize: batch, count: 8 * batch }); // warm-up
  let t0 = performance.now();
  const scalars = await step.stepBatches(triplets, { batchSize: batch, maxInFlight: IN_FLIGHT });
  const pipelinedSec = (performance.now() - t0) / 1000;
  t0 = performance.now();
  for (let o = 0; o < count; o += batch) {
    await step.step(triplets, { offset: o, count: Math.min(batch, count - o) });
  }
  const awaitedSec = (performance.now() - t0) / 1000;
  const { report } = await profile(
    gpu,
    () => step.stepBatches(triplets, { batchSize: batch, count: 16 * batch }),
  );
  const perStep = [...report.byLabel.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([label, t]) => `${label} ${(t.ms / 16).toFixed(2)}`)
    .join(", ");
  console.log(
    `\nFashion-MNIST epoch, 60,000 triplets at batch 128 (${
      Math.ceil(count / batch)
    } steps) on ${gpu.describe()}:\n` +
      `  ours pipelined (stepBatches, ${IN_FLIGHT} in flight): ${pipelinedSec.toFixed(2)} s ` +
      `(${(count / pipelinedSec).toFixed(0)} triplets/s); first/last batch loss ` +
      `${scalars[0].loss.toFixed(4)} / ${scalars.at(-1)!.loss.toFixed(4)}\n` +
      `  ours awaiting every step: ${awaitedSec.toFixed(2)} s\n` +
      `  PyTorch (2 CPU cores, orientation figure from the issue): about 1.7 s\n` +
      `  GPU ms per step by pass (${report.source}): ${perStep}; total ${
        (report.totalMs / 16).toFixed(2)
      } ms\n`,
  );
}

/** deno bench may call a bench function more than once; each case is measured (and printed) once. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return async () => {
    await (p ??= fn());
  };
}

const random1024 = randomData(1024);
let fashion: Data | undefined;
try {
  fashion = await fashionData();
} catch (e) {
  console.error(`Fashion-MNIST unavailable (${(e as Error).message}); its rows are skipped`);
}

Deno.bench({
  name: "train step 1024->64 B=128 (table rows, interleaved with tfjs)",
  group: "train_step",
  n: 1,
  warmup: 0,
  fn: once(() => benchCase(random1024, 128, true)),
});

Deno.bench({
  name: "train step 1024->64 B=512 (table rows, interleaved with tfjs)",
  group: "train_step",
  n: 1,
  warmup: 0,
  fn: once(() => benchCase(random1024, 512, true)),
});

Deno.bench({
  name: "train step Fashion-MNIST 784->64 B=128 (table rows, interleaved with tfjs)",
  group: "train_step",
  n: 1,
  warmup: 0,
  ignore: !fashion,
  fn: once(() => benchCase(fashion!, 128, true)),
});

Deno.bench({
  name: "train step table and Fashion-MNIST epoch",
  group: "train_step",
  n: 1,
  warmup: 0,
  fn: once(async () => {
    printTable(
      `Training step (gather, FC, normalise, triplet + global loss, backward, SGD momentum) on ${gpu.describe()};\n` +
        `medians of ${REPS} interleaved runs; rate = triplets/s; tfjs-core webgpu uses its own device on the same adapter`,
    );
    if (fashion) await epochReport(fashion);
  }),
});
