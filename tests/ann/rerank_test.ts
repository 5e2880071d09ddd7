/**
 * The exact re-ranking of a projected search (kernels/fanng_search.wgsl `rerank`) against its plain-TS
 * reference, on integer-valued data (every distance exact in f32, so outputs agree bit for bit, ties
 * included): randomized cases over awkward sizes, column-block layouts and the register path, missing and
 * out-of-range candidates, NaN rows, self rows, query chunks and candidate lists split over dispatches;
 * parameter errors.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { UserError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";
import { type BlockLayout, VectorBlocks } from "../../lib/ann/vectors.ts";
import { NO_VERTEX } from "../../lib/ann/graph.ts";
import { runRerank } from "../../lib/ann/rerank.ts";
import { rerankRef } from "../../lib/ann/search_ref.ts";
import { assertSameOutputs, intMatrix, noGpuErrors } from "./helpers.ts";

const gpu = await getGpu();

/** [q x cands] distinct candidate ids per row, with some NO_VERTEX and out-of-range ids mixed in. */
function candidateRows(rng: Rng, q: number, cands: number, n: number): Uint32Array {
  const out = new Uint32Array(q * cands);
  for (let i = 0; i < q; i++) {
    const ids = rng.shuffle(Array.from({ length: n + 3 }, (_, j) => j)).slice(0, cands); // ids n..n+2 are out of range
    for (let c = 0; c < cands; c++) {
      out[i * cands + c] = c < ids.length && rng.int(9) !== 0 ? ids[c] : NO_VERTEX;
    }
  }
  return out;
}

interface Case {
  n: number;
  d: number;
  q: number;
  cands: number;
  k: number;
  self?: number;
  layout?: BlockLayout;
  chunk?: number;
  lanes?: number;
}

Deno.test("rerank: GPU matches the reference (layouts, register path, missing ids, NaN, self, chunks, split lists)", async () => {
  const rng = new Rng(41);
  const cases: Case[] = [
    { n: 1, d: 1, q: 1, cands: 1, k: 1 },
    { n: 50, d: 3, q: 7, cands: 9, k: 4 },
    { n: 300, d: 64, q: 130, cands: 48, k: 10 },
    { n: 200, d: 19, q: 65, cands: 33, k: 33, layout: { count: 3, w4: 2 } },
    { n: 400, d: 130, q: 70, cands: 40, k: 7, self: 123 },
    { n: 500, d: 784, q: 40, cands: 120, k: 10 },
    { n: 260, d: 12, q: 200, cands: 17, k: 5, chunk: 64 },
    // Lists longer than one dispatch's share of llvmpipe's loop limit.
    { n: 900, d: 200, q: 9, cands: 700, k: 300 },
    { n: 90, d: 5, q: 90, cands: 60, k: 11, self: 0 },
    // Four column blocks and lists of no multiple of 4 (the generic path scores four candidates a trip).
    { n: 120, d: 250, q: 30, cands: 23, k: 6, layout: { count: 4, w4: 16 } },
    { n: 150, d: 140, q: 13, cands: 6, k: 6, self: 7 },
    // Team sizes: one lane (the one-query-per-invocation kernel), teams of 8 and of a warp (more lanes than
    // candidates).
    { n: 300, d: 64, q: 70, cands: 48, k: 10, lanes: 1 },
    { n: 310, d: 130, q: 66, cands: 37, k: 9, lanes: 8, self: 200 },
    { n: 900, d: 200, q: 9, cands: 700, k: 300, lanes: 8 },
    { n: 300, d: 40, q: 70, cands: 21, k: 21, lanes: 32 },
    { n: 900, d: 200, q: 5, cands: 700, k: 300, lanes: 32, self: 4 },
  ];
  for (const c of cases) {
    const data = intMatrix(rng, c.n, c.d, 5);
    if (c.n > 20) data.data[11 * c.d] = NaN; // a NaN row: its distances count as +Inf
    const queries = c.self === undefined ? intMatrix(rng, c.q, c.d, 5) : undefined;
    if (queries && c.q > 3) queries.data[2 * c.d + 1] = NaN;
    const cand = candidateRows(rng, c.q, c.cands, c.n);
    using vectors = VectorBlocks.fromHost(gpu, data, c.layout);
    using qv = queries ? VectorBlocks.fromHost(gpu, queries, vectors.layout) : undefined;
    using candBuf = GpuBuffer.fromArray(gpu, cand, [c.q, c.cands]);
    using before = GpuBuffer.fromArray(gpu, Uint32Array.from({ length: c.q }, (_, i) => i * 3));
    const out = await noGpuErrors(
      gpu,
      () =>
        runRerank(vectors, qv ?? "self", candBuf, {
          k: c.k,
          selfStart: c.self,
          chunk: c.chunk,
          lanes: c.lanes,
          evaluationsInto: before,
        }),
    );
    const want = rerankRef(data, queries ?? "self", cand, c.cands, c.k, c.self ?? 0);
    const what = JSON.stringify({ ...c });
    // Evaluations: added to the counts given (i * 3 for query i).
    await assertSameOutputs(out, want, what, (i) => i * 3);
    [out.indices, out.distances, out.nearestAny, out.nearestAnyDistance].forEach((b) => b.destroy());
  }
});

Deno.test("rerank: out-of-range parameters are clear errors", async () => {
  const rng = new Rng(42);
  const data = intMatrix(rng, 20, 4);
  using vectors = VectorBlocks.fromHost(gpu, data);
  using cand = GpuBuffer.fromArray(gpu, new Uint32Array(6).fill(1), [2, 3]);
  using queries = VectorBlocks.fromHost(gpu, intMatrix(rng, 3, 4));
  await assert.rejects(() => runRerank(vectors, "self", cand, { k: 4 }), UserError);
  await assert.rejects(() => runRerank(vectors, "self", cand, { k: 0 }), UserError);
  await assert.rejects(() => runRerank(vectors, queries, cand, { k: 2 }), /3 queries but candidates for 2/);
  await assert.rejects(() => runRerank(vectors, "self", cand, { k: 2, selfStart: 19 }), /outside 0\.\.19/);
  await assert.rejects(() => runRerank(vectors, "self", cand, { k: 2, lanes: 3 }), /power of two/);
});
