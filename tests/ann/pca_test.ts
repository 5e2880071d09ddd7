/**
 * The projection a FANNG index of wide rows walks (lib/ann/pca.ts): the basis is orthonormal and spans the
 * data's leading directions, and projectRows gives each row's coordinates in it (zero columns past dims),
 * at widths that are not multiples of 4.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { Rng } from "../../lib/util/rng.ts";
import { principalSubspace, projectRows } from "../../lib/ann/pca.ts";
import { noGpuErrors } from "./helpers.ts";

const gpu = await getGpu();

Deno.test("projectRows: coordinates in the basis, padded to whole vec4s, awkward widths", async () => {
  const rng = new Rng(5);
  for (const [n, d, dims] of [[1, 1, 1], [37, 130, 9], [300, 21, 4], [65, 784, 96]]) {
    const data = rng.uniformArray(n * d, -2, 2);
    const basis = principalSubspace({ rows: n, cols: d, data }, dims, rng);
    using x = GpuBuffer.fromArray(gpu, data, [n, d]);
    using y = await noGpuErrors(gpu, () => projectRows(x, { dims, basis }));
    const width = 4 * Math.ceil(dims / 4);
    assert.deepEqual(y.shape, [n, width]);
    const got = await y.read();
    for (let r = 0; r < n; r++) {
      let norm = 0;
      for (let c = 0; c < d; c++) norm += data[r * d + c] ** 2;
      for (let j = 0; j < width; j++) {
        let want = 0;
        if (j < dims) { for (let c = 0; c < d; c++) want += data[r * d + c] * basis[c * dims + j]; }
        const tol = 2e-6 * Math.sqrt(d) * (norm + 1);
        assert.ok(
          Math.abs(got[r * width + j] - want) <= tol,
          `${n}x${d}->${dims}: y[${r}, ${j}] ${got[r * width + j]} vs ${want}`,
        );
      }
    }
  }
});

Deno.test("principalSubspace: orthonormal columns spanning the leading directions", () => {
  const rng = new Rng(6);
  // Rows along two strong directions (axes 3 and 7) plus small noise in 20 dims.
  const n = 400, d = 20;
  const data = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < d; c++) data[r * d + c] = 0.01 * rng.normal();
    data[r * d + 3] += 5 * rng.normal();
    data[r * d + 7] += 3 * rng.normal();
  }
  const p = 2;
  const basis = principalSubspace({ rows: n, cols: d, data }, p, rng);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < p; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += basis[c * p + i] * basis[c * p + j];
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-5, `basis ${i}.${j} = ${dot}`);
    }
  }
  // Axes 3 and 7 lie (almost) in the span: their squared projections sum to about 1 each.
  for (const axis of [3, 7]) {
    let s = 0;
    for (let j = 0; j < p; j++) s += basis[axis * p + j] ** 2;
    assert.ok(s > 0.99, `axis ${axis}: ${s}`);
  }
});
