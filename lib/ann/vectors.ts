/**
 * Vectors in the layout the FANNG kernels read: column blocks of vec4 (see kernels/fanng_layout.wgsl).
 * Graph search and pruning read arbitrary rows, so the whole matrix must be bound at once; splitting it by
 * columns into at most {@link MAX_BLOCKS} blocks of one storage binding each lets every kernel sum a row's
 * distance over the blocks without branching per row. On llvmpipe (128 MiB bindings) 60,000 x 784 floats
 * take two blocks; 64-d embeddings take one.
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { type Bindable, CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { FANNG_LAYOUT } from "../gpu/specs/fanng_layout.ts";
import type { HostMatrix } from "../util/matrix.ts";

/** Most column blocks a kernel binds (bindings 1..4 of kernels/fanng.wgsl). */
export const MAX_BLOCKS = 4;

/** How a [rows x dims] matrix is split: `count` blocks of `w4` vec4 per row. */
export interface BlockLayout {
  /** Number of column blocks. */
  readonly count: number;
  /** Width of one block in vec4s. */
  readonly w4: number;
}

/** The block layout for `rows` rows of `dims` floats under a binding limit of `maxBindingBytes`. */
export function blockLayout(rows: number, dims: number, maxBindingBytes: number): BlockLayout {
  const d4 = Math.max(1, Math.ceil(dims / 4));
  const fit = Math.floor(maxBindingBytes / (Math.max(1, rows) * 16));
  const count = Math.ceil(d4 / Math.max(1, fit));
  if (fit < 1 || count > MAX_BLOCKS) {
    throw new UserError(
      `${rows} vectors of ${dims} floats (${((rows * dims * 4) / 2 ** 20).toFixed(0)} MiB) do not fit ` +
        `${MAX_BLOCKS} storage bindings of ${(maxBindingBytes / 2 ** 20).toFixed(0)} MiB on this adapter; ` +
        `reduce the dimension (e.g. PCA) or index fewer points per index`,
    );
  }
  return { count, w4: Math.ceil(d4 / count) };
}

const WG = 64;

/** A matrix held as column blocks on the GPU (owned: dispose frees them). */
export class VectorBlocks implements Disposable {
  private constructor(
    readonly gpu: Gpu,
    readonly rows: number,
    readonly dims: number,
    readonly layout: BlockLayout,
    readonly blocks: GpuBuffer<"f32">[],
    /** 0: f32 blocks; > 0: one block of f16 pairs, the values times this power of two ({@link toHalf}). */
    readonly halfScale = 0,
  ) {}

  /** Empty blocks for `rows` x `dims` in `layout` (default: the adapter's). */
  static alloc(gpu: Gpu, rows: number, dims: number, layout?: BlockLayout): VectorBlocks {
    layout ??= blockLayout(rows, dims, gpu.maxBindingBytes);
    const blocks = Array.from(
      { length: layout.count },
      (_, b) => GpuBuffer.zeros(gpu, "f32", [rows, layout.w4 * 4], `fanng vectors block ${b}`),
    );
    return new VectorBlocks(gpu, rows, dims, layout, blocks);
  }

  /** Uploads a host matrix (laid out on the host). */
  static fromHost(gpu: Gpu, m: HostMatrix, layout?: BlockLayout): VectorBlocks {
    const out = VectorBlocks.alloc(gpu, m.rows, m.cols, layout);
    const w = out.layout.w4 * 4;
    out.blocks.forEach((buf, b) => {
      const data = new Float32Array(m.rows * w);
      const c0 = b * w, c1 = Math.min(m.cols, c0 + w);
      if (c1 > c0) {
        for (let r = 0; r < m.rows; r++) data.set(m.data.subarray(r * m.cols + c0, r * m.cols + c1), r * w);
      }
      buf.write(data);
    });
    return out;
  }

  /** Copies a row-major GPU matrix into new blocks; the copy is encoded into `batch`. */
  static async encodeFrom(
    batch: CommandBatch,
    src: GpuBuffer<"f32">,
    layout?: BlockLayout,
  ): Promise<VectorBlocks> {
    if (src.shape.length !== 2) {
      throw new ShapeError(`vectors must be a 2-D matrix, got ${fmtShape(src.shape)}`);
    }
    const out = VectorBlocks.alloc(batch.gpu, src.rows, src.cols, layout);
    await out.encodeCopy(batch, src);
    return out;
  }

  /** Overwrites these blocks with `src` (same shape), encoded into `batch`. */
  async encodeCopy(batch: CommandBatch, src: GpuBuffer<"f32">): Promise<void> {
    if (src.rows !== this.rows || src.cols !== this.dims || src.shape.length !== 2) {
      throw new ShapeError(
        `vectors ${fmtShape(src.shape)} do not match the index's ${fmtShape([this.rows, this.dims])}`,
      );
    }
    const pipeline = await FANNG_LAYOUT.pipeline(this.gpu, "to_blocks", { WG });
    const w4 = this.layout.w4;
    for (const chunk of src.rowChunks()) {
      this.blocks.forEach((dst, b) => {
        batch.run(
          pipeline,
          {
            p: { rows: chunk.rows, dims: this.dims, w4, col0: b * w4 * 4, dst_row0: chunk.rowStart },
            src: chunk.binding,
            dst,
          },
          grid1d(this.gpu, Math.ceil((chunk.rows * w4) / WG)),
          "fanng.layout",
        );
      });
    }
  }

  /**
   * These vectors rounded to f16 and packed two per 32-bit word (kernels/fanng_layout.wgsl `to_half`), after
   * multiplying them by `scale`, a power of two (default: the one that brings the largest finite |value|
   * into [2^13, 2^14], so that neither the f16 range nor its precision is wasted; values beyond the range
   * saturate at +-65504): half the bytes per row, for the graph search's walk (docs/ann-search.md, "Half
   * walk"). Needs one column block of an even number of vec4s; the result is one block of w4 / 2 vec4s whose
   * {@link toHost} gives the scaled, rounded values the search computes with.
   */
  async toHalf(scale?: number): Promise<VectorBlocks> {
    const { count, w4 } = this.layout;
    if (!canHalve(this)) {
      throw new ShapeError(
        `half vectors need one f32 column block of an even number of vec4s, got ${count} block(s) of ${w4}` +
          (this.halfScale > 0 ? " already in halves" : ""),
      );
    }
    if (
      scale !== undefined &&
      !(scale > 0 && Number.isFinite(scale) && 2 ** Math.round(Math.log2(scale)) === scale)
    ) {
      throw new UserError(`half vectors: scale must be a power of two, got ${scale}`);
    }
    const gpu = this.gpu, rows = this.rows, w4h = w4 / 2;
    const params = { rows, w4, w4h, scale: scale ?? 1 };
    if (scale === undefined) {
      const pipeline = await FANNG_LAYOUT.pipeline(gpu, "half_max", { WG });
      using max = GpuBuffer.zeros(gpu, "u32", [1], "half max");
      const batch = new CommandBatch(gpu, "fanng.half_max");
      batch.run(
        pipeline,
        { hp: { rows, w4 }, h_src: this.blocks[0], hm_out: max },
        grid1d(gpu, Math.ceil((rows * w4) / WG)),
        "fanng.half_max",
      );
      await batch.submit();
      const m = new Float32Array((await max.read()).buffer)[0];
      params.scale = m > 0 ? 2 ** Math.max(-100, Math.min(100, 14 - Math.ceil(Math.log2(m)))) : 1;
    }
    const out = new VectorBlocks(gpu, rows, this.dims, { count: 1, w4: w4h }, [
      GpuBuffer.zeros(gpu, "f32", [rows, w4h * 4], "fanng half vectors"),
    ], params.scale);
    try {
      if (rows > 0) {
        const pipeline = await FANNG_LAYOUT.pipeline(gpu, "to_half", { WG });
        const batch = new CommandBatch(gpu, "fanng.to_half");
        batch.run(
          pipeline,
          { hp: params, h_src: this.blocks[0], h_dst: out.blocks[0] },
          grid1d(gpu, Math.ceil((rows * w4h) / WG)),
          "fanng.to_half",
        );
        await batch.submit();
      }
      return out;
    } catch (e) {
      out.destroy(); // a failed packing leaves no half-written vectors behind
      throw e;
    }
  }

  /** The four block bindings of kernels/fanng.wgsl (unused ones repeat block 0), over rows [start, start + count). */
  bindings(start = 0, count = this.rows - start): Bindable[] {
    const w = this.layout.w4 * 4;
    return Array.from(
      { length: MAX_BLOCKS },
      (_, b) => this.blocks[b < this.blocks.length ? b : 0].binding(start * w, count * w),
    );
  }

  /** Reads the matrix back (for tests and host references). */
  async toHost(): Promise<HostMatrix> {
    if (this.halfScale > 0) return await this.#halfToHost();
    const w = this.layout.w4 * 4;
    const data = new Float32Array(this.rows * this.dims);
    for (let b = 0; b < this.blocks.length; b++) {
      const block = await this.blocks[b].read();
      const c0 = b * w, c1 = Math.min(this.dims, c0 + w);
      for (let r = 0; r < this.rows && c1 > c0; r++) {
        data.set(block.subarray(r * w, r * w + c1 - c0), r * this.dims + c0);
      }
    }
    return { rows: this.rows, cols: this.dims, data };
  }

  async #halfToHost(): Promise<HostMatrix> {
    const words = new Uint32Array((await this.blocks[0].read()).buffer);
    const w = this.layout.w4 * 8, data = new Float32Array(this.rows * this.dims);
    for (let r = 0; r < this.rows; r++) {
      for (let c = 0; c < this.dims; c++) {
        const word = words[r * (w / 2) + (c >> 1)];
        data[r * this.dims + c] = halfToFloat(c & 1 ? word >>> 16 : word & 0xffff);
      }
    }
    return { rows: this.rows, cols: this.dims, data };
  }

  /** Frees the blocks. */
  destroy(): void {
    this.blocks.forEach((b) => b.destroy());
  }

  /** Frees the blocks. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * Bindings 1..8 of the FANNG kernels by name: the base's column blocks b0..b3 and the queries' q0..q3 (rows
 * `rows[0]` .. + `rows[1]` of them, or all; the base itself by default).
 */
export function blockBindings(base: VectorBlocks, queries: VectorBlocks = base, rows?: [number, number]) {
  const [b0, b1, b2, b3] = base.bindings();
  const [q0, q1, q2, q3] = rows ? queries.bindings(rows[0], rows[1]) : queries.bindings();
  return { b0, b1, b2, b3, q0, q1, q2, q3 };
}

/** Widest row (in vec4) a graph kernel keeps in registers: 32 vec4, D <= 128. */
const MAX_REGISTER_W4 = 32;

/**
 * The row width in vec4 when `vectors` are one column block narrow enough for an invocation to hold a row
 * in registers, else 0: the `QW4` define of kernels/fanng_search.wgsl (the query) and `CW4` of
 * kernels/fanng.wgsl (prune_occlude's candidate).
 */
export function registerWidth(vectors: VectorBlocks): number {
  return vectors.layout.count === 1 && vectors.layout.w4 <= MAX_REGISTER_W4 ? vectors.layout.w4 : 0;
}

/** The value of IEEE binary16 bits `h`. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Whether {@link VectorBlocks.toHalf} takes `vectors`: f32 rows in one column block of an even number of vec4s. */
export function canHalve(vectors: VectorBlocks): boolean {
  const { count, w4 } = vectors.layout;
  return vectors.halfScale === 0 && count === 1 && w4 % 2 === 0;
}

/** Whether a search can walk `vectors` as halves: they can be halved, and a packed row fits the register path. */
export function walkableAsHalves(vectors: VectorBlocks): boolean {
  return canHalve(vectors) && vectors.layout.w4 / 2 <= MAX_REGISTER_W4;
}

/** Refuses half vectors where `what` computes in f32 rows only. */
export function fullPrecision(vectors: VectorBlocks, what: string): void {
  if (vectors.halfScale > 0) throw new ShapeError(`${what}: needs f32 vectors, got f16 halves (toHalf)`);
}
