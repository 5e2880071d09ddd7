/**
 * The neighbour questions smart mining asks (docs/method.md section 3), answered on the GPU either by exact brute
 * force (fused distance + top-k, O(N^2 D)) or by the FANNG graph (docs/method.md section 5). Both answer in GPU
 * buffers: eps_a, the radius kappa * eps_a and the filtered search never pass through the host.
 *
 * Only the nearest qualifying negative is used (docs/method.md section 3 step 5), so the filtered search asks for
 * one result; how thoroughly the graph search looks for it is its ef and budget (lib/ann/search_defaults.ts,
 * "mining").
 * @module
 */
import type { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { knnSqL2 } from "../ops/knn.ts";
import { FanngIndex } from "../ann/index.ts";
import { decodeGraph } from "../ann/file.ts";
import type { FanngGraph } from "../ann/graph.ts";
import { encodeRadius } from "./radius.ts";
import { searchDefaults } from "../ann/search_defaults.ts";

/** Each anchor's eps and negative, on the GPU (the owner frees them with dispose). */
export interface GpuNegatives extends Disposable {
  /** [N] eps_a: squared distance to the nearest other sample, any class. */
  eps: GpuBuffer<"f32">;
  /** [N] the nearest sample of another class with squared distance > kappa * eps_a (0xFFFFFFFF: none). */
  negative: GpuBuffer<"u32">;
  /** [N] its squared distance (+Inf: none). */
  dan: GpuBuffer<"f32">;
  /** [N] distance evaluations per anchor, both passes (graph search only). */
  evaluations?: GpuBuffer<"u32">;
}

/** Progress of a negative search: `done` of `total` steps (anchor searches, or rows of brute-force passes). */
export type SearchProgress = (done: number, total: number) => void;

/** What smart mining needs to know about the embeddings of the training set. */
export interface NeighbourSearch {
  /** eps_a and the negative of every anchor at exclusion scale `kappa` (f32), computed on the GPU. */
  negatives(kappa: number, onProgress?: SearchProgress): Promise<GpuNegatives>;
}

function owned(parts: Omit<GpuNegatives, typeof Symbol.dispose>): GpuNegatives {
  return {
    ...parts,
    [Symbol.dispose]() {
      parts.eps.destroy();
      parts.negative.destroy();
      parts.dan.destroy();
      parts.evaluations?.destroy();
    },
  };
}

/** Exact answers by GPU brute force over all pairs, streamed in blocks (no N x N matrix). */
export class ExactSearch implements NeighbourSearch {
  /** Exact search over `emb` with its `labels`, both on the GPU. */
  constructor(readonly emb: GpuBuffer<"f32">, readonly labels: GpuBuffer<"i32">) {}

  async negatives(kappa: number, onProgress?: SearchProgress): Promise<GpuNegatives> {
    const n = this.emb.rows;
    const nearest = await knnSqL2(this.emb, this.emb, 1, { excludeSelf: true, selfOffset: 0 }, {
      onProgress: (rows) => onProgress?.(rows, 2 * n),
    });
    nearest.indices.destroy();
    try {
      const batch = new CommandBatch(this.emb.gpu, "mining.radius");
      using radius = await encodeRadius(batch, nearest.distances, kappa);
      await batch.submit();
      const neg = await knnSqL2(this.emb, this.emb, 1, {
        rowLabels: this.labels,
        colLabels: this.labels,
        labelMode: "different",
        rowMinDistance: radius,
      }, { onProgress: (rows) => onProgress?.(n + rows, 2 * n) });
      return owned({ eps: nearest.distances, negative: neg.indices, dan: neg.distances });
    } catch (e) {
      nearest.distances.destroy();
      throw e;
    }
  }
}

/** Options of the graph search used for mining (0 = the default of lib/ann/search_defaults.ts). */
export interface FanngSearchOptions {
  /** Maximum out-degree of the graph. */
  maxDegree: number;
  /** Distance evaluations per anchor in the filtered search; 0 = the default. */
  budget: number;
  /**
   * ef of the filtered search; 0 = the default.
   * @default 0 (the "mining" default of lib/ann/search_defaults.ts)
   */
  ef?: number;
  /**
   * Queue-key factor of the anchor's own label in the filtered search (>= 1); 0 = the default.
   * @default 0 (the "mining" default: Infinity)
   */
  labelPenalty?: number;
  /** Seed of the graph build. */
  seed: number;
  /**
   * No progress bar while the graph is built.
   * @default false
   */
  quiet?: boolean;
}

/**
 * Answers through a FANNG graph over the embeddings. `update()` builds the graph the first time and
 * refreshes it (starting from the previous graph) when the embeddings have moved. `state()` and
 * `restore()` carry the graph across a checkpoint, so a resumed run refreshes the same graph.
 */
export class FanngSearch implements NeighbourSearch, Disposable {
  #index: FanngIndex | undefined;
  /** A graph and refresh state from `restore()`, waiting for the next `update()`. */
  #restored: { graph: FanngGraph; refresh?: Uint8Array; source: string } | undefined;

  /** FANNG search over the embeddings the next `prepare` gives, with their `labels`. */
  constructor(readonly labels: GpuBuffer<"i32">, readonly options: FanngSearchOptions) {}

  /** The current index (after `update`). */
  get index(): FanngIndex {
    if (!this.#index) throw new Error("FanngSearch.update() must run first");
    return this.#index;
  }

  /** Builds or refreshes the graph over `emb`; returns the seconds it took. */
  async update(emb: GpuBuffer<"f32">): Promise<number> {
    const t0 = performance.now();
    const { maxDegree, seed, quiet } = this.options;
    if (this.#restored) {
      const { graph, refresh, source } = this.#restored;
      this.#index = await FanngIndex.fromGraph(emb.gpu, graph, emb, source, refresh);
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

  /**
   * The graph in the `.fanng` format (lib/ann/file.ts) and what its next refresh starts from, for a
   * checkpoint; undefined before any update.
   */
  async state(): Promise<{ graph: Uint8Array; refresh: Uint8Array } | undefined> {
    if (!this.#index) return undefined;
    return { graph: this.#index.toBytes(), refresh: await this.#index.refreshStateBytes() };
  }

  /**
   * Takes back a graph and refresh state saved by `state()` (checked; a UserError names `source` when they
   * are damaged): the next `update()` refreshes them, exactly as this search would have refreshed its own.
   */
  restore(graph: Uint8Array, refresh?: Uint8Array, source = "the saved FANNG graph"): void {
    this.#restored = { graph: decodeGraph(graph, source), refresh, source };
    this.#index?.[Symbol.dispose]();
    this.#index = undefined;
  }

  /**
   * Two GPU passes over the graph: each anchor's nearest point of any label (eps_a), then the filtered
   * search (other label, beyond kappa * eps_a, the radius read from the first pass's output on the GPU).
   * The filtered pass (lib/ann/search_defaults.ts, "mining") starts from the anchor's own vertex and the
   * graph's fixed entry vertices, so an anchor whose edges all stay in its class still reaches the other
   * classes at once, and by default never expands a vertex of the anchor's own label (`labelPenalty`):
   * otherwise it must cross the anchor's class before its first result. Its queue is ordered by distance
   * from the exclusion sphere (docs/ann-search.md).
   */
  async negatives(kappa: number, onProgress?: SearchProgress): Promise<GpuNegatives> {
    const { budget, ef, labelPenalty } = this.options;
    const defaults = searchDefaults("mining");
    const out = await this.index.selfSearchOutputs(1, {
      budget: budget > 0 ? budget : defaults.budget,
      ef: ef ? ef : defaults.ef,
      filter: {
        labels: this.labels,
        queryLabels: this.labels,
        minDistanceScale: kappa,
        labelPenalty: labelPenalty ? labelPenalty : defaults.labelPenalty,
      },
      entryPoints: "fixed",
      entryCount: defaults.entryCount,
      onProgress,
    });
    out.nearestAny.destroy();
    return owned({
      eps: out.nearestAnyDistance,
      negative: out.indices,
      dan: out.distances,
      evaluations: out.evaluations,
    });
  }

  /** Frees the graph. */
  [Symbol.dispose](): void {
    this.#index?.[Symbol.dispose]();
    this.#index = undefined;
  }
}
