/**
 * A picture grid of searches (`deno task search --html`): one row per query, the query's picture then
 * its neighbours' with id, class and distance; same-class neighbours framed green, others red. One
 * self-contained page (pictures inline as data: URLs).
 * @module
 */
import type { SampleImage } from "../data/dataset.ts";
import { sampleImageDataUrl } from "../viz/thumbnails.ts";
import type { QueryInfo } from "./queries.ts";
import type { Neighbour, Retriever } from "./retriever.ts";

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** Gallery item `i`'s picture: its pixels, or its image file under the data set's root. */
export function galleryImage(r: Retriever, i: number): SampleImage | undefined {
  const px = r.pixels(i), p = r.header.pixels;
  if (px && p) return { kind: "pixels", width: p.width, height: p.height, channels: p.channels, pixels: px };
  const ids = r.header.identities;
  return ids.kind === "path" ? { kind: "file", path: `${ids.root}/${r.id(i)}` } : undefined;
}

async function picture(img: SampleImage | undefined): Promise<string> {
  if (!img) return `<div class="none">no picture</div>`;
  try {
    return `<img src="${await sampleImageDataUrl(img, { maxSide: 112 })}" alt="">`;
  } catch (e) {
    return `<div class="none">${esc((e as Error).message)}</div>`;
  }
}

/** The page for `queries` and their `results`. */
export async function searchHtml(
  r: Retriever,
  queries: QueryInfo[],
  results: Neighbour[][],
): Promise<string> {
  const rows: string[] = [];
  for (const [q, info] of queries.entries()) {
    const cells = [
      `<figure class="query"><div class="pic">${await picture(info.image)}</div><figcaption>${
        esc(info.name)
      }${info.label !== undefined ? `<br>${esc(r.className(info.label))}` : ""}</figcaption></figure>`,
    ];
    for (const [rank, n] of results[q].entries()) {
      const same = info.label === undefined ? "" : n.label === info.label ? "same" : "other";
      cells.push(
        `<figure class="${same}"><div class="pic">${await picture(
          galleryImage(r, n.item),
        )}</div><figcaption>` +
          `${rank + 1}. ${esc(n.id)}<br>${esc(r.className(n.label))}<br>d = ${
            n.distance.toFixed(4)
          }</figcaption></figure>`,
      );
    }
    rows.push(`<div class="row">${cells.join("")}</div>`);
  }
  const h = r.header;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Search: ${esc(r.source)}</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
.row { display: flex; gap: 8px; margin: 10px 0; align-items: flex-start; }
figure { margin: 0; width: 120px; text-align: center; }
.pic { border: 3px solid #ddd; height: 112px; display: flex; align-items: center; justify-content: center; }
.pic img { max-width: 112px; max-height: 112px; image-rendering: pixelated; }
.query .pic { border-color: #333; }
.same .pic { border-color: #2a2; }
.other .pic { border-color: #d33; }
figcaption { font-size: 11px; word-break: break-all; }
.none { font-size: 11px; color: #888; }
</style></head><body>
<h1>Search results</h1>
<p>${esc(r.source)}: ${h.count} ${esc(h.gallery.split)} items of ${
    esc(h.gallery.dataset)
  }, ${h.dims}-d embeddings.
Green frame: same class as the query; red: another class.</p>
${rows.join("\n")}
</body></html>
`;
}
