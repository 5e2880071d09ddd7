/**
 * A fully connected layer on the GPU (kernels/linear.wgsl): forward (with optional ReLU), the weight
 * gradient (split-K over rows, bias included) and the input gradient (through the ReLU of the layer
 * below), plus plain-TS references with the same meaning.
 *
 * Parameters live in one "augmented" buffer per layer: [(inDim + 1) x outPad] f32, rows 0..inDim-1 the
 * weights W[k, o], row inDim the bias, columns padded with zeros to outPad = 4 * ceil(outDim / 4) so the
 * kernels read them as vec4. Outputs are written as whole vec4s, so the forward output and the
 * gradients with respect to a layer's output (dz) and input (dx) have padded rows too (the padding
 * columns come out 0). Inputs can have any row stride `ldx` >= inDim.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { GpuBuffer } from "../gpu/buffer.ts";
 * import { CommandBatch } from "../gpu/dispatch.ts";
 * import { augmentedLength, encodeLinearForward, packAugmented } from "./linear.ts";
 * const gpu = await getGpu();
 * const shape = { inDim: 3, outDim: 2 };
 * using w = GpuBuffer.fromArray(gpu, packAugmented(shape, new Float32Array(6).fill(1), new Float32Array(2)));
 * using x = GpuBuffer.fromArray(gpu, new Float32Array([1, 2, 3]), [1, 3]);
 * const batch = new CommandBatch(gpu);
 * using y = await encodeLinearForward(batch, x, w, shape); // [1 x 4]: outputs padded to 4 columns
 * await batch.submit();
 * console.log(await y.read(), augmentedLength(shape)); // [6, 6, 0, 0], 16
 * ```
 * @module
 */
import { alignedRowBlock, GpuBuffer, rowBlocks } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { LINEAR } from "../gpu/specs/linear.ts";
import { checkShape, fmtShape } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";

/** Input and output width of one fully connected layer. */
export interface LinearShape {
  /** Input width. */
  readonly inDim: number;
  /** Output width. */
  readonly outDim: number;
}

/** Register-tile sizes of the three kernels (see kernels/linear.wgsl). */
export interface LinearTiles {
  /** Invocations per workgroup. */
  wg: number;
  /** forward: rows x vec4 column groups per invocation. */
  forward: { tr: number; tcv: number };
  /** grad_weight: weight rows x vec4 column groups per invocation; rows per split-K slice. */
  gradWeight: { tk: number; tcv: number; splitRows: number };
  /** grad_input: rows x vec4 groups of input columns per invocation. */
  gradInput: { tr: number; tk: number };
}

/**
 * Tile shapes per adapter. Software rasterisers (llvmpipe) run one workgroup per CPU thread with 8-wide
 * SIMD across invocations: big per-invocation register tiles amortise the per-lane loads, and split-K only
 * adds work. GPUs want many more invocations: small tiles and split-K over rows.
 */
export function linearTiles(gpu: Gpu): LinearTiles {
  return gpu.report.isSoftware
    ? {
      wg: 64,
      forward: { tr: 4, tcv: 4 },
      gradWeight: { tk: 8, tcv: 2, splitRows: 1 << 30 },
      gradInput: { tr: 4, tk: 2 },
    }
    : {
      wg: 64,
      forward: { tr: 2, tcv: 1 },
      gradWeight: { tk: 4, tcv: 1, splitRows: 32 },
      gradInput: { tr: 2, tk: 1 },
    };
}

/** Padded output width: a multiple of 4. */
export function paddedWidth(dim: number): number {
  return 4 * Math.ceil(dim / 4);
}

/** Elements of a layer's augmented parameter buffer: (inDim + 1) x paddedWidth(outDim). */
export function augmentedLength(shape: LinearShape): number {
  return (shape.inDim + 1) * paddedWidth(shape.outDim);
}

/** Packs W [inDim x outDim] and b [outDim] (row-major) into the augmented, padded layout. */
export function packAugmented(shape: LinearShape, weight: Float32Array, bias: Float32Array): Float32Array {
  const { inDim, outDim } = shape;
  checkShape(
    weight.length === inDim * outDim && bias.length === outDim,
    `packAugmented: weight of ${weight.length} and bias of ${bias.length} values do not fit ` +
      `${fmtShape([inDim, outDim])} and ${fmtShape([outDim])}`,
  );
  const op = paddedWidth(outDim);
  const out = new Float32Array(augmentedLength(shape));
  for (let k = 0; k < inDim; k++) out.set(weight.subarray(k * outDim, (k + 1) * outDim), k * op);
  out.set(bias, inDim * op);
  return out;
}

/** Splits an augmented, padded buffer back into W [inDim x outDim] and b [outDim]. */
export function unpackAugmented(
  shape: LinearShape,
  augmented: Float32Array,
): { weight: Float32Array; bias: Float32Array } {
  const { inDim, outDim } = shape;
  checkShape(
    augmented.length === augmentedLength(shape),
    `unpackAugmented: ${augmented.length} values, expected ${augmentedLength(shape)} for ` +
      `${fmtShape([inDim + 1, paddedWidth(outDim)])}`,
  );
  const op = paddedWidth(outDim);
  const weight = new Float32Array(inDim * outDim);
  for (let k = 0; k < inDim; k++) weight.set(augmented.subarray(k * op, k * op + outDim), k * outDim);
  return { weight, bias: augmented.slice(inDim * op, inDim * op + outDim) };
}

function checkParams(w: GpuBuffer<"f32">, shape: LinearShape, op: string): void {
  checkShape(
    Number.isInteger(shape.inDim) && shape.inDim > 0 && Number.isInteger(shape.outDim) && shape.outDim > 0,
    `${op}: layer shape ${shape.inDim} -> ${shape.outDim} must be positive integers`,
  );
  checkShape(
    w.length === augmentedLength(shape),
    `${op}: parameters ${fmtShape(w.shape)} do not hold the augmented ` +
      `${
        fmtShape([shape.inDim + 1, paddedWidth(shape.outDim)])
      } of a ${shape.inDim} -> ${shape.outDim} layer`,
  );
}

/** Options of {@link encodeLinearForward}. */
export interface LinearForwardOptions {
  /**
   * Apply ReLU to the output (hidden layers).
   * @default false
   */
  relu?: boolean;
  /**
   * Row stride of the input in elements (default inDim); the input must be [rows x ldx].
   * @default inDim
   */
  ldx?: number;
  /**
   * Output buffer (default: a new [rows x ldy] buffer).
   * @default a new [rows x ldy] buffer
   */
  out?: GpuBuffer<"f32">;
  /**
   * Row stride of the output in elements: a multiple of 4, >= paddedWidth(outDim) (the default).
   * @default paddedWidth(outDim)
   */
  ldy?: number;
  /**
   * Largest binding in bytes (default the adapter's); tests lower it to force row blocks.
   * @default the adapter's
   */
  maxBindingBytes?: number;
  /**
   * Tile sizes (default {@link linearTiles} of the adapter).
   * @default {@link linearTiles} of the adapter
   */
  tiles?: LinearTiles;
}

/**
 * Encodes y = x W + b (ReLU optional) for every row of `x` [rows x ldx]; `x` may be larger than one
 * storage binding (it is processed in row blocks). Returns the [rows x ldy] output (padded to whole vec4s;
 * the caller owns it unless passed in).
 */
export async function encodeLinearForward(
  batch: CommandBatch,
  x: GpuBuffer<"f32">,
  w: GpuBuffer<"f32">,
  shape: LinearShape,
  options: LinearForwardOptions = {},
): Promise<GpuBuffer<"f32">> {
  const gpu = batch.gpu;
  checkParams(w, shape, "linearForward");
  const ldx = options.ldx ?? shape.inDim;
  checkShape(
    x.shape.length === 2 && x.cols === ldx && ldx >= shape.inDim,
    `linearForward: input ${fmtShape(x.shape)} does not have ${ldx} columns (inDim ${shape.inDim})`,
  );
  const rows = x.rows;
  const ldy = options.ldy ?? paddedWidth(shape.outDim);
  checkShape(
    ldy % 4 === 0 && ldy >= paddedWidth(shape.outDim),
    `linearForward: output stride ${ldy} must be a multiple of 4 and >= ${paddedWidth(shape.outDim)}`,
  );
  const out = options.out ?? GpuBuffer.zeros(gpu, "f32", [rows, ldy], "linear out");
  checkShape(
    out.length >= rows * ldy,
    `linearForward: output ${fmtShape(out.shape)} cannot hold ${rows} rows of stride ${ldy}`,
  );
  const tiles = options.tiles ?? linearTiles(gpu);
  const ov = paddedWidth(shape.outDim) / 4;
  const tcv = Math.min(tiles.forward.tcv, ov);
  const pipeline = await LINEAR.pipeline(gpu, "forward", {
    WG: tiles.wg,
    TR: tiles.forward.tr,
    TCV: tcv,
    TK: 1,
  });
  const maxBytes = options.maxBindingBytes ?? gpu.maxBindingBytes;
  for (const blk of rowBlocks(rows, alignedRowBlock(gpu, [ldx * 4, ldy * 4], maxBytes, rows))) {
    const invocations = Math.ceil(blk.rows / tiles.forward.tr) * Math.ceil(ov / tcv);
    batch.run(
      pipeline,
      {
        p: {
          rows: blk.rows,
          in_dim: shape.inDim,
          out_vec: ov,
          ldx,
          ldy: ldy / 4,
          relu: options.relu ? 1 : 0,
        },
        fx: x.binding(blk.start * ldx, blk.rows * ldx),
        fw: w,
        fy: out.binding(blk.start * ldy, blk.rows * ldy),
      },
      grid1d(gpu, Math.ceil(invocations / tiles.wg)),
    );
  }
  return out;
}

/** Number of split-K slices {@link encodeLinearGradWeight} uses for `rows` rows on this adapter. */
export function gradWeightSplits(rows: number, tiles: LinearTiles): number {
  return Math.max(1, Math.ceil(rows / tiles.gradWeight.splitRows));
}

/**
 * Encodes the augmented weight gradient dW_aug = [x | 1]^T dz as split-K partial sums
 * [splits x (inDim + 1) x paddedWidth(outDim)]; slice sums give dW (rows 0..inDim-1) and db (row inDim).
 * `x` is [rows x ldx] (one binding; ldx default inDim), `dz` is [rows x paddedWidth(outDim)].
 */
export async function encodeLinearGradWeight(
  batch: CommandBatch,
  x: GpuBuffer<"f32">,
  dz: GpuBuffer<"f32">,
  shape: LinearShape,
  options: { rows?: number; ldx?: number; out?: GpuBuffer<"f32">; tiles?: LinearTiles } = {},
): Promise<{ partials: GpuBuffer<"f32">; splits: number }> {
  const gpu = batch.gpu;
  const op = paddedWidth(shape.outDim);
  const rows = options.rows ?? x.rows;
  const ldx = options.ldx ?? shape.inDim;
  checkShape(
    x.shape.length === 2 && x.cols === ldx && ldx >= shape.inDim && x.rows >= rows,
    `linearGradWeight: input ${fmtShape(x.shape)} is not [${rows} x ${ldx}] (inDim ${shape.inDim})`,
  );
  checkShape(
    dz.length >= rows * op,
    `linearGradWeight: output gradient ${fmtShape(dz.shape)} is not [${rows} x ${op}] (padded width)`,
  );
  checkShape(
    rows * ldx * 4 <= gpu.maxBindingBytes,
    `linearGradWeight: ${fmtShape([rows, ldx])} exceeds one binding; use fewer rows per batch`,
  );
  const tiles = options.tiles ?? linearTiles(gpu);
  const splits = gradWeightSplits(rows, tiles);
  const splitRows = Math.ceil(rows / splits);
  const len = augmentedLength(shape);
  const partials = options.out ?? GpuBuffer.zeros(gpu, "f32", [splits, len], "linear grad partials");
  checkShape(
    partials.length >= splits * len,
    `linearGradWeight: partials ${fmtShape(partials.shape)} cannot hold ${fmtShape([splits, len])}`,
  );
  const ov = op / 4;
  const tcv = Math.min(tiles.gradWeight.tcv, ov);
  const tk = tiles.gradWeight.tk;
  const pipeline = await LINEAR.pipeline(gpu, "grad_weight", {
    WG: tiles.wg,
    TR: 1,
    TCV: tcv,
    TK: tk,
  });
  const invocations = Math.ceil(ov / tcv) * Math.ceil((shape.inDim + 1) / tk) * splits;
  batch.run(
    pipeline,
    {
      p: { rows, in_dim: shape.inDim, out_vec: ov, ldx, split_rows: splitRows, splits },
      gx: x.binding(0, rows * ldx),
      gdz: dz.binding(0, rows * op),
      gpart: partials,
    },
    grid1d(gpu, Math.ceil(invocations / tiles.wg)),
  );
  return { partials, splits };
}

/**
 * Encodes the gradient with respect to a layer's input through the ReLU that produced it:
 * dx[r, k] = (dz W^T)[r, k] * [act[r, k] > 0]. `dz` is [rows x paddedWidth(outDim)], `act` the layer's
 * input [rows x ldx] (ldx default inDim); the result is [rows x paddedWidth(inDim)] (the dz layout of the
 * layer below).
 */
export async function encodeLinearGradInput(
  batch: CommandBatch,
  dz: GpuBuffer<"f32">,
  w: GpuBuffer<"f32">,
  act: GpuBuffer<"f32">,
  shape: LinearShape,
  options: { rows?: number; ldx?: number; out?: GpuBuffer<"f32">; tiles?: LinearTiles } = {},
): Promise<GpuBuffer<"f32">> {
  const gpu = batch.gpu;
  checkParams(w, shape, "linearGradInput");
  const rows = options.rows ?? act.rows;
  const op = paddedWidth(shape.outDim);
  const ip = paddedWidth(shape.inDim);
  const ldx = options.ldx ?? shape.inDim;
  checkShape(
    act.shape.length === 2 && act.cols === ldx && ldx >= shape.inDim && act.rows >= rows,
    `linearGradInput: activations ${fmtShape(act.shape)} are not [${rows} x ${ldx}] (inDim ${shape.inDim})`,
  );
  checkShape(dz.length >= rows * op, `linearGradInput: dz ${fmtShape(dz.shape)} is not [${rows} x ${op}]`);
  const out = options.out ?? GpuBuffer.zeros(gpu, "f32", [rows, ip], "linear grad input");
  checkShape(
    out.length >= rows * ip,
    `linearGradInput: output ${fmtShape(out.shape)} is not [${rows} x ${ip}]`,
  );
  const tiles = options.tiles ?? linearTiles(gpu);
  const { tr, tk } = tiles.gradInput;
  const pipeline = await LINEAR.pipeline(gpu, "grad_input", { WG: tiles.wg, TR: tr, TCV: 1, TK: tk });
  const invocations = Math.ceil(rows / tr) * Math.ceil(ip / 4 / tk);
  batch.run(
    pipeline,
    {
      p: { rows, in_dim: shape.inDim, out_vec: op / 4, ldx, ldy: ip / 4 },
      idz: dz.binding(0, rows * op),
      iw: w,
      iact: act.binding(0, rows * ldx),
      idx: out,
    },
    grid1d(gpu, Math.ceil(invocations / tiles.wg)),
  );
  return out;
}

/** Runs {@link encodeLinearForward} in its own batch. */
export async function linearForward(
  x: GpuBuffer<"f32">,
  w: GpuBuffer<"f32">,
  shape: LinearShape,
  options: LinearForwardOptions = {},
): Promise<GpuBuffer<"f32">> {
  const batch = new CommandBatch(x.gpu, "linearForward");
  const out = await encodeLinearForward(batch, x, w, shape, options);
  await batch.submit();
  return out;
}

/** Reference of {@link encodeLinearForward}: y = act(x W + b), with W [inDim x outDim], b [outDim]. */
export function linearForwardRef(
  x: HostMatrix,
  weight: Float32Array,
  bias: Float32Array,
  relu = false,
): HostMatrix {
  const k = x.cols, o = bias.length;
  checkShape(weight.length === k * o, `linearForwardRef: weight of ${weight.length} is not [${k} x ${o}]`);
  const out = new Float32Array(x.rows * o);
  for (let r = 0; r < x.rows; r++) {
    for (let j = 0; j < o; j++) {
      let s = bias[j];
      for (let i = 0; i < k; i++) s += x.data[r * k + i] * weight[i * o + j];
      out[r * o + j] = relu ? Math.max(0, s) : s;
    }
  }
  return { rows: x.rows, cols: o, data: out };
}

/** Reference of the summed {@link encodeLinearGradWeight}: dW = x^T dz [inDim x outDim], db = sum dz. */
export function linearGradWeightRef(
  x: HostMatrix,
  dz: HostMatrix,
): { weight: Float32Array; bias: Float32Array } {
  checkShape(x.rows === dz.rows, `linearGradWeightRef: ${x.rows} input rows vs ${dz.rows} gradient rows`);
  const k = x.cols, o = dz.cols;
  const weight = new Float32Array(k * o), bias = new Float32Array(o);
  const acc = new Float64Array(k * o), accb = new Float64Array(o);
  for (let r = 0; r < x.rows; r++) {
    for (let j = 0; j < o; j++) {
      const d = dz.data[r * o + j];
      accb[j] += d;
      for (let i = 0; i < k; i++) acc[i * o + j] += x.data[r * k + i] * d;
    }
  }
  weight.set(acc);
  bias.set(accb);
  return { weight, bias };
}

/** Reference of {@link encodeLinearGradInput} (unpadded): dx = (dz W^T) * [act > 0]. */
export function linearGradInputRef(dz: HostMatrix, weight: Float32Array, act: HostMatrix): HostMatrix {
  const k = act.cols, o = dz.cols;
  checkShape(weight.length === k * o, `linearGradInputRef: weight of ${weight.length} is not [${k} x ${o}]`);
  const out = new Float32Array(dz.rows * k);
  for (let r = 0; r < dz.rows; r++) {
    for (let i = 0; i < k; i++) {
      if (!(act.data[r * k + i] > 0)) continue;
      let s = 0;
      for (let j = 0; j < o; j++) s += dz.data[r * o + j] * weight[i * o + j];
      out[r * k + i] = s;
    }
  }
  return { rows: dz.rows, cols: k, data: out };
}
