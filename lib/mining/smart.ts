/**
 * Smart mining (docs/method.md section 3): for every anchor a,
 *   eps_a = squared distance to its nearest other sample (any class),
 *   r_a   = kappa * eps_a (the exclusion boundary),
 *   n     = the nearest sample of another class with d(a, n) > r_a,
 *   p     = argmin { d(a, p) : same class, p != a, d(a, p) > d(a, n) } (the softest positive still harder
 *           than the negative).
 * Anchors with no qualifying n or p get -1 and fall back to random triplets when batches are assembled.
 *
 * Everything runs on the GPU without a host round trip between steps: the neighbour searches through a
 * {@link NeighbourSearch} (FANNG graph or exact brute force; eps_a, the radius and the filtered search stay
 * on the GPU), then the positives in one fused pass of distance tiles reduced in registers
 * (kernels/eval_tiles.wgsl `nearest`: same class, not itself, d > d(a, n) read from the GPU's dan; no
 * distance matrix is stored); one readback at the end. `mineSmartRef` is the plain-TS exact
 * reference (kappa taken in f32, like the GPU).
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { encodePrepareRows, sqL2Ref } from "../ops/distance.ts";
import { classTileRanges, encodeNearest } from "../eval/tiles.ts";
import type { HostMatrix } from "../util/matrix.ts";
import type { ClassIndex } from "./classes.ts";
import type { NeighbourSearch, SearchProgress } from "./search.ts";

/** Per-anchor mining outcome; -1 where nothing qualified. */
export interface SmartMining {
  /** eps_a: distance to the anchor's nearest neighbour of any label. */
  eps: Float32Array;
  /** The mined negative per anchor (-1: none). */
  negative: Int32Array;
  /** d(a,n) per anchor. */
  dan: Float32Array;
  /** The mined positive per anchor (-1: none). */
  positive: Int32Array;
  /** d(a,p) per anchor. */
  dap: Float32Array;
  /** Mean distance evaluations per anchor in the negative search (graph search), when known. */
  evaluations?: number;
}

const NONE = 0xffffffff;

/** Exact plain-TS smart mining (O(N^2 D)); the test oracle for {@link mineSmart}. Ties: smaller index. */
export function mineSmartRef(emb: HostMatrix, classes: ClassIndex, kappa: number): SmartMining {
  const n = emb.rows;
  const out: SmartMining = {
    eps: new Float32Array(n).fill(Infinity),
    negative: new Int32Array(n).fill(-1),
    dan: new Float32Array(n).fill(Infinity),
    positive: new Int32Array(n).fill(-1),
    dap: new Float32Array(n).fill(Infinity),
  };
  const d = new Float32Array(n);
  for (let a = 0; a < n; a++) {
    for (let j = 0; j < n; j++) d[j] = Math.fround(sqL2Ref(emb, a, emb, j));
    let eps = Infinity;
    for (let j = 0; j < n; j++) if (j !== a && d[j] < eps) eps = d[j];
    out.eps[a] = eps;
    const radius = Math.fround(Math.fround(kappa) * eps); // kappa in f32, as on the GPU
    let neg = -1;
    for (let j = 0; j < n; j++) {
      if (classes.labels[j] !== classes.labels[a] && d[j] > radius && (neg < 0 || d[j] < d[neg])) neg = j;
    }
    if (neg < 0) continue;
    out.negative[a] = neg;
    out.dan[a] = d[neg];
    let pos = -1;
    for (const j of classes.membersOf(classes.slotOf[a])) {
      if (j !== a && d[j] > d[neg] && (pos < 0 || d[j] < d[pos])) pos = j;
    }
    if (pos >= 0) {
      out.positive[a] = pos;
      out.dap[a] = d[pos];
    }
  }
  return out;
}

/**
 * Smart mining on the GPU over all rows of `emb` ([N x D], the current embeddings of the training set).
 * `search` answers eps_a and the negatives (radius kappa * eps_a, in f32) on the GPU; the positives are
 * found in one fused pass on the GPU from its dan; then one readback brings what the triplet assembly needs.
 * `onProgress` hears the negative search's progress (the positives are one submission after it).
 */
export async function mineSmart(
  emb: GpuBuffer<"f32">,
  classes: ClassIndex,
  kappa: number,
  search: NeighbourSearch,
  onProgress?: SearchProgress,
): Promise<SmartMining> {
  const gpu = emb.gpu;
  const n = emb.rows;
  using neg = await search.negatives(kappa, onProgress);
  const batch = new CommandBatch(gpu, "mining.positives");
  using pos = await encodePositives(batch, emb, classes, neg.dan);
  // One readback: eps, negative, dan, the evaluations (or nothing), the positives' (distance, id) pairs.
  const parts: GpuBuffer[] = [neg.eps, neg.negative, neg.dan, ...(neg.evaluations ? [neg.evaluations] : [])];
  const pairsAt = parts.length * n;
  using all = GpuBuffer.zeros(gpu, "u32", [Math.max(1, pairsAt + 2 * n)], "mining readback");
  parts.forEach((b, i) => batch.copy(b, 0, all, i * n, n));
  batch.copy(pos, 0, all, pairsAt, 2 * n);
  await batch.submit();
  const words = await all.read();
  const f32 = new Float32Array(words.buffer);
  const eps = f32.slice(0, n), negIndex = words.subarray(n, 2 * n), danRaw = f32.subarray(2 * n, 3 * n);
  const negative = new Int32Array(n).fill(-1);
  const dan = new Float32Array(n).fill(Infinity);
  for (let i = 0; i < n; i++) {
    if (negIndex[i] !== NONE && Number.isFinite(danRaw[i])) {
      negative[i] = negIndex[i];
      dan[i] = danRaw[i];
    }
  }
  const { positive, dap } = positivesFromPairs(words.subarray(pairsAt, pairsAt + 2 * n));
  let evaluations: number | undefined;
  if (neg.evaluations) {
    let sum = 0;
    for (let i = 3 * n; i < 4 * n; i++) sum += words[i];
    evaluations = n ? sum / n : 0;
  }
  return { eps, negative, dan, positive, dap, evaluations };
}

/**
 * Encodes, for each anchor, the nearest same-class sample with d(a, p) > dan[a], exact, into `batch`: one
 * fused pass of distance tiles reduced in registers (kernels/eval_tiles.wgsl `nearest`, no distance matrix):
 * rows in class order, each tile of 32 rows against the members of the classes it spans, same label, not
 * itself, beyond dan. Returns [N x 2] u32 per anchor: (squared distance bits, positive id), or
 * (+Inf, 0xFFFFFFFF) when none qualifies (the caller owns it).
 */
async function encodePositives(
  batch: CommandBatch,
  emb: GpuBuffer<"f32">,
  classes: ClassIndex,
  dan: GpuBuffer<"f32">,
): Promise<GpuBuffer<"u32">> {
  const gpu = emb.gpu, n = emb.rows;
  const out = GpuBuffer.zeros(gpu, "u32", [Math.max(1, n), 2], "mining positives");
  if (n === 0) return out;
  const { ranges, maxSpan } = classTileRanges(classes.members, classes.slotOf, classes.offsets);
  // ids: row positions (class order), the column list (the same order), the ranges.
  const ids = GpuBuffer.fromArray(gpu, Uint32Array.from([...classes.members, ...classes.members, ...ranges]));
  const slots = GpuBuffer.fromArray(gpu, classes.slotOf);
  batch.release(ids);
  batch.release(slots);
  const rows = await encodePrepareRows(batch, emb);
  await encodeNearest(batch, {
    a: rows,
    rows: n,
    rowList: true,
    b: rows,
    cols: { ranges: { offset: 2 * n, maxSpan }, list: { offset: n } },
    ids,
    labels: { buffer: slots, colOffset: 0 },
    self: true,
    minDistance: dan,
    out,
    outStride: n,
  });
  return out;
}

/** Per-anchor positives from (distance bits, id) pairs (-1 / +Inf: none). */
function positivesFromPairs(pairs: Uint32Array): { positive: Int32Array; dap: Float32Array } {
  const n = pairs.length / 2;
  const positive = new Int32Array(n).fill(-1);
  const dap = new Float32Array(n).fill(Infinity);
  const f32 = new Float32Array(pairs.buffer, pairs.byteOffset, pairs.length);
  for (let i = 0; i < n; i++) {
    if (pairs[2 * i + 1] === NONE) continue;
    positive[i] = pairs[2 * i + 1];
    dap[i] = f32[2 * i];
  }
  return { positive, dap };
}

/**
 * For each anchor, the nearest same-class sample with d(a, p) > dan[a] (exact, class by class on the GPU).
 */
export async function softestHarderPositives(
  emb: GpuBuffer<"f32">,
  classes: ClassIndex,
  dan: Float32Array,
): Promise<{ positive: Int32Array; dap: Float32Array }> {
  const gpu = emb.gpu;
  using danBuf = GpuBuffer.fromArray(gpu, dan);
  const batch = new CommandBatch(gpu, "mining.positives");
  using pos = await encodePositives(batch, emb, classes, danBuf);
  await batch.submit();
  return positivesFromPairs(await pos.read());
}
