/**
 * Evaluation benchmark: evaluateEmbeddings (Recall@{1,2,4,8}, MAP@R, R-Precision, k-means NMI/AMI) on a
 * 10,000 x 64 set shaped like Fashion-MNIST test embeddings (10 classes) and a 100,000 x 64 random set
 * (100 classes), and t-SNE of 6,000 points, each against peers run in the same process on the same data:
 *
 * - retrieval: faiss IndexFlatL2 (exact kNN with k = largest class size, as pytorch-metric-learning's
 *   AccuracyCalculator with k="max_bin_count") plus numpy for the metrics;
 * - k-means: scikit-learn KMeans (k-means++, n_init 3, Lloyd) and faiss Kmeans (3 restarts);
 * - t-SNE: scikit-learn TSNE (Barnes-Hut, angle 0.5, same perplexity and iterations).
 *
 * The Python peers (Debian's python3-faiss and python3-sklearn) time themselves from inside Python, data
 * already loaded; they run when the bench has --allow-run and --allow-write and /usr/bin/python3 has the
 * modules, and are listed as skipped otherwise. Quality is printed next to time (metric values, NMI,
 * t-SNE 5-NN accuracy in 2-D), so faster never means wrong. The 10,000-point case runs a warm-up and
 * three repetitions interleaved with its peers (medians shown); the 100,000-point and t-SNE cases run
 * once each.
 *
 * Run: `deno bench --allow-read --allow-write --allow-env --allow-run tasks/bench/eval_bench.ts`
 * (EVAL_BENCH_LARGE=0 skips the 100,000-point case, the longest on a software adapter).
 * @module
 */
import { tmpdir } from "node:os";
import { evaluateEmbeddings } from "../../lib/eval/evaluate.ts";
import { kmeans } from "../../lib/eval/kmeans.ts";
import { nmi } from "../../lib/eval/nmi.ts";
import { retrievalMetrics } from "../../lib/eval/retrieval.ts";
import { knnBruteForce, tsne, tsneGpu } from "../../lib/eval/tsne.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { benchOnce, benchTable, type Contender, measure, record, recordSkipped } from "./_peers.ts";

const gpu = await getGpu();
const adapter = gpu.describe();
const PYTHON = "/usr/bin/python3";

/** Embeddings with their labels. */
interface LabeledSet {
  data: HostMatrix;
  labels: Int32Array;
}

/** Clustered data: class centres N(0, 1) per dim, points at `spread` around them; labels uniform. */
function clustered(seed: number, n: number, dim: number, classes: number, spread: number): LabeledSet {
  const rng = new Rng(seed);
  const centres = rng.normalArray(classes * dim);
  const labels = new Int32Array(n).map(() => rng.int(classes));
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) data[i * dim + d] = centres[labels[i] * dim + d] + spread * rng.normal();
  }
  return { data: { rows: n, cols: dim, data }, labels };
}

// ---------------------------------------------------------------------------------------------------
// Python peers

const PEER_SCRIPT = `
import json, sys, time
import numpy as np
mode, path, n, d, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = np.fromfile(path + ".f32", dtype=np.float32).reshape(n, d)
y = np.fromfile(path + ".i32", dtype=np.int32)
out = {}
t0 = time.perf_counter()
if mode == "retrieval":
    import faiss
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    k = int(counts.max())
    r = counts[inv] - 1
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
        mask = np.arange(k)[None, :] < rr[:, None]
        rel = eq & mask
        cum = np.cumsum(rel, 1)
        prec = cum * rel / np.arange(1, k + 1)[None, :]
        ap_sum += np.sum(prec.sum(1)[u] / rr[u])
        rp_sum += np.sum(rel.sum(1)[u] / rr[u])
    m = used.sum()
    out = {"recall": {str(kk): hits[i] / m for i, kk in enumerate(ks)}, "mapAtR": ap_sum / m, "rPrecision": rp_sum / m}
elif mode == "sklearn_kmeans":
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score as nmi
    k = int(arg)
    km = KMeans(n_clusters=k, init="k-means++", n_init=3, max_iter=100, random_state=0, algorithm="lloyd").fit(x)
    out = {"nmi": nmi(y, km.labels_), "inertia": float(km.inertia_)}
elif mode == "faiss_kmeans":
    import faiss
    from sklearn.metrics import normalized_mutual_info_score as nmi
    k = int(arg)
    km = faiss.Kmeans(d, k, niter=100, nredo=3, seed=1)
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
  arg = "0",
): Promise<Record<string, unknown>> {
  const res = await new Deno.Command(PYTHON, {
    args: ["-c", PEER_SCRIPT, mode, stem, String(data.rows), String(data.cols), arg],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!res.success) throw new Error(new TextDecoder().decode(res.stderr).trim().split("\n").pop());
  return JSON.parse(new TextDecoder().decode(res.stdout));
}

/** A Python peer as a contender; its reported time excludes interpreter start and data loading. */
function pythonContender(
  name: string,
  mode: string,
  stem: string,
  data: HostMatrix,
  arg: string,
  keep: (r: Record<string, unknown>) => void,
): Contender {
  return {
    name,
    run: async () => {
      const r = await python(mode, stem, data, arg);
      keep(r);
      return { wallMs: r.ms as number };
    },
  };
}

/**
 * Times the contenders (medians of `reps` interleaved runs after a warm-up; with `reps` 0 one run each, for
 * cases too long to repeat, whose pipelines are warmed on a small set first) and records a row each, its
 * quality note (`notes[i]`, filled by the runs) in the note column. When the Python peers cannot run,
 * `pythonPeers` (their name) gets a row saying why.
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

/** Retrieval metrics: ours (all metrics; Recall only unless `fullOnly`) against faiss + numpy. */
async function retrievalCase(
  name: string,
  x: GpuBuffer<"f32">,
  set: LabeledSet,
  stem: string | undefined,
  reps: number,
  fullOnly: boolean,
): Promise<void> {
  const notes: string[] = [];
  const contenders: Contender[] = [{
    name: "ours: Recall@1-8, P@1, MAP@R, R-Precision",
    run: async () => {
      const t = performance.now();
      const r = await retrievalMetrics(x, set.labels);
      notes[0] = `R@1/2/4/8 ${fmtRecall(r.recall)} MAP@R ${r.mapAtR!.toFixed(4)} RP ${
        r.rPrecision!.toFixed(4)
      }`;
      return { wallMs: performance.now() - t };
    },
  }];
  if (!fullOnly) {
    contenders.push({
      name: "ours: Recall@1-8, P@1 only",
      run: async () => {
        const t = performance.now();
        const r = await retrievalMetrics(x, set.labels, { mapAtR: false });
        notes[1] = `R@1/2/4/8 ${fmtRecall(r.recall)}`;
        return { wallMs: performance.now() - t };
      },
    });
  }
  if (stem) {
    const at = contenders.length;
    contenders.push(
      pythonContender("faiss IndexFlatL2 (k = max class) + numpy", "retrieval", stem, set.data, "0", (r) => {
        notes[at] = `R@1/2/4/8 ${fmtRecall(r.recall as Record<string, number>)} MAP@R ${
          (r.mapAtR as number).toFixed(4)
        } RP ${(r.rPrecision as number).toFixed(4)}`;
      }),
    );
  }
  const peers = "faiss IndexFlatL2 + numpy";
  await measureAndRecord(name, contenders, reps, notes, set.data.rows / 1000, "kq", peers);
}

/** k-means + NMI: ours (GPU, 3 restarts) against scikit-learn and (optionally) faiss. */
async function kmeansCase(
  name: string,
  x: GpuBuffer<"f32">,
  set: LabeledSet,
  stem: string | undefined,
  reps: number,
  withFaiss: boolean,
): Promise<void> {
  const k = new Set(set.labels).size;
  const notes: string[] = [];
  const contenders: Contender[] = [{
    name: "ours: GPU k-means++ (3 restarts) + NMI",
    run: async () => {
      const t = performance.now();
      const r = await kmeans(x, k, { restarts: 3 });
      const v = nmi(set.labels, r.assignments);
      notes[0] = `NMI ${v.toFixed(4)}, ${r.iterations} iterations, inertia ${r.inertia.toExponential(4)}`;
      return { wallMs: performance.now() - t };
    },
  }];
  if (stem) {
    contenders.push(
      pythonContender(
        "scikit-learn KMeans (n_init 3) + NMI",
        "sklearn_kmeans",
        stem,
        set.data,
        String(k),
        (r) => {
          notes[1] = `NMI ${(r.nmi as number).toFixed(4)}, inertia ${(r.inertia as number).toExponential(4)}`;
        },
      ),
    );
    if (withFaiss) {
      contenders.push(
        pythonContender("faiss Kmeans (3 restarts) + NMI", "faiss_kmeans", stem, set.data, String(k), (r) => {
          notes[2] = `NMI ${(r.nmi as number).toFixed(4)}`;
        }),
      );
    }
  }
  const peers = "scikit-learn KMeans / faiss Kmeans";
  await measureAndRecord(name, contenders, reps, notes, set.data.rows / 1000, "kpts", peers);
}

/** The call the training loop makes each epoch, and the full evaluation, end to end (ours only). */
async function evaluateCase(
  name: string,
  x: GpuBuffer<"f32">,
  set: LabeledSet,
  reps: number,
  full: boolean,
): Promise<void> {
  const notes: string[] = [];
  const variants: [string, boolean][] = [["Recall@1-8 + NMI (per-epoch call)", false]];
  if (full) variants.push(["all metrics", true]);
  const contenders: Contender[] = variants.map(([what, mapAtR], i) => ({
    name: `ours: evaluateEmbeddings, ${what}`,
    run: async () => {
      const t = performance.now();
      const r = await evaluateEmbeddings(x, set.labels, { mapAtR });
      notes[i] =
        `retrieval ${r.timings.retrievalMs.toFixed(0)} ms + k-means ${r.timings.kmeansMs.toFixed(0)} ms; ` +
        `NMI ${r.nmi!.toFixed(4)} AMI ${r.ami!.toFixed(4)}`;
      return { wallMs: performance.now() - t };
    },
  }));
  await measureAndRecord(name, contenders, reps, notes, set.data.rows / 1000, "kq");
}

/**
 * All cases of one data set, sharing one upload and one file for the Python peers. `large`: one run of
 * each and fewer variants, to keep a software adapter within minutes.
 */
async function datasetCases(label: string, set: LabeledSet, large: boolean): Promise<void> {
  using x = GpuBuffer.fromArray(gpu, set.data.data, [set.data.rows, set.data.cols]);
  const stem = pythonMissing ? undefined : shareData(set.data, set.labels);
  const reps = large ? 0 : 3;
  try {
    await evaluateCase(`evaluate ${label}`, x, set, reps, !large);
    await retrievalCase(`retrieval ${label}`, x, set, stem, reps, large);
    await kmeansCase(`k-means ${label}`, x, set, stem, reps, !large);
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
      pythonContender("scikit-learn TSNE (Barnes-Hut)", "sklearn_tsne", stem, set.data, "750", (r) => {
        const coords = Float32Array.from(r.coords as number[]);
        notes[2] = `5-NN acc ${knn5Accuracy({ rows: 6000, cols: 2, data: coords }, set.labels).toFixed(3)}`;
      }),
    );
  }
  await measureAndRecord(name, contenders, reps, notes, 6, "kpts", "scikit-learn TSNE");
  if (stem) removeData(stem);
}

// Deno bench may call a bench function more than once; each case here runs (and prints) once.
benchOnce("evaluation 10,000 x 64 (10 classes) vs faiss / scikit-learn", "eval", async () => {
  await datasetCases("10,000 x 64, 10 classes", clustered(10, 10_000, 64, 10, 2.5), false);
});

benchOnce(
  "evaluation 100,000 x 64 random (100 classes) vs faiss / scikit-learn",
  "eval",
  async () => {
    const warm = clustered(1, 3000, 64, 100, 4);
    await evaluateEmbeddings(warm.data, warm.labels); // compiles the pipelines
    await datasetCases("100,000 x 64 random, 100 classes", clustered(100, 100_000, 64, 100, 4), true);
  },
  Deno.env.get("EVAL_BENCH_LARGE") === "0",
);

benchOnce("t-SNE 6,000 points vs scikit-learn", "eval", () => tsneCase(0));

benchTable(
  "eval table",
  "eval",
  `Evaluation on ${adapter}; medians of interleaved runs (Python peers timed inside Python, data loaded); ` +
    `rate = thousand queries or points per second`,
);
