/**
 * Training curves against epoch, one panel per quantity, one line per run (the supplement's Fig. 2:
 * training error, NMI, R@1 and R@8 per epoch for each mined percentage). Kappa is drawn on a log scale
 * with the controller's bounds; the loss panel splits total, triplet and global parts by dash style.
 *
 * @example
 * ```ts
 * import { curvesFigure } from "./curves.ts";
 * import { renderFigure } from "./render.ts";
 * const fig = curvesFigure([{ label: "run", epochs: [{ type: "epoch", epoch: 1, kappa: 16, trainError: 0.3, loss: 0.2 }] }]);
 * const { svg } = await renderFigure(fig);
 * ```
 * @module
 */
import { UserError } from "../errors.ts";
import type { FigureSpec, VegaLiteSpec } from "./render.ts";
import type { BatchRecord, EpochRecord } from "./run_dir.ts";

/** One run's records, as read by readRunDir (batches optional: they add per-batch kappa). */
export interface CurveRun {
  /** Legend label. */
  label: string;
  /** The run's epoch records. */
  epochs: readonly EpochRecord[];
  /** The run's batch records, for the per-batch curves. */
  batches?: readonly BatchRecord[];
}

/** A quantity to plot against epoch. `recall@K` works for any logged K. */
export type CurveMetric =
  | "trainError"
  | "nmi"
  | "ami"
  | "mapAtR"
  | "rPrecision"
  | `recall@${number}`
  | "kappa"
  | "loss"
  | "smartFraction";

/** The supplement's Fig. 2 panels. */
export const FIG2_METRICS: CurveMetric[] = ["trainError", "nmi", "recall@1", "recall@8"];
/** Every panel a run report shows. */
export const ALL_CURVE_METRICS: CurveMetric[] = [
  "trainError",
  "nmi",
  "recall@1",
  "recall@8",
  "kappa",
  "loss",
  "smartFraction",
];

/** Options for {@link curvesFigure}. */
export interface CurvesOptions {
  /**
   * Panels, in order (default {@link ALL_CURVE_METRICS}); panels without data are left out.
   * @default {@link ALL_CURVE_METRICS}
   */
  metrics?: readonly CurveMetric[];
  /**
   * `[kappaMin, kappaMax]` of the adaptive controller, drawn as dashed lines on the kappa panel.
   * @default none: no lines
   */
  kappaBounds?: readonly [number, number];
  /**
   * Target training error of the adaptive controller, drawn as a dashed line on the error panel.
   * @default none: no line
   */
  targetError?: number;
  /**
   * Panels per row (default 2).
   * @default 2
   */
  columns?: number;
  /**
   * File name of the figure (default "curves").
   * @default "curves"
   */
  name?: string;
  /**
   * Title above the figure.
   * @default "Training curves"
   */
  title?: string;
  /**
   * Legend title for the runs (default "run").
   * @default "run"
   */
  runTitle?: string;
}

const PANEL_TITLES: Record<string, string> = {
  trainError: "training error",
  nmi: "NMI",
  ami: "AMI",
  mapAtR: "MAP@R",
  rPrecision: "R-Precision",
  kappa: "κ (log scale)",
  loss: "loss",
  smartFraction: "smart-triplet fraction",
};

/** Human title of a curve metric ("R@8", "training error", ...). */
export function metricTitle(metric: CurveMetric): string {
  return metric.startsWith("recall@") ? `R@${metric.slice(7)}` : PANEL_TITLES[metric] ?? metric;
}

/** The value of a per-epoch metric, or undefined when the epoch did not log it. */
export function epochValue(rec: EpochRecord, metric: CurveMetric): number | undefined {
  let v: unknown;
  if (metric.startsWith("recall@")) v = rec.eval?.recall?.[metric.slice(7)];
  else if (metric === "trainError") v = rec.trainError;
  else if (metric === "kappa") v = rec.kappa;
  else if (metric === "loss") v = rec.loss;
  else if (metric === "smartFraction") v = rec.mining?.smartFraction;
  else v = rec.eval?.[metric as "nmi" | "ami" | "mapAtR" | "rPrecision"];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Fractional epoch of each batch record: batch b of epoch e lies in (e - 1, e], where the epoch's record sits. */
export function batchPositions(batches: readonly BatchRecord[]): number[] {
  const byEpoch = new Map<number, { min: number; max: number }>();
  for (const b of batches) {
    const r = byEpoch.get(b.epoch);
    if (r) (r.min = Math.min(r.min, b.batch), r.max = Math.max(r.max, b.batch));
    else byEpoch.set(b.epoch, { min: b.batch, max: b.batch });
  }
  // Batch numbers either restart every epoch (0..B-1) or count on across epochs; in both cases the
  // position is (batch - first batch of the epoch + 1) / (batches in the epoch).
  const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
  const restart = epochs.length < 2 ||
    epochs.slice(1).some((e, i) => byEpoch.get(e)!.min <= byEpoch.get(epochs[i])!.max);
  const ranges = [...byEpoch.values()];
  const perEpoch = Math.max(...ranges.map((r) => (restart ? r.max + 1 : r.max - r.min + 1)));
  return batches.map((b) => {
    const first = restart ? 0 : byEpoch.get(b.epoch)!.min;
    return b.epoch - 1 + (b.batch - first + 1) / perEpoch;
  });
}

type Row = Record<string, string | number>;

/** Powers of 4 (or of 2 when that gives too few) spanning `values`: readable ticks for a log kappa axis. */
function logTicks(values: number[]): number[] {
  const lo = Math.min(...values), hi = Math.max(...values);
  for (const base of [4, 2]) {
    const ticks: number[] = [];
    for (let k = Math.floor(Math.log(lo) / Math.log(base)); base ** k <= hi * 1.0001; k++) {
      if (base ** k >= lo * 0.9999) ticks.push(base ** k);
    }
    if (ticks.length >= 3 || base === 2) return ticks.length ? ticks : [lo, hi];
  }
  return [lo, hi];
}
// deno-lint-ignore no-explicit-any
type Layer = Record<string, any>;

const WIDTH = 260, HEIGHT = 170;

function xEncoding(): Layer {
  return { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1 } };
}

function colorEncoding(labels: string[], title: string): Layer {
  // One run needs no colour legend.
  return {
    field: "run",
    type: "nominal",
    title,
    scale: { domain: labels },
    ...(labels.length < 2 ? { legend: null } : {}),
  };
}

function ruleLayer(rows: Row[], color = "#888"): Layer {
  return {
    data: { values: rows },
    layer: [
      {
        mark: { type: "rule", strokeDash: [4, 3], color },
        encoding: { y: { field: "value", type: "quantitative" } },
      },
      {
        mark: { type: "text", align: "left", dx: 3, dy: -6, fontSize: 9, color },
        encoding: {
          x: { value: 0 },
          y: { field: "value", type: "quantitative" },
          text: { field: "label", type: "nominal" },
        },
      },
    ],
  };
}

function panel(
  metric: CurveMetric,
  runs: readonly CurveRun[],
  opts: CurvesOptions,
  labels: string[],
): Layer | null {
  const color = colorEncoding(labels, opts.runTitle ?? "run");
  const title = metricTitle(metric);
  const base = { width: WIDTH, height: HEIGHT, title };
  if (metric === "loss") {
    const rows: Row[] = [];
    for (const r of runs) {
      for (const e of r.epochs) {
        for (
          const [part, v] of [["total", e.loss], ["triplet", e.tripletLoss], [
            "global",
            e.globalLoss,
          ]] as const
        ) {
          if (typeof v === "number" && Number.isFinite(v)) {
            rows.push({ run: r.label, epoch: e.epoch, part, value: v });
          }
        }
      }
    }
    if (!rows.length) return null;
    const x = xEncoding(), y = { field: "value", type: "quantitative", title: "loss" };
    return {
      ...base,
      data: { values: rows },
      layer: [
        {
          mark: { type: "line" },
          encoding: {
            x,
            y,
            color,
            strokeDash: {
              field: "part",
              type: "nominal",
              title: "loss part",
              scale: { domain: ["total", "triplet", "global"] },
            },
          },
        },
        {
          mark: { type: "point", filled: true, size: 20 },
          encoding: { x, y, color, detail: { field: "part" } },
        },
      ],
    };
  }
  const rows: Row[] = [];
  for (const r of runs) {
    for (const e of r.epochs) {
      const v = epochValue(e, metric);
      if (v === undefined || (metric === "kappa" && !(v > 0))) continue;
      const row: Row = { run: r.label, epoch: e.epoch, value: v };
      if (metric === "kappa" && e.kappaBound) row.bound = e.kappaBound;
      rows.push(row);
    }
  }
  if (!rows.length) return null;
  const isKappa = metric === "kappa";
  const y: Layer = {
    field: "value",
    type: "quantitative",
    title,
    scale: isKappa ? { type: "log", nice: false } : { zero: false },
  };
  if (isKappa) {
    y.axis = { values: logTicks([...rows.map((r) => r.value as number), ...(opts.kappaBounds ?? [])]) };
  }
  const layers: Layer[] = [];
  if (isKappa) {
    const batchRows: Row[] = [];
    for (const r of runs) {
      const bs = (r.batches ?? []).filter((b) => typeof b.kappa === "number" && b.kappa > 0);
      batchPositions(bs).forEach((x, i) => batchRows.push({ run: r.label, epoch: x, value: bs[i].kappa }));
    }
    if (batchRows.length) {
      layers.push({
        data: { values: batchRows },
        mark: { type: "line", strokeWidth: 1, opacity: 0.45 },
        encoding: { x: xEncoding(), y, color },
      });
    }
  }
  layers.push({
    data: { values: rows },
    mark: { type: "line", point: { size: 24 } },
    encoding: { x: xEncoding(), y, color },
  });
  if (isKappa && rows.some((r) => r.bound)) {
    layers.push({
      data: { values: rows.filter((r) => r.bound) },
      mark: { type: "point", filled: true, size: 70 },
      encoding: {
        x: xEncoding(),
        y,
        color,
        shape: {
          field: "bound",
          type: "nominal",
          title: "κ at bound",
          scale: { domain: ["min", "max"], range: ["triangle-down", "triangle-up"] },
        },
      },
    });
  }
  if (isKappa && opts.kappaBounds) {
    const [lo, hi] = opts.kappaBounds;
    layers.push(ruleLayer([{ label: `κ min ${lo}`, value: lo }, { label: `κ max ${hi}`, value: hi }]));
  }
  if (metric === "trainError" && opts.targetError !== undefined) {
    layers.push(ruleLayer([{ label: `target ${opts.targetError}`, value: opts.targetError }]));
  }
  return { ...base, layer: layers };
}

/**
 * Curves against epoch for one or more runs: a grid of panels (one per metric), one coloured line per run.
 * Throws a UserError when no requested metric has any data.
 */
export function curvesFigure(runs: readonly CurveRun[], opts: CurvesOptions = {}): FigureSpec {
  const metrics = opts.metrics ?? ALL_CURVE_METRICS;
  const labels = runs.map((r) => r.label);
  if (new Set(labels).size !== labels.length) {
    throw new UserError(`run labels must be unique, got ${labels.join(", ")}`);
  }
  const panels: Layer[] = [];
  const missing: string[] = [];
  for (const m of metrics) {
    const p = panel(m, runs, opts, labels);
    if (p) panels.push(p);
    else missing.push(metricTitle(m));
  }
  if (!panels.length) {
    throw new UserError(`no data to plot: the runs logged none of ${metrics.map(metricTitle).join(", ")}`);
  }
  const spec: VegaLiteSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    background: "white",
    padding: 8,
    concat: panels,
    columns: Math.max(1, opts.columns ?? 2),
    resolve: { scale: { color: "shared", strokeDash: "independent", shape: "independent" } },
    config: { legend: { orient: "right" }, title: { fontSize: 12 } },
  } as VegaLiteSpec;
  const shown = panels.map((p) => p.title as string);
  return {
    name: opts.name ?? "curves",
    title: opts.title ?? "Training curves",
    caption: `${shown.join(", ")} against epoch` + (runs.length > 1 ? `, one line per run` : "") +
      (missing.length ? `. Not logged: ${missing.join(", ")}.` : "."),
    vegaLite: spec,
  };
}
