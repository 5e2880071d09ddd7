/**
 * Triplet loss with margin plus the global loss (Kumar B G et al., CVPR 2016) over a batch of triplets,
 * forward and backward on the GPU (kernels/losses.wgsl), with a plain-TS reference.
 *
 * With d = squared Euclidean distance between embedding rows, over the B triplets (a_i, p_i, n_i):
 *   L_triplet = mean max(0, d(a,p) - d(a,n) + margin)
 *   L_global  = var d(a,p) + var d(a,n) + lambda * max(0, mean d(a,p) - mean d(a,n) + t)  (population var)
 *   L         = L_triplet + globalWeight * L_global;   error = mean [d(a,p) >= d(a,n)]
 * The backward pass gives dL/d(row) per slot: row 3i + s of the gradient belongs to slot s (0 anchor,
 * 1 positive, 2 negative) of triplet i, so a sample that appears in several triplets gets one row per
 * appearance; summing them (or back-propagating each slot through the head, as the training step does)
 * loses nothing. Hinges at exactly 0 are inactive (subgradient 0, as ReLU).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { GpuBuffer } from "../gpu/buffer.ts";
 * import { DEFAULT_LOSS_CONFIG, tripletLossForward } from "./losses.ts";
 * const gpu = await getGpu();
 * using emb = GpuBuffer.fromArray(gpu, new Float32Array([0, 0, 1, 0, 0, 1]), [3, 2]);
 * using t = GpuBuffer.fromArray(gpu, new Uint32Array([0, 1, 2]), [1, 3]);
 * const r = await tripletLossForward(emb, t, DEFAULT_LOSS_CONFIG);
 * console.log(r.scalars.tripletLoss, await r.dists.read()); // 0.2, [1, 1]
 * r.dists.destroy();
 * ```
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { CommandBatch, grid1d } from "../gpu/dispatch.ts";
import { LOSSES } from "../gpu/specs/losses.ts";
import { checkShape, fmtShape, UserError } from "../errors.ts";
import type { HostMatrix } from "../util/matrix.ts";

/** Loss settings (docs/method.md section 2). */
export interface TripletLossConfig {
  /** Triplet margin m (0.2 on unit-norm embeddings). */
  margin: number;
  /** Weight of the global loss; 0 disables it. */
  globalWeight: number;
  /** Global loss: weight of the mean-gap hinge. */
  lambda: number;
  /** Global loss: target gap between the mean distances. */
  t: number;
}

/** The defaults of docs/method.md: margin 0.2, global weight 1, lambda 1, t 0.4. */
export const DEFAULT_LOSS_CONFIG: Readonly<TripletLossConfig> = {
  margin: 0.2,
  globalWeight: 1,
  lambda: 1,
  t: 0.4,
};

/** Batch statistics of the loss. */
export interface LossScalars {
  /** tripletLoss + globalWeight * globalLoss. */
  loss: number;
  /** The mean triplet (hinge) loss. */
  tripletLoss: number;
  /** The unweighted global loss. */
  globalLoss: number;
  /** Fraction of triplets with d(a,p) >= d(a,n). */
  error: number;
  /** Mean d(a,p). */
  meanDap: number;
  /** Mean d(a,n). */
  meanDan: number;
  /** Variance of d(a,p). */
  varDap: number;
  /** Variance of d(a,n). */
  varDan: number;
  /** Fraction of triplets with a positive hinge (they carry triplet-loss gradient). */
  activeFraction: number;
}

/** Number of f32 values the kernel writes to its scalars buffer. */
export const LOSS_SCALARS_LENGTH = 12;

/** Reads the scalars buffer layout of kernels/losses.wgsl. */
export function decodeLossScalars(v: ArrayLike<number>): LossScalars {
  return {
    loss: v[0],
    tripletLoss: v[1],
    globalLoss: v[2],
    error: v[3],
    meanDap: v[4],
    meanDan: v[5],
    varDap: v[6],
    varDan: v[7],
    activeFraction: v[8],
  };
}

/** Throws a UserError for settings that make no sense. */
export function checkLossConfig(c: TripletLossConfig): void {
  const bad = (["margin", "globalWeight", "lambda", "t"] as const).filter((k) => !Number.isFinite(c[k]));
  if (bad.length) throw new UserError(`loss settings ${bad.join(", ")} must be finite numbers`);
  if (c.margin < 0 || c.globalWeight < 0 || c.lambda < 0) {
    throw new UserError(
      `margin (${c.margin}), global weight (${c.globalWeight}) and lambda (${c.lambda}) must be >= 0`,
    );
  }
}

/** Options of {@link encodeTripletLoss}. */
export interface TripletLossOptions {
  /**
   * [B x 3] row indices (a, p, n) into `emb`. Without it, triplet i is rows (3i, 3i+1, 3i+2) of `emb`
   * (the "slot" layout the training step uses) and `count` gives B.
   * @default none: consecutive rows
   */
  triplets?: GpuBuffer<"u32">;
  /**
   * B (default: triplets.rows, or emb.rows / 3).
   * @default triplets.rows, or emb.rows / 3
   */
  count?: number;
  /**
   * Embedding width (default emb.cols) and row stride (default the width).
   * @default emb.cols
   */
  dim?: number;
  /**
   * Row stride of the embeddings (default the width).
   * @default the width
   */
  ldEmb?: number;
  /**
   * Compute the slot gradients too.
   * @default false
   */
  backward?: boolean;
  /**
   * Gradient output [3B x ldGrad] (default a new [3B x dim] buffer) and its row stride.
   * @default a new [3B x dim] buffer
   */
  grad?: GpuBuffer<"f32">;
  /**
   * Row stride of the gradient (default the width).
   * @default the width
   */
  ldGrad?: number;
  /**
   * Outputs to reuse: distances [B x 2] and scalars [12].
   * @default new buffers
   */
  dists?: GpuBuffer<"f32">;
  /**
   * [12] scalar outputs to reuse.
   * @default a new buffer
   */
  scalars?: GpuBuffer<"f32">;
}

/** Buffers written by {@link encodeTripletLoss}. */
export interface TripletLossBuffers {
  /** [B x 2]: d(a,p), d(a,n) per triplet. */
  dists: GpuBuffer<"f32">;
  /** [12]: see {@link decodeLossScalars}. */
  scalars: GpuBuffer<"f32">;
  /** [3B x ldGrad] slot gradients (backward only). */
  grad?: GpuBuffer<"f32">;
}

/** Encodes the loss (and optionally its slot gradients) for one batch into `batch`. */
export async function encodeTripletLoss(
  batch: CommandBatch,
  emb: GpuBuffer<"f32">,
  config: TripletLossConfig,
  options: TripletLossOptions = {},
): Promise<TripletLossBuffers> {
  const gpu = batch.gpu;
  checkLossConfig(config);
  const dim = options.dim ?? emb.cols;
  const ldE = options.ldEmb ?? dim;
  const t = options.triplets;
  const count = options.count ?? (t ? t.rows : Math.floor(emb.rows / 3));
  checkShape(count >= 1, `tripletLoss: a batch needs at least one triplet, got ${count}`);
  checkShape(ldE >= dim && dim >= 1, `tripletLoss: embedding width ${dim} at row stride ${ldE}`);
  const embRows = Math.floor(emb.length / ldE);
  if (t) {
    checkShape(
      t.length >= count * 3,
      `tripletLoss: triplets ${fmtShape(t.shape)} hold fewer than [${count} x 3] indices`,
    );
  } else {
    checkShape(
      embRows >= 3 * count,
      `tripletLoss: embeddings ${fmtShape(emb.shape)} hold fewer than the ${
        3 * count
      } slot rows of ${count} triplets`,
    );
  }
  checkShape(
    emb.length * 4 <= gpu.maxBindingBytes,
    `tripletLoss: embeddings ${fmtShape(emb.shape)} exceed one binding; gather the batch's rows first`,
  );
  const dists = options.dists ?? GpuBuffer.zeros(gpu, "f32", [count, 2], "loss dists");
  checkShape(
    dists.length >= 2 * count,
    `tripletLoss: dists ${fmtShape(dists.shape)} hold fewer than ${count} pairs`,
  );
  const scalars = options.scalars ?? GpuBuffer.zeros(gpu, "f32", [LOSS_SCALARS_LENGTH], "loss scalars");
  checkShape(
    scalars.length >= LOSS_SCALARS_LENGTH,
    `tripletLoss: scalars ${fmtShape(scalars.shape)} too small`,
  );
  const backward = options.backward ?? false;
  const ldG = options.ldGrad ?? dim;
  let grad = options.grad;
  if (backward) {
    grad ??= GpuBuffer.zeros(gpu, "f32", [3 * count, ldG], "loss grad");
    checkShape(
      ldG >= dim && grad.length >= 3 * count * ldG,
      `tripletLoss: gradient ${fmtShape(grad.shape)} cannot hold ${3 * count} rows at stride ${ldG}`,
    );
  }
  const wg = gpu.report.isSoftware ? 64 : 256;
  const stats = await LOSSES.pipeline(gpu, "main", { WG: wg });
  const params = {
    count,
    dim,
    ld_e: ldE,
    indexed: t ? 1 : 0,
    rows: embRows,
    margin: config.margin,
    global_weight: config.globalWeight,
    lambda: config.lambda,
  };
  // Without triplets the index binding still needs a buffer: a tiny scratch one.
  const triplets = t ?? batch.scratch("u32", [4]);
  batch.run(stats, { p: { ...params, t: config.t }, emb, triplets, dists, scalars }, [1], "losses.forward");
  if (backward) {
    const gradPipeline = await LOSSES.pipeline(gpu, "grad_main", { WG: 64 });
    batch.run(
      gradPipeline,
      { p: { ...params, ld_g: ldG }, emb, triplets, gdists: dists, gscalars: scalars, grad: grad! },
      grid1d(gpu, Math.ceil((count * dim) / 64)),
      "losses.backward",
    );
  }
  return { dists, scalars, grad };
}

/** Result of {@link tripletLossForward} / {@link tripletLossBackward}. */
export interface TripletLossResult {
  /** The batch's loss scalars. */
  scalars: LossScalars;
  /** [B x 2] distances (caller owns it). */
  dists: GpuBuffer<"f32">;
  /** [3B x dim] slot gradients (backward only; caller owns it). */
  grad?: GpuBuffer<"f32">;
}

async function runLoss(
  emb: GpuBuffer<"f32">,
  triplets: GpuBuffer<"u32"> | undefined,
  config: TripletLossConfig,
  backward: boolean,
): Promise<TripletLossResult> {
  const batch = new CommandBatch(emb.gpu, "tripletLoss");
  const r = await encodeTripletLoss(batch, emb, config, { triplets, backward });
  await batch.submit();
  using scalarBuf = r.scalars;
  const scalars = decodeLossScalars(await scalarBuf.read(0, LOSS_SCALARS_LENGTH));
  return { scalars, dists: r.dists, grad: r.grad };
}

/**
 * Loss forward for triplets given as [B x 3] row indices into `emb` (or, without them, the slot layout
 * rows 3i..3i+2): batch scalars and per-triplet distances.
 */
export function tripletLossForward(
  emb: GpuBuffer<"f32">,
  triplets: GpuBuffer<"u32"> | undefined,
  config: TripletLossConfig,
): Promise<TripletLossResult> {
  return runLoss(emb, triplets, config, false);
}

/** Loss forward and backward: also the [3B x dim] slot gradients dL/d(row), row 3i + s for slot s. */
export function tripletLossBackward(
  emb: GpuBuffer<"f32">,
  triplets: GpuBuffer<"u32"> | undefined,
  config: TripletLossConfig,
): Promise<TripletLossResult> {
  return runLoss(emb, triplets, config, true);
}

/** Result of {@link tripletLossRef}. */
export interface TripletLossRefResult {
  /** The batch's loss scalars. */
  scalars: LossScalars;
  /** d(a,p) and d(a,n) per triplet. */
  dap: Float64Array;
  /** d(a,n) per triplet. */
  dan: Float64Array;
  /** [3B x dim] slot gradients. */
  grad: HostMatrix;
}

/**
 * Plain-TS reference (f64 arithmetic) of the loss and its slot gradients. `triplets` holds [B x 3] row
 * indices into `emb`; `null` means the slot layout (triplet i = rows 3i, 3i+1, 3i+2).
 */
export function tripletLossRef(
  emb: HostMatrix,
  triplets: ArrayLike<number> | null,
  config: TripletLossConfig,
): TripletLossRefResult {
  const D = emb.cols;
  const B = triplets ? triplets.length / 3 : Math.floor(emb.rows / 3);
  checkShape(Number.isInteger(B) && B >= 1, `tripletLossRef: ${triplets?.length} indices are not [B x 3]`);
  const rowOf = (i: number, s: number) => (triplets ? triplets[3 * i + s] : 3 * i + s);
  const x = (r: number, j: number) => emb.data[r * D + j];
  const dap = new Float64Array(B), dan = new Float64Array(B);
  let sh = 0, nAct = 0, nErr = 0;
  for (let i = 0; i < B; i++) {
    const a = rowOf(i, 0), p = rowOf(i, 1), n = rowOf(i, 2);
    for (let j = 0; j < D; j++) {
      dap[i] += (x(a, j) - x(p, j)) ** 2;
      dan[i] += (x(a, j) - x(n, j)) ** 2;
    }
    const h = dap[i] - dan[i] + config.margin;
    if (h > 0) (sh += h), nAct++;
    if (dap[i] >= dan[i]) nErr++;
  }
  const mean = (v: Float64Array) => v.reduce((s, a) => s + a, 0) / B;
  const muAp = mean(dap), muAn = mean(dan);
  const varAp = dap.reduce((s, a) => s + (a - muAp) ** 2, 0) / B;
  const varAn = dan.reduce((s, a) => s + (a - muAn) ** 2, 0) / B;
  const gap = muAp - muAn + config.t;
  const globalLoss = varAp + varAn + config.lambda * Math.max(0, gap);
  const tripletLoss = sh / B;
  const w = config.globalWeight;
  const grad = new Float32Array(3 * B * D);
  const gate = gap > 0 ? config.lambda : 0;
  for (let i = 0; i < B; i++) {
    const hinge = dap[i] - dan[i] + config.margin > 0 ? 1 : 0;
    const gAp = (hinge + w * (2 * (dap[i] - muAp) + gate)) / B;
    const gAn = (-hinge + w * (2 * (dan[i] - muAn) - gate)) / B;
    const a = rowOf(i, 0), p = rowOf(i, 1), n = rowOf(i, 2);
    for (let j = 0; j < D; j++) {
      const u = x(a, j) - x(p, j), v = x(a, j) - x(n, j);
      grad[(3 * i) * D + j] = 2 * gAp * u + 2 * gAn * v;
      grad[(3 * i + 1) * D + j] = -2 * gAp * u;
      grad[(3 * i + 2) * D + j] = -2 * gAn * v;
    }
  }
  return {
    scalars: {
      loss: tripletLoss + w * globalLoss,
      tripletLoss,
      globalLoss,
      error: nErr / B,
      meanDap: muAp,
      meanDan: muAn,
      varDap: varAp,
      varDan: varAn,
      activeFraction: nAct / B,
    },
    dap,
    dan,
    grad: { rows: 3 * B, cols: D, data: grad },
  };
}
