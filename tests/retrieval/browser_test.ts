/**
 * The retrieval page in a browser: `deno task serve` (run as the task runs it) on a small trained run's
 * index, opened in headless Chromium with WebGPU (SwiftShader on machines without a GPU). The page loads
 * the index over HTTP, searches several gallery items and a dropped image in the browser, and must find
 * the same neighbours as `deno task search` in Deno. A screenshot is saved (to $DML_TEST_ARTIFACTS when
 * set). Run alone with `deno task test --filter browser`.
 */
import assert from "node:assert/strict";
import { loadIdxSplit } from "../../lib/data/idx.ts";
import { pngSize } from "../../lib/viz/render.ts";
import { encodePixelsPng } from "../../lib/viz/thumbnails.ts";
import { indexMain } from "../../tasks/index.ts";
import type { SearchRecord } from "../../tasks/search.ts";
import { requireChromium } from "../fixtures/chromium.ts";
import { openSearchPage, type PageSearch } from "./chromium.ts";
import { searchJson, taskArgs, trainTinyRun } from "./helpers.ts";

/** Starts `deno task serve <index> --port 0` as a child process; resolves with its address once it listens. */
async function startServer(index: string) {
  const child = new Deno.Command("deno", {
    args: [...(await taskArgs("serve")), index, "--port", "0", "--quiet"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const errors = new Response(child.stderr).text();
  let seen = "";
  while (!/http:\/\/127\.0\.0\.1:\d+\//.test(seen)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`deno task serve ended before listening: ${await errors}`);
    seen += value;
  }
  return {
    url: seen.match(/http:\/\/127\.0\.0\.1:\d+\//)![0],
    async stop() {
      child.kill("SIGTERM");
      await lines.cancel();
      await child.status;
      await errors;
    },
  };
}

/** The page's neighbours equal the CLI's: same items in the same order, distances to float rounding. */
function assertSame(page: PageSearch, cli: SearchRecord[], what: string): void {
  assert.equal(page.queries.length, cli.length, what);
  cli.forEach((rec, q) => {
    const got = page.queries[q].neighbours;
    assert.deepEqual(got.map((n) => n.id), rec.neighbours.map((n) => n.id), `${what}: ${rec.query.name}`);
    got.forEach((n, j) => {
      assert.equal(n.label, rec.neighbours[j].label);
      assert.ok(
        Math.abs(n.distance - rec.neighbours[j].distance) <= 1e-4,
        `${what}: ${n.distance} vs ${rec.neighbours[j].distance}`,
      );
    });
  });
}

Deno.test({
  name:
    "retrieval page in the browser: serve, load the index over HTTP, search in WebGPU, same neighbours as deno task search",
  async fn() {
    await requireChromium("the retrieval page's browser test");
    const dir = await Deno.makeTempDir({ prefix: "dml-browser-" });
    try {
      const tiny = await trainTinyRun(dir);
      await indexMain([tiny.run, "--quiet"]);
      const index = `${tiny.run}/index`;
      const rows = [3, 8, 21, 77, 149];
      const k = 5;
      const [graph, exact] = [
        await searchJson(index, rows, k),
        await searchJson(index, rows, k, ["--exact"]),
      ];

      const server = await startServer(index);
      try {
        const page = await openSearchPage(server.url);
        try {
          // The test split's rows are the gallery's items here, so item i is test row i.
          const shown = await page.search(rows, k);
          assert.match(shown.about, /150 test items of data, 64-d embeddings .*WebGPU adapter: /);
          assert.ok(["graph-gpu", "graph-cpu"].includes(shown.method), shown.method);
          assertSame(shown, graph, "graph search");
          assertSame(await page.search(rows, k, true), exact, "exact kNN");
          assert.ok(shown.perQueryMs > 0 && shown.searchMs >= shown.perQueryMs);

          // A dropped picture of test row 8 finds item 8 itself first.
          const test = await loadIdxSplit(tiny.data, "t10k");
          const px = Uint8Array.from(
            test.features.data.subarray(8 * 784, 9 * 784),
            (v) => Math.round(v * 255),
          );
          const dropped = await page.dropImage(await encodePixelsPng(px, 28, 28, 1), "row8.png", "image/png");
          assert.equal(dropped.queries[0].name, "row8.png");
          assert.equal(dropped.queries[0].neighbours[0].item, 8);
          assert.ok(dropped.queries[0].neighbours[0].distance < 1e-3);

          await page.search(rows.slice(0, 3), k); // the screenshot's state
          const shot = `${Deno.env.get("DML_TEST_ARTIFACTS") ?? dir}/retrieval-page.png`;
          await page.screenshot(shot);
          const size = pngSize(await Deno.readFile(shot));
          assert.ok(size.width >= 1000 && size.height >= 600, `screenshot ${size.width}x${size.height}`);
          assert.deepEqual(page.consoleErrors, []);
          assert.deepEqual(page.external, [], "everything comes from the server");
        } finally {
          await page.close();
        }
      } finally {
        await server.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
