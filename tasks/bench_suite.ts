/**
 * `deno task bench-suite`: a representative subset of every benchmark in one call, so that a short stay on
 * a GPU machine measures everything at once: pairwise distances, top-k, the fused kNN, a FANNG build and
 * self-search (beside the exact GPU kNN and, where Debian's python3-hnswlib is at hand, hnswlib), a
 * training step, and one default training epoch on Fashion-MNIST. Sizes follow the adapter: a hardware
 * adapter gets the sizes the full benches use, a software one (llvmpipe) smaller ones, the same table.
 *
 * Writes `<out>/suite.json` (adapter, date, every case) and `<out>/suite.md` (the table), default out
 * `runs/bench-suite`. Each timed case runs once to warm up (pipelines compiled) and then `--reps` times
 * (median). Times include the readback that makes the result usable; nothing here asserts on time.
 * @module
 */
import { parseArgs } from "node:util";
import { getGpu, type Gpu } from "../lib/gpu/device.ts";
import { GpuBuffer } from "../lib/gpu/buffer.ts";
import { pairwiseSqL2 } from "../lib/ops/distance.ts";
import { topkSmallest } from "../lib/ops/topk.ts";
import { knnSqL2 } from "../lib/ops/knn.ts";
import { FanngIndex } from "../lib/ann/index.ts";
import { EmbeddingHead } from "../lib/model/head.ts";
import { TrainStep } from "../lib/model/train_step.ts";
import { train } from "../lib/train.ts";
import { FASHION_MNIST_DIR } from "../lib/data/idx.ts";
import { UserError } from "../lib/errors.ts";
import { writeFileAtomic } from "../lib/util/fs.ts";
import { Rng } from "../lib/util/rng.ts";
import { selectRows } from "../lib/util/matrix.ts";
import { clustered, hnswlibPeer, recallAt, withoutSelf } from "./bench/_search_data.ts";
import { fmt, median, textTable } from "./bench/_peers.ts";
import { runTask } from "./cli.ts";

const HELP = `deno task bench-suite [flags]

Runs a subset of every benchmark (distance, top-k, kNN, FANNG build + search, train step, one default
epoch) and writes one JSON and one markdown table.

  --out <dir>     where suite.json and suite.md go          [runs/bench-suite]
  --only <list>   comma-separated cases: distance,topk,knn,fanng,step,epoch   [all]
  --reps <n>      timed repetitions per case (median)       [3]
  --help          this text
`;

/** One measured case of the suite. */
interface SuiteRow {
  case: string;
  size: string;
  method: string;
  /** Median seconds of one run. */
  seconds?: number;
  /** The case's throughput figure and its unit. */
  rate?: number;
  unit?: string;
  /** Ours over the peer measured in the same run (higher is better for us). */
  vsPeer?: number;
  note?: string;
}

const CASES = ["distance", "topk", "knn", "fanng", "step", "epoch"] as const;
type CaseName = typeof CASES[number];

/** Sizes per adapter kind: a hardware GPU gets the full benches' sizes, llvmpipe smaller ones. */
function sizes(gpu: Gpu) {
  const hw = !gpu.report.isSoftware;
  return {
    distanceN: hw ? 16384 : 4096,
    topkN: hw ? 8192 : 4096,
    knnN: hw ? 65536 : 8192,
    fanngN: hw ? 100000 : 20000,
    fanngSample: hw ? 2000 : 500,
    stepN: 60000,
    epochTrainLimit: hw ? 0 : 20000,
  };
}

async function timed(reps: number, fn: () => Promise<void>): Promise<number> {
  await fn(); // warm-up: pipelines compiled, buffers allocated once
  const secs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    secs.push((performance.now() - t0) / 1000);
  }
  return median(secs);
}

async function distanceCase(gpu: Gpu, n: number, reps: number): Promise<SuiteRow[]> {
  const out: SuiteRow[] = [];
  for (const d of [64, 1024]) {
    const rng = new Rng(d);
    using x = GpuBuffer.fromArray(gpu, rng.uniformArray(n * d), [n, d]);
    const sec = await timed(reps, async () => {
      using r = await pairwiseSqL2(x, x);
      await r.read(0, 1);
    });
    out.push({
      case: "distance",
      size: `${n} x ${n}, D ${d}`,
      method: "pairwiseSqL2",
      seconds: sec,
      rate: (3 * n * n * d) / sec / 1e9,
      unit: "GFLOP/s",
    });
  }
  return out;
}

async function topkCase(gpu: Gpu, n: number, reps: number): Promise<SuiteRow[]> {
  const rng = new Rng(3);
  using v = GpuBuffer.fromArray(gpu, rng.uniformArray(n * n), [n, n]);
  const out: SuiteRow[] = [];
  for (const k of [10, 256]) {
    const sec = await timed(reps, async () => {
      using r = await topkSmallest(v, k);
      await r.indices.read(0, 1);
    });
    out.push({
      case: "top-k",
      size: `${n} x ${n}, k ${k}`,
      method: "topkSmallest",
      seconds: sec,
      rate: (n * n) / sec / 1e6,
      unit: "Melem/s",
    });
  }
  return out;
}

async function knnCase(gpu: Gpu, n: number, reps: number): Promise<SuiteRow[]> {
  const d = 64, rng = new Rng(4);
  using x = GpuBuffer.fromArray(gpu, rng.uniformArray(n * d), [n, d]);
  const sec = await timed(Math.min(reps, 2), async () => {
    using r = await knnSqL2(x, x, 10);
    await r.indices.read(0, 1);
  });
  return [{
    case: "kNN",
    size: `${n} x ${n}, D ${d}, k 10`,
    method: "knnSqL2 (fused)",
    seconds: sec,
    rate: (3 * n * n * d) / sec / 1e9,
    unit: "GFLOP/s",
    note: `${fmt(n / sec, 0)} queries/s`,
  }];
}

/** FANNG build + self-search on clustered embeddings, beside exact GPU kNN and hnswlib (when present). */
async function fanngCase(gpu: Gpu, n: number, sample: number): Promise<SuiteRow[]> {
  const k = 10;
  const data = clustered(n);
  const rng = new Rng(9);
  const ids = new Uint32Array(sample);
  const step = n / sample; // evenly spread, jittered
  for (let i = 0; i < sample; i++) {
    ids[i] = Math.min(n - 1, Math.floor(i * step + rng.int(Math.max(1, Math.floor(step)))));
  }
  const queries = selectRows(data, ids);
  using base = GpuBuffer.fromArray(gpu, data.data, [n, data.cols]);
  using q = GpuBuffer.fromArray(gpu, queries.data, [sample, data.cols]);
  // Exact: the sample's k + 1 nearest (itself among them), timed as queries/s.
  let t0 = performance.now();
  using exact = await knnSqL2(q, base, k + 1);
  const exactIdx = await exact.indices.read();
  const exactQps = sample / ((performance.now() - t0) / 1000);
  const truth = withoutSelf(exactIdx, k, ids);
  const size = `${n} x 64 clustered`;
  const rows: SuiteRow[] = [{
    case: "FANNG",
    size,
    method: "exact GPU kNN",
    rate: exactQps,
    unit: "queries/s",
    note: "recall 1",
  }];
  t0 = performance.now();
  using index = await FanngIndex.build(gpu, base, { quiet: true });
  const buildSec = (performance.now() - t0) / 1000;
  rows.push({
    case: "FANNG",
    size,
    method: "FANNG build",
    seconds: buildSec,
    note: `degree ${index.graph.maxDegree}`,
  });
  const hnsw = await hnswlibPeer(data, queries, k, [16, 64], ids);
  for (const ef of [16, 64]) {
    await (await index.selfSearch(k, { ef }))[Symbol.dispose](); // warm-up
    t0 = performance.now();
    using res = await index.selfSearch(k, { ef });
    const found = await res.indices.read();
    const qps = n / ((performance.now() - t0) / 1000);
    const sub = new Uint32Array(sample * k);
    ids.forEach((v, i) => sub.set(found.subarray(v * k, (v + 1) * k), i * k));
    const hRun = typeof hnsw === "string" ? undefined : hnsw.runs.find((r) => r.ef === ef);
    rows.push({
      case: "FANNG",
      size,
      method: `FANNG self-search ef ${ef}`,
      rate: qps,
      unit: "queries/s",
      vsPeer: hRun ? qps / (sample / hRun.seconds) : undefined,
      note: `recall@10 ${fmt(recallAt(sub, truth, sample, k), 4)}, ${fmt(res.evaluations, 0)} evals/query`,
    });
  }
  if (typeof hnsw === "string") {
    rows.push({ case: "FANNG", size, method: "hnswlib", note: hnsw });
  } else {
    rows.push({
      case: "FANNG",
      size,
      method: "hnswlib build (M 16, efC 200, 2 threads)",
      seconds: hnsw.buildSeconds,
    });
    rows.find((r) => r.method === "FANNG build")!.vsPeer = hnsw.buildSeconds / buildSec;
    for (const r of hnsw.runs) {
      rows.push({
        case: "FANNG",
        size,
        method: `hnswlib ef ${r.ef}`,
        rate: sample / r.seconds,
        unit: "queries/s",
        note: `recall@10 ${fmt(recallAt(r.labels, truth, sample, k), 4)}`,
      });
    }
  }
  return rows;
}

async function stepCase(gpu: Gpu, n: number, reps: number): Promise<SuiteRow[]> {
  const rng = new Rng(11), dim = 1024, batch = 128, steps = 64;
  using features = GpuBuffer.fromArray(gpu, rng.uniformArray(n * dim), [n, dim]);
  using triplets = GpuBuffer.fromArray(
    gpu,
    Uint32Array.from({ length: 3 * batch * steps }, () => rng.int(n)),
    [batch * steps, 3],
  );
  using head = EmbeddingHead.create(gpu, { inDim: dim, outDim: 64, seed: 1 });
  using step = new TrainStep(gpu, head, features, { margin: 0.2, globalWeight: 1, lambda: 1, t: 0.4 }, {
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 0,
  });
  const sec = await timed(reps, async () => {
    await step.stepBatches(triplets, { batchSize: batch, maxInFlight: 8 });
  });
  return [{
    case: "train step",
    size: `1024 -> 64, batch ${batch}, ${steps} steps`,
    method: "TrainStep.stepBatches",
    seconds: sec / steps,
    rate: (batch * steps) / sec,
    unit: "triplets/s",
  }];
}

async function epochCase(gpu: Gpu, trainLimit: number): Promise<SuiteRow[]> {
  try {
    await Deno.stat(FASHION_MNIST_DIR);
  } catch {
    return [{
      case: "epoch",
      size: "Fashion-MNIST",
      method: "train",
      note: `skipped: no data in ${FASHION_MNIST_DIR}`,
    }];
  }
  const out = await Deno.makeTempDir({ prefix: "dml-suite-epoch-" });
  try {
    const rows: SuiteRow[] = [];
    for (const search of ["fanng", "exact"] as const) {
      const res = await train({
        epochs: 2,
        quiet: true,
        outDir: `${out}/${search}`,
        ...(trainLimit ? { trainLimit } : {}),
        mining: { search },
      }, { gpu });
      const e = res.epochs[res.epochs.length - 1];
      const t = e.timing;
      rows.push({
        case: "epoch",
        size: `Fashion-MNIST ${trainLimit || 60000} train, epoch 2`,
        method: `default train, --search ${search}`,
        seconds: e.epochSec,
        note:
          `mining ${fmt(t.graphSec + t.mineSec, 1)} s (${
            fmt((100 * (t.graphSec + t.mineSec)) / e.epochSec, 0)
          }%), ` +
          `train ${fmt(t.trainSec, 1)} s, eval ${fmt(t.evalSec, 1)} s, R@1 ${fmt(e.eval?.recall["1"], 4)}`,
      });
    }
    rows[0].vsPeer = (rows[1].seconds ?? 0) / (rows[0].seconds ?? 1);
    return rows;
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

function markdown(gpuName: string, date: string, rows: readonly SuiteRow[]): string {
  const head = ["case", "size", "method", "seconds", "rate", "unit", "vs peer", "note"];
  const body = rows.map((r) => [
    r.case,
    r.size,
    r.method,
    r.seconds === undefined ? "" : fmt(r.seconds, r.seconds < 0.1 ? 4 : 2),
    fmt(r.rate, 1),
    r.unit ?? "",
    r.vsPeer === undefined ? "" : `${fmt(r.vsPeer, 2)}x`,
    r.note ?? "",
  ]);
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [
    `# Bench suite: ${gpuName}, ${date}`,
    "",
    "vs peer: ours over the peer measured in the same run (FANNG search: queries/s over hnswlib's at the same ef;",
    "FANNG build: hnswlib's build time over ours; epoch: the exact search's epoch time over FANNG's).",
    "",
    line(head),
    line(head.map(() => "---")),
    ...body.map(line),
    "",
  ].join("\n");
}

await runTask(async () => {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: "runs/bench-suite" },
      only: { type: "string" },
      reps: { type: "string", default: "3" },
      help: { type: "boolean" },
    },
  });
  if (v.help) return console.log(HELP);
  const reps = Number(v.reps);
  if (!Number.isInteger(reps) || reps < 1) {
    throw new UserError(`--reps expects a positive integer, got ${v.reps}`);
  }
  const only = (v.only?.split(",") ?? [...CASES]) as CaseName[];
  const unknown = only.filter((c) => !CASES.includes(c));
  if (unknown.length) {
    throw new UserError(`--only: unknown case ${unknown.join(", ")}; choose from ${CASES.join(",")}`);
  }
  const gpu = await getGpu();
  const s = sizes(gpu);
  const date = new Date().toISOString();
  console.log(
    `bench suite on ${gpu.report.name} (${gpu.report.isSoftware ? "software" : "hardware"}), ${date}`,
  );
  const run: Record<CaseName, () => Promise<SuiteRow[]>> = {
    distance: () => distanceCase(gpu, s.distanceN, reps),
    topk: () => topkCase(gpu, s.topkN, reps),
    knn: () => knnCase(gpu, s.knnN, reps),
    fanng: () => fanngCase(gpu, s.fanngN, s.fanngSample),
    step: () => stepCase(gpu, s.stepN, reps),
    epoch: () => epochCase(gpu, s.epochTrainLimit),
  };
  const rows: SuiteRow[] = [];
  const t0 = performance.now();
  for (const name of only) {
    const tc = performance.now();
    const got = await run[name]();
    rows.push(...got);
    console.log(
      textTable(
        got.map((
          r,
        ) => [r.case, r.size, r.method, fmt(r.seconds, 3), fmt(r.rate, 1), r.unit ?? "", r.note ?? ""]),
      ),
    );
    console.log(`  (${name}: ${fmt((performance.now() - tc) / 1000, 1)} s)`);
  }
  const totalSec = (performance.now() - t0) / 1000;
  await Deno.mkdir(v.out!, { recursive: true });
  const report = { date, adapter: gpu.report, totalSeconds: totalSec, sizes: s, rows };
  await writeFileAtomic(`${v.out}/suite.json`, JSON.stringify(report, null, 2) + "\n");
  await writeFileAtomic(`${v.out}/suite.md`, markdown(gpu.report.name, date, rows));
  console.log(
    `\n${markdown(gpu.report.name, date, rows)}\nwritten: ${v.out}/suite.json, ${v.out}/suite.md (${
      fmt(totalSec, 0)
    } s)`,
  );
});
