/**
 * mod.ts must work when imported from a URL (no import map, WGSL fetched over the network): serve this
 * repository on 127.0.0.1, import mod.ts from it and run a distance computation and a kNN through it.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "application/javascript; charset=utf-8",
  ".json": "application/json",
  ".wgsl": "text/plain; charset=utf-8",
};

/** Serves files under the repository root; anything outside it or missing is a 404. */
function serveRepository(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    const file = new URL(`.${path}`, ROOT);
    if (!file.href.startsWith(ROOT.href) || path.includes("..")) {
      return new Response("forbidden", { status: 403 });
    }
    try {
      const body = await Deno.readFile(file);
      const ext = path.slice(path.lastIndexOf("."));
      return new Response(body, { headers: { "content-type": TYPES[ext] ?? "application/octet-stream" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

Deno.test("mod.ts imported over HTTP computes distances and neighbours like the reference", async () => {
  const server = serveRepository();
  try {
    const url = `http://127.0.0.1:${server.addr.port}/mod.ts`;
    const dml = await import(url);
    const gpu = await dml.getGpu();
    const rng = new dml.Rng(7);
    const q = { rows: 5, cols: 6, data: rng.uniformArray(30, -1, 1) };
    const b = { rows: 9, cols: 6, data: rng.uniformArray(54, -1, 1) };
    using qb = dml.GpuBuffer.fromArray(gpu, q.data, [5, 6]);
    using bb = dml.GpuBuffer.fromArray(gpu, b.data, [9, 6]);
    using dist = await dml.pairwiseSqL2(qb, bb);
    const got: Float32Array = await dist.read();
    const ref: Float32Array = dml.pairwiseSqL2Ref(q, b).data;
    assert.equal(got.length, 45);
    got.forEach((v, i) =>
      assert.ok(Math.abs(v - ref[i]) <= 1e-5 * (1 + ref[i]), `entry ${i}: ${v} vs ${ref[i]}`)
    );
    using nn = await dml.knnSqL2(qb, bb, 3);
    const refNn = dml.knnSqL2Ref(q, b, 3);
    assert.deepEqual(await nn.indices.read(), refNn.indices);
  } finally {
    await server.shutdown();
  }
});
