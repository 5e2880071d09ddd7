/**
 * Row gather: `out[i] = src[index[i]]`, on the GPU and as a plain-TS reference.
 * Indices out of range give zero rows. The source may exceed one storage binding (it is bound in blocks).
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { GATHER } from "../gpu/specs/gather.ts";
import { checkShape, fmtShape } from "../errors.ts";

const WG = 64;

/** Encodes the gather into `batch`; returns the [index.length x cols] output (caller owns it). */
export async function encodeGatherRows(
  batch: CommandBatch,
  src: GpuBuffer<"f32">,
  index: GpuBuffer<"u32">,
  out?: GpuBuffer<"f32">,
): Promise<GpuBuffer<"f32">> {
  const gpu = batch.gpu;
  checkShape(src.shape.length === 2, `gatherRows: src must be 2-D, got ${fmtShape(src.shape)}`);
  const count = index.length;
  const cols = src.cols;
  out ??= GpuBuffer.zeros(gpu, "f32", [count, cols], "gathered");
  checkShape(
    out.length === count * cols,
    `gatherRows: out ${fmtShape(out.shape)} must hold [${count} x ${cols}]`,
  );
  const pipeline = await GATHER.pipeline(gpu, "main", { WG });
  for (const chunk of src.rowChunks()) {
    batch.run(
      pipeline,
      {
        params: { count, cols, block_start: chunk.rowStart, block_rows: chunk.rows, total_rows: src.rows },
        src: chunk.binding,
        index,
        out,
      },
      grid1d(gpu, count),
      "gatherRows",
    );
  }
  return out;
}

/** Gathers rows of `src` on the GPU. */
export async function gatherRows(src: GpuBuffer<"f32">, index: GpuBuffer<"u32">): Promise<GpuBuffer<"f32">> {
  const batch = new CommandBatch(src.gpu, "gatherRows");
  const out = await encodeGatherRows(batch, src, index);
  await batch.submit();
  return out;
}

/** Plain-TS reference of {@link gatherRows} on a row-major [rows x cols] array. */
export function gatherRowsRef(src: Float32Array, cols: number, index: Uint32Array): Float32Array {
  const rows = cols === 0 ? 0 : src.length / cols;
  const out = new Float32Array(index.length * cols);
  index.forEach((s, i) => {
    if (s < rows) out.set(src.subarray(s * cols, (s + 1) * cols), i * cols);
  });
  return out;
}
