/**
 * The kNN candidate lists of a FANNG build (docs/method.md section 5: "candidates come from an exact or
 * approximate kNN list"), on the GPU:
 *
 * - Lists: every vertex's L nearest found so far, ids [N x L] u32 and squared distances [N x L] f32, each row
 *   sorted by (distance, id), NO_VERTEX / +Inf past the end. The high bit of an id ({@link NEW}) marks an
 *   entry added since the last NN-descent iteration.
 * - {@link encodeKnnMerge} (kernels/fanng.wgsl `knn_merge`): merges a block's exact kNN results (block-local
 *   ids mapped through the block's member list) into the lists of the block's query vertices. The builder
 *   (lib/ann/build.ts) feeds it partition blocks: exact within overlapping clusters, with the fused
 *   distance + top-k kernel (lib/ops/knn.ts), the GEMM-like part that is fast on every adapter.
 * - {@link nnDescentIteration} (kernels/fanng.wgsl `nnd_join`): one pull-based NN-descent iteration. Vertex v
 *   takes as hubs its first `forward` entries and its `reverse` nearest reverse neighbours (vertices whose
 *   first `forward` entries hold v, ranked by that position, then id), and offers itself every entry of a
 *   hub's list head (its first `perHub` entries); a pair is tried only when the hub edge or the hub's entry
 *   is NEW (older pairs were tried before). Each vertex writes only its own row and reads a snapshot of
 *   the heads: no atomics on lists, so the result does not depend on scheduling. Reverse hubs are
 *   gathered on the host from the heads (small, deterministic).
 *
 * Distances are the FANNG kernels' (lib/ann/distance_ref.ts for the reference); every list entry is
 * computed by the same function, so a vertex's list never holds an id twice.
 * @module
 */
import { ShapeError, UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { before, sqDistRows } from "./distance_ref.ts";
import { NO_VERTEX } from "./graph.ts";
import { distanceTrips, loopBudget } from "../gpu/rounds.ts";
import { blockBindings, type VectorBlocks } from "./vectors.ts";
import { FANNG } from "../gpu/specs/fanng.ts";

/** Flag bit of a list entry added since the last NN-descent iteration. */
export const NEW = 0x80000000;

const WG = 64;
/** Defines of the FANNG module for the list entry points (those they do not use set to 1). */
const DEFINES = { WG, R: 1, C: 1, CW4: 0 };

/** Host copy of kNN lists. */
export interface HostLists {
  n: number;
  width: number;
  ids: Uint32Array;
  dists: Float32Array;
}

/** Empty host lists. */
export function emptyHostLists(n: number, width: number): HostLists {
  return {
    n,
    width,
    ids: new Uint32Array(n * width).fill(NO_VERTEX),
    dists: new Float32Array(n * width).fill(Infinity),
  };
}

/** kNN lists on the GPU (owned: dispose frees them). */
export class KnnLists implements Disposable {
  private constructor(
    readonly gpu: Gpu,
    readonly n: number,
    readonly width: number,
    readonly ids: GpuBuffer<"u32">,
    readonly dists: GpuBuffer<"f32">,
  ) {}

  /** Empty lists of `width` entries for `n` vertices. */
  static empty(gpu: Gpu, n: number, width: number): KnnLists {
    if (!Number.isInteger(width) || width < 1) {
      throw new UserError(`kNN list width must be >= 1, got ${width}`);
    }
    const ids = GpuBuffer.zeros(gpu, "u32", [n, width], "knn list ids");
    const dists = GpuBuffer.zeros(gpu, "f32", [n, width], "knn list dists");
    const step = Math.max(width, Math.floor((1 << 20) / width) * width);
    const fillIds = new Uint32Array(Math.min(step, n * width)).fill(NO_VERTEX);
    const fillDists = new Float32Array(fillIds.length).fill(Infinity);
    for (let o = 0; o < n * width; o += step) {
      const m = Math.min(step, n * width - o);
      ids.write(fillIds.subarray(0, m), o);
      dists.write(fillDists.subarray(0, m), o);
    }
    return new KnnLists(gpu, n, width, ids, dists);
  }

  /** Uploads host lists. */
  static fromHost(gpu: Gpu, h: HostLists): KnnLists {
    return new KnnLists(
      gpu,
      h.n,
      h.width,
      GpuBuffer.fromArray(gpu, h.ids, [h.n, h.width], "knn list ids"),
      GpuBuffer.fromArray(gpu, h.dists, [h.n, h.width], "knn list dists"),
    );
  }

  /** Reads the lists back. */
  async toHost(): Promise<HostLists> {
    const [ids, dists] = await Promise.all([this.ids.read(), this.dists.read()]);
    return { n: this.n, width: this.width, ids, dists };
  }

  destroy(): void {
    this.ids.destroy();
    this.dists.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** Rows per aligned binding step of a [* x width] u32 array (a binding's offset must be aligned). */
function rowAlign(gpu: Gpu, width: number): number {
  const align = gpu.report.limits.minStorageBufferOffsetAlignment / 4;
  let g = align, b = width;
  while (b) [g, b] = [b, g % b];
  return align / g;
}

/** The first row at or below `v` whose row offset in a [* x width] u32 array can start a binding. */
export function alignedRow(gpu: Gpu, v: number, width: number): number {
  const a = rowAlign(gpu, width);
  return v - (v % a);
}

/**
 * Vertices per dispatch of the list kernels: a multiple of every row alignment of [* x width] u32 arrays
 * bound from a dispatch's first row, small enough that each such range fits one binding.
 */
function rowsPerDispatch(gpu: Gpu, ...widths: number[]): number {
  let a = 1;
  for (const w of widths) {
    const b = rowAlign(gpu, w);
    let g = a, h = b;
    while (h) [g, h] = [h, g % h];
    a = (a / g) * b;
  }
  const fit = Math.floor(gpu.maxBindingBytes / (4 * Math.max(...widths))) - a;
  return Math.max(a, Math.min(1 << 16, fit - (fit % a)));
}

/** Loop trips of one list insertion attempt (the scan and the shift of a width-L row), distance excluded. */
function insertTrips(width: number): number {
  return 2 * width + 4;
}

/** One block of exact kNN results to merge: queries are vertices q0 .. q0 + count - 1. */
export interface MergeBlock {
  q0: number;
  count: number;
  /** [count x cols] block-local result ids (NO_VERTEX or >= map length: none). */
  results: GpuBuffer<"u32">;
  /** [baseRows] vertex of each block-local id. */
  map: GpuBuffer<"u32">;
}

/**
 * Encodes the merge of a block's results into the lists of its queries (kernels/fanng.wgsl `knn_merge`):
 * each result c (mapped, not the query itself) is inserted at its distance unless already listed.
 */
export async function encodeKnnMerge(
  batch: CommandBatch,
  vectors: VectorBlocks,
  lists: KnnLists,
  block: MergeBlock,
  /** Result columns per dispatch (default: from the adapter's loop budget; tests lower it). */
  colsPerDispatch?: number,
): Promise<void> {
  const gpu = vectors.gpu, n = lists.n, width = lists.width;
  const cols = block.results.shape.length === 2 ? block.results.cols : 0;
  if (block.count === 0 || cols === 0) return;
  if (
    vectors.rows !== n || block.q0 + block.count > n || block.results.rows < block.count ||
    block.results.shape.length !== 2
  ) {
    throw new ShapeError(
      `knn merge: results [${block.results.shape}] for vertices ${block.q0}..${block.q0 + block.count - 1} ` +
        `of ${n} (vectors ${vectors.rows})`,
    );
  }
  const pipeline = await FANNG.pipeline(gpu, "knn_merge", DEFINES);
  const trips = distanceTrips(vectors.layout.count, vectors.layout.w4) + insertTrips(width) + 2;
  const perDispatch = Math.max(1, colsPerDispatch ?? Math.floor((loopBudget(gpu) - 64) / trips));
  const blocks = blockBindings(vectors);
  const step = rowsPerDispatch(gpu, width, cols);
  for (let s = block.q0; s < block.q0 + block.count; s += step) {
    const count = Math.min(step, block.q0 + block.count - s);
    const row0 = alignedRow(gpu, s, width);
    const rows = s + count - row0;
    const resRow = s - block.q0;
    for (let j0 = 0; j0 < cols; j0 += perDispatch) {
      batch.run(
        pipeline,
        {
          mp: {
            n,
            count,
            q0: s,
            row0,
            w4: vectors.layout.w4,
            nblocks: vectors.layout.count,
            width,
            cols,
            j0,
            j1: Math.min(cols, j0 + perDispatch),
            base_rows: block.map.length,
          },
          ...blocks,
          m_res: block.results.binding(resRow * cols, count * cols),
          m_map: block.map,
          l_ids: lists.ids.binding(row0 * width, rows * width),
          l_dists: lists.dists.binding(row0 * width, rows * width),
        },
        grid1d(gpu, Math.ceil(count / WG)),
        "fanng.knn_merge",
      );
    }
  }
}

/** Inserts (d, c) into row `o` of host lists like kernels/fanng.wgsl `list_insert`; true when inserted. */
function listInsertRef(l: HostLists, v: number, d: number, c: number): boolean {
  const w = l.width, o = v * w, id = (c & ~NEW) >>> 0;
  const strip = (e: number) => (e & ~NEW) >>> 0;
  if (!before(d, id, l.dists[o + w - 1], strip(l.ids[o + w - 1]))) return false;
  let p = w;
  for (let j = 0; j < w; j++) {
    const e = strip(l.ids[o + j]);
    if (e === id) return false;
    if (p === w && before(d, id, l.dists[o + j], e)) p = j;
  }
  l.ids.copyWithin(o + p + 1, o + p, o + w - 1);
  l.dists.copyWithin(o + p + 1, o + p, o + w - 1);
  l.ids[o + p] = c >>> 0;
  l.dists[o + p] = d;
  return true;
}

/** Plain-TS reference of {@link encodeKnnMerge} (host lists updated in place; results/map on the host). */
export function knnMergeRef(
  data: HostMatrix,
  lists: HostLists,
  q0: number,
  count: number,
  results: Uint32Array,
  cols: number,
  map: Uint32Array,
): void {
  for (let i = 0; i < count; i++) {
    const v = q0 + i;
    for (let j = 0; j < cols; j++) {
      const l = results[i * cols + j];
      if (l >= map.length) continue;
      const c = map[l];
      if (c >= lists.n || c === v) continue;
      listInsertRef(lists, v, sqDistRows(data, v, data, c), (c | NEW) >>> 0);
    }
  }
}

/** Shape of an NN-descent iteration. */
export interface NnDescentOptions {
  /** Forward hubs: a vertex's first entries taken as hubs (<= perHub). */
  forward: number;
  /** Reverse hubs per vertex. */
  reverse: number;
  /** Entries of a hub's list offered to the vertex (<= list width). */
  perHub: number;
  /** Reverse neighbours of a hub offered to the vertex too (<= reverse; default reverse: a full local join). */
  reverseOffer?: number;
  /** Hubs per dispatch (default: from the adapter's loop budget; tests lower it). */
  hubsPerDispatch?: number;
  /**
   * [n x 2] per vertex a range [lo, hi) of vertices it was already compared with (its partition block,
   * lib/ann/candidates.ts): pairs inside it are skipped. Those vertices are listed already or lost to the
   * block's L nearest (up to near-ties at the L-th, which the block ranked by its own distance formula).
   * Default: none.
   */
  compared?: Uint32Array;
}

function checkDescent(o: NnDescentOptions, width: number): void {
  const offer = o.reverseOffer ?? o.reverse;
  if (
    !(o.perHub >= 1 && o.perHub <= width && o.forward >= 0 && o.forward <= o.perHub && o.reverse >= 0 &&
      offer >= 0 && offer <= o.reverse)
  ) {
    throw new UserError(
      `NN-descent needs 1 <= perHub <= list width (${width}), 0 <= forward <= perHub and ` +
        `0 <= reverseOffer <= reverse; got perHub ${o.perHub}, forward ${o.forward}, reverse ${o.reverse}, ` +
        `reverseOffer ${offer}`,
    );
  }
}

/**
 * Reverse hubs from the list heads ([n x perHub], NEW flags kept): for every u and position j < forward,
 * u becomes a reverse hub of v = heads[u, j] (with that entry's flag). Each v keeps its `reverse` best by
 * (j, u). Returns [n x reverse], NO_VERTEX padded.
 */
export function reverseHubs(heads: Uint32Array, n: number, perHub: number, forward: number, reverse: number) {
  const out = new Uint32Array(n * reverse).fill(NO_VERTEX);
  if (reverse === 0) return out;
  const count = new Uint32Array(n);
  // Position-major sweep: position 0 of every row first, so each v collects its sources in (j, u) order.
  for (let j = 0; j < forward; j++) {
    for (let u = 0; u < n; u++) {
      const e = heads[u * perHub + j];
      const v = (e & ~NEW) >>> 0;
      if (v >= n || count[v] >= reverse) continue;
      out[v * reverse + count[v]++] = (u | (e & NEW)) >>> 0;
    }
  }
  return out;
}

/**
 * Copies the first `cols` entries of every row of `src` [n x width] (list ids, or distances with `strip`
 * off) into `out` [n x cols] (kernels/fanng.wgsl `list_head`), with the NEW flags of ids kept or stripped.
 * Encoded into `batch`.
 */
export async function encodeListHeads<D extends "u32" | "f32">(
  batch: CommandBatch,
  src: GpuBuffer<D>,
  cols: number,
  strip: boolean,
  out: GpuBuffer<D>,
): Promise<void> {
  const gpu = src.gpu, n = src.rows, width = src.cols;
  if (cols > width || out.length < n * cols) {
    throw new ShapeError(`list heads: ${cols} columns of lists ${width} wide into ${out.length} words`);
  }
  const pipeline = await FANNG.pipeline(gpu, "list_head", DEFINES);
  const step = rowsPerDispatch(gpu, width, cols);
  for (let s = 0; s < n; s += step) {
    const count = Math.min(step, n - s);
    batch.run(
      pipeline,
      {
        hp: { count, width, cols, strip: strip ? 1 : 0 },
        h_in: src.binding(s * width, count * width),
        h_out: out.binding(s * cols, count * cols),
      },
      grid1d(gpu, Math.ceil(count / WG)),
      "fanng.list_head",
    );
  }
}

/** The first `cols` entries of every row of `src` [n x width] (caller owns the result). */
export async function listHeads<D extends "u32" | "f32">(
  src: GpuBuffer<D>,
  cols: number,
  strip: boolean,
): Promise<GpuBuffer<D>> {
  const out = GpuBuffer.zeros(src.gpu, src.dtype, [src.rows, cols], "knn list heads");
  const batch = new CommandBatch(src.gpu, "fanng.list_head");
  await encodeListHeads(batch, src, cols, strip, out);
  await batch.submit();
  return out;
}

/**
 * One NN-descent iteration over `lists` in place (semantics: {@link nnDescentIterationRef}); returns the
 * number of list insertions (convergence measure).
 */
export async function nnDescentIteration(
  vectors: VectorBlocks,
  lists: KnnLists,
  o: NnDescentOptions,
  onProgress?: (done: number) => void,
): Promise<number> {
  const gpu = vectors.gpu, n = lists.n, width = lists.width;
  checkDescent(o, width);
  if (vectors.rows !== n) throw new ShapeError(`NN-descent: ${vectors.rows} vectors for ${n} lists`);
  if (n < 2) return 0;
  using heads = await listHeads(lists.ids, o.perHub, false);
  const rev = reverseHubs(await heads.read(), n, o.perHub, o.forward, o.reverse);
  const revWidth = Math.max(1, o.reverse);
  using comparedBuf = GpuBuffer.fromArray(gpu, comparedRanges(o, n), [n, 2]);
  using revBuf = GpuBuffer.fromArray(gpu, o.reverse ? rev : new Uint32Array(n).fill(NO_VERTEX), [
    n,
    revWidth,
  ]);
  using updates = GpuBuffer.zeros(gpu, "u32", [1], "nnd updates");
  const pipeline = await FANNG.pipeline(gpu, "nnd_join", DEFINES);
  const offer = o.reverseOffer ?? o.reverse;
  const hubTrips = (o.perHub + offer) *
    (distanceTrips(vectors.layout.count, vectors.layout.w4) + insertTrips(width) + 2);
  const budget = loopBudget(gpu) - width - 64;
  if (hubTrips > budget) {
    throw new UserError(
      `NN-descent: ${
        o.perHub + offer
      } entries per hub over ${vectors.dims}-d vectors exceed what this adapter runs ` +
        `in one dispatch; use a smaller perHub or list width`,
    );
  }
  const hubs = o.forward + o.reverse;
  const hubsPer = Math.max(1, o.hubsPerDispatch ?? Math.floor(budget / hubTrips));
  const blocks = blockBindings(vectors);
  const step = rowsPerDispatch(gpu, width, 2);
  for (let s = 0; s < n; s += step) {
    const count = Math.min(step, n - s);
    const batch = new CommandBatch(gpu, "fanng.nnd_join");
    for (let h0 = 0; h0 < Math.max(1, hubs); h0 += hubsPer) {
      batch.run(
        pipeline,
        {
          jp: {
            n,
            count,
            v0: s,
            w4: vectors.layout.w4,
            nblocks: vectors.layout.count,
            width,
            fwd: o.forward,
            rev_width: revWidth,
            per_hub: o.perHub,
            rev_offer: offer,
            hub0: h0,
            hub1: Math.min(hubs, h0 + hubsPer),
            first: h0 === 0 ? 1 : 0,
          },
          ...blocks,
          j_heads: heads,
          j_rev: revBuf,
          l_ids: lists.ids.binding(s * width, count * width),
          l_dists: lists.dists.binding(s * width, count * width),
          j_updates: updates,
          j_block: comparedBuf.binding(2 * s, 2 * count),
        },
        grid1d(gpu, Math.ceil(count / WG)),
        "fanng.nnd_join",
      );
    }
    await batch.submit();
    onProgress?.(s + count);
  }
  return (await updates.read())[0];
}

/** The compared ranges of the options, or empty ranges. */
function comparedRanges(o: NnDescentOptions, n: number): Uint32Array {
  if (!o.compared) return new Uint32Array(2 * n);
  if (o.compared.length !== 2 * n) {
    throw new ShapeError(`NN-descent: compared ranges hold ${o.compared.length} entries, expected ${2 * n}`);
  }
  return o.compared;
}

/** Plain-TS reference of {@link nnDescentIteration} (host lists updated in place). */
export function nnDescentIterationRef(data: HostMatrix, lists: HostLists, o: NnDescentOptions): number {
  const n = lists.n, w = lists.width;
  checkDescent(o, w);
  if (n < 2) return 0;
  const heads = new Uint32Array(n * o.perHub);
  for (let v = 0; v < n; v++) heads.set(lists.ids.subarray(v * w, v * w + o.perHub), v * o.perHub);
  const rev = reverseHubs(heads, n, o.perHub, o.forward, o.reverse);
  const compared = comparedRanges(o, n);
  const offer = o.reverseOffer ?? o.reverse;
  let updates = 0;
  for (let v = 0; v < n; v++) {
    for (let j = 0; j < w; j++) {
      const e = lists.ids[v * w + j];
      if (e !== NO_VERTEX) lists.ids[v * w + j] = (e & ~NEW) >>> 0;
    }
    for (let h = 0; h < o.forward + o.reverse; h++) {
      const e = h < o.forward ? heads[v * o.perHub + h] : rev[v * o.reverse + h - o.forward];
      const u = (e & ~NEW) >>> 0;
      if (u >= n) continue;
      const hubNew = (e & NEW) !== 0;
      for (let j = 0; j < o.perHub + offer; j++) {
        const f = j < o.perHub ? heads[u * o.perHub + j] : rev[u * o.reverse + j - o.perHub];
        const x = (f & ~NEW) >>> 0;
        if (x >= n || x === v || (!hubNew && (f & NEW) === 0)) continue;
        if (x >= compared[2 * v] && x < compared[2 * v + 1]) continue;
        if (listInsertRef(lists, v, sqDistRows(data, v, data, x), (x | NEW) >>> 0)) updates++;
      }
    }
  }
  return updates;
}
