/**
 * The run report: one self-contained HTML page (figures inline as SVG data URLs, no network) with the
 * run's config, its metrics table and every figure, written next to the figures' SVG and PNG files.
 * Works on a single run folder and on an experiment folder (several runs and experiment.json); see
 * run_dir.ts for both layouts.
 *
 * @example
 * ```ts
 * import { writeReport } from "./report.ts";
 * // `runDir`: a folder written by `deno task train` (or an experiment folder).
 * async function report(runDir: string): Promise<string> {
 *   const { htmlPath } = await writeReport(runDir, { tsne: false });
 *   return htmlPath; // <runDir>/report.html
 * }
 * ```
 * @module
 */
import { type DatasetConfig, loadDataset } from "../dataset_config.ts";
import { tsne as tsneHost } from "../eval/tsne.ts";
import type { Dataset } from "../data/dataset.ts";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { selectRows } from "../util/matrix.ts";
import { Rng } from "../util/rng.ts";
import { ALL_CURVE_METRICS, type CurveRun, curvesFigure } from "./curves.ts";
import { type FigureSpec, type PngOptions, type RenderedFigure, renderFigure, saveFigure } from "./render.ts";
import {
  describeDataset,
  type EpochRecord,
  type ExperimentData,
  isExperimentDir,
  kappaBounds,
  readExperimentDir,
  readRunDir,
  readTestEmbeddings,
  type RunConfig,
  type RunData,
} from "./run_dir.ts";
import { scatterFigure } from "./scatter.ts";
import { sweepFigure } from "./sweep.ts";
import { bytesToBase64 } from "./thumbnails.ts";
import { tripletGridFigure } from "./triplet_grid.ts";

/** A t-SNE implementation: [n x d] in, [n x 2] out. */
export type TsneFn = (data: HostMatrix, opts: { seed?: number }) => HostMatrix | Promise<HostMatrix>;

/** Options for {@link writeReport}. */
export interface ReportOptions {
  /**
   * Compute a t-SNE map of the final test embeddings (default true).
   * @default true
   */
  tsne?: boolean;
  /**
   * Most test points in the t-SNE map (a seeded random subset beyond this; default 6000).
   * @default 6000
   */
  tsnePoints?: number;
  /**
   * The t-SNE to use (default: `tsne` from lib/eval/tsne.ts).
   * @default `tsne` from lib/eval/tsne.ts
   */
  tsneFn?: TsneFn;
  /**
   * Seed for subsampling and t-SNE (default 0).
   * @default 0
   */
  seed?: number;
  /**
   * The run's data set, for triplet thumbnails and class names (default: loaded from config.json).
   * @default loaded from config.json
   */
  dataset?: Dataset;
  /**
   * Experiment folders: also write each run's own report (default true).
   * @default true
   */
  perRun?: boolean;
  /**
   * PNG settings for the figure files.
   * @default the PngOptions defaults
   */
  png?: PngOptions;
  /**
   * No progress lines on stderr.
   * @default false
   */
  quiet?: boolean;
}

/** What {@link writeReport} wrote. */
export interface ReportResult {
  /** Path of the report.html written. */
  htmlPath: string;
  /** The figures written. */
  figures: { name: string; svgPath: string; pngPath: string }[];
  /** Things the report could not show and why (also listed on the page). */
  warnings: string[];
  /** Reports of the runs of an experiment (when `perRun`). */
  runs?: ReportResult[];
}

// ---------------------------------------------------------------- HTML helpers

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** A number for a table: integers as they are, others with 4 significant digits. */
export function fmtNumber(v: unknown): string {
  if (typeof v !== "number") return v === undefined || v === null ? "" : String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

/** Nested objects flattened to dotted keys (`controller.kappaMin`); arrays are kept as JSON. */
export function flatten(value: unknown, prefix = "", out: [string, unknown][] = []): [string, unknown][] {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, Array.isArray(value) ? JSON.stringify(value) : value]);
  }
  return out;
}

function table(head: string[], rows: unknown[][], cls = ""): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(fmtNumber(c))}</td>`).join("")}</tr>`)
    .join("\n");
  return `<table${
    cls ? ` class="${cls}"` : ""
  }><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function keyValueTable(entries: [string, unknown][]): string {
  return table(["setting", "value"], entries.map(([k, v]) => [k, v]), "kv");
}

/** Per-epoch metrics as a table (columns only for what was logged). */
export function epochTable(epochs: readonly EpochRecord[]): string {
  const ks = [...new Set(epochs.flatMap((e) => Object.keys(e.eval?.recall ?? {})))].sort((a, b) => +a - +b);
  const phases = [...new Set(epochs.flatMap((e) => Object.keys(e.timing ?? {})))];
  const cols: [string, (e: EpochRecord) => unknown][] = [
    ["epoch", (e) => e.epoch],
    ["κ", (e) => e.kappa],
    ["κ bound", (e) => e.kappaBound ?? ""],
    ["train error", (e) => e.trainError],
    ["loss", (e) => e.loss],
    ["triplet loss", (e) => e.tripletLoss],
    ["global loss", (e) => e.globalLoss],
    ["smart fraction", (e) => e.mining?.smartFraction],
    ...ks.map((k): [string, (e: EpochRecord) => unknown] => [`R@${k}`, (e) => e.eval?.recall?.[k]]),
    ["NMI", (e) => e.eval?.nmi],
    ["AMI", (e) => e.eval?.ami],
    ["MAP@R", (e) => e.eval?.mapAtR],
    ["R-Precision", (e) => e.eval?.rPrecision],
    ["s/epoch", (e) => e.epochSec],
    ...phases.map((
      p,
    ): [string, (e: EpochRecord) => unknown] => [`${p.replace(/Sec$/, "")} s`, (e) => e.timing?.[p]]),
    ["triplets/s", (e) => e.tripletsPerSec],
  ];
  const used = cols.filter(([, get]) => epochs.some((e) => get(e) !== undefined && get(e) !== ""));
  return table(used.map(([h]) => h), epochs.map((e) => used.map(([, get]) => get(e))), "metrics");
}

function figureHtml(fig: RenderedFigure, relDir: string): string {
  const src = `data:image/svg+xml;base64,${bytesToBase64(new TextEncoder().encode(fig.svg))}`;
  return `<figure id="fig-${fig.name}">
<h3>${escapeHtml(fig.title)}</h3>
<img class="figure" src="${src}" width="${fig.width}" height="${fig.height}" alt="${escapeHtml(fig.title)}">
<figcaption>${
    escapeHtml(fig.caption ?? "")
  } <span class="files">Files: <a href="${relDir}/${fig.name}.svg">SVG</a>,
<a href="${relDir}/${fig.name}.png">PNG</a></span></figcaption>
</figure>`;
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 8px 0; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f5f5f5; }
table.kv td:first-child, table.runs td:first-child { text-align: left; font-family: ui-monospace, monospace; }
figure { margin: 16px 0 28px; } img.figure { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; } .files { color: #888; }
.warnings { background: #fff7e0; border: 1px solid #f0d080; padding: 8px 12px; }
details { margin: 8px 0; } summary { cursor: pointer; }`;

function page(title: string, subtitle: string, body: string, warnings: string[]): string {
  const warn = warnings.length
    ? `<div class="warnings"><b>Notes</b><ul>${
      warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join("")
    }</ul></div>`
    : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="sub">${escapeHtml(subtitle)}</p>
${warn}
${body}
</body>
</html>
`;
}

/** The data set a run trained on, loaded the way the trainer loads it (split and limits applied). */
async function loadRunDataset(config: RunConfig): Promise<Dataset | undefined> {
  const dataset = config.dataset as DatasetConfig | undefined;
  if (!dataset) return undefined;
  return await loadDataset(dataset, {
    train: Number(config.trainLimit ?? 0),
    test: Number(config.testLimit ?? 0),
  });
}

// ---------------------------------------------------------------- figures of a run

function say(opts: ReportOptions, line: string): void {
  if (!opts.quiet) console.error(`report: ${line}`);
}

async function renderAndSave(
  spec: FigureSpec,
  dir: string,
  opts: ReportOptions,
  out: { rendered: RenderedFigure[]; saved: ReportResult["figures"]; warnings: string[] },
): Promise<void> {
  const t0 = performance.now();
  const fig = await renderFigure(spec, opts.png);
  const saved = await saveFigure(fig, dir);
  out.rendered.push(fig);
  out.saved.push({ name: fig.name, ...saved });
  out.warnings.push(...fig.warnings.map((w) => `figure ${fig.name}: ${w}`));
  say(opts, `${fig.name}.svg/.png written (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/** Checks the logged triplets against the data set's labels (anchor and positive share a class, the
 * negative does not); a mismatch means the indices refer to another split than the one loaded. */
function tripletLabelProblems(run: RunData, labels: Int32Array): string | undefined {
  let bad = 0, total = 0;
  for (const rec of run.log.triplets) {
    for (const t of rec.triplets) {
      total++;
      const inRange = [t.anchor, t.positive, t.negative].every((i) => i >= 0 && i < labels.length);
      if (!inRange || labels[t.anchor] !== labels[t.positive] || labels[t.anchor] === labels[t.negative]) {
        bad++;
      }
    }
  }
  return bad
    ? `${bad} of ${total} logged triplets do not match the loaded training labels (anchor and positive of one ` +
      "class, negative of another): the data set may differ from the one the run trained on"
    : undefined;
}

async function tsneFigure(run: RunData, ds: Dataset | undefined, opts: ReportOptions, warnings: string[]) {
  if (opts.tsne === false) return undefined;
  const test = await readTestEmbeddings(run);
  if (!test) {
    warnings.push(
      "t-SNE map left out: the run wrote no test embeddings (test-embeddings.f32, test-labels.i32)",
    );
    return undefined;
  }
  const tsne = opts.tsneFn ?? tsneHost;
  let { embeddings, labels } = test;
  const cap = opts.tsnePoints ?? 6000;
  if (embeddings.rows > cap) {
    const pick = new Rng(opts.seed ?? 0).shuffle(Array.from({ length: embeddings.rows }, (_, i) => i)).slice(
      0,
      cap,
    )
      .sort((a, b) => a - b);
    embeddings = selectRows(embeddings, pick);
    labels = Int32Array.from(pick, (i) => test.labels[i]);
  }
  say(opts, `t-SNE of ${embeddings.rows} test embeddings (${embeddings.cols}-d)...`);
  const points = await tsne(embeddings, { seed: opts.seed ?? 0 });
  return scatterFigure(points, labels, {
    classNames: ds?.classNames,
    seed: opts.seed,
    name: "tsne",
    title: "t-SNE of the test embeddings",
    caption: `t-SNE of ${embeddings.rows} final test embeddings` +
      (embeddings.rows < test.embeddings.rows
        ? ` (a random ${embeddings.rows} of ${test.embeddings.rows})`
        : "") +
      ", coloured by class.",
  });
}

async function tripletsFigure(run: RunData, ds: Dataset | undefined, warnings: string[]) {
  if (!run.log.triplets.length) return undefined;
  const image = ds?.train.image;
  if (!image) {
    warnings.push(
      ds
        ? "mined-triplet grid left out: the data set has no pictures of its samples"
        : `mined-triplet grid left out: could not load the run's data set (${describeDataset(run.config)})`,
    );
    return undefined;
  }
  const problem = tripletLabelProblems(run, ds.train.labels);
  if (problem) warnings.push(problem);
  const name = (i: number) => {
    const l = ds.train.labels[i];
    return ds.classNames?.get(l) ?? `class ${l}`;
  };
  // The paper shows epochs 4, 8, 12 and 16; use them when they were logged.
  const logged = run.log.triplets.map((t) => t.epoch);
  const paper = [4, 8, 12, 16].filter((e) => logged.includes(e));
  return await tripletGridFigure(run.log.triplets, {
    image,
    caption: problem ? undefined : name,
    epochs: paper.length === 4 && logged.length > 8 ? paper : undefined,
  });
}

function finalEval(run: RunData): EpochRecord | undefined {
  return run.log.epochs.findLast((e) => e.eval);
}

function curveRun(label: string, run: RunData): CurveRun {
  return { label, epochs: run.log.epochs, batches: run.log.batches };
}

function targetError(config: RunConfig): number | undefined {
  const c = config.controller as { adaptive?: boolean; targetError?: number } | undefined;
  return c?.adaptive === false ? undefined : c?.targetError;
}

// ---------------------------------------------------------------- reports

/** Writes `<runDir>/report.html` and the figures in `<runDir>/figures/`. */
export async function writeRunReport(runDir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  const run = await readRunDir(runDir);
  const warnings = [...run.warnings];
  const out = { rendered: [] as RenderedFigure[], saved: [] as ReportResult["figures"], warnings };
  const figDir = `${runDir}/figures`;
  say(opts, `run ${runDir}: ${run.log.epochs.length} epochs logged`);

  if (run.log.epochs.length) {
    await renderAndSave(
      curvesFigure([curveRun("run", run)], {
        metrics: ALL_CURVE_METRICS,
        kappaBounds: kappaBounds(run.config),
        targetError: targetError(run.config),
      }),
      figDir,
      opts,
      out,
    );
  } else {
    warnings.push("no epoch finished: no curves to draw");
  }
  let ds = opts.dataset;
  const needData = run.log.triplets.length > 0 || opts.tsne !== false;
  if (!ds && needData) {
    try {
      ds = await loadRunDataset(run.config);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      warnings.push(`could not load the run's data set for pictures and class names: ${e.message}`);
    }
  }
  const grid = await tripletsFigure(run, ds, warnings);
  if (grid) await renderAndSave(grid, figDir, opts, out);
  const map = await tsneFigure(run, ds, opts, warnings);
  if (map) await renderAndSave(map, figDir, opts, out);

  const start = run.log.start ?? {};
  const last = finalEval(run);
  const final: [string, unknown][] = (last
    ? [
      ["epoch", last.epoch],
      ...Object.entries(last.eval!.recall ?? {}).map(([k, v]): [string, unknown] => [`R@${k}`, v]),
      ["NMI", last.eval!.nmi],
      ["AMI", last.eval!.ami],
      ["MAP@R", last.eval!.mapAtR],
      ["R-Precision", last.eval!.rPrecision],
      ["κ", last.kappa],
      ["training error", last.trainError],
    ] as [string, unknown][]
    : []).filter(([, v]) => v !== undefined && v !== null);
  const totalSec = run.log.epochs.reduce((s, e) => s + (e.epochSec ?? 0), 0);
  const summaryRest = run.summary
    ? Object.fromEntries(Object.entries(run.summary).filter(([k]) => k !== "table"))
    : {};
  const body = [
    `<h2>Final metrics</h2>`,
    final.length
      ? table(final.map(([k]) => k), [final.map(([, v]) => v)], "final")
      : "<p>No evaluation was logged.</p>",
    `<h2>Per epoch</h2>`,
    run.log.epochs.length ? epochTable(run.log.epochs) : "<p>No epoch finished.</p>",
    `<h2>Figures</h2>`,
    ...out.rendered.map((f) => figureHtml(f, "figures")),
    `<h2>Config</h2>`,
    keyValueTable(flatten(run.config)),
    run.summary
      ? `<details><summary>summary.json</summary>${keyValueTable(flatten(summaryRest))}</details>`
      : "",
  ].join("\n");
  const subtitle = [
    String(start.dataset ?? describeDataset(run.config)),
    start.trainSamples !== undefined ? `${start.trainSamples} train / ${start.testSamples} test samples` : "",
    `${run.log.epochs.length} epochs in ${fmtNumber(totalSec)} s`,
    `adapter ${String(start.adapter ?? run.config.adapter ?? "unknown")}`,
    start.time ? `started ${String(start.time)}` : "",
  ].filter(Boolean).join(" · ");
  const htmlPath = `${runDir}/report.html`;
  await writeFileAtomic(htmlPath, page(`Run report: ${runDir.split("/").pop()}`, subtitle, body, warnings));
  say(opts, `wrote ${htmlPath}`);
  return { htmlPath, figures: out.saved, warnings };
}

function experimentSweeps(exp: ExperimentData): FigureSpec[] {
  const figs: FigureSpec[] = [];
  const sweep = (key: "kappa" | "minedFraction") =>
    exp.runs.flatMap((r) => {
      const v = r[key], last = finalEval(r.run);
      return v !== undefined && last?.eval?.recall ? [{ value: v, recall: last.eval.recall }] : [];
    });
  const byKappa = sweep("kappa");
  if (byKappa.length >= 2) {
    figs.push(
      sweepFigure(byKappa, { param: "κ", log: true, name: "sweep-kappa", title: "Recall@K against κ" }),
    );
  }
  const byMined = sweep("minedFraction");
  if (byMined.length >= 2) {
    figs.push(sweepFigure(byMined, {
      param: "mined fraction",
      format: ".0%",
      name: "sweep-mined",
      title: "Recall@K against the mined fraction",
    }));
  }
  return figs;
}

/** Writes `<expDir>/report.html` (runs compared) and, unless `perRun` is false, each run's own report. */
export async function writeExperimentReport(expDir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  const exp = await readExperimentDir(expDir);
  if (!exp.runs.length) throw new UserError(`${expDir}/experiment.json lists no runs`);
  const warnings = exp.runs.flatMap((r) => r.run.warnings.map((w) => `${r.label}: ${w}`));
  const out = { rendered: [] as RenderedFigure[], saved: [] as ReportResult["figures"], warnings };
  const figDir = `${expDir}/figures`;
  say(opts, `experiment ${exp.name}: ${exp.runs.length} runs`);

  const withEpochs = exp.runs.filter((r) => r.run.log.epochs.length);
  if (withEpochs.length) {
    const first = withEpochs[0].run.config;
    const bounds = kappaBounds(first);
    await renderAndSave(
      curvesFigure(withEpochs.map((r) => curveRun(r.label, r.run)), {
        metrics: ALL_CURVE_METRICS,
        kappaBounds: bounds,
        targetError: targetError(first),
        title: "Training curves, one line per run",
      }),
      figDir,
      opts,
      out,
    );
  }
  for (const fig of experimentSweeps(exp)) await renderAndSave(fig, figDir, opts, out);

  const runReports: ReportResult[] = [];
  if (opts.perRun !== false) {
    for (const r of exp.runs) runReports.push(await writeRunReport(r.run.dir, opts));
  }
  const ks = [...new Set(exp.runs.flatMap((r) => Object.keys(finalEval(r.run)?.eval?.recall ?? {})))]
    .sort((a, b) => +a - +b);
  const hasKappa = exp.runs.some((r) => r.kappa !== undefined);
  const hasMined = exp.runs.some((r) => r.minedFraction !== undefined);
  const head = [
    "run",
    ...(hasKappa ? ["κ"] : []),
    ...(hasMined ? ["mined fraction"] : []),
    "epochs",
    ...ks.map((k) => `R@${k}`),
    "NMI",
    "train error",
    "s total",
  ];
  const rows = exp.runs.map((r) => {
    const last = finalEval(r.run);
    const lastEpoch = r.run.log.epochs.at(-1);
    return [
      r.label,
      ...(hasKappa ? [r.kappa] : []),
      ...(hasMined ? [r.minedFraction] : []),
      r.run.log.epochs.length,
      ...ks.map((k) => last?.eval?.recall?.[k]),
      last?.eval?.nmi,
      lastEpoch?.trainError,
      r.run.log.epochs.reduce((s, e) => s + (e.epochSec ?? 0), 0),
    ];
  });
  // Settings that differ between runs, then the shared rest.
  const flat = exp.runs.map((r) => new Map(flatten(r.run.config).filter(([k]) => k !== "outDir")));
  const keys = [...new Set(flat.flatMap((m) => [...m.keys()]))];
  const differs = keys.filter((k) => new Set(flat.map((m) => JSON.stringify(m.get(k)))).size > 1);
  const shared = keys.filter((k) => !differs.includes(k)).map((k): [string, unknown] => [k, flat[0].get(k)]);
  const rel = (dir: string) => (dir.startsWith(`${expDir}/`) ? dir.slice(expDir.length + 1) : dir);
  const body = [
    `<h2>Runs</h2>`,
    table(head, rows, "runs"),
    opts.perRun !== false
      ? `<p>Each run's own report: ${
        exp.runs.map((r) => `<a href="${escapeHtml(rel(r.run.dir))}/report.html">${escapeHtml(r.label)}</a>`)
          .join(", ")
      }</p>`
      : "",
    `<h2>Figures</h2>`,
    ...out.rendered.map((f) => figureHtml(f, "figures")),
    `<h2>Config</h2>`,
    differs.length
      ? `<h3>Settings that differ</h3>` +
        table(
          ["run", ...differs],
          exp.runs.map((r, i) => [r.label, ...differs.map((k) => flat[i].get(k))]),
          "runs",
        )
      : "",
    `<h3>Shared settings</h3>`,
    keyValueTable(shared),
  ].join("\n");
  const htmlPath = `${expDir}/report.html`;
  const allWarnings = [
    ...new Set([
      ...warnings,
      ...runReports.flatMap((r, i) => r.warnings.map((w) => `${exp.runs[i].label}: ${w}`)),
    ]),
  ];
  await writeFileAtomic(
    htmlPath,
    page(`Experiment report: ${exp.name}`, `${exp.runs.length} runs in ${expDir}`, body, allWarnings),
  );
  say(opts, `wrote ${htmlPath}`);
  return {
    htmlPath,
    figures: out.saved,
    warnings: allWarnings,
    runs: opts.perRun !== false ? runReports : undefined,
  };
}

/** Writes the report of a run folder or of an experiment folder (one holding experiment.json). */
export async function writeReport(dir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  const clean = dir.replace(/\/+$/, "") || "/";
  return await isExperimentDir(clean) ? writeExperimentReport(clean, opts) : writeRunReport(clean, opts);
}
