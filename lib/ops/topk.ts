/**
 * Top-k selection: the k smallest entries of each row with their column indices, on the GPU
 * (kernels/topk.wgsl) and as a plain-TS reference, with the filters the miners need (exclude self,
 * keep only a different or the same label, keep only values beyond a per-row radius).
 *
 * Semantics (GPU and reference alike): each row's list is ascending by value, ties broken by the smaller
 * column index, so results are deterministic. NaN entries are never selected; +Inf entries are selectable
 * and rank after every finite value. Rows with fewer than k qualifying entries are filled with index
 * {@link NO_INDEX} (0xFFFFFFFF) and distance +Infinity. k runs from 1 to {@link TOPK_MAX_K}.
 *
 * The fused distance + top-k (`knnSqL2`) lives in ./knn.ts (which imports this module).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { type DType, GpuBuffer } from "../gpu/buffer.ts";
 * import { topkSmallest } from "./topk.ts";
 * const gpu = await getGpu();
 * using v = GpuBuffer.fromArray(gpu, new Float32Array([5, 1, 3, 2, 2, 0]), [2, 3]);
 * using top = await topkSmallest(v, 2);
 * console.log(await top.indices.read()); // Uint32Array [1, 2, 2, 0]
 * ```
 * @module
 */
import { type DType, GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { FILTER_FLAGS } from "../gpu/spec.ts";
import { TOPK } from "../gpu/specs/topk.ts";
import { checkShape, fmtShape, ShapeError, UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";

/** Index of an empty slot in a top-k list (fewer than k qualifying entries). */
export const NO_INDEX = 0xffffffff;
/** Largest k of one top-k selection: the longest per-invocation list (private memory) the kernel keeps. */
export const TOPK_MAX_K = 256;

/** Optional filters of a top-k selection (GPU buffers). Rows and columns are global indices. */
export interface TopkFilter {
  /** Row i never returns column i + selfOffset (queries are base rows selfOffset..). */
  excludeSelf?: boolean;
  /** Default 0. */
  selfOffset?: number;
  /** [M] label of each row. */
  rowLabels?: GpuBuffer<"i32">;
  /** [N] label of each column. */
  colLabels?: GpuBuffer<"i32">;
  /** "different": keep columns whose label differs from the row's; "same": keep equal labels. */
  labelMode?: "different" | "same";
  /** [M]: keep only entries with value > rowMinDistance[row] (the miner's exclusion radius). */
  rowMinDistance?: GpuBuffer<"f32">;
}

/** {@link TopkFilter} with host arrays, for the references. */
export interface TopkFilterHost {
  /** Leave out column i for row i (self-search). */
  excludeSelf?: boolean;
  /** Row i is base column i + selfOffset (default 0). */
  selfOffset?: number;
  /** Label per row. */
  rowLabels?: Int32Array;
  /** Label per column. */
  colLabels?: Int32Array;
  /** Keep columns whose label differs from (or equals) the row's. */
  labelMode?: "different" | "same";
  /** Keep only entries at least this far from the row, per row. */
  rowMinDistance?: Float32Array;
}

/** The k best entries of each row: [M x k] indices and values, ascending; frees both on dispose. */
export interface TopkResult extends Disposable {
  /** Results per row. */
  k: number;
  /** [M x k] column indices; NO_INDEX where fewer qualified. */
  indices: GpuBuffer<"u32">;
  /** [M x k] values, ascending; +Inf where missing. */
  distances: GpuBuffer<"f32">;
}

/** Host top-k lists: [M x k] row-major. */
export interface TopkHostResult {
  /** [M x k] column indices; NO_INDEX where missing. */
  indices: Uint32Array;
  /** [M x k] values, ascending. */
  distances: Float32Array;
}

/** Options for the encode functions; the defaults suit normal use. */
export interface TopkOptions {
  /**
   * Largest storage binding in bytes (default the adapter's); smaller values force blocking.
   * @default the adapter's
   */
  maxBindingBytes?: number;
  /**
   * Segments per row (default chosen per adapter and shape); > 1 splits rows and merges the lists.
   * @default chosen per adapter and shape
   */
  segments?: number;
}

const WG = 64;
const KMAX_BUCKETS = [16, 64, TOPK_MAX_K];

/** Checks k and returns the heap capacity of the pipeline that serves it. */
export function checkK(op: string, k: number): number {
  if (!Number.isInteger(k) || k < 1 || k > TOPK_MAX_K) {
    throw new UserError(
      `${op}: k must be an integer from 1 to ${TOPK_MAX_K}, got ${k}; ask for fewer neighbours`,
    );
  }
  return KMAX_BUCKETS.find((b) => k <= b)!;
}

/** Allocates a TopkResult of [rows x k]. */
export function allocTopk(gpu: Gpu, rows: number, k: number): TopkResult {
  const indices = GpuBuffer.zeros(gpu, "u32", [rows, k], "topk indices");
  const distances = GpuBuffer.zeros(gpu, "f32", [rows, k], "topk distances");
  return {
    k,
    indices,
    distances,
    [Symbol.dispose]() {
      indices.destroy();
      distances.destroy();
    },
  };
}

/** A validated filter packed for the kernel: flag bits (FILTER_FLAGS), the self offset and its buffers. */
export interface FilterBindings {
  flags: number;
  selfOffset: number;
  rowLabels?: GpuBuffer<"i32">;
  colLabels?: GpuBuffer<"i32">;
  rowMin?: GpuBuffer<"f32">;
}

/** Validates `filter` for an [rows x cols] selection and packs it for the kernel. */
export function filterBindings(
  gpu: Gpu,
  op: string,
  filter: TopkFilter,
  rows: number,
  cols: number,
): FilterBindings {
  let flags = 0;
  const selfOffset = filter.selfOffset ?? 0;
  if (filter.labelMode !== undefined && filter.labelMode !== "different" && filter.labelMode !== "same") {
    throw new UserError(
      `${op}: labelMode must be "different" or "same", got ${JSON.stringify(filter.labelMode)}`,
    );
  }
  checkInput(op, "rowLabels", filter.rowLabels, "i32");
  checkInput(op, "colLabels", filter.colLabels, "i32");
  checkInput(op, "rowMinDistance", filter.rowMinDistance, "f32");
  if (filter.excludeSelf) {
    if (!Number.isInteger(selfOffset) || selfOffset < 0) {
      throw new UserError(`${op}: selfOffset must be an integer >= 0, got ${selfOffset}`);
    }
    flags |= FILTER_FLAGS.F_SELF;
  }
  if (filter.rowLabels || filter.colLabels) {
    const { rowLabels, colLabels } = filter;
    if (!rowLabels || !colLabels) {
      throw new UserError(`${op}: a label filter needs both rowLabels and colLabels`);
    }
    checkShape(
      rowLabels.length === rows,
      `${op}: rowLabels ${fmtShape(rowLabels.shape)} must hold one label per row of [${rows} x ${cols}]`,
    );
    checkShape(
      colLabels.length === cols,
      `${op}: colLabels ${fmtShape(colLabels.shape)} must hold one label per column of [${rows} x ${cols}]`,
    );
    flags |= FILTER_FLAGS.F_LABELS | (filter.labelMode === "same" ? FILTER_FLAGS.F_SAME : 0);
  }
  if (filter.rowMinDistance) {
    checkShape(
      filter.rowMinDistance.length === rows,
      `${op}: rowMinDistance ${fmtShape(filter.rowMinDistance.shape)} must hold one value per row of ` +
        `[${rows} x ${cols}]`,
    );
    flags |= FILTER_FLAGS.F_RADIUS;
  }
  const maxBytes = gpu.maxBindingBytes;
  for (const b of [filter.rowLabels, filter.colLabels, filter.rowMinDistance]) {
    if (b && b.byteLength > maxBytes) {
      throw new ShapeError(`${op}: filter buffer ${fmtShape(b.shape)} exceeds one storage binding`);
    }
  }
  return {
    flags,
    selfOffset,
    rowLabels: filter.rowLabels,
    colLabels: filter.colLabels,
    rowMin: filter.rowMinDistance,
  };
}

/** Refuses a destroyed input or one of the wrong element type, naming the operation and the argument. */
export function checkInput(op: string, name: string, buf: GpuBuffer | undefined, dtype: DType): void {
  if (!buf) return;
  if (buf.destroyed) {
    throw new UserError(`${op}: ${name} ${fmtShape(buf.shape)} was destroyed; pass a live buffer`);
  }
  if (buf.dtype !== dtype) {
    throw new UserError(`${op}: ${name} must be a ${dtype} buffer, got ${buf.dtype} ${fmtShape(buf.shape)}`);
  }
}

/** Default segments per row: enough (row, segment) invocations to fill the adapter. */
export function chooseSegments(gpu: Gpu, rows: number, cols: number, k: number): number {
  const target = gpu.report.isSoftware ? 64 : 16384;
  const maxSegs = Math.max(1, Math.floor(cols / Math.max(4 * k, 256)));
  return Math.max(1, Math.min(maxSegs, Math.ceil(target / Math.max(rows, 1))));
}

/** One selection pass: rows [r0, r0+nr) of a value block, written into `out` rows r0.. (or merged into them). */
export interface SelectBlock {
  /** Values: element (r, c) at `valOff + r * valStride + c` within `values`. */
  values: GPUBufferBinding;
  valOff: number;
  valStride: number;
  /** Rows and columns of this block. */
  nr: number;
  nc: number;
  /** Global index of the block's first row and first column. */
  r0: number;
  c0: number;
  /** Merge with the lists already in `out` (from earlier column blocks) instead of starting empty. */
  merge: boolean;
  segments: number;
}

/** Encodes one selection pass (see {@link SelectBlock}) into `out` rows r0..r0+nr. */
export async function encodeSelectBlock(
  batch: CommandBatch,
  block: SelectBlock,
  k: number,
  filter: FilterBindings,
  out: TopkResult,
): Promise<void> {
  const gpu = batch.gpu;
  const KMAX = checkK("topk", k);
  const { nr, nc, segments } = block;
  // Segments of a multiple of 4 entries keep the vec4 scan possible.
  const segLen = Math.ceil(nc / segments / 4) * 4;
  const vec4 = block.valOff % 4 === 0 && block.valStride % 4 === 0 && nc % 4 === 0;
  const ov = out.distances.alignedBinding(block.r0 * k, nr * k);
  const oi = out.indices.alignedBinding(block.r0 * k, nr * k);
  if (ov.off !== oi.off) throw new Error("topk: output buffers disagree in alignment");
  const common = { rows: nr, k, segs: segments, init: block.merge ? 1 : 0 };
  const scan = {
    ...common,
    cols: nc,
    seg_len: segLen,
    val_stride: block.valStride,
    row_base: block.r0,
    col_base: block.c0,
    self_offset: filter.selfOffset,
    flags: filter.flags,
    val_off: block.valOff,
  };
  const dummy = batch.scratch("u32", [4]); // for bindings this pass does not read
  const filters = {
    row_labels: filter.rowLabels ?? dummy,
    col_labels: filter.colLabels ?? dummy,
    row_min: filter.rowMin ?? dummy,
  };
  // One pass writes the lists into out; with segments, partial lists go to scratch and are merged.
  const split = segments > 1;
  const pv = split ? batch.scratch("f32", [nr, segments * k], "topk partial values") : undefined;
  const pi = split ? batch.scratch("u32", [nr, segments * k], "topk partial indices") : undefined;
  const p = split
    ? { ...scan, out_stride: segments * k, init: 0, out_off: 0 }
    : { ...scan, out_stride: k, out_off: ov.off };
  const outputs = { out_v: pv ?? ov.binding, out_i: pi ?? oi.binding, ...filters };
  const grid = grid1d(gpu, Math.ceil((nr * segments) / WG));
  const defines = { KMAX, WG };
  if (vec4) {
    batch.run(
      await TOPK.pipeline(gpu, "select_rows_v4", defines),
      { p, values4: block.values, ...outputs },
      grid,
      "topk.select",
    );
  } else {
    batch.run(
      await TOPK.pipeline(gpu, "select_rows", defines),
      { p, values: block.values, ...outputs },
      grid,
      "topk.select",
    );
  }
  if (!split) return;
  batch.run(
    await TOPK.pipeline(gpu, "merge_lists", defines),
    {
      p: { ...common, out_stride: k, out_off: ov.off },
      values: pv!,
      out_v: ov.binding,
      out_i: oi.binding,
      part_i: pi!,
    },
    grid1d(gpu, Math.ceil(nr / WG)),
    "topk.merge",
  );
}

/**
 * Encodes the selection of the k smallest entries of each row of `values` [M x N]; returns [M x k] lists
 * (the caller owns them). Rows are processed in blocks that fit one storage binding.
 */
export async function encodeTopkSmallest(
  batch: CommandBatch,
  values: GpuBuffer<"f32">,
  k: number,
  filter: TopkFilter = {},
  options: TopkOptions = {},
): Promise<TopkResult> {
  checkK("topkSmallest", k);
  checkInput("topkSmallest", "values", values, "f32");
  checkShape(
    values.shape.length === 2,
    `topkSmallest: values must be 2-D [M x N], got ${fmtShape(values.shape)}`,
  );
  const gpu = batch.gpu;
  const m = values.rows, n = values.cols;
  const fb = filterBindings(gpu, "topkSmallest", filter, m, n);
  const out = allocTopk(gpu, m, k);
  if (m === 0) return out;
  const maxBytes = (options.maxBindingBytes ?? gpu.maxBindingBytes) -
    gpu.report.limits.minStorageBufferOffsetAlignment;
  const rowBytes = Math.max(n, k) * 4;
  if (rowBytes > maxBytes) {
    throw new ShapeError(
      `topkSmallest: a row of values ${fmtShape(values.shape)} exceeds one storage binding (${maxBytes} B)`,
    );
  }
  const block = Math.floor(maxBytes / rowBytes);
  for (let r0 = 0; r0 < m; r0 += block) {
    const nr = Math.min(block, m - r0);
    const v = values.alignedBinding(r0 * n, nr * n);
    const segments = options.segments ?? chooseSegments(gpu, nr, n, k);
    await encodeSelectBlock(
      batch,
      { values: v.binding, valOff: v.off, valStride: n, nr, nc: n, r0, c0: 0, merge: false, segments },
      k,
      fb,
      out,
    );
  }
  return out;
}

/** The k smallest entries of each row of `values` [M x N], ascending (see the module doc for the rules). */
export async function topkSmallest(
  values: GpuBuffer<"f32">,
  k: number,
  filter?: TopkFilter,
): Promise<TopkResult> {
  const batch = new CommandBatch(values.gpu, "topkSmallest");
  const out = await encodeTopkSmallest(batch, values, k, filter);
  await batch.submit();
  return out;
}

/** `a` ranks after `b` in the (value, index) order; the GPU kernel uses the same comparison. */
function after(va: number, ia: number, vb: number, ib: number): boolean {
  return va > vb || (va === vb && ia > ib);
}

/**
 * Selects the k best of the candidates `value(j)` for j in [0, count), skipping NaN and filtered ones,
 * into `outV`/`outI` at `o` (ascending, filled with +Inf / NO_INDEX).
 */
export function selectRowRef(
  count: number,
  value: (j: number) => number,
  keep: (j: number, v: number) => boolean,
  k: number,
  outV: Float32Array,
  outI: Uint32Array,
  o: number,
): void {
  const cand: { v: number; j: number }[] = [];
  for (let j = 0; j < count; j++) {
    const v = value(j);
    if (Number.isNaN(v) || !keep(j, v)) continue;
    cand.push({ v, j });
  }
  cand.sort((a, b) => (after(a.v, a.j, b.v, b.j) ? 1 : after(b.v, b.j, a.v, a.j) ? -1 : 0));
  for (let t = 0; t < k; t++) {
    outV[o + t] = t < cand.length ? cand[t].v : Infinity;
    outI[o + t] = t < cand.length ? cand[t].j : NO_INDEX;
  }
}

/** The host filter as a predicate on (row, column, value). */
export function filterPredicate(filter: TopkFilterHost): (i: number, j: number, v: number) => boolean {
  const self = filter.excludeSelf ? filter.selfOffset ?? 0 : -1;
  const { rowLabels, colLabels, rowMinDistance } = filter;
  const same = filter.labelMode === "same";
  return (i, j, v) => {
    if (self >= 0 && j === i + self) return false;
    if (rowLabels && colLabels && (rowLabels[i] === colLabels[j]) !== same) return false;
    if (rowMinDistance && !(v > rowMinDistance[i])) return false;
    return true;
  };
}

/** Plain-TS reference of {@link topkSmallest}. */
export function topkSmallestRef(values: HostMatrix, k: number, filter: TopkFilterHost = {}): TopkHostResult {
  checkK("topkSmallestRef", k);
  const { rows, cols, data } = values;
  const keep = filterPredicate(filter);
  const distances = new Float32Array(rows * k);
  const indices = new Uint32Array(rows * k);
  for (let i = 0; i < rows; i++) {
    selectRowRef(cols, (j) => data[i * cols + j], (j, v) => keep(i, j, v), k, distances, indices, i * k);
  }
  return { indices, distances };
}
