/**
 * The embedding head: fully connected layers on cached features (optional hidden FC + ReLU layers, then
 * FC to the embedding), optionally L2-normalised, on the GPU. Parameters stay on the GPU, one augmented
 * buffer per layer (weights and bias, see lib/ops/linear.ts).
 *
 * Initialisation (seeded, `Rng(seed)`, layers in order, weights row-major [inDim x outDim]):
 * - "xavier-uniform" (default): W ~ U(-a, a), a = sqrt(6 / (inDim + outDim)); b = 0.
 * - "torch-default": W, b ~ U(-1/sqrt(inDim), 1/sqrt(inDim)) (torch.nn.Linear's default).
 * Note the layout: W[k, o] multiplies input k into output o (the transpose of torch's `weight`).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { alignedRowBlock, GpuBuffer, rowBlocks } from "../gpu/buffer.ts";
 * import { EmbeddingHead } from "./head.ts";
 * const gpu = await getGpu();
 * using head = EmbeddingHead.create(gpu, { inDim: 784, outDim: 64, seed: 1 });
 * using x = GpuBuffer.zeros(gpu, "f32", [10, 784]);
 * using e = await head.embed(x); // [10 x 64]
 * ```
 * @module
 */
import { alignedRowBlock, GpuBuffer, rowBlocks } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch } from "../gpu/dispatch.ts";
import { checkShape, fmtShape, ShapeError, UserError } from "../errors.ts";
import {
  encodeLinearForward,
  linearForwardRef,
  type LinearShape,
  packAugmented,
  paddedWidth,
  unpackAugmented,
} from "../ops/linear.ts";
import { encodeL2NormalizeForward, l2NormalizeForwardRef } from "../ops/normalize.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { Rng } from "../util/rng.ts";

/** Weight initialisations. */
export type HeadInit = "xavier-uniform" | "torch-default";

/** Shape and options of a head. */
export interface HeadConfig {
  /** Feature width (1024 for GoogLeNet pool5, 784 for Fashion-MNIST pixels). */
  inDim: number;
  /** Embedding width (64 in the paper). */
  outDim: number;
  /**
   * Widths of hidden FC + ReLU layers before the output layer ([] = one FC layer, the default).
   * @default [] (one FC layer)
   */
  hidden?: readonly number[];
  /**
   * L2-normalise the embeddings (default true).
   * @default true
   */
  normalize?: boolean;
  /**
   * Seed of the initialisation (default 0).
   * @default 0
   */
  seed?: number;
  /**
   * Weight initialisation (default "xavier-uniform").
   * @default "xavier-uniform"
   */
  init?: HeadInit;
}

/** A head config with every default filled in. */
export type ResolvedHeadConfig = Required<Omit<HeadConfig, "hidden">> & { hidden: number[] };

/** Host copy of one layer's parameters: weight [inDim x outDim] row-major, bias [outDim]. */
export interface LayerParams {
  /** Input width of the layer. */
  inDim: number;
  /** Output width of the layer. */
  outDim: number;
  /** [inDim x outDim] row-major. */
  weight: Float32Array;
  /** [outDim]. */
  bias: Float32Array;
}

const isPosInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

/** Fills in the defaults and checks the config; throws UserError on bad values. */
export function resolveHeadConfig(config: HeadConfig): ResolvedHeadConfig {
  const hidden = [...(config.hidden ?? [])];
  if (!isPosInt(config.inDim)) {
    throw new UserError(`head inDim must be a positive integer, got ${config.inDim}`);
  }
  if (!isPosInt(config.outDim)) {
    throw new UserError(`head outDim must be a positive integer, got ${config.outDim}`);
  }
  if (!hidden.every(isPosInt)) {
    throw new UserError(`head hidden widths must be positive integers, got [${hidden.join(", ")}]`);
  }
  const init = config.init ?? "xavier-uniform";
  if (init !== "xavier-uniform" && init !== "torch-default") {
    throw new UserError(`head init must be "xavier-uniform" or "torch-default", got "${init}"`);
  }
  return {
    inDim: config.inDim,
    outDim: config.outDim,
    hidden,
    normalize: config.normalize ?? true,
    seed: config.seed ?? 0,
    init,
  };
}

/** The layer shapes of a head, input side first. */
export function headLayerShapes(config: HeadConfig): LinearShape[] {
  const c = resolveHeadConfig(config);
  const widths = [c.inDim, ...c.hidden, c.outDim];
  return widths.slice(1).map((outDim, i) => ({ inDim: widths[i], outDim }));
}

/** The seeded initial parameters of a head (see the module doc for the distributions). */
export function initHeadParameters(config: HeadConfig): LayerParams[] {
  const c = resolveHeadConfig(config);
  const rng = new Rng(c.seed);
  return headLayerShapes(c).map(({ inDim, outDim }) => {
    const weight = new Float32Array(inDim * outDim);
    const bias = new Float32Array(outDim);
    if (c.init === "xavier-uniform") {
      const a = Math.sqrt(6 / (inDim + outDim));
      for (let i = 0; i < weight.length; i++) weight[i] = (2 * rng.float() - 1) * a;
    } else {
      const a = 1 / Math.sqrt(inDim);
      for (let i = 0; i < weight.length; i++) weight[i] = (2 * rng.float() - 1) * a;
      for (let i = 0; i < bias.length; i++) bias[i] = (2 * rng.float() - 1) * a;
    }
    return { inDim, outDim, weight, bias };
  });
}

/** Checks host parameters against a head config's layer shapes. */
export function checkLayerParams(config: HeadConfig, params: readonly LayerParams[]): void {
  const shapes = headLayerShapes(config);
  const want = shapes.map((s) => `${s.inDim}->${s.outDim}`).join(", ");
  const got = params.map((p) => `${p.inDim}->${p.outDim}`).join(", ");
  if (
    params.length !== shapes.length ||
    shapes.some((s, i) => s.inDim !== params[i].inDim || s.outDim !== params[i].outDim)
  ) {
    throw new ShapeError(`head parameters have layers [${got}] but the head needs [${want}]`);
  }
  params.forEach((p, i) => {
    checkShape(
      p.weight.length === p.inDim * p.outDim && p.bias.length === p.outDim,
      `layer ${i}: weight of ${p.weight.length} and bias of ${p.bias.length} values do not fit ` +
        `${fmtShape([p.inDim, p.outDim])} and ${fmtShape([p.outDim])}`,
    );
  });
}

/** Embedding head on the GPU: forward for a batch or all rows; parameters readable and settable. */
export class EmbeddingHead implements Disposable {
  /** Augmented parameter buffers, one per layer ([(inDim + 1) x paddedWidth(outDim)]). */
  readonly params: GpuBuffer<"f32">[];
  /** Layer shapes, input side first. */
  readonly layers: readonly LinearShape[];
  #destroyed = false;

  private constructor(
    readonly gpu: Gpu,
    readonly config: ResolvedHeadConfig,
    params: readonly LayerParams[],
  ) {
    this.layers = headLayerShapes(config);
    this.params = params.map((p, i) =>
      GpuBuffer.fromArray(gpu, packAugmented(this.layers[i], p.weight, p.bias), undefined, `head layer ${i}`)
    );
  }

  /** A head with seeded initial parameters. */
  static create(gpu: Gpu, config: HeadConfig): EmbeddingHead {
    const c = resolveHeadConfig(config);
    return new EmbeddingHead(gpu, c, initHeadParameters(c));
  }

  /** A head with the given parameters (shapes checked against the config). */
  static fromParameters(gpu: Gpu, config: HeadConfig, params: readonly LayerParams[]): EmbeddingHead {
    const c = resolveHeadConfig(config);
    checkLayerParams(c, params);
    return new EmbeddingHead(gpu, c, params);
  }

  /** Input width. */
  get inDim(): number {
    return this.config.inDim;
  }

  /** Embedding width. */
  get outDim(): number {
    return this.config.outDim;
  }

  /** Host copies of the parameters. */
  async parameters(): Promise<LayerParams[]> {
    const out: LayerParams[] = [];
    for (let i = 0; i < this.layers.length; i++) {
      const { weight, bias } = unpackAugmented(this.layers[i], await this.params[i].read());
      out.push({ ...this.layers[i], weight, bias });
    }
    return out;
  }

  /** Overwrites the parameters (shapes checked). */
  setParameters(params: readonly LayerParams[]): void {
    checkLayerParams(this.config, params);
    params.forEach((p, i) => this.params[i].write(packAugmented(this.layers[i], p.weight, p.bias)));
  }

  /** Embeds a batch: [B x inDim] -> [B x outDim] (caller owns the result). */
  embed(x: GpuBuffer<"f32">): Promise<GpuBuffer<"f32">> {
    return this.embedAll(x);
  }

  /**
   * Embeds every row of `features` [N x inDim] -> [N x outDim]. The features may be larger than one
   * storage binding: every kernel works on aligned row blocks. One submission.
   */
  async embedAll(features: GpuBuffer<"f32">): Promise<GpuBuffer<"f32">> {
    const batch = new CommandBatch(this.gpu, "embed");
    const out = await this.encodeEmbed(batch, features);
    await batch.submit();
    return out;
  }

  /** Encodes the forward pass of all rows of `x` into `batch`; returns [rows x outDim] (caller owns it). */
  async encodeEmbed(batch: CommandBatch, x: GpuBuffer<"f32">): Promise<GpuBuffer<"f32">> {
    this.#checkAlive();
    checkShape(
      x.shape.length === 2 && x.cols === this.inDim,
      `embed: features ${fmtShape(x.shape)} do not have the head's ${this.inDim} columns`,
    );
    const rows = x.rows;
    const last = this.layers.length - 1;
    const outDim = this.outDim, outPad = paddedWidth(outDim);
    // Layer outputs are padded to whole vec4s; the last one goes straight to the result when it needs
    // neither normalisation nor unpadding.
    const direct = !this.config.normalize && outPad === outDim;
    let act = x;
    for (let l = 0; l <= last; l++) {
      const width = paddedWidth(this.layers[l].outDim);
      const y = l === last && direct
        ? GpuBuffer.zeros(this.gpu, "f32", [rows, outDim], "embeddings")
        : batch.scratch("f32", [rows, width], `head act ${l}`);
      act = await encodeLinearForward(batch, act, this.params[l], this.layers[l], {
        relu: l < last,
        ldx: act.cols,
        out: y,
      });
    }
    if (direct) return act;
    const out = GpuBuffer.zeros(this.gpu, "f32", [rows, outDim], "embeddings");
    const norms = batch.scratch("f32", [rows], "norms");
    // Blocks aligned in the input, the output and the norms (4 bytes a row).
    const per = alignedRowBlock(this.gpu, [outPad * 4, outDim * 4, 4], this.gpu.maxBindingBytes, rows);
    for (const blk of rowBlocks(rows, per)) {
      await encodeL2NormalizeForward(batch, act, {
        rowStart: blk.start,
        rows: blk.rows,
        dim: outDim,
        ldIn: outPad,
        out,
        norms,
        scale: this.config.normalize,
      });
    }
    return out;
  }

  #checkAlive(): void {
    if (this.#destroyed) throw new Error("EmbeddingHead used after destroy()");
  }

  /** Frees the parameter buffers. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.params.forEach((p) => p.destroy());
  }

  /** Frees the parameters. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** Plain-TS reference of the head's forward pass. */
export function embedRef(params: readonly LayerParams[], config: HeadConfig, x: HostMatrix): HostMatrix {
  const c = resolveHeadConfig(config);
  checkLayerParams(c, params);
  checkShape(x.cols === c.inDim, `embedRef: input [${x.rows} x ${x.cols}] does not have ${c.inDim} columns`);
  let act = x;
  params.forEach((p, i) => (act = linearForwardRef(act, p.weight, p.bias, i < params.length - 1)));
  return c.normalize ? l2NormalizeForwardRef(act).out : act;
}
