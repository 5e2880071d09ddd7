/**
 * FANNG benchmark: build time, and recall@10 against exact kNN versus queries/s and distance evaluations per
 * query at several search budgets and ef, for FANNG graphs, hnswlib and the exact GPU brute force side by side, on
 *   (a) clustered: embedding-like points (L2-normalised 64-d, a 100-cluster Gaussian mixture), N = 100,000,
 *       self-search (every point's 10 nearest others, as smart mining asks; recall measured on a sample);
 *       N = 1,000,000 as case "clustered1m" (FANNG_BENCH_1M=1 or FANNG_BENCH_CASES=clustered1m);
 *   (b) random 64-d Gaussian vectors, N = 100,000, separate queries from the same distribution;
 *   (c) Fashion-MNIST: the 60,000 training images as 784-d vectors, the 10,000 test images as queries, and
 *       self-search;
 *   (d) crossover: clustered embeddings of growing N, self-search by the graph (build included, as mining
 *       rebuilds it) at the smallest budget reaching recall 0.95 against GPU brute force self kNN, to find
 *       the N where the graph starts to pay.
 * FANNG runs twice per case: with FANNG's occlusion rule (the default build) and with robust pruning
 * (alpha 1.2, DiskANN's relaxation, with half the traverse-add walks; see docs/ann-build.md). Every
 * contender is checked first: the brute force against the plain-TS reference on a few rows, every FANNG graph's structure (and FANNG's rule on the
 * default graph up to 100,000 points), hnswlib's labels in range.
 * Peers in the same run: GPU brute force (lib/ops/knn.ts knnSqL2, which also gives the ground truth) and,
 * when Debian's python3-hnswlib is installed and the run may start /usr/bin/python3, hnswlib (M 16,
 * ef_construction 200, 2 threads; tasks/bench/hnswlib_peer.py). Query rows are the best of two runs on both sides
 * (a shared machine's pauses hit single runs), and each "vs hnswlib" line adds A/B rounds: our fastest setting
 * at the recall bar alternating with hnswlib's fastest ef at the bar, one ratio per round (the sweeps run
 * minutes apart, and the machine's speed drifts in between).
 *
 * Run: `deno bench --allow-read --allow-env --allow-run=/usr/bin/python3 tasks/bench/fanng_bench.ts`.
 * Sizes: FANNG_BENCH=quick (20,000 clustered / random, 10,000 / 1,000 Fashion-MNIST) or full (default, the
 * sizes above); FANNG_BENCH_CASES=clustered,random,fashion,crossover,clustered1m selects cases;
 * FANNG_BENCH_SELF_SAMPLE sets the self-search recall sample (default 2,000). The machine may be shared:
 * timings are single runs, so compare ratios measured in the same run.
 * @module
 */
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { knnSqL2, knnSqL2Ref } from "../../lib/ops/knn.ts";
import { loadIdxDataset } from "../../lib/data/idx.ts";
import { type FanngBuildOptions, FanngIndex } from "../../lib/ann/index.ts";
import { degreeStats, occlusionViolations, validateGraph } from "../../lib/ann/graph.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { selectRows } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { benchOnce, fmt, textTable } from "./_peers.ts";
import { type HnswlibSession, hnswlibSession, withoutSelf } from "./_search_data.ts";

const gpu = await getGpu();
const QUICK = Deno.env.get("FANNG_BENCH") === "quick";
const CASES = (Deno.env.get("FANNG_BENCH_CASES") ??
  `clustered,random,fashion,crossover${Deno.env.get("FANNG_BENCH_1M") ? ",clustered1m" : ""}`).split(",");
const K = 10;
const SIZES = QUICK
  ? {
    clusteredN: 20000,
    fashionN: 10000,
    fashionQ: 1000,
    randomN: 20000,
    randomQ: 500,
    crossover: [2000, 8000, 20000],
  }
  : {
    clusteredN: 100000,
    fashionN: 60000,
    fashionQ: 10000,
    randomN: 100000,
    randomQ: 1000,
    crossover: [2000, 8000, 32000, 100000],
  };
const SELF_SAMPLE = Number(Deno.env.get("FANNG_BENCH_SELF_SAMPLE") ?? (QUICK ? 500 : 2000));
/** The FANNG builds compared in every case: FANNG's rule (defaults) and robust pruning. */
const GRAPHS: { label: string; options: FanngBuildOptions }[] = [
  { label: "FANNG", options: {} },
  // Robust pruning keeps ~30 edges a vertex; its self-search needs no traverse-add (same recall at 0 or 0.25
  // walks per point on the clustered set), so the walks are cut to half the default.
  { label: "FANNG alpha 1.2", options: { alpha: 1.2, traverseAddIters: 0.25 } },
];

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
// Data and helpers

/**
 * Embedding-like points: a mixture of `clusters` Gaussians in `d` dimensions (centres with unit expected
 * norm, per-coordinate noise 0.35 / sqrt(d)), every point L2-normalised, as a trained head's output.
 */
function clusteredEmbeddings(n: number, d = 64, clusters = 100, seed = 5): HostMatrix {
  const rng = new Rng(seed);
  const centres = rng.normalArray(clusters * d, 1 / Math.sqrt(d));
  const data = new Float32Array(n * d), noise = 0.35 / Math.sqrt(d);
  for (let i = 0; i < n; i++) {
    const c = rng.int(clusters);
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = centres[c * d + j] + noise * rng.normal();
      data[i * d + j] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) data[i * d + j] *= inv;
  }
  return { rows: n, cols: d, data };
}

function recallAt(found: Uint32Array, truth: Uint32Array, q: number, k = K): number {
  let hit = 0;
  for (let i = 0; i < q; i++) {
    const t = new Set(truth.subarray(i * k, (i + 1) * k));
    for (let j = 0; j < k; j++) if (t.has(found[i * k + j])) hit++;
  }
  return hit / (q * k);
}

function sample(rng: Rng, n: number, count: number): Uint32Array {
  return Uint32Array.from(
    rng.shuffle(Uint32Array.from({ length: n }, (_, i) => i)).subarray(0, Math.min(n, count)),
  );
}

/** Throws unless the brute force's k-th distances on a few rows match the plain-TS reference. */
function checkBrute(base: HostMatrix, queries: HostMatrix, dist: Float32Array, kk: number): void {
  const few = Math.min(8, queries.rows);
  const ref = knnSqL2Ref(selectRows(queries, Uint32Array.from({ length: few }, (_, i) => i)), base, kk);
  for (let i = 0; i < few; i++) {
    const a = dist[i * kk + kk - 1], b = ref.distances[i * kk + kk - 1];
    if (!(Math.abs(a - b) <= 1e-3 * Math.max(1, b))) {
      throw new Error(`GPU brute force disagrees with the reference on row ${i}: ${a} vs ${b}`);
    }
  }
}

/**
 * Exact k nearest (GPU brute force) of `queries` in `base`, with `selfIds` without each query's own row;
 * checks a few rows against the reference, records the brute-force row of `caseName` and returns the
 * answer and the queries per second.
 */
async function bruteForce(
  caseName: string,
  base: GpuBuffer<"f32">,
  host: HostMatrix,
  queries: HostMatrix,
  selfIds?: Uint32Array,
): Promise<{ indices: Uint32Array; qps: number }> {
  using q = GpuBuffer.fromArray(gpu, queries.data, [queries.rows, queries.cols]);
  const kk = selfIds ? K + 1 : K;
  {
    using one = GpuBuffer.fromArray(gpu, queries.data.subarray(0, queries.cols), [1, queries.cols]);
    using _warm = await knnSqL2(one, base, kk); // compiles the pipelines, untimed
  }
  const t0 = performance.now();
  using r = await knnSqL2(q, base, kk);
  const raw = await r.indices.read();
  const qps = queries.rows / ((performance.now() - t0) / 1000);
  checkBrute(host, queries, await r.distances.read(), kk);
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
  return { indices: withoutSelf(raw, K, selfIds), qps };
}

/**
 * Runs the hnswlib peer at each ef and records a row per ef (after checking its labels): recall against
 * `truth`, speed against brute force's `bruteQps`; and its build row, or a row saying why it did not run.
 * Returns its build seconds, its recall and queries/s per ef, and the running peer (the caller disposes it).
 */
async function hnswlibRows(
  caseName: string,
  base: HostMatrix,
  queries: HostMatrix,
  efs: number[],
  truth: Uint32Array,
  bruteQps: number,
  selfIds?: Uint32Array,
): Promise<Peer | undefined> {
  const peer = await hnswlibSession(base, queries, K, efs, selfIds);
  if (typeof peer === "string") {
    add({ case: caseName, method: "hnswlib", param: "-", note: peer });
    return undefined;
  }
  add({
    case: caseName,
    method: "hnswlib build",
    param: "M 16, efC 200",
    note: `${peer.buildSeconds.toFixed(1)} s, 2 threads`,
  });
  const runs: { ef: number; recall: number; qps: number }[] = [];
  for (const r of peer.runs) {
    if (
      r.labels.some((l, i) => l >= base.rows || (selfIds !== undefined && l === selfIds[Math.floor(i / K)]))
    ) {
      throw new Error(`hnswlib returned an out-of-range or self label at ef ${r.ef}`);
    }
    const qps = queries.rows / r.seconds, recall = recallAt(r.labels, truth, queries.rows);
    runs.push({ ef: r.ef, recall, qps });
    add({
      case: caseName,
      method: "hnswlib (2 threads)",
      param: `ef ${r.ef}`,
      recall,
      qps,
      vsBrute: qps / bruteQps,
    });
  }
  return { build: peer.buildSeconds, runs, queries: queries.rows, session: peer };
}

/** hnswlib's build seconds and, per ef, its recall and queries/s; the peer, still running. */
interface Peer {
  build: number;
  runs: { ef: number; recall: number; qps: number }[];
  /** Queries per hnswlib run. */
  queries: number;
  session: HnswlibSession;
}

/** One timed FANNG run at a setting. */
type TimedRun = (
  setting: Setting,
) => Promise<{ indices: Uint32Array; evaluations: number; seconds: number; queries: number }>;

/** A/B rounds of the summary: our search and hnswlib's alternate, so both meet the same machine moments. */
const AB_ROUNDS = 5;

/** Builds an index, checks its graph and records its build row. */
async function build(
  caseName: string,
  data: HostMatrix,
  graph: { label: string; options: FanngBuildOptions },
): Promise<{ index: FanngIndex; seconds: number }> {
  const t0 = performance.now();
  const index = await FanngIndex.build(gpu, data, { quiet: false, ...graph.options });
  const seconds = (performance.now() - t0) / 1000;
  validateGraph(index.graph);
  if ((graph.options.alpha ?? 1) === 1 && data.rows <= 100000) {
    // A graph built in a projection obeys the rule between the projected rows.
    const space = index.graph.projection ? await index.walkVectors.toHost() : data;
    const bad = occlusionViolations(index.graph, space, { limit: 1 });
    if (bad.length) {
      throw new Error(`${graph.label}: graph breaks the occlusion rule: ${JSON.stringify(bad[0])}`);
    }
  }
  const phases = Object.entries(index.stats.seconds).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(", ");
  const deg = degreeStats(index.graph);
  add({
    case: caseName,
    method: `${graph.label} build`,
    param: `R ${index.graph.maxDegree}`,
    note: `${seconds.toFixed(1)} s (${phases}); mean degree ${deg.mean.toFixed(1)}`,
  });
  return { index, seconds };
}

/** One search setting of a sweep: a budget, and an ef (default: the use's, lib/ann/search_defaults.ts). */
interface Setting {
  budget: number;
  ef?: number;
  /** Candidates re-ranked by true distance (an index built in a projection; 0: walk the vectors). */
  rerank?: number;
}

const settingName = (s: Setting) =>
  `${s.budget}${s.ef ? ` / ef ${s.ef}` : ""}${s.rerank !== undefined ? ` / rerank ${s.rerank}` : ""}`;

/** Budgets at the default ef, then (budget, ef) pairs. */
const settings = (budgets: number[], pairs: [number, number][] = []): Setting[] => [
  ...budgets.map((budget) => ({ budget })),
  ...pairs.map(([budget, ef]) => ({ budget, ef })),
];

/**
 * Times FANNG searches at each setting and records recall and throughput. Each setting first runs once on a
 * few queries (`entryPoints` as the timed run), so that compiling its pipeline is not timed.
 */
async function sweep(
  caseName: string,
  label: string,
  sweepSettings: Setting[],
  warm: { index: FanngIndex; queries: HostMatrix; entryPoints: "nearest" | "none" },
  run: TimedRun,
  truth: (indices: Uint32Array) => number,
  bruteQps: number,
): Promise<{ setting: Setting; recall: number; qps: number }[]> {
  const out = [];
  const few = {
    rows: 64,
    cols: warm.queries.cols,
    data: warm.queries.data.subarray(0, 64 * warm.queries.cols),
  };
  for (const setting of sweepSettings) {
    (await warm.index.search(few, K, { ...setting, entryPoints: warm.entryPoints }))[Symbol.dispose]();
    // Best of two runs (the hnswlib peer's rows are too): a shared machine's pauses hit single runs.
    const first = await run(setting), second = await run(setting);
    const r = second.seconds < first.seconds ? second : first;
    const recall = truth(r.indices);
    const qps = r.queries / r.seconds;
    add({
      case: caseName,
      method: label,
      param: settingName(setting),
      recall,
      evals: r.evaluations,
      qps,
      vsBrute: qps / bruteQps,
    });
    out.push({ setting, recall, qps });
  }
  return out;
}

/** Self-search of every point of `index` at `setting`; its results for `ids`, timed over all points. */
async function selfSearchAt(index: FanngIndex, ids: Uint32Array, setting: Setting) {
  const t0 = performance.now();
  using r = await index.selfSearch(K, setting);
  const seconds = (performance.now() - t0) / 1000;
  const all = await r.indices.read();
  const picked = new Uint32Array(ids.length * K);
  ids.forEach((v, i) => picked.set(all.subarray(v * K, (v + 1) * K), i * K));
  return { indices: picked, evaluations: r.evaluations, seconds, queries: index.size };
}

/**
 * A ratio line comparing our build and search with hnswlib's (build time, queries/s at recall): from the
 * sweeps' rows, and from {@link AB_ROUNDS} rounds alternating our fastest setting at the bar with hnswlib's
 * fastest ef at the bar (each round's ratio; a shared machine's speed drifts between the sweeps).
 */
async function summary(
  caseName: string,
  label: string,
  buildSeconds: number,
  runs: { setting: Setting; recall: number; qps: number }[],
  peer: Peer | undefined,
  recallBar: number,
  run: TimedRun,
): Promise<void> {
  if (!peer) return;
  // FANNG's fastest setting at the bar, against hnswlib's first ef and its fastest ef at the bar.
  const best = runs.filter((r) => r.recall >= recallBar).sort((a, b) => b.qps - a.qps)[0];
  const first = peer.runs[0];
  const match = peer.runs.filter((r) => r.recall >= recallBar).sort((a, b) => b.qps - a.qps)[0];
  let rounds = "";
  if (best && match) {
    const ratios: number[] = [];
    for (let i = 0; i < AB_ROUNDS; i++) {
      const ours = await run(best.setting);
      const theirs = await peer.session.rerun(match.ef);
      ratios.push((ours.queries / ours.seconds) / (peer.queries / theirs));
    }
    ratios.sort((a, b) => a - b);
    rounds = `; A/B x${AB_ROUNDS} against ef ${match.ef}: ${fmt(ratios[0], 2)}-${
      fmt(ratios[ratios.length - 1], 2)
    }x, median ${fmt(ratios[ratios.length >> 1], 2)}x`;
  }
  add({
    case: caseName,
    method: `${label} vs hnswlib`,
    param: best ? settingName(best.setting) : "-",
    note: `build ${fmt(buildSeconds / peer.build, 2)}x hnswlib's; ` +
      (best
        ? `recall ${fmt(best.recall, 3)} at ${
          fmt(best.qps / first.qps, 2)
        }x hnswlib's queries/s at ef ${first.ef}` +
          ` (recall ${fmt(first.recall, 3)})` +
          (match
            ? `, ${fmt(best.qps / match.qps, 2)}x at ef ${match.ef} (recall ${fmt(match.recall, 3)})`
            : "") +
          rounds
        : `no setting reached recall ${recallBar}`),
  });
}

/** FANNG graphs of one data set, built once for the cases that use them. */
interface Built {
  label: string;
  index: FanngIndex;
  seconds: number;
}

/** Builds every graph of {@link GRAPHS} over `data` (caller disposes them). */
async function buildAll(caseName: string, data: HostMatrix): Promise<Built[]> {
  const out: Built[] = [];
  for (const g of GRAPHS) out.push({ label: g.label, ...(await build(caseName, data, g)) });
  return out;
}

/**
 * A self-search case over `data` (every point's 10 nearest others; recall on a sample): GPU brute force on
 * the sample, each FANNG graph at each budget, hnswlib at each ef.
 */
async function selfCase(
  caseName: string,
  data: HostMatrix,
  graphs: Built[],
  sweepSettings: Setting[],
  efs: number[],
): Promise<void> {
  const n = data.rows, d = data.cols;
  using base = GpuBuffer.fromArray(gpu, data.data, [n, d]);
  const ids = sample(new Rng(7), n, SELF_SAMPLE);
  const sampleRows = selectRows(data, ids);
  const name = `${caseName}, self-search (recall on ${ids.length} points)`;
  const bf = await bruteForce(name, base, data, sampleRows, ids);
  const peer = await hnswlibRows(name, data, sampleRows, efs, bf.indices, bf.qps, ids);
  try {
    for (const g of graphs) {
      const run: TimedRun = (setting) => selfSearchAt(g.index, ids, setting);
      const runs = await sweep(
        name,
        `${g.label} selfSearch`,
        sweepSettings,
        { index: g.index, queries: data, entryPoints: "none" },
        run,
        (found) => recallAt(found, bf.indices, ids.length),
        bf.qps,
      );
      await summary(name, g.label, g.seconds, runs, peer, 0.95, run);
    }
  } finally {
    await peer?.session[Symbol.asyncDispose]();
  }
}

/** A case of separate queries: GPU brute force (also the ground truth), each FANNG graph, hnswlib. */
async function queryCase(
  caseName: string,
  data: HostMatrix,
  queries: HostMatrix,
  graphs: Built[],
  sweepSettings: Setting[],
  efs: number[],
  recallBar: number,
): Promise<void> {
  const q = queries.rows;
  using base = GpuBuffer.fromArray(gpu, data.data, [data.rows, data.cols]);
  const bf = await bruteForce(caseName, base, data, queries);
  const peer = await hnswlibRows(caseName, data, queries, efs, bf.indices, bf.qps);
  try {
    for (const g of graphs) {
      const run: TimedRun = async (setting) => {
        const t0 = performance.now();
        using r = await g.index.search(queries, K, setting);
        const seconds = (performance.now() - t0) / 1000;
        return { indices: await r.indices.read(), evaluations: r.evaluations, seconds, queries: q };
      };
      const runs = await sweep(
        caseName,
        `${g.label} search`,
        sweepSettings,
        { index: g.index, queries, entryPoints: "nearest" },
        run,
        (found) => recallAt(found, bf.indices, q),
        bf.qps,
      );
      await summary(caseName, g.label, g.seconds, runs, peer, recallBar, run);
    }
  } finally {
    await peer?.session[Symbol.asyncDispose]();
  }
}

/** Runs `fn` with the graphs of `data`, then frees them. */
async function withGraphs(caseName: string, data: HostMatrix, fn: (graphs: Built[]) => Promise<void>) {
  const graphs = await buildAll(caseName, data);
  try {
    await fn(graphs);
  } finally {
    graphs.forEach((g) => g.index[Symbol.dispose]());
  }
}

// ---------------------------------------------------------------------------------------------------
// Cases

async function benchClustered(n: number): Promise<void> {
  const name = `clustered embeddings ${n} x 64`, data = clusteredEmbeddings(n);
  await withGraphs(
    name,
    data,
    (graphs) =>
      selfCase(name, data, graphs, settings([32, 64, 128, 256], [[1024, 16], [1024, 32], [1024, 64]]), [
        16,
        32,
        64,
      ]),
  );
}

async function benchRandom(): Promise<void> {
  const n = SIZES.randomN, q = SIZES.randomQ, d = 64;
  const rng = new Rng(64);
  const data: HostMatrix = { rows: n, cols: d, data: rng.normalArray(n * d) };
  const queries: HostMatrix = { rows: q, cols: d, data: rng.normalArray(q * d) };
  const name = `random Gaussian ${n} x ${d}, ${q} queries`;
  await withGraphs(
    name,
    data,
    (graphs) =>
      queryCase(
        name,
        data,
        queries,
        graphs,
        settings([128, 256, 512, 1024, 2048], [[8192, 128], [16384, 256], [32768, 512]]),
        [20, 40, 80, 160, 320],
        0.9,
      ),
  );
}

async function benchFashion(): Promise<void> {
  const ds = await loadIdxDataset();
  const n = SIZES.fashionN, q = SIZES.fashionQ;
  const train: HostMatrix = { rows: n, cols: 784, data: ds.train.features.data.subarray(0, n * 784) };
  const test: HostMatrix = { rows: q, cols: 784, data: ds.test.features.data.subarray(0, q * 784) };
  const name = `Fashion-MNIST ${n} x 784`;
  await withGraphs(name, train, async (graphs) => {
    await queryCase(
      `${name}, ${q} test queries`,
      train,
      test,
      graphs,
      // The default graph is built in a 96-d PCA projection: searches walk it and re-rank (rerank 0: the walk
      // in the 784-d vectors themselves, for comparison).
      [
        { budget: 1024, ef: 32, rerank: 0 },
        { budget: 1024, ef: 32, rerank: 32 },
        { budget: 1024, ef: 36, rerank: 36 },
        { budget: 1024, ef: 40, rerank: 40 },
        { budget: 1024, ef: 48, rerank: 48 },
      ],
      [10, 12, 14, 16, 20, 40],
      0.95,
    );
    await selfCase(
      name,
      train,
      graphs,
      [{ budget: 1024, ef: 16, rerank: 32 }, { budget: 1024, ef: 32, rerank: 32 }, {
        budget: 1024,
        ef: 48,
        rerank: 48,
      }],
      [10, 20, 40],
    );
  });
}

/**
 * Clustered embeddings of growing N: GPU brute force self kNN of every point against the FANNG build plus
 * self-search at the smallest budget reaching recall 0.95 (on a sample), both timed over all N.
 */
async function benchCrossover(): Promise<void> {
  for (const n of SIZES.crossover) {
    const data = clusteredEmbeddings(n, 64, 100, 9);
    const name = `crossover: clustered ${n} x 64, self kNN of every point`;
    using base = GpuBuffer.fromArray(gpu, data.data, [n, 64]);
    const ids = sample(new Rng(3), n, Math.min(n, 1000));
    // Brute force over all N (timed) gives the sample's truth too.
    const t0 = performance.now();
    using all = await knnSqL2(base, base, K + 1);
    const raw = await all.indices.read();
    const bruteSeconds = (performance.now() - t0) / 1000;
    const truth = new Uint32Array(ids.length * K);
    ids.forEach((v, i) =>
      truth.set(
        Array.from(raw.subarray(v * (K + 1), (v + 1) * (K + 1))).filter((x) => x !== v).slice(0, K),
        i * K,
      )
    );
    add({
      case: name,
      method: "GPU brute force (knnSqL2)",
      param: "exact",
      qps: n / bruteSeconds,
      note: `${fmt(bruteSeconds, 1)} s`,
    });
    for (const g of GRAPHS) {
      const t1 = performance.now();
      using index = await FanngIndex.build(gpu, data, { quiet: true, ...g.options });
      const buildSeconds = (performance.now() - t1) / 1000;
      for (const budget of [32, 64, 128, 256, 512]) {
        (await index.selfSearch(K, { budget }))[Symbol.dispose](); // compiles the pipeline, untimed
        const r = await selfSearchAt(index, ids, { budget });
        const recall = recallAt(r.indices, truth, ids.length);
        if (recall >= 0.95 || budget === 512) {
          const total = buildSeconds + r.seconds;
          add({
            case: name,
            method: `${g.label} build + selfSearch`,
            param: String(budget),
            recall,
            evals: r.evaluations,
            qps: n / total,
            vsBrute: bruteSeconds / total,
            note: `${fmt(buildSeconds, 1)} s build + ${fmt(r.seconds, 1)} s search; ` +
              `search alone ${fmt(bruteSeconds / r.seconds, 1)}x brute force`,
          });
          break;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------

const runs: [string, () => Promise<void>][] = [
  ["clustered", () => benchClustered(SIZES.clusteredN)],
  ["random", benchRandom],
  ["fashion", benchFashion],
  ["crossover", benchCrossover],
  ["clustered1m", () => benchClustered(1_000_000)],
];
for (const [key, fn] of runs) {
  if (CASES.includes(key)) {
    benchOnce(`fanng ${key} (${QUICK ? "quick" : "full"} sizes; table below)`, "fanng", fn);
  }
}

addEventListener("unload", () => {
  if (rows.length) console.log(`\nFANNG benchmark on ${gpu.describe()}\n${table(rows)}\n`);
});
