/**
 * Pairwise squared L2 distances, `out[i, j] = ||q_i - b_j||^2`, on the GPU (kernels/distance.wgsl) and as a
 * plain-TS reference.
 *
 * The GPU computes `max(||q||^2 + ||b||^2 - 2 q.b, 0)` in f32 with precomputed norms: close pairs lose
 * precision relative to their norms (about 1e-7 * (||q||^2 + ||b||^2) * sqrt(D) absolute), negatives are
 * clamped to 0 and a point's distance to itself is 0 or a tiny positive number. The reference computes
 * `sum (q - b)^2` in f64 and rounds once. A distance involving a NaN or +-Inf coordinate is NaN or +Inf
 * on the GPU (never finite; the other entries are unaffected). Any M, N, D >= 1; inputs and outputs larger
 * than one storage binding or one dispatch are processed in blocks.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { GpuBuffer } from "../gpu/buffer.ts";
 * import { pairwiseSqL2 } from "./distance.ts";
 * const gpu = await getGpu();
 * using q = GpuBuffer.fromArray(gpu, new Float32Array([0, 0, 1, 1]), [2, 2]);
 * using b = GpuBuffer.fromArray(gpu, new Float32Array([3, 4]), [1, 2]);
 * using d = await pairwiseSqL2(q, b);
 * console.log(await d.read()); // Float32Array [25, 13]
 * ```
 * @module
 */
import { alignedRowBlock, GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { DISTANCE } from "../gpu/specs/distance.ts";
import { checkShape, fmtShape, ShapeError, UserError } from "../errors.ts";
import { type HostMatrix, sqL2Rows } from "../util/matrix.ts";

/** Which distance kernel runs: chosen per adapter and shape unless forced (tests force each one). */
export type DistanceKernel = "reg32" | "reg16" | "reg4" | "tiled";

/** Options for the encode functions; the defaults suit normal use. */
export interface DistanceOptions {
  /**
   * Force a kernel instead of the per-adapter, per-shape choice.
   * @default chosen per adapter and shape
   */
  kernel?: DistanceKernel;
  /**
   * Largest storage binding in bytes (default the adapter's); smaller values force blocking.
   * @default the adapter's
   */
  maxBindingBytes?: number;
}

/** Invocations per workgroup of the register-tiled kernels (llvmpipe runs 8 lanes wide). */
const REG_WG = 8;

/** Per-kernel tile geometry: rows per workgroup tile, columns per workgroup tile. */
const GEOMETRY: Record<DistanceKernel, { rows: number; cols: number }> = {
  reg32: { rows: 32, cols: 32 * REG_WG },
  reg16: { rows: 16, cols: 16 * REG_WG },
  reg4: { rows: 4, cols: 4 * REG_WG },
  tiled: { rows: 64, cols: 64 },
};

/** The entry point of each kernel with scalar stores (reg32 has none: it falls back to reg16). */
const SCALAR_ENTRY = {
  reg32: "dist_reg16",
  reg16: "dist_reg16",
  reg4: "dist_reg4",
  tiled: "dist_tiled",
} as const satisfies Record<DistanceKernel, string>;

/**
 * The kernel for this adapter and shape: register tiles on CPU adapters, as large as the shape fills
 * (32 x 32 per invocation; 16 x 16 or 4 x 4 for small M or N), workgroup-memory tiles on GPUs.
 */
export function chooseDistanceKernel(gpu: Gpu, rows: number, cols: number): DistanceKernel {
  if (!gpu.report.isSoftware) return "tiled";
  if (rows < 16 || cols < 64) return "reg4";
  return rows >= 64 && cols >= 512 ? "reg32" : "reg16";
}

/** Rows of a 2-D f32 matrix prepared for the distance kernels: vec4-padded rows and squared norms. */
export interface PreparedRows extends Disposable {
  /** [rows x dim4 * 4]: the input itself when dim % 4 == 0, else a zero-padded copy. */
  readonly data: GpuBuffer<"f32">;
  /** [rows] squared L2 norms. */
  readonly norms: GpuBuffer<"f32">;
  readonly rows: number;
  /** Number of vec4 per row. */
  readonly dim4: number;
}

/**
 * Encodes the preparation of `x` [rows x dim]: squared norms, and a vec4-padded copy when dim % 4 != 0.
 * The returned buffers are released with the batch unless `keep` is true. With `norms: false` (dot
 * products, which read no norms) the norms are left zero, and rows that need no padding cost no pass.
 */
export async function encodePrepareRows(
  batch: CommandBatch,
  x: GpuBuffer<"f32">,
  options: { maxBindingBytes?: number; keep?: boolean; norms?: boolean } = {},
): Promise<PreparedRows> {
  const gpu = batch.gpu;
  const rows = x.rows, dim = x.cols, dim4 = Math.ceil(dim / 4);
  const pad = dim % 4 !== 0;
  const data = pad ? GpuBuffer.zeros(gpu, "f32", [rows, dim4 * 4], "padded rows") : x;
  const norms = GpuBuffer.zeros(gpu, "f32", [rows], "row norms");
  const owned = pad ? [data, norms] : [norms];
  if (!options.keep) owned.forEach((b) => batch.release(b));
  const prepared = {
    data,
    norms,
    rows,
    dim4,
    [Symbol.dispose]() {
      owned.forEach((b) => b.destroy());
    },
  };
  if (!pad && options.norms === false) return prepared;
  const pipeline = await DISTANCE.pipeline(gpu, "prep_rows", { PAD: pad, WG: REG_WG, DOT: false });
  const maxBytes = options.maxBindingBytes ?? gpu.maxBindingBytes;
  const block = alignedRowBlock(gpu, [dim * 4, dim4 * 16, 4], maxBytes, rows);
  // Without padding the destination is unused, but bound all the same: give it a buffer of its own.
  const dummy = pad ? undefined : batch.scratch("f32", [4]);
  for (let r0 = 0; r0 < rows; r0 += block) {
    const n = Math.min(block, rows - r0);
    batch.run(
      pipeline,
      {
        prep: { rows: n, dim, dim4 },
        prep_src: x.binding(r0 * dim, n * dim),
        prep_dst: dummy ?? data.binding(r0 * dim4 * 4, n * dim4 * 4),
        prep_norms: norms.binding(r0, n),
      },
      grid1d(gpu, Math.ceil(n / 64)),
      "distance.prep",
    );
  }
  return prepared;
}

/** One block of distances: rows [r0, r0+nr) of `q` against rows [c0, c0+nc) of `b`. */
export interface DistanceBlock {
  r0: number;
  nr: number;
  c0: number;
  nc: number;
  /** Binding of the output rows; element (r, c) is at `r * outStride + outCol + c` within it. */
  out: GPUBufferBinding;
  outStride: number;
  outCol: number;
}

/**
 * Encodes one distance block between prepared rows (the caller keeps every binding within limits); with
 * `dot`, the block of dot products q_i . b_j instead.
 */
export async function encodeDistanceBlock(
  batch: CommandBatch,
  q: PreparedRows,
  b: PreparedRows,
  block: DistanceBlock,
  kernel: DistanceKernel = chooseDistanceKernel(batch.gpu, block.nr, block.nc),
  dot = false,
): Promise<void> {
  const gpu = batch.gpu;
  const { r0, nr, c0, nc } = block;
  // One vec4 store per 4 outputs when every output row block starts at a multiple of 4 (llvmpipe stores
  // element by element, so this matters at small D).
  // Norms (4 bytes a row) are bound from an aligned offset at or below the block's first row, covering
  // whole vec4s (buffers are padded) for the kernels that read them four at a time.
  const qn = q.norms.alignedBinding(r0, nr, 4), bn = b.norms.alignedBinding(c0, nc, 4);
  const vec4Out = block.outStride % 4 === 0 && block.outCol % 4 === 0 && nc % 4 === 0 &&
    qn.off % 4 === 0 && bn.off % 4 === 0;
  // reg32 exists only with vec4 stores; without them it falls back to reg16.
  if (kernel === "reg32" && !vec4Out) kernel = "reg16";
  const g = GEOMETRY[kernel];
  const tilesX = Math.ceil(nc / g.cols), tilesY = Math.ceil(nr / g.rows);
  const common = {
    p: {
      rows: nr,
      cols: nc,
      dim4: q.dim4,
      out_stride: block.outStride,
      out_col: block.outCol,
      tiles_x: tilesX,
      qn_off: qn.off,
      bn_off: bn.off,
    },
    q: q.data.binding(r0 * q.dim4 * 4, nr * q.dim4 * 4),
    b: b.data.binding(c0 * b.dim4 * 4, nc * b.dim4 * 4),
  };
  const grid = grid1d(gpu, tilesX * tilesY);
  const defines = { PAD: false, WG: REG_WG, DOT: dot };
  const label = dot ? "pairwiseDot" : "pairwiseSqL2";
  if (vec4Out && (kernel === "reg32" || kernel === "reg16")) {
    const pipeline = await DISTANCE.pipeline(gpu, `dist_${kernel}_v4`, defines);
    batch.run(
      pipeline,
      { ...common, qn4: qn.binding, bn4: bn.binding, out4: block.out },
      grid,
      label,
    );
  } else {
    const pipeline = await DISTANCE.pipeline(gpu, SCALAR_ENTRY[kernel], defines);
    batch.run(pipeline, { ...common, qn: qn.binding, bn: bn.binding, out: block.out }, grid, label);
  }
}

/** Checks that queries and base are 2-D f32 with the same number of columns. */
export function checkPairShapes(op: string, queries: GpuBuffer<"f32">, base: GpuBuffer<"f32">): void {
  for (const [name, b] of [["queries", queries], ["base", base]] as const) {
    if (b.destroyed) {
      throw new UserError(`${op}: ${name} ${fmtShape(b.shape)} was destroyed; pass a live buffer`);
    }
  }
  checkShape(
    queries.shape.length === 2 && base.shape.length === 2,
    `${op}: queries ${fmtShape(queries.shape)} and base ${
      fmtShape(base.shape)
    } must both be 2-D [rows x dim]`,
  );
  checkShape(
    queries.cols === base.cols,
    `${op}: queries ${fmtShape(queries.shape)} and base ${fmtShape(base.shape)} differ in dim ` +
      `(${queries.cols} != ${base.cols})`,
  );
  checkShape(queries.cols >= 1, `${op}: queries ${fmtShape(queries.shape)} has dim 0`);
  checkShape(
    queries.dtype === "f32" && base.dtype === "f32",
    `${op}: queries ${fmtShape(queries.shape)} and base ${fmtShape(base.shape)} must be f32`,
  );
}

/**
 * Encodes pairwise squared L2 distances of `queries` [M x D] to `base` [N x D] into `out` [M x N]
 * (allocated when omitted; the caller owns it). Processes row and column blocks so that every binding
 * fits the adapter's limit.
 */
export function encodePairwiseSqL2(
  batch: CommandBatch,
  queries: GpuBuffer<"f32">,
  base: GpuBuffer<"f32">,
  out?: GpuBuffer<"f32">,
  options: DistanceOptions = {},
): Promise<GpuBuffer<"f32">> {
  return encodePairwise("pairwiseSqL2", batch, queries, base, out, options);
}

/**
 * Encodes the pairwise dot products queries_i . base_j of `queries` [M x D] and `base` [N x D] into `out`
 * [M x N], as {@link encodePairwiseSqL2} does distances (the same kernels, f32 sums in d order four
 * components at a time): a product by base^T, e.g. the rows' coordinates in an orthonormal basis.
 */
export function encodePairwiseDot(
  batch: CommandBatch,
  queries: GpuBuffer<"f32">,
  base: GpuBuffer<"f32">,
  out?: GpuBuffer<"f32">,
  options: DistanceOptions = {},
): Promise<GpuBuffer<"f32">> {
  return encodePairwise("pairwiseDot", batch, queries, base, out, options);
}

async function encodePairwise(
  op: "pairwiseSqL2" | "pairwiseDot",
  batch: CommandBatch,
  queries: GpuBuffer<"f32">,
  base: GpuBuffer<"f32">,
  out: GpuBuffer<"f32"> | undefined,
  options: DistanceOptions,
): Promise<GpuBuffer<"f32">> {
  checkPairShapes(op, queries, base);
  const gpu = batch.gpu;
  const m = queries.rows, n = base.rows;
  if (out) {
    checkShape(
      out.length === m * n,
      `${op}: out ${fmtShape(out.shape)} must hold [${m} x ${n}] for queries ${
        fmtShape(queries.shape)
      } and base ${fmtShape(base.shape)}`,
    );
  }
  out ??= GpuBuffer.zeros(gpu, "f32", [m, n], op);
  if (m === 0 || n === 0) return out;
  const maxBytes = options.maxBindingBytes ?? gpu.maxBindingBytes;
  const prep = { maxBindingBytes: maxBytes, norms: op === "pairwiseSqL2" };
  const q = await encodePrepareRows(batch, queries, prep);
  const b = await encodePrepareRows(batch, base, prep);
  if (n * 4 > maxBytes) {
    throw new ShapeError(
      `${op}: an output row of ${n} results (base ${fmtShape(base.shape)}) exceeds one storage ` +
        `binding (${maxBytes} B); use knnSqL2, which streams the base`,
    );
  }
  // Output rows are bound from an aligned offset at or below their start; the remainder goes in outCol.
  const align = gpu.report.limits.minStorageBufferOffsetAlignment;
  let rowBlock = alignedRowBlock(gpu, [q.dim4 * 16, n * 4], maxBytes - align, m, [n * 4]);
  if (rowBlock < m && rowBlock >= 4) rowBlock -= rowBlock % 4; // keeps the vec4 norm reads possible
  let colBlock = alignedRowBlock(gpu, [b.dim4 * 16], maxBytes - align, n);
  if (colBlock < n && colBlock >= 4) colBlock -= colBlock % 4; // keeps vec4 stores possible
  for (let r0 = 0; r0 < m; r0 += rowBlock) {
    const nr = Math.min(rowBlock, m - r0);
    const o = out.alignedBinding(r0 * n, nr * n);
    for (let c0 = 0; c0 < n; c0 += colBlock) {
      const nc = Math.min(colBlock, n - c0);
      const block = { r0, nr, c0, nc, out: o.binding, outStride: n, outCol: o.off + c0 };
      await encodeDistanceBlock(batch, q, b, block, options.kernel, op === "pairwiseDot");
    }
  }
  return out;
}

/** Pairwise squared L2 distances of `queries` [M x D] to `base` [N x D]: a new [M x N] buffer. */
export async function pairwiseSqL2(
  queries: GpuBuffer<"f32">,
  base: GpuBuffer<"f32">,
): Promise<GpuBuffer<"f32">> {
  const batch = new CommandBatch(queries.gpu, "pairwiseSqL2");
  const out = await encodePairwiseSqL2(batch, queries, base);
  await batch.submit();
  return out;
}

/** Squared L2 distance between row `i` of `a` and row `j` of `b`, summed in f64. */
export function sqL2Ref(a: HostMatrix, i: number, b: HostMatrix, j: number): number {
  return sqL2Rows(a, i, b, j);
}

/** Plain-TS reference of {@link pairwiseSqL2}: exact differences in f64, rounded to f32 once. */
export function pairwiseSqL2Ref(queries: HostMatrix, base: HostMatrix): HostMatrix {
  if (queries.cols !== base.cols) {
    throw new ShapeError(
      `pairwiseSqL2Ref: queries ${fmtShape([queries.rows, queries.cols])} and base ${
        fmtShape([base.rows, base.cols])
      } differ in dim`,
    );
  }
  const out = new Float32Array(queries.rows * base.rows);
  for (let i = 0; i < queries.rows; i++) {
    for (let j = 0; j < base.rows; j++) out[i * base.rows + j] = sqL2Ref(queries, i, base, j);
  }
  return { rows: queries.rows, cols: base.rows, data: out };
}
