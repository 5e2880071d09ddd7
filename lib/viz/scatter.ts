/**
 * 2-D scatter of embedded points coloured by class, with a legend of class names (the supplement's
 * Fig. 3: a t-SNE map of the test embeddings).
 *
 * @example
 * ```ts
 * import { scatterFigure } from "./scatter.ts";
 * const points = { rows: 3, cols: 2, data: new Float32Array([0, 0, 1, 1, 2, 0]) };
 * const fig = scatterFigure(points, Int32Array.from([0, 1, 1]), { classNames: new Map([[0, "cat"], [1, "dog"]]) });
 * ```
 * @module
 */
import { fmtShape, ShapeError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { Rng } from "../util/rng.ts";
import type { FigureSpec, VegaLiteSpec } from "./render.ts";

/** Options for {@link scatterFigure}. */
export interface ScatterOptions {
  /**
   * Class names by label for the legend (default "class <label>").
   * @default "class <label>"
   */
  classNames?: ReadonlyMap<number, string>;
  /**
   * Plot size in pixels (default 520).
   * @default 520
   */
  size?: number;
  /**
   * Seed of the drawing order shuffle (so no class always lies on top; default 0).
   * @default 0
   */
  seed?: number;
  /**
   * File name of the figure (default "scatter").
   * @default "scatter"
   */
  name?: string;
  /**
   * Title above the figure.
   * @default "Embedding map"
   */
  title?: string;
  /**
   * Caption under the figure in reports.
   * @default "<points> points, <classes> classes."
   */
  caption?: string;
}

/** The Tableau 10 / 20 palettes, then evenly spread hues for more classes. */
export function classColors(n: number): string[] {
  const t10 = [
    "#4c78a8",
    "#f58518",
    "#e45756",
    "#72b7b2",
    "#54a24b",
    "#eeca3b",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
  ];
  const t20 = [
    "#4c78a8",
    "#9ecae9",
    "#f58518",
    "#ffbf79",
    "#54a24b",
    "#88d27a",
    "#b79a20",
    "#f2cf5b",
    "#439894",
    "#83bcb6",
    "#e45756",
    "#ff9d98",
    "#79706e",
    "#bab0ac",
    "#d67195",
    "#fcbfd2",
    "#b279a2",
    "#d6a5c9",
    "#9e765f",
    "#d8b5a5",
  ]; // deno-fmt-ignore
  if (n <= 10) return t10.slice(0, n);
  if (n <= 20) return t20.slice(0, n);
  // Golden-angle hues with three lightness levels, as hex (every SVG renderer reads hex).
  return Array.from({ length: n }, (_, i) => hslToHex((i * 137.508) % 360, 0.65, [0.45, 0.6, 0.35][i % 3]));
}

function hslToHex(h: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    const c = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(c * 255).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

/** A scatter plot of `points` ([n x 2]) coloured by `labels` (n), with a class legend. */
export function scatterFigure(points: HostMatrix, labels: Int32Array, opts: ScatterOptions = {}): FigureSpec {
  if (points.cols !== 2 || labels.length !== points.rows) {
    throw new ShapeError(
      `scatter needs [n x 2] points and n labels, got points ${fmtShape([points.rows, points.cols])} ` +
        `and ${labels.length} labels`,
    );
  }
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  const nameOf = (l: number) => opts.classNames?.get(l) ?? `class ${l}`;
  const domain = classes.map(nameOf);
  const order = Array.from({ length: points.rows }, (_, i) => i);
  new Rng(opts.seed ?? 0).shuffle(order);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const values = order.map((i) => ({
    x: round(points.data[2 * i]),
    y: round(points.data[2 * i + 1]),
    c: nameOf(labels[i]),
  }));
  const size = opts.size ?? 520;
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    background: "white",
    padding: 8,
    width: size,
    height: size,
    data: { values },
    mark: { type: "circle", size: points.rows > 2000 ? 9 : 24, opacity: 0.75 },
    encoding: {
      x: { field: "x", type: "quantitative", axis: null, scale: { zero: false, nice: false, padding: 6 } },
      y: { field: "y", type: "quantitative", axis: null, scale: { zero: false, nice: false, padding: 6 } },
      color: {
        field: "c",
        type: "nominal",
        title: "class",
        scale: { domain, range: classColors(classes.length) },
        legend: classes.length > 200
          ? null
          : { columns: Math.ceil(classes.length / 30), symbolLimit: 0, labelLimit: 140, symbolOpacity: 1 },
      },
    },
    config: { view: { stroke: "#ddd" } },
  } as VegaLiteSpec;
  return {
    name: opts.name ?? "scatter",
    title: opts.title ?? "Embedding map",
    caption: opts.caption ?? `${points.rows} points, ${classes.length} classes.`,
    vegaLite: spec,
  };
}
