/**
 * The graph on the GPU in padded form: adjacency [N x R] u32, lengths [N x R] f32, degrees [N] u32
 * (see kernels/fanng.wgsl). Rows past a vertex's degree are ignored by every kernel.
 * @module
 */
import { ShapeError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import type { PaddedGraph } from "./graph.ts";

/** A padded graph in GPU buffers (owned: dispose frees them). */
export class GpuGraph implements Disposable {
  /** [vertexCount x maxDegree] neighbour ids; NO_VERTEX in unused slots. */
  readonly adjacency: GpuBuffer<"u32">;
  /** [vertexCount x maxDegree] squared edge lengths; +Inf in unused slots. */
  readonly lengths: GpuBuffer<"f32">;
  /** [vertexCount] out-degrees. */
  readonly degrees: GpuBuffer<"u32">;

  /** An empty graph (all degrees 0) of `vertexCount` vertices with `maxDegree` slots each. */
  constructor(readonly gpu: Gpu, readonly vertexCount: number, readonly maxDegree: number) {
    const bytes = vertexCount * maxDegree * 4;
    if (bytes > gpu.maxBindingBytes) {
      throw new ShapeError(
        `a graph of ${vertexCount} vertices x ${maxDegree} edges needs ${bytes} bytes per array, over this ` +
          `adapter's ${gpu.maxBindingBytes}-byte storage binding; lower maxDegree or index fewer points`,
      );
    }
    this.adjacency = GpuBuffer.zeros(gpu, "u32", [vertexCount, maxDegree], "fanng adjacency");
    this.lengths = GpuBuffer.zeros(gpu, "f32", [vertexCount, maxDegree], "fanng lengths");
    this.degrees = GpuBuffer.zeros(gpu, "u32", [vertexCount], "fanng degrees");
  }

  /** Uploads a host graph. */
  static fromPadded(gpu: Gpu, padded: PaddedGraph): GpuGraph {
    const g = new GpuGraph(gpu, padded.vertexCount, padded.maxDegree);
    g.adjacency.write(padded.adjacency);
    g.lengths.write(padded.lengths);
    g.degrees.write(padded.degrees);
    return g;
  }

  /** Reads the graph back. */
  async toPadded(): Promise<PaddedGraph> {
    const [adjacency, lengths, degrees] = await Promise.all([
      this.adjacency.read(),
      this.lengths.read(),
      this.degrees.read(),
    ]);
    return { vertexCount: this.vertexCount, maxDegree: this.maxDegree, adjacency, lengths, degrees };
  }

  /** Frees the buffers. */
  destroy(): void {
    this.adjacency.destroy();
    this.lengths.destroy();
    this.degrees.destroy();
  }

  /** Frees the three buffers. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}
