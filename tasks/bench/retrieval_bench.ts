/**
 * Retrieval (lib/retrieval): what a search costs end to end in Deno (queries through the index's head, then
 * the FANNG graph search on the GPU), beside exact GPU kNN over the same gallery (the peer) and the plain-TS
 * graph search (what a browser runs where WebGPU cannot create the search kernel), for batches of 1, 16
 * and 256 queries; plus the index build (embedding + graph) beside an exact kNN graph of the same size.
 *
 *   RETRIEVAL_BENCH_INDEX=runs/<run>/index deno bench --allow-read --allow-env tasks/bench/retrieval_bench.ts
 *
 * Without RETRIEVAL_BENCH_INDEX it indexes the Fashion-MNIST test split (10,000 items) through an untrained
 * 784 -> 64 head (the timings depend on the sizes, not on the training). Queries are test pictures
 * (raw pixels, scaled by the head's input rule), k = 10. Interleaved repetitions, medians.
 * @module
 */
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, loadIdxSplit } from "../../lib/data/idx.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { initHeadParameters, resolveHeadConfig } from "../../lib/model/head.ts";
import { knnSqL2 } from "../../lib/ops/knn.ts";
import { buildGalleryIndex } from "../../lib/retrieval/build.ts";
import { openRetriever } from "../../lib/retrieval/open.ts";
import type { Retriever } from "../../lib/retrieval/retriever.ts";
import { benchOnce, benchTable, measure, record, recordSkipped } from "./_peers.ts";

const K = 10;
const gpu = await getGpu();
const given = Deno.env.get("RETRIEVAL_BENCH_INDEX");

/** The index's bytes: the given one, or the Fashion-MNIST test split through an untrained head. */
async function indexBytes(): Promise<{ bytes: Uint8Array; label: string }> {
  if (given) {
    const r = await openRetriever(given);
    r[Symbol.dispose]();
    return { bytes: await Deno.readFile(r.source), label: r.source };
  }
  const test = await loadIdxSplit(FASHION_MNIST_DIR, "t10k");
  const config = resolveHeadConfig({ inDim: 784, outDim: 64, seed: 0 });
  const pixels = Uint8Array.from(test.features.data, (v) => Math.round(v * 255));
  const built = await buildGalleryIndex(gpu, {
    head: { config, params: initHeadParameters(config) },
    features: test.features,
    labels: test.labels,
    ids: Array.from({ length: test.labels.length }, (_, i) => `t10k/${i}`),
    pixels,
    header: {
      features: { kind: "pixels", width: 28, height: 28, channels: 1 },
      gallery: { split: "test", dataset: "fashion-mnist" },
      data: { dataset: { kind: "idx", dir: FASHION_MNIST_DIR, split: "seen" }, trainLimit: 0, testLimit: 0 },
      identities: { kind: "idx-row" },
      classes: FASHION_MNIST_CLASSES.map((n, i) => [i, n]),
      pixels: { width: 28, height: 28, channels: 1 },
      source: { run: "(untrained head)", epochs: null, recall: null, adapter: gpu.report.name },
    },
  });
  return { bytes: built.bytes, label: "Fashion-MNIST test split, untrained head" };
}

const { bytes, label } = await indexBytes();
const onGpu = await openRetriever(bytes, { source: label, graphSearch: "gpu" });
const onCpu = await openRetriever(bytes, { source: label, graphSearch: "cpu" });

/** Query pictures: gallery items' pixels when the index has them, else rows of features made from them. */
function queryPixels(r: Retriever, q: number): Uint8Array {
  const n = r.inputDim;
  const out = new Uint8Array(q * n);
  for (let i = 0; i < q; i++) out.set(r.pixels((i * 7919) % r.size)!, i * n);
  return out;
}

/** Fraction of the exact top-k found by the graph search. */
function recall(graph: number[][], exact: number[][]): number {
  let hit = 0, total = 0;
  graph.forEach((g, i) => {
    const truth = new Set(exact[i]);
    hit += g.filter((x) => truth.has(x)).length;
    total += exact[i].length;
  });
  return hit / Math.max(1, total);
}

for (const q of [1, 16, 256]) {
  benchOnce(`search ${q}`, "retrieval", async () => {
    const name = `${q} ${q === 1 ? "query" : "queries"}, k ${K}, N ${onGpu.size}`;
    if (!onGpu.header.pixels) {
      recordSkipped(name, "all", "the index carries no pixels to make queries from");
      return;
    }
    const pixels = queryPixels(onGpu, q);
    const timed = (r: Retriever, exact: boolean) => async () => {
      const t0 = performance.now();
      await r.search(pixels, K, { exact });
      return { wallMs: performance.now() - t0 };
    };
    const measured = await measure([
      { name: "head + FANNG search (GPU)", run: timed(onGpu, false) },
      { name: "head + exact kNN (GPU; peer)", run: timed(onGpu, true) },
      { name: "head + FANNG search (plain TS)", run: timed(onCpu, false) },
    ], q === 256 ? 3 : 5);
    const graph = (await onGpu.search(pixels, K)).queries.map((l) => l.map((n) => n.item));
    const exact = (await onGpu.search(pixels, K, { exact: true })).queries.map((l) => l.map((n) => n.item));
    measured[0].error = `recall@${K} vs exact ${recall(graph, exact).toFixed(3)}`;
    record(name, measured, q, "queries");
  });
}

benchOnce("build", "retrieval", async () => {
  const emb = onGpu.contents.embeddings;
  const n = emb.rows;
  const measured = await measure([
    {
      name: "FANNG graph (index build)",
      run: async () => {
        const { FanngIndex } = await import("../../lib/ann/index.ts");
        const t0 = performance.now();
        using _ = await FanngIndex.build(gpu, emb, {
          maxDegree: onGpu.header.graph.maxDegree,
          seed: onGpu.header.graph.seed,
        });
        return { wallMs: performance.now() - t0 };
      },
    },
    {
      name: "exact 32-NN graph (GPU kNN; peer)",
      run: async () => {
        const t0 = performance.now();
        using x = GpuBuffer.fromArray(gpu, emb.data, [n, emb.cols]);
        using res = await knnSqL2(x, x, 32, { excludeSelf: true });
        await res.indices.read();
        return { wallMs: performance.now() - t0 };
      },
    },
  ], 2);
  measured[0].error = `${(bytes.length / 2 ** 20).toFixed(2)} MiB index, ${
    (bytes.length / 2 ** 20 * 10000 / n).toFixed(2)
  } MiB per 10k items`;
  record(`build over ${n} x ${emb.cols}`, measured, n, "items");
});

benchTable("retrieval table", "retrieval", `Retrieval on ${gpu.describe()}: ${label}`, () => {
  onGpu[Symbol.dispose]();
  onCpu[Symbol.dispose]();
});
