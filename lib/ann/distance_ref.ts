/**
 * Host-side squared L2 distance between rows, the arithmetic of the plain-TS references of lib/ann: summed
 * in f64 and rounded to f32 once. The GPU sums in f32 (four lanes at a time), so results agree exactly
 * on integer-valued data of moderate size (every partial sum exact) and to rounding otherwise.
 * @module
 */
import { type HostMatrix, sqL2Rows } from "../util/matrix.ts";

/** ||a_i - b_j||^2 rounded to f32. */
export function sqDistRows(a: HostMatrix, i: number, b: HostMatrix, j: number): number {
  return Math.fround(sqL2Rows(a, i, b, j));
}

/** True when (d1, v1) orders before (d2, v2): by distance, ties by id (the order of every list in lib/ann). */
export function before(d1: number, v1: number, d2: number, v2: number): boolean {
  return d1 < d2 || (d1 === d2 && v1 < v2);
}
