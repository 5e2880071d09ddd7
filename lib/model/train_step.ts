/**
 * One training step on the GPU, for a batch of triplets given as row indices into the feature matrix:
 * gather the 3B rows -> head forward (per slot) -> L2 normalisation -> triplet + global loss and their
 * slot gradients -> normalisation backward -> linear backward (split-K dW, dX through hidden ReLUs) ->
 * SGD with momentum. One submission and one 48-byte readback (the batch scalars) per step.
 *
 * Every triplet slot (a_i, p_i, n_i) is its own row through the head, so a sample that appears in
 * several triplets (or twice in one) simply contributes several rows to dW = X^T dZ: gradients
 * accumulate in the GEMM's sum, with no scatter and no float atomics.
 *
 * Steps are queued in call order and do not wait for each other: `step()` resolves when its scalars are
 * back, but the next call can be made before that. Awaiting every step costs one GPU round trip per
 * batch (about 11 ms in Deno, which polls the device every ~10 ms); {@link TrainStep.stepBatches} keeps
 * several steps in flight and hands the scalars over in order.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { GpuBuffer } from "../gpu/buffer.ts";
 * import { EmbeddingHead } from "./head.ts";
 * import { TrainStep } from "./train_step.ts";
 * const gpu = await getGpu();
 * using features = GpuBuffer.fromArray(gpu, new Float32Array(100 * 8).map(Math.random), [100, 8]);
 * using head = EmbeddingHead.create(gpu, { inDim: 8, outDim: 4, seed: 1 });
 * using step = new TrainStep(gpu, head, features, { margin: 0.2, globalWeight: 1, lambda: 1, t: 0.4 }, {
 *   lr: 0.05, momentum: 0.9, weightDecay: 0,
 * });
 * const s = await step.step(new Uint32Array([0, 1, 2, 3, 4, 5]));
 * console.log(s.loss, s.error);
 * ```
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { checkShape, fmtShape, UserError } from "../errors.ts";
import { encodeGatherRows } from "../ops/gather.ts";
import {
  augmentedLength,
  encodeLinearForward,
  encodeLinearGradInput,
  encodeLinearGradWeight,
  gradWeightSplits,
  type LinearTiles,
  linearTiles,
  paddedWidth,
  unpackAugmented,
} from "../ops/linear.ts";
import { encodeL2NormalizeBackward, encodeL2NormalizeForward } from "../ops/normalize.ts";
import {
  checkLossConfig,
  decodeLossScalars,
  encodeTripletLoss,
  LOSS_SCALARS_LENGTH,
  type LossScalars,
  type TripletLossConfig,
} from "../ops/losses.ts";
import type { EmbeddingHead, LayerParams } from "./head.ts";
import { type LayerGradient, type OptimizerConfig, type OptimizerState, SgdMomentum } from "./optimizer.ts";

/** Loss settings: margin, global-loss weight, lambda and t (docs/method.md section 2). */
export type LossConfig = TripletLossConfig;

/** The scalars one step reads back. */
export type StepScalars = LossScalars;

/** Which triplets of the index source a step uses: `count` triplets from triplet `offset`. */
export interface StepOptions {
  /**
   * First triplet (default 0).
   * @default 0
   */
  offset?: number;
  /**
   * Triplets in the step (default: the rest).
   * @default the rest
   */
  count?: number;
}

/** Buffers for one batch size, reused across steps. */
class Workspace {
  readonly idx: GpuBuffer<"u32">;
  readonly x0: GpuBuffer<"f32">;
  /** Output of each layer (padded rows): post-ReLU for hidden layers, the raw embedding for the last. */
  readonly acts: GpuBuffer<"f32">[];
  /** Gradient with respect to each layer's output (pre-activation), padded row width. */
  readonly dz: GpuBuffer<"f32">[];
  readonly grads: LayerGradient[];
  readonly e?: GpuBuffer<"f32">;
  readonly norms?: GpuBuffer<"f32">;
  readonly de?: GpuBuffer<"f32">;
  readonly dists: GpuBuffer<"f32">;
  readonly scalars: GpuBuffer<"f32">;

  constructor(gpu: Gpu, head: EmbeddingHead, readonly count: number, tiles: LinearTiles) {
    const rows = 3 * count;
    const z = (shape: number[], label: string) => GpuBuffer.zeros(gpu, "f32", shape, label);
    this.idx = GpuBuffer.zeros(gpu, "u32", [rows], "step indices");
    this.x0 = z([rows, head.inDim], "step inputs");
    this.acts = head.layers.map((s, l) => z([rows, paddedWidth(s.outDim)], `step act ${l}`));
    this.dz = head.layers.map((s, l) => z([rows, paddedWidth(s.outDim)], `step dz ${l}`));
    this.grads = head.layers.map((s, l) => {
      const splits = gradWeightSplits(rows, tiles);
      return { partials: z([splits, augmentedLength(s)], `step grad ${l}`), splits };
    });
    if (head.config.normalize) {
      this.e = z([rows, head.outDim], "step embeddings");
      this.norms = z([rows], "step norms");
      this.de = z([rows, head.outDim], "step embedding grad");
    }
    this.dists = z([count, 2], "step dists");
    this.scalars = z([LOSS_SCALARS_LENGTH], "step scalars");
  }

  destroy(): void {
    for (const b of [this.idx, this.x0, ...this.acts, ...this.dz, this.e, this.norms, this.de]) b?.destroy();
    this.grads.forEach((g) => g.partials.destroy());
    this.dists.destroy();
    this.scalars.destroy();
  }
}

const MAX_WORKSPACES = 4;

/** The GPU training step of an {@link EmbeddingHead} on a feature matrix. */
export class TrainStep implements Disposable {
  /** The optimiser the step updates the head with. */
  readonly optimizer: SgdMomentum;
  /** Margin, global weight, lambda and t. */
  readonly loss: Readonly<LossConfig>;
  readonly #tiles: LinearTiles;
  readonly #workspaces = new Map<number, Workspace>();
  #chain: Promise<unknown> = Promise.resolve();
  #destroyed = false;

  /**
   * A training step of `head` on `features` with the given loss and optimiser settings.
   * @param features [N x head.inDim] feature matrix on the GPU (may exceed one storage binding).
   * @param loss margin, global weight, lambda, t.
   * @param optimizer lr, momentum, weight decay, optional per-layer lr multipliers.
   */
  constructor(
    readonly gpu: Gpu,
    readonly head: EmbeddingHead,
    readonly features: GpuBuffer<"f32">,
    loss: LossConfig,
    optimizer: OptimizerConfig,
  ) {
    checkShape(
      features.shape.length === 2 && features.cols === head.inDim,
      `TrainStep: features ${fmtShape(features.shape)} do not have the head's ${head.inDim} columns`,
    );
    checkLossConfig(loss);
    this.loss = { ...loss };
    this.optimizer = new SgdMomentum(head, optimizer);
    this.#tiles = linearTiles(gpu);
  }

  /** The current base learning rate. */
  get learningRate(): number {
    return this.optimizer.learningRate;
  }

  /** Sets the base learning rate for the steps called from now on (the schedule hook). */
  setLearningRate(lr: number): void {
    this.optimizer.setLearningRate(lr);
  }

  /**
   * One training step on `count` triplets starting at triplet `offset` of `triplets` ([T x 3] rows
   * (a, p, n) into the features, on the GPU or the host). Resolves with the batch's scalars (loss parts
   * and training error measured in this step's forward pass, before the update).
   * GPU indices are not checked: an index >= N reads a zero feature row.
   */
  step(triplets: GpuBuffer<"u32"> | Uint32Array, options: StepOptions = {}): Promise<StepScalars> {
    return this.#enqueue(triplets, options, true).then((r) => r.scalars);
  }

  /**
   * The loss scalars and the gradient of every layer (weight [inDim x outDim], bias [outDim]) for one
   * batch, without updating anything. For tests and gradient checks.
   */
  async gradients(
    triplets: GpuBuffer<"u32"> | Uint32Array,
    options: StepOptions = {},
  ): Promise<{ scalars: StepScalars; grads: LayerParams[] }> {
    const { scalars, ws } = await this.#enqueue(triplets, options, false);
    const s = await scalars;
    const grads: LayerParams[] = [];
    for (let l = 0; l < this.head.layers.length; l++) {
      const shape = this.head.layers[l];
      const g = await ws.grads[l].partials.read(0, augmentedLength(shape));
      grads.push({ ...shape, ...unpackAugmented(shape, g) });
    }
    return { scalars: s, grads };
  }

  /**
   * Steps through `count` triplets (default all after `offset`) in batches of `batchSize`, keeping up to
   * `maxInFlight` steps queued on the GPU, and calls `onBatch` with each batch's scalars in order.
   * Resolves with all of them.
   */
  async stepBatches(
    triplets: GpuBuffer<"u32"> | Uint32Array,
    options: { batchSize: number; offset?: number; count?: number; maxInFlight?: number },
    onBatch?: (scalars: StepScalars, batch: number, count: number) => void,
  ): Promise<StepScalars[]> {
    const total = tripletCount(triplets);
    const offset = options.offset ?? 0;
    const count = options.count ?? total - offset;
    const size = options.batchSize;
    if (!Number.isInteger(size) || size < 1) {
      throw new UserError(`batch size must be a positive integer, got ${size}`);
    }
    checkRange(offset, count, total);
    const inFlight = Math.max(1, options.maxInFlight ?? 8);
    const pending: { p: Promise<StepScalars>; n: number }[] = [];
    const out: StepScalars[] = [];
    const take = async () => {
      const { p, n } = pending.shift()!;
      const s = await p;
      onBatch?.(s, out.length, n);
      out.push(s);
    };
    for (let start = 0; start < count; start += size) {
      const n = Math.min(size, count - start);
      pending.push({ p: this.step(triplets, { offset: offset + start, count: n }), n });
      if (pending.length >= inFlight) await take();
    }
    while (pending.length) await take();
    return out;
  }

  /** A host copy of the optimiser state (for checkpoints). */
  optimizerState(): Promise<OptimizerState> {
    return this.#chain.then(() => this.optimizer.state());
  }

  /** Restores the optimiser state (momentum buffers, step count, learning rate). */
  loadOptimizerState(state: OptimizerState): void {
    this.optimizer.loadState(state);
  }

  // Async so validation errors reject; everything up to the chaining runs synchronously in the call.
  async #enqueue(
    triplets: GpuBuffer<"u32"> | Uint32Array,
    options: StepOptions,
    apply: boolean,
  ): Promise<{ scalars: Promise<StepScalars>; ws: Workspace }> {
    if (this.#destroyed) throw new Error("TrainStep used after dispose");
    const total = tripletCount(triplets);
    const offset = options.offset ?? 0;
    const count = options.count ?? total - offset;
    checkRange(offset, count, total);
    if (triplets instanceof Uint32Array) {
      const n = this.features.rows;
      const slice = triplets.subarray(3 * offset, 3 * (offset + count));
      const bad = slice.findIndex((i) => i >= n);
      if (bad >= 0) {
        throw new UserError(
          `triplet index ${slice[bad]} (triplet ${offset + Math.floor(bad / 3)}) is >= N = ${n}`,
        );
      }
    }
    // Encoding awaits only cached pipelines; chaining keeps submissions in call order.
    const run = this.#chain.then(() => this.#encodeAndSubmit(triplets, offset, count, apply));
    this.#chain = run.catch(() => {});
    return await run;
  }

  async #encodeAndSubmit(
    triplets: GpuBuffer<"u32"> | Uint32Array,
    offset: number,
    count: number,
    apply: boolean,
  ): Promise<{ scalars: Promise<StepScalars>; ws: Workspace }> {
    const gpu = this.gpu, head = this.head, tiles = this.#tiles;
    const ws = this.#workspace(count);
    const batch = new CommandBatch(gpu, "train step");
    if (triplets instanceof Uint32Array) ws.idx.write(triplets.subarray(3 * offset, 3 * (offset + count)));
    else batch.copy(triplets, 3 * offset, ws.idx, 0, 3 * count);
    await encodeGatherRows(batch, this.features, ws.idx, ws.x0);
    const last = head.layers.length - 1;
    let x = ws.x0;
    for (let l = 0; l <= last; l++) {
      x = await encodeLinearForward(batch, x, head.params[l], head.layers[l], {
        relu: l < last,
        ldx: x.cols,
        out: ws.acts[l],
        tiles,
      });
    }
    const outPad = paddedWidth(head.outDim);
    if (head.config.normalize) {
      await encodeL2NormalizeForward(batch, ws.acts[last], {
        dim: head.outDim,
        ldIn: outPad,
        out: ws.e,
        norms: ws.norms,
      });
      await encodeTripletLoss(batch, ws.e!, this.loss, {
        count,
        backward: true,
        grad: ws.de,
        dists: ws.dists,
        scalars: ws.scalars,
      });
      await encodeL2NormalizeBackward(batch, ws.e!, ws.de!, ws.norms!, { out: ws.dz[last], ldOut: outPad });
    } else {
      await encodeTripletLoss(batch, ws.acts[last], this.loss, {
        count,
        dim: head.outDim,
        ldEmb: outPad,
        backward: true,
        grad: ws.dz[last],
        ldGrad: outPad,
        dists: ws.dists,
        scalars: ws.scalars,
      });
    }
    for (let l = last; l >= 0; l--) {
      const input = l === 0 ? ws.x0 : ws.acts[l - 1];
      await encodeLinearGradWeight(batch, input, ws.dz[l], head.layers[l], {
        ldx: input.cols,
        out: ws.grads[l].partials,
        tiles,
      });
      if (l > 0) {
        await encodeLinearGradInput(batch, ws.dz[l], head.params[l], ws.acts[l - 1], head.layers[l], {
          ldx: input.cols,
          out: ws.dz[l - 1],
          tiles,
        });
      }
    }
    await this.optimizer.encodeStep(batch, ws.grads, apply);
    const bytes = LOSS_SCALARS_LENGTH * 4;
    const staging = gpu.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    batch.encoder.copyBufferToBuffer(ws.scalars.buffer, 0, staging, 0, bytes);
    batch.submit().catch(() => {});
    const scalars = staging.mapAsync(GPUMapMode.READ).then(() => {
      const v = new Float32Array(staging.getMappedRange().slice(0));
      staging.destroy();
      return decodeLossScalars(v);
    });
    return { scalars, ws };
  }

  #workspace(count: number): Workspace {
    let ws = this.#workspaces.get(count);
    if (ws) {
      // Most recently used last.
      this.#workspaces.delete(count);
      this.#workspaces.set(count, ws);
      return ws;
    }
    ws = new Workspace(this.gpu, this.head, count, this.#tiles);
    this.#workspaces.set(count, ws);
    if (this.#workspaces.size > MAX_WORKSPACES) {
      const [oldCount, old] = this.#workspaces.entries().next().value!;
      this.#workspaces.delete(oldCount);
      // Submitted steps may still use it.
      this.gpu.device.queue.onSubmittedWorkDone().then(() => old.destroy());
    }
    return ws;
  }

  /** Frees the step's buffers and the optimiser state (not the head or the features). */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#workspaces.forEach((ws) => ws.destroy());
    this.#workspaces.clear();
    this.optimizer.destroy();
  }

  /** Frees the step's buffers and the optimiser. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

function tripletCount(triplets: GpuBuffer<"u32"> | Uint32Array): number {
  if (triplets.length % 3 !== 0) {
    const shape = triplets instanceof Uint32Array ? [triplets.length] : triplets.shape;
    throw new UserError(`triplet indices ${fmtShape(shape)} are not [T x 3]`);
  }
  return triplets.length / 3;
}

function checkRange(offset: number, count: number, total: number): void {
  if (
    !Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 1 || offset + count > total
  ) {
    throw new UserError(
      `triplets [${offset}, ${offset + count}) are not a non-empty range of the ${total} triplets given`,
    );
  }
}
