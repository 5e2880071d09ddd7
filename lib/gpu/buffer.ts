/**
 * Typed GPU buffers with a shape, freed by `using` (Symbol.dispose) or `destroy()`.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { GpuBuffer } from "./buffer.ts";
 * const gpu = await getGpu();
 * using x = GpuBuffer.fromArray(gpu, new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(await x.read()); // Float32Array [1, 2, 3, 4]
 * ```
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import type { Gpu } from "./device.ts";

/** Element types a buffer can hold (all 4 bytes wide). */
export type DType = "f32" | "u32" | "i32";

/** The typed array that holds a DType. */
export type ArrayOf<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : Int32Array;

/** Any typed array a buffer can be made from. */
export type HostArray = Float32Array | Uint32Array | Int32Array;

const CTORS = { f32: Float32Array, u32: Uint32Array, i32: Int32Array } as const;

/** The dtype of a typed array. */
export function dtypeOf(a: HostArray): DType {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Uint32Array) return "u32";
  return "i32";
}

/** A new typed array of `dtype` over `buffer` (or of `length` zeros). */
export function makeArray<D extends DType>(dtype: D, lengthOrBuffer: number | ArrayBuffer): ArrayOf<D> {
  return new CTORS[dtype](lengthOrBuffer as ArrayBuffer) as ArrayOf<D>;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`invalid shape ${fmtShape(shape)}: dims must be integers >= 0`);
    }
    n *= d;
  }
  return n;
}

/** A block of rows of a 2-D buffer with a binding covering exactly them. */
export interface RowChunk {
  /** First row of the chunk. */
  rowStart: number;
  /** Rows in the chunk. */
  rows: number;
  /** The chunk as a binding. */
  binding: GPUBufferBinding;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/**
 * The row step of matrices bound in the same row blocks: the smallest row count (a multiple of `multiple`)
 * such that a block starting at any multiple of it starts at an aligned byte offset in every matrix (row
 * sizes `rowBytes`).
 */
export function alignedRowStep(gpu: Gpu, rowBytes: readonly number[], multiple = 1): number {
  const align = gpu.report.limits.minStorageBufferOffsetAlignment;
  return rowBytes.reduce((step, rb) => lcm(step, align / gcd(align, rb)), multiple);
}

/**
 * Rows per block for matrices bound in the same row blocks: every block fits `maxBytes` in each matrix
 * (row sizes `rowBytes`) and starts at an aligned byte offset in each, except those whose row size is listed
 * in `unaligned` (the caller binds them from an aligned offset below, see {@link GpuBuffer.alignedBinding}).
 * At most max(rows, 1). Throws a ShapeError when no block fits.
 */
export function alignedRowBlock(
  gpu: Gpu,
  rowBytes: readonly number[],
  maxBytes: number,
  rows: number,
  unaligned: readonly number[] = [],
): number {
  const step = alignedRowStep(gpu, rowBytes.filter((rb) => !unaligned.includes(rb)));
  const widest = Math.max(...rowBytes, 4);
  const fit = Math.floor(maxBytes / widest);
  const block = fit - (fit % step);
  if (block < 1) {
    throw new ShapeError(
      `rows of ${widest} bytes do not fit a storage binding of ${maxBytes} bytes in aligned blocks; ` +
        `reduce the row length`,
    );
  }
  return Math.min(block, Math.max(rows, 1));
}

/** The blocks [start, start + rows) covering `rows` rows, `per` at a time. */
export function rowBlocks(rows: number, per: number): { start: number; rows: number }[] {
  const blocks: { start: number; rows: number }[] = [];
  for (let start = 0; start < rows; start += per) blocks.push({ start, rows: Math.min(per, rows - start) });
  return blocks;
}

/** Buffer usage for every toolkit buffer: bindable as storage, copyable both ways. */
const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A storage buffer of 4-byte elements with a logical shape (row-major). */
export class GpuBuffer<D extends DType = DType> implements Disposable {
  /** Shared with views made by `reshape`: destroying any of them destroys the storage of all. */
  readonly #state: { destroyed: boolean };

  private constructor(
    readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
    readonly dtype: D,
    readonly shape: readonly number[],
    state = { destroyed: false },
  ) {
    this.#state = state;
  }

  /** A zero-filled buffer (WebGPU zero-initialises new buffers). */
  static zeros<D extends DType>(gpu: Gpu, dtype: D, shape: readonly number[], label?: string): GpuBuffer<D> {
    const n = sizeOf(shape);
    const bytes = Math.max(16, n * 4); // zero-size buffers cannot be bound
    if (bytes > gpu.report.limits.maxBufferSize) {
      throw new ShapeError(
        `a ${fmtShape(shape)} ${dtype} buffer needs ${bytes} bytes, over this adapter's maxBufferSize ` +
          `${gpu.report.limits.maxBufferSize}; process the data in chunks`,
      );
    }
    const buffer = gpu.device.createBuffer({ label, size: Math.ceil(bytes / 16) * 16, usage: USAGE });
    return new GpuBuffer(gpu, buffer, dtype, [...shape]);
  }

  /** A buffer holding a copy of `data`, with `shape` (default: 1-D). */
  static fromArray<A extends HostArray>(
    gpu: Gpu,
    data: A,
    shape: readonly number[] = [data.length],
    label?: string,
  ): GpuBuffer<A extends Float32Array ? "f32" : A extends Uint32Array ? "u32" : "i32"> {
    if (sizeOf(shape) !== data.length) {
      throw new ShapeError(
        `shape ${fmtShape(shape)} holds ${sizeOf(shape)} elements but the data has ${data.length}`,
      );
    }
    const buf = GpuBuffer.zeros(gpu, dtypeOf(data), shape, label);
    buf.write(data);
    return buf as never;
  }

  /** Number of elements. */
  get length(): number {
    return sizeOf(this.shape);
  }

  /** Bytes holding the elements (the allocation may be larger). */
  get byteLength(): number {
    return this.length * 4;
  }

  /** Rows of a 2-D buffer. */
  get rows(): number {
    return this.shape[0];
  }

  /** Columns of a 2-D buffer (1 for a 1-D one). */
  get cols(): number {
    return this.shape.length > 1 ? this.shape[1] : 1;
  }

  /** True once destroyed. */
  get destroyed(): boolean {
    return this.#state.destroyed;
  }

  /** Throws a UserError when the buffer was destroyed (WebGPU would silently skip the work). */
  #checkAlive(op: string): void {
    if (this.#state.destroyed) {
      throw new UserError(
        `${op} a destroyed buffer ${this.buffer.label ? `'${this.buffer.label}' ` : ""}${
          fmtShape(this.shape)
        }; keep it alive until you are done with it`,
      );
    }
  }

  /** Writes `data` at element offset `offset` (queued; ordered before later submissions). */
  write(data: HostArray, offset = 0): void {
    this.#checkAlive("writing to");
    if (offset + data.length > this.length) {
      throw new ShapeError(
        `writing ${data.length} elements at ${offset} overflows a buffer of ${this.length}`,
      );
    }
    if (data.length) {
      this.gpu.device.queue.writeBuffer(this.buffer, offset * 4, data as Float32Array<ArrayBuffer>);
    }
  }

  /** Reads elements [start, start + count) back to the host. */
  async read(start = 0, count = this.length - start): Promise<ArrayOf<D>> {
    if (start < 0 || count < 0 || start + count > this.length) {
      throw new ShapeError(`reading [${start}, ${start + count}) from a buffer of ${this.length} elements`);
    }
    this.#checkAlive("reading");
    if (count === 0) return makeArray(this.dtype, 0);
    const device = this.gpu.device;
    const where = `reading ${this.buffer.label || "a buffer"} ${fmtShape(this.shape)}`;
    const [staging, error] = this.gpu.capture(where, () => {
      const staging = device.createBuffer({
        size: count * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(this.buffer, start * 4, staging, 0, count * 4);
      device.queue.submit([enc.finish()]);
      return staging;
    });
    try {
      const [found] = await Promise.all([error, staging.mapAsync(GPUMapMode.READ).catch(() => {})]);
      if (found) throw this.gpu.errorFor(found);
      return makeArray(this.dtype, staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
  }

  /** The same storage viewed with another shape of equal size. */
  reshape(shape: readonly number[]): GpuBuffer<D> {
    if (sizeOf(shape) !== this.length) {
      throw new ShapeError(`cannot reshape ${fmtShape(this.shape)} to ${fmtShape(shape)}`);
    }
    return new GpuBuffer(this.gpu, this.buffer, this.dtype, [...shape], this.#state);
  }

  /** A binding of elements [start, start + count), for kernels that process a big buffer in chunks. */
  binding(start = 0, count = this.length - start): GPUBufferBinding {
    const align = this.gpu.report.limits.minStorageBufferOffsetAlignment;
    if ((start * 4) % align !== 0) {
      throw new Error(`binding offset ${start * 4} bytes is not a multiple of ${align}`);
    }
    const offset = start * 4;
    return {
      buffer: this.buffer,
      offset,
      size: Math.min(this.buffer.size - offset, Math.max(16, count * 4)),
    };
  }

  /**
   * A binding of elements [start, start + count) that begins at the aligned offset at or below `start`
   * (bindings must start at aligned offsets); `off` is start's element offset within it. With `granule`
   * the bound length is rounded up to a multiple of it (for vec4 reads; buffers are padded to 16 bytes).
   */
  alignedBinding(start: number, count: number, granule = 1): { binding: GPUBufferBinding; off: number } {
    const step = this.gpu.report.limits.minStorageBufferOffsetAlignment / 4;
    const s0 = start - (start % step);
    const off = start - s0;
    return { binding: this.binding(s0, Math.ceil((off + count) / granule) * granule), off };
  }

  /**
   * Splits a 2-D buffer into row blocks that each fit one storage binding (`maxBytes`, default the
   * adapter's limit) and start at an aligned offset. One block when the whole buffer fits.
   */
  rowChunks(maxBytes = this.gpu.maxBindingBytes): RowChunk[] {
    const per = alignedRowBlock(this.gpu, [Math.max(1, this.cols) * 4], maxBytes, this.rows);
    const blocks = this.rows ? rowBlocks(this.rows, per) : [{ start: 0, rows: 0 }];
    return blocks.map(({ start, rows }) => ({
      rowStart: start,
      rows,
      binding: this.binding(start * this.cols, rows * this.cols),
    }));
  }

  /** Frees the GPU memory. Views made by `reshape` share it. */
  destroy(): void {
    if (!this.#state.destroyed) {
      this.#state.destroyed = true;
      this.buffer.destroy();
    }
  }

  /** Frees the buffer (as `destroy()`). */
  [Symbol.dispose](): void {
    this.destroy();
  }
}
