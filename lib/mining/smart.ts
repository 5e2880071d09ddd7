/**
 * Smart mining (method.md section 3): for every anchor a,
 *   eps_a = squared distance to its nearest other sample (any class),
 *   r_a   = kappa * eps_a (the exclusion boundary),
 *   n     = the nearest sample of another class with d(a, n) > r_a,
 *   p     = argmin { d(a, p) : same class, p != a, d(a, p) > d(a, n) } (the softest positive still harder
 *           than the negative).
 * Anchors with no qualifying n or p get -1 and fall back to random triplets when batches are assembled.
 *
 * The neighbour searches run on the GPU through a {@link NeighbourSearch} (FANNG graph or exact brute
 * force); positives are found per class with the fused distance + top-k kernel (k = 1, radius filter
 * d > d(a, n)). `mineSmartRef` is the plain-TS exact reference.
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { gatherRows } from "../ops/gather.ts";
import { knnSqL2 } from "../ops/topk.ts";
import type { HostMatrix } from "../util/matrix.ts";
import type { ClassIndex } from "./classes.ts";
import type { NeighbourSearch } from "./search.ts";

/** Per-anchor mining outcome; -1 where nothing qualified. */
export interface SmartMining {
  eps: Float32Array;
  negative: Int32Array;
  dan: Float32Array;
  positive: Int32Array;
  dap: Float32Array;
  /** Mean distance evaluations per anchor in the negative search (graph search), when known. */
  evaluations?: number;
}

const NONE = 0xffffffff;

function sqDist(m: HostMatrix, i: number, j: number): number {
  let s = 0;
  for (let k = 0, a = i * m.cols, b = j * m.cols; k < m.cols; k++) {
    const d = m.data[a + k] - m.data[b + k];
    s += d * d;
  }
  return s;
}

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
    for (let j = 0; j < n; j++) d[j] = Math.fround(sqDist(emb, a, j));
    let eps = Infinity;
    for (let j = 0; j < n; j++) if (j !== a && d[j] < eps) eps = d[j];
    out.eps[a] = eps;
    const radius = Math.fround(kappa * eps);
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
 * `search` answers the nearest-neighbour questions; its radius is kappa * eps per anchor.
 */
export async function mineSmart(
  emb: GpuBuffer<"f32">,
  classes: ClassIndex,
  kappa: number,
  search: NeighbourSearch,
): Promise<SmartMining> {
  const n = emb.rows;
  const eps = await search.nearestOtherDistance();
  const radius = new Float32Array(n);
  for (let i = 0; i < n; i++) radius[i] = kappa * eps[i];
  const neg = await search.nearestOtherClassOutside(radius);
  const negative = new Int32Array(n).fill(-1);
  const dan = new Float32Array(n).fill(Infinity);
  for (let i = 0; i < n; i++) {
    if (neg.index[i] !== NONE && Number.isFinite(neg.distance[i])) {
      negative[i] = neg.index[i];
      dan[i] = neg.distance[i];
    }
  }
  const { positive, dap } = await softestHarderPositives(emb, classes, dan);
  return { eps, negative, dan, positive, dap, evaluations: neg.evaluations };
}

/**
 * For each anchor, the nearest same-class sample with d(a, p) > dan[a], class by class: the class's
 * rows are gathered into one block and searched against themselves with the radius filter.
 */
export async function softestHarderPositives(
  emb: GpuBuffer<"f32">,
  classes: ClassIndex,
  dan: Float32Array,
): Promise<{ positive: Int32Array; dap: Float32Array }> {
  const gpu = emb.gpu;
  const positive = new Int32Array(emb.rows).fill(-1);
  const dap = new Float32Array(emb.rows).fill(Infinity);
  for (let c = 0; c < classes.classCount; c++) {
    const members = classes.membersOf(c);
    const minD = new Float32Array(members.length);
    let any = false;
    members.forEach((a, i) => {
      minD[i] = dan[a];
      any ||= Number.isFinite(dan[a]);
    });
    if (!any) continue;
    using idx = GpuBuffer.fromArray(gpu, members);
    using block = await gatherRows(emb, idx);
    using radius = GpuBuffer.fromArray(gpu, minD);
    using res = await knnSqL2(block, block, 1, { excludeSelf: true, selfOffset: 0, rowMinDistance: radius });
    const [index, dist] = await Promise.all([res.indices.read(), res.distances.read()]);
    members.forEach((a, i) => {
      if (index[i] !== NONE) {
        positive[a] = members[index[i]];
        dap[a] = dist[i];
      }
    });
  }
  return { positive, dap };
}
