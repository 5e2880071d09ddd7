/**
 * The two neighbour questions smart mining asks, answered on the GPU either by exact brute force
 * (fused distance + top-k, O(N^2 D)) or by the FANNG graph (method.md section 5).
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { knnSqL2 } from "../ops/topk.ts";
import { FanngIndex } from "../ann/index.ts";
import { decodeGraph } from "../ann/file.ts";
import type { FanngGraph } from "../ann/graph.ts";

/** Nearest result of the filtered search per anchor (0xFFFFFFFF / +Inf where none qualified). */
export interface FilteredNearest {
  index: Uint32Array;
  distance: Float32Array;
  /** Mean distance evaluations per query, for graph search. */
  evaluations?: number;
}

/** What smart mining needs to know about the embeddings of the training set. */
export interface NeighbourSearch {
  /** Squared distance from each row to its nearest other row, any class (eps_a). */
  nearestOtherDistance(): Promise<Float32Array>;
  /** For each row a, the nearest row of another class with squared distance > radius[a]. */
  nearestOtherClassOutside(radius: Float32Array): Promise<FilteredNearest>;
}

/** Reads column 0 of a [rows x k] top-k result. */
async function firstColumn(
  res: { k: number; indices: GpuBuffer<"u32">; distances: GpuBuffer<"f32"> },
): Promise<{ index: Uint32Array; distance: Float32Array }> {
  const [idx, dist] = await Promise.all([res.indices.read(), res.distances.read()]);
  const rows = idx.length / res.k;
  const index = new Uint32Array(rows), distance = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    index[i] = idx[i * res.k];
    distance[i] = dist[i * res.k];
  }
  return { index, distance };
}

/** Exact answers by GPU brute force over all pairs, streamed in blocks (no N x N matrix). */
export class ExactSearch implements NeighbourSearch {
  constructor(
    readonly emb: GpuBuffer<"f32">,
    readonly labels: GpuBuffer<"i32">,
    readonly neighbours: number,
  ) {}

  async nearestOtherDistance(): Promise<Float32Array> {
    using res = await knnSqL2(this.emb, this.emb, 1, { excludeSelf: true, selfOffset: 0 });
    return (await firstColumn(res)).distance;
  }

  async nearestOtherClassOutside(radius: Float32Array): Promise<FilteredNearest> {
    using r = GpuBuffer.fromArray(this.emb.gpu, radius);
    using res = await knnSqL2(this.emb, this.emb, this.neighbours, {
      rowLabels: this.labels,
      colLabels: this.labels,
      labelMode: "different",
      rowMinDistance: r,
    });
    return firstColumn(res);
  }
}

/** Options of the graph search used for mining. */
export interface FanngSearchOptions {
  neighbours: number;
  maxDegree: number;
  /** Distance evaluations per query; 0 = the index's default. */
  budget: number;
  /** Early stop of the filtered (negative) search; 0 = off. */
  stopRatio?: number;
  seed: number;
  /** No progress bar while the graph is built. */
  quiet?: boolean;
}

/**
 * Answers through a FANNG graph over the embeddings. `update()` builds the graph the first time and
 * refreshes it (starting from the previous graph) when the embeddings have moved. `state()` and
 * `restore()` carry the graph across a checkpoint, so a resumed run refreshes the same graph.
 */
export class FanngSearch implements NeighbourSearch, Disposable {
  #index: FanngIndex | undefined;
  #emb: GpuBuffer<"f32"> | undefined;
  /** A graph from `restore()`, waiting for the next `update()`. */
  #restored: FanngGraph | undefined;

  constructor(readonly labels: GpuBuffer<"i32">, readonly options: FanngSearchOptions) {}

  /** The current index (after `update`). */
  get index(): FanngIndex {
    if (!this.#index) throw new Error("FanngSearch.update() must run first");
    return this.#index;
  }

  /** Builds or refreshes the graph over `emb`; returns the seconds it took. */
  async update(emb: GpuBuffer<"f32">): Promise<number> {
    const t0 = performance.now();
    this.#emb = emb;
    const { maxDegree, seed, quiet } = this.options;
    if (this.#restored) {
      this.#index = await FanngIndex.fromGraph(emb.gpu, this.#restored, emb, "the saved FANNG graph");
      this.#restored = undefined;
    }
    if (!this.#index) {
      this.#index = await FanngIndex.build(emb.gpu, emb, { maxDegree, seed, quiet });
    } else {
      // In place, from the previous graph (the build options again: a restored index does not hold them).
      await this.#index.refresh(emb, { maxDegree, seed, quiet });
    }
    return (performance.now() - t0) / 1000;
  }

  /** The graph in the `.fanng` format (lib/ann/file.ts), for a checkpoint; undefined before any update. */
  state(): Uint8Array | undefined {
    return this.#index?.toBytes();
  }

  /**
   * Takes back a graph saved by `state()` (checked; a UserError names `source` when it is damaged): the
   * next `update()` refreshes it, exactly as this search would have refreshed its own.
   */
  restore(bytes: Uint8Array, source = "the saved FANNG graph"): void {
    this.#restored = decodeGraph(bytes, source);
    this.#index?.[Symbol.dispose]();
    this.#index = undefined;
  }

  #budget(): { budget?: number } {
    return this.options.budget > 0 ? { budget: this.options.budget } : {};
  }

  async nearestOtherDistance(): Promise<Float32Array> {
    using res = await this.index.selfSearch(1, this.#budget());
    return (await firstColumn({ k: 1, indices: res.indices, distances: res.distances })).distance;
  }

  async nearestOtherClassOutside(radius: Float32Array): Promise<FilteredNearest> {
    if (!this.#emb) throw new Error("FanngSearch.update() must run first");
    using r = GpuBuffer.fromArray(this.#emb.gpu, radius);
    const k = this.options.neighbours;
    using res = await this.index.selfSearch(k, {
      ...this.#budget(),
      stopRatio: this.options.stopRatio ?? 0,
      filter: { labels: this.labels, queryLabels: this.labels, minDistance: r },
    });
    const first = await firstColumn({ k, indices: res.indices, distances: res.distances });
    return { ...first, evaluations: res.evaluations };
  }

  [Symbol.dispose](): void {
    this.#index?.[Symbol.dispose]();
    this.#index = undefined;
  }
}
