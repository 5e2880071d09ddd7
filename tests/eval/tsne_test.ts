import assert from "node:assert/strict";
import { QuadTree, repulsiveForces } from "../../lib/eval/quadtree.ts";
import {
  conditionalP,
  jointProbabilities,
  knnBruteForce,
  tsne,
  tsneGpu,
  tsneGradient,
  tsneGradientExact,
} from "../../lib/eval/tsne.ts";
import { UserError } from "../../lib/errors.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";

function blobs(
  rng: Rng,
  n: number,
  dim: number,
  k: number,
  spread: number,
): { data: HostMatrix; labels: Int32Array } {
  const centres = rng.normalArray(k * dim, 4);
  const labels = new Int32Array(n).map((_, i) => i % k);
  const data = new Float32Array(n * dim).map((_, t) =>
    centres[labels[Math.floor(t / dim)] * dim + (t % dim)] + spread * rng.normal()
  );
  return { data: { rows: n, cols: dim, data }, labels };
}

/** Leave-one-out k-NN classification accuracy in the 2-D layout. */
function knnAccuracy(y: HostMatrix, labels: Int32Array, k: number): number {
  const nn = knnBruteForce(y, k);
  let ok = 0;
  for (let i = 0; i < y.rows; i++) {
    const votes = new Map<number, number>();
    for (let t = 0; t < k; t++) {
      const l = labels[nn.indices[i * k + t]];
      votes.set(l, (votes.get(l) ?? 0) + 1);
    }
    const best = [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
    if (best === labels[i]) ok++;
  }
  return ok / y.rows;
}

Deno.test("exact neighbours by brute force match a full sort (ties by index)", () => {
  const rng = new Rng(1);
  const n = 53, dim = 3, k = 7;
  const data = { rows: n, cols: dim, data: new Float32Array(n * dim).map(() => rng.int(3)) };
  const nn = knnBruteForce(data, k);
  for (let i = 0; i < n; i++) {
    const d = Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let c = 0; c < dim; c++) s += (data.data[i * dim + c] - data.data[j * dim + c]) ** 2;
      return [s, j];
    }).filter(([, j]) => j !== i).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    assert.deepEqual([...nn.indices.subarray(i * k, (i + 1) * k)], d.slice(0, k).map(([, j]) => j));
  }
});

Deno.test("conditional P reaches the perplexity; joint P is symmetric and sums to 1", () => {
  const rng = new Rng(2);
  const n = 200, k = 30, perplexity = 10;
  const distances = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = Array.from({ length: k }, () => 5 * rng.float()).sort((a, b) => a - b);
    distances.set(row, i * k);
  }
  const p = conditionalP(distances, n, k, perplexity);
  for (let i = 0; i < n; i++) {
    let h = 0, s = 0;
    for (let t = 0; t < k; t++) {
      const v = p[i * k + t];
      s += v;
      if (v > 0) h -= v * Math.log(v);
    }
    assert.ok(Math.abs(s - 1) < 1e-12);
    assert.ok(Math.abs(h - Math.log(perplexity)) < 1e-4, `row ${i}: entropy ${h}`);
  }
  const { data } = blobs(rng, 90, 5, 3, 1);
  const joint = jointProbabilities(data, 5);
  let total = 0;
  const entry = new Map<string, number>();
  for (let i = 0; i < joint.rows; i++) {
    for (let e = joint.rowStart[i]; e < joint.rowStart[i + 1]; e++) {
      total += joint.values[e];
      entry.set(`${i},${joint.cols[e]}`, joint.values[e]);
      assert.notEqual(joint.cols[e], i);
    }
  }
  assert.ok(Math.abs(total - 1) < 1e-12, `sum ${total}`);
  for (const [key, v] of entry) {
    const [i, j] = key.split(",");
    assert.equal(entry.get(`${j},${i}`), v);
  }
});

Deno.test("Barnes-Hut gradient: exact at theta 0, close at theta 0.5; duplicates handled", () => {
  const rng = new Rng(3);
  const { data } = blobs(rng, 150, 6, 4, 1);
  const p = jointProbabilities(data, 8);
  const y = new Float64Array(300).map(() => 3 * rng.normal());
  // Two exact duplicates and a triple, to exercise shared leaves.
  y[2] = y[0], y[3] = y[1];
  y[10] = y[12] = y[14], y[11] = y[13] = y[15];
  const exact = new Float64Array(300), bh0 = new Float64Array(300), bh = new Float64Array(300);
  const zExact = tsneGradientExact(p, y, 12, exact);
  const z0 = tsneGradient(p, y, 0, 12, bh0);
  assert.ok(Math.abs(z0 - zExact) <= 1e-10 * zExact, `Z ${z0} vs ${zExact}`);
  assertAllClose(bh0, exact, { atol: 1e-12, rtol: 1e-9, what: "theta 0 gradient" });
  tsneGradient(p, y, 0.5, 12, bh);
  let err = 0, norm = 0;
  for (let t = 0; t < 300; t++) {
    err += (bh[t] - exact[t]) ** 2;
    norm += exact[t] ** 2;
  }
  assert.ok(Math.sqrt(err / norm) < 0.05, `relative gradient error ${Math.sqrt(err / norm)}`);
  // The tree counts every point once.
  const tree = new QuadTree();
  tree.build(y, 150);
  assert.equal(tree.count[0], 150);
  const f = new Float64Array(300);
  assert.ok(repulsiveForces(tree, y, 150, 0, f) > 0);
});

Deno.test("t-SNE keeps separated clusters apart (2-D 5-NN accuracy), is seeded, reports progress", () => {
  const rng = new Rng(4);
  const { data, labels } = blobs(rng, 400, 10, 5, 1);
  const seen: number[] = [];
  const y = tsne(data, {
    perplexity: 15,
    iterations: 300,
    seed: 1,
    quiet: true,
    onProgress: (it) => seen.push(it),
  });
  assert.deepEqual([y.rows, y.cols], [400, 2]);
  assert.ok(y.data.every(Number.isFinite));
  const acc = knnAccuracy(y, labels, 5);
  assert.ok(acc >= 0.98, `5-NN accuracy in 2-D ${acc}`);
  assert.deepEqual(seen, [50, 100, 150, 200, 250, 300]);
  const again = tsne(data, { perplexity: 15, iterations: 300, seed: 1, quiet: true });
  assert.deepEqual(again.data, y.data);
  const other = tsne(data, { perplexity: 15, iterations: 20, seed: 2, quiet: true });
  assert.notDeepEqual(other.data, y.data.slice(0, 800));
  assert.throws(() => tsne({ rows: 1, cols: 2, data: new Float32Array(2) }), UserError);
  assert.throws(() => tsne(data, { perplexity: 0 }), UserError);
});

Deno.test("t-SNE with GPU neighbours separates clusters too; tiny inputs work", async () => {
  const rng = new Rng(6);
  const { data, labels } = blobs(rng, 300, 12, 3, 1);
  const y = await tsneGpu(data, { perplexity: 10, iterations: 250, quiet: true });
  assert.ok(knnAccuracy(y, labels, 5) >= 0.98);
  const tiny = tsne({ rows: 3, cols: 2, data: new Float32Array([0, 0, 1, 0, 5, 5]) }, {
    iterations: 50,
    quiet: true,
  });
  assert.ok(tiny.data.every(Number.isFinite));
});
