/**
 * Driving the retrieval page (tasks/serve.ts, web/) in headless Chromium with WebGPU, for the browser test
 * and for measuring search latency in the browser: Debian's /usr/bin/chromium through playwright-core, a
 * fresh profile, WebGPU on (`--enable-unsafe-webgpu`: a SwiftShader adapter on machines without a GPU),
 * and the switches that keep Chromium off the network.
 *
 * As a script it opens a served page, times searches of the given gallery items (graph and exact; one
 * warm-up, then the median of 3) and saves a screenshot of the first three items' results:
 *   deno run -A tests/retrieval/chromium.ts http://127.0.0.1:8000/ <items,...> <k> [screenshot.png]
 * @module
 */

import { bytesToBase64 } from "../../lib/viz/thumbnails.ts";
import { CHROMIUM, CHROMIUM_QUIET_ARGS, playwrightChromium } from "../fixtures/chromium.ts";

/** One neighbour as the page shows it. */
export interface PageNeighbour {
  item: number;
  id: string;
  label: number;
  distance: number;
}

/** What a search on the page showed. */
export interface PageSearch {
  queries: { name: string; neighbours: PageNeighbour[] }[];
  /** Milliseconds for all queries (head + search, readbacks included) and per query, as the page measured. */
  searchMs: number;
  perQueryMs: number;
  /** graph-gpu, graph-cpu or exact-gpu (lib/retrieval RetrievalResult.method). */
  method: string;
  /** The page's status line and the adapter it describes. */
  about: string;
}

// Page code runs as strings: this file needs no DOM types.
const READ_RESULTS = `(() => {
  const rows = [...document.querySelectorAll("#results .result")];
  const r = document.getElementById("results");
  return {
    queries: rows.map((row) => ({
      name: row.dataset.query,
      neighbours: [...row.querySelectorAll("figure.nb")].map((f) => ({
        item: Number(f.dataset.item), id: f.dataset.id, label: Number(f.dataset.label), distance: Number(f.dataset.distance),
      })),
    })),
    searchMs: Number(r.dataset.searchMs), perQueryMs: Number(r.dataset.perQueryMs), method: r.dataset.method,
    about: document.getElementById("about").textContent,
  };
})()`;

/** An open page and how to close it. */
export interface SearchPage {
  page: import("npm:playwright-core@1.65.1").Page;
  consoleErrors: string[];
  /** Requests to anything but the server itself (refused). */
  external: string[];
  /** Searches gallery `items` (k neighbours each) through the page's controls; returns what it shows. */
  search(items: readonly number[], k: number, exact?: boolean): Promise<PageSearch>;
  /** Drops an image file on the page's drop zone (k from the last search); returns what it shows. */
  dropImage(bytes: Uint8Array, name: string, mime: string): Promise<PageSearch>;
  screenshot(path: string): Promise<void>;
  close(): Promise<void>;
}

/** Opens the page served at `url` in headless Chromium with WebGPU and waits until the index is loaded. */
export async function openSearchPage(url: string, { timeoutMs = 300_000 } = {}): Promise<SearchPage> {
  const chromium = await playwrightChromium();
  const profile = await Deno.makeTempDir({ prefix: "dml-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--enable-unsafe-webgpu", ...CHROMIUM_QUIET_ARGS],
    viewport: { width: 1280, height: 860 },
  });
  const close = async () => {
    await context.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  };
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(timeoutMs);
    const consoleErrors: string[] = [], external: string[] = [];
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    const origin = new URL(url).origin;
    await page.route("**/*", (route) => {
      const u = route.request().url();
      if (u.startsWith(origin) || u.startsWith("data:") || u.startsWith("blob:")) return route.continue();
      external.push(u);
      return route.abort();
    });
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(`["ready", "error"].includes(document.body.dataset.state)`);
    const state = await page.evaluate(`document.body.dataset.state`);
    if (state === "error") {
      throw new Error(
        `the page failed to load the index: ${await page.evaluate(
          `document.getElementById("status").textContent`,
        )}; console: ${consoleErrors.join(" | ")}`,
      );
    }
    /** Runs `act` (which starts a search) and waits until the page shows its outcome. */
    const finished = async (act: () => Promise<unknown>): Promise<PageSearch> => {
      await page.evaluate(`document.body.dataset.state = "ready"`);
      await act();
      await page.waitForFunction(`["done", "error"].includes(document.body.dataset.state)`);
      if (await page.evaluate(`document.body.dataset.state`) === "error") {
        throw new Error(
          `the page's search failed: ${await page.evaluate(`document.getElementById("status").textContent`)}`,
        );
      }
      return await page.evaluate(READ_RESULTS) as PageSearch;
    };
    return {
      page,
      consoleErrors,
      external,
      async search(items, k, exact = false) {
        await page.fill("#items", items.join(", "));
        await page.fill("#k", String(k));
        await page.setChecked("#exact", exact);
        return await finished(() => page.click("#search"));
      },
      async dropImage(bytes, name, mime) {
        const file = `new File([Uint8Array.from(atob("${bytesToBase64(bytes)}"), (c) => c.charCodeAt(0))], ` +
          `${JSON.stringify(name)}, { type: ${JSON.stringify(mime)} })`;
        return await finished(() =>
          page.evaluate(`(() => {
            const dt = new DataTransfer();
            dt.items.add(${file});
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, cancelable: true }));
          })()`)
        );
      },
      async screenshot(path) {
        await page.screenshot({ path, fullPage: false });
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

if (import.meta.main) {
  const [url, items = "0", k = "10", shot] = Deno.args;
  const p = await openSearchPage(url);
  try {
    const list = items.split(",").map(Number);
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
    const out: Record<string, unknown> = {};
    for (const exact of [false, true]) {
      await p.search(list, Number(k), exact); // warm-up: compiles the kernels
      const runs: PageSearch[] = [];
      for (let i = 0; i < 3; i++) runs.push(await p.search(list, Number(k), exact));
      out[exact ? "exact" : "graph"] = {
        method: runs[0].method,
        searchMs: median(runs.map((r) => r.searchMs)),
        perQueryMs: median(runs.map((r) => r.perQueryMs)),
      };
      out.about = runs[0].about;
    }
    console.log(JSON.stringify(out));
    if (shot) {
      await p.search(list.slice(0, 3), Number(k));
      await p.screenshot(shot);
    }
  } finally {
    await p.close();
  }
}
