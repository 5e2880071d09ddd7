/**
 * The report end to end: a small real run folder and an experiment folder (written here in the trainer's
 * format), `writeReport` on both, then each page opened in headless Chromium (Debian's `chromium`,
 * driven by playwright-core): no console errors, no request leaves the page's own file, every figure
 * loaded with a non-zero size; a full-page screenshot is saved (to $DML_TEST_ARTIFACTS when set).
 *
 * Needs /usr/bin/chromium (Debian's `chromium`; `./dml test` installs it). A test never installs system
 * packages: without the browser the two browser tests FAIL with a message naming the fix, so a suite that
 * passes has always rendered the pages.
 * @module
 */
import assert from "node:assert/strict";
import { pngSize } from "../../lib/viz/render.ts";
import { type ReportResult, type TsneFn, writeReport } from "../../lib/viz/report.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { parseSvg } from "./svg.ts";
import { writeSyntheticExperiment, writeSyntheticRun, writeTinyIdx } from "./synthetic.ts";
import { CHROMIUM, CHROMIUM_QUIET_ARGS, playwrightChromium, requireChromium } from "../fixtures/chromium.ts";

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isFile, () => false);
}

/** The real t-SNE when lib/eval/tsne.ts exists, else the first two principal axes (power iteration):
 * the report's wiring and the scatter figure are what this test checks. */
async function tsneForTest(): Promise<TsneFn> {
  try {
    const mod = await import(new URL("../../lib/eval/tsne.ts", import.meta.url).href);
    if (typeof mod.tsne === "function") return mod.tsne;
  } catch { /* not written yet */ }
  return (m: HostMatrix): HostMatrix => {
    const mean = new Float64Array(m.cols);
    for (let i = 0; i < m.rows; i++) {
      for (let j = 0; j < m.cols; j++) mean[j] += m.data[i * m.cols + j] / m.rows;
    }
    const axes: Float64Array[] = [];
    for (let a = 0; a < 2; a++) {
      let v = Float64Array.from({ length: m.cols }, (_, j) => 1 + j * (a + 1));
      for (let it = 0; it < 50; it++) {
        const next = new Float64Array(m.cols);
        for (let i = 0; i < m.rows; i++) {
          let dot = 0;
          for (let j = 0; j < m.cols; j++) dot += (m.data[i * m.cols + j] - mean[j]) * v[j];
          for (let j = 0; j < m.cols; j++) next[j] += dot * (m.data[i * m.cols + j] - mean[j]);
        }
        for (const u of axes) { // deflate earlier axes
          const d = next.reduce((s, x, j) => s + x * u[j], 0);
          for (let j = 0; j < m.cols; j++) next[j] -= d * u[j];
        }
        const norm = Math.hypot(...next) || 1;
        v = next.map((x) => x / norm);
      }
      axes.push(v);
    }
    const out = new Float32Array(2 * m.rows);
    for (let i = 0; i < m.rows; i++) {
      for (let a = 0; a < 2; a++) {
        let s = 0;
        for (let j = 0; j < m.cols; j++) s += (m.data[i * m.cols + j] - mean[j]) * axes[a][j];
        out[2 * i + a] = s;
      }
    }
    return { rows: m.rows, cols: 2, data: out };
  };
}

interface PageCheck {
  figures: number;
  consoleErrors: string[];
  external: string[];
}

/** Opens `htmlPath` in headless Chromium, checks every figure rendered, and saves a screenshot. */
async function openInChromium(htmlPath: string, screenshot: string): Promise<PageCheck> {
  const chromium = await playwrightChromium();
  const profile = await Deno.makeTempDir({ prefix: "dml-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--disable-gpu", ...CHROMIUM_QUIET_ARGS],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = await context.newPage();
    const consoleErrors: string[] = [], external: string[] = [];
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    // A self-contained page loads nothing but itself and data: URLs; anything else is recorded and refused.
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("data:") || url === new URL(`file://${htmlPath}`).href) return route.continue();
      external.push(url);
      return route.abort();
    });
    await page.goto(`file://${htmlPath}`, { waitUntil: "load" });
    // Runs in the page (a string, so this file needs no DOM types).
    const figures = await page.evaluate(`(async () => {
      const imgs = [...document.querySelectorAll("img.figure")];
      await Promise.all(imgs.map((i) => i.decode()));
      return imgs.map((i) => {
        const r = i.getBoundingClientRect();
        return { ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0 && r.width > 0 && r.height > 0, alt: i.alt };
      });
    })()`) as { ok: boolean; alt: string }[];
    for (const f of figures) assert.ok(f.ok, `figure '${f.alt}' did not render`);
    await page.screenshot({ path: screenshot, fullPage: true });
    return { figures: figures.length, consoleErrors, external };
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

async function checkFiles(result: ReportResult): Promise<void> {
  for (const f of result.figures) {
    parseSvg(await Deno.readTextFile(f.svgPath));
    const size = pngSize(await Deno.readFile(f.pngPath));
    assert.ok(size.width > 100 && size.height > 100, `${f.pngPath} is ${size.width}x${size.height}`);
  }
  const html = await Deno.readTextFile(result.htmlPath);
  assert.doesNotMatch(html, /(src|href)="https?:/, "no network resources");
  assert.equal(
    html.match(/<img class="figure"/g)?.length,
    result.figures.length,
    "every figure is on the page",
  );
}

const artifacts = Deno.env.get("DML_TEST_ARTIFACTS");

Deno.test("report: a run folder gives curves, triplet grid and t-SNE map, and renders in Chromium", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "dml-report-" });
  try {
    await writeTinyIdx(`${tmp}/data`);
    const run = await writeSyntheticRun(`${tmp}/run`, `${tmp}/data`);
    // The data set (for thumbnails and class names) is loaded from the run's config.json.
    const result = await writeReport(`${tmp}/run/`, { quiet: true, tsneFn: await tsneForTest() });
    assert.equal(result.htmlPath, `${tmp}/run/report.html`);
    assert.deepEqual(result.figures.map((f) => f.name), ["curves", "triplets", "tsne"]);
    assert.deepEqual(result.warnings, []);
    await checkFiles(result);
    const html = await Deno.readTextFile(result.htmlPath);
    for (const text of ["Final metrics", "Per epoch", "controller.kappaMax", "R@8", "tiny", "mine s"]) {
      assert.ok(html.includes(text), text);
    }
    assert.ok(html.match(/<tr>/g)!.length >= run.epochs + 1, "a table row per epoch");
    await requireChromium("the report's browser check");
    const shot = `${artifacts ?? tmp}/report-run.png`;
    const page = await openInChromium(result.htmlPath, shot);
    assert.deepEqual(page.consoleErrors, []);
    assert.deepEqual(page.external, []);
    assert.equal(page.figures, 3);
    const size = pngSize(await Deno.readFile(shot));
    assert.ok(size.width >= 1280 && size.height > 900, `screenshot ${size.width}x${size.height}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("report: without t-SNE, embeddings or a loadable data set the page says what it left out", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "dml-report-" });
  try {
    await writeSyntheticRun(`${tmp}/run`, `${tmp}/no-such-data`);
    await Deno.remove(`${tmp}/run/test-labels.i32`);
    const result = await writeReport(`${tmp}/run`, { quiet: true });
    assert.deepEqual(result.figures.map((f) => f.name), ["curves"]);
    const notes = result.warnings.join("\n");
    assert.match(notes, /could not load the run's data set/);
    assert.match(notes, /triplet grid left out/);
    assert.match(notes, /t-SNE map left out: the run wrote no test embeddings/);
    const html = await Deno.readTextFile(result.htmlPath);
    assert.ok(html.includes("t-SNE map left out"));
    const skipped = await writeReport(`${tmp}/run`, { quiet: true, tsne: false });
    assert.doesNotMatch(skipped.warnings.join("\n"), /t-SNE/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("report: an experiment folder compares its runs (curves, R@K vs kappa) and renders in Chromium", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "dml-report-" });
  try {
    await writeTinyIdx(`${tmp}/data`);
    const runDirs = await writeSyntheticExperiment(`${tmp}/exp`, `${tmp}/data`, [1, 4, 16, 64]);
    const result = await writeReport(`${tmp}/exp`, { quiet: true, tsne: false });
    assert.deepEqual(result.figures.map((f) => f.name), ["curves", "sweep-kappa"]);
    assert.equal(result.runs?.length, 4);
    for (const dir of runDirs) assert.ok(await isFile(`${dir}/report.html`), `${dir}/report.html`);
    await checkFiles(result);
    const html = await Deno.readTextFile(result.htmlPath);
    for (const label of ["κ=1", "κ=4", "κ=16", "κ=64", "Settings that differ", "controller.initialKappa"]) {
      assert.ok(html.includes(label), label);
    }
    await requireChromium("the report's browser check");
    const page = await openInChromium(result.htmlPath, `${artifacts ?? tmp}/report-experiment.png`);
    assert.deepEqual(page.consoleErrors, []);
    assert.deepEqual(page.external, []);
    assert.equal(page.figures, 2);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
