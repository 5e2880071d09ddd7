/**
 * Row-wise L2 normalisation on the GPU (kernels/normalize.wgsl) and its backward pass, with plain-TS
 * references. e = z / max(||z||, 1e-12), as torch.nn.functional.normalize.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { GpuBuffer } from "../gpu/buffer.ts";
 * import { l2Normalize } from "./normalize.ts";
 * const gpu = await getGpu();
 * using z = GpuBuffer.fromArray(gpu, new Float32Array([3, 4]), [1, 2]);
 * const { out, norms } = await l2Normalize(z);
 * console.log(await out.read(), await norms.read()); // [0.6, 0.8], [5]
 * out.destroy();
 * norms.destroy();
 * ```
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { NORMALIZE } from "../gpu/specs/normalize.ts";
import { checkShape, fmtShape } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";

/** The norm floor (torch's default eps). */
export const NORMALIZE_EPS = 1e-12;
const WG = 64;

function strideOf(
  buf: GpuBuffer<"f32">,
  rows: number,
  dim: number,
  ld: number | undefined,
  what: string,
): number {
  const stride = ld ?? dim;
  checkShape(
    stride >= dim && buf.length >= rows * stride,
    `l2Normalize: ${what} ${
      fmtShape(buf.shape)
    } cannot hold ${rows} rows of ${dim} values at stride ${stride}`,
  );
  return stride;
}

/**
 * Encodes e = z / max(||z||, eps) row by row; also writes the norms (kept for the backward pass).
 * `z` and `out` must each fit one binding (callers block bigger matrices by rows).
 */
export async function encodeL2NormalizeForward(
  batch: CommandBatch,
  z: GpuBuffer<"f32">,
  options: {
    /** First row (a multiple of 64 when not 0, for aligned bindings) and number of rows to process. */
    rowStart?: number;
    rows?: number;
    dim?: number;
    ldIn?: number;
    ldOut?: number;
    out?: GpuBuffer<"f32">;
    norms?: GpuBuffer<"f32">;
    /** false: copy the rows unscaled (a change of row stride); the norms are still written. */
    scale?: boolean;
  } = {},
): Promise<{ out: GpuBuffer<"f32">; norms: GpuBuffer<"f32"> }> {
  const gpu = batch.gpu;
  const start = options.rowStart ?? 0;
  const rows = options.rows ?? z.rows - start;
  const dim = options.dim ?? z.cols;
  const ldIn = strideOf(z, start + rows, dim, options.ldIn, "input");
  const ldOut = options.ldOut ?? dim;
  const out = options.out ?? GpuBuffer.zeros(gpu, "f32", [start + rows, ldOut], "normalized");
  strideOf(out, start + rows, dim, ldOut, "output");
  const norms = options.norms ?? GpuBuffer.zeros(gpu, "f32", [start + rows], "row norms");
  checkShape(
    norms.length >= start + rows,
    `l2Normalize: norms ${fmtShape(norms.shape)} hold fewer than ${start + rows} rows`,
  );
  const pipeline = await NORMALIZE.pipeline(gpu, "forward", { WG, EPS: NORMALIZE_EPS });
  batch.run(
    pipeline,
    {
      p: { rows, dim, ld_in: ldIn, ld_out: ldOut, scale: options.scale === false ? 0 : 1 },
      fz: z.binding(start * ldIn, rows * ldIn),
      fe: out.binding(start * ldOut, rows * ldOut),
      fn_: norms.binding(start, rows),
    },
    grid1d(gpu, Math.ceil(rows / WG)),
  );
  return { out, norms };
}

/**
 * Encodes the backward pass: dz = (de - e <e, de>) / n where n > eps, de / eps otherwise, from the
 * normalised rows `e`, their upstream gradient `de` and the norms of the forward pass.
 */
export async function encodeL2NormalizeBackward(
  batch: CommandBatch,
  e: GpuBuffer<"f32">,
  de: GpuBuffer<"f32">,
  norms: GpuBuffer<"f32">,
  options: {
    rows?: number;
    dim?: number;
    ldE?: number;
    ldIn?: number;
    ldOut?: number;
    out?: GpuBuffer<"f32">;
  } = {},
): Promise<GpuBuffer<"f32">> {
  const gpu = batch.gpu;
  const rows = options.rows ?? e.rows;
  const dim = options.dim ?? e.cols;
  const ldE = strideOf(e, rows, dim, options.ldE, "embeddings");
  const ldIn = strideOf(de, rows, dim, options.ldIn, "upstream gradient");
  const ldOut = options.ldOut ?? dim;
  const out = options.out ?? GpuBuffer.zeros(gpu, "f32", [rows, ldOut], "normalize grad");
  strideOf(out, rows, dim, ldOut, "output gradient");
  checkShape(
    norms.length >= rows,
    `l2Normalize: norms ${fmtShape(norms.shape)} hold fewer than ${rows} rows`,
  );
  const pipeline = await NORMALIZE.pipeline(gpu, "backward", { WG, EPS: NORMALIZE_EPS });
  batch.run(
    pipeline,
    {
      p: { rows, dim, ld_in: ldIn, ld_out: ldOut, ld_e: ldE },
      be: e.binding(0, rows * ldE),
      bde: de.binding(0, rows * ldIn),
      bn: norms,
      bdz: out.binding(0, rows * ldOut),
    },
    grid1d(gpu, Math.ceil(rows / WG)),
  );
  return out;
}

/** Normalises the rows of `z` in its own batch; returns the rows and their norms (caller owns both). */
export async function l2Normalize(
  z: GpuBuffer<"f32">,
): Promise<{ out: GpuBuffer<"f32">; norms: GpuBuffer<"f32"> }> {
  const batch = new CommandBatch(z.gpu, "l2Normalize");
  const r = await encodeL2NormalizeForward(batch, z);
  await batch.submit();
  return r;
}

/** Reference of the forward pass: normalised rows and norms. */
export function l2NormalizeForwardRef(z: HostMatrix): { out: HostMatrix; norms: Float32Array } {
  const out = new Float32Array(z.data.length), norms = new Float32Array(z.rows);
  for (let r = 0; r < z.rows; r++) {
    let s = 0;
    for (let j = 0; j < z.cols; j++) s += z.data[r * z.cols + j] ** 2;
    const n = Math.sqrt(s);
    norms[r] = n;
    const inv = 1 / Math.max(n, NORMALIZE_EPS);
    for (let j = 0; j < z.cols; j++) out[r * z.cols + j] = z.data[r * z.cols + j] * inv;
  }
  return { out: { rows: z.rows, cols: z.cols, data: out }, norms };
}

/** Reference of the backward pass (see {@link encodeL2NormalizeBackward}). */
export function l2NormalizeBackwardRef(e: HostMatrix, de: HostMatrix, norms: Float32Array): HostMatrix {
  checkShape(
    e.rows === de.rows && e.cols === de.cols,
    `l2NormalizeBackwardRef: ${fmtShape([e.rows, e.cols])} vs ${fmtShape([de.rows, de.cols])}`,
  );
  const out = new Float32Array(e.data.length);
  for (let r = 0; r < e.rows; r++) {
    const b = r * e.cols;
    if (norms[r] <= NORMALIZE_EPS) {
      for (let j = 0; j < e.cols; j++) out[b + j] = de.data[b + j] / NORMALIZE_EPS;
      continue;
    }
    let dot = 0;
    for (let j = 0; j < e.cols; j++) dot += e.data[b + j] * de.data[b + j];
    for (let j = 0; j < e.cols; j++) out[b + j] = (de.data[b + j] - e.data[b + j] * dot) / norms[r];
  }
  return { rows: e.rows, cols: e.cols, data: out };
}
