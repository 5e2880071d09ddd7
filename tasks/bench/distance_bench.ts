/**
 * Pairwise squared-L2 distance benchmark: ours (kernels/distance.wgsl) against tfjs-core's webgpu backend
 * and onnxruntime-web (wasm) computing the same [N x N] matrix in the same run, at mining shapes
 * (N = 4,096 and 16,384, D = 64) and a feature shape (N = 4,096, D = 1,024).
 *
 * Prints one table row per method: median wall ms (submit to completion, interleaved repetitions),
 * median GPU ms from timestamp queries (ours), GFLOP/s counted as 3 * M * N * D, and ours / peer.
 * Run with `deno task bench` (all benches) or `deno bench --allow-read --allow-env tasks/bench/distance_bench.ts`.
 * @module
 */
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { encodePairwiseSqL2, sqL2Ref } from "../../lib/ops/distance.ts";
import { Rng } from "../../lib/util/rng.ts";
import {
  benchTable,
  type Contender,
  firstThen,
  loadOrt,
  loadTf,
  measure,
  onnxDistanceModel,
  ortContender,
  record,
  recordSkipped,
  tfPairwiseSqL2,
  tfSync,
  timedGpu,
} from "./_peers.ts";

const gpu = await getGpu();
const adapter = gpu.describe();

/** The cases: N (= M), D, repetitions, and whether the peers can hold the matrix. */
const CASES = [
  { n: 4096, d: 64, reps: 5, peers: true },
  { n: 4096, d: 1024, reps: 3, peers: true },
  { n: 16384, d: 64, reps: 3, peers: false },
];

/** Inputs of one case, made once and kept for the later (ours-only) bench iterations. */
function caseData(n: number, d: number) {
  const rng = new Rng(n + d);
  const qa = rng.uniformArray(n * d), ba = rng.uniformArray(n * d);
  const q = GpuBuffer.fromArray(gpu, qa, [n, d]);
  const b = GpuBuffer.fromArray(gpu, ba, [n, d]);
  const out = GpuBuffer.zeros(gpu, "f32", [n, n]);
  const ours: Contender = {
    name: "ours (WGSL)",
    run: () =>
      timedGpu(gpu, async () => {
        const batch = new CommandBatch(gpu, "bench");
        await encodePairwiseSqL2(batch, q, b, out);
        await batch.submit();
      }),
  };
  return { qa, ba, q, b, out, ours };
}

async function benchCase(c: ReturnType<typeof caseData>, n: number, d: number, reps: number, peers: boolean) {
  const name = `dist N=${n} D=${d}`;
  const { qa, ba, out, ours } = c;
  // Every contender's row 0 must match the reference, so no broken result is timed.
  const qm = { rows: n, cols: d, data: qa }, bm = { rows: n, cols: d, data: ba };
  const checkRow0 = (row0: ArrayLike<number>, who: string) => {
    for (let j = 0; j < n; j += 97) {
      const ref = sqL2Ref(qm, 0, bm, j);
      if (!(Math.abs(row0[j] - ref) <= 1e-4 * (1 + ref))) {
        throw new Error(`${who}: out[0, ${j}] = ${row0[j]}, expected ${ref}`);
      }
    }
  };
  ours.verify = async () => checkRow0(await out.read(0, n), "ours");
  const contenders: Contender[] = [ours];
  const cleanup: (() => void)[] = [];
  if (peers) {
    const tf = await loadTf();
    const tq = tf.tensor2d(qa, [n, d]), tb = tf.tensor2d(ba, [n, d]);
    cleanup.push(() => tf.dispose([tq, tb]));
    contenders.push({
      name: "tfjs-core webgpu",
      run: async () => {
        const t0 = performance.now();
        const o = tfPairwiseSqL2(tf, tq, tb);
        await tfSync(tf, o);
        o.dispose();
        return { wallMs: performance.now() - t0 };
      },
      verify: async () => {
        const o = tfPairwiseSqL2(tf, tq, tb);
        const row = tf.slice(o, [0, 0], [1, n]);
        checkRow0(await row.data(), "tfjs");
        tf.dispose([o, row]);
      },
    });
    const ort = await loadOrt();
    const session = await ort.InferenceSession.create(onnxDistanceModel(d), { executionProviders: ["wasm"] });
    const feeds = { q: new ort.Tensor("float32", qa, [n, d]), b: new ort.Tensor("float32", ba, [n, d]) };
    cleanup.push(() => session.release());
    contenders.push(
      ortContender(session, feeds, (r) => checkRow0(r.dist.data as Float32Array, "onnxruntime")),
    );
  }
  const measured = await measure(contenders, reps);
  if (measured[0].error) throw new Error(`${name}: ${measured[0].error}`);
  record(name, measured, (3 * n * n * d) / 1e9, "GFLOP");
  if (!peers) {
    const gib = ((n * n * 4) / 2 ** 30).toFixed(0);
    recordSkipped(name, "tfjs-core webgpu", `n/a: a ${gib} GiB tensor exceeds its 128 MiB binding`);
    recordSkipped(name, "onnxruntime-web wasm", `n/a: three ${gib} GiB intermediates exceed wasm memory`);
  }
  cleanup.forEach((f) => f());
}

for (const c of CASES) {
  let data: ReturnType<typeof caseData> | undefined;
  Deno.bench({
    name: `pairwiseSqL2 N=${c.n} D=${c.d} (first iteration: interleaved with peers)`,
    group: "distance",
    n: 1,
    warmup: 0,
    fn: firstThen(
      () => benchCase(data ??= caseData(c.n, c.d), c.n, c.d, c.reps, c.peers),
      () => data!.ours.run(),
    ),
  });
}

benchTable(
  "distance table",
  "distance",
  `Pairwise squared L2 on ${adapter}; medians of interleaved runs, GFLOP = 3*M*N*D`,
);
