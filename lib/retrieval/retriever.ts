/**
 * A search engine over a retrieval index (lib/retrieval/format.ts): the recorded head embeds the
 * queries on the GPU and the FANNG graph finds their nearest gallery items (or exact GPU kNN, on
 * request). Runtime-agnostic: it reads bytes or fetches a URL, and runs the same in Deno and in a
 * browser's WebGPU. (Local paths in Deno: `openRetriever` in lib/retrieval/open.ts.)
 *
 * @example
 * ```ts
 * import { Retriever } from "./retriever.ts";
 * // `url`: where `deno task serve` (or any static server) serves an index folder's index.bin.
 * async function printNeighbours(url: string) {
 *   using r = await Retriever.fromUrl(url);
 *   const res = await r.searchItems([3], 5); // gallery item 3 as the query, itself left out
 *   for (const n of res.queries[0]) console.log(n.id, r.className(n.label), n.distance.toFixed(3));
 * }
 * ```
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import { FanngIndex } from "../ann/index.ts";
import { NO_VERTEX, paddedFromGraph, type PaddedGraph } from "../ann/graph.ts";
import { searchRef } from "../ann/search_ref.ts";
import { searchDefaults } from "../ann/search_defaults.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import { getGpu, type Gpu } from "../gpu/device.ts";
import { EmbeddingHead } from "../model/head.ts";
import { knnSqL2 } from "../ops/knn.ts";
import { TOPK_MAX_K } from "../ops/topk.ts";
import type { HostMatrix } from "../util/matrix.ts";
import {
  decodeRetrievalIndex,
  RETRIEVAL_FILE,
  type RetrievalContents,
  type RetrievalHeader,
} from "./format.ts";

/**
 * Entry vertices of a graph search: the 16 first stored entries ("fixed"), on the GPU and in the plain-TS
 * fallback alike, so that both walk the same way (FanngIndex.search's default, "nearest", picks them by a
 * GPU kNN pass whose rounding the fallback could not match on near ties).
 */
const ENTRY_POINTS = 16;
/** The graph search's ef (hnswlib's stop), the same on the GPU and in the plain-TS fallback. */
const SEARCH_EF = searchDefaults("search").ef;

/** Options of {@link Retriever.fromBytes} and {@link Retriever.fromUrl}. */
export interface RetrieverOptions {
  /**
   * GPU context (default: the process-wide one).
   * @default the process-wide one
   */
  gpu?: Gpu;
  /**
   * Where the bytes came from, for error messages (default: the URL, or "retrieval index").
   * @default the URL, or "retrieval index"
   */
  source?: string;
  /** Download progress of {@link Retriever.fromUrl}: bytes received and the total (0 when unknown). */
  onProgress?: (loaded: number, total: number) => void;
  /**
   * Where the graph search runs: "gpu" (the FANNG kernel), "cpu" (the plain-TS reference search, the
   * same walk), or "auto" (default): the GPU unless the device cannot create the kernel (browsers allow
   * 8-10 storage buffers per shader stage; today's search kernel binds 21), then the CPU, said in
   * {@link Retriever.graphSearchOn}.
   * @default "auto"
   */
  graphSearch?: "auto" | "gpu" | "cpu";
}

/** Options of a search. */
export interface RetrievalSearchOptions {
  /**
   * Distance evaluations per query of the graph search (default: the index's recorded budget, at least
   * 4 x k). A budget of N or more visits every gallery item reachable in the graph.
   * @default the index's recorded budget, at least 4 x k
   */
  budget?: number;
  /**
   * Exact k nearest neighbours by brute force on the GPU instead of the graph.
   * @default false
   */
  exact?: boolean;
  /**
   * Per query, a gallery item to leave out of its results (-1 or undefined: none).
   * @default none
   */
  exclude?: ArrayLike<number | undefined>;
}

/** One result. */
export interface Neighbour {
  /** Gallery item (row of the index). */
  item: number;
  /** The sample's identity (IDX "t10k/<row>", or an image path relative to the data set's root). */
  id: string;
  /** Class label. */
  label: number;
  /** Euclidean distance between the embeddings. */
  distance: number;
}

/** Where a graph search ran, and why when not on the GPU. */
export interface GraphSearchPlace {
  /** Where the graph search ran. */
  on: "gpu" | "cpu";
  /** Why not on the GPU, when it ran on the CPU. */
  reason?: string;
}

/** What a search returns. */
export interface RetrievalResult {
  /** Neighbours asked for per query. */
  k: number;
  /** Per query, its neighbours ascending by distance (fewer than k where the graph search found fewer). */
  queries: Neighbour[][];
  /** Mean distance evaluations per query (the gallery size for exact search). */
  evaluations: number;
  /** What searched: the FANNG graph on the GPU or the CPU (see {@link Retriever.graphSearchOn}), or exact GPU kNN. */
  method: "graph-gpu" | "graph-cpu" | "exact-gpu";
  /** Wall milliseconds of the head's forward pass (0 for embeddings) and of the search, readbacks included. */
  embedMs: number;
  /** Wall milliseconds of the search, readbacks included. */
  searchMs: number;
}

/** A loaded retrieval index on the GPU. */
export class Retriever implements Disposable {
  readonly #head: EmbeddingHead;
  readonly #index: FanngIndex;
  #base: GpuBuffer<"f32"> | undefined;
  #padded: PaddedGraph | undefined;
  #place: GraphSearchPlace;
  readonly #auto: boolean;
  #classes: Map<number, string>;
  #disposed = false;

  private constructor(
    readonly gpu: Gpu,
    readonly contents: RetrievalContents,
    /** The file or URL it was read from. */
    readonly source: string,
    head: EmbeddingHead,
    index: FanngIndex,
    graphSearch: "auto" | "gpu" | "cpu",
  ) {
    this.#head = head;
    this.#index = index;
    this.#auto = graphSearch === "auto";
    this.#place = graphSearch === "cpu" ? { on: "cpu", reason: "asked for" } : { on: "gpu" };
    this.#classes = new Map(contents.header.classes ?? []);
  }

  /** Opens an index from the bytes of its file. */
  static async fromBytes(bytes: Uint8Array, options: RetrieverOptions = {}): Promise<Retriever> {
    const source = options.source ?? "retrieval index";
    const contents = decodeRetrievalIndex(bytes, source);
    const gpu = options.gpu ?? (await getGpu());
    const head = EmbeddingHead.fromParameters(gpu, contents.header.head.config, contents.params);
    try {
      const index = await FanngIndex.fromGraph(gpu, contents.graph, contents.embeddings, source);
      return new Retriever(gpu, contents, source, head, index, options.graphSearch ?? "auto");
    } catch (e) {
      head.destroy();
      throw e;
    }
  }

  /**
   * Downloads and opens an index: an http(s) URL (or file: URL in Deno) of the file, or of its folder
   * (ending in "/", where `index.bin` is looked for).
   */
  static async fromUrl(url: string | URL, options: RetrieverOptions = {}): Promise<Retriever> {
    const u = new URL(url, (globalThis as { location?: { href: string } }).location?.href);
    if (u.pathname.endsWith("/")) u.pathname += RETRIEVAL_FILE;
    const source = options.source ?? u.href;
    let response: Response;
    try {
      response = await fetch(u);
    } catch (e) {
      throw new UserError(`cannot fetch ${source} (${(e as Error).message}); check the address`);
    }
    if (!response.ok) {
      throw new UserError(`cannot fetch ${source}: HTTP ${response.status} ${response.statusText}`.trim());
    }
    const bytes = await readBody(response, options.onProgress);
    return await Retriever.fromBytes(bytes, { ...options, source });
  }

  /** The index's header (what it is, where it came from). */
  get header(): RetrievalHeader {
    return this.contents.header;
  }

  /** Where graph searches run (it moves to the CPU after the GPU kernel failed to start, in "auto"). */
  get graphSearchOn(): GraphSearchPlace {
    return { ...this.#place };
  }

  /** Gallery items. */
  get size(): number {
    return this.contents.header.count;
  }

  /** Embedding dimension. */
  get dims(): number {
    return this.contents.header.dims;
  }

  /** The head's input width (features per query). */
  get inputDim(): number {
    return this.contents.header.head.config.inDim;
  }

  /** Whether raw pixel queries work: the head's inputs are pixels (IDX data such as Fashion-MNIST). */
  get takesPixels(): boolean {
    return this.contents.header.features.kind === "pixels";
  }

  /** Gallery item `i`'s identity. */
  id(i: number): string {
    return this.contents.ids[this.#item(i)];
  }

  /** Gallery item `i`'s label. */
  label(i: number): number {
    return this.contents.labels[this.#item(i)];
  }

  /** A label's class name, or the label itself as text when the index has no names. */
  className(label: number): string {
    return this.#classes.get(label) ?? String(label);
  }

  /** Gallery item `i`'s pixels ([height x width x channels] bytes), when the index carries them. */
  pixels(i: number): Uint8Array | undefined {
    const p = this.contents.header.pixels;
    if (!p || !this.contents.pixels) return undefined;
    const n = p.width * p.height * p.channels;
    return this.contents.pixels.subarray(this.#item(i) * n, (this.#item(i) + 1) * n);
  }

  /** Gallery item `i`'s stored embedding. */
  embedding(i: number): Float32Array {
    const d = this.dims;
    return this.contents.embeddings.data.subarray(this.#item(i) * d, (this.#item(i) + 1) * d);
  }

  /** The gallery items whose id is `id` (usually one). */
  itemsWithId(id: string): number[] {
    const out: number[] = [];
    this.contents.ids.forEach((x, i) => x === id && out.push(i));
    return out;
  }

  /** Runs features [rows x inputDim] through the recorded head. */
  async embed(features: HostMatrix): Promise<HostMatrix> {
    this.#check();
    if (features.cols !== this.inputDim || features.data.length !== features.rows * features.cols) {
      throw new ShapeError(
        `queries ${fmtShape([features.rows, features.cols])} do not fit the head's ${this.inputDim} inputs`,
      );
    }
    using x = GpuBuffer.fromArray(this.gpu, features.data, [features.rows, features.cols]);
    using e = await this.#head.embedAll(x);
    return { rows: features.rows, cols: this.dims, data: await e.read() };
  }

  /**
   * The k nearest gallery items of each query: `inputs` are head inputs (features: a matrix, or a flat
   * Float32Array of whole rows) or, for a pixel index, raw 8-bit pixels (a Uint8Array of whole images,
   * scaled by 1/255 as the gallery was).
   */
  async search(
    inputs: HostMatrix | Float32Array | Uint8Array,
    k: number,
    options: RetrievalSearchOptions = {},
  ): Promise<RetrievalResult> {
    const features = this.#asFeatures(inputs);
    const t0 = performance.now();
    const emb = await this.embed(features);
    const embedMs = performance.now() - t0;
    return { ...(await this.searchEmbeddings(emb, k, options)), embedMs };
  }

  /**
   * Gallery items as queries, each left out of its own results: through the head from their pixels when
   * the index carries them and takes pixels, else from their stored embeddings.
   */
  async searchItems(
    items: readonly number[],
    k: number,
    options: Omit<RetrievalSearchOptions, "exclude"> = {},
  ): Promise<RetrievalResult> {
    items.forEach((i) => this.#item(i));
    const exclude = items.slice();
    if (this.takesPixels && this.contents.pixels) {
      const n = this.inputDim;
      const pixels = new Uint8Array(items.length * n);
      items.forEach((i, r) => pixels.set(this.pixels(i)!, r * n));
      return await this.search(pixels, k, { ...options, exclude });
    }
    const data = new Float32Array(items.length * this.dims);
    items.forEach((i, r) => data.set(this.embedding(i), r * this.dims));
    return await this.searchEmbeddings({ rows: items.length, cols: this.dims, data }, k, {
      ...options,
      exclude,
    });
  }

  /** The k nearest gallery items of embeddings [rows x dims] (already through the head). */
  async searchEmbeddings(
    queries: HostMatrix,
    k: number,
    options: RetrievalSearchOptions = {},
  ): Promise<RetrievalResult> {
    this.#check();
    if (queries.cols !== this.dims) {
      throw new ShapeError(
        `query embeddings ${fmtShape([queries.rows, queries.cols])} are not ${this.dims}-d like the gallery`,
      );
    }
    const exclude = options.exclude;
    if (exclude && exclude.length !== queries.rows) {
      throw new ShapeError(`exclude lists ${exclude.length} items for ${queries.rows} queries`);
    }
    const limit = Math.min(TOPK_MAX_K, this.size);
    if (!Number.isInteger(k) || k < 1 || k > limit) {
      throw new UserError(
        `k must be a whole number from 1 to ${limit} (the gallery has ${this.size} items), got ${k}`,
      );
    }
    const wanted = Math.min(this.size, k + (exclude ? 1 : 0));
    const t0 = performance.now();
    let indices: Uint32Array, distances: Float32Array, evaluations: number;
    let method: RetrievalResult["method"] = "exact-gpu";
    using q = GpuBuffer.fromArray(this.gpu, queries.data, [queries.rows, queries.cols]);
    if (options.exact) {
      this.#base ??= GpuBuffer.fromArray(this.gpu, this.contents.embeddings.data, [this.size, this.dims]);
      using res = await knnSqL2(q, this.#base, wanted);
      [indices, distances] = [await res.indices.read(), await res.distances.read()];
      evaluations = this.size;
    } else {
      const budget = options.budget ?? Math.max(this.header.search.budget, 4 * wanted);
      if (!Number.isInteger(budget) || budget < 1) {
        throw new UserError(`budget must be a whole number >= 1, got ${budget}`);
      }
      ({ indices, distances, evaluations } = await this.#graphSearch(q, queries, wanted, budget));
      method = this.#place.on === "gpu" ? "graph-gpu" : "graph-cpu";
    }
    const out: Neighbour[][] = [];
    for (let r = 0; r < queries.rows; r++) {
      const skip = exclude?.[r] ?? -1;
      const list: Neighbour[] = [];
      for (let j = 0; j < wanted && list.length < k; j++) {
        const item = indices[r * wanted + j];
        if (item === NO_VERTEX || item === skip) continue;
        list.push({
          item,
          id: this.contents.ids[item],
          label: this.contents.labels[item],
          distance: Math.sqrt(distances[r * wanted + j]),
        });
      }
      out.push(list);
    }
    return { k, queries: out, evaluations, method, embedMs: 0, searchMs: performance.now() - t0 };
  }

  /** The graph search on the GPU, or with the plain-TS reference (same walk) where the GPU cannot run it. */
  async #graphSearch(
    q: GpuBuffer<"f32">,
    queries: HostMatrix,
    k: number,
    budget: number,
  ): Promise<{ indices: Uint32Array; distances: Float32Array; evaluations: number }> {
    if (this.#place.on === "gpu") {
      try {
        using res = await this.#index.search(q, k, {
          budget,
          ef: SEARCH_EF,
          entryPoints: "fixed",
          entryCount: ENTRY_POINTS,
        });
        return {
          indices: await res.indices.read(),
          distances: await res.distances.read(),
          evaluations: res.evaluations,
        };
      } catch (e) {
        if (!this.#auto || !/storage ?buffers?/i.test((e as Error).message)) throw e;
        this.#place = { on: "cpu", reason: (e as Error).message.split("\n")[0] };
      }
    }
    const graph = this.contents.graph;
    this.#padded ??= paddedFromGraph(graph);
    const entries = graph.entries.slice(0, ENTRY_POINTS);
    const res = searchRef(this.contents.embeddings, this.#padded, queries, k, {
      budget,
      ef: SEARCH_EF,
      entries: entries.length ? entries : new Uint32Array([NO_VERTEX]),
      entryStride: 0,
    });
    const evaluations = res.evaluations.reduce((s, v) => s + v, 0) / Math.max(1, queries.rows);
    return { indices: res.indices, distances: res.distances, evaluations };
  }

  #asFeatures(inputs: HostMatrix | Float32Array | Uint8Array): HostMatrix {
    const n = this.inputDim;
    if (inputs instanceof Uint8Array) {
      if (!this.takesPixels) {
        throw new UserError(
          `${this.source} was built on backbone features, not pixels: run images through its backbone first`,
        );
      }
      if (inputs.length === 0 || inputs.length % n) {
        throw new ShapeError(`${inputs.length} pixel bytes are not whole images of ${n} values`);
      }
      return { rows: inputs.length / n, cols: n, data: Float32Array.from(inputs, (v) => v / 255) };
    }
    if (inputs instanceof Float32Array) {
      if (inputs.length === 0 || inputs.length % n) {
        throw new ShapeError(`${inputs.length} feature values are not whole rows of the head's ${n} inputs`);
      }
      return { rows: inputs.length / n, cols: n, data: inputs };
    }
    return inputs;
  }

  #item(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) {
      throw new UserError(`gallery item ${i} is outside 0..${this.size - 1}`);
    }
    return i;
  }

  #check(): void {
    if (this.#disposed) throw new Error("Retriever used after dispose");
  }

  /** Frees the GPU memory. */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#head.destroy();
    this.#index[Symbol.dispose]();
    this.#base?.destroy();
  }
}

/** A response body as bytes, reporting progress as it arrives. */
async function readBody(response: Response, onProgress?: (loaded: number, total: number) => void) {
  const total = Number(response.headers.get("content-length") ?? 0);
  if (!onProgress || !response.body) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let o = 0;
  for (const c of chunks) bytes.set(c, o), o += c.length;
  return bytes;
}
