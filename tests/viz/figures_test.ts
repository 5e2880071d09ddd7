import assert from "node:assert/strict";
import { ShapeError, UserError } from "../../lib/errors.ts";
import { batchPositions, type CurveRun, curvesFigure, FIG2_METRICS } from "../../lib/viz/curves.ts";
import { pngSize, renderFigure, saveFigure, svgSize, svgToPng } from "../../lib/viz/render.ts";
import type { BatchRecord, EpochRecord, TripletRecord } from "../../lib/viz/run_dir.ts";
import { classColors, scatterFigure } from "../../lib/viz/scatter.ts";
import { sweepFigure } from "../../lib/viz/sweep.ts";
import { chooseEpochs, tripletGridFigure } from "../../lib/viz/triplet_grid.ts";
import { sampleImageDataUrl, sniffImageMime } from "../../lib/viz/thumbnails.ts";
import { Rng } from "../../lib/util/rng.ts";
import { elements, markItems, parseSvg } from "./svg.ts";

function syntheticRun(label: string, epochs: number, seed: number, withEval = true): CurveRun {
  const rng = new Rng(seed);
  const ep: EpochRecord[] = [], batches: BatchRecord[] = [];
  let kappa = 16;
  for (let e = 1; e <= epochs; e++) {
    for (let b = 0; b < 50; b += 10) {
      kappa = Math.max(1, kappa * (0.7 + 0.2 * rng.float()));
      batches.push({ type: "batch", epoch: e, batch: b, kappa, error: rng.float(), loss: 1 / e });
    }
    ep.push({
      type: "epoch",
      epoch: e,
      kappa,
      kappaBound: kappa === 1 ? "min" : null,
      trainError: rng.float() / e,
      loss: 1 / e,
      tripletLoss: 0.7 / e,
      globalLoss: 0.3 / e,
      mining: { anchors: 100, smart: 90, fallback: 10, smartFraction: 0.9 - 0.01 * e },
      eval: withEval ? { recall: { "1": 0.5 + rng.float() / 10, "8": 0.9 }, nmi: 0.6 } : undefined,
    });
  }
  return { label, epochs: ep, batches };
}

Deno.test("curves: one line per run in every panel, valid SVG and PNG", async () => {
  const runs = [10, 20, 30, 40, 50, 60].map((p, i) => syntheticRun(`${p}%`, 7, i));
  const fig = curvesFigure(runs, { metrics: FIG2_METRICS, name: "fig2" });
  const r = await renderFigure(fig);
  assert.deepEqual(r.warnings, []);
  const doc = parseSvg(r.svg);
  assert.equal(markItems(doc, "line").length, 4 * runs.length, "4 panels x 6 runs lines");
  assert.equal(markItems(doc, "symbol").length, 4 * runs.length * 7, "a point per run per epoch per panel");
  const png = pngSize(r.png);
  assert.equal(png.width, Math.round(2 * r.width));
  assert.equal(png.height, Math.round(2 * r.height));
  assert.ok(r.width > 500 && r.height > 350, `plausible size ${r.width}x${r.height}`);
  // The legend names every run.
  const texts = elements(doc, "text").map((t) => t.textContent);
  for (const run of runs) assert.ok(texts.includes(run.label), `legend has ${run.label}`);
});

Deno.test("curves: kappa on a log axis with its bounds, loss parts, missing metrics left out", async () => {
  const run = syntheticRun("run", 5, 3, false);
  const fig = curvesFigure([run], { kappaBounds: [1, 1024], targetError: 0.5 });
  assert.match(fig.caption!, /Not logged: NMI, R@1, R@8/);
  const r = await renderFigure(fig);
  assert.deepEqual(r.warnings, []);
  const doc = parseSvg(r.svg);
  // Panels: training error, kappa, loss, smart fraction. Lines: 1 + (batch kappa + epoch kappa) + 3 loss parts + 1.
  assert.equal(markItems(doc, "line").length, 1 + 2 + 3 + 1);
  assert.equal(markItems(doc, "rule").length, 2 + 1, "kappa min/max and the target error");
  const texts = elements(doc, "text").map((t) => t.textContent);
  for (const t of ["κ min 1", "κ max 1024", "target 0.5", "total", "triplet", "global", "1,024"]) {
    assert.ok(texts.includes(t), `has text '${t}'`);
  }
  assert.throws(() => curvesFigure([run], { metrics: ["nmi"] }), UserError);
  assert.throws(() => curvesFigure([run, run]), /unique/);
});

Deno.test("curves: batch positions fall inside their epoch whether numbers restart or count on", () => {
  const mk = (epoch: number, batch: number): BatchRecord => ({
    type: "batch",
    epoch,
    batch,
    kappa: 1,
    error: 0,
    loss: 0,
  });
  assert.deepEqual(batchPositions([mk(1, 0), mk(1, 1), mk(2, 0), mk(2, 1)]), [0.5, 1, 1.5, 2]);
  assert.deepEqual(batchPositions([mk(1, 0), mk(1, 1), mk(2, 2), mk(2, 3)]), [0.5, 1, 1.5, 2]);
});

Deno.test("sweep: four R@K panels against log kappa with a point per kappa", async () => {
  const kappas = [1, 4, 16, 64];
  const pts = kappas.map((k, i) => ({
    value: k,
    recall: { "1": 0.4 + i / 50, "2": 0.5, "4": 0.6, "8": 0.7 + i / 100 },
  }));
  const r = await renderFigure(sweepFigure(pts, { param: "κ", log: true }));
  assert.deepEqual(r.warnings, []);
  const doc = parseSvg(r.svg);
  assert.equal(markItems(doc, "line").length, 4);
  assert.equal(markItems(doc, "symbol").length, 16);
  const texts = elements(doc, "text").map((t) => t.textContent);
  for (const k of ["1", "4", "16", "64", "R@1 vs κ", "R@8 vs κ"]) assert.ok(texts.includes(k), `has '${k}'`);
  assert.throws(() => sweepFigure([{ value: 0, recall: { "1": 1 } }], { param: "κ", log: true }), UserError);
  // Several series: one line each per panel.
  const two = [...pts, ...pts.map((p) => ({ ...p, series: "b" }))].map((p) => ({ series: "a", ...p }));
  const r2 = await renderFigure(sweepFigure(two, { param: "κ", log: true, ks: [1, 8] }));
  assert.equal(markItems(parseSvg(r2.svg), "line").length, 2 * 2);
});

Deno.test("scatter: a mark per point, one legend entry per class with its name", async () => {
  const n = 257, classes = 13, rng = new Rng(5);
  const data = new Float32Array(2 * n), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = 100 + (i % classes); // labels need not start at 0
    data[2 * i] = Math.cos(i % classes) * 5 + rng.normal();
    data[2 * i + 1] = Math.sin(i % classes) * 5 + rng.normal();
  }
  const names = new Map(Array.from({ length: classes }, (_, c) => [100 + c, `bird ${c}`]));
  const r = await renderFigure(scatterFigure({ rows: n, cols: 2, data }, labels, { classNames: names }));
  assert.deepEqual(r.warnings, []);
  const doc = parseSvg(r.svg);
  assert.equal(markItems(doc, "symbol").length, n);
  const fills = new Set(markItems(doc, "symbol").map((p) => p.getAttribute("fill")));
  assert.equal(fills.size, classes, "one colour per class");
  const texts = elements(doc, "text").map((t) => t.textContent);
  for (const name of names.values()) assert.ok(texts.includes(name), `legend has ${name}`);
  assert.throws(() => scatterFigure({ rows: n, cols: 3, data: new Float32Array(3 * n) }, labels), ShapeError);
  assert.equal(new Set(classColors(100)).size, 100);
});

Deno.test("triplet grid: rows of epochs, anchor | positive | negative thumbnails embedded as PNG", async () => {
  const side = 9, count = 40;
  const image = (i: number) => ({
    kind: "pixels" as const,
    width: side,
    height: side,
    channels: 1 as const,
    pixels: Uint8Array.from({ length: side * side }, (_, p) => (p * 7 + i * 13) % 256),
  });
  const records: TripletRecord[] = [2, 4, 6, 8, 10].map((epoch) => ({
    type: "triplets",
    epoch,
    triplets: [0, 1, 2, 3, 4, 5].map((a) => ({
      anchor: a,
      positive: a + 6,
      negative: (a + epoch) % count,
      smart: a !== 2,
    })),
  }));
  records[1].triplets.pop(); // anchor 5 missing at epoch 4: a grey placeholder
  const fig = await tripletGridFigure(records, { image, caption: (i) => `c${i % 6}`, epochs: [2, 4, 8] });
  const r = await renderFigure(fig);
  assert.deepEqual(r.warnings, []);
  const doc = parseSvg(r.svg);
  const images = markItems(doc, "image");
  assert.equal(images.length, (3 * 6 - 1) * 3);
  for (const img of images) {
    const href = img.getAttribute("xlink:href") ?? img.getAttribute("href");
    assert.match(href, /^data:image\/png;base64,/);
    const png = Uint8Array.from(atob(href.split(",")[1]), (c) => c.charCodeAt(0));
    assert.deepEqual(pngSize(png), { width: side, height: side });
  }
  const texts = elements(doc, "text").map((t) => t.textContent);
  for (const t of ["epoch 2", "epoch 4", "epoch 8", "anchor #0", "anchor #5", "negative"]) {
    assert.ok(texts.includes(t), t);
  }
  assert.ok(!texts.includes("epoch 6"));
  const dashed = markItems(doc, "rect").filter((p) => p.getAttribute("stroke-dasharray"));
  assert.equal(dashed.length, 3 * 3, "anchor 2's random triplets are dashed in 3 rows");
  assert.match(fig.caption!, /3 of 17 are random/);
  await assert.rejects(
    () => tripletGridFigure(records, { image, epochs: [3] }),
    /no mined triplets logged at epoch 3/,
  );
  assert.deepEqual(chooseEpochs([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 4), [1, 6, 11, 16]);
});

Deno.test("thumbnails: files are shrunk and typed by content, pixels checked against their size", async () => {
  const { encodeJpeg } = await import("../../lib/data/image.ts");
  const w = 300, h = 200;
  const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 31) % 256);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/big.jpg`, encodeJpeg({ width: w, height: h, data: rgb }));
    const url = await sampleImageDataUrl({ kind: "file", path: `${dir}/big.jpg` }, { maxSide: 60 });
    assert.match(url, /^data:image\/jpeg;base64,/);
    const { decodeImage } = await import("../../lib/data/image.ts");
    const thumb = decodeImage(Uint8Array.from(atob(url.split(",")[1]), (c) => c.charCodeAt(0)));
    assert.deepEqual([thumb.width, thumb.height], [60, 40]);
    await Deno.writeFile(`${dir}/x.gif`, new TextEncoder().encode("GIF89a......"));
    assert.match(
      await sampleImageDataUrl({ kind: "file", path: `${dir}/x.gif` }),
      /^data:image\/gif;base64,R0lGODlh/,
    );
    await Deno.writeFile(`${dir}/x.txt`, new TextEncoder().encode("hello"));
    await assert.rejects(() => sampleImageDataUrl({ kind: "file", path: `${dir}/x.txt` }), UserError);
    await assert.rejects(() => sampleImageDataUrl({ kind: "file", path: `${dir}/none.jpg` }), UserError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(sniffImageMime(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), "image/jpeg");
  await assert.rejects(
    () => sampleImageDataUrl({ kind: "pixels", width: 3, height: 3, channels: 3, pixels: new Uint8Array(9) }),
    ShapeError,
  );
});

Deno.test("render: PNG scale, saved files, size helpers reject bad input", async () => {
  const fig = {
    name: "tiny",
    title: "Tiny",
    vegaLite: {
      width: 100,
      height: 50,
      data: { values: [{ x: 1, y: 1 }, { x: 2, y: 3 }] },
      mark: "line",
      encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
    },
  } as const;
  const r = await renderFigure(fig, { scale: 3 });
  assert.deepEqual(pngSize(r.png), { width: Math.round(3 * r.width), height: Math.round(3 * r.height) });
  assert.deepEqual(svgSize(r.svg), { width: r.width, height: r.height });
  const one = await svgToPng(r.svg, { scale: 1 });
  assert.deepEqual(pngSize(one), { width: r.width, height: r.height });
  const dir = await Deno.makeTempDir();
  try {
    const saved = await saveFigure(r, `${dir}/figures`);
    assert.equal(await Deno.readTextFile(saved.svgPath), r.svg);
    assert.deepEqual(await Deno.readFile(saved.pngPath), r.png);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(() => pngSize(new TextEncoder().encode("not a png, not at all")), UserError);
  assert.throws(() => svgSize("<svg></svg>"), UserError);
  await assert.rejects(() => renderFigure({ ...fig, name: "../evil" }), UserError);
  await assert.rejects(() => svgToPng(r.svg, { scale: 0 }), UserError);
});
