/**
 * Data, graphs and exact answers for the search and mining benches (fanng_search_bench.ts,
 * mining_bench.ts), cached under a folder (default /tmp/dml-search-bench) so that repeated runs measure
 * search only: building a good graph over 100,000 points takes minutes on a CPU adapter.
 *
 * - `clustered(n)`: the embedding-like set: a 100-component Gaussian mixture in 64-d, L2-normalised
 *   (centres on the unit sphere, point = normalise(centre + 0.5 * g / 8), g standard normal), seeded.
 * - `fashion()`: Fashion-MNIST, 60,000 training images as 784-d vectors, the 10,000 test images as queries.
 * - `cachedGraph`: a graph built once with the given FanngIndex.build options and stored in the FANNG format.
 * - `exactNeighbours`: the exact k nearest (GPU brute force, lib/ops/knn.ts), cached.
 * Not a bench file itself (deno bench only runs `*_bench.ts`).
 * @module
 */
import type { Gpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { knnSqL2 } from "../../lib/ops/knn.ts";
import { loadIdxDataset } from "../../lib/data/idx.ts";
import { type FanngBuildOptions, FanngIndex } from "../../lib/ann/index.ts";
import { decodeGraph } from "../../lib/ann/file.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";

/** Where the caches live (DML_SEARCH_BENCH_CACHE overrides). */
export const CACHE_DIR = Deno.env.get("DML_SEARCH_BENCH_CACHE") ?? "/tmp/dml-search-bench";

/** The 100-cluster, L2-normalised 64-d mixture of the issue ("embedding-like"), `n` points, seeded. */
export function clustered(n: number, seed = 1, dims = 64, clusters = 100): HostMatrix {
  const rng = new Rng(seed);
  const centres = new Float32Array(clusters * dims);
  for (let c = 0; c < clusters; c++) {
    const v = rng.normalArray(dims);
    const norm = Math.hypot(...v);
    for (let j = 0; j < dims; j++) centres[c * dims + j] = v[j] / norm;
  }
  const data = new Float32Array(n * dims);
  const spread = 0.5 / Math.sqrt(dims);
  for (let i = 0; i < n; i++) {
    const c = rng.int(clusters);
    let s = 0;
    for (let j = 0; j < dims; j++) {
      const x = centres[c * dims + j] + spread * rng.normal();
      data[i * dims + j] = x;
      s += x * x;
    }
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dims; j++) data[i * dims + j] *= inv;
  }
  return { rows: n, cols: dims, data };
}

/** Fashion-MNIST pixels: base = the training images, queries = the test images (784-d, values 0..1). */
export async function fashion(): Promise<{ base: HostMatrix; queries: HostMatrix; labels: Int32Array }> {
  const ds = await loadIdxDataset();
  return { base: ds.train.features, queries: ds.test.features, labels: ds.train.labels };
}

async function readCache(name: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(`${CACHE_DIR}/${name}`);
  } catch {
    return undefined;
  }
}

async function writeCache(name: string, bytes: Uint8Array): Promise<void> {
  await Deno.mkdir(CACHE_DIR, { recursive: true });
  const tmp = `${CACHE_DIR}/${name}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, `${CACHE_DIR}/${name}`);
}

/**
 * An index over `data` whose graph is built with `options` the first time and read from the cache after;
 * returns it with the build seconds of the first time (undefined when it came from the cache).
 */
export async function cachedGraph(
  gpu: Gpu,
  name: string,
  data: HostMatrix,
  options: FanngBuildOptions,
): Promise<{ index: FanngIndex; buildSeconds?: number }> {
  const file = `${name}.fanng`;
  const bytes = await readCache(file);
  if (bytes) return { index: await FanngIndex.fromGraph(gpu, decodeGraph(bytes, file), data, file) };
  const t0 = performance.now();
  const index = await FanngIndex.build(gpu, data, { quiet: false, ...options });
  const buildSeconds = (performance.now() - t0) / 1000;
  await writeCache(file, index.toBytes());
  return { index, buildSeconds };
}

/**
 * The exact `k` nearest rows of `base` for each row of `queries` (`self`: queries are base rows `ids`, each
 * without itself), by GPU brute force; cached under `name`.
 */
export async function exactNeighbours(
  gpu: Gpu,
  name: string,
  base: HostMatrix,
  queries: HostMatrix,
  k: number,
  selfIds?: Uint32Array,
): Promise<Uint32Array> {
  const file = `${name}.truth-${k}.u32`;
  const bytes = await readCache(file);
  if (bytes && bytes.length === queries.rows * k * 4) return new Uint32Array(bytes.slice().buffer);
  using b = GpuBuffer.fromArray(gpu, base.data, [base.rows, base.cols]);
  using q = GpuBuffer.fromArray(gpu, queries.data, [queries.rows, queries.cols]);
  const kk = selfIds ? k + 1 : k;
  using r = await knnSqL2(q, b, kk);
  const raw = await r.indices.read();
  const out = selfIds ? withoutSelf(raw, k, selfIds) : raw;
  await writeCache(file, new Uint8Array(out.buffer));
  return out;
}

/**
 * [Q x k] lists from [Q x (k + 1)] self-search lists `raw`: each row without its query's own id
 * (`selfIds[i]`), cut to k.
 */
export function withoutSelf(raw: Uint32Array, k: number, selfIds: Uint32Array): Uint32Array {
  const q = selfIds.length, kk = raw.length / q;
  const out = new Uint32Array(q * k);
  for (let i = 0; i < q; i++) {
    const row = Array.from(raw.subarray(i * kk, (i + 1) * kk)).filter((x) => x !== selfIds[i]);
    out.set(row.slice(0, k), i * k);
  }
  return out;
}

/** Mean fraction of each row's `k` true neighbours among its `k` results. */
export function recallAt(found: Uint32Array, truth: Uint32Array, rows: number, k: number): number {
  let hit = 0;
  for (let i = 0; i < rows; i++) {
    const t = new Set(truth.subarray(i * k, (i + 1) * k));
    for (let j = 0; j < k; j++) if (t.has(found[i * k + j])) hit++;
  }
  return hit / Math.max(1, rows * k);
}

/** hnswlib's answers (M 16, efConstruction 200, 2 threads) at several ef, from tasks/bench/hnswlib_peer.py. */
export interface HnswlibRun {
  buildSeconds: number;
  runs: { ef: number; seconds: number; labels: Uint32Array }[];
}

/** A running hnswlib peer after its runs: it can time more runs until closed. */
export interface HnswlibSession extends HnswlibRun, AsyncDisposable {
  /** Seconds of one more run of all the queries at `ef` (A/B rounds against our own searches). */
  rerun(ef: number): Promise<number>;
}

/**
 * Runs the hnswlib peer (Debian's python3-hnswlib through /usr/bin/python3) over `base`, answering `queries`
 * (k nearest; with `selfIds`, self-search: each query's own id dropped); a string says why it did not run.
 */
export async function hnswlibPeer(
  base: HostMatrix,
  queries: HostMatrix,
  k: number,
  efs: number[],
  selfIds?: Uint32Array,
): Promise<HnswlibRun | string> {
  const session = await hnswlibSession(base, queries, k, efs, selfIds);
  if (typeof session === "string") return session;
  await session[Symbol.asyncDispose]();
  return { buildSeconds: session.buildSeconds, runs: session.runs };
}

/** {@link hnswlibPeer}, with the peer kept running for {@link HnswlibSession.rerun} (dispose it). */
export async function hnswlibSession(
  base: HostMatrix,
  queries: HostMatrix,
  k: number,
  efs: number[],
  selfIds?: Uint32Array,
): Promise<HnswlibSession | string> {
  const python = "/usr/bin/python3";
  const perm = await Deno.permissions.query({ name: "run", command: python });
  if (perm.state !== "granted") return `skipped: run with --allow-run=${python}`;
  const script = new URL("./hnswlib_peer.py", import.meta.url).pathname;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(python, { args: [script], stdin: "piped", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (e) {
    return `unavailable: ${(e as Error).message}`;
  }
  const writer = child.stdin.getWriter();
  const lines = lineReader(child.stdout);
  const stderr = new Response(child.stderr).text();
  const fail = async (what: string) => {
    await writer.close().catch(() => {});
    await child.status;
    return `failed ${what}: ${(await stderr).trim().split("\n").pop()}`;
  };
  try {
    const header = {
      n: base.rows,
      d: base.cols,
      q: queries.rows,
      k,
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
  } catch (e) {
    return await fail(`while sending the data (${(e as Error).message})`);
  }
  const first = await lines.next();
  if (first === undefined) return await fail("before answering");
  const res = JSON.parse(first);
  return {
    buildSeconds: res.build_seconds,
    runs: res.runs.map((r: { ef: number; seconds: number; labels: string }) => ({
      ef: r.ef,
      seconds: r.seconds,
      labels: new Uint32Array(Uint8Array.from(atob(r.labels), (c) => c.charCodeAt(0)).buffer),
    })),
    async rerun(ef: number): Promise<number> {
      await writer.write(new TextEncoder().encode(JSON.stringify({ ef }) + "\n"));
      const line = await lines.next();
      if (line === undefined) throw new Error(await fail(`at a rerun (ef ${ef})`));
      return JSON.parse(line).seconds;
    },
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      await lines.drain();
      await child.status;
      await stderr;
    },
  };
}

/** Lines of a byte stream, one at a time (undefined at its end). */
function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let done = false;
  return {
    async next(): Promise<string | undefined> {
      while (!buffered.includes("\n") && !done) {
        const r = await reader.read();
        if (r.done) done = true;
        else buffered += r.value;
      }
      const at = buffered.indexOf("\n");
      if (at < 0) return undefined;
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      return line;
    },
    async drain(): Promise<void> {
      while (!done) done = (await reader.read()).done;
    },
  };
}
