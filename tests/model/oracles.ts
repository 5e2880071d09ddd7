/**
 * Independent oracles for the gradient checks of lib/ops (linear, normalize, losses) and lib/model:
 * tfjs-core autodiff on its CPU backend, and a plain f64 implementation of the whole loss for central
 * finite differences. Neither shares code with the kernels or their TS references.
 *
 * tfjs-core's `dist/register_all_gradients` cannot be imported under Deno's npm ESM resolution (its
 * imports lack file extensions), so the gradient registrations come from the @tensorflow/tfjs Node
 * bundle, which registers the same tfjs-core gradient functions into tfjs-core's global registry.
 * Versions are pinned (4.22.0) in deno.json.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import type { TripletLossConfig } from "../../lib/ops/losses.ts";
import type { LayerParams } from "../../lib/model/head.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { Rng } from "../../lib/util/rng.ts";
import { tfHeadLoss } from "../../tasks/bench/_tf_head.ts";

/** A head's parameters (host copies) and whether it normalises. */
export interface OracleHead {
  params: readonly LayerParams[];
  normalize: boolean;
}

await import("@tensorflow/tfjs");
await tf.setBackend("cpu");
export { tf };

/** tfjs autodiff: loss and dL/dW, dL/db of every layer for triplets of rows of `features`. */
export function tfHeadGradients(
  head: OracleHead,
  features: HostMatrix,
  triplets: Uint32Array,
  loss: TripletLossConfig,
): { loss: number; grads: { weight: Float32Array; bias: Float32Array }[] } {
  return tf.tidy(() => {
    const f = tf.tensor2d(features.data, [features.rows, features.cols]);
    const vars = head.params.flatMap((
      p,
    ) => [tf.tensor2d(p.weight, [p.inDim, p.outDim]), tf.tensor1d(p.bias)]);
    const { value, grads } = tf.valueAndGrads((...v: tf.Tensor[]) =>
      tfHeadLoss(tf, v, head, f, triplets, loss)
    )(
      vars,
    );
    return {
      loss: value.dataSync()[0],
      grads: head.params.map((_, l) => ({
        weight: grads[2 * l].dataSync() as Float32Array,
        bias: grads[2 * l + 1].dataSync() as Float32Array,
      })),
    };
  });
}

/**
 * tfjs autodiff of the loss alone (optionally after L2 normalisation) with respect to the embedding
 * rows: one gradient row per row of `emb`, summed over every slot that uses it.
 */
export function tfEmbeddingGradient(
  emb: HostMatrix,
  triplets: Uint32Array,
  loss: TripletLossConfig,
  normalize = false,
): { loss: number; grad: Float32Array } {
  return tf.tidy(() => {
    const e = tf.tensor2d(emb.data, [emb.rows, emb.cols]);
    const head = { params: [], normalize };
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) =>
      tfHeadLoss(tf, [], head, x as tf.Tensor2D, triplets, loss, true)
    )(e);
    return { loss: value.dataSync()[0], grad: grad.dataSync() as Float32Array };
  });
}

/** f64 loss of a head (params as f64 arrays) on triplets of feature rows, written from the spec. */
export function lossF64(
  weights: Float64Array[],
  biases: Float64Array[],
  dims: number[],
  normalize: boolean,
  features: { cols: number; data: ArrayLike<number> },
  triplets: Uint32Array,
  loss: TripletLossConfig,
): number {
  const B = triplets.length / 3;
  const embed = (r: number) => {
    let x: number[] = Array.from({ length: features.cols }, (_, j) => features.data[r * features.cols + j]);
    for (let l = 0; l < weights.length; l++) {
      const [k, o] = [dims[l], dims[l + 1]];
      const y = new Array(o).fill(0).map((_, j) => {
        let s = biases[l][j];
        for (let i = 0; i < k; i++) s += x[i] * weights[l][i * o + j];
        return s;
      });
      x = l < weights.length - 1 ? y.map((v) => Math.max(0, v)) : y;
    }
    if (normalize) {
      const n = Math.max(Math.sqrt(x.reduce((s, v) => s + v * v, 0)), 1e-12);
      x = x.map((v) => v / n);
    }
    return x;
  };
  const d2 = (u: number[], v: number[]) => u.reduce((s, ui, j) => s + (ui - v[j]) ** 2, 0);
  const dap: number[] = [], dan: number[] = [];
  for (let i = 0; i < B; i++) {
    const [a, p, n] = [0, 1, 2].map((s) => embed(triplets[3 * i + s]));
    dap.push(d2(a, p));
    dan.push(d2(a, n));
  }
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const trip = mean(dap.map((d, i) => Math.max(0, d - dan[i] + loss.margin)));
  const muAp = mean(dap), muAn = mean(dan);
  const glob = mean(dap.map((d) => (d - muAp) ** 2)) + mean(dan.map((d) => (d - muAn) ** 2)) +
    loss.lambda * Math.max(0, muAp - muAn + loss.t);
  return trip + loss.globalWeight * glob;
}

/**
 * Central finite differences (step h, f64) of `lossF64` with respect to `count` randomly chosen entries of
 * each layer's weight and bias. Returns [layer, "weight" | "bias", index, fd value] tuples.
 */
export function finiteDifferences(
  head: OracleHead,
  features: HostMatrix,
  triplets: Uint32Array,
  loss: TripletLossConfig,
  count: number,
  seed: number,
  h = 1e-6,
): [number, "weight" | "bias", number, number][] {
  const rng = new Rng(seed);
  const w = head.params.map((p) => Float64Array.from(p.weight));
  const b = head.params.map((p) => Float64Array.from(p.bias));
  const dims = [head.params[0].inDim, ...head.params.map((p) => p.outDim)];
  const f = () => lossF64(w, b, dims, head.normalize, features, triplets, loss);
  const out: [number, "weight" | "bias", number, number][] = [];
  for (let l = 0; l < w.length; l++) {
    for (const [kind, arr] of [["weight", w[l]], ["bias", b[l]]] as const) {
      for (let c = 0; c < count; c++) {
        const i = rng.int(arr.length);
        const x0 = arr[i];
        arr[i] = x0 + h;
        const up = f();
        arr[i] = x0 - h;
        const down = f();
        arr[i] = x0;
        out.push([l, kind, i, (up - down) / (2 * h)]);
      }
    }
  }
  return out;
}

/** Largest absolute value (for scale-aware tolerances). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
