/**
 * FANNG benchmark: recall@10 against exact kNN versus queries/s and distance evaluations per query, for
 * several search budgets, and build time, on
 *   (a) Fashion-MNIST: the 60,000 training images as 784-d vectors, the 10,000 test images as queries, and
 *       self-search (every training point's 10 nearest others; recall measured on a random sample);
 *   (b) random 64-d Gaussian embeddings, N = 100,000 (queries from the same distribution);
 *   (c) crossover: Fashion-MNIST subsets of growing N, graph search at the smallest budget reaching
 *       recall 0.95 against GPU brute force, to locate where the graph starts to pay.
 * Peers in the same run: GPU brute force (lib/ops/knn.ts knnSqL2, which also gives the ground truth) and,
 * when Debian's python3-hnswlib is installed and the run may start /usr/bin/python3, hnswlib (M 16,
 * ef_construction 200, 2 threads; tasks/bench/hnswlib_peer.py).
 *
 * Run: `deno bench --allow-read --allow-env --allow-run=/usr/bin/python3 tasks/bench/fanng_bench.ts`
 * (`deno task bench` runs it without hnswlib). Sizes: FANNG_BENCH=quick (10,000 / 1,000 Fashion-MNIST,
 * N = 20,000 random) or full (default, the sizes above); FANNG_BENCH_CASES=fashion,random,crossover selects
 * cases; FANNG_BENCH_SELF_SAMPLE sets the self-search recall sample (default 2,000; 60000 = all points,
 * whose exact answer takes minutes on a CPU adapter). The machine may be shared: timings are single runs,
 * so compare ratios measured in the same run.
 * @module
 */
import { fileURLToPath } from "node:url";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { knnSqL2 } from "../../lib/ops/knn.ts";
import { loadIdxDataset } from "../../lib/data/idx.ts";
import { FanngIndex } from "../../lib/ann/index.ts";
import { degreeStats } from "../../lib/ann/graph.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { selectRows } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { benchOnce, fmt, textTable } from "./_peers.ts";

const gpu = await getGpu();
const QUICK = Deno.env.get("FANNG_BENCH") === "quick";
const CASES = (Deno.env.get("FANNG_BENCH_CASES") ?? "fashion,random,crossover").split(",");
const K = 10;
const SIZES = QUICK
  ? { fashionN: 10000, fashionQ: 1000, randomN: 20000, randomQ: 500, crossover: [1000, 3000, 10000] }
  : {
    fashionN: 60000,
    fashionQ: 10000,
    randomN: 100000,
    randomQ: 1000,
    crossover: [1000, 4000, 16000, 60000],
  };
const SELF_SAMPLE = Number(Deno.env.get("FANNG_BENCH_SELF_SAMPLE") ?? (QUICK ? 500 : 2000));
const PYTHON = "/usr/bin/python3";

// ---------------------------------------------------------------------------------------------------
// Table

interface Row {
  case: string;
  method: string;
  param: string;
  recall?: number;
  evals?: number;
  qps?: number;
  /** Queries/s over the GPU brute force's queries/s in the same case. */
  vsBrute?: number;
  note?: string;
}

const rows: Row[] = [];

function table(list: readonly Row[]): string {
  const head = [
    "case",
    "method",
    "budget / ef",
    "recall@10",
    "evals/query",
    "queries/s",
    "vs GPU brute force",
    "note",
  ];
  const body = list.map((r) => [
    r.case,
    r.method,
    r.param,
    fmt(r.recall, 4),
    fmt(r.evals, 0),
    fmt(r.qps, 0),
    r.vsBrute === undefined ? "" : `${fmt(r.vsBrute, 2)}x`,
    r.note ?? "",
  ]);
  return textTable([head, ...body]);
}

function add(row: Row): void {
  rows.push(row);
  console.log(table([row]).split("\n")[1]);
}

// ---------------------------------------------------------------------------------------------------
// Helpers

function recallAt(found: Uint32Array, truth: Uint32Array, q: number, k = K): number {
  let hit = 0;
  for (let i = 0; i < q; i++) {
    const t = new Set(truth.subarray(i * k, (i + 1) * k));
    for (let j = 0; j < k; j++) if (t.has(found[i * k + j])) hit++;
  }
  return hit / (q * k);
}

/**
 * Exact k nearest (GPU brute force) of `queries` in `base`, with `selfIds` without each query's own row;
 * records the brute-force row of `caseName` and returns the answer and the queries per second.
 */
async function bruteForce(
  caseName: string,
  base: GpuBuffer<"f32">,
  queries: HostMatrix,
  selfIds?: Uint32Array,
): Promise<{ indices: Uint32Array; qps: number }> {
  using q = GpuBuffer.fromArray(gpu, queries.data, [queries.rows, queries.cols]);
  const kk = selfIds ? K + 1 : K;
  const t0 = performance.now();
  using r = await knnSqL2(q, base, kk);
  const raw = await r.indices.read();
  const qps = queries.rows / ((performance.now() - t0) / 1000);
  add({
    case: caseName,
    method: "GPU brute force (knnSqL2)",
    param: "exact",
    recall: 1,
    evals: base.rows,
    qps,
    vsBrute: 1,
  });
  if (!selfIds) return { indices: raw, qps };
  const out = new Uint32Array(queries.rows * K);
  for (let i = 0; i < queries.rows; i++) {
    const row = Array.from(raw.subarray(i * kk, (i + 1) * kk)).filter((x) => x !== selfIds[i]).slice(0, K);
    out.set(row, i * K);
  }
  return { indices: out, qps };
}

function sample(rng: Rng, n: number, count: number): Uint32Array {
  return Uint32Array.from(
    rng.shuffle(Uint32Array.from({ length: n }, (_, i) => i)).subarray(0, Math.min(n, count)),
  );
}

/** Runs hnswlib (peer) when available; returns build seconds and per-ef seconds and labels, or why not. */
async function hnswlib(
  base: HostMatrix,
  queries: HostMatrix,
  efs: number[],
  selfIds?: Uint32Array,
): Promise<{ build: number; runs: { ef: number; seconds: number; labels: Uint32Array }[] } | string> {
  const perm = await Deno.permissions.query({ name: "run", command: PYTHON });
  if (perm.state !== "granted") return `skipped: run with --allow-run=${PYTHON}`;
  const script = fileURLToPath(new URL("./hnswlib_peer.py", import.meta.url));
  try {
    const child = new Deno.Command(PYTHON, {
      args: [script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const writer = child.stdin.getWriter();
    const header = {
      n: base.rows,
      d: base.cols,
      q: queries.rows,
      k: K,
      efs,
      threads: 2,
      M: 16,
      ef_construction: 200,
      self_ids: selfIds ? Array.from(selfIds) : [],
    };
    await writer.write(new TextEncoder().encode(JSON.stringify(header) + "\n"));
    for (const m of [base, queries]) {
      const bytes = new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      for (let o = 0; o < bytes.length; o += 1 << 22) await writer.write(bytes.subarray(o, o + (1 << 22)));
    }
    await writer.close();
    const out = await child.output();
    if (!out.success) return `failed: ${new TextDecoder().decode(out.stderr).trim().split("\n").pop()}`;
    const res = JSON.parse(new TextDecoder().decode(out.stdout));
    return {
      build: res.build_seconds,
      runs: res.runs.map((r: { ef: number; seconds: number; labels: string }) => ({
        ef: r.ef,
        seconds: r.seconds,
        labels: new Uint32Array(Uint8Array.from(atob(r.labels), (c) => c.charCodeAt(0)).buffer),
      })),
    };
  } catch (e) {
    return `unavailable: ${(e as Error).message}`;
  }
}

/**
 * Runs the hnswlib peer at each ef and records a row per ef: recall against `truth`, speed against brute
 * force's `bruteQps`. With `reportBuild`, also its build row, or a row saying why it did not run.
 */
async function hnswlibRows(
  caseName: string,
  base: HostMatrix,
  queries: HostMatrix,
  efs: number[],
  truth: Uint32Array,
  bruteQps: number,
  { selfIds, reportBuild }: { selfIds?: Uint32Array; reportBuild: boolean },
): Promise<void> {
  const peer = await hnswlib(base, queries, efs, selfIds);
  if (typeof peer === "string") {
    if (reportBuild) add({ case: caseName, method: "hnswlib", param: "-", note: peer });
    return;
  }
  if (reportBuild) {
    add({
      case: caseName,
      method: "hnswlib build",
      param: "M 16, efC 200",
      note: `${peer.build.toFixed(1)} s, 2 threads`,
    });
  }
  for (const r of peer.runs) {
    const qps = queries.rows / r.seconds;
    add({
      case: caseName,
      method: "hnswlib (2 threads)",
      param: `ef ${r.ef}`,
      recall: recallAt(r.labels, truth, queries.rows),
      qps,
      vsBrute: qps / bruteQps,
    });
  }
}

/** Builds an index and records its build row. */
async function build(caseName: string, data: HostMatrix): Promise<FanngIndex> {
  const t0 = performance.now();
  const index = await FanngIndex.build(gpu, data, { quiet: false });
  const seconds = (performance.now() - t0) / 1000;
  const phases = Object.entries(index.stats.seconds).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(", ");
  const deg = degreeStats(index.graph);
  add({
    case: caseName,
    method: "FANNG build",
    param: `R ${index.graph.maxDegree}`,
    note: `${seconds.toFixed(1)} s (${phases}); mean degree ${deg.mean.toFixed(1)}`,
  });
  return index;
}

/**
 * Times FANNG searches at each budget and records recall and throughput. Each budget first runs once on a
 * few queries of `index` (`entryPoints` as the timed run), so that compiling its pipeline is not timed.
 */
async function sweep(
  caseName: string,
  label: string,
  budgets: number[],
  warm: { index: FanngIndex; queries: HostMatrix; entryPoints: "fixed" | "none" },
  run: (
    budget: number,
  ) => Promise<{ indices: Uint32Array; evaluations: number; seconds: number; queries: number }>,
  truth: (indices: Uint32Array) => number,
  bruteQps: number,
): Promise<{ budget: number; recall: number; qps: number }[]> {
  const out = [];
  const few = {
    rows: 64,
    cols: warm.queries.cols,
    data: warm.queries.data.subarray(0, 64 * warm.queries.cols),
  };
  for (const budget of budgets) {
    (await warm.index.search(few, K, { budget, entryPoints: warm.entryPoints }))[Symbol.dispose]();
    const r = await run(budget);
    const recall = truth(r.indices);
    const qps = r.queries / r.seconds;
    add({
      case: caseName,
      method: label,
      param: String(budget),
      recall,
      evals: r.evaluations,
      qps,
      vsBrute: qps / bruteQps,
    });
    out.push({ budget, recall, qps });
  }
  return out;
}

/**
 * The rows of a case of separate queries: GPU brute force (also the ground truth), FANNG search at each
 * budget and hnswlib at each ef. Returns brute force's queries/s and the FANNG runs.
 */
async function queryCase(
  caseName: string,
  index: FanngIndex,
  base: GpuBuffer<"f32">,
  data: HostMatrix,
  queries: HostMatrix,
  budgets: number[],
  efs: number[],
): Promise<{ bruteQps: number; runs: { budget: number; recall: number; qps: number }[] }> {
  const q = queries.rows;
  const bf = await bruteForce(caseName, base, queries);
  const runs = await sweep(
    caseName,
    "FANNG search",
    budgets,
    { index, queries, entryPoints: "fixed" },
    async (budget) => {
      const t0 = performance.now();
      using r = await index.search(queries, K, { budget });
      const seconds = (performance.now() - t0) / 1000;
      return { indices: await r.indices.read(), evaluations: r.evaluations, seconds, queries: q };
    },
    (found) => recallAt(found, bf.indices, q),
    bf.qps,
  );
  await hnswlibRows(caseName, data, queries, efs, bf.indices, bf.qps, { reportBuild: true });
  return { bruteQps: bf.qps, runs };
}

// ---------------------------------------------------------------------------------------------------
// (a) Fashion-MNIST

async function benchFashion(): Promise<void> {
  const ds = await loadIdxDataset();
  const n = SIZES.fashionN, q = SIZES.fashionQ;
  const train: HostMatrix = { rows: n, cols: 784, data: ds.train.features.data.subarray(0, n * 784) };
  const test: HostMatrix = { rows: q, cols: 784, data: ds.test.features.data.subarray(0, q * 784) };
  const name = `Fashion-MNIST ${n} x 784`;
  using index = await build(name, train);
  using base = GpuBuffer.fromArray(gpu, train.data, [n, 784]);

  // Test queries: ground truth and the brute-force peer are the same GPU run.
  const testCase = `${name}, ${q} test queries`;
  const { bruteQps: bfQps, runs: testRuns } = await queryCase(
    testCase,
    index,
    base,
    train,
    test,
    [64, 128, 256, 384, 512],
    [10, 20, 40, 80, 160],
  );

  // Self-search: every point's 10 nearest others, timed over all N; recall on a random sample.
  const ids = sample(new Rng(7), n, SELF_SAMPLE);
  const sampleRows = selectRows(train, ids);
  const selfCase = `${name}, self-search (recall on ${ids.length} points)`;
  const bfSelf = await bruteForce(selfCase, base, sampleRows, ids);
  await sweep(
    selfCase,
    "FANNG selfSearch",
    [64, 128, 192, 256],
    { index, queries: train, entryPoints: "none" },
    async (budget) => {
      const t0 = performance.now();
      using r = await index.selfSearch(K, { budget });
      const seconds = (performance.now() - t0) / 1000;
      const all = await r.indices.read();
      const picked = new Uint32Array(ids.length * K);
      ids.forEach((v, i) => picked.set(all.subarray(v * K, (v + 1) * K), i * K));
      return { indices: picked, evaluations: r.evaluations, seconds, queries: n };
    },
    (found) => recallAt(found, bfSelf.indices, ids.length),
    bfSelf.qps,
  );
  await hnswlibRows(selfCase, train, sampleRows, [20, 40, 80], bfSelf.indices, bfSelf.qps, {
    selfIds: ids,
    reportBuild: false,
  });
  const best = testRuns.find((r) => r.recall >= 0.95);
  if (best) {
    // Brute force costs O(N) per query, the graph roughly O(budget): the modelled crossover N.
    const crossN = n * (bfQps / best.qps);
    add({
      case: testCase,
      method: "crossover (model)",
      param: String(best.budget),
      note:
        `graph ${fmt(best.qps / bfQps, 1)}x brute force at recall ${
          fmt(best.recall, 3)
        }; brute force per-query ` +
        `cost grows with N, so they meet near N = ${fmt(crossN, 0)}`,
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// (b) random 64-d

async function benchRandom(): Promise<void> {
  const n = SIZES.randomN, q = SIZES.randomQ, d = 64;
  const rng = new Rng(64);
  const data: HostMatrix = { rows: n, cols: d, data: rng.normalArray(n * d) };
  const queries: HostMatrix = { rows: q, cols: d, data: rng.normalArray(q * d) };
  const name = `random Gaussian ${n} x ${d}`;
  using index = await build(name, data);
  using base = GpuBuffer.fromArray(gpu, data.data, [n, d]);
  const budgets = [128, 256, 512, 1024, 2048], efs = [20, 40, 80, 160, 320];
  await queryCase(`${name}, ${q} queries`, index, base, data, queries, budgets, efs);
}

// ---------------------------------------------------------------------------------------------------
// (c) crossover: graph vs brute force as N grows

async function benchCrossover(): Promise<void> {
  const ds = await loadIdxDataset();
  const q = 1000;
  const test: HostMatrix = { rows: q, cols: 784, data: ds.test.features.data.subarray(0, q * 784) };
  for (const n of SIZES.crossover) {
    const train: HostMatrix = { rows: n, cols: 784, data: ds.train.features.data.subarray(0, n * 784) };
    const name = `crossover: Fashion-MNIST ${n} x 784, ${q} queries`;
    using base = GpuBuffer.fromArray(gpu, train.data, [n, 784]);
    const bf = await bruteForce(name, base, test);
    using index = await FanngIndex.build(gpu, train, { quiet: true });
    for (const budget of [32, 64, 128, 256, 512]) {
      (await index.search(test, K, { budget }))[Symbol.dispose](); // compiles the pipeline, untimed
      const t0 = performance.now();
      using r = await index.search(test, K, { budget });
      const seconds = (performance.now() - t0) / 1000;
      const recall = recallAt(await r.indices.read(), bf.indices, q);
      if (recall >= 0.95 || budget === 512) {
        add({
          case: name,
          method: "FANNG search",
          param: String(budget),
          recall,
          evals: r.evaluations,
          qps: q / seconds,
          vsBrute: q / seconds / bf.qps,
          note: "smallest budget with recall >= 0.95",
        });
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------

const runs: [string, () => Promise<void>][] = [
  ["fashion", benchFashion],
  ["random", benchRandom],
  ["crossover", benchCrossover],
];
for (const [key, fn] of runs) {
  if (CASES.includes(key)) {
    benchOnce(`fanng ${key} (${QUICK ? "quick" : "full"} sizes; table below)`, "fanng", fn);
  }
}

addEventListener("unload", () => {
  if (rows.length) console.log(`\nFANNG benchmark on ${gpu.describe()}\n${table(rows)}\n`);
});
