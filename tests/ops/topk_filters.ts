/** Shared helper of the top-k and kNN tests: one filter given both to a GPU op and to its reference. */
import type { Gpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import type { TopkFilter, TopkFilterHost } from "../../lib/ops/topk.ts";

/** A filter for the GPU op and the same filter for the plain-TS reference. */
export interface FilterPair {
  gpu?: TopkFilter;
  host?: TopkFilterHost;
}

/** The label and radius inputs of filters: host arrays and their GPU copies (freed on dispose). */
export interface FilterInputs extends Disposable {
  gpu: { rowLabels: GpuBuffer<"i32">; colLabels: GpuBuffer<"i32">; rowMinDistance: GpuBuffer<"f32"> };
  host: { rowLabels: Int32Array; colLabels: Int32Array; rowMinDistance: Float32Array };
}

/** Uploads the label and radius arrays for {@link filterPair}. */
export function filterInputs(gpu: Gpu, host: FilterInputs["host"]): FilterInputs {
  const inputs = {
    rowLabels: GpuBuffer.fromArray(gpu, host.rowLabels),
    colLabels: GpuBuffer.fromArray(gpu, host.colLabels),
    rowMinDistance: GpuBuffer.fromArray(gpu, host.rowMinDistance),
  };
  return {
    gpu: inputs,
    host,
    [Symbol.dispose]() {
      Object.values(inputs).forEach((b) => b.destroy());
    },
  };
}

/** What a filter does: self-exclusion, a label mode (which uses the labels) and whether it uses the radii. */
export interface FilterSpec {
  excludeSelf?: boolean;
  selfOffset?: number;
  labelMode?: "different" | "same";
  radius?: boolean;
}

/** One side of {@link filterPair}: `spec`'s flags with the inputs it uses. */
function filterSide<L, R>(spec: FilterSpec, x: { rowLabels: L; colLabels: L; rowMinDistance: R }) {
  const { radius, ...flags } = spec;
  const labels = spec.labelMode !== undefined;
  return {
    ...flags,
    rowLabels: labels ? x.rowLabels : undefined,
    colLabels: labels ? x.colLabels : undefined,
    rowMinDistance: radius ? x.rowMinDistance : undefined,
  };
}

/** The filter `spec` for the GPU op and for the reference, with the label and radius inputs it uses. */
export function filterPair(inputs: Pick<FilterInputs, "gpu" | "host">, spec: FilterSpec): FilterPair {
  return { gpu: filterSide(spec, inputs.gpu), host: filterSide(spec, inputs.host) };
}
