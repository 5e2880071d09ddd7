/** Shared test helpers: seeded data and tolerant comparisons. */
import { AssertionError } from "node:assert";

/** Asserts |a[i] - b[i]| <= atol + rtol * |b[i]| for all i (NaN equals NaN, Inf equals Inf of the same sign). */
export function assertAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-5, what = "values" }: { atol?: number; rtol?: number; what?: string } = {},
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({ message: `${what}: length ${actual.length} != expected ${expected.length}` });
  }
  let bad = 0;
  let first = "";
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], b = expected[i];
    const ok = Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) ||
      (Number.isFinite(b) && Math.abs(a - b) <= atol + rtol * Math.abs(b));
    if (!ok) {
      if (!bad) first = `at ${i}: got ${a}, expected ${b}`;
      bad++;
    }
  }
  if (bad) {
    throw new AssertionError({
      message: `${what}: ${bad} of ${actual.length} differ beyond atol ${atol} rtol ${rtol}; first ${first}`,
    });
  }
}
