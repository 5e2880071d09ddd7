/** Shared helpers of the lib/ann tests: seeded data, exact answers, recall, GPU error capture. */
import assert from "node:assert/strict";
import type { Gpu } from "../../lib/gpu/device.ts";
import type { GpuBuffer } from "../../lib/gpu/buffer.ts";
import type { SearchOutputs } from "../../lib/ann/search.ts";
import type { SearchRefResult } from "../../lib/ann/search_ref.ts";
import { NO_VERTEX, type PaddedGraph } from "../../lib/ann/graph.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import type { Rng } from "../../lib/util/rng.ts";

/** A [rows x cols] matrix of small integers in [0, max): every distance is exact in f32. */
export function intMatrix(rng: Rng, rows: number, cols: number, max = 8): HostMatrix {
  return { rows, cols, data: Float32Array.from({ length: rows * cols }, () => rng.int(max)) };
}

/** Gaussian blobs: `clusters` centres (spread `spread`), points around them (std 1); label = cluster. */
export function blobs(
  rng: Rng,
  rows: number,
  cols: number,
  clusters: number,
  spread = 4,
): { data: HostMatrix; labels: Int32Array } {
  const centres = rng.normalArray(clusters * cols, spread);
  const data = new Float32Array(rows * cols), labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const c = rng.int(clusters);
    labels[i] = c;
    for (let j = 0; j < cols; j++) data[i * cols + j] = centres[c * cols + j] + rng.normal();
  }
  return { data: { rows, cols, data }, labels };
}

/** Mean fraction of each row's `k` true neighbours found in the row's `k` results (the benches' own). */
export { recallAt } from "../../tasks/bench/_search_data.ts";

/** Runs `fn` inside a GPU validation error scope and throws if the device reported an error. */
export async function noGpuErrors<T>(gpu: Gpu, fn: () => Promise<T>): Promise<T> {
  gpu.device.pushErrorScope("validation");
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    await gpu.device.popErrorScope();
    throw e;
  }
  const err = await gpu.device.popErrorScope();
  if (err) throw new Error(`GPU validation error: ${err.message}`);
  return result;
}

/** An empty padded graph of `n` vertices with `r` slots each. */
export function emptyPadded(n: number, r: number): PaddedGraph {
  return {
    vertexCount: n,
    maxDegree: r,
    adjacency: new Uint32Array(n * r).fill(NO_VERTEX),
    lengths: new Float32Array(n * r).fill(Infinity),
    degrees: new Uint32Array(n),
  };
}

/** Asserts equal rows of two padded graphs up to each degree (slots past it are unspecified). */
export function assertSameGraph(got: PaddedGraph, want: PaddedGraph, what: string): void {
  assert.deepEqual(Array.from(got.degrees), Array.from(want.degrees), `${what}: degrees`);
  const r = want.maxDegree;
  for (let v = 0; v < want.vertexCount; v++) {
    const d = want.degrees[v];
    assert.deepEqual(
      Array.from(got.adjacency.subarray(v * r, v * r + d)),
      Array.from(want.adjacency.subarray(v * r, v * r + d)),
      `${what}: row ${v}`,
    );
    assert.deepEqual(
      Array.from(got.lengths.subarray(v * r, v * r + d)),
      Array.from(want.lengths.subarray(v * r, v * r + d)),
      `${what}: lengths of ${v}`,
    );
  }
}

/**
 * Asserts that GPU search outputs equal a reference's, output for output (`evaluations` offset per query by
 * `evaluationsBefore`, counts the outputs were added to); `what` names the case.
 */
export async function assertSameOutputs(
  out: SearchOutputs,
  want: SearchRefResult,
  what: string,
  evaluationsBefore: (i: number) => number = () => 0,
): Promise<void> {
  const same = async (got: GpuBuffer<"u32"> | GpuBuffer<"f32">, expected: ArrayLike<number>, name: string) =>
    assert.deepEqual(Array.from(await got.read()), Array.from(expected), `${what}: ${name}`);
  await same(
    out.evaluations,
    Array.from(want.evaluations, (e, i) => e + evaluationsBefore(i)),
    "evaluations",
  );
  await same(out.indices, want.indices, "indices");
  await same(out.distances, want.distances, "distances");
  await same(out.nearestAny, want.nearestAny, "nearest any");
  await same(out.nearestAnyDistance, want.nearestAnyDistance, "nearest-any distance");
}
