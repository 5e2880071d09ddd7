/**
 * Mined-triplet grids (the supplement's Fig. 4): for a few fixed anchors, the first triplet mined for
 * each at chosen epochs. Rows are epochs; each anchor gets a column group of three thumbnails, anchor |
 * positive | negative, framed blue / green / red (dashed when the anchor fell back to a random triplet).
 * Thumbnails are embedded in the SVG as data URLs.
 *
 * @example
 * ```ts
 * import { tripletGridFigure } from "./triplet_grid.ts";
 * import { loadIdxDataset } from "../data/idx.ts";
 * const ds = await loadIdxDataset();
 * const fig = await tripletGridFigure(
 *   [{ type: "triplets", epoch: 4, triplets: [{ anchor: 0, positive: 1, negative: 2, smart: true }] }],
 *   { image: ds.train.image! },
 * );
 * ```
 * @module
 */
import type { SampleImage } from "../data/dataset.ts";
import { UserError } from "../errors.ts";
import type { FigureSpec, VegaSpec } from "./render.ts";
import type { LoggedTriplet, TripletRecord } from "./run_dir.ts";
import { sampleImageDataUrl } from "./thumbnails.ts";

/** Options for {@link tripletGridFigure}. */
export interface TripletGridOptions {
  /** The picture of training sample `i`. */
  image: (i: number) => SampleImage;
  /** A caption under each thumbnail (e.g. the class name of sample `i`). */
  caption?: (i: number) => string;
  /**
   * Epochs to show as rows (default: every logged epoch, or `maxRows` spread evenly when there are more).
   * @default every logged epoch, or `maxRows` spread evenly when there are more
   */
  epochs?: readonly number[];
  /**
   * Most rows chosen by default (default 8).
   * @default 8
   * @default 8
   */
  maxRows?: number;
  /**
   * Thumbnail side in pixels (default 56).
   * @default 56
   */
  cell?: number;
  /** Draw thumbnails with nearest-neighbour scaling (default: when the pictures are raw pixels no larger
   * than a cell, so small images such as Fashion-MNIST stay sharp).
   * @default true for raw pixels no larger than a cell
   */
  pixelated?: boolean;
  /**
   * File name of the figure (default "triplets").
   * @default "triplets"
   */
  name?: string;
  /**
   * Title above the figure.
   * @default "Mined triplets"
   */
  title?: string;
}

const ROLE_COLORS = { anchor: "#4c78a8", positive: "#54a24b", negative: "#e45756" } as const;
type Role = keyof typeof ROLE_COLORS;
const ROLES: Role[] = ["anchor", "positive", "negative"];

/** The epochs a grid shows: all when few, else `maxRows` spread evenly (first and last included). */
export function chooseEpochs(available: readonly number[], maxRows: number): number[] {
  const sorted = [...new Set(available)].sort((a, b) => a - b);
  if (sorted.length <= maxRows) return sorted;
  if (maxRows <= 1) return sorted.slice(-1);
  return [
    ...new Set(
      Array.from({ length: maxRows }, (_, i) => sorted[Math.round(i * (sorted.length - 1) / (maxRows - 1))]),
    ),
  ];
}

/** A grid of mined triplets: rows are epochs, column groups are anchors (anchor | positive | negative). */
export async function tripletGridFigure(
  records: readonly TripletRecord[],
  opts: TripletGridOptions,
): Promise<FigureSpec> {
  if (!records.length) {
    throw new UserError("no mined triplets were logged: nothing to draw in a triplet grid");
  }
  const byEpoch = new Map<number, LoggedTriplet[]>();
  for (const r of records) byEpoch.set(r.epoch, r.triplets); // a later record of the same epoch wins
  const epochs = opts.epochs ? [...opts.epochs] : chooseEpochs([...byEpoch.keys()], opts.maxRows ?? 8);
  const absent = epochs.filter((e) => !byEpoch.has(e));
  if (absent.length) {
    throw new UserError(
      `no mined triplets logged at epoch ${absent.join(", ")}; logged epochs: ${
        [...byEpoch.keys()].join(", ")
      }`,
    );
  }
  const anchors: number[] = [];
  for (const e of epochs) {
    for (const t of byEpoch.get(e)!) if (!anchors.includes(t.anchor)) anchors.push(t.anchor);
  }

  const cell = opts.cell ?? 56, gap = 3, groupGap = 16, left = 64, top = 34;
  const captionH = opts.caption ? 13 : 0;
  const rowH = cell + captionH + 10;
  const groupW = 3 * cell + 2 * gap;
  const width = left + anchors.length * groupW + (anchors.length - 1) * groupGap + 4;
  const height = top + epochs.length * rowH + 22;

  const urls = new Map<number, Promise<string>>();
  const urlOf = (i: number) => {
    if (!urls.has(i)) urls.set(i, sampleImageDataUrl(opts.image(i), { maxSide: 2 * cell }));
    return urls.get(i)!;
  };
  const first = opts.image(anchors[0]);
  const pixelated = opts.pixelated ??
    (first.kind === "pixels" && Math.max(first.width, first.height) <= cell);
  const cells: Record<string, unknown>[] = [];
  const empty: Record<string, unknown>[] = [];
  for (const [row, epoch] of epochs.entries()) {
    const triplets = byEpoch.get(epoch)!;
    for (const [col, anchor] of anchors.entries()) {
      const x0 = left + col * (groupW + groupGap), y = top + row * rowH;
      const t = triplets.find((t) => t.anchor === anchor);
      if (!t) {
        empty.push({ x: x0, y, w: groupW, h: cell });
        continue;
      }
      for (const [k, role] of ROLES.entries()) {
        const index = t[role];
        cells.push({
          x: x0 + k * (cell + gap),
          y,
          url: await urlOf(index),
          role,
          dashed: !t.smart,
          caption: opts.caption?.(index) ?? "",
          index,
        });
      }
    }
  }
  const headers = anchors.map((a, col) => ({
    x: left + col * (groupW + groupGap) + groupW / 2,
    text: `anchor #${a}`,
  }));
  const roleHeads = anchors.flatMap((_, col) =>
    ROLES.map((role, k) => ({
      x: left + col * (groupW + groupGap) + k * (cell + gap) + cell / 2,
      text: role,
    }))
  );
  const rowHeads = epochs.map((e, row) => ({ y: top + row * rowH + cell / 2, text: `epoch ${e}` }));
  const text = (extra: Record<string, unknown>) => ({
    fontSize: { value: 10 },
    fill: { value: "#333" },
    ...extra,
  });
  const spec: VegaSpec = {
    $schema: "https://vega.github.io/schema/vega/v6.json",
    width,
    height,
    padding: 6,
    background: "white",
    data: [
      { name: "cells", values: cells },
      { name: "empty", values: empty },
      { name: "headers", values: headers },
      { name: "roles", values: roleHeads },
      { name: "rows", values: rowHeads },
    ],
    scales: [{ name: "role", type: "ordinal", domain: ROLES, range: ROLES.map((r) => ROLE_COLORS[r]) }],
    marks: [
      {
        type: "image",
        from: { data: "cells" },
        encode: {
          enter: {
            x: { field: "x" },
            y: { field: "y" },
            width: { value: cell },
            height: { value: cell },
            url: { field: "url" },
            aspect: { value: false },
            smooth: { value: !pixelated },
          },
        },
      },
      {
        type: "rect",
        from: { data: "cells" },
        encode: {
          enter: {
            x: { field: "x" },
            y: { field: "y" },
            width: { value: cell },
            height: { value: cell },
            stroke: { scale: "role", field: "role" },
            strokeWidth: { value: 2.5 },
            strokeDash: { signal: "datum.dashed ? [4, 3] : []" },
          },
        },
      },
      {
        type: "text",
        from: { data: "cells" },
        encode: {
          enter: text({
            x: { signal: `datum.x + ${cell / 2}` },
            y: { signal: `datum.y + ${cell + 2}` },
            text: { field: "caption" },
            align: { value: "center" },
            baseline: { value: "top" },
            fontSize: { value: 8.5 },
            // Vega truncates by an estimated width (0.8 em per character, no canvas here) that runs
            // about 1.4 times the real one: this limit keeps real captions within about one cell.
            limit: { value: 1.4 * cell },
          }),
        },
      },
      {
        type: "rect",
        from: { data: "empty" },
        encode: {
          enter: {
            x: { field: "x" },
            y: { field: "y" },
            width: { field: "w" },
            height: { field: "h" },
            fill: { value: "#f0f0f0" },
          },
        },
      },
      {
        type: "text",
        from: { data: "headers" },
        encode: {
          enter: text({
            x: { field: "x" },
            y: { value: 12 },
            text: { field: "text" },
            align: { value: "center" },
            fontWeight: { value: "bold" },
          }),
        },
      },
      {
        type: "text",
        from: { data: "roles" },
        encode: {
          enter: text({
            x: { field: "x" },
            y: { value: top - 5 },
            text: { field: "text" },
            align: { value: "center" },
            fontSize: { value: 9 },
            fill: { scale: "role", field: "text" },
          }),
        },
      },
      {
        type: "text",
        from: { data: "rows" },
        encode: {
          enter: text({
            x: { value: 0 },
            y: { field: "y" },
            text: { field: "text" },
            baseline: { value: "middle" },
            fontWeight: { value: "bold" },
          }),
        },
      },
      {
        type: "text",
        encode: {
          enter: text({
            x: { value: 0 },
            y: { value: height - 6 },
            text: {
              value: "frames: blue anchor, green positive, red negative; dashed frame: no smart triplet " +
                "(random fallback); grey: anchor not logged",
            },
            fontSize: { value: 9 },
            fill: { value: "#666" },
          }),
        },
      },
    ],
  } as VegaSpec;
  const random = cells.filter((c) => c.dashed).length / 3;
  return {
    name: opts.name ?? "triplets",
    title: opts.title ?? "Mined triplets",
    caption: `The first mined triplet of ${anchors.length} fixed anchors at epochs ${epochs.join(", ")}` +
      (random ? ` (${random} of ${cells.length / 3} are random fallbacks).` : "."),
    vega: spec,
  };
}
