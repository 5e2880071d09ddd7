/**
 * The training loss of a head as a tfjs-core graph (gather -> FC layers with ReLU between -> optional L2
 * normalisation -> triplet + global loss), written from docs/method.md section 2. Used as the autodiff oracle
 * in tests (CPU backend) and as the peer in tasks/bench/train_step_bench.ts (webgpu backend). It takes
 * the tfjs namespace as an argument so importing it selects no backend.
 * @module
 */
import type * as Tf from "@tensorflow/tfjs-core";
import type { LayerParams } from "../../lib/model/head.ts";
import type { TripletLossConfig } from "../../lib/ops/losses.ts";

/** Head shape for the oracles. */
export interface OracleHead {
  params: readonly Pick<LayerParams, "inDim" | "outDim">[];
  normalize: boolean;
}

/**
 * The loss for triplets ([B x 3] rows of `features`, as an int32 tensor or host indices). `vars` holds
 * W0, b0, W1, b1, ... With `inputIsEmbedding` the gathered rows are the embeddings (no layers).
 */
export function tfHeadLoss(
  tf: typeof Tf,
  vars: readonly Tf.Tensor[],
  head: OracleHead,
  features: Tf.Tensor2D,
  triplets: Uint32Array | Tf.Tensor1D,
  loss: TripletLossConfig,
  inputIsEmbedding = false,
): Tf.Scalar {
  const idx = triplets instanceof Uint32Array ? tf.tensor1d(Int32Array.from(triplets), "int32") : triplets;
  let x: Tf.Tensor = tf.gather(features, idx);
  if (!inputIsEmbedding) {
    head.params.forEach((_, l) => {
      x = tf.add(tf.matMul(x as Tf.Tensor2D, vars[2 * l] as Tf.Tensor2D), vars[2 * l + 1]);
      if (l < head.params.length - 1) x = tf.relu(x);
    });
  }
  if (head.normalize) x = tf.div(x, tf.maximum(tf.norm(x, "euclidean", 1, true), 1e-12));
  // Slots are interleaved (a0, p0, n0, a1, ...): view as [B x 3 x D] and take each slot.
  const B = idx.shape[0] / 3;
  const [a, p, n] = tf.unstack(tf.reshape(x, [B, 3, -1]), 1);
  const dap = tf.sum(tf.square(tf.sub(a, p)), 1);
  const dan = tf.sum(tf.square(tf.sub(a, n)), 1);
  const trip = tf.mean(tf.relu(tf.add(tf.sub(dap, dan), loss.margin)));
  const muAp = tf.mean(dap), muAn = tf.mean(dan);
  const varAp = tf.mean(tf.square(tf.sub(dap, muAp)));
  const varAn = tf.mean(tf.square(tf.sub(dan, muAn)));
  const glob = tf.add(tf.add(varAp, varAn), tf.mul(loss.lambda, tf.relu(tf.add(tf.sub(muAp, muAn), loss.t))));
  return tf.add(trip, tf.mul(loss.globalWeight, glob)) as Tf.Scalar;
}
