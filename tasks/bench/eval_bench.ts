/**
 * Evaluation benchmark: the retrieval metrics (Recall@{1,2,4,8}, MAP@R, R-Precision) and k-means + NMI of
 * evaluateEmbeddings' parts, against peers run on the same data in the same run:
 *
 * - Recall@K: faiss IndexFlatL2 kNN with k = 9 (the 8 nearest after the query itself), numpy for the
 *   metrics; MAP@R: the same with k = largest class (pytorch-metric-learning's k = "max_bin_count");
 * - k-means + NMI: scikit-learn KMeans (k-means++, n_init 3, Lloyd, max_iter 100) and faiss Kmeans
 *   (3 restarts), NMI from scikit-learn;
 * - t-SNE: scikit-learn TSNE (Barnes-Hut, angle 0.5, same perplexity and iterations).
 *
 * Cases (EVAL_BENCH_CASES, comma separated; default `10k,cars,sop,tsne`):
 * - `10k`: 10,000 x 64, 10 overlapping Gaussian classes (Fashion-MNIST test embeddings early in training);
 *   a warm-up and 3 interleaved repetitions, medians;
 * - `cars`: 32,664 x 64, 62 classes (class-rich, like Cars196 / CUB test features), seeded;
 * - `sop`: 60,502 x 64, 11,316 classes of 2-12 samples (Stanford Online Products' test split), seeded;
 * - `100k`: 100,000 x 64, 100 classes that overlap almost fully;
 * - `tsne`: t-SNE of 6,000 points;
 * - `profile` (not in the default): GPU time per kernel of Recall@K and k-means on the `cars` set.
 * The large cases run once each after the pipelines were compiled on a small set.
 *
 * Each row notes the metric values (faster never means wrong), CPU seconds (the process's, llvmpipe's
 * threads included: less sensitive to other jobs than wall time) and peak memory: ours, the peak of live
 * GPU buffers during the call (on a software adapter they are host memory) above what was live before (the
 * embeddings themselves); a Python peer, the growth of its process's peak RSS (VmHWM) during the call, its
 * data already loaded. The Python peers (Debian's python3-faiss and python3-sklearn) time themselves
 * inside Python, data already loaded; they run when the bench may start /usr/bin/python3 and write the
 * temporary folder, and are listed as skipped otherwise.
 *
 * Run: `deno bench --allow-read --allow-write=/tmp --allow-env --allow-run=/usr/bin/python3
 * tasks/bench/eval_bench.ts` (`EVAL_BENCH_CASES=cars` for one case).
 * @module
 */
import { tmpdir } from "node:os";
import process from "node:process";
import { evaluateEmbeddings } from "../../lib/eval/evaluate.ts";
import { kmeans } from "../../lib/eval/kmeans.ts";
import { nmi } from "../../lib/eval/nmi.ts";
import { retrievalMetrics } from "../../lib/eval/retrieval.ts";
import { knnBruteForce, tsne, tsneGpu } from "../../lib/eval/tsne.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { profile } from "../../lib/gpu/timing.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { benchOnce, benchTable, type Contender, measure, record, recordSkipped } from "./_peers.ts";

const gpu = await getGpu();
const adapter = gpu.describe();
const PYTHON = "/usr/bin/python3";
const CASES = new Set((Deno.env.get("EVAL_BENCH_CASES") ?? "10k,cars,sop,tsne").split(","));

/** Embeddings with their labels. */
interface LabeledSet {
  data: HostMatrix;
  labels: Int32Array;
}

/** Points at `spread` around class centres N(0, 1) per dim; `labels` gives each point's class. */
function aroundCentres(
  rng: Rng,
  labels: Int32Array,
  classes: number,
  dim: number,
  spread: number,
): LabeledSet {
  const n = labels.length;
  const centres = rng.normalArray(classes * dim);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) data[i * dim + d] = centres[labels[i] * dim + d] + spread * rng.normal();
  }
  return { data: { rows: n, cols: dim, data }, labels };
}

/** Uniform labels over `classes`. */
function clustered(seed: number, n: number, dim: number, classes: number, spread: number): LabeledSet {
  const rng = new Rng(seed);
  const labels = new Int32Array(n).map(() => rng.int(classes));
  return aroundCentres(rng, labels, classes, dim, spread);
}

/** Stanford Online Products' shape: `classes` classes of 2..12 samples (about 5.35 each), shuffled. */
function sopLike(seed: number, n: number, dim: number, classes: number, spread: number): LabeledSet {
  const rng = new Rng(seed);
  const sizes = new Uint32Array(classes).fill(2);
  for (let left = n - 2 * classes; left > 0;) {
    const c = rng.int(classes);
    if (sizes[c] < 12) [sizes[c], left] = [sizes[c] + 1, left - 1];
  }
  const labels = new Int32Array(n);
  let at = 0;
  sizes.forEach((s, c) => labels.fill(c, at, at += s));
  rng.shuffle(labels);
  return aroundCentres(rng, labels, classes, dim, spread);
}

// ---------------------------------------------------------------------------------------------------
// Peak GPU memory of ours: live buffer bytes, tracked at the device

let liveBytes = 0, peakBytes = 0;
{
  const device = gpu.device;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (desc: GPUBufferDescriptor) => {
    const buf = create(desc);
    liveBytes += desc.size;
    peakBytes = Math.max(peakBytes, liveBytes);
    const destroy = buf.destroy.bind(buf);
    let gone = false;
    buf.destroy = () => {
      if (!gone) [gone, liveBytes] = [true, liveBytes - desc.size];
      destroy();
    };
    return buf;
  };
}

/**
 * Runs `fn` and returns its wall ms, the CPU ms of this process meanwhile (llvmpipe's threads included) and
 * the peak GPU bytes it allocated above those live before.
 */
async function withPeak<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; wallMs: number; cpuMs: number; peak: number }> {
  await gpu.idle();
  const base = liveBytes;
  peakBytes = liveBytes;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await gpu.idle(); // freed temporaries
  return { value, wallMs, cpuMs: (c.user + c.system) / 1000, peak: peakBytes - base };
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function sec(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------------
// Python peers

const PEER_SCRIPT = `
import json, resource, sys, time
import numpy as np
mode, path, n, d, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = np.fromfile(path + ".f32", dtype=np.float32).reshape(n, d)
y = np.fromfile(path + ".i32", dtype=np.int32)
out = {}
def hwm():  # peak RSS of this process image (ru_maxrss would include the parent's at fork time)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
hwm0, cpu0 = hwm(), cpu()
t0 = time.perf_counter()
if mode == "retrieval":
    import faiss
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    r = counts[inv] - 1
    k = int(arg) if int(arg) > 0 else int(counts.max())  # neighbours after the query itself
    index = faiss.IndexFlatL2(d)
    index.add(x)
    ks = [1, 2, 4, 8]
    hits = np.zeros(len(ks)); ap_sum = 0.0; rp_sum = 0.0
    used = r > 0
    for s in range(0, n, 10000):
        e = min(n, s + 10000)
        _, I = index.search(x[s:e], k + 1)
        I = I[:, 1:]  # pytorch-metric-learning drops the first column (the query itself)
        eq = y[I] == y[s:e, None]
        rr = r[s:e]
        u = used[s:e]
        first = np.where(eq.any(1), eq.argmax(1), k)
        for i, kk in enumerate(ks):
            hits[i] += np.sum((first < kk) & u)
        if int(arg) == 0:
            mask = np.arange(k)[None, :] < rr[:, None]
            rel = eq & mask
            cum = np.cumsum(rel, 1)
            prec = cum * rel / np.arange(1, k + 1)[None, :]
            ap_sum += np.sum(prec.sum(1)[u] / rr[u])
            rp_sum += np.sum(rel.sum(1)[u] / rr[u])
    m = used.sum()
    out = {"recall": {str(kk): hits[i] / m for i, kk in enumerate(ks)}}
    if int(arg) == 0:
        out["mapAtR"] = ap_sum / m
        out["rPrecision"] = rp_sum / m
elif mode == "sklearn_kmeans":
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score as nmi
    k = int(arg)
    km = KMeans(n_clusters=k, init="k-means++", n_init=3, max_iter=100, random_state=0, algorithm="lloyd").fit(x)
    out = {"nmi": nmi(y, km.labels_), "inertia": float(km.inertia_), "iters": int(km.n_iter_)}
elif mode == "faiss_kmeans":
    import faiss
    from sklearn.metrics import normalized_mutual_info_score as nmi
    k, niter = [int(v) for v in arg.split(",")]
    km = faiss.Kmeans(d, k, niter=niter, nredo=3, seed=1)
    km.train(x)
    _, a = km.index.search(x, 1)
    out = {"nmi": nmi(y, a[:, 0])}
elif mode == "sklearn_tsne":
    from sklearn.manifold import TSNE
    it = int(arg)
    z = TSNE(n_components=2, perplexity=30, n_iter=it, init="random", learning_rate="auto", method="barnes_hut",
             angle=0.5, random_state=0).fit_transform(x)
    out = {"coords": z.astype(np.float32).ravel().tolist()}
out["ms"] = (time.perf_counter() - t0) * 1000
out["cpuMs"] = (cpu() - cpu0) * 1000
out["peakBytes"] = hwm() - hwm0
print(json.dumps(out))
`;

function canRunPython(): string | undefined {
  const run = Deno.permissions.querySync({ name: "run", command: PYTHON }).state;
  // The data goes to the temporary folder (Deno.makeTempFileSync), which is all `deno task bench` may write.
  const write = Deno.permissions.querySync({ name: "write", path: tmpdir() }).state;
  if (run !== "granted" || write !== "granted") {
    return `skipped: needs --allow-run=${PYTHON} --allow-write=${tmpdir()}`;
  }
  try {
    const probe = new Deno.Command(PYTHON, { args: ["-c", "import faiss, sklearn"], stderr: "null" })
      .outputSync();
    if (!probe.success) return "skipped: apt-get install python3-faiss python3-sklearn";
  } catch {
    return `skipped: no ${PYTHON}`;
  }
  return undefined;
}
const pythonMissing = canRunPython();

/** Writes data for the Python peers once per case; returns the file stem. */
function shareData(data: HostMatrix, labels: Int32Array): string {
  const stem = Deno.makeTempFileSync({ prefix: "eval_bench_" });
  Deno.writeFileSync(
    `${stem}.f32`,
    new Uint8Array(data.data.buffer, data.data.byteOffset, data.data.byteLength),
  );
  Deno.writeFileSync(`${stem}.i32`, new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength));
  return stem;
}

function removeData(stem: string): void {
  for (const f of [stem, `${stem}.f32`, `${stem}.i32`]) Deno.removeSync(f);
}

async function python(
  mode: string,
  stem: string,
  data: HostMatrix,
  arg: string,
): Promise<Record<string, unknown>> {
  const res = await new Deno.Command(PYTHON, {
    args: ["-c", PEER_SCRIPT, mode, stem, String(data.rows), String(data.cols), arg],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!res.success) throw new Error(new TextDecoder().decode(res.stderr).trim().split("\n").pop());
  return JSON.parse(new TextDecoder().decode(res.stdout));
}

/**
 * A Python peer as a contender; its reported time excludes interpreter start and data loading. `note`
 * turns its result into the row's note (its peak memory is appended).
 */
function pythonContender(
  name: string,
  mode: string,
  stem: string,
  data: HostMatrix,
  arg: string,
  notes: string[],
  at: number,
  note: (r: Record<string, unknown>) => string,
): Contender {
  return {
    name,
    run: async () => {
      const r = await python(mode, stem, data, arg);
      notes[at] = `${note(r)}; CPU ${sec(r.cpuMs as number)}, peak RSS +${mib(r.peakBytes as number)}`;
      return { wallMs: r.ms as number };
    },
  };
}

/** One of ours as a contender: wall time, peak GPU memory and `note` of its result in the row. */
function oursContender<T>(
  name: string,
  notes: string[],
  at: number,
  fn: () => Promise<T>,
  note: (r: T) => string,
): Contender {
  return {
    name,
    run: async () => {
      const { value, wallMs, peak, cpuMs } = await withPeak(fn);
      notes[at] = `${note(value)}; CPU ${sec(cpuMs)}, peak GPU +${mib(peak)}`;
      return { wallMs };
    },
  };
}

/**
 * Times the contenders (medians of `reps` interleaved runs after a warm-up; with `reps` 0 one run each, for
 * cases too long to repeat, whose pipelines are warmed on a small set first) and records a row each, its
 * note (`notes[i]`, filled by the runs) in the note column. When the Python peers cannot run, `pythonPeers`
 * (their name) gets a row saying why.
 */
async function measureAndRecord(
  name: string,
  contenders: readonly Contender[],
  reps: number,
  notes: readonly string[],
  work: number,
  unit: string,
  pythonPeers?: string,
): Promise<void> {
  const measured = reps > 0 ? await measure(contenders, reps) : await measure(contenders, 1, false);
  measured.forEach((m, i) => (m.error ??= notes[i]));
  record(name, measured, work, unit);
  if (pythonPeers && pythonMissing) recordSkipped(name, pythonPeers, pythonMissing);
}

function fmtRecall(r: Record<string | number, number>): string {
  return [1, 2, 4, 8].map((k) => r[k].toFixed(4)).join("/");
}

// ---------------------------------------------------------------------------------------------------
// Cases

/** Recall@K (ours: fused tiles) against faiss IndexFlatL2 with k = 9. */
async function recallCase(
  name: string,
  x: GpuBuffer<"f32">,
  set: LabeledSet,
  stem: string | undefined,
  reps: number,
) {
  const notes: string[] = [];
  const contenders: Contender[] = [
    oursContender(
      "ours: Recall@1-8, P@1",
      notes,
      0,
      () => retrievalMetrics(x, set.labels, { mapAtR: false }),
      (r) => `R@1/2/4/8 ${fmtRecall(r.recall)}`,
    ),
  ];
  if (stem) {
    contenders.push(
      pythonContender(
        "faiss IndexFlatL2 (k = 9) + numpy",
        "retrieval",
        stem,
        set.data,
        "8",
        notes,
        1,
        (r) => `R@1/2/4/8 ${fmtRecall(r.recall as Record<string, number>)}`,
      ),
    );
  }
  await measureAndRecord(name, contenders, reps, notes, set.data.rows / 1000, "kq", "faiss IndexFlatL2");
}

/** All retrieval metrics (ours: MAP@R path) against faiss IndexFlatL2 with k = largest class. */
async function mapCase(
  name: string,
  x: GpuBuffer<"f32">,
  set: LabeledSet,
  stem: string | undefined,
  reps: number,
) {
  const notes: string[] = [];
  const all = (r: { recall: Record<number, number>; mapAtR?: number; rPrecision?: number }) =>
    `R@1/2/4/8 ${fmtRecall(r.recall)} MAP@R ${r.mapAtR!.toFixed(4)} RP ${r.rPrecision!.toFixed(4)}`;
  const contenders: Contender[] = [
    oursContender(
      "ours: Recall@1-8, P@1, MAP@R, R-Precision",
      notes,
      0,
      () => retrievalMetrics(x, set.labels),
      all,
    ),
  ];
  if (stem) {
    contenders.push(
      pythonContender(
        "faiss IndexFlatL2 (k = max class) + numpy",
        "retrieval",
        stem,
        set.data,
        "0",
        notes,
        1,
        (r) => all(r as unknown as Parameters<typeof all>[0]),
      ),
    );
  }
  await measureAndRecord(name, contenders, reps, notes, set.data.rows / 1000, "kq", "faiss IndexFlatL2");
}

/** k-means + NMI: ours (GPU, 3 restarts) against scikit-learn and faiss. */
async function kmeansCase(
  name: string,
  x: GpuBuffer<"f32">,
  set: LabeledSet,
  stem: string | undefined,
  reps: number,
  faissIters: number,
) {
  const k = new Set(set.labels).size;
  const notes: string[] = [];
  const contenders: Contender[] = [
    oursContender(
      "ours: GPU k-means (3 restarts) + NMI",
      notes,
      0,
      async () => {
        const r = await kmeans(x, k, { restarts: 3 });
        return { r, nmi: nmi(set.labels, r.assignments) };
      },
      ({ r, nmi }) =>
        `NMI ${nmi.toFixed(4)}, ${r.iterations} iterations, inertia ${r.inertia.toExponential(4)}`,
    ),
  ];
  if (stem) {
    contenders.push(
      pythonContender(
        "scikit-learn KMeans (n_init 3) + NMI",
        "sklearn_kmeans",
        stem,
        set.data,
        String(k),
        notes,
        1,
        (r) =>
          `NMI ${(r.nmi as number).toFixed(4)}, ${r.iters} iterations, inertia ${
            (r.inertia as number).toExponential(4)
          }`,
      ),
      pythonContender(
        `faiss Kmeans (3 restarts, ${faissIters} iterations) + NMI`,
        "faiss_kmeans",
        stem,
        set.data,
        `${k},${faissIters}`,
        notes,
        2,
        (r) => `NMI ${(r.nmi as number).toFixed(4)}`,
      ),
    );
  }
  const peers = "scikit-learn KMeans / faiss Kmeans";
  await measureAndRecord(name, contenders, reps, notes, set.data.rows / 1000, "kpts", peers);
}

/** The call the training loop makes each epoch (Recall@K + NMI), ours only. */
async function evaluateCase(name: string, x: GpuBuffer<"f32">, set: LabeledSet, reps: number): Promise<void> {
  const notes: string[] = [];
  const contenders: Contender[] = [
    oursContender(
      "ours: evaluateEmbeddings, Recall@1-8 + NMI (per-epoch call)",
      notes,
      0,
      () => evaluateEmbeddings(x, set.labels, { mapAtR: false }),
      (r) =>
        `retrieval ${r.timings.retrievalMs.toFixed(0)} ms + k-means ${r.timings.kmeansMs.toFixed(0)} ms + ` +
        `NMI/AMI ${r.timings.nmiMs.toFixed(0)} ms; NMI ${r.nmi!.toFixed(4)} AMI ${r.ami!.toFixed(4)}`,
    ),
  ];
  await measureAndRecord(name, contenders, reps, notes, set.data.rows / 1000, "kq");
}

/** The cases of one data set, sharing one upload and one file for the Python peers. */
async function datasetCases(
  label: string,
  set: LabeledSet,
  opts: { reps: number; evaluate: boolean; map: boolean; faissIters: number },
): Promise<void> {
  if (opts.reps === 0) {
    // Compile the pipelines on a small set first, so single runs time the work.
    const warm = clustered(1, 3000, set.data.cols, 100, 1);
    await evaluateEmbeddings(warm.data, warm.labels);
    await kmeans(warm.data, 40, { maxIters: 2 });
  }
  using x = GpuBuffer.fromArray(gpu, set.data.data, [set.data.rows, set.data.cols]);
  const stem = pythonMissing ? undefined : shareData(set.data, set.labels);
  try {
    if (opts.evaluate) await evaluateCase(`evaluate ${label}`, x, set, opts.reps);
    await recallCase(`Recall@K ${label}`, x, set, stem, opts.reps);
    if (opts.map) await mapCase(`MAP@R ${label}`, x, set, stem, opts.reps);
    await kmeansCase(`k-means ${label}`, x, set, stem, opts.reps, opts.faissIters);
  } finally {
    if (stem) removeData(stem);
  }
}

/** Leave-one-out 5-NN accuracy of a 2-D layout (how well classes stay apart). */
function knn5Accuracy(y: HostMatrix, labels: Int32Array): number {
  const nn = knnBruteForce(y, 5);
  let ok = 0;
  for (let i = 0; i < y.rows; i++) {
    const votes = new Map<number, number>();
    for (let t = 0; t < 5; t++) {
      votes.set(labels[nn.indices[i * 5 + t]], (votes.get(labels[nn.indices[i * 5 + t]]) ?? 0) + 1);
    }
    if ([...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0] === labels[i]) ok++;
  }
  return ok / y.rows;
}

async function tsneCase(reps: number): Promise<void> {
  const name = "t-SNE 6,000 x 64, 750 iters";
  const set = clustered(6, 6000, 64, 10, 2.5);
  const notes: string[] = [];
  const contenders: Contender[] = [
    {
      name: "ours: host kNN + Barnes-Hut",
      run: () => {
        const t = performance.now();
        const y = tsne(set.data, { iterations: 750, quiet: true });
        const ms = performance.now() - t;
        notes[0] = `5-NN acc ${knn5Accuracy(y, set.labels).toFixed(3)}`;
        return Promise.resolve({ wallMs: ms });
      },
    },
    {
      name: "ours: GPU kNN + Barnes-Hut",
      run: async () => {
        const t = performance.now();
        const y = await tsneGpu(set.data, { iterations: 750, quiet: true });
        const ms = performance.now() - t;
        notes[1] = `5-NN acc ${knn5Accuracy(y, set.labels).toFixed(3)}`;
        return { wallMs: ms };
      },
    },
  ];
  let stem: string | undefined;
  if (!pythonMissing) {
    stem = shareData(set.data, set.labels);
    contenders.push(
      pythonContender(
        "scikit-learn TSNE (Barnes-Hut)",
        "sklearn_tsne",
        stem,
        set.data,
        "750",
        notes,
        2,
        (r) => {
          const coords = Float32Array.from(r.coords as number[]);
          return `5-NN acc ${knn5Accuracy({ rows: 6000, cols: 2, data: coords }, set.labels).toFixed(3)}`;
        },
      ),
    );
  }
  await measureAndRecord(name, contenders, reps, notes, 6, "kpts", "scikit-learn TSNE");
  if (stem) removeData(stem);
}

/** The data set cases: the set, how often to repeat, which parts, faiss Kmeans' iterations. */
const DATASETS: {
  key: string;
  label: string;
  set: () => LabeledSet;
  opts: { reps: number; evaluate: boolean; map: boolean; faissIters: number };
}[] = [
  {
    key: "10k",
    label: "10,000 x 64, 10 classes",
    set: () => clustered(10, 10_000, 64, 10, 2.5),
    opts: { reps: 3, evaluate: true, map: true, faissIters: 100 },
  },
  {
    key: "cars",
    label: "32,664 x 64, 62 classes",
    set: () => clustered(32, 32_664, 64, 62, 1.5),
    opts: { reps: 0, evaluate: true, map: true, faissIters: 100 },
  },
  {
    key: "sop",
    label: "60,502 x 64, 11,316 classes",
    set: () => sopLike(60, 60_502, 64, 11_316, 0.9),
    opts: { reps: 0, evaluate: false, map: true, faissIters: 25 },
  },
  {
    key: "100k",
    label: "100,000 x 64 random, 100 classes",
    set: () => clustered(100, 100_000, 64, 100, 4),
    opts: { reps: 0, evaluate: true, map: false, faissIters: 100 },
  },
];

// Deno bench may call a bench function more than once; each case here runs (and prints) once.
for (const d of DATASETS) {
  benchOnce(
    `evaluation ${d.label} vs faiss / scikit-learn`,
    "eval",
    () => datasetCases(d.label, d.set(), d.opts),
    !CASES.has(d.key),
  );
}

benchOnce("t-SNE 6,000 points vs scikit-learn", "eval", () => tsneCase(0), !CASES.has("tsne"));

/** Where the time goes: GPU time per kernel (timestamp queries), passes and wall, warm (second) runs. */
async function profileCase(): Promise<void> {
  const set = clustered(32, 32_664, 64, 62, 1.5);
  using x = GpuBuffer.fromArray(gpu, set.data.data, [set.data.rows, set.data.cols]);
  const parts: [string, () => Promise<unknown>][] = [
    ["Recall@{1,2,4,8}", () => retrievalMetrics(x, set.labels, { mapAtR: false })],
    ["k-means (k 62, 3 restarts)", () => kmeans(x, 62, { restarts: 3 })],
  ];
  for (const [name, fn] of parts) {
    await fn();
    const c0 = process.cpuUsage();
    const { report } = await profile(gpu, fn);
    const c = process.cpuUsage(c0);
    console.log(
      `\n${name}, 32,664 x 64, 62 classes: wall ${sec(report.wallMs)}, CPU ${
        sec((c.user + c.system) / 1000)
      }, ` +
        `GPU ${sec(report.totalMs)} (${report.source})`,
    );
    for (const [label, t] of report.byLabel) {
      console.log(`  ${label}: ${t.passes} passes, ${t.ms.toFixed(0)} ms`);
    }
  }
}

benchOnce("profile: GPU time per kernel, 32,664 x 64", "eval", profileCase, !CASES.has("profile"));

benchTable(
  "eval table",
  "eval",
  `Evaluation on ${adapter}; medians of interleaved runs or single runs (Python peers timed inside Python, ` +
    `data loaded); rate = thousand queries or points per second`,
);
