/**
 * k-means on the GPU with its loop on the GPU (the algorithm of ./lloyd.ts): seeding in rounds of D^2
 * samples, then Lloyd iterations whose update, assignment (kernels/eval_tiles.wgsl, register tiles of
 * point-centroid distances), inertia, grouping and convergence test all run in kernels/kmeans.wgsl, several
 * restarts side by side. The host encodes batches of iterations ahead and reads a few status words per
 * batch; it steps in only to refill empty clusters (rare), and reads the assignments once at the end.
 * The data may be larger than one storage binding (it is bound in row blocks).
 *
 * @example
 * ```ts
 * import { kmeans } from "./kmeans.ts";
 * const data = { rows: 4, cols: 1, data: new Float32Array([0, 0.1, 5, 5.1]) };
 * const { assignments } = await kmeans(data, 2, { seed: 1 });
 * // assignments groups {0, 1} and {2, 3}
 * ```
 * @module
 */
import { alignedRowBlock, GpuBuffer, rowBlocks } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { getGpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { type EntryBindings, fieldsFor } from "../gpu/spec.ts";
import { KMEANS } from "../gpu/specs/kmeans.ts";
import { checkShape, fmtShape } from "../errors.ts";
import { encodePrepareRows, type PreparedRows } from "../ops/distance.ts";
import { loopBudget } from "../gpu/rounds.ts";
import type { HostMatrix } from "../util/matrix.ts";
import {
  type Assignment,
  bestRestart,
  type KMeansOptions,
  type KMeansResult,
  kmeansSettings,
  relocateEmpty,
  seedDraws,
  seedRounds,
  SUM_BLOCK,
} from "./lloyd.ts";
import { encodeNearest, type TileRows } from "./tiles.ts";

export type { KMeansOptions, KMeansResult } from "./lloyd.ts";

const WG = 64;
/** Seeding rounds with fewer new centres than this update the distances point by point, not in tiles. */
const TILE_MIN_CENTRES = 16;
/** Most bytes of the grouping histogram (bigger data take bigger blocks). */
const HIST_BYTES = 64 * 2 ** 20;
/** Lloyd iterations encoded per submission (the host reads the status once per submission). */
const ITERS_PER_SUBMIT = 8;
const STATE = { running: 0, converged: 1, maxIters: 2, relocate: 3 };

/** Uploads a host matrix, or returns the GPU buffer as is; `owned` says whether the caller must free it. */
export async function asGpuMatrix(
  data: GpuBuffer<"f32"> | HostMatrix,
  gpu?: Gpu,
): Promise<{ buffer: GpuBuffer<"f32">; owned: boolean }> {
  if (data instanceof GpuBuffer) {
    checkShape(data.shape.length === 2, `expected a 2-D [rows x dim] matrix, got ${fmtShape(data.shape)}`);
    return { buffer: data, owned: false };
  }
  const g = gpu ?? await getGpu();
  return { buffer: GpuBuffer.fromArray(g, data.data, [data.rows, data.cols], "matrix"), owned: true };
}

/** Floats per centroid row on the GPU: `dim` rounded up to a multiple of 4 (zero padded, vec4 loads). */
export function paddedDim(dim: number): number {
  return Math.ceil(dim / 4) * 4;
}

/** Copies a [rows x dim] matrix into rows of paddedDim(dim) floats (zero padded). */
function padRows(m: HostMatrix): Float32Array {
  const dp = paddedDim(m.cols);
  const out = new Float32Array(m.rows * dp);
  for (let i = 0; i < m.rows; i++) out.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), i * dp);
  return out;
}

/** A row block of the prepared points. */
interface DataBlock {
  start: number;
  rows: number;
  tile: TileRows;
}

/** Row blocks of prepared rows that each fit one storage binding (`maxBytes`). */
function dataBlocks(gpu: Gpu, prep: PreparedRows, maxBytes: number): DataBlock[] {
  const per = alignedRowBlock(gpu, [prep.dim4 * 16, 4], maxBytes, prep.rows);
  return rowBlocks(prep.rows, per).map(({ start, rows }) => ({
    start,
    rows,
    tile: {
      data: prep.data.binding(start * prep.dim4 * 4, rows * prep.dim4 * 4),
      norms: prep.norms.binding(start, rows),
      dim4: prep.dim4,
    },
  }));
}

/** Options of {@link kmeans}: those of the reference plus the binding size used to block the data. */
export interface GpuKMeansOptions extends KMeansOptions {
  /**
   * Largest data block bound at once, in bytes (default: the adapter's binding limit); for tests.
   * @default the adapter's binding limit
   */
  chunkBytes?: number;
  /**
   * Loop back-edges per invocation and dispatch (default: the adapter's budget); tests force windows.
   * @default the adapter's budget
   */
  loopBudget?: number;
  /**
   * Bytes of the grouping histogram at most (default 64 MiB); tests force big grouping blocks.
   * @default 64 MiB
   */
  histBytes?: number;
  /** Called with (iterations done, maxIters) after each batch of iterations. */
  onProgress?: (iterations: number, maxIters: number) => void;
}

/**
 * Nearest centroid of every row of `data` for each centroid set in `centroids` ([restarts * k x dim],
 * restart r's clusters in rows r*k..r*k+k-1), on the GPU; ties go to the smaller cluster index.
 * `chunkBytes` limits the data block bound at once (tests use it to force blocking).
 */
export async function kmeansAssign(
  data: GpuBuffer<"f32">,
  centroids: HostMatrix,
  k: number,
  chunkBytes?: number,
): Promise<Assignment> {
  checkShape(
    centroids.cols === data.cols && centroids.rows % k === 0 && centroids.rows > 0,
    `kmeans assign: centroids [${centroids.rows} x ${centroids.cols}] must be [restarts * ${k} x ${data.cols}] ` +
      `for data ${fmtShape(data.shape)}`,
  );
  const gpu = data.gpu, n = data.rows, restarts = centroids.rows / k;
  const batch = new CommandBatch(gpu, "kmeansAssign");
  using cents = GpuBuffer.fromArray(gpu, padRows(centroids), [centroids.rows, paddedDim(data.cols)]);
  using prep = await encodePrepareRows(batch, data, { keep: true });
  using cprep = await encodePrepareRows(batch, cents, { keep: true });
  using pairs = GpuBuffer.zeros(gpu, "u32", [restarts, n, 2], "kmeans pairs");
  for (const block of dataBlocks(gpu, prep, chunkBytes ?? gpu.maxBindingBytes)) {
    await encodeNearest(batch, {
      a: block.tile,
      rowBase: block.start,
      rows: block.rows,
      b: cprep,
      cols: { begin: 0, step: k, len: k },
      out: pairs,
      outStride: n,
      layers: restarts,
    });
  }
  await batch.submit();
  return splitPairs(await pairs.read());
}

/** (distance bits, cluster) pairs as an Assignment. */
function splitPairs(pairs: Uint32Array): Assignment {
  const n = pairs.length / 2;
  const assign = new Uint32Array(n), dist = new Float32Array(n);
  const bits = new Uint32Array(dist.buffer);
  for (let i = 0; i < n; i++) {
    bits[i] = pairs[2 * i];
    assign[i] = pairs[2 * i + 1];
  }
  return { assign, dist };
}

/**
 * k-means with k-means++ seeding (in rounds for large k) and `restarts` restarts (best inertia wins) on the
 * GPU. Deterministic for a given seed. Same algorithm and result layout as {@link kmeansRef}.
 */
export async function kmeans(
  data: GpuBuffer<"f32"> | HostMatrix,
  k: number,
  opts: GpuKMeansOptions = {},
): Promise<KMeansResult> {
  const { buffer: x, owned } = await asGpuMatrix(data);
  try {
    const { restarts, maxIters, seed, tol } = kmeansSettings(x.rows, k, opts);
    checkShape(
      restarts <= x.gpu.maxWorkgroupsPerDim,
      `k-means: at most ${x.gpu.maxWorkgroupsPerDim} restarts`,
    );
    const run = new KMeansRun(x, k, restarts, maxIters, tol, opts);
    try {
      return await run.run(seed);
    } finally {
      run.destroy();
    }
  } finally {
    if (owned) x.destroy();
  }
}

/** The buffers and encoders of one k-means run (see kernels/kmeans.wgsl for the layouts). */
class KMeansRun {
  readonly gpu: Gpu;
  readonly n: number;
  readonly dim: number;
  readonly dim4: number;
  readonly nb: number;
  /** Points per block of the grouping, and blocks: the [R x blocks x k] histogram fits one binding. */
  readonly gb: number;
  readonly ngb: number;
  readonly budget: number;
  readonly #owned: { destroy(): void }[] = [];
  prep?: PreparedRows;
  blocks!: DataBlock[];
  readonly cents: GpuBuffer<"f32">;
  readonly centNorms: GpuBuffer<"f32">;
  readonly pairs: GpuBuffer<"u32">;
  readonly sums: GpuBuffer<"f32">;
  readonly prefix: GpuBuffer<"f32">;
  readonly totals: GpuBuffer<"f32">;
  readonly hist: GpuBuffer<"u32">;
  readonly counts: GpuBuffer<"u32">;
  readonly offsets: GpuBuffer<"u32">;
  readonly order: GpuBuffer<"u32">;
  readonly prev: GpuBuffer<"u32">;
  readonly status: GpuBuffer<"u32">;
  readonly picked: GpuBuffer<"u32">;
  readonly uniforms: GpuBuffer<"f32">;
  readonly centSums: GpuBuffer<"f32">;

  constructor(
    readonly x: GpuBuffer<"f32">,
    readonly k: number,
    readonly restarts: number,
    readonly maxIters: number,
    readonly tol: number,
    readonly opts: GpuKMeansOptions,
  ) {
    const gpu = this.gpu = x.gpu;
    const n = this.n = x.rows, R = restarts;
    this.dim = x.cols;
    this.dim4 = Math.ceil(x.cols / 4);
    this.nb = Math.ceil(n / SUM_BLOCK);
    this.budget = opts.loopBudget ?? loopBudget(gpu);
    const histBytes = Math.min(gpu.maxBindingBytes, opts.histBytes ?? HIST_BYTES);
    this.gb = Math.max(SUM_BLOCK, Math.ceil((n * R * k * 4) / histBytes));
    this.ngb = Math.ceil(n / this.gb);
    checkShape(
      this.gb <= Math.max(this.budget, SUM_BLOCK) && R * this.ngb * k * 4 <= gpu.maxBindingBytes,
      `k-means: ${n} points in ${k} clusters x ${R} restarts need a grouping histogram larger than this ` +
        `adapter allows; use fewer points, clusters or restarts`,
    );
    const make = <D extends "f32" | "u32">(dtype: D, shape: number[], label: string) => {
      const b = GpuBuffer.zeros(gpu, dtype, shape, `kmeans ${label}`);
      this.#owned.push(b);
      return b;
    };
    this.cents = make("f32", [R * k, this.dim4 * 4], "centroids");
    this.centNorms = make("f32", [R * k], "centroid norms");
    this.pairs = make("u32", [R, n, 2], "pairs");
    this.sums = make("f32", [R, this.nb], "block sums");
    this.prefix = make("f32", [R, this.nb], "block prefix");
    this.totals = make("f32", [R], "totals");
    this.hist = make("u32", [R, this.ngb, k], "block histogram");
    this.counts = make("u32", [R, k], "cluster sizes");
    this.offsets = make("u32", [R, k + 1], "cluster offsets");
    this.order = make("u32", [R, n], "order");
    this.prev = make("u32", [R, n], "previous assignment");
    this.status = make("u32", [8 + 4 * R], "status");
    this.picked = make("u32", [R, k], "picked");
    this.uniforms = make("f32", [R, k], "uniforms");
    this.centSums = make("f32", [R * k * this.dim], "centroid sums");
  }

  destroy(): void {
    this.#owned.forEach((b) => b.destroy());
    this.prep?.[Symbol.dispose]();
  }

  /** The uniform fields every entry point may read (each takes those it reads; dispatches add theirs). */
  get fields() {
    const { n, k, restarts, nb, maxIters, tol, dim, gb, ngb } = this;
    return { n, k, restarts, nb, max_iters: maxIters, tol, dim, gb, ngb };
  }

  /**
   * Encodes entry point `entry` of kernels/kmeans.wgsl over `threads` invocations and `layers` restarts,
   * with the run's fields and the dispatch's own `fields`.
   */
  async dispatch<K extends keyof typeof KMEANS.entries & string>(
    batch: CommandBatch,
    entry: K,
    buffers: Omit<EntryBindings<(typeof KMEANS.entries)[K]>, "p">,
    threads: number,
    layers = 1,
    fields: Readonly<Record<string, number>> = {},
  ) {
    const pipe = await KMEANS.pipeline(this.gpu, entry, { WG, DIM4: this.dim4, SUM_BLOCK });
    const grid = [...grid1d(this.gpu, Math.ceil(threads / WG)), layers];
    const bindings = { ...buffers, p: { ...fieldsFor(pipe, this.fields), ...fields } };
    batch.run(
      pipe,
      bindings as unknown as EntryBindings<(typeof KMEANS.entries)[K]>,
      grid,
      `kmeans.${entry}`,
    );
  }

  /** Windows [lo, hi) of `count` items for a loop of one invocation (llvmpipe's back-edge budget). */
  windows(count: number, tripsPerItem = 1): [number, number][] {
    const w = Math.max(1, Math.floor(this.budget / tripsPerItem));
    const out: [number, number][] = [];
    for (let lo = 0; lo < count; lo += w) out.push([lo, Math.min(count, lo + w)]);
    return out;
  }

  /** Block sums of the pairs' distances and their prefix and totals per restart. */
  async encodeSums(batch: CommandBatch): Promise<void> {
    await this.dispatch(
      batch,
      "block_sums",
      { bs_status: this.status, bs_pairs: this.pairs, bs_sums: this.sums },
      this.nb,
      this.restarts,
    );
    for (const [lo, hi] of this.windows(this.nb)) {
      await this.dispatch(
        batch,
        "prefix_sums",
        { ps_status: this.status, ps_sums: this.sums, ps_prefix: this.prefix, ps_totals: this.totals },
        this.restarts,
        1,
        {
          lo,
          hi,
        },
      );
    }
  }

  /** Makes the picked points of slots [first, first + count) centres and updates the distances. */
  async encodeNewCentres(batch: CommandBatch, first: number, count: number): Promise<void> {
    for (const b of this.blocks) {
      await this.dispatch(
        batch,
        "seed_copy",
        {
          sc_status: this.status,
          sc_picked: this.picked,
          sc_data: b.tile.data,
          sc_norms: b.tile.norms,
          sc_cents: this.cents,
          sc_cent_norms: this.centNorms,
          sc_pairs: this.pairs,
        },
        count * this.dim4,
        this.restarts,
        { first, count, block_start: b.start, block_rows: b.rows },
      );
    }
    for (const b of this.blocks) {
      if (count < TILE_MIN_CENTRES) {
        await this.dispatch(
          batch,
          "seed_min",
          {
            sm_status: this.status,
            sm_data: b.tile.data,
            sm_norms: b.tile.norms,
            sm_cents: this.cents,
            sm_cent_norms: this.centNorms,
            sm_pairs: this.pairs,
          },
          b.rows,
          1,
          { first, count, block_start: b.start, block_rows: b.rows },
        );
      } else {
        await encodeNearest(batch, {
          a: b.tile,
          rowBase: b.start,
          rows: b.rows,
          b: { data: this.cents, norms: this.centNorms, dim4: this.dim4 },
          cols: { begin: first, step: this.k, len: count },
          out: this.pairs,
          outStride: this.n,
          layers: this.restarts,
          minInto: true,
          status: this.status,
          loopBudget: this.opts.loopBudget,
        });
      }
    }
  }

  /** Seeding (see ./lloyd.ts): the first centres from the host's draws, then the rounds. */
  async encodeSeeding(batch: CommandBatch, seed: number): Promise<void> {
    const { first, uniforms } = seedDraws(seed, this.restarts, this.n, this.k);
    const picked = new Uint32Array(this.restarts * this.k);
    first.forEach((p, r) => (picked[r * this.k] = p));
    this.picked.write(picked);
    this.uniforms.write(uniforms);
    const init = new Uint32Array(this.restarts * this.n * 2);
    for (let i = 0; i < init.length; i += 2) [init[i], init[i + 1]] = [0x7f800000, 0xffffffff];
    this.pairs.write(init);
    await this.encodeNewCentres(batch, 0, 1);
    for (const [from, count] of seedRounds(this.k)) {
      await this.encodeSums(batch);
      await this.dispatch(
        batch,
        "seed_pick",
        {
          sp_status: this.status,
          sp_prefix: this.prefix,
          sp_totals: this.totals,
          sp_uniforms: this.uniforms,
          sp_pairs: this.pairs,
          sp_picked: this.picked,
        },
        count,
        this.restarts,
        { first: from, count },
      );
      await this.encodeNewCentres(batch, from, count);
    }
  }

  /** Groups the points by cluster (after the assignment): counts, moves, offsets, order. */
  async encodeGroupCounts(batch: CommandBatch): Promise<void> {
    batch.encoder.clearBuffer(this.hist.buffer, 0, this.hist.byteLength);
    await this.dispatch(
      batch,
      "group_count",
      { gc_status: this.status, gc_pairs: this.pairs, gc_prev: this.prev, gc_hist: this.hist },
      this.ngb,
      this.restarts,
    );
    await this.dispatch(
      batch,
      "group_totals",
      { gt_status: this.status, gt_hist: this.hist, gt_counts: this.counts },
      this.k,
      this.restarts,
    );
  }

  async encodeGroupOrder(batch: CommandBatch): Promise<void> {
    for (const [lo, hi] of this.windows(this.k)) {
      await this.dispatch(
        batch,
        "group_offsets",
        { go_status: this.status, go_counts: this.counts, go_offsets: this.offsets },
        this.restarts,
        1,
        {
          lo,
          hi,
        },
      );
    }
    await this.dispatch(
      batch,
      "group_scatter",
      {
        gs_status: this.status,
        gs_pairs: this.pairs,
        gs_offsets: this.offsets,
        gs_hist: this.hist,
        gs_order: this.order,
      },
      this.ngb,
      this.restarts,
    );
  }

  /** One Lloyd iteration; `update` false for the first (the seeds are the centroids). */
  async encodeIteration(batch: CommandBatch, update: boolean): Promise<void> {
    if (update) {
      const windows = this.windows(this.n);
      const passes = this.blocks.length * windows.length;
      let pass = 0;
      for (const b of this.blocks) {
        for (const [lo, hi] of windows) {
          await this.dispatch(
            batch,
            "update",
            {
              up_status: this.status,
              up_data: b.tile.data,
              up_order: this.order,
              up_offsets: this.offsets,
              up_sums: this.centSums,
              up_cents: this.cents,
            },
            this.restarts * this.k * this.dim,
            1,
            {
              block_start: b.start,
              block_rows: b.rows,
              first: pass === 0 ? 1 : 0,
              last: pass === passes - 1 ? 1 : 0,
              lo,
              hi,
            },
          );
          pass++;
        }
      }
      await this.dispatch(
        batch,
        "cent_norms",
        { cn_status: this.status, cn_cents: this.cents, cn_norms: this.centNorms },
        this.restarts * this.k,
      );
    }
    // Moved and empty counters of this iteration start at 0.
    batch.encoder.clearBuffer(this.status.buffer, 8 * 4, 2 * this.restarts * 4);
    for (const b of this.blocks) {
      await encodeNearest(batch, {
        a: b.tile,
        rowBase: b.start,
        rows: b.rows,
        b: { data: this.cents, norms: this.centNorms, dim4: this.dim4 },
        cols: { begin: 0, step: this.k, len: this.k },
        out: this.pairs,
        outStride: this.n,
        layers: this.restarts,
        status: this.status,
        loopBudget: this.opts.loopBudget,
      });
    }
    await this.encodeSums(batch);
    await this.encodeGroupCounts(batch);
    await this.dispatch(batch, "status", { st_status: this.status, st_totals: this.totals }, 1);
    await this.encodeGroupOrder(batch);
  }

  /** Points moved into empty clusters so far. */
  refills = 0;

  /** Reads the pairs, refills empty clusters on the host (./lloyd.ts relocateEmpty), writes them back. */
  async relocate(): Promise<void> {
    const pairs = await this.pairs.read();
    const { assign, dist } = splitPairs(pairs);
    const status = await this.status.read();
    const n = this.n;
    for (let r = 0; r < this.restarts; r++) {
      const own = assign.subarray(r * n, (r + 1) * n);
      const moved = relocateEmpty(own, dist.subarray(r * n, (r + 1) * n), this.k);
      this.refills += moved;
      if (moved > 0) {
        for (let i = 0; i < n; i++) pairs[2 * (r * n + i) + 1] = own[i];
        status[8 + 2 * this.restarts + r] = 1;
      }
    }
    status[0] = STATE.running;
    this.pairs.write(pairs);
    this.status.write(status);
  }

  async run(seed: number): Promise<KMeansResult> {
    const gpu = this.gpu;
    {
      const batch = new CommandBatch(gpu, "kmeans prepare");
      this.prep = await encodePrepareRows(batch, this.x, { keep: true });
      await batch.submit();
    }
    this.blocks = dataBlocks(gpu, this.prep!, this.opts.chunkBytes ?? gpu.maxBindingBytes);
    let batch = new CommandBatch(gpu, "kmeans");
    await this.encodeSeeding(batch, seed);
    let first = true;
    let state = STATE.running, iterations = 0;
    for (;;) {
      for (let i = 0; i < ITERS_PER_SUBMIT; i++) {
        await this.encodeIteration(batch, !first);
        first = false;
      }
      await batch.submit();
      const status = await this.status.read(0, 2);
      [state, iterations] = [status[0], status[1]];
      this.opts.onProgress?.(iterations, this.maxIters);
      batch = new CommandBatch(gpu, "kmeans");
      if (state === STATE.relocate) {
        await this.relocate();
        await this.encodeGroupCounts(batch);
        await this.encodeGroupOrder(batch);
        continue;
      }
      if (state !== STATE.running) break;
    }
    const { assign, dist } = splitPairs(await this.pairs.read());
    const n = this.n, k = this.k, dim = this.dim, dp = this.dim4 * 4;
    const { best, inertias } = bestRestart(dist, n, this.restarts);
    const padded = await this.cents.read(best * k * dp, k * dp);
    const centroids = new Float32Array(k * dim);
    for (let c = 0; c < k; c++) centroids.set(padded.subarray(c * dp, c * dp + dim), c * dim);
    return {
      assignments: Int32Array.from(assign.subarray(best * n, (best + 1) * n)),
      centroids: { rows: k, cols: dim, data: centroids },
      inertia: inertias[best],
      restart: best,
      inertias,
      iterations,
      converged: state === STATE.converged,
      refills: this.refills,
    };
  }
}
