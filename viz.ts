/**
 * Figures: Vega-Lite specs built from run logs (training curves, the κ sweep, t-SNE scatter plots,
 * triplet grids), rendered to SVG and PNG in-process (no browser), and image thumbnails for HTML pages.
 * `writeReport` in `mod.ts` puts them together into a run's or an experiment's report.
 *
 * @example A sweep figure as SVG
 * ```ts
 * import { figureToSvg, sweepFigure } from "./viz.ts";
 *
 * const fig = sweepFigure(
 *   [{ value: 0.5, recall: { "1": 0.71, "2": 0.8 } }, { value: 1, recall: { "1": 0.74, "2": 0.83 } }],
 *   { param: "κ", log: true, ks: [1, 2] },
 * );
 * const svg = await figureToSvg(fig);
 * console.log(svg.startsWith("<svg"));
 * ```
 * @module
 */
export {
  type FigureSpec,
  figureToSvg,
  type PngOptions,
  pngSize,
  type RenderedFigure,
  renderFigure,
  type SavedFigure,
  saveFigure,
  svgSize,
  svgToPng,
  type VegaLiteSpec,
  type VegaSpec,
} from "./lib/viz/render.ts";
export {
  ALL_CURVE_METRICS,
  type CurveMetric,
  type CurveRun,
  curvesFigure,
  type CurvesOptions,
  FIG2_METRICS,
} from "./lib/viz/curves.ts";
export { sweepFigure, type SweepOptions, type SweepPoint } from "./lib/viz/sweep.ts";
export { classColors, scatterFigure, type ScatterOptions } from "./lib/viz/scatter.ts";
export { chooseEpochs, tripletGridFigure, type TripletGridOptions } from "./lib/viz/triplet_grid.ts";
export { encodePixelsPng, sampleImageDataUrl, type ThumbnailOptions } from "./lib/viz/thumbnails.ts";
export { kappaBounds } from "./lib/viz/run_dir.ts";
