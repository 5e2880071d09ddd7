/**
 * Top-k and fused kNN benchmarks: ours (kernels/topk.wgsl; kernels/distance.wgsl + topk.wgsl streamed)
 * against tfjs-core's webgpu backend and onnxruntime-web (wasm) doing the same work in the same run.
 *
 * - top-k: the k smallest of each row of a [4,096 x 4,096] matrix, k = 10, 32 and 256 (rate: million
 *   entries scanned per second).
 * - fused kNN (squared L2, k = 10, D = 64): N = 4,096 points against themselves, where the peers can
 *   still hold the [N x N] matrix (they compute distances, then top-k; tfjs cannot bind more than 128 MiB),
 *   and N = 65,536, where the matrix (16 GiB) cannot exist and only the streamed kernel runs
 *   (rate: GFLOP/s counted as 3 * M * N * D).
 * Every contender's result is checked against the reference before it is timed.
 *
 * Prints one table row per method (median wall ms of interleaved runs, GPU ms from timestamps for ours).
 * @module
 */
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { encodeTopkSmallest, topkSmallestRef } from "../../lib/ops/topk.ts";
import { knnSqL2, knnSqL2Ref } from "../../lib/ops/knn.ts";
import { Rng } from "../../lib/util/rng.ts";
import {
  benchOnce,
  benchTable,
  type Contender,
  firstThen,
  loadOrt,
  loadTf,
  measure,
  onnxKnnModel,
  onnxTopkModel,
  ortContender,
  record,
  recordSkipped,
  tfPairwiseSqL2,
  tfSync,
  tfTopkSmallest,
  timedGpu,
} from "./_peers.ts";

const gpu = await getGpu();
const adapter = gpu.describe();
const disposers: (() => void)[] = [];

/** Runs `fn` under the GPU profiler; wall and GPU ms. */
const timed = (fn: () => Promise<void>) => timedGpu(gpu, fn);

// ---------------------------------------------------------------------------------------------------
// top-k over a materialised matrix

const TOPK_M = 4096, TOPK_N = 4096;

function topkData() {
  const data = new Rng(7).uniformArray(TOPK_M * TOPK_N);
  const values = GpuBuffer.fromArray(gpu, data, [TOPK_M, TOPK_N]);
  disposers.push(() => values.destroy());
  return { data, values };
}
let topkInputs: ReturnType<typeof topkData> | undefined;

function oursTopk(values: GpuBuffer<"f32">, k: number): Contender {
  return {
    name: "ours (WGSL)",
    run: () =>
      timed(async () => {
        const batch = new CommandBatch(gpu, "bench");
        const r = await encodeTopkSmallest(batch, values, k);
        await batch.submit();
        r[Symbol.dispose]();
      }),
  };
}

async function benchTopk(k: number): Promise<void> {
  const { data, values } = (topkInputs ??= topkData());
  const name = `topk ${TOPK_M}x${TOPK_N} k=${k}`;
  // Every contender's first rows must match the reference (random floats: ties are not an issue).
  const rows = 3;
  const ref = topkSmallestRef({ rows, cols: TOPK_N, data: data.subarray(0, rows * TOPK_N) }, k);
  const checkIndices = (got: ArrayLike<number | bigint>, who: string) => {
    for (let i = 0; i < rows * k; i++) {
      if (Number(got[i]) !== ref.indices[i]) {
        throw new Error(`${who}: index ${i} is ${got[i]}, expected ${ref.indices[i]}`);
      }
    }
  };
  const tf = await loadTf();
  const tx = tf.tensor2d(data, [TOPK_M, TOPK_N]);
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(onnxTopkModel(k), { executionProviders: ["wasm"] });
  const feeds = { x: new ort.Tensor("float32", data, [TOPK_M, TOPK_N]) };
  const ours = oursTopk(values, k);
  ours.verify = async () => {
    const batch = new CommandBatch(gpu);
    using r = await encodeTopkSmallest(batch, values, k);
    await batch.submit();
    checkIndices(await r.indices.read(0, rows * k), "ours");
  };
  const contenders: Contender[] = [
    ours,
    {
      name: "tfjs-core webgpu",
      run: async () => {
        const t0 = performance.now();
        const t = tfTopkSmallest(tf, tx, k);
        await tfSync(tf, t.values);
        await tfSync(tf, t.indices);
        tf.dispose([t.values, t.indices]);
        return { wallMs: performance.now() - t0 };
      },
      verify: async () => {
        const t = tfTopkSmallest(tf, tx, k);
        checkIndices(await t.indices.data(), "tfjs");
        tf.dispose([t.values, t.indices]);
      },
    },
    ortContender(session, feeds, (out) => checkIndices(out.indices.data as BigInt64Array, "onnxruntime")),
  ];
  record(name, await measure(contenders, 5), (TOPK_M * TOPK_N) / 1e6, "Melem");
  tx.dispose();
  await session.release();
}

for (const k of [10, 32, 256]) {
  Deno.bench({
    name: `topkSmallest ${TOPK_M}x${TOPK_N} k=${k} (first iteration: interleaved with peers)`,
    group: "topk",
    n: 1,
    warmup: 0,
    fn: firstThen(() => benchTopk(k), () => oursTopk(topkInputs!.values, k).run()),
  });
}

// ---------------------------------------------------------------------------------------------------
// fused distance + top-k

const KNN_K = 10, KNN_D = 64;

/** The k nearest neighbours of rows 0 and 1 of `data` [n x d] in the reference, for checks. */
function knnCheck(data: Float32Array, n: number, d: number, k: number) {
  const ref = knnSqL2Ref({ rows: 2, cols: d, data: data.subarray(0, 2 * d) }, { rows: n, cols: d, data }, k);
  return (got: ArrayLike<number | bigint>, who: string) => {
    // Up to f32 near-ties (the peers and ours use the norm expansion), the lists must agree.
    let same = 0;
    for (let i = 0; i < 2 * k; i++) same += Number(got[i]) === ref.indices[i] ? 1 : 0;
    if (same < 2 * k - 2) throw new Error(`${who}: ${same} of ${2 * k} neighbours agree with the reference`);
  };
}

async function benchKnnSmall(): Promise<void> {
  // The largest N whose [N x N] matrix fits tfjs's 128 MiB storage binding.
  const n = 4096, d = KNN_D, k = KNN_K;
  const name = `knn N=${n} D=${d} k=${k}`;
  const data = new Rng(11).uniformArray(n * d);
  const check = knnCheck(data, n, d, k);
  using x = GpuBuffer.fromArray(gpu, data, [n, d]);
  const tf = await loadTf();
  const tx = tf.tensor2d(data, [n, d]);
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(onnxKnnModel(d, k), { executionProviders: ["wasm"] });
  const feeds = { q: new ort.Tensor("float32", data, [n, d]), b: new ort.Tensor("float32", data, [n, d]) };
  const contenders: Contender[] = [
    {
      name: "ours (WGSL, streamed)",
      run: () =>
        timed(async () => {
          using _ = await knnSqL2(x, x, k);
        }),
      verify: async () => {
        using r = await knnSqL2(x, x, k);
        check(await r.indices.read(0, 2 * k), "ours");
      },
    },
    {
      name: "tfjs-core webgpu",
      run: async () => {
        const t0 = performance.now();
        const dist = tfPairwiseSqL2(tf, tx, tx);
        const t = tfTopkSmallest(tf, dist, k);
        await tfSync(tf, t.indices);
        tf.dispose([dist, t.values, t.indices]);
        return { wallMs: performance.now() - t0 };
      },
      verify: async () => {
        const dist = tfPairwiseSqL2(tf, tx, tx);
        const t = tfTopkSmallest(tf, dist, k);
        check(await t.indices.data(), "tfjs");
        tf.dispose([dist, t.values, t.indices]);
      },
    },
    ortContender(session, feeds, (out) => check(out.indices.data as BigInt64Array, "onnxruntime")),
  ];
  record(name, await measure(contenders, 3), (3 * n * n * d) / 1e9, "GFLOP");
  tx.dispose();
  await session.release();
}

async function benchKnnLarge(): Promise<void> {
  const n = 65536, d = KNN_D, k = KNN_K;
  const name = `knn N=${n} D=${d} k=${k}`;
  const data = new Rng(13).uniformArray(n * d);
  using x = GpuBuffer.fromArray(gpu, data, [n, d]);
  let first: Uint32Array | undefined;
  const contenders: Contender[] = [{
    name: "ours (WGSL, streamed)",
    run: () =>
      timed(async () => {
        using r = await knnSqL2(x, x, k);
        first = await r.indices.read(0, 2 * k);
      }),
  }];
  // Pipelines were compiled by the N = 4,096 case; one run of ~1 TFLOP-equivalent is enough here.
  const measured = await measure(contenders, 1, false);
  knnCheck(data, n, d, k)(first!, "ours");
  record(name, measured, (3 * n * n * d) / 1e9, "GFLOP");
  const gib = ((n * n * 4) / 2 ** 30).toFixed(0);
  recordSkipped(name, "tfjs-core webgpu", `n/a: the ${gib} GiB distance matrix cannot exist`);
  recordSkipped(name, "onnxruntime-web wasm", `n/a: the ${gib} GiB distance matrix cannot exist`);
}

benchOnce("knnSqL2 N=4096 D=64 k=10 (interleaved with peers)", "knn", benchKnnSmall);
benchOnce("knnSqL2 N=65536 D=64 k=10 (streamed; the matrix cannot exist)", "knn", benchKnnLarge);
benchTable(
  "topk/knn table",
  "knn",
  `Top-k and fused kNN on ${adapter}; medians of interleaved runs`,
  () => disposers.splice(0).forEach((f) => f()),
);
