/**
 * Peers and helpers for the benchmarks (distance_bench.ts, topk_bench.ts, eval_bench.ts, fanng_bench.ts):
 * tfjs-core on its WebGPU backend and onnxruntime-web on wasm doing the same computation, interleaved
 * repetitions with medians (the machine is shared, so single timings are noise), run-once bench bodies,
 * and the result table. Not a bench file itself (deno bench only runs `*_bench.ts`).
 * @module
 */
import type { InferenceSession } from "npm:onnxruntime-web@1.30.0";
import { ProtoWriter } from "../../lib/backbone/protobuf.ts";
import type { Gpu } from "../../lib/gpu/device.ts";
import { profile } from "../../lib/gpu/timing.ts";

// ---------------------------------------------------------------------------------------------------
// Timing

/** Median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** A method under test: one repetition returns its wall ms and, when it has them, GPU ms. */
export interface Contender {
  name: string;
  run: () => Promise<{ wallMs: number; gpuMs?: number }>;
  /** Checks the contender's result after the warm-up; throws if it is wrong (the row then says so). */
  verify?: () => Promise<void>;
}

/** Medians per contender; `undefined` when it could not run (the reason is kept). */
export interface Measured {
  name: string;
  wallMs?: number;
  gpuMs?: number;
  error?: string;
}

/**
 * Runs each contender once as warm-up (compiles pipelines, uploads; skipped when `warmup` is false, for
 * runs so long that the caller warms up on a small case instead), then `reps` rounds in which every
 * contender runs once, interleaved so that load from other processes hits them alike; returns medians.
 */
export async function measure(
  contenders: readonly Contender[],
  reps: number,
  warmup = true,
): Promise<Measured[]> {
  const walls: number[][] = contenders.map(() => []);
  const gpus: number[][] = contenders.map(() => []);
  const errors: (string | undefined)[] = contenders.map(() => undefined);
  for (let r = warmup ? -1 : 0; r < reps; r++) {
    for (const [i, c] of contenders.entries()) {
      if (errors[i]) continue;
      try {
        const t = await c.run();
        if (r === (warmup ? -1 : 0)) await c.verify?.();
        if (r >= 0) {
          walls[i].push(t.wallMs);
          if (t.gpuMs !== undefined) gpus[i].push(t.gpuMs);
        }
      } catch (e) {
        errors[i] = (e as Error).message.split("\n")[0].slice(0, 120);
      }
    }
  }
  return contenders.map((c, i) => ({
    name: c.name,
    wallMs: errors[i] ? undefined : median(walls[i]),
    gpuMs: gpus[i].length ? median(gpus[i]) : undefined,
    error: errors[i],
  }));
}

/**
 * Runs GPU work `fn` (which submits and awaits its batches) with timestamps on. Wall time is taken inside
 * the profiled region, from the start of encoding until `fn`'s last submission completed: one completion
 * wait, like a peer's one readback (profile()'s own final wait would add Deno's ~10 ms polling latency).
 */
export async function timedGpu(
  gpu: Gpu,
  fn: () => Promise<void>,
): Promise<{ wallMs: number; gpuMs?: number }> {
  let wallMs = 0;
  const { report } = await profile(gpu, async () => {
    const t0 = performance.now();
    await fn();
    wallMs = performance.now() - t0;
  });
  return { wallMs, gpuMs: report.source === "timestamps" ? report.totalMs : undefined };
}

/**
 * A bench body for `Deno.bench`: the first call runs `table` (the interleaved comparison that records a
 * table row); `deno bench` calls a body several times, and later calls run only `again` (ours, once), so
 * its own per-iteration statistics describe ours.
 */
export function firstThen(table: () => Promise<void>, again: () => Promise<unknown>): () => Promise<void> {
  let done = false;
  return async () => {
    if (done) {
      await again();
      return;
    }
    done = true;
    await table();
  };
}

/** A bench body that runs `fn` on the first call only (`deno bench` may call a body more than once). */
export function once(fn: () => Promise<void>): () => Promise<void> {
  return firstThen(fn, () => Promise.resolve());
}

/** Registers a bench of one iteration whose body runs once (see {@link once}). */
export function benchOnce(name: string, group: string, fn: () => Promise<void>, ignore = false): void {
  Deno.bench({ name, group, n: 1, warmup: 0, ignore, fn: once(fn) });
}

/**
 * Registers the bench that prints every row recorded in this process under `title`; register it last
 * (deno bench runs a file's benches in order). `before` runs first (e.g. frees the cases' buffers).
 */
export function benchTable(name: string, group: string, title: string, before?: () => void): void {
  benchOnce(name, group, () => {
    before?.();
    printTable(title);
    return Promise.resolve();
  });
}

// ---------------------------------------------------------------------------------------------------
// The table

/** One printed row: a case, a contender, its time and throughput, and its ratio to the first row. */
export interface Row {
  case: string;
  method: string;
  wallMs?: number;
  gpuMs?: number;
  /** Work per run in units of `unit` (e.g. GFLOP), for the rate column. */
  work: number;
  unit: string;
  /** Ours / peer throughput (> 1 = ours faster), filled for peers. */
  oursOver?: number;
  note?: string;
}

const rows: Row[] = [];

/** Adds the measured contenders of one case; the first one is ours, the rest are peers. */
export function record(caseName: string, measured: readonly Measured[], work: number, unit: string): Row[] {
  const ours = measured[0];
  const added = measured.map((m, i): Row => ({
    case: caseName,
    method: m.name,
    wallMs: m.wallMs,
    gpuMs: m.gpuMs,
    work,
    unit,
    oursOver: i > 0 && m.wallMs && ours.wallMs ? m.wallMs / ours.wallMs : undefined,
    note: m.error,
  }));
  rows.push(...added);
  console.log(formatTable(added, false));
  return added;
}

/** Adds a row for a peer that cannot run a case at all (e.g. the matrix does not fit it). */
export function recordSkipped(caseName: string, method: string, why: string): void {
  rows.push({ case: caseName, method, work: 0, unit: "", note: why });
}

/** `x` with `digits` decimals, or "-" when it is missing or not finite. */
export function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}

/** Rows of cells as a fixed-width text table, each column as wide as its widest cell. */
export function textTable(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, j) => Math.max(...rows.map((row) => row[j].length)));
  return rows.map((row) => "| " + row.map((v, j) => v.padEnd(widths[j])).join(" | ") + " |").join("\n");
}

/** The rows as a fixed-width table; `header` adds the column names. */
export function formatTable(list: readonly Row[], header = true): string {
  const cols = ["case", "method", "wall ms", "GPU ms", "rate (wall)", "ours / peer", "note"];
  const body = list.map((r) => [
    r.case,
    r.method,
    fmt(r.wallMs),
    fmt(r.gpuMs),
    r.wallMs ? `${fmt(r.work / (r.wallMs / 1000), 2)} ${r.unit}/s` : "-",
    r.oursOver ? `${fmt(r.oursOver, 1)}x` : "",
    r.note ?? "",
  ]);
  return textTable(header ? [cols, ...body] : body);
}

/** Prints every row recorded in this process under a header naming the adapter. */
export function printTable(title: string): void {
  console.log(`\n${title}\n${formatTable(rows)}\n`);
}

// ---------------------------------------------------------------------------------------------------
// tfjs-core on its WebGPU backend (pinned), loaded lazily

type Tf = typeof import("npm:@tensorflow/tfjs-core@4.22.0");
let tfPromise: Promise<Tf> | undefined;

/** tfjs-core with the webgpu backend active (its own WebGPU device). */
export function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const tf = await import("npm:@tensorflow/tfjs-core@4.22.0");
    await import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
    if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs webgpu backend failed to initialise");
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

type Tensor = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor;

/** Waits until `t` is computed by reading one element (a full readback would dominate the timing). */
export async function tfSync(tf: Tf, t: Tensor): Promise<void> {
  const begin = new Array(t.rank).fill(0);
  const one = tf.slice(t, begin, new Array(t.rank).fill(1));
  await one.data();
  one.dispose();
}

/** tfjs: squared L2 distances with the same expansion as ours, max(|q|^2 + |b|^2 - 2 q.b, 0). */
export function tfPairwiseSqL2(tf: Tf, q: Tensor, b: Tensor): Tensor {
  return tf.tidy(() => {
    const qn = tf.sum(tf.mul(q, q), 1, true);
    const bn = tf.sum(tf.mul(b, b), 1);
    const qb = tf.matMul(q, b, false, true);
    return tf.relu(tf.sub(tf.add(qn, bn), tf.mul(qb, 2)));
  });
}

/** tfjs: the k smallest per row (topk of the negated values), values and indices. */
export function tfTopkSmallest(tf: Tf, x: Tensor, k: number): { values: Tensor; indices: Tensor } {
  return tf.tidy(() => {
    const r = tf.topk(tf.neg(x), k, true);
    return { values: tf.neg(r.values), indices: r.indices };
  });
}

// ---------------------------------------------------------------------------------------------------
// onnxruntime-web (wasm), with tiny graphs written as protobuf bytes

type Ort = typeof import("npm:onnxruntime-web@1.30.0");
let ortPromise: Promise<Ort> | undefined;

/** onnxruntime-web on wasm with one thread per core. */
export function loadOrt(): Promise<Ort> {
  ortPromise ??= import("npm:onnxruntime-web@1.30.0").then((ort) => {
    ort.env.wasm.numThreads = Math.max(1, navigator.hardwareConcurrency ?? 1);
    ort.env.logLevel = "error";
    return ort;
  });
  return ortPromise;
}

/**
 * onnxruntime-web as a contender: a run times `session.run(feeds)` and frees the outputs after the clock
 * stops; `check` gets the outputs of the verification run (and throws when they are wrong).
 */
export function ortContender(
  session: InferenceSession,
  feeds: InferenceSession.FeedsType,
  check: (out: InferenceSession.ReturnType) => void,
): Contender {
  const free = (out: InferenceSession.ReturnType) => Object.values(out).forEach((t) => t.dispose());
  return {
    name: "onnxruntime-web wasm",
    run: async () => {
      const t0 = performance.now();
      const out = await session.run(feeds);
      const wallMs = performance.now() - t0;
      free(out);
      return { wallMs };
    },
    verify: async () => {
      const out = await session.run(feeds);
      check(out);
      free(out);
    },
  };
}

const FLOAT = 1, INT64 = 7;
const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS = 7;

type Attr = { name: string; f?: number; i?: number; ints?: number[] };

function attribute(a: Attr): Uint8Array {
  const w = new ProtoWriter().string(1, a.name);
  if (a.f !== undefined) w.float(2, a.f).varint(20, ATTR_FLOAT);
  else if (a.i !== undefined) w.varint(3, a.i).varint(20, ATTR_INT);
  else w.packedVarints(8, a.ints ?? []).varint(20, ATTR_INTS);
  return w.finish();
}

function node(op: string, inputs: string[], outputs: string[], attrs: Attr[] = []): Uint8Array {
  const w = new ProtoWriter();
  inputs.forEach((s) => w.string(1, s));
  outputs.forEach((s) => w.string(2, s));
  w.string(3, `${op}_${outputs[0]}`).string(4, op);
  attrs.forEach((a) => w.bytes(5, attribute(a)));
  return w.finish();
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): Uint8Array {
  const shape = new ProtoWriter();
  for (const d of dims) {
    shape.bytes(
      1,
      typeof d === "number"
        ? new ProtoWriter().varint(1, d).finish()
        : new ProtoWriter().string(2, d).finish(),
    );
  }
  const tensorType = new ProtoWriter().varint(1, elemType).bytes(2, shape.finish()).finish();
  const type = new ProtoWriter().bytes(1, tensorType).finish();
  return new ProtoWriter().string(1, name).bytes(2, type).finish();
}

function int64Initializer(name: string, values: number[]): Uint8Array {
  return new ProtoWriter().packedVarints(1, [values.length]).varint(2, INT64).packedVarints(7, values)
    .string(8, name).finish();
}

function model(
  nodes: Uint8Array[],
  inputs: Uint8Array[],
  outputs: Uint8Array[],
  inits: Uint8Array[] = [],
): Uint8Array {
  const g = new ProtoWriter();
  nodes.forEach((n) => g.bytes(1, n));
  g.string(2, "bench");
  inits.forEach((t) => g.bytes(5, t));
  inputs.forEach((v) => g.bytes(11, v));
  outputs.forEach((v) => g.bytes(12, v));
  const opset = new ProtoWriter().string(1, "").varint(2, 13).finish();
  return new ProtoWriter().varint(1, 7).string(2, "smartmining-bench").bytes(7, g.finish()).bytes(8, opset)
    .finish();
}

/** Nodes computing dist = relu(Gemm(q, b^T, alpha -2) + |b|^2 + |q|^2) from inputs "q" [M,D] and "b" [N,D]. */
function distanceNodes(out: string): Uint8Array[] {
  return [
    node("ReduceSumSquare", ["q"], ["qn"], [{ name: "axes", ints: [1] }, { name: "keepdims", i: 1 }]),
    node("ReduceSumSquare", ["b"], ["bn"], [{ name: "axes", ints: [1] }, { name: "keepdims", i: 0 }]),
    node("Gemm", ["q", "b", "bn"], ["g"], [{ name: "alpha", f: -2 }, { name: "beta", f: 1 }, {
      name: "transB",
      i: 1,
    }]),
    node("Add", ["g", "qn"], ["s"]),
    node("Relu", ["s"], [out]),
  ];
}

/** ONNX model: pairwise squared L2 distances "dist" [M,N] of "q" [M,D] to "b" [N,D]. */
export function onnxDistanceModel(d: number): Uint8Array {
  return model(distanceNodes("dist"), [valueInfo("q", FLOAT, ["M", d]), valueInfo("b", FLOAT, ["N", d])], [
    valueInfo("dist", FLOAT, ["M", "N"]),
  ]);
}

/** ONNX model: the k smallest of each row of "x" [M,N] ("values", "indices"), sorted. */
export function onnxTopkModel(k: number): Uint8Array {
  return model(
    [node("TopK", ["x", "k"], ["values", "indices"], [{ name: "axis", i: -1 }, { name: "largest", i: 0 }, {
      name: "sorted",
      i: 1,
    }])],
    [valueInfo("x", FLOAT, ["M", "N"])],
    [valueInfo("values", FLOAT, ["M", k]), valueInfo("indices", INT64, ["M", k])],
    [int64Initializer("k", [k])],
  );
}

/** ONNX model: distances then TopK, the k nearest base rows of every query. */
export function onnxKnnModel(d: number, k: number): Uint8Array {
  return model(
    [
      ...distanceNodes("dist"),
      node("TopK", ["dist", "k"], ["values", "indices"], [
        { name: "axis", i: -1 },
        { name: "largest", i: 0 },
        {
          name: "sorted",
          i: 1,
        },
      ]),
    ],
    [valueInfo("q", FLOAT, ["M", d]), valueInfo("b", FLOAT, ["N", d])],
    [valueInfo("values", FLOAT, ["M", k]), valueInfo("indices", INT64, ["M", k])],
    [int64Initializer("k", [k])],
  );
}
