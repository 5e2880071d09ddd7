/**
 * SGD with momentum for an {@link EmbeddingHead} on the GPU (kernels/sgd.wgsl), with one learning-rate
 * multiplier per parameter group (group i = layer i's weights and bias) and a schedule hook
 * (`setLearningRate`). torch.optim.SGD semantics: v = momentum * v + g + weightDecay * w;
 * w -= lr * multiplier * v (weight decay applies to biases too, as torch does by default).
 *
 * The paper trains its new layer at 10x the base rate. With a frozen backbone the head is the only
 * thing that trains, so the default multipliers are all 1 (lr 0.05 is the head's effective rate);
 * `lrMultipliers` keeps the rule available for heads with hidden layers, e.g. [1, 10].
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { EmbeddingHead } from "./head.ts";
 * import { SgdMomentum } from "./optimizer.ts";
 * const gpu = await getGpu();
 * using head = EmbeddingHead.create(gpu, { inDim: 8, outDim: 4 });
 * using opt = new SgdMomentum(head, { lr: 0.05, momentum: 0.9, weightDecay: 0 });
 * opt.setLearningRate(0.01); // e.g. from a schedule
 * ```
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import type { CommandBatch } from "../gpu/dispatch.ts";
import { UserError } from "../errors.ts";
import { augmentedLength, packAugmented, unpackAugmented } from "../ops/linear.ts";
import { encodeSgdUpdate, sgdUpdateRef } from "../ops/sgd.ts";
import type { EmbeddingHead, LayerParams } from "./head.ts";

/** Optimiser settings. */
export interface OptimizerConfig {
  /** Base learning rate (default setting 0.05). */
  lr: number;
  /** Momentum (0.9). */
  momentum: number;
  /** L2 weight decay added to the gradient (0). */
  weightDecay: number;
  /**
   * One learning-rate multiplier per layer (parameter group), input side first; default all 1.
   * @default all 1
   */
  lrMultipliers?: readonly number[];
}

/** The optimiser's state, for checkpoints: settings, step count and momentum buffers per layer. */
export interface OptimizerState {
  /** Learning rate. */
  lr: number;
  /** Momentum. */
  momentum: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Learning-rate multiplier per layer. */
  lrMultipliers: number[];
  /** Steps taken. */
  steps: number;
  /** Momentum buffers in the parameters' layout (weight [inDim x outDim], bias [outDim]). */
  velocities: LayerParams[];
}

/** Checks the settings against a head with `layers` layers; returns the multipliers (defaults filled). */
export function checkOptimizerConfig(config: OptimizerConfig, layers: number): number[] {
  const { lr, momentum, weightDecay } = config;
  if (!(Number.isFinite(lr) && lr >= 0)) {
    throw new UserError(`learning rate must be a number >= 0, got ${lr}`);
  }
  if (!(momentum >= 0 && momentum < 1)) throw new UserError(`momentum must be in [0, 1), got ${momentum}`);
  if (!(Number.isFinite(weightDecay) && weightDecay >= 0)) {
    throw new UserError(`weight decay must be a number >= 0, got ${weightDecay}`);
  }
  const mult = [...(config.lrMultipliers ?? new Array(layers).fill(1))];
  if (mult.length !== layers || !mult.every((m) => Number.isFinite(m) && m >= 0)) {
    throw new UserError(
      `lrMultipliers must list ${layers} number(s) >= 0 (one per layer), got [${mult.join(", ")}]`,
    );
  }
  return mult;
}

/** Per-layer gradients as the linear backward leaves them: split-K partial sums. */
export interface LayerGradient {
  /** [splits x inDim+1 x outDim] partial sums of the gradient. */
  partials: GpuBuffer<"f32">;
  /** Number of partial sums to add. */
  splits: number;
}

/** SGD with momentum over a head's parameters, on the GPU. */
export class SgdMomentum implements Disposable {
  /** Momentum buffers per layer. */
  readonly velocities: GpuBuffer<"f32">[];
  /** Learning-rate multiplier per layer. */
  readonly lrMultipliers: readonly number[];
  #lr: number;
  #steps = 0;

  /** SGD with momentum over `head`'s parameters. */
  constructor(readonly head: EmbeddingHead, readonly config: OptimizerConfig) {
    this.lrMultipliers = checkOptimizerConfig(config, head.layers.length);
    this.#lr = config.lr;
    this.velocities = head.layers.map((s, i) =>
      GpuBuffer.zeros(head.gpu, "f32", [augmentedLength(s)], `momentum ${i}`)
    );
  }

  /** The current base learning rate. */
  get learningRate(): number {
    return this.#lr;
  }

  /** Sets the base learning rate for the updates encoded from now on (the schedule hook). */
  setLearningRate(lr: number): void {
    if (!(Number.isFinite(lr) && lr >= 0)) {
      throw new UserError(`learning rate must be a number >= 0, got ${lr}`);
    }
    this.#lr = lr;
  }

  /** Updates encoded so far. */
  get steps(): number {
    return this.#steps;
  }

  /**
   * Encodes one update of every layer from its gradient. With `apply: false` it only reduces the split-K
   * partials into their first slice (the gradient), leaving parameters, momentum and the count alone.
   */
  async encodeStep(batch: CommandBatch, grads: readonly LayerGradient[], apply = true): Promise<void> {
    for (let l = 0; l < grads.length; l++) {
      await encodeSgdUpdate(batch, this.head.params[l], this.velocities[l], grads[l].partials, {
        lr: this.#lr * this.lrMultipliers[l],
        momentum: this.config.momentum,
        weightDecay: this.config.weightDecay,
        splits: grads[l].splits,
        apply,
      });
    }
    if (apply) this.#steps++;
  }

  /** A host copy of the state (settings, step count, momentum buffers). */
  async state(): Promise<OptimizerState> {
    const velocities: LayerParams[] = [];
    for (let l = 0; l < this.head.layers.length; l++) {
      const s = this.head.layers[l];
      velocities.push({ ...s, ...unpackAugmented(s, await this.velocities[l].read()) });
    }
    return {
      lr: this.#lr,
      momentum: this.config.momentum,
      weightDecay: this.config.weightDecay,
      lrMultipliers: [...this.lrMultipliers],
      steps: this.#steps,
      velocities,
    };
  }

  /**
   * Restores momentum buffers, step count and learning rate from a saved state (shapes checked). The
   * momentum, weight decay and multipliers stay as configured.
   */
  loadState(state: OptimizerState): void {
    const shapes = this.head.layers;
    const ok = state.velocities.length === shapes.length &&
      state.velocities.every((v, i) =>
        v.inDim === shapes[i].inDim && v.outDim === shapes[i].outDim &&
        v.weight.length === v.inDim * v.outDim && v.bias.length === v.outDim
      );
    if (!ok) {
      const got = state.velocities.map((v) => `${v.inDim}->${v.outDim}`).join(", ");
      const want = shapes.map((s) => `${s.inDim}->${s.outDim}`).join(", ");
      throw new UserError(`optimizer state has layers [${got}] but the head has [${want}]`);
    }
    state.velocities.forEach((v, i) => this.velocities[i].write(packAugmented(shapes[i], v.weight, v.bias)));
    this.#steps = state.steps;
    this.setLearningRate(state.lr);
  }

  /** Frees the momentum buffers. */
  destroy(): void {
    this.velocities.forEach((v) => v.destroy());
  }

  /** Frees the momentum buffers. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** Plain-TS reference of {@link SgdMomentum}, on host copies of the parameters. */
export class SgdMomentumRef {
  /** Momentum buffers per layer. */
  readonly velocities: LayerParams[];
  /** Learning-rate multiplier per layer. */
  readonly lrMultipliers: number[];
  /** Learning rate (may be changed between steps). */
  lr: number;

  /** The reference optimiser over host copies `params`. */
  constructor(readonly params: LayerParams[], readonly config: OptimizerConfig) {
    this.lrMultipliers = checkOptimizerConfig(config, params.length);
    this.lr = config.lr;
    this.velocities = params.map((p) => ({
      ...p,
      weight: new Float32Array(p.weight.length),
      bias: new Float32Array(p.bias.length),
    }));
  }

  /** One update from per-layer gradients (same layout as the parameters). */
  step(grads: readonly { weight: ArrayLike<number>; bias: ArrayLike<number> }[]): void {
    this.params.forEach((p, l) => {
      const hyper = {
        lr: this.lr * this.lrMultipliers[l],
        momentum: this.config.momentum,
        weightDecay: this.config.weightDecay,
      };
      sgdUpdateRef(p.weight, this.velocities[l].weight, grads[l].weight, hyper);
      sgdUpdateRef(p.bias, this.velocities[l].bias, grads[l].bias, hyper);
    });
  }
}
