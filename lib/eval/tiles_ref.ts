/**
 * Plain-TS references of kernels/eval_tiles.wgsl (lib/eval/tiles.ts): the same selection and counting rules
 * over distances computed as the kernels do, `(||a||^2 + ||b||^2) - 2 a.b` clamped at 0, here in float64
 * and rounded to float32 once (equal to the GPU's on data whose distances are exact in f32, such as small
 * integers; tests use such data).
 * @module
 */
import type { HostMatrix } from "../util/matrix.ts";

const NONE = 0xffffffff;

/** Squared L2 distance of a's row i and b's row j by the expansion the kernels use, rounded to f32. */
export function expandedSqL2(a: HostMatrix, i: number, b: HostMatrix, j: number): number {
  let an = 0, bn = 0, dot = 0;
  const d = a.cols;
  for (let k = 0; k < d; k++) {
    const x = a.data[i * d + k], y = b.data[j * d + k];
    an += x * x;
    bn += y * y;
    dot += x * y;
  }
  return Math.fround(Math.max(an + bn - 2 * dot, 0));
}

/** (distance, id) a ranks before (distance, id) b. */
export function pairBefore(da: number, ia: number, db: number, ib: number): boolean {
  return da < db || (da === db && ia < ib);
}

/** Host form of {@link NearestSpec} (lib/eval/tiles.ts). */
export interface NearestRefSpec {
  rows: number;
  rowBase?: number;
  /** Row of position t (default t). */
  rowIds?: Uint32Array;
  /** Per row tile of 32 positions, [begin, end) column positions; or one range per layer. */
  ranges?: Uint32Array;
  range?: { begin: number; step: number; len: number };
  /** Column of position s (default s; then the id is s - layer * step). */
  colIds?: Uint32Array;
  labels?: { labels: Uint32Array; colOffset: number };
  self?: boolean;
  /** Keep only columns with d > minDistance[row global id]. */
  minDistance?: Float32Array;
  layers?: number;
  outStride: number;
  /** With `minInto`: the output's current pairs. */
  init?: Uint32Array;
}

/** Reference of the nearest-column pass: u32 pairs (distance bits, id) [layers x outStride x 2]. */
export function nearestRef(a: HostMatrix, b: HostMatrix, spec: NearestRefSpec): Uint32Array {
  const layers = spec.layers ?? 1;
  const out = spec.init ? spec.init.slice() : new Uint32Array(layers * spec.outStride * 2);
  const bits = new Uint32Array(1), f = new Float32Array(bits.buffer);
  const rowBase = spec.rowBase ?? 0;
  for (let z = 0; z < layers; z++) {
    for (let t = 0; t < spec.rows; t++) {
      const row = spec.rowIds ? spec.rowIds[t] : t;
      const gid = rowBase + row;
      let begin: number, end: number;
      if (spec.ranges) {
        const tile = Math.floor(t / 32);
        [begin, end] = [spec.ranges[2 * tile], spec.ranges[2 * tile + 1]];
      } else {
        begin = spec.range!.begin + z * spec.range!.step;
        end = begin + spec.range!.len;
      }
      let bd = Infinity, bi = NONE;
      for (let s = begin; s < end; s++) {
        const col = spec.colIds ? spec.colIds[s] : s;
        const id = spec.colIds ? col : s - z * (spec.range?.step ?? 0);
        if (spec.labels && spec.labels.labels[spec.labels.colOffset + col] !== spec.labels.labels[gid]) {
          continue;
        }
        if (spec.self && id === gid) continue;
        const d = expandedSqL2(a, row, b, col);
        if (spec.minDistance && !(d > spec.minDistance[gid])) continue;
        if (pairBefore(d, id, bd, bi)) [bd, bi] = [d, id];
      }
      const o = 2 * (z * spec.outStride + gid);
      if (spec.init) {
        bits[0] = out[o];
        if (pairBefore(f[0], out[o + 1], bd, bi)) continue;
      }
      f[0] = bd;
      out[o] = bits[0];
      out[o + 1] = bi;
    }
  }
  return out;
}

/** Host form of {@link CountSpec} (lib/eval/tiles.ts). */
export interface CountRefSpec {
  rowBase?: number;
  colBase?: number;
  symmetric: boolean;
  labels: Uint32Array;
  colLabelOffset?: number;
  /** (tau bits, id) pairs by global id. */
  thresh: Uint32Array;
  /** Length of the counts array. */
  size: number;
}

/** Reference of the count pass: per global id, the other-label columns before its threshold. */
export function countBeforeRef(a: HostMatrix, b: HostMatrix, spec: CountRefSpec): Uint32Array {
  const counts = new Uint32Array(spec.size);
  const tau = new Float32Array(spec.thresh.buffer, spec.thresh.byteOffset, spec.thresh.length);
  const rowBase = spec.rowBase ?? 0, colBase = spec.colBase ?? 0, off = spec.colLabelOffset ?? 0;
  const counts1 = (gid: number, otherId: number, otherLabel: number, d: number) => {
    const pid = spec.thresh[2 * gid + 1];
    if (pid === NONE || otherLabel === spec.labels[gid]) return;
    if (pairBefore(d, otherId, tau[2 * gid], pid)) counts[gid]++;
  };
  for (let r = 0; r < a.rows; r++) {
    const gi = rowBase + r;
    for (let c = 0; c < b.rows; c++) {
      const gj = colBase + c;
      if (spec.symmetric && gj <= gi) continue;
      const d = expandedSqL2(a, r, b, c);
      counts1(gi, gj, spec.labels[off + gj], d);
      if (spec.symmetric) counts1(gj, gi, spec.labels[gi], d);
    }
  }
  return counts;
}
