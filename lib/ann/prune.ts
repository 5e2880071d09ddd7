/**
 * Occlusion pruning (docs/method.md section 5): each vertex keeps, from its candidates sorted nearest first,
 * those that no kept edge occludes (edge v -> c is occluded by a kept v -> u when d(v,u) < d(v,c) and
 * d(u,c) < d(v,c)), up to the maximum degree. On the GPU over many vertices at once (kernels/fanng.wgsl
 * `prune`) and as a plain-TS reference with the same semantics.
 *
 * Candidates of vertex v are `extra[v, 0..slots)` (NO_VERTEX, out-of-range ids, v itself and repeats are
 * skipped) and, when merging, v's current edges. Merging is how reverse edges and traverse-add edges enter
 * the graph: pairs of two current edges need no re-check, since the current row already obeys the rule.
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import { GpuBuffer } from "../gpu/buffer.ts";
import { grid1d } from "../gpu/dispatch.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { before, sqDistRows } from "./distance_ref.ts";
import { NO_VERTEX, type PaddedGraph } from "./graph.ts";
import type { GpuGraph } from "./gpu_graph.ts";
import { distanceTrips, loopBudget, runRounds } from "../gpu/rounds.ts";
import { alignedRow } from "./knn_graph.ts";
import { blockBindings, registerWidth, type VectorBlocks } from "./vectors.ts";
import { FANNG } from "../gpu/specs/fanng.ts";

/** Which vertices are pruned and how. */
export interface PruneOptions {
  /** Merge the candidates into each vertex's current edges (else the row is rebuilt from `extra` alone). */
  merge: boolean;
  /**
   * Leave vertices that have no new candidate untouched (only with `merge`).
   * @default false
   */
  onlyWithExtra?: boolean;
  /**
   * First vertex to process (default 0).
   * @default 0
   */
  start?: number;
  /**
   * Number of vertices to process (default all from `start`).
   * @default all from `start`
   */
  count?: number;
  /**
   * Vertex of `extra`'s first row (default 0): vertex v reads row v - extraRow0.
   * @default 0
   */
  extraRow0?: number;
  /**
   * Occlusion checks per vertex per dispatch (default: from the adapter's loop budget; tests lower it).
   * @default from the adapter's loop budget
   */
  checkCap?: number;
  /**
   * Robust-pruning factor (DiskANN/Vamana's alpha, >= 1; default 1, FANNG's rule): c is occluded by a kept u
   * when alpha * d(u,c) < d(v,c) (on distances; alpha^2 on the squared distances compared here).
   * @default 1
   */
  alpha?: number;
}

/**
 * Distances of presorted candidates (kNN lists; only without `merge`): `extra`'s rows are then taken as they
 * are, already sorted by (distance, id), distinct and without the vertex itself, with these distances
 * ([rows x slots], same layout); the high bit of an id is ignored (lib/ann/knn_graph.ts NEW). Saves
 * computing and sorting the candidates' distances.
 */
export interface Presorted<D> {
  /** [rows x slots] distances of `extra`'s candidates, in the same layout. */
  extraDistances?: D;
}

const WG = 64;

/** alpha^2 as the kernel compares it (f32), after checking alpha. */
function occlusionScale(alpha = 1): number {
  if (!(alpha >= 1) || !Number.isFinite(alpha)) {
    throw new UserError(`prune: alpha must be a finite number >= 1, got ${alpha}`);
  }
  return Math.fround(alpha * alpha);
}

/** Candidate slots of the kernel's scratch list for `slots` extra candidates. */
function capacity(maxDegree: number, slots: number, merge: boolean): number {
  return Math.max(1, slots + (merge ? maxDegree : 0));
}

/** Loop trips of prune_sort for one vertex (it runs in one dispatch, so it must fit the loop budget). */
function sortTrips(r: number, slots: number, cap: number, merge: boolean, distTrips: number): number {
  return (merge ? (r * (r + 1)) / 2 : 0) + slots * (distTrips + 2 * cap + 2);
}

/**
 * Prunes vertices [start, start + count) of `graph` over `vectors` on the GPU (submits its own work).
 * `extra` is [rows x slots] u32 candidate ids (row v - extraRow0 for vertex v).
 */
export async function prune(
  vectors: VectorBlocks,
  graph: GpuGraph,
  extra: GpuBuffer<"u32">,
  options: PruneOptions & Presorted<GpuBuffer<"f32">>,
): Promise<void> {
  const gpu = vectors.gpu;
  const n = graph.vertexCount, r = graph.maxDegree;
  if (vectors.rows !== n) {
    throw new ShapeError(`prune: ${vectors.rows} vectors for a graph of ${n} vertices`);
  }
  const slots = extra.shape.length === 2 ? extra.cols : 0;
  const start = options.start ?? 0, count = options.count ?? n - start, row0 = options.extraRow0 ?? 0;
  if (count <= 0) return;
  const dists = options.extraDistances;
  const alpha2 = occlusionScale(options.alpha);
  if (dists && (options.merge || dists.length !== extra.length)) {
    throw new ShapeError(
      `prune: presorted candidate distances need merge off and extra's ${extra.length} entries`,
    );
  }
  if (extra.shape.length !== 2 || start < row0 || start + count - row0 > extra.rows || start + count > n) {
    throw new ShapeError(
      `prune: candidates ${fmtShape(extra.shape)} (first vertex ${row0}) do not cover vertices ` +
        `${start}..${start + count - 1} of ${n}`,
    );
  }
  const c = capacity(r, slots, options.merge);
  const budget = loopBudget(gpu);
  const trips = distanceTrips(vectors.layout.count, vectors.layout.w4);
  if (sortTrips(r, slots, c, options.merge, trips) > budget) {
    throw new UserError(
      `prune: ${slots} candidates per vertex over ${vectors.dims}-d vectors exceed what this adapter runs in ` +
        `one dispatch; use fewer candidates or a smaller maximum degree`,
    );
  }
  // Occlusion checks per vertex per dispatch: each costs a distance's loop trips plus the loop's own.
  // A dispatch may exceed the cap by one candidate's checks (at most R).
  // With the candidate's row in registers (CW4), a check may also load that row once: count it twice.
  const cw4 = registerWidth(vectors);
  const perCheck = (cw4 > 0 ? 2 : 1) * trips + 2;
  const checkCap = options.checkCap ?? Math.max(r, Math.floor((budget - 4 * r - 64) / perCheck) - r);
  const defines = { WG, R: r, C: c, CW4: cw4 };
  const sortPipe = await FANNG.pipeline(gpu, "prune_sort", defines);
  const occludePipe = await FANNG.pipeline(gpu, "prune_occlude", defines);
  // Scratch: 2C + 2R + 4 words per vertex; as many vertices per dispatch as fit one binding.
  const words = 2 * c + 2 * r + 4;
  const per = Math.max(1, Math.min(count, Math.floor(gpu.maxBindingBytes / (4 * words))));
  using scratch = GpuBuffer.zeros(gpu, "u32", [per * words], "fanng prune scratch");
  const blocks = blockBindings(vectors);
  const { w4, count: nblocks } = vectors.layout;
  for (let s0 = start; s0 < start + count; s0 += per) {
    const m = Math.min(per, start + count - s0);
    // Bind only the candidate rows of this dispatch (from an aligned row a), so `extra` may exceed a binding.
    const a = slots ? alignedRow(gpu, s0 - row0, slots) : 0;
    const rows = slots ? s0 - row0 + m - a : extra.rows;
    const extraRows = extra.binding(a * slots, rows * slots);
    const groups = grid1d(gpu, Math.ceil(m / WG));
    const io = {
      ...blocks,
      p_extra: extraRows,
      p_adj: graph.adjacency,
      p_len: graph.lengths,
      p_deg: graph.degrees,
      p_scratch: scratch,
    };
    await runRounds(gpu, "fanng.prune", (batch, round, active) => {
      if (round === 0) {
        const pp = {
          n,
          count: m,
          v0: s0,
          w4,
          nblocks,
          extra_slots: slots,
          merge: options.merge ? 1 : 0,
          only_with_extra: options.onlyWithExtra ? 1 : 0,
          extra_row0: row0 + a,
          presorted: dists ? 1 : 0,
        };
        // The presorted distances, or any buffer when unused.
        const distRows = dists ? dists.binding(a * slots, rows * slots) : extraRows;
        batch.run(sortPipe, { pp, ...io, p_extra_dist: distRows }, groups, "fanng.prune_sort");
      }
      const pp = { count: m, v0: s0, w4, nblocks, check_cap: checkCap, round, alpha2 };
      batch.run(occludePipe, { pp, ...io, p_active: active }, groups, "fanng.prune_occlude");
      return Promise.resolve();
    }, { perSubmit: 2 });
  }
}

/** Plain-TS reference of {@link prune}: updates `graph` in place. `extra` is [rows x slots]. */
export function pruneRef(
  data: HostMatrix,
  graph: PaddedGraph,
  extra: Uint32Array,
  slots: number,
  options: PruneOptions & Presorted<Float32Array>,
): void {
  const n = graph.vertexCount, r = graph.maxDegree;
  const cap = capacity(r, slots, options.merge);
  const alpha2 = occlusionScale(options.alpha);
  const start = options.start ?? 0, count = options.count ?? n - start, row0 = options.extraRow0 ?? 0;
  for (let v = start; v < start + count; v++) {
    const cd: number[] = [], cv: number[] = [], old: boolean[] = [];
    const insert = (d: number, c: number, isOld: boolean) => {
      if (cd.length >= cap) return;
      let i = cd.length;
      while (i > 0 && before(d, c, cd[i - 1], cv[i - 1])) i--;
      cd.splice(i, 0, d);
      cv.splice(i, 0, c);
      old.splice(i, 0, isOld);
    };
    if (options.merge) {
      for (let e = 0; e < Math.min(graph.degrees[v], r); e++) {
        insert(graph.lengths[v * r + e], graph.adjacency[v * r + e], true);
      }
    }
    const nOld = cd.length;
    for (let j = 0; j < slots; j++) {
      const row = (v - row0) * slots;
      if (options.extraDistances) {
        const c = (extra[row + j] & 0x7fffffff) >>> 0;
        if (c >= n || c === v || cd.length >= cap) continue;
        cd.push(options.extraDistances[row + j]);
        cv.push(c);
        old.push(false);
        continue;
      }
      const c = extra[row + j];
      if (c >= n || c === v || cv.includes(c)) continue;
      insert(sqDistRows(data, v, data, c), c, false);
    }
    if (options.onlyWithExtra && cd.length === nOld) continue;
    const kd: number[] = [], kv: number[] = [], kold: boolean[] = [];
    for (let i = 0; i < cd.length && kv.length < r; i++) {
      let occluded = false;
      for (let u = 0; u < kv.length; u++) {
        if (!(kd[u] < cd[i])) break;
        if (old[i] && kold[u]) continue;
        if (Math.fround(alpha2 * sqDistRows(data, kv[u], data, cv[i])) < cd[i]) {
          occluded = true;
          break;
        }
      }
      if (!occluded) {
        kd.push(cd[i]);
        kv.push(cv[i]);
        kold.push(old[i]);
      }
    }
    for (let e = 0; e < r; e++) {
      graph.adjacency[v * r + e] = e < kv.length ? kv[e] : NO_VERTEX;
      graph.lengths[v * r + e] = e < kv.length ? kd[e] : Infinity;
    }
    graph.degrees[v] = kv.length;
  }
}
