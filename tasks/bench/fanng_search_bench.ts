/**
 * FANNG search benchmark: queries/s and recall@10 of the graph search at several ef, beside hnswlib (M 16,
 * efConstruction 200, 2 threads, ef 16 and 64) on the same points, and beside the scoring ceiling (a kernel
 * that walks the same graph and only scores neighbour lists: the best distances/s the adapter allows), on
 *   (a) clustered: the issue's 100,000 L2-normalised 64-d points (100-cluster Gaussian mixture,
 *       tasks/bench/_search_data.ts), self-search (each point's 10 nearest others; recall on 2,000 points);
 *   (b) fashion: Fashion-MNIST, 60,000 training images (784-d) as the base, the 10,000 test images as queries;
 *   (c) shapes: the clustered self-search at one setting with each team shape (lanes per query x queries
 *       per workgroup), and the ceiling with each: how the adapter's default shape was chosen.
 * Graphs are built once (FanngIndex.build, options in GRAPHS) and cached with their exact answers under
 * /tmp/dml-search-bench (tasks/bench/_search_data.ts): the first run builds for minutes on a CPU adapter.
 *
 * Run: `deno bench --allow-read --allow-write=/tmp --allow-env --allow-run=/usr/bin/python3
 * tasks/bench/fanng_search_bench.ts`. FANNG_SEARCH_BENCH_CASES=clustered,fashion,shapes selects cases;
 * FANNG_SEARCH_BENCH=quick uses 20,000 clustered points and 2,000 Fashion-MNIST queries. Each FANNG row is
 * the best of two runs; the machine may be shared, so compare ratios from one run.
 * @module
 */
import { getGpu } from "../../lib/gpu/device.ts";
import type { FanngBuildOptions, FanngIndex } from "../../lib/ann/index.ts";
import { degreeStats } from "../../lib/ann/graph.ts";
import { defaultSearchShape, runCeiling, type SearchShape } from "../../lib/ann/search.ts";
import { VectorBlocks } from "../../lib/ann/vectors.ts";
import { projectRows } from "../../lib/ann/pca.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { selectRows } from "../../lib/util/matrix.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { benchOnce, fmt, textTable } from "./_peers.ts";
import { cachedGraph, clustered, exactNeighbours, fashion, hnswlibPeer, recallAt } from "./_search_data.ts";

const gpu = await getGpu();
const QUICK = Deno.env.get("FANNG_SEARCH_BENCH") === "quick";
const CASES = (Deno.env.get("FANNG_SEARCH_BENCH_CASES") ?? "clustered,fashion,shapes").split(",");
const K = 10;
const CLUSTERED_N = QUICK ? 20000 : 100000;
const FASHION_Q = QUICK ? 2000 : 10000;
const SAMPLE = 2000;
/** Queries of a ceiling run (each walks 32 vertices). */
const CEILING_QUERIES = 20000;

/** Graph build options per case: generous candidates (the graph's quality is the build's business). */
const GRAPHS: Record<string, FanngBuildOptions> = {
  clustered: { exactLimit: 100000, candidates: 64, maxDegree: 32 },
  fashion: { candidates: 64, maxDegree: 32 },
};

interface Row {
  case: string;
  method: string;
  setting: string;
  recall?: number;
  evals?: number;
  qps?: number;
  /** Millions of distances per second. */
  mevals?: number;
  /** Distances/s over the ceiling's. */
  vsCeiling?: number;
  /** Queries/s over hnswlib's at ef 16. */
  vsHnsw16?: number;
  note?: string;
}

const rows: Row[] = [];

function table(list: readonly Row[]): string {
  const head = [
    "case",
    "method",
    "setting",
    "recall@10",
    "evals/query",
    "queries/s",
    "M dist/s",
    "vs ceiling",
    "vs hnswlib ef16",
    "note",
  ];
  return textTable([
    head,
    ...list.map((r) => [
      r.case,
      r.method,
      r.setting,
      fmt(r.recall, 4),
      fmt(r.evals, 0),
      fmt(r.qps, 0),
      fmt(r.mevals, 2),
      r.vsCeiling === undefined ? "" : `${fmt(r.vsCeiling, 2)}x`,
      r.vsHnsw16 === undefined ? "" : `${fmt(r.vsHnsw16, 2)}x`,
      r.note ?? "",
    ]),
  ]);
}

function add(row: Row): Row {
  rows.push(row);
  console.log(table([row]).split("\n")[1]);
  return row;
}

const shapeName = (s: SearchShape) => `${s.lanes}x${s.queriesPerGroup}`;

/** `queries` as column blocks in the space `index`'s graph is walked in (projected, if it was built so). */
async function walkQueries(index: FanngIndex, queries: HostMatrix): Promise<VectorBlocks> {
  const projection = index.graph.projection;
  if (!projection) return VectorBlocks.fromHost(gpu, queries, index.walkVectors.layout);
  using rows = GpuBuffer.fromArray(gpu, queries.data, [queries.rows, queries.cols]);
  using projected = await projectRows(rows, projection);
  const batch = new CommandBatch(gpu, "bench.walk queries");
  const blocks = await VectorBlocks.encodeFrom(batch, projected, index.walkVectors.layout);
  await batch.submit();
  return blocks;
}

/**
 * The ceiling's distances/s over `index`'s graph with `queries` (best of two), recorded as a row; in the
 * space the graph is walked in (the PCA projection of an index built in one).
 */
async function ceilingRow(caseName: string, index: FanngIndex, queries: HostMatrix, shape: SearchShape) {
  const rows = Uint32Array.from({ length: Math.min(queries.rows, CEILING_QUERIES) }, (_, i) => i);
  const picked = selectRows(queries, rows);
  using qv = await walkQueries(index, picked);
  let best = 0;
  for (let rep = 0; rep < 2; rep++) {
    const t0 = performance.now();
    const out = await runCeiling(index.walkVectors, index.gpuGraph, qv, { steps: 32, shape });
    const evals = (await out.evaluations.read()).reduce((a, b) => a + b, 0);
    best = Math.max(best, evals / ((performance.now() - t0) / 1000));
    out.sums.destroy();
    out.evaluations.destroy();
  }
  return add({
    case: caseName,
    method: "ceiling (score only)",
    setting: `shape ${shapeName(shape)}`,
    mevals: best / 1e6,
    vsCeiling: 1,
    note: "walks the graph, scores every neighbour list, nothing else",
  });
}

/** Times one FANNG setting (best of two runs, pipelines compiled by a warm-up on a few queries). */
async function fanngRow(
  caseName: string,
  index: FanngIndex,
  queries: HostMatrix | "self",
  options: { ef: number; budget?: number; rerank?: number; shape?: SearchShape },
  recall: (found: Uint32Array) => number,
  ceiling: number | undefined,
  hnsw16: number | undefined,
): Promise<Row> {
  const run = async (q: HostMatrix | "self") => {
    const t0 = performance.now();
    using res = q === "self" ? await index.selfSearch(K, options) : await index.search(q, K, options);
    const found = await res.indices.read();
    return { found, evals: res.evaluations, seconds: (performance.now() - t0) / 1000 };
  };
  if (queries !== "self") await run(selectRows(queries, [0, 1]));
  let best: { found: Uint32Array; evals: number; seconds: number } | undefined;
  for (let rep = 0; rep < 2; rep++) {
    const r = await run(queries);
    if (!best || r.seconds < best.seconds) best = r;
  }
  const count = queries === "self" ? index.size : queries.rows;
  const qps = count / best!.seconds, mevals = (qps * best!.evals) / 1e6;
  return add({
    case: caseName,
    method: `FANNG ${queries === "self" ? "selfSearch" : "search"}`,
    setting: `ef ${options.ef}${options.budget ? `, budget ${options.budget}` : ""}${
      options.rerank !== undefined ? `, rerank ${options.rerank}` : ""
    }${options.shape ? `, shape ${shapeName(options.shape)}` : ""}`,
    recall: recall(best!.found),
    evals: best!.evals,
    qps,
    mevals,
    vsCeiling: ceiling ? mevals / ceiling : undefined,
    vsHnsw16: hnsw16 ? qps / hnsw16 : undefined,
  });
}

/** hnswlib rows; returns its queries/s at ef 16. */
async function hnswRows(
  caseName: string,
  base: HostMatrix,
  queries: HostMatrix,
  recall: (found: Uint32Array) => number,
  selfIds?: Uint32Array,
): Promise<number | undefined> {
  const peer = await hnswlibPeer(base, queries, K, [16, 64], selfIds);
  if (typeof peer === "string") {
    add({ case: caseName, method: "hnswlib", setting: "-", note: peer });
    return undefined;
  }
  let qps16: number | undefined;
  for (const r of peer.runs) {
    const qps = queries.rows / r.seconds;
    if (r.ef === 16) qps16 = qps;
    add({
      case: caseName,
      method: "hnswlib (2 threads)",
      setting: `ef ${r.ef}`,
      recall: recall(r.labels),
      qps,
      vsHnsw16: qps16 ? qps / qps16 : undefined,
      note: `M 16, efC 200, build ${peer.buildSeconds.toFixed(1)} s`,
    });
  }
  return qps16;
}

async function graphFor(name: string, caseName: string, data: HostMatrix): Promise<FanngIndex> {
  const { index, buildSeconds } = await cachedGraph(gpu, name, data, GRAPHS[caseName]);
  const deg = degreeStats(index.graph);
  add({
    case: caseName,
    method: "FANNG graph",
    setting: JSON.stringify(GRAPHS[caseName]),
    note: `${buildSeconds === undefined ? "cached" : `built in ${buildSeconds.toFixed(0)} s`}, mean degree ${
      deg.mean.toFixed(1)
    }, R ${index.graph.maxDegree}`,
  });
  return index;
}

// ---------------------------------------------------------------------------------------------------

benchOnce("clustered 64-d self-search", "fanng search", async () => {
  const name = `clustered${CLUSTERED_N}`;
  const data = clustered(CLUSTERED_N);
  using index = await graphFor(name, "clustered", data);
  const sample = Uint32Array.from({ length: SAMPLE }, (_, i) => Math.floor((i * CLUSTERED_N) / SAMPLE));
  const truth = await exactNeighbours(
    gpu,
    `${name}-sample${SAMPLE}`,
    data,
    selectRows(data, sample),
    K,
    sample,
  );
  const recall = (found: Uint32Array) => {
    const rowsOf = new Uint32Array(SAMPLE * K);
    sample.forEach((s, i) => rowsOf.set(found.subarray(s * K, (s + 1) * K), i * K));
    return recallAt(rowsOf, truth, SAMPLE, K);
  };
  const hnsw16 = await hnswRows(
    "clustered",
    data,
    data,
    recall,
    Uint32Array.from({ length: CLUSTERED_N }, (_, i) => i),
  );
  const ceiling = (await ceilingRow("clustered", index, data, defaultSearchShape(gpu))).mevals;
  for (const ef of [10, 16, 24, 32, 64]) {
    await fanngRow("clustered", index, "self", { ef }, recall, ceiling, hnsw16);
  }
}, !CASES.includes("clustered"));

benchOnce("Fashion-MNIST 784-d search", "fanng search", async () => {
  const { base, queries: allQueries } = await fashion();
  const queries = selectRows(allQueries, Uint32Array.from({ length: FASHION_Q }, (_, i) => i));
  using index = await graphFor("fashion60k-p96", "fashion", base);
  const truth = await exactNeighbours(gpu, `fashion60k-test${FASHION_Q}`, base, queries, K);
  const recall = (found: Uint32Array) => recallAt(found, truth, queries.rows, K);
  const hnsw16 = await hnswRows("fashion", base, queries, recall);
  const ceiling = (await ceilingRow("fashion", index, queries, defaultSearchShape(gpu))).mevals;
  // The graph is built in a 96-d PCA projection: the walk keeps `rerank` candidates, re-ranked in 784-d
  // (rerank 0: the walk in the 784-d vectors).
  for (const ef of [32, 48, 64]) {
    await fanngRow("fashion", index, queries, { ef, rerank: ef }, recall, ceiling, hnsw16);
  }
  await fanngRow("fashion", index, queries, { ef: 32, rerank: 0 }, recall, ceiling, hnsw16);
}, !CASES.includes("fashion"));

benchOnce("team shapes on the clustered self-search", "fanng search", async () => {
  const name = `clustered${CLUSTERED_N}`;
  const data = clustered(CLUSTERED_N);
  using index = await graphFor(name, "clustered", data);
  const none = () => NaN;
  const shapes: SearchShape[] = [
    { lanes: 1, queriesPerGroup: 8 },
    { lanes: 1, queriesPerGroup: 16 },
    { lanes: 1, queriesPerGroup: 64 },
    { lanes: 4, queriesPerGroup: 2 },
    { lanes: 8, queriesPerGroup: 1 },
    { lanes: 16, queriesPerGroup: 1 },
    { lanes: 32, queriesPerGroup: 2 },
  ];
  for (const shape of shapes.slice(0, 5)) await ceilingRow("shapes", index, data, shape);
  for (const shape of shapes) {
    await fanngRow("shapes", index, "self", { ef: 16, shape }, none, undefined, undefined);
  }
}, !CASES.includes("shapes"));

benchOnce("table", "fanng search", () => {
  console.log(`\nFANNG search on ${gpu.describe()}\n${table(rows)}\n`);
  return Promise.resolve();
});
