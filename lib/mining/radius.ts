/**
 * The exclusion radius of smart mining, r_a = kappa * eps_a (docs/method.md section 3), computed on the GPU
 * (kernels/mining.wgsl `radius`) so that it stays there between the eps search and the filtered search.
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { type CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { MINING } from "../gpu/specs/mining.ts";

const WG = 64;

/** Encodes radius = kappa * eps (f32) into `batch`; returns the new [N] buffer (the caller owns it). */
export async function encodeRadius(
  batch: CommandBatch,
  eps: GpuBuffer<"f32">,
  kappa: number,
): Promise<GpuBuffer<"f32">> {
  const gpu = batch.gpu;
  const out = GpuBuffer.zeros(gpu, "f32", [eps.length], "mining radius");
  if (eps.length === 0) return out;
  const pipeline = await MINING.pipeline(gpu, "radius", { WG });
  batch.run(pipeline, { p: { count: eps.length, kappa }, eps, out }, grid1d(gpu, Math.ceil(eps.length / WG)));
  return out;
}

/** Plain-TS reference of {@link encodeRadius}: the f32 product of f32 kappa and each eps. */
export function radiusRef(eps: Float32Array, kappa: number): Float32Array {
  const k = Math.fround(kappa);
  return eps.map((e) => k * e);
}
