/**
 * Encoding work: a CommandBatch collects dispatches (one compute pass each, timed when a profiler is
 * active), copies and temporary buffers, then submits them in one queue submission and frees the
 * temporaries once the GPU is done with them.
 *
 * A kernel with a spec (./spec.ts) is dispatched with {@link CommandBatch.run}: bindings by name, uniform
 * values as an object keyed by field name, ordered and packed from the spec. {@link CommandBatch.dispatch}
 * takes bindings in binding order for group 0 (uniforms packed with {@link CommandBatch.uniform}).
 *
 * Errors: every dispatch, copy and the submission run inside GPU error scopes (`Gpu.capture`), and a
 * destroyed buffer is refused before it is bound, so `submit()` rejects with a GpuError (naming the kernel
 * and what the device said) instead of resolving over results the GPU never computed.
 *
 * @example
 * ```ts
 * import { GpuBuffer } from "./buffer.ts";
 * import { getGpu } from "./device.ts";
 * import { CommandBatch } from "./dispatch.ts";
 * import { GATHER } from "./specs/gather.ts";
 * const gpu = await getGpu();
 * using src = GpuBuffer.fromArray(gpu, new Float32Array([1, 2, 3, 4]), [2, 2]);
 * using index = GpuBuffer.fromArray(gpu, new Uint32Array([1]));
 * using out = GpuBuffer.zeros(gpu, "f32", [1, 2]);
 * const pipeline = await GATHER.pipeline(gpu, "main", { WG: 64 });
 * const batch = new CommandBatch(gpu);
 * batch.run(pipeline, {
 *   params: { count: 1, cols: 2, block_start: 0, block_rows: 2, total_rows: 2 },
 *   src,
 *   index,
 *   out,
 * }, 1);
 * await batch.submit();
 * console.log(await out.read()); // Float32Array [3, 4]
 * ```
 * @module
 */
import { fmtShape, UserError } from "../errors.ts";
import { GpuBuffer } from "./buffer.ts";
import type { Gpu, GpuErrorRecord } from "./device.ts";
import { type EntryBindings, type EntryPipeline, type EntrySpec, orderBindings } from "./spec.ts";

/** A uniform field: a bare number is a u32; wrap to choose another type. */
export type UniformField = number | { f32: number } | { i32: number };

/** Anything that can be bound as a storage or uniform buffer. */
export type Bindable = GpuBuffer | GPUBuffer | GPUBufferBinding;

/** Packs fields into 4-byte slots (std140-free: keep WGSL structs to scalars, in this order). */
export function packUniform(fields: readonly UniformField[]): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const view = new DataView(new ArrayBuffer(bytes));
  fields.forEach((f, i) => {
    if (typeof f === "number") {
      if (!Number.isInteger(f) || f < 0 || f > 0xffffffff) {
        throw new RangeError(`uniform field ${i}: ${f} is not a u32`);
      }
      view.setUint32(i * 4, f, true);
    } else if ("f32" in f) view.setFloat32(i * 4, f.f32, true);
    else view.setInt32(i * 4, f.i32, true);
  });
  return view.buffer;
}

/**
 * Splits `count` workgroups over x and y so neither exceeds the per-dimension limit. Kernels recover the
 * linear id as `wid.y * nwg.x + wid.x` and return when it is >= count.
 */
export function grid1d(gpu: Gpu, count: number): [number, number] {
  const max = gpu.maxWorkgroupsPerDim;
  if (count <= max) return [Math.max(1, count), 1];
  const y = Math.ceil(count / max);
  const x = Math.ceil(count / y);
  if (y > max) throw new RangeError(`${count} workgroups exceed ${max} x ${max}; split the work`);
  return [x, y];
}

/** A set of GPU commands submitted together. */
export class CommandBatch {
  /** The encoder the batch records into. */
  readonly encoder: GPUCommandEncoder;
  readonly #temps: { destroy(): void }[] = [];
  readonly #errors: Promise<GpuErrorRecord | undefined>[] = [];
  #submitted = false;

  /** A batch on `gpu`; `label` names it in errors and timings. */
  constructor(readonly gpu: Gpu, readonly label = "command batch") {
    this.encoder = gpu.device.createCommandEncoder({ label });
  }

  /** Runs encoding calls inside error scopes; the batch fails at submit if they report an error. */
  #capture(where: string, fn: () => void): void {
    const [, error] = this.gpu.capture(where, fn);
    this.#errors.push(error);
  }

  /** A uniform buffer holding `fields`, freed after the batch completes. */
  uniform(fields: readonly UniformField[]): GPUBuffer {
    return this.#uniformBuffer(packUniform(fields));
  }

  #uniformBuffer(data: ArrayBuffer): GPUBuffer {
    const buf = this.gpu.device.createBuffer({
      size: data.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data));
    buf.unmap();
    this.#temps.push(buf);
    return buf;
  }

  /** A zero-filled scratch buffer freed after the batch completes. */
  scratch<D extends "f32" | "u32" | "i32">(dtype: D, shape: readonly number[], label?: string): GpuBuffer<D> {
    const buf = GpuBuffer.zeros(this.gpu, dtype, shape, label);
    this.#temps.push(buf);
    return buf;
  }

  /** Frees `obj` after the batch completes (for buffers whose last use is in this batch). */
  release(obj: { destroy(): void }): void {
    this.#temps.push(obj);
  }

  /** Encodes one dispatch in its own compute pass. `workgroups` is [x, y?, z?] or a count. */
  dispatch(
    pipeline: GPUComputePipeline,
    bindings: readonly Bindable[],
    workgroups: number | readonly number[],
    label = pipeline.label,
  ): void {
    const [x, y = 1, z = 1] = typeof workgroups === "number" ? [workgroups] : workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    bindings.forEach((b, i) => checkAlive(b, `${label}: binding ${i}`));
    this.#capture(label, () => {
      const bindGroup = this.gpu.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: bindings.map((b, binding) => ({ binding, resource: toResource(b) })),
      });
      const timestampWrites = this.gpu.profiler?.timestampWrites(label);
      const pass = this.encoder.beginComputePass({ label, timestampWrites });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
    });
  }

  /**
   * Encodes one dispatch of an entry point with a spec: `bindings` by name (the uniform variable's values
   * as an object keyed by field name), ordered and packed from the spec. Label default: kernel.entry.
   */
  run<E extends EntrySpec>(
    pipeline: EntryPipeline<E>,
    bindings: EntryBindings<E>,
    workgroups: number | readonly number[],
    label = `${pipeline.kernel}.${pipeline.entryPoint}`,
  ): void {
    const { uniform, buffers } = orderBindings(pipeline, bindings as Readonly<Record<string, unknown>>);
    const ordered = uniform ? [this.#uniformBuffer(uniform), ...buffers] : buffers;
    this.dispatch(pipeline.pipeline, ordered, workgroups, label);
  }

  /** Copies `count` elements between buffers (element offsets). */
  copy(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, count: number): void {
    if (count > 0) {
      checkAlive(src, `${this.label}: copy source`);
      checkAlive(dst, `${this.label}: copy destination`);
      this.#capture(
        `${this.label} (copy)`,
        () =>
          this.encoder.copyBufferToBuffer(src.buffer, srcOffset * 4, dst.buffer, dstOffset * 4, count * 4),
      );
    }
  }

  /**
   * Submits the batch; the promise resolves (and temporaries are freed) once the GPU has finished it, or
   * rejects with a GpuError when the device reported an error for any of its commands (the temporaries
   * are freed all the same; the error also stays in the Gpu's error log for later checks).
   */
  submit(): Promise<void> {
    if (this.#submitted) throw new Error("CommandBatch submitted twice");
    this.#submitted = true;
    this.#capture(this.label, () => {
      const afterSubmit = this.gpu.profiler?.resolve(this.encoder);
      this.gpu.device.queue.submit([this.encoder.finish()]);
      afterSubmit?.();
    });
    const done = this.gpu.device.queue.onSubmittedWorkDone();
    const temps = this.#temps.splice(0);
    const errors = this.#errors.splice(0);
    const finished = Promise.all([done, ...errors]).then(([, ...found]) => {
      temps.forEach((t) => t.destroy());
      const first = found.find((e) => e);
      if (first) throw this.gpu.errorFor(first);
    });
    // Marked as handled: a caller that submits now and awaits later still gets the rejection, and one that
    // never awaits leaves the error to the Gpu's error log instead of an unhandled rejection.
    finished.catch(() => {});
    this.gpu.track(finished);
    return finished;
  }
}

/** Refuses a destroyed toolkit buffer before it is bound (WebGPU would drop the work and leave zeros). */
function checkAlive(b: Bindable, what: string): void {
  if (b instanceof GpuBuffer && b.destroyed) {
    throw new UserError(
      `${what}: the buffer ${b.buffer.label ? `'${b.buffer.label}' ` : ""}${
        fmtShape(b.shape)
      } was destroyed before use; keep inputs alive until the operation has finished`,
    );
  }
}

function toResource(b: Bindable): GPUBufferBinding {
  if (b instanceof GpuBuffer) return { buffer: b.buffer };
  if ("buffer" in b && !(b instanceof GPUBuffer)) return b;
  return { buffer: b as GPUBuffer };
}
