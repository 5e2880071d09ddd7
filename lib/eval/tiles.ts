/**
 * Drivers of kernels/eval_tiles.wgsl: squared-L2 distance tiles reduced in registers, so no distance
 * matrix is ever stored.
 *
 * - {@link encodeNearest}: per row, the nearest column of a range (optionally only same-label columns other
 *   than the row itself, farther than a per-row radius). k-means uses it for assignment and seeding, the retrieval metrics for each
 *   query's nearest positive.
 * - {@link encodeCountBefore}: per row, the number of other-label columns that precede the row's threshold
 *   (tau, id) in the (distance, id) order; with one set against itself each pair is computed once.
 *
 * Plain-TS references with the same rules: ./tiles_ref.ts.
 * @module
 */
import type { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { type Bindable, type CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { EVAL_TILES, EVAL_TILES_FLAGS as F } from "../gpu/specs/eval_tiles.ts";
import { loopBudget } from "../gpu/rounds.ts";

/** Rows and columns per invocation tile. */
export const TILE = 32;

/** Invocations per workgroup (llvmpipe runs 8 lanes wide). */
export function tileWorkgroup(gpu: Gpu): number {
  return gpu.report.isSoftware ? 8 : 32;
}

/** Prepared rows as the kernels bind them: vec4-padded rows and their squared norms. */
export interface TileRows {
  data: Bindable;
  norms: Bindable;
  /** vec4s per row. */
  dim4: number;
}

/**
 * Column ranges of a nearest pass over rows grouped by class (`cols.ranges`): row position t is row
 * `order[t]`, of class `classOf[order[t]]`, with `order` sorted by class; class c's columns are positions
 * [classStart[c], classStart[c + 1]). Each tile of TILE row positions gets the span from its first row's
 * class to its last's ([begin, end) pairs, one per tile), and the longest span.
 */
export function classTileRanges(
  order: ArrayLike<number>,
  classOf: ArrayLike<number>,
  classStart: ArrayLike<number>,
): { ranges: Uint32Array; maxSpan: number } {
  const rows = order.length, tiles = Math.ceil(rows / TILE);
  const ranges = new Uint32Array(2 * tiles);
  let maxSpan = 0;
  for (let t = 0; t < tiles; t++) {
    const first = classOf[order[t * TILE]];
    const last = classOf[order[Math.min(rows, t * TILE + TILE) - 1]];
    ranges[2 * t] = classStart[first];
    ranges[2 * t + 1] = classStart[last + 1];
    maxSpan = Math.max(maxSpan, ranges[2 * t + 1] - ranges[2 * t]);
  }
  return { ranges, maxSpan };
}

/** One nearest-column pass; see kernels/eval_tiles.wgsl for the exact semantics of each field. */
export interface NearestSpec {
  /** The rows' matrix (a block of it when rows are direct), and the global id of its first row. */
  a: TileRows;
  rowBase?: number;
  /** Row positions; with `rowList` the row of position t is ids[t]. */
  rows: number;
  rowList?: boolean;
  b: TileRows;
  /** Columns: ranges per row tile (`ranges` at ids[offset..], longest `maxSpan`), or one range per layer. */
  cols:
    | { ranges: { offset: number; maxSpan: number }; list?: { offset: number } }
    | { begin: number; step: number; len: number; list?: { offset: number } };
  /** Index lists (rows, columns, ranges); any buffer when unused. */
  ids?: GpuBuffer<"u32">;
  /** Keep only columns of the row's label: labels[rowBase + row] vs labels[colOffset + column]. */
  labels?: { buffer: GpuBuffer<"u32">; colOffset: number };
  /** Drop the column whose id is the row's global id (one set searched against itself). */
  self?: boolean;
  /** Keep only columns farther than minDistance[row global id] (squared; d > it). */
  minDistance?: GpuBuffer<"f32">;
  /** Output pairs (distance bits, id), u32 [layers x outStride x 2]. */
  out: GpuBuffer<"u32">;
  outStride: number;
  /** z layers (k-means restarts; 1 otherwise). */
  layers?: number;
  /** Keep the output's current pair when it ranks first (else overwrite). */
  minInto?: boolean;
  /** Skip the pass when status[0] != 0. */
  status?: GpuBuffer<"u32">;
  /** Loop back-edges per invocation and dispatch (default: the adapter's budget); tests force windows. */
  loopBudget?: number;
}

/** Columns one dispatch may scan per invocation within the loop budget (a multiple of the tile). */
function windowColumns(gpu: Gpu, dim4: number, budget?: number): number {
  const trips = (budget ?? loopBudget(gpu)) / (dim4 + 8);
  return Math.max(1, Math.floor(trips)) * TILE;
}

/** Encodes a nearest-column pass (in as many windows as the loop budget needs). */
export async function encodeNearest(batch: CommandBatch, spec: NearestSpec): Promise<void> {
  const gpu = batch.gpu;
  if (spec.rows === 0) return;
  const WG = tileWorkgroup(gpu);
  const pipe = await EVAL_TILES.pipeline(gpu, "nearest", { WG });
  const c = spec.cols;
  const ranges = "ranges" in c;
  const span = ranges ? c.ranges.maxSpan : c.len;
  const flags = (spec.rowList ? F.F_ROW_LIST : 0) | (c.list ? F.F_COL_LIST : 0) | (ranges ? F.F_RANGES : 0) |
    (spec.labels ? F.F_LABELS | F.F_SAME : 0) | (spec.self ? F.F_SELF : 0) |
    (spec.status ? F.F_HALTABLE : 0) |
    (spec.minDistance ? F.F_RADIUS : 0);
  const win = windowColumns(gpu, spec.a.dim4, spec.loopBudget);
  const dummy = batch.scratch("u32", [4]);
  const tiles = Math.ceil(spec.rows / TILE);
  const grid = [...grid1d(gpu, Math.ceil(tiles / WG)), spec.layers ?? 1];
  // An empty range still runs once, to write (+Inf, none) for its rows.
  for (let lo = 0; lo < Math.max(span, 1); lo += win) {
    batch.run(
      pipe,
      {
        p: {
          rows: spec.rows,
          dim4: spec.a.dim4,
          flags: flags | (spec.minInto || lo > 0 ? F.F_MIN_INTO : 0),
          row_base: spec.rowBase ?? 0,
          label_off: spec.labels?.colOffset ?? 0,
          col_begin: ranges ? 0 : c.begin,
          col_step: ranges ? 0 : c.step,
          col_len: ranges ? 0 : c.len,
          win_lo: lo,
          win_hi: lo + win,
          list_off: c.list?.offset ?? 0,
          ranges_off: ranges ? c.ranges.offset : 0,
          out_stride: spec.outStride,
        },
        a: spec.a.data,
        b: spec.b.data,
        a_norms: spec.a.norms,
        b_norms: spec.b.norms,
        ids: spec.ids ?? dummy,
        labels: spec.labels?.buffer ?? dummy,
        out: spec.out,
        status: spec.status ?? dummy,
        row_min: spec.minDistance ?? dummy,
      },
      grid,
      "evalTiles.nearest",
    );
  }
}

/** One count pass; see kernels/eval_tiles.wgsl. */
export interface CountSpec {
  /** Rows (global ids rowBase..) and columns (colBase..); `symmetric`: the same set, each pair once. */
  a: TileRows;
  rows: number;
  rowBase?: number;
  b: TileRows;
  cols: number;
  colBase?: number;
  symmetric: boolean;
  /** labels[rowBase + r] for rows, labels[colOffset + colBase + c] for columns. */
  labels: GpuBuffer<"u32">;
  colLabelOffset?: number;
  /** (tau bits, id) per row global id (and per column global id when symmetric); id 0xFFFFFFFF: none. */
  thresh: GpuBuffer<"u32">;
  /** u32 counts per global id, added to. */
  counts: GpuBuffer<"u32">;
}

/** Workgroups of a count pass (dispatched in parts for progress, see {@link encodeCountBefore}). */
export function countWorkgroups(gpu: Gpu, rows: number, cols: number, symmetric: boolean): number {
  const WG = tileWorkgroup(gpu);
  const rowTiles = Math.ceil(rows / TILE);
  if (!symmetric) return rowTiles * Math.ceil(Math.ceil(cols / TILE) / WG);
  const groups = Math.ceil(rowTiles / WG);
  let total = 0;
  for (let band = 0; band * WG < rowTiles; band++) {
    total += Math.min(WG, rowTiles - band * WG) * (groups - band);
  }
  return total;
}

/** Encodes workgroups [from, to) of a count pass (all of them by default). */
export async function encodeCountBefore(
  batch: CommandBatch,
  spec: CountSpec,
  from = 0,
  to = countWorkgroups(batch.gpu, spec.rows, spec.cols, spec.symmetric),
): Promise<void> {
  const gpu = batch.gpu;
  if (spec.rows === 0 || spec.cols === 0 || to <= from) return;
  const WG = tileWorkgroup(gpu);
  const pipe = await EVAL_TILES.pipeline(gpu, "count_before", { WG });
  const tilesX = Math.ceil(Math.ceil(spec.cols / TILE) / WG);
  // Dispatches of at most one grid row of workgroups (the kernel numbers them from wg_base).
  for (let lo = from; lo < to; lo += gpu.maxWorkgroupsPerDim) {
    const hi = Math.min(to, lo + gpu.maxWorkgroupsPerDim);
    batch.run(
      pipe,
      {
        p: {
          rows: spec.rows,
          cols: spec.cols,
          dim4: spec.a.dim4,
          flags: spec.symmetric ? F.F_SYM : 0,
          row_base: spec.rowBase ?? 0,
          col_base: spec.colBase ?? 0,
          label_off: spec.colLabelOffset ?? 0,
          tiles_x: tilesX,
          wg_base: lo,
          wg_end: hi,
        },
        a: spec.a.data,
        b: spec.b.data,
        a_norms: spec.a.norms,
        b_norms: spec.b.norms,
        c_labels: spec.labels,
        thresh: spec.thresh,
        counts: spec.counts,
      },
      hi - lo,
      "evalTiles.countBefore",
    );
  }
}
