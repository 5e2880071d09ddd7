import assert from "node:assert/strict";
import { AssertionError } from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import {
  type DistanceKernel,
  type DistanceOptions,
  encodePairwiseDot,
  encodePairwiseSqL2,
  pairwiseSqL2,
  pairwiseSqL2Ref,
} from "../../lib/ops/distance.ts";
import { ShapeError } from "../../lib/errors.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";

const gpu = await getGpu();

function matrix(rng: Rng, rows: number, cols: number, lo = -1, hi = 1): HostMatrix {
  return { rows, cols, data: rng.uniformArray(rows * cols, lo, hi) };
}

async function gpuDistances(
  q: HostMatrix,
  b: HostMatrix,
  options: DistanceOptions = {},
): Promise<Float32Array> {
  using qb = GpuBuffer.fromArray(gpu, q.data, [q.rows, q.cols]);
  using bb = GpuBuffer.fromArray(gpu, b.data, [b.rows, b.cols]);
  const batch = new CommandBatch(gpu);
  using out = await encodePairwiseSqL2(batch, qb, bb, undefined, options);
  await batch.submit();
  return await out.read();
}

function sqNorms(m: HostMatrix): Float64Array {
  const n = new Float64Array(m.rows);
  for (let i = 0; i < m.rows; i++) {
    for (let k = 0; k < m.cols; k++) n[i] += m.data[i * m.cols + k] ** 2;
  }
  return n;
}

/**
 * The stated precision of the norm expansion in f32: |gpu - exact| <= 1e-6 * sqrt(D) * (|q|^2 + |b|^2)
 * (a few f32 ulps of the norms per accumulated term), and never negative.
 */
function assertDistancesClose(got: Float32Array, q: HostMatrix, b: HostMatrix, what: string): void {
  const ref = pairwiseSqL2Ref(q, b).data;
  const qn = sqNorms(q), bn = sqNorms(b);
  const scale = 1e-6 * Math.sqrt(q.cols);
  for (let i = 0; i < q.rows; i++) {
    for (let j = 0; j < b.rows; j++) {
      const g = got[i * b.rows + j], r = ref[i * b.rows + j];
      const tol = scale * (qn[i] + bn[j]) + 1e-30;
      if (!(g >= 0) || Math.abs(g - r) > tol) {
        throw new AssertionError({ message: `${what}: out[${i}, ${j}] = ${g}, expected ${r} +- ${tol}` });
      }
    }
  }
}

const KERNELS: DistanceKernel[] = ["reg32", "reg16", "reg4", "tiled"];
// 1, primes, non-tile multiples; N % 4 == 0 takes the vec4-store path, D % 4 != 0 the padded one.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 5],
  [17, 131, 7],
  [67, 70, 64],
  [130, 129, 33],
  [33, 256, 8],
  [5, 300, 3],
];

for (const kernel of KERNELS) {
  Deno.test(`pairwiseSqL2 (${kernel}) matches the reference on awkward shapes`, async () => {
    const rng = new Rng(KERNELS.indexOf(kernel) + 1);
    for (const [m, n, d] of SHAPES) {
      const q = matrix(rng, m, d), b = matrix(rng, n, d);
      assertDistancesClose(await gpuDistances(q, b, { kernel }), q, b, `${kernel} ${m}x${n}x${d}`);
    }
  });
}

/** The products q_i . b_j in f64, each within 1e-6 * sqrt(D) * (|q_i|^2 + |b_j|^2) of the GPU's f32 sums. */
async function assertDotsClose(q: HostMatrix, b: HostMatrix, options: DistanceOptions, what: string) {
  using qb = GpuBuffer.fromArray(gpu, q.data, [q.rows, q.cols]);
  using bb = GpuBuffer.fromArray(gpu, b.data, [b.rows, b.cols]);
  const batch = new CommandBatch(gpu);
  using out = await encodePairwiseDot(batch, qb, bb, undefined, options);
  await batch.submit();
  const got = await out.read();
  const qn = sqNorms(q), bn = sqNorms(b);
  for (let i = 0; i < q.rows; i++) {
    for (let j = 0; j < b.rows; j++) {
      let want = 0;
      for (let k = 0; k < q.cols; k++) want += q.data[i * q.cols + k] * b.data[j * b.cols + k];
      const tol = 1e-6 * Math.sqrt(q.cols) * (qn[i] + bn[j]) + 1e-30;
      const g = got[i * b.rows + j];
      if (!(Math.abs(g - want) <= tol)) {
        throw new AssertionError({ message: `${what}: dot[${i}, ${j}] = ${g}, expected ${want} +- ${tol}` });
      }
    }
  }
}

Deno.test("pairwiseDot matches the reference on awkward shapes, every kernel, blocked too", async () => {
  const rng = new Rng(77);
  for (const kernel of KERNELS) {
    for (const [m, n, d] of [...SHAPES, [70, 96, 784] as [number, number, number]]) {
      // Values of both signs and an offset: a distance formula in place of the products would not pass.
      const q = matrix(rng, m, d, -1, 3), b = matrix(rng, n, d);
      await assertDotsClose(q, b, { kernel }, `${kernel} ${m}x${n}x${d}`);
    }
    const q = matrix(rng, 150, 37), b = matrix(rng, 40, 37);
    await assertDotsClose(q, b, { kernel, maxBindingBytes: 4096 }, `blocked ${kernel}`);
  }
});

Deno.test("pairwiseSqL2 picks a kernel per shape and agrees with itself across kernels", async () => {
  const rng = new Rng(9);
  const q = matrix(rng, 40, 24), b = matrix(rng, 200, 24);
  using qb = GpuBuffer.fromArray(gpu, q.data, [40, 24]);
  using bb = GpuBuffer.fromArray(gpu, b.data, [200, 24]);
  using out = await pairwiseSqL2(qb, bb);
  assert.deepEqual(out.shape, [40, 200]);
  const auto = await out.read();
  assertDistancesClose(auto, q, b, "auto");
  for (const kernel of KERNELS) {
    const other = await gpuDistances(q, b, { kernel });
    for (let i = 0; i < auto.length; i++) {
      assert.ok(Math.abs(other[i] - auto[i]) <= 1e-4, `${kernel} at ${i}`);
    }
  }
});

Deno.test("pairwiseSqL2 blocks rows and columns that exceed a binding (forced small bindings)", async () => {
  const rng = new Rng(3);
  // 16 KiB bindings: many row blocks (output rows bound from unaligned starts) and column blocks.
  for (const [m, n, d] of [[300, 333, 37], [260, 1000, 12]] as const) {
    const q = matrix(rng, m, d), b = matrix(rng, n, d);
    for (const kernel of ["reg32", "reg16", "tiled"] as const) {
      const got = await gpuDistances(q, b, { kernel, maxBindingBytes: 16384 });
      assertDistancesClose(got, q, b, `blocked ${kernel} ${m}x${n}x${d}`);
    }
  }
});

Deno.test("pairwiseSqL2 spans more workgroups than one dispatch dimension allows", async () => {
  // reg4 tiles are 4 x 32: 8,200 x 1,024 needs 2,050 * 32 = 65,600 > 65,535 workgroups.
  const rng = new Rng(4);
  const q = matrix(rng, 8200, 3), b = matrix(rng, 1024, 3);
  const got = await gpuDistances(q, b, { kernel: "reg4" });
  assertDistancesClose(got, q, b, "reg4 8200x1024");
});

Deno.test("pairwiseSqL2: self-distances are >= 0 and tiny; integer data is exact", async () => {
  const rng = new Rng(5);
  const x = matrix(rng, 50, 64, 10, 20); // large norms: the expansion's worst case for self-distances
  const got = await gpuDistances(x, x);
  const norms = sqNorms(x);
  for (let i = 0; i < 50; i++) {
    const dii = got[i * 50 + i];
    assert.ok(dii >= 0 && dii <= 1e-6 * 8 * 2 * norms[i], `self distance ${i}: ${dii}`);
  }
  const ints = { rows: 31, cols: 9, data: new Float32Array(31 * 9).map(() => rng.int(7) - 3) };
  assert.deepEqual(await gpuDistances(ints, ints), pairwiseSqL2Ref(ints, ints).data);
});

Deno.test("pairwiseSqL2: NaN and Inf coordinates give NaN or +Inf in their rows/columns only", async () => {
  const rng = new Rng(6);
  const q = matrix(rng, 9, 6), b = matrix(rng, 13, 6);
  q.data[2 * 6 + 1] = NaN; // query row 2
  q.data[5 * 6 + 3] = Infinity; // query row 5
  b.data[7 * 6 + 0] = -Infinity; // base row 7
  const got = await gpuDistances(q, b);
  const ref = pairwiseSqL2Ref(q, b).data;
  for (let i = 0; i < 9; i++) {
    for (let j = 0; j < 13; j++) {
      const g = got[i * 13 + j];
      if (i === 2 || i === 5 || j === 7) {
        assert.ok(Number.isNaN(g) || g === Infinity, `(${i}, ${j}) = ${g} should be NaN or +Inf`);
      } else {assert.ok(
          Math.abs(g - ref[i * 13 + j]) < 1e-4,
          `(${i}, ${j}) = ${g}, expected ${ref[i * 13 + j]}`,
        );}
    }
  }
});

Deno.test("pairwiseSqL2 rejects mismatched shapes with a ShapeError naming both", async () => {
  using q = GpuBuffer.zeros(gpu, "f32", [4, 8]);
  using b = GpuBuffer.zeros(gpu, "f32", [5, 7]);
  await assert.rejects(() => pairwiseSqL2(q, b), (e: Error) => {
    assert.ok(e instanceof ShapeError);
    assert.match(e.message, /\[4 x 8\].*\[5 x 7\]/);
    return true;
  });
  using flat = GpuBuffer.zeros(gpu, "f32", [8]);
  await assert.rejects(() => pairwiseSqL2(flat, b), ShapeError);
  using b8 = GpuBuffer.zeros(gpu, "f32", [5, 8]);
  using wrongOut = GpuBuffer.zeros(gpu, "f32", [4, 4]);
  await assert.rejects(() => encodePairwiseSqL2(new CommandBatch(gpu), q, b8, wrongOut), /out \[4 x 4\]/);
  assert.throws(
    () =>
      pairwiseSqL2Ref({ rows: 1, cols: 2, data: new Float32Array(2) }, {
        rows: 1,
        cols: 3,
        data: new Float32Array(3),
      }),
    ShapeError,
  );
});

Deno.test("pairwiseSqL2Ref computes exact squared distances", () => {
  const q = { rows: 2, cols: 2, data: new Float32Array([0, 0, 1, 1]) };
  const b = { rows: 1, cols: 2, data: new Float32Array([3, 4]) };
  assert.deepEqual(pairwiseSqL2Ref(q, b).data, new Float32Array([25, 13]));
});
