/**
 * Backbone and image pipeline throughput (`deno bench --allow-read --allow-env tasks/bench/backbone_bench.ts`).
 *
 * - backbone: images/s of a GoogLeNet-architecture ONNX graph (real layer widths, 224x224, random
 *   weights; same size and FLOPs as the Model Zoo file) exposed at pool5, in batches of 8, through
 *   OnnxBackbone on wasm (the toolkit's CPU path; DML_BENCH_THREADS sets its threads), against onnxruntime-web's wasm EP
 *   with one thread (peer, same process), and on the WebGPU EP when the adapter is hardware (or when
 *   DML_BENCH_WEBGPU=1 forces it on a software adapter).
 * - decode: a 500x375 JPEG (the typical CUB-200-2011 size) decoded with jpeg-js, and decoded plus
 *   preprocessed (resize shorter side 256, centre crop 224, caffe normalisation into the NCHW batch),
 *   and 1 decode + 4 views, and decode + crop spread over DecodePool workers; the ratio to the backbone's
 *   time per image says how much of a run decoding costs.
 * At the end a table prints images/s (median over iterations) and the ratios.
 * @module
 */
import { OnnxBackbone } from "../../lib/backbone/onnx.ts";
import { exposeOutput, readOnnxModel, resolveOutputName } from "../../lib/backbone/onnx_graph.ts";
import { defaultSpec, viewCrop, writeView } from "../../lib/backbone/preprocess.ts";
import { DecodePool } from "../../lib/backbone/decode_pool.ts";
import { decodeImage, encodeJpeg } from "../../lib/data/image.ts";
import { Rng } from "../../lib/util/rng.ts";
import { buildGoogLeNet } from "./_googlenet.ts";
import { syntheticImage } from "./_synthetic_image.ts";

const BATCH = 8;
const SIZE = 224;
const model = buildGoogLeNet({ seed: 1 }).bytes;
const input = new Rng(1).uniformArray(BATCH * 3 * SIZE * SIZE, -100, 100);
const log = () => {};

const times = new Map<string, { perIter: number; ms: number[] }>();
function timed(name: string, perIter: number, fn: () => Promise<unknown> | unknown): () => Promise<void> {
  times.set(name, { perIter, ms: [] });
  return async () => {
    const t0 = performance.now();
    await fn();
    times.get(name)!.ms.push(performance.now() - t0);
  };
}

// DML_BENCH_THREADS overrides the toolkit's default wasm thread count (half the cores, at most 4).
const threadsEnv = Deno.env.get("DML_BENCH_THREADS");
const cpu = await OnnxBackbone.load(model, {
  provider: "wasm",
  threads: threadsEnv ? Number(threadsEnv) : undefined,
  log,
});
Deno.bench({
  name: `backbone wasm ${cpu.providerDetail} (batch ${BATCH})`,
  group: "backbone",
  baseline: true,
  n: 4,
  warmup: 1,
  fn: timed(`backbone: ${cpu.providerDetail}`, BATCH, () => cpu.run(input, BATCH, SIZE)),
});

// Peer: onnxruntime-web's wasm EP in one thread (the WebGPU build's CPU EP, a separate module instance).
const ortSingle = await import("npm:onnxruntime-web@1.30.0/webgpu");
ortSingle.env.wasm.numThreads = 1;
ortSingle.env.logLevel = "error";
const edited = exposeOutput(model, resolveOutputName(readOnnxModel(model), "pool5")).model;
const single = await ortSingle.InferenceSession.create(edited, {
  executionProviders: ["wasm"],
  logSeverityLevel: 3,
});
Deno.bench({
  name: `peer: onnxruntime-web wasm, 1 thread (batch ${BATCH})`,
  group: "backbone",
  n: 4,
  warmup: 1,
  fn: timed("peer: onnxruntime-web wasm, 1 thread", BATCH, async () => {
    const t = new ortSingle.Tensor("float32", input, [BATCH, 3, SIZE, SIZE]);
    await single.run({ data_0: t });
  }),
});

const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const software = !adapter || /llvmpipe|lavapipe|swiftshader/i.test(adapter.info.description) ||
  (adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter;
if (adapter && (!software || Deno.env.get("DML_BENCH_WEBGPU") === "1")) {
  const gpu = await OnnxBackbone.load(model, { provider: "webgpu", log });
  const n = software ? 1 : BATCH;
  Deno.bench({
    name: `backbone ${gpu.providerDetail.split(";")[0]}) (batch ${n})`,
    group: "backbone",
    n: software ? 2 : 10,
    warmup: 1,
    fn: timed(`backbone: ${gpu.providerDetail.split(";")[0]})`, n, () => gpu.run(input, n, SIZE)),
  });
}

const jpeg = encodeJpeg(syntheticImage(17, 3, 500, 375), 90);
const spec = defaultSpec("caffe");
const out = new Float32Array(4 * 3 * SIZE * SIZE);
Deno.bench({
  name: "decode 500x375 JPEG + centre crop 224 (caffe)",
  group: "decode",
  baseline: true,
  fn: timed("decode + resize/crop 224 (1 view)", 1, () => {
    const img = decodeImage(jpeg);
    writeView(img, viewCrop(img.width, img.height, spec, 0, 0, 0), spec, out, 0);
  }),
});
Deno.bench({
  name: "decode 500x375 JPEG only",
  group: "decode",
  fn: timed("decode only", 1, () => decodeImage(jpeg)),
});
Deno.bench({
  name: "decode + 4 views (centre + 3 random crops with flips)",
  group: "decode",
  fn: timed("decode + 4 views (per view)", 4, () => {
    const img = decodeImage(jpeg);
    for (let v = 0; v < 4; v++) {
      writeView(img, viewCrop(img.width, img.height, spec, v, 0, 1), spec, out, v * 3 * SIZE * SIZE);
    }
  }),
});

// The same work on DecodePool workers (what extractFeatures uses on machines with more than 2 cores).
const workers = Math.max(2, Math.min(8, navigator.hardwareConcurrency - 1));
const pool = new DecodePool(workers);
const JOBS = 16;
Deno.bench({
  name: `decode + centre crop on ${workers} workers (${JOBS} images per iter)`,
  group: "decode",
  n: 10,
  warmup: 2,
  fn: timed(`decode + resize/crop 224 on ${workers} workers`, JOBS, async () => {
    await Promise.all(
      Array.from(
        { length: JOBS },
        (_, i) => pool.decode({ path: "bench.jpg", bytes: jpeg, image: i, views: 1, seed: 0, spec }),
      ),
    );
  }),
});
globalThis.addEventListener("unload", () => pool.close());

globalThis.addEventListener("unload", () => {
  const rows = [...times].filter(([, t]) => t.ms.length).map(([name, t]) => {
    const sorted = [...t.ms].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    return { name, perImageMs: median / t.perIter, imagesPerS: (1000 * t.perIter) / median };
  });
  if (!rows.length) return;
  const base = rows.find((r) => r.name.startsWith("backbone: wasm"));
  console.log(`\nbackbone and decode throughput (median; ${navigator.hardwareConcurrency} CPU cores)`);
  console.log("| case | ms / image | images / s | vs toolkit wasm backbone |");
  console.log("|---|---|---|---|");
  for (const r of rows) {
    const ratio = base ? `${(base.perImageMs / r.perImageMs).toFixed(2)}x` : "";
    console.log(`| ${r.name} | ${r.perImageMs.toFixed(1)} | ${r.imagesPerS.toFixed(1)} | ${ratio} |`);
  }
});
