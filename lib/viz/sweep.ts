/**
 * Sweep plots: final Recall@K against a swept parameter, one panel per K (the supplement's Fig. 1:
 * R@1, R@2, R@4, R@8 against kappa on a log axis).
 *
 * @example
 * ```ts
 * import { sweepFigure } from "./sweep.ts";
 * const fig = sweepFigure(
 *   [1, 4, 16, 64].map((kappa) => ({ value: kappa, recall: { "1": 0.5, "2": 0.6, "4": 0.7, "8": 0.8 } })),
 *   { param: "κ", log: true },
 * );
 * ```
 * @module
 */
import { UserError } from "../errors.ts";
import type { FigureSpec, VegaLiteSpec } from "./render.ts";

/** One point of a sweep: the parameter's value and the Recall@K reached there. */
export interface SweepPoint {
  /** The swept parameter's value. */
  value: number;
  /** Recall@K by K ("1", "2", ...). */
  recall: Readonly<Record<string, number>>;
  /** Which line the point belongs to, when several sweeps share the plot (default: one line). */
  series?: string;
}

/** Options for {@link sweepFigure}. */
export interface SweepOptions {
  /** Axis title of the swept parameter, e.g. "κ" or "mined fraction". */
  param: string;
  /**
   * Log-scale x axis (base 2; for kappa).
   * @default false
   */
  log?: boolean;
  /**
   * Which K to draw, one panel each (default 1, 2, 4, 8).
   * @default 1, 2, 4, 8
   */
  ks?: readonly number[];
  /**
   * Format of x tick labels (d3-format; default "~g", or ".0%" style when given).
   * @default "~g", or ".0%" style when given
   */
  format?: string;
  /**
   * Panels per row.
   * @default 2
   */
  columns?: number;
  /**
   * File name of the figure.
   * @default "sweep"
   */
  name?: string;
  /**
   * Title above the figure.
   * @default "Recall@K against <param>"
   */
  title?: string;
}

/** R@K against a swept parameter: one panel per K, one line per series, points at each tried value. */
export function sweepFigure(points: readonly SweepPoint[], opts: SweepOptions): FigureSpec {
  const ks = opts.ks ?? [1, 2, 4, 8];
  if (!points.length) throw new UserError("a sweep plot needs at least one point");
  if (opts.log && points.some((p) => !(p.value > 0))) {
    throw new UserError(`a log-scale sweep needs positive ${opts.param} values`);
  }
  const values = [...new Set(points.map((p) => p.value))].sort((a, b) => a - b);
  const series = [...new Set(points.map((p) => p.series ?? ""))];
  const panels = [];
  const missing: number[] = [];
  for (const k of ks) {
    const rows = points.flatMap((p) => {
      const r = p.recall[String(k)];
      return typeof r === "number" && Number.isFinite(r)
        ? [{ x: p.value, recall: r, series: p.series ?? "" }]
        : [];
    });
    if (!rows.length) {
      missing.push(k);
      continue;
    }
    const x = {
      field: "x",
      type: "quantitative",
      title: opts.param,
      scale: opts.log ? { type: "log", base: 2, nice: false, padding: 12 } : { zero: false, padding: 12 },
      axis: { values, format: opts.format ?? "~g" },
    };
    const y = { field: "recall", type: "quantitative", title: `R@${k}`, scale: { zero: false, padding: 10 } };
    const color = series.length > 1
      ? { field: "series", type: "nominal", title: "series", scale: { domain: series } }
      : { value: "#4c78a8" };
    panels.push({
      width: 240,
      height: 170,
      title: `R@${k} vs ${opts.param}`,
      data: { values: rows },
      mark: { type: "line", point: { size: 40, filled: true } },
      encoding: { x, y, color, detail: { field: "series" } },
    });
  }
  if (!panels.length) throw new UserError(`no Recall@K for K in ${ks.join(", ")} in the sweep's points`);
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    background: "white",
    padding: 8,
    concat: panels,
    columns: Math.max(1, opts.columns ?? 2),
    config: { title: { fontSize: 12 } },
  } as VegaLiteSpec;
  return {
    name: opts.name ?? "sweep",
    title: opts.title ?? `Recall@K against ${opts.param}`,
    caption: `Final Recall@K for each ${opts.param} tried (${values.join(", ")})` +
      (missing.length ? `; not logged: R@${missing.join(", R@")}.` : "."),
    vegaLite: spec,
  };
}
