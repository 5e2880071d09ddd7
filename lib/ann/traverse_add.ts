/**
 * Traverse-add refinement (docs/method.md section 5, FANNG): walk greedily from a random vertex s toward a
 * random target t; where the walk stops short of t (at u, no neighbour of u is closer to t), add the edge
 * u -> t under the occlusion rule (it may occlude and so replace longer edges of u; it is itself never
 * occluded, since no neighbour of u is closer to t than u). Many walks run at once on the GPU
 * (kernels/fanng.wgsl `greedy`); the additions are grouped per vertex on the host and merged by the prune
 * kernel. A plain-TS reference of the walk is {@link greedyRef}.
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import { grid1d } from "../gpu/dispatch.ts";
import type { HostMatrix } from "../util/matrix.ts";
import type { Rng } from "../util/rng.ts";
import { before, sqDistRows } from "./distance_ref.ts";
import { randomPairs, traverseAddCandidates } from "./edges.ts";
import { NO_VERTEX, type PaddedGraph } from "./graph.ts";
import type { GpuGraph } from "./gpu_graph.ts";
import { prune } from "./prune.ts";
import { distanceTrips, loopBudget, runRounds } from "../gpu/rounds.ts";
import { blockBindings, type VectorBlocks } from "./vectors.ts";
import { FANNG } from "../gpu/specs/fanng.ts";

const WG = 64;

/** Moves of one greedy walk at most (a walk strictly approaches its target, so this only bounds runaway cases). */
export const MAX_HOPS = 4096;

/**
 * Runs greedy walks for `pairs` [P x 2] on the GPU; returns where each stopped (NO_VERTEX: it reached its
 * target). `pairs` is overwritten (walks resume from where a round left them).
 */
export async function runGreedy(
  vectors: VectorBlocks,
  graph: GpuGraph,
  pairs: GpuBuffer<"u32">,
  /** Moves per walk per dispatch (default: from the adapter's loop budget; tests lower it). */
  hopsPerRound?: number,
): Promise<GpuBuffer<"u32">> {
  const gpu = vectors.gpu;
  const count = pairs.length / 2;
  const stops = GpuBuffer.zeros(gpu, "u32", [count], "fanng greedy stops");
  const pipeline = await FANNG.pipeline(gpu, "greedy", {
    WG,
    R: graph.maxDegree,
    C: 1,
    CW4: 0,
  });
  // Moves per dispatch: each costs up to R distances.
  const trips = distanceTrips(vectors.layout.count, vectors.layout.w4);
  const hops = hopsPerRound ??
    Math.max(1, Math.floor((loopBudget(gpu) - 64) / (1 + graph.maxDegree * (trips + 1))));
  const blocks = blockBindings(vectors);
  await runRounds(gpu, "fanng.greedy", (batch, round, active) => {
    const gp = {
      pairs: count,
      n: graph.vertexCount,
      w4: vectors.layout.w4,
      nblocks: vectors.layout.count,
      max_hops: Math.min(hops, MAX_HOPS),
      first: round === 0 ? 1 : 0,
      round,
    };
    batch.run(
      pipeline,
      {
        gp,
        ...blocks,
        adj: graph.adjacency,
        degrees: graph.degrees,
        g_pairs: pairs,
        g_stop: stops,
        g_active: active,
      },
      grid1d(gpu, Math.ceil(count / WG)),
      "fanng.greedy",
    );
    return Promise.resolve();
  }, { perSubmit: 4, maxRounds: Math.ceil(MAX_HOPS / hops) + 2 });
  return stops;
}

/** Plain-TS reference of {@link runGreedy}. */
export function greedyRef(data: HostMatrix, graph: PaddedGraph, pairs: Uint32Array): Uint32Array {
  const n = graph.vertexCount, r = graph.maxDegree;
  const stops = new Uint32Array(pairs.length / 2);
  for (let p = 0; p < stops.length; p++) {
    const s = pairs[2 * p], t = pairs[2 * p + 1];
    if (s >= n || t >= n) {
      stops[p] = NO_VERTEX;
      continue;
    }
    let u = s, du = sqDistRows(data, t, data, u);
    for (let hop = 0; hop < MAX_HOPS && u !== t; hop++) {
      let best = u, bd = du;
      for (let e = 0; e < Math.min(graph.degrees[u], r); e++) {
        const c = graph.adjacency[u * r + e], d = sqDistRows(data, t, data, c);
        if (before(d, c, bd, best)) [best, bd] = [c, d];
      }
      if (best === u) break;
      [u, du] = [best, bd];
    }
    stops[p] = u === t ? NO_VERTEX : u;
  }
  return stops;
}

/** Outcome of traverse-add. */
export interface TraverseAddStats {
  /** Walks run. */
  walks: number;
  /** Walks that stopped short of their target, per round. */
  failuresPerRound: number[];
}

/**
 * Runs traverse-add: `walks` random walks in rounds of `perRound`, merging each round's additions (at
 * most `slots` per vertex per round) before the next round starts.
 */
export async function traverseAdd(
  vectors: VectorBlocks,
  graph: GpuGraph,
  rng: Rng,
  walks: number,
  { perRound = 16384, slots = 4, onRound }: {
    perRound?: number;
    slots?: number;
    onRound?: (walksDone: number, failures: number) => void;
  } = {},
): Promise<TraverseAddStats> {
  const gpu = vectors.gpu, n = graph.vertexCount;
  const stats: TraverseAddStats = { walks: 0, failuresPerRound: [] };
  if (n < 2) return stats;
  for (let done = 0; done < walks;) {
    const count = Math.min(perRound, walks - done);
    const pairs = randomPairs(n, count, (m) => rng.int(m));
    using pairsBuf = GpuBuffer.fromArray(gpu, pairs, [count, 2]);
    using stopsBuf = await runGreedy(vectors, graph, pairsBuf);
    const { extra, failures } = traverseAddCandidates(n, pairs, await stopsBuf.read(), slots);
    if (failures > 0) {
      using extraBuf = GpuBuffer.fromArray(gpu, extra, [n, slots]);
      await prune(vectors, graph, extraBuf, { merge: true, onlyWithExtra: true });
    }
    done += count;
    stats.walks = done;
    stats.failuresPerRound.push(failures);
    onRound?.(done, failures);
  }
  return stats;
}
