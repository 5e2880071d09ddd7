/**
 * SGD with momentum and weight decay on the GPU (kernels/sgd.wgsl), torch.optim.SGD semantics
 * (no dampening, no Nesterov): v = momentum * v + (g + wd * w); w -= lr * v. The gradient arrives as
 * split-K partial sums, which the same pass adds up. Plain-TS reference: {@link sgdUpdateRef}.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { GpuBuffer } from "../gpu/buffer.ts";
 * import { CommandBatch } from "../gpu/dispatch.ts";
 * import { encodeSgdUpdate } from "./sgd.ts";
 * const gpu = await getGpu();
 * using w = GpuBuffer.fromArray(gpu, new Float32Array([1, 1, 1, 1]));
 * using v = GpuBuffer.zeros(gpu, "f32", [4]);
 * using g = GpuBuffer.fromArray(gpu, new Float32Array([1, 2, 3, 4]));
 * const batch = new CommandBatch(gpu);
 * await encodeSgdUpdate(batch, w, v, g, { lr: 0.1, momentum: 0.9, weightDecay: 0 });
 * await batch.submit();
 * console.log(await w.read()); // [0.9, 0.8, 0.7, 0.6]
 * ```
 * @module
 */
import type { GpuBuffer } from "../gpu/buffer.ts";
import { type CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { SGD } from "../gpu/specs/sgd.ts";
import { checkShape, fmtShape } from "../errors.ts";

/** The hyper-parameters of one update (lr already multiplied by the parameter group's multiplier). */
export interface SgdHyper {
  /** Learning rate. */
  lr: number;
  /** Momentum. */
  momentum: number;
  /** L2 weight decay. */
  weightDecay: number;
}

const WG = 64;

/**
 * Encodes one update of `param` (length a multiple of 4) with momentum buffer `velocity`, from the
 * gradient held as `splits` partial sums in `grad` [splits x length]. When splits > 1 the summed gradient
 * is written back to the first slice. With `apply: false` only that reduction runs.
 */
export async function encodeSgdUpdate(
  batch: CommandBatch,
  param: GpuBuffer<"f32">,
  velocity: GpuBuffer<"f32">,
  grad: GpuBuffer<"f32">,
  hyper: SgdHyper & { splits?: number; apply?: boolean },
): Promise<void> {
  const gpu = batch.gpu;
  const n = param.length;
  const splits = hyper.splits ?? 1;
  checkShape(n % 4 === 0, `sgdUpdate: parameter ${fmtShape(param.shape)} length ${n} is not a multiple of 4`);
  checkShape(
    velocity.length === n,
    `sgdUpdate: velocity ${fmtShape(velocity.shape)} vs ${fmtShape(param.shape)}`,
  );
  checkShape(
    grad.length >= splits * n,
    `sgdUpdate: gradient ${fmtShape(grad.shape)} holds fewer than ${splits} x ${n} partial sums`,
  );
  for (const k of ["lr", "momentum", "weightDecay"] as const) {
    if (!Number.isFinite(hyper[k])) throw new RangeError(`sgdUpdate: ${k} must be finite, got ${hyper[k]}`);
  }
  const pipeline = await SGD.pipeline(gpu, "main", { WG });
  batch.run(
    pipeline,
    {
      p: {
        count4: n / 4,
        splits,
        apply: hyper.apply === false ? 0 : 1,
        lr: hyper.lr,
        momentum: hyper.momentum,
        weight_decay: hyper.weightDecay,
      },
      w: param,
      v: velocity,
      grad,
    },
    grid1d(gpu, Math.ceil(n / 4 / WG)),
    "sgd",
  );
}

/** Reference of one update, in place on `param` and `velocity` (f64 arithmetic, f32 storage). */
export function sgdUpdateRef(
  param: Float32Array,
  velocity: Float32Array,
  grad: ArrayLike<number>,
  hyper: SgdHyper,
): void {
  for (let i = 0; i < param.length; i++) {
    const v = hyper.momentum * velocity[i] + grad[i] + hyper.weightDecay * param[i];
    velocity[i] = v;
    param[i] = param[i] - hyper.lr * v;
  }
}
