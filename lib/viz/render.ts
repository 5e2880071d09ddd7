/**
 * Figure rendering: a figure is a Vega-Lite (or Vega) spec; Vega renders it headless to SVG (no browser,
 * no canvas) and resvg (WebAssembly, shipped inside its npm package) rasterises the SVG to PNG.
 * Both libraries load lazily, so importing the toolkit stays light.
 *
 * @example
 * ```ts
 * import { renderFigure, saveFigure } from "./render.ts";
 * const fig = await renderFigure({
 *   name: "demo",
 *   title: "Demo",
 *   vegaLite: {
 *     data: { values: [{ x: 1, y: 2 }, { x: 2, y: 3 }] },
 *     mark: "line",
 *     encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
 *   },
 * });
 * await saveFigure(fig, await Deno.makeTempDir()); // demo.svg and demo.png
 * ```
 * @module
 */
import type { TopLevelSpec } from "npm:vega-lite@6.5.0";
import type { Spec as VegaSpec } from "npm:vega@6.4.0";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "../util/fs.ts";

/**
 * A Vega-Lite specification, as vega-lite's own types describe it (`TopLevelSpec` of npm:vega-lite).
 * @ignore
 */
export type VegaLiteSpec = TopLevelSpec;
export type { VegaSpec };

/** What a figure shows, before rendering: a name for its files, a title, and the spec to draw. */
export type FigureSpec =
  & {
    /** File stem (`<name>.svg`, `<name>.png`); letters, digits, `-` and `_` only. */
    name: string;
    /** Heading shown above the figure in a report. */
    title: string;
    /** One or two sentences under the figure in a report. */
    caption?: string;
  }
  & ({ vegaLite: VegaLiteSpec; vega?: never } | { vega: VegaSpec; vegaLite?: never });

/** A rendered figure: SVG markup, PNG bytes, and the SVG's size in CSS pixels. */
export interface RenderedFigure {
  /** File name without extension. */
  name: string;
  /** Title. */
  title: string;
  /** Caption under the figure in reports. */
  caption?: string;
  /** SVG markup. */
  svg: string;
  /** PNG bytes. */
  png: Uint8Array;
  /** SVG width and height (the PNG is `scale` times larger). */
  width: number;
  /** SVG height in CSS pixels. */
  height: number;
  /** Warnings Vega or Vega-Lite raised while building the figure (empty when all is well). */
  warnings: string[];
}

/** Options for PNG output. */
export interface PngOptions {
  /**
   * Pixels per SVG pixel (default 2, for sharp pictures on high-density screens and in print).
   * @default 2
   */
  scale?: number;
  /** Fonts for the text: TrueType/OpenType files and the family they hold. Default: DejaVu Sans or
   * Liberation Sans found in the system's font folders.
   * @default DejaVu Sans or Liberation Sans found in the system's font folders
   */
  fonts?: { family: string; files: string[] };
}

type VegaModule = typeof import("npm:vega@6.4.0");
type VegaLiteModule = typeof import("npm:vega-lite@6.5.0");
type ResvgModule = typeof import("npm:@resvg/resvg-wasm@2.6.2");

let vegaModules: Promise<[VegaModule, VegaLiteModule]> | undefined;
function loadVega(): Promise<[VegaModule, VegaLiteModule]> {
  vegaModules ??= Promise.all([import("npm:vega@6.4.0"), import("npm:vega-lite@6.5.0")]);
  return vegaModules;
}

let resvgModule: Promise<ResvgModule> | undefined;
function loadResvg(): Promise<ResvgModule> {
  resvgModule ??= (async () => {
    const [resvg, wasm] = await Promise.all([
      import("npm:@resvg/resvg-wasm@2.6.2"),
      import("./resvg_wasm.js") as Promise<{ default: WebAssembly.Module }>,
    ]);
    await resvg.initWasm(wasm.default);
    return resvg;
  })();
  return resvgModule;
}

/** Renders a figure spec to SVG markup with Vega's headless SVG renderer. */
export async function figureToSvg(fig: FigureSpec, warnings: string[] = []): Promise<string> {
  const [vega, vl] = await loadVega();
  // Vega and Vega-Lite warnings are collected for the caller instead of printed.
  const logger = vega.logger(vega.Warn, undefined, (method, _level, args) => {
    warnings.push(`${method === "error" ? "error: " : ""}${args.map(String).join(" ")}`);
  });
  const spec: VegaSpec = fig.vegaLite ? vl.compile(fig.vegaLite, { logger }).spec : fig.vega!;
  const view = new vega.View(vega.parse(spec), { renderer: "none", logger, logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The `width` and `height` attributes of an SVG's root element, in pixels. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? "";
  const width = Number(/\swidth="([\d.]+)"/.exec(root)?.[1]);
  const height = Number(/\sheight="([\d.]+)"/.exec(root)?.[1]);
  if (!(width > 0) || !(height > 0)) {
    throw new UserError("SVG has no positive width/height on its root element");
  }
  return { width, height };
}

/** The width and height stored in a PNG's IHDR chunk; throws unless `png` starts with the PNG signature. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || signature.some((b, i) => png[i] !== b)) throw new UserError("not a PNG file");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

// Regular and bold faces tried in this order; the family name is what SVG text asks for.
const FONT_CANDIDATES: { family: string; files: string[] }[] = [
  { family: "DejaVu Sans", files: ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"] },
  { family: "Liberation Sans", files: ["LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"] },
  { family: "Arial", files: ["Arial.ttf", "Arial Bold.ttf", "arial.ttf", "arialbd.ttf"] },
  { family: "Helvetica", files: ["Helvetica.ttc"] },
];
const FONT_DIRS = [
  "/usr/share/fonts",
  "/usr/local/share/fonts",
  "/System/Library/Fonts",
  "/Library/Fonts",
  "C:\\Windows\\Fonts",
];

async function findFiles(dir: string, names: Set<string>, depth: number, found: Map<string, string>) {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return; // missing or unreadable folder
  }
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isFile && names.has(e.name) && !found.has(e.name)) found.set(e.name, path);
    else if (e.isDirectory && depth > 0) await findFiles(path, names, depth - 1, found);
  }
}

interface FontSet {
  family: string;
  buffers: Uint8Array[];
}

let systemFonts: Promise<FontSet> | undefined;
async function findSystemFonts(): Promise<FontSet> {
  const names = new Set(FONT_CANDIDATES.flatMap((c) => c.files));
  const found = new Map<string, string>();
  for (const dir of FONT_DIRS) await findFiles(dir, names, 4, found);
  for (const c of FONT_CANDIDATES) {
    const paths = c.files.map((f) => found.get(f)).filter((p): p is string => p !== undefined);
    if (paths.length) {
      return {
        family: c.family,
        buffers: await Promise.all(paths.map((p) => Deno.readFile(p))),
      };
    }
  }
  throw new UserError(
    "no font found for the text in PNG figures (looked for DejaVu Sans or Liberation Sans under " +
      `${
        FONT_DIRS.join(", ")
      }): install one ('sudo apt-get install -y fonts-dejavu-core') or pass the fonts option`,
  );
}

async function fontsFor(opts: PngOptions): Promise<FontSet> {
  if (!opts.fonts) return await (systemFonts ??= findSystemFonts());
  return {
    family: opts.fonts.family,
    buffers: await Promise.all(opts.fonts.files.map((p) => Deno.readFile(p))),
  };
}

/** Rasterises SVG markup to PNG bytes with resvg. */
export async function svgToPng(svg: string, opts: PngOptions = {}): Promise<Uint8Array> {
  const scale = opts.scale ?? 2;
  if (!(scale > 0 && scale <= 16)) throw new UserError(`PNG scale must be in (0, 16], got ${scale}`);
  const [resvg, fonts] = await Promise.all([loadResvg(), fontsFor(opts)]);
  const family = fonts.family;
  const r = new resvg.Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    font: {
      fontBuffers: fonts.buffers,
      loadSystemFonts: false,
      defaultFontFamily: family,
      sansSerifFamily: family,
    },
  });
  try {
    const image = r.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    r.free();
  }
}

/** Renders a figure to SVG and PNG. */
export async function renderFigure(fig: FigureSpec, opts: PngOptions = {}): Promise<RenderedFigure> {
  if (!/^[A-Za-z0-9_-]+$/.test(fig.name)) {
    throw new UserError(`figure name '${fig.name}' must use only letters, digits, '-' and '_'`);
  }
  const warnings: string[] = [];
  const svg = await figureToSvg(fig, warnings);
  const png = await svgToPng(svg, opts);
  return { name: fig.name, title: fig.title, caption: fig.caption, svg, png, ...svgSize(svg), warnings };
}

/** Where {@link saveFigure} wrote a figure. */
export interface SavedFigure {
  /** Path of the SVG file written. */
  svgPath: string;
  /** Path of the PNG file written. */
  pngPath: string;
}

/** Writes `<dir>/<name>.svg` and `<dir>/<name>.png` atomically (creating `dir`). */
export async function saveFigure(fig: RenderedFigure, dir: string): Promise<SavedFigure> {
  await Deno.mkdir(dir, { recursive: true });
  const svgPath = `${dir}/${fig.name}.svg`, pngPath = `${dir}/${fig.name}.png`;
  await writeFileAtomic(svgPath, fig.svg);
  await writeFileAtomic(pngPath, fig.png);
  return { svgPath, pngPath };
}
