/**
 * mod.ts must work when imported from a URL with no permission beyond the import itself (no import map;
 * the WGSL travels as text imports in the module graph): serve this repository on 127.0.0.1, import mod.ts
 * from it and run a distance computation and a kNN through it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { pairwiseSqL2Ref } from "../lib/ops/distance.ts";
import { knnSqL2Ref } from "../lib/ops/knn.ts";

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

// The client runs as its own process with --no-lock: the server's port changes every run, and importing
// in-process would add a lock entry per remote module per run to deno.lock.
Deno.test("mod.ts imported over HTTP computes distances and neighbours like the reference", async () => {
  const server = serveRepository();
  try {
    const url = `http://127.0.0.1:${server.addr.port}/mod.ts`;
    const client = fileURLToPath(new URL("./fixtures/import_over_http.ts", import.meta.url));
    const { code, stdout, stderr } = await new Deno.Command("deno", {
      args: [
        "run",
        "--no-lock",
        "--quiet",
        "--allow-import=127.0.0.1",
        client,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `the client failed:\n${err}`);
    const got = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
    const q = { rows: 5, cols: 6, data: Float32Array.from(got.q) };
    const b = { rows: 9, cols: 6, data: Float32Array.from(got.b) };
    const ref = pairwiseSqL2Ref(q, b).data;
    assert.equal(got.dist.length, 45);
    got.dist.forEach((v: number, i: number) =>
      assert.ok(Math.abs(v - ref[i]) <= 1e-5 * (1 + ref[i]), `entry ${i}: ${v} vs ${ref[i]}`)
    );
    assert.deepEqual(got.nn, [...knnSqL2Ref(q, b, 3).indices]);
  } finally {
    await server.shutdown();
  }
});
