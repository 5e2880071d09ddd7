/// <reference lib="dom" />
/**
 * The retrieval page served by `deno task serve` (bundled for the browser when the server starts):
 * downloads the index, opens it with the same {@link Retriever} Deno uses, and searches in the
 * browser's own WebGPU: pick gallery items (or drop an image when the index carries pixels), see the
 * top k with thumbnails, labels, distances and the time the search took.
 *
 * The page's state is on `document.body.dataset.state` (loading, ready, searching, done, error) and each
 * result carries data-item / data-id / data-label / data-distance, so scripts and tests can read it.
 * @module
 */
import { type RetrievalResult, Retriever } from "../lib/retrieval/retriever.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $("status");
const resultsEl = $("results");
const itemsInput = $<HTMLInputElement>("items");
const kInput = $<HTMLInputElement>("k");
const exactBox = $<HTMLInputElement>("exact");
const searchButton = $<HTMLButtonElement>("search");
const randomButton = $<HTMLButtonElement>("random");
const drop = $("drop");

function setState(state: string, text?: string, error = false): void {
  document.body.dataset.state = state;
  if (text !== undefined) status.textContent = text;
  status.classList.toggle("error", error);
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, string> = {},
  text?: string,
) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A data: URL of raw pixels ([h x w x c] bytes, c = 1 or 3). */
function pixelsUrl(px: Uint8Array, width: number, height: number, channels: number): string {
  const canvas = el("canvas", { width: String(width), height: String(height) });
  const ctx = canvas.getContext("2d")!;
  const img = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = channels === 1 ? [px[i], px[i], px[i]] : [px[3 * i], px[3 * i + 1], px[3 * i + 2]];
    img.data.set([r, g, b, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  return canvas.toDataURL();
}

let retriever: Retriever;
const thumbs = new Map<number, string>();

/** The picture of an item the index has none for (an IDX index made with --no-pixels). */
const NO_PICTURE = "data:image/svg+xml," + encodeURIComponent(
  `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="#eee"/>` +
    `<text x="32" y="36" font-size="9" text-anchor="middle" fill="#888">no picture</text></svg>`,
);

/** Gallery item `i`'s picture URL: from its pixels, or the image file the server hands out. */
function thumbUrl(i: number): string {
  let url = thumbs.get(i);
  if (url === undefined) {
    const p = retriever.header.pixels, px = retriever.pixels(i);
    if (p && px) url = pixelsUrl(px, p.width, p.height, p.channels);
    else url = retriever.header.identities.kind === "path" ? `image/${i}` : NO_PICTURE;
    thumbs.set(i, url);
  }
  return url;
}

function figure(url: string, caption: string[], cls: string, data: Record<string, string> = {}) {
  const f = el("figure", { class: cls });
  for (const [k, v] of Object.entries(data)) f.dataset[k] = v;
  f.append(el("img", { class: "pic", src: url, alt: caption[0] }));
  const cap = el("figcaption");
  caption.forEach((line, i) => {
    if (i) cap.append(el("br"));
    cap.append(line);
  });
  f.append(cap);
  return f;
}

interface ShownQuery {
  url: string;
  name: string;
  label?: number;
}

const METHODS: Record<RetrievalResult["method"], string> = {
  "graph-gpu": "FANNG graph search on WebGPU",
  "graph-cpu": "FANNG graph search on the CPU",
  "exact-gpu": "exact kNN on WebGPU",
};

function showResults(queries: ShownQuery[], res: RetrievalResult): void {
  resultsEl.replaceChildren();
  const total = res.embedMs + res.searchMs;
  const per = total / queries.length;
  resultsEl.dataset.searchMs = total.toFixed(3);
  resultsEl.dataset.perQueryMs = per.toFixed(3);
  resultsEl.dataset.method = res.method;
  resultsEl.append(el(
    "p",
    { class: "timing" },
    `${queries.length} ${queries.length === 1 ? "query" : "queries"} in ${total.toFixed(1)} ms ` +
      `(${per.toFixed(1)} ms each): ${
        res.embedMs > 0 ? `head ${res.embedMs.toFixed(1)} ms on WebGPU` : "the items' stored embeddings"
      }, ${METHODS[res.method]} ` +
      `${res.searchMs.toFixed(1)} ms, ${res.evaluations.toFixed(0)} distance evaluations per query` +
      (res.method === "graph-cpu" ? ` (${retriever.graphSearchOn.reason})` : ""),
  ));
  queries.forEach((q, i) => {
    const row = el("div", { class: "row result" });
    row.dataset.query = q.name;
    const cls = (label: number) => (q.label === undefined ? "" : label === q.label ? "same" : "other");
    row.append(figure(q.url, [q.name, q.label === undefined ? "" : retriever.className(q.label)], "query"));
    res.queries[i].forEach((n, rank) =>
      row.append(figure(
        thumbUrl(n.item),
        [`${rank + 1}. ${n.id}`, retriever.className(n.label), `d ${n.distance.toFixed(4)}`],
        `nb ${cls(n.label)}`,
        { item: String(n.item), id: n.id, label: String(n.label), distance: String(n.distance) },
      ))
    );
    resultsEl.append(row);
  });
}

async function run(task: () => Promise<void>): Promise<void> {
  setState("searching", "Searching...");
  searchButton.disabled = randomButton.disabled = true;
  try {
    await task();
    setState("done", "Done.");
  } catch (e) {
    console.error(e);
    setState("error", `Error: ${(e as Error).message}`, true);
  } finally {
    searchButton.disabled = randomButton.disabled = false;
  }
}

function searchItems(): Promise<void> {
  return run(async () => {
    const items = itemsInput.value.split(/[\s,]+/).filter(Boolean).map(Number);
    if (!items.length) throw new Error("type one or more gallery item numbers");
    const k = Number(kInput.value);
    const res = await retriever.searchItems(items, k, { exact: exactBox.checked });
    showResults(
      items.map((i) => ({
        url: thumbUrl(i),
        name: `item ${i} (${retriever.id(i)})`,
        label: retriever.label(i),
      })),
      res,
    );
  });
}

/** An image file as the gallery's pixels: its centred square, resampled, grey when the gallery is. */
async function imagePixels(file: File): Promise<{ pixels: Uint8Array; url: string }> {
  const p = retriever.header.features;
  if (p.kind !== "pixels") throw new Error("this index takes backbone features, not pictures");
  const bitmap = await createImageBitmap(file);
  const side = Math.min(bitmap.width, bitmap.height);
  const canvas = el("canvas", { width: String(p.width), height: String(p.height) });
  const ctx = canvas.getContext("2d")!;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(
    bitmap,
    (bitmap.width - side) / 2,
    (bitmap.height - side) / 2,
    side,
    side,
    0,
    0,
    p.width,
    p.height,
  );
  const rgba = ctx.getImageData(0, 0, p.width, p.height).data;
  const pixels = new Uint8Array(p.width * p.height * p.channels);
  for (let i = 0; i < p.width * p.height; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    if (p.channels === 1) pixels[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else pixels.set([r, g, b], 3 * i);
  }
  return { pixels, url: pixelsUrl(pixels, p.width, p.height, p.channels) };
}

function searchImage(file: File): Promise<void> {
  return run(async () => {
    const { pixels, url } = await imagePixels(file);
    const res = await retriever.search(pixels, Number(kInput.value), { exact: exactBox.checked });
    showResults([{ url, name: file.name }], res);
  });
}

function showGallery(): void {
  const gallery = $("gallery");
  const count = Math.min(retriever.size, 60);
  for (let j = 0; j < count; j++) {
    const i = Math.floor((j * retriever.size) / count);
    const img = el("img", {
      src: thumbUrl(i),
      title: `item ${i}: ${retriever.id(i)}, ${retriever.className(retriever.label(i))}`,
    });
    img.dataset.item = String(i);
    img.addEventListener("click", () => {
      itemsInput.value = String(i);
      void searchItems();
    });
    gallery.append(img);
  }
}

async function main(): Promise<void> {
  setState("loading", "Downloading the index...");
  retriever = await Retriever.fromUrl(new URL("index.bin", location.href), {
    onProgress: (
      loaded,
      total,
    ) => (status.textContent = `Downloading the index... ${(loaded / 2 ** 20).toFixed(1)}${
      total ? ` of ${(total / 2 ** 20).toFixed(1)}` : ""
    } MiB`),
  });
  const h = retriever.header;
  const r1 = h.source.recall?.["1"];
  const a = retriever.gpu.report;
  const adapter =
    `${a.name}${a.architecture && !a.name.includes(a.architecture) ? ` ${a.architecture}` : ""}` +
    (a.isSoftware ? " (software)" : "");
  $("about").textContent =
    `${h.count} ${h.gallery.split} items of ${h.gallery.dataset}, ${h.dims}-d embeddings` +
    ` (run ${h.source.run}${r1 !== undefined ? `, R@1 ${r1.toFixed(3)}` : ""}); WebGPU adapter: ${adapter}`;
  document.title = `Retrieval: ${h.gallery.dataset}`;
  showGallery();
  itemsInput.value = "0";
  searchButton.disabled = randomButton.disabled = false;
  searchButton.addEventListener("click", () => void searchItems());
  itemsInput.addEventListener("keydown", (e) => e.key === "Enter" && void searchItems());
  randomButton.addEventListener("click", () => {
    itemsInput.value = String(Math.floor(Math.random() * retriever.size));
    void searchItems();
  });
  if (retriever.takesPixels) {
    drop.hidden = false;
    drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      const file = e.dataTransfer?.files[0];
      if (file) void searchImage(file);
    });
  }
  setState("ready", `Ready: ${h.count} items. Pick gallery items, press Search.`);
}

main().catch((e) => {
  console.error(e);
  setState("error", `Error: ${(e as Error).message}`, true);
});
