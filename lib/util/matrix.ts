/**
 * Host-side matrices: row-major Float32Array with explicit rows and cols. The plain-TS references
 * and the data loaders use this shape.
 * @module
 */
import { fmtShape, ShapeError } from "../errors.ts";

/** A row-major [rows x cols] f32 matrix in host memory. */
export interface HostMatrix {
  /** Row count. */
  readonly rows: number;
  /** Column count. */
  readonly cols: number;
  /** [rows x cols] values, row-major. */
  readonly data: Float32Array;
}

/** Wraps `data` as a [rows x cols] matrix, checking the size. */
export function hostMatrix(data: Float32Array, rows: number, cols: number): HostMatrix {
  if (
    !Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || data.length !== rows * cols
  ) {
    throw new ShapeError(`data of length ${data.length} is not a ${fmtShape([rows, cols])} matrix`);
  }
  return { rows, cols, data };
}

/** Row `i` of `m` as a view. */
export function row(m: HostMatrix, i: number): Float32Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** The rows of `m` picked by `index`, as a new matrix. */
export function selectRows(m: HostMatrix, index: ArrayLike<number>): HostMatrix {
  const out = new Float32Array(index.length * m.cols);
  for (let i = 0; i < index.length; i++) out.set(row(m, index[i]), i * m.cols);
  return { rows: index.length, cols: m.cols, data: out };
}

/** A copy of `m` with every row scaled to unit L2 norm (zero rows stay zero). */
export function l2NormalizeRowsRef(m: HostMatrix): HostMatrix {
  const out = new Float32Array(m.data);
  for (let i = 0; i < m.rows; i++) {
    let s = 0;
    for (let j = 0; j < m.cols; j++) s += out[i * m.cols + j] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < m.cols; j++) out[i * m.cols + j] *= inv;
  }
  return { rows: m.rows, cols: m.cols, data: out };
}

/**
 * ||a_i - b_j||^2 summed in f64 in column order: the one host squared-L2 of the plain-TS references
 * (callers that mirror f32 GPU output round it with Math.fround).
 */
export function sqL2Rows(a: HostMatrix, i: number, b: HostMatrix, j: number): number {
  const d = a.cols, x = a.data, y = b.data;
  let s = 0;
  for (let k = 0, p = i * d, q = j * b.cols; k < d; k++) {
    const t = x[p + k] - y[q + k];
    s += t * t;
  }
  return s;
}
