/**
 * The PCA projection a FANNG index of high-dimensional data builds and walks its graph in (docs/ann-build.md,
 * docs/ann-search.md "Projected search"): the top principal subspace of a row sample (subspace iteration
 * on the host; only the subspace matters, since projected distances depend on it alone), then every row
 * projected on the GPU (dot products with the basis, lib/ops/distance.ts). On llvmpipe a 64-d distance costs
 * about a twelfth of a 784-d one, and fits the kernels' register paths (D <= 128).
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { gatherRows } from "../ops/gather.ts";
import { encodePairwiseDot } from "../ops/distance.ts";
import { paddedWidth } from "../ops/linear.ts";
import type { HostMatrix } from "../util/matrix.ts";
import type { Rng } from "../util/rng.ts";
import { sampleIds } from "./candidates.ts";
import type { Projection } from "./graph.ts";

/** Orthonormalises the columns of a [rows x cols] row-major matrix in place (modified Gram-Schmidt). */
function orthonormalizeColumns(m: Float64Array, rows: number, cols: number, rng: Rng): void {
  for (let j = 0; j < cols; j++) {
    for (let attempt = 0; attempt < 3; attempt++) {
      for (let i = 0; i < j; i++) {
        let dot = 0;
        for (let r = 0; r < rows; r++) dot += m[r * cols + i] * m[r * cols + j];
        for (let r = 0; r < rows; r++) m[r * cols + j] -= dot * m[r * cols + i];
      }
      let norm = 0;
      for (let r = 0; r < rows; r++) norm += m[r * cols + j] ** 2;
      norm = Math.sqrt(norm);
      if (norm > 1e-9) {
        for (let r = 0; r < rows; r++) m[r * cols + j] /= norm;
        break;
      }
      // A degenerate column (rank-deficient data): restart it from random values.
      for (let r = 0; r < rows; r++) m[r * cols + j] = rng.normal();
    }
  }
}

/**
 * An orthonormal basis [dims x p] (row-major) of the top-p principal subspace of `sample`, by `iters`
 * rounds of subspace iteration V <- orth(X^T X V) on the centred sample.
 */
export function principalSubspace(sample: HostMatrix, p: number, rng: Rng, iters = 3): Float32Array {
  const { rows, cols: d, data } = sample;
  const mean = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) mean[c] += data[r * d + c];
  for (let c = 0; c < d; c++) mean[c] /= Math.max(1, rows);
  const x = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) x[r * d + c] = data[r * d + c] - mean[c];
  let v = new Float64Array(d * p);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal();
  orthonormalizeColumns(v, d, p, rng);
  const y = new Float64Array(rows * p);
  for (let it = 0; it < iters; it++) {
    // y = x v
    y.fill(0);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < d; c++) {
        const xv = x[r * d + c];
        if (xv === 0) continue;
        for (let j = 0; j < p; j++) y[r * p + j] += xv * v[c * p + j];
      }
    }
    // v = x^T y
    const next = new Float64Array(d * p);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < d; c++) {
        const xv = x[r * d + c];
        if (xv === 0) continue;
        for (let j = 0; j < p; j++) next[c * p + j] += xv * y[r * p + j];
      }
    }
    orthonormalizeColumns(next, d, p, rng);
    v = next;
  }
  return Float32Array.from(v);
}

/**
 * The projection of `x` [N x D] onto its top `dims` principal directions, computed from `sampleRows` random
 * rows (drawn from `rng`; all rows when N is smaller).
 */
export async function fitProjection(
  x: GpuBuffer<"f32">,
  dims: number,
  sampleRows: number,
  rng: Rng,
): Promise<Projection> {
  using idx = GpuBuffer.fromArray(x.gpu, sampleIds(rng, x.rows, sampleRows));
  using rows = await gatherRows(x, idx);
  const sample = { rows: idx.length, cols: x.cols, data: await rows.read() };
  return { dims, basis: principalSubspace(sample, dims, rng) };
}

/**
 * Projects every row of `x` [N x D] with `projection` on the GPU; returns [N x dims] (caller owns it), dims
 * rounded up to a multiple of 4 with zero columns. The coordinates are dot products with the basis columns,
 * by the register-tiled distance kernels (lib/ops/distance.ts encodePairwiseDot): on llvmpipe about 1.5x
 * the linear layer's rate at 10,000 x 784 -> 96.
 */
export async function projectRows(x: GpuBuffer<"f32">, projection: Projection): Promise<GpuBuffer<"f32">> {
  const { dims, basis } = projection;
  const d = x.cols, width = paddedWidth(dims);
  const columns = new Float32Array(width * d); // basis^T, one row per basis column
  for (let c = 0; c < d; c++) for (let j = 0; j < dims; j++) columns[j * d + c] = basis[c * dims + j];
  using b = GpuBuffer.fromArray(x.gpu, columns, [width, d]);
  const batch = new CommandBatch(x.gpu, "fanng.project");
  const y = await encodePairwiseDot(batch, x, b);
  await batch.submit();
  return y;
}
