import assert from "node:assert/strict";
import { countWorkgroups, encodeCountBefore, encodeNearest, type TileRows } from "../../lib/eval/tiles.ts";
import { countBeforeRef, nearestRef } from "../../lib/eval/tiles_ref.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { encodePrepareRows, type PreparedRows } from "../../lib/ops/distance.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";

const gpu = await getGpu();
const NONE = 0xffffffff;

/** Small integers: every distance is exact in f32 however it is computed; ties abound. */
function intMatrix(rng: Rng, rows: number, cols: number, levels: number): HostMatrix {
  return { rows, cols, data: new Float32Array(rows * cols).map(() => rng.int(levels)) };
}

async function prepared(m: HostMatrix): Promise<{ rows: PreparedRows; tile: TileRows; x: GpuBuffer<"f32"> }> {
  const x = GpuBuffer.fromArray(gpu, m.data, [m.rows, m.cols]);
  const batch = new CommandBatch(gpu, "prep");
  const rows = await encodePrepareRows(batch, x, { keep: true });
  await batch.submit();
  return { rows, x, tile: { data: rows.data, norms: rows.norms, dim4: rows.dim4 } };
}

/** Rows grouped by label (ascending within a label) and, per tile of 32 positions, its label range. */
function classLists(labels: Uint32Array, colLabels: Uint32Array) {
  const order = Uint32Array.from(labels.keys()).sort((x, y) => labels[x] - labels[y] || x - y);
  const colOrder = Uint32Array.from(colLabels.keys()).sort((x, y) => colLabels[x] - colLabels[y] || x - y);
  const first = (l: number) => colOrder.findIndex((j) => colLabels[j] >= l);
  const start = (l: number) => (first(l) < 0 ? colOrder.length : first(l));
  const tiles = Math.ceil(order.length / 32);
  const ranges = new Uint32Array(2 * tiles);
  let maxSpan = 0;
  for (let t = 0; t < tiles; t++) {
    const lo = labels[order[32 * t]], hi = labels[order[Math.min(order.length, 32 * t + 32) - 1]];
    ranges[2 * t] = start(lo);
    ranges[2 * t + 1] = start(hi + 1);
    maxSpan = Math.max(maxSpan, ranges[2 * t + 1] - ranges[2 * t]);
  }
  return { order, colOrder, ranges, maxSpan };
}

Deno.test("nearest same-label column: GPU equals the reference (lists, ranges, self, radius, windows, awkward sizes)", async () => {
  const rng = new Rng(3);
  for (
    const [n, m, dim, classes, budget] of [
      [1, 1, 1, 1, undefined],
      [2, 2, 3, 1, undefined],
      [33, 33, 7, 3, undefined],
      [97, 61, 64, 5, 9 * 72], // windows of 2 tiles over spans of several
      [300, 300, 5, 2, 2 * 13],
      [257, 131, 9, 40, undefined], // many classes, some without columns
    ] as const
  ) {
    for (const [single, radius] of [[true, false], [false, false], [true, true], [false, true]]) {
      if (single && n !== m) continue;
      const a = intMatrix(rng, n, dim, 4);
      const b = single ? a : intMatrix(rng, m, dim, 4);
      const la = new Uint32Array(n).map(() => rng.int(classes));
      const lb = single ? la : new Uint32Array(m).map(() => rng.int(classes));
      const { order, colOrder, ranges, maxSpan } = classLists(la, lb);
      const labels = Uint32Array.from([...la, ...lb]);
      const ids = Uint32Array.from([...order, ...colOrder, ...ranges]);
      const A = await prepared(a), B = single ? A : await prepared(b);
      using idsBuf = GpuBuffer.fromArray(gpu, ids);
      using labBuf = GpuBuffer.fromArray(gpu, labels);
      using out = GpuBuffer.zeros(gpu, "u32", [n, 2]);
      // Radius per row: integer squared distances, so d > r ties are exact; some rows exclude everything.
      const minDistance = radius
        ? Float32Array.from({ length: n }, () => rng.int(4 * dim + 2) - 1)
        : undefined;
      using minBuf = minDistance ? GpuBuffer.fromArray(gpu, minDistance) : undefined;
      const batch = new CommandBatch(gpu, "nearest");
      await encodeNearest(batch, {
        minDistance: minBuf,
        a: A.tile,
        rows: n,
        rowList: true,
        b: B.tile,
        cols: { ranges: { offset: 2 * n + (m - n), maxSpan }, list: { offset: n } },
        ids: idsBuf,
        labels: { buffer: labBuf, colOffset: n },
        self: single,
        out,
        outStride: n,
        loopBudget: budget,
      });
      await batch.submit();
      const want = nearestRef(a, b, {
        rows: n,
        rowIds: order,
        ranges,
        colIds: colOrder,
        labels: { labels, colOffset: n },
        self: single,
        minDistance,
        outStride: n,
      });
      assert.deepEqual(await out.read(), want, `n=${n} m=${m} dim=${dim} single=${single} radius=${radius}`);
      if (!single) [B.rows, B.x].forEach((o) => o[Symbol.dispose]());
      [A.rows, A.x].forEach((o) => o[Symbol.dispose]());
    }
  }
});

Deno.test("nearest column of a range per layer (k-means form), row blocks and merging into the output", async () => {
  const rng = new Rng(5);
  for (const [n, k, layers, dim] of [[1, 1, 1, 2], [70, 3, 2, 5], [301, 37, 3, 64], [129, 66, 1, 13]]) {
    const pts = intMatrix(rng, n, dim, 5);
    const cents = intMatrix(rng, layers * k, dim, 5);
    const P = await prepared(pts), C = await prepared(cents);
    using out = GpuBuffer.zeros(gpu, "u32", [layers, n, 2]);
    // Seeded output: random existing pairs, merged with the centres [1, k) of each layer.
    const init = new Uint32Array(layers * n * 2);
    const f = new Float32Array(init.buffer);
    for (let i = 0; i < layers * n; i++) [f[2 * i], init[2 * i + 1]] = [rng.int(40), rng.int(k)];
    out.write(init);
    const batch = new CommandBatch(gpu, "nearest");
    // Rows in two blocks (global ids rowBase..), the second bound at an offset.
    const split = Math.min(n, 64);
    for (const [r0, nr] of [[0, split], [split, n - split]]) {
      if (nr === 0) continue;
      await encodeNearest(batch, {
        a: {
          data: P.rows.data.binding(r0 * P.rows.dim4 * 4, nr * P.rows.dim4 * 4),
          norms: P.rows.norms.binding(r0, nr),
          dim4: P.rows.dim4,
        },
        rowBase: r0,
        rows: nr,
        b: C.tile,
        cols: { begin: 1, step: k, len: k - 1 },
        out,
        outStride: n,
        layers,
        minInto: true,
        loopBudget: 40,
      });
    }
    await batch.submit();
    const want = nearestRef(pts, cents, {
      rows: n,
      range: { begin: 1, step: k, len: k - 1 },
      layers,
      outStride: n,
      init,
    });
    assert.deepEqual(await out.read(), want, `n=${n} k=${k} layers=${layers}`);
    [P.rows, P.x, C.rows, C.x].forEach((o) => o[Symbol.dispose]());
  }
});

Deno.test("count before a threshold: GPU equals the reference, symmetric and query/gallery, in parts", async () => {
  const rng = new Rng(8);
  for (
    const [n, m, dim, classes] of [[1, 1, 1, 1], [5, 3, 2, 2], [33, 40, 3, 3], [257, 97, 8, 4], [
      600,
      600,
      4,
      7,
    ]]
  ) {
    for (const symmetric of [true, false]) {
      if (symmetric && n !== m) continue;
      const a = intMatrix(rng, n, dim, 3);
      const b = symmetric ? a : intMatrix(rng, m, dim, 3);
      const la = new Uint32Array(n).map(() => rng.int(classes));
      const lb = symmetric ? la : new Uint32Array(m).map(() => rng.int(classes));
      const labels = Uint32Array.from(symmetric ? la : [...la, ...lb]);
      // Thresholds: a distance among those present (ties) and an id, or none.
      const thresh = new Uint32Array(2 * n);
      const f = new Float32Array(thresh.buffer);
      for (let i = 0; i < n; i++) {
        f[2 * i] = rng.int(3 * dim * 4) / 2;
        thresh[2 * i + 1] = rng.float() < 0.1 ? NONE : rng.int(m);
      }
      const A = await prepared(a), B = symmetric ? A : await prepared(b);
      using labBuf = GpuBuffer.fromArray(gpu, labels);
      using th = GpuBuffer.fromArray(gpu, thresh);
      const want = countBeforeRef(a, b, {
        symmetric,
        labels,
        colLabelOffset: symmetric ? 0 : n,
        thresh,
        size: n,
      });
      const total = countWorkgroups(gpu, n, m, symmetric);
      for (const parts of [1, 3]) {
        using counts = GpuBuffer.zeros(gpu, "u32", [n]);
        const batch = new CommandBatch(gpu, "count");
        for (let p = 0; p < parts; p++) {
          await encodeCountBefore(
            batch,
            {
              a: A.tile,
              rows: n,
              b: B.tile,
              cols: m,
              symmetric,
              labels: labBuf,
              colLabelOffset: symmetric ? 0 : n,
              thresh: th,
              counts,
            },
            Math.floor((total * p) / parts),
            Math.floor((total * (p + 1)) / parts),
          );
        }
        await batch.submit();
        assert.deepEqual(await counts.read(), want, `n=${n} m=${m} sym=${symmetric} parts=${parts}`);
      }
      if (!symmetric) [B.rows, B.x].forEach((o) => o[Symbol.dispose]());
      [A.rows, A.x].forEach((o) => o[Symbol.dispose]());
    }
  }
});
