// fanng.wgsl: the FANNG graph build kernels: occlusion pruning, greedy walks (traverse-add) and the kNN
// lists (merge, NN-descent join, list heads). Driven by lib/ann/prune.ts (prune_sort, prune_occlude),
// lib/ann/traverse_add.ts (greedy) and lib/ann/knn_graph.ts (knn_merge, nnd_join, list_head); the plain-TS
// references with the same semantics are pruneRef, greedyRef, knnMergeRef and nnDescentIterationRef. The
// graph search is kernels/fanng_search.wgsl.
//
// Vectors: column blocks of vec4 (kernels/fanng_layout.wgsl, lib/ann/vectors.ts). Bindings 1..4 hold the
// base blocks b0..b3, bindings 5..8 the query blocks q0..q3 (the kernels here bind the base again). Blocks past nblocks are bound to block 0
// and never read. dist(q, v) = sum over blocks of (q - v)^2 in f32 (vec4 accumulators, 8 vec4 per loop trip).
// Graph: adjacency [N x R] u32 (NO_VERTEX = 0xFFFFFFFF past the degree), lengths [N x R] f32, degrees [N]
// u32; each row sorted by (length, id). Every list here orders by (distance, id).
//
// Work split and memory: one walk (greedy) or one vertex (prune, the kNN lists) per invocation. Its lists
// (prune: candidates and kept edges) live in a scratch storage buffer, interleaved: slot s of invocation i is scratch[s * stride + i]
// (stride = invocations in the dispatch), so neighbouring invocations touch neighbouring words (coalesced on
// GPUs). Why not private arrays: Mesa's llvmpipe lowers dynamically indexed private arrays to branch ladders
// whose cost grows with the array (a 1,024-slot array measured 70x slower per access than this scratch
// layout). Why not workgroup memory: nothing is shared between invocations (no barriers needed).
//
// Bounded work per dispatch (resumable kernels): llvmpipe (Mesa's gallivm) silently ends every loop once an
// invocation has taken 65,535 loop back-edges in total, which would truncate long walks without a trace.
// So greedy and prune_occlude do at most a host-chosen amount of work per dispatch (max_hops, check_cap:
// sized from the loop trips of one step), keep their state in scratch, count the
// invocations that are not finished in active[round] (atomic), and the host dispatches further rounds until
// that count is 0. On other adapters the caps are effectively unlimited and one round suffices.
//
// Entry point prune_sort: for vertices v = v0 .. v0 + count - 1, candidates = (merge: v's current row,
//   marked OLD) + extra[v - extra_row0, 0 .. extra_slots) (ids >= n, v itself and repeats skipped; distances
//   computed), sorted by (d, id) into scratch. only_with_extra: vertices without a new candidate are marked
//   done (left untouched).
//   presorted: the candidates are extra's row with their distances (binding 14, f32, same shape), already
//   sorted by (d, id), distinct and without v (kNN lists; the high bit of ids is ignored): loaded as they are.
// Entry point prune_occlude: walks the sorted candidates; c is kept unless a kept u with d(v,u) < d(v,c) has
//   d(u,c) < d(v,c) (the occlusion rule), up to R kept; pairs of two OLD candidates are not re-checked (the
//   old row already obeys the rule). At most check_cap occlusion checks per dispatch plus those of one
//   candidate (resumes between candidates); writes the row once all candidates are walked or R are kept.
//   Both: 0 params uniform PruneParams   1..8 blocks   9 extra read u32 [rows x extra_slots]
//   10 adj rw u32 [N x R]   11 lengths rw f32 [N x R]   12 degrees rw u32 [N]
//   13 scratch rw u32 [(2C + 2R + 4) x count]   14 prune_sort: extra distances read f32 (presorted) or any
//   buffer; prune_occlude: active rw atomic u32 [rounds]
//   C >= R + extra_slots when merging, >= extra_slots otherwise.
// Entry point greedy: walk p = (s, t): from u = s, move to the neighbour of u closest to t (by (d, id))
//   while it is closer than u; stop[p] = NO_VERTEX once u reaches t, else the vertex where it got stuck.
//   Never cycles: (d, id) strictly decreases. After max_hops moves in one dispatch the walk saves u in
//   pairs[2p], sets stop[p] = UNFINISHED and continues in the next round (first = 0: only UNFINISHED walks).
//   0 params uniform GreedyParams   1..8 blocks   9 adj read   10 degrees read   11 pairs rw u32 [P x 2]
//   12 stop rw u32 [P]   13 active rw atomic u32 [rounds]
// Dispatch: 1-D, WG invocations per workgroup, workgroups spill into y (linear_invocation, from the prelude).
// Interface: lib/gpu/specs/fanng.ts (uniform structs and binding names; its prelude is prepended).
// Defines: WG; R (max degree); C (prune candidate slots); CW4 (prune_occlude: the row width in vec4 when each
//   invocation holds the candidate's row in registers, else 0). Entry points that do not use a define still
//   need it (set it to 1; CW4 to 0).

const NO_VERTEX = 0xffffffffu;
const UNFINISHED = 0xfffffffeu;
const OLD = 0x80000000u;

@group(0) @binding(1) var<storage, read> b0: array<vec4f>;
@group(0) @binding(2) var<storage, read> b1: array<vec4f>;
@group(0) @binding(3) var<storage, read> b2: array<vec4f>;
@group(0) @binding(4) var<storage, read> b3: array<vec4f>;
@group(0) @binding(5) var<storage, read> q0: array<vec4f>;
@group(0) @binding(6) var<storage, read> q1: array<vec4f>;
@group(0) @binding(7) var<storage, read> q2: array<vec4f>;
@group(0) @binding(8) var<storage, read> q3: array<vec4f>;

var<private> g_w4: u32;
var<private> g_nblocks: u32;
var<private> g_lane: u32;
var<private> g_stride: u32;

// +Inf through a variable: a constant bitcast to Inf is a shader-creation error in Tint (Chromium, Dawn).
var<private> INF_BITS: u32 = 0x7f800000u;
fn inf() -> f32 { return bitcast<f32>(INF_BITS); }

// (d1, v1) orders before (d2, v2).
fn before(d1: f32, v1: u32, d2: f32, v2: u32) -> bool { return d1 < d2 || (d1 == d2 && v1 < v2); }

// Scratch word of slot s of this invocation.
fn slot(s: u32) -> u32 { return s * g_stride + g_lane; }

// Partial squared distances over one block (q rows from qb, v rows from bb); the four copies differ only
// in the bindings they read (WGSL cannot index bindings).
fn part0(iq: u32, iv: u32, w: u32) -> vec4f {
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  for (; j + 8u <= w; j += 8u) {
    { let d = q0[iq + j + 0u] - b0[iv + j + 0u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 1u] - b0[iv + j + 1u]; a1 = fma(d, d, a1); }
    { let d = q0[iq + j + 2u] - b0[iv + j + 2u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 3u] - b0[iv + j + 3u]; a1 = fma(d, d, a1); }
    { let d = q0[iq + j + 4u] - b0[iv + j + 4u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 5u] - b0[iv + j + 5u]; a1 = fma(d, d, a1); }
    { let d = q0[iq + j + 6u] - b0[iv + j + 6u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 7u] - b0[iv + j + 7u]; a1 = fma(d, d, a1); }
  }
  for (; j < w; j++) { let d = q0[iq + j] - b0[iv + j]; a0 = fma(d, d, a0); }
  return a0 + a1;
}

fn part1(iq: u32, iv: u32, w: u32) -> vec4f {
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  for (; j + 8u <= w; j += 8u) {
    { let d = q1[iq + j + 0u] - b1[iv + j + 0u]; a0 = fma(d, d, a0); }
    { let d = q1[iq + j + 1u] - b1[iv + j + 1u]; a1 = fma(d, d, a1); }
    { let d = q1[iq + j + 2u] - b1[iv + j + 2u]; a0 = fma(d, d, a0); }
    { let d = q1[iq + j + 3u] - b1[iv + j + 3u]; a1 = fma(d, d, a1); }
    { let d = q1[iq + j + 4u] - b1[iv + j + 4u]; a0 = fma(d, d, a0); }
    { let d = q1[iq + j + 5u] - b1[iv + j + 5u]; a1 = fma(d, d, a1); }
    { let d = q1[iq + j + 6u] - b1[iv + j + 6u]; a0 = fma(d, d, a0); }
    { let d = q1[iq + j + 7u] - b1[iv + j + 7u]; a1 = fma(d, d, a1); }
  }
  for (; j < w; j++) { let d = q1[iq + j] - b1[iv + j]; a0 = fma(d, d, a0); }
  return a0 + a1;
}

fn part2(iq: u32, iv: u32, w: u32) -> vec4f {
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  for (; j + 8u <= w; j += 8u) {
    { let d = q2[iq + j + 0u] - b2[iv + j + 0u]; a0 = fma(d, d, a0); }
    { let d = q2[iq + j + 1u] - b2[iv + j + 1u]; a1 = fma(d, d, a1); }
    { let d = q2[iq + j + 2u] - b2[iv + j + 2u]; a0 = fma(d, d, a0); }
    { let d = q2[iq + j + 3u] - b2[iv + j + 3u]; a1 = fma(d, d, a1); }
    { let d = q2[iq + j + 4u] - b2[iv + j + 4u]; a0 = fma(d, d, a0); }
    { let d = q2[iq + j + 5u] - b2[iv + j + 5u]; a1 = fma(d, d, a1); }
    { let d = q2[iq + j + 6u] - b2[iv + j + 6u]; a0 = fma(d, d, a0); }
    { let d = q2[iq + j + 7u] - b2[iv + j + 7u]; a1 = fma(d, d, a1); }
  }
  for (; j < w; j++) { let d = q2[iq + j] - b2[iv + j]; a0 = fma(d, d, a0); }
  return a0 + a1;
}

fn part3(iq: u32, iv: u32, w: u32) -> vec4f {
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  for (; j + 8u <= w; j += 8u) {
    { let d = q3[iq + j + 0u] - b3[iv + j + 0u]; a0 = fma(d, d, a0); }
    { let d = q3[iq + j + 1u] - b3[iv + j + 1u]; a1 = fma(d, d, a1); }
    { let d = q3[iq + j + 2u] - b3[iv + j + 2u]; a0 = fma(d, d, a0); }
    { let d = q3[iq + j + 3u] - b3[iv + j + 3u]; a1 = fma(d, d, a1); }
    { let d = q3[iq + j + 4u] - b3[iv + j + 4u]; a0 = fma(d, d, a0); }
    { let d = q3[iq + j + 5u] - b3[iv + j + 5u]; a1 = fma(d, d, a1); }
    { let d = q3[iq + j + 6u] - b3[iv + j + 6u]; a0 = fma(d, d, a0); }
    { let d = q3[iq + j + 7u] - b3[iv + j + 7u]; a1 = fma(d, d, a1); }
  }
  for (; j < w; j++) { let d = q3[iq + j] - b3[iv + j]; a0 = fma(d, d, a0); }
  return a0 + a1;
}

// Squared distance between query row q and base row v.
fn dist(q: u32, v: u32) -> f32 {
  let w = g_w4;
  let iq = q * w;
  let iv = v * w;
  var a = part0(iq, iv, w);
  if (g_nblocks > 1u) { a += part1(iq, iv, w); }
  if (g_nblocks > 2u) { a += part2(iq, iv, w); }
  if (g_nblocks > 3u) { a += part3(iq, iv, w); }
  return (a.x + a.y) + (a.z + a.w);
}

// CW4 > 0: the vectors are one column block of CW4 vec4s, known when compiling. prune_occlude then holds
// the candidate's row in registers (crow_load, at its first occlusion check), so each check reads only the
// kept edge's row: half the scattered loads, and a loop the compiler unrolls.
const CREG = max(CW4, 1);
var<private> g_crow: array<vec4f, CREG>;

fn crow_load(c: u32) {
  for (var j = 0u; j < u32(CW4); j++) { g_crow[j] = b0[c * u32(CW4) + j]; }
}

// dist(u, c) for the c that crow_load took: part0's arithmetic, operation for operation ((u - c)^2 = (c - u)^2
// exactly), so the result does not depend on the path.
fn dist_crow(u: u32) -> f32 {
  let iq = u * u32(CW4);
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  for (; j + 8u <= u32(CW4); j += 8u) {
    { let d = q0[iq + j + 0u] - g_crow[j + 0u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 1u] - g_crow[j + 1u]; a1 = fma(d, d, a1); }
    { let d = q0[iq + j + 2u] - g_crow[j + 2u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 3u] - g_crow[j + 3u]; a1 = fma(d, d, a1); }
    { let d = q0[iq + j + 4u] - g_crow[j + 4u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 5u] - g_crow[j + 5u]; a1 = fma(d, d, a1); }
    { let d = q0[iq + j + 6u] - g_crow[j + 6u]; a0 = fma(d, d, a0); }
    { let d = q0[iq + j + 7u] - g_crow[j + 7u]; a1 = fma(d, d, a1); }
  }
  for (; j < u32(CW4); j++) { let d = q0[iq + j] - g_crow[j]; a0 = fma(d, d, a0); }
  let a = a0 + a1;
  return (a.x + a.y) + (a.z + a.w);
}

// ---------------------------------------------------------------------------------------------------
// prune_sort, prune_occlude

// PruneParams (the prelude, from lib/gpu/specs/fanng.ts): n, count, v0, w4, nblocks, extra_slots, merge, only_with_extra, extra_row0, check_cap, round, presorted, alpha2.

@group(0) @binding(0) var<uniform> pp: PruneParams;
@group(0) @binding(9) var<storage, read> p_extra: array<u32>;
@group(0) @binding(10) var<storage, read_write> p_adj: array<u32>;
@group(0) @binding(11) var<storage, read_write> p_len: array<f32>;
@group(0) @binding(12) var<storage, read_write> p_deg: array<u32>;
@group(0) @binding(13) var<storage, read_write> p_scratch: array<u32>;
@group(0) @binding(14) var<storage, read_write> p_active: array<atomic<u32>>;
@group(0) @binding(14) var<storage, read> p_extra_dist: array<f32>;

// Prune scratch: candidate distances [0, C), candidate ids | OLD [C, 2C), kept distances [2C, 2C + R),
// kept ids | OLD [2C + R, 2C + 2R), then the state: candidate count, next candidate, kept count, done.
const P_CD = 0u;
const P_CV = u32(C);
const P_KD = 2u * u32(C);
const P_KV = 2u * u32(C) + u32(R);
const P_ST = 2u * u32(C) + 2u * u32(R);

fn cand_d(i: u32) -> f32 { return bitcast<f32>(p_scratch[slot(P_CD + i)]); }
fn cand_v(i: u32) -> u32 { return p_scratch[slot(P_CV + i)]; }
fn set_cand(i: u32, d: f32, v: u32) {
  p_scratch[slot(P_CD + i)] = bitcast<u32>(d);
  p_scratch[slot(P_CV + i)] = v;
}
fn kept_d(i: u32) -> f32 { return bitcast<f32>(p_scratch[slot(P_KD + i)]); }
fn kept_v(i: u32) -> u32 { return p_scratch[slot(P_KV + i)]; }

// Inserts (d, v) into the sorted candidate list of length n; returns the new length.
fn cand_insert(n: u32, d: f32, v: u32) -> u32 {
  if (n >= C) { return n; }
  var i = n;
  while (i > 0u) {
    let pd = cand_d(i - 1u);
    let pv = cand_v(i - 1u);
    if (!before(d, v & ~OLD, pd, pv & ~OLD)) { break; }
    set_cand(i, pd, pv);
    i--;
  }
  set_cand(i, d, v);
  return n + 1u;
}

fn prune_setup(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  let i = linear_invocation(wid, nwg, lid);
  g_w4 = pp.w4;
  g_nblocks = pp.nblocks;
  g_lane = i;
  g_stride = pp.count;
  return i;
}

@compute @workgroup_size(WG)
fn prune_sort(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let i = prune_setup(wid, nwg, lid);
  if (i >= pp.count) { return; }
  let v = pp.v0 + i;
  var n = 0u;
  if (pp.presorted != 0u) {
    // Candidates that are already sorted by (d, id) and distinct, with their distances (kNN lists): load.
    let row = (v - pp.extra_row0) * pp.extra_slots;
    for (var j = 0u; j < pp.extra_slots && n < C; j++) {
      let c = p_extra[row + j] & ~OLD;
      if (c >= pp.n || c == v) { continue; }
      set_cand(n, p_extra_dist[row + j], c);
      n++;
    }
    p_scratch[slot(P_ST)] = n;
    p_scratch[slot(P_ST + 1u)] = 0u;
    p_scratch[slot(P_ST + 2u)] = 0u;
    p_scratch[slot(P_ST + 3u)] = 0u;
    return;
  }
  if (pp.merge != 0u) {
    let deg = min(p_deg[v], R);
    for (var e = 0u; e < deg; e++) {
      n = cand_insert(n, p_len[v * R + e], p_adj[v * R + e] | OLD);
    }
  }
  let n_old = n;
  for (var j = 0u; j < pp.extra_slots; j++) {
    let c = p_extra[(v - pp.extra_row0) * pp.extra_slots + j];
    if (c >= pp.n || c == v) { continue; }
    var seen = false;
    for (var k = 0u; k < n; k++) {
      if ((cand_v(k) & ~OLD) == c) { seen = true; break; }
    }
    if (seen) { continue; }
    n = cand_insert(n, dist(v, c), c);
  }
  p_scratch[slot(P_ST)] = n;
  p_scratch[slot(P_ST + 1u)] = 0u;
  p_scratch[slot(P_ST + 2u)] = 0u;
  p_scratch[slot(P_ST + 3u)] = select(0u, 1u, pp.only_with_extra != 0u && n == n_old);
}

@compute @workgroup_size(WG)
fn prune_occlude(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let i = prune_setup(wid, nwg, lid);
  _ = arrayLength(&p_extra); // keeps binding 9 in the layout, so both prune entry points bind alike
  if (i >= pp.count) { return; }
  if (p_scratch[slot(P_ST + 3u)] != 0u) { return; }
  let v = pp.v0 + i;
  let n = p_scratch[slot(P_ST)];
  var k = p_scratch[slot(P_ST + 1u)];
  var kept = p_scratch[slot(P_ST + 2u)];
  var checks_left = pp.check_cap;
  var yielded = false;
  var progressed = false;
  loop {
    if (k >= n || kept >= R) { break; }
    // A candidate takes at most `kept` checks; stop between candidates when they may not fit (after at
    // least one candidate, so every dispatch makes progress).
    if (checks_left < kept && progressed) { yielded = true; break; }
    progressed = true;
    let c = cand_v(k);
    let dc = cand_d(k);
    // Kept edges are sorted: only those shorter than d(v,c) can occlude it.
    var occluded = false;
    var open = true;
    var loaded = false;
    for (var u = 0u; open && u < kept; u++) {
      if (!(kept_d(u) < dc)) {
        open = false;
      } else {
        let ku = kept_v(u);
        if ((c & ku & OLD) == 0u) {
          checks_left = max(checks_left, 1u) - 1u;
          var duc: f32;
          if (CW4 > 0) {
            if (!loaded) {
              crow_load(c & ~OLD);
              loaded = true;
            }
            duc = dist_crow(ku & ~OLD);
          } else {
            duc = dist(ku & ~OLD, c & ~OLD);
          }
          if (pp.alpha2 * duc < dc) {
            occluded = true;
            open = false;
          }
        }
      }
    }
    if (!occluded) {
      p_scratch[slot(P_KD + kept)] = bitcast<u32>(dc);
      p_scratch[slot(P_KV + kept)] = c;
      kept++;
    }
    k++;
  }
  if (yielded) {
    p_scratch[slot(P_ST + 1u)] = k;
    p_scratch[slot(P_ST + 2u)] = kept;
    atomicAdd(&p_active[pp.round], 1u);
    return;
  }
  for (var e = 0u; e < kept; e++) {
    p_adj[v * R + e] = kept_v(e) & ~OLD;
    p_len[v * R + e] = kept_d(e);
  }
  for (var e = kept; e < R; e++) {
    p_adj[v * R + e] = NO_VERTEX;
    p_len[v * R + e] = inf();
  }
  p_deg[v] = kept;
  p_scratch[slot(P_ST + 3u)] = 1u;
}

// ---------------------------------------------------------------------------------------------------
// knn_merge, nnd_join, list_head: the kNN candidate lists of the build (lib/ann/knn_graph.ts)

// MergeParams (the prelude, from lib/gpu/specs/fanng.ts): n, count, q0, row0, w4, nblocks, width, cols, j0, j1, base_rows.

// JoinParams (the prelude, from lib/gpu/specs/fanng.ts): n, count, v0, w4, nblocks, width, fwd, rev_width, per_hub, rev_offer, hub0, hub1, first.

// HeadParams (the prelude, from lib/gpu/specs/fanng.ts): count, width, cols, strip.

@group(0) @binding(0) var<uniform> mp: MergeParams;
@group(0) @binding(0) var<uniform> jp: JoinParams;
@group(0) @binding(0) var<uniform> hp: HeadParams;
@group(0) @binding(9) var<storage, read> m_res: array<u32>;
@group(0) @binding(10) var<storage, read> m_map: array<u32>;
@group(0) @binding(9) var<storage, read> j_heads: array<u32>;
@group(0) @binding(10) var<storage, read> j_rev: array<u32>;
@group(0) @binding(13) var<storage, read_write> j_updates: array<atomic<u32>>;
@group(0) @binding(14) var<storage, read> j_block: array<u32>;
@group(0) @binding(1) var<storage, read> h_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> h_out: array<u32>;
@group(0) @binding(11) var<storage, read_write> l_ids: array<u32>;
@group(0) @binding(12) var<storage, read_write> l_dists: array<f32>;

const NEW = 0x80000000u;

// Inserts (d, c) (c may carry NEW) into the sorted list at l_ids/l_dists[o .. o + width) unless the list
// holds c already or (d, c) does not order before its last entry; returns whether it was inserted.
fn list_insert(o: u32, width: u32, d: f32, c: u32) -> bool {
  let id = c & ~NEW;
  let last = width - 1u;
  if (!before(d, id, l_dists[o + last], l_ids[o + last] & ~NEW)) { return false; }
  var p = width;
  for (var j = 0u; j < width; j++) {
    let e = l_ids[o + j] & ~NEW;
    if (e == id) { return false; }
    if (p == width && before(d, id, l_dists[o + j], e)) { p = j; }
  }
  for (var j = last; j > p; j--) {
    l_ids[o + j] = l_ids[o + j - 1u];
    l_dists[o + j] = l_dists[o + j - 1u];
  }
  l_ids[o + p] = c;
  l_dists[o + p] = d;
  return true;
}

@compute @workgroup_size(WG)
fn knn_merge(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i >= mp.count) { return; }
  g_w4 = mp.w4;
  g_nblocks = mp.nblocks;
  let v = mp.q0 + i;
  let o = (v - mp.row0) * mp.width;
  for (var j = mp.j0; j < mp.j1; j++) {
    let l = m_res[i * mp.cols + j];
    if (l >= mp.base_rows) { continue; }
    let c = m_map[l];
    if (c >= mp.n || c == v) { continue; }
    list_insert(o, mp.width, dist(v, c), c | NEW);
  }
}

@compute @workgroup_size(WG)
fn nnd_join(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i >= jp.count) { return; }
  g_w4 = jp.w4;
  g_nblocks = jp.nblocks;
  let v = jp.v0 + i;
  let width = jp.width;
  let o = i * width;
  if (jp.first != 0u) {
    for (var j = 0u; j < width; j++) {
      let e = l_ids[o + j];
      l_ids[o + j] = select(e & ~NEW, e, e == NO_VERTEX);
    }
  }
  // Vertices of v's partition block were all compared with v already (lib/ann/candidates.ts): skip them.
  let block_lo = j_block[2u * i];
  let block_hi = j_block[2u * i + 1u];
  var updates = 0u;
  for (var h = jp.hub0; h < jp.hub1; h++) {
    var e: u32;
    if (h < jp.fwd) {
      e = j_heads[v * jp.per_hub + h];
    } else {
      e = j_rev[v * jp.rev_width + (h - jp.fwd)];
    }
    let u = e & ~NEW;
    if (u >= jp.n) { continue; }
    let hub_new = (e & NEW) != 0u;
    // The hub's head entries, then its reverse entries.
    for (var j = 0u; j < jp.per_hub + jp.rev_offer; j++) {
      var f: u32;
      if (j < jp.per_hub) {
        f = j_heads[u * jp.per_hub + j];
      } else {
        f = j_rev[u * jp.rev_width + (j - jp.per_hub)];
      }
      let w = f & ~NEW;
      if (w >= jp.n || w == v || (!hub_new && (f & NEW) == 0u) || (w >= block_lo && w < block_hi)) { continue; }
      if (list_insert(o, width, dist(v, w), w | NEW)) { updates++; }
    }
  }
  if (updates > 0u) { atomicAdd(&j_updates[0], updates); }
}

@compute @workgroup_size(WG)
fn list_head(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i >= hp.count) { return; }
  for (var j = 0u; j < hp.cols; j++) {
    let e = h_in[i * hp.width + j];
    h_out[i * hp.cols + j] = select(e, select(e & ~NEW, e, e == NO_VERTEX), hp.strip != 0u);
  }
}

// ---------------------------------------------------------------------------------------------------
// greedy (traverse-add) reads the graph

@group(0) @binding(9) var<storage, read> adj: array<u32>;
@group(0) @binding(10) var<storage, read> degrees: array<u32>;

// GreedyParams (the prelude, from lib/gpu/specs/fanng.ts): pairs, n, w4, nblocks, max_hops, first, round.

@group(0) @binding(0) var<uniform> gp: GreedyParams;
@group(0) @binding(11) var<storage, read_write> g_pairs: array<u32>;
@group(0) @binding(12) var<storage, read_write> g_stop: array<u32>;
@group(0) @binding(13) var<storage, read_write> g_active: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn greedy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let p = linear_invocation(wid, nwg, lid);
  if (p >= gp.pairs) { return; }
  if (gp.first == 0u && g_stop[p] != UNFINISHED) { return; }
  g_w4 = gp.w4;
  g_nblocks = gp.nblocks;
  let s = g_pairs[2u * p];
  let t = g_pairs[2u * p + 1u];
  if (s >= gp.n || t >= gp.n) {
    g_stop[p] = NO_VERTEX;
    return;
  }
  var u = s;
  var du = dist(t, u);
  var stuck = false;
  for (var hop = 0u; hop < gp.max_hops && u != t && !stuck; hop++) {
    var best = u;
    var bd = du;
    let deg = min(degrees[u], R);
    for (var e = 0u; e < deg; e++) {
      let c = adj[u * R + e];
      let d = dist(t, c);
      if (before(d, c, bd, best)) {
        best = c;
        bd = d;
      }
    }
    if (best == u) {
      stuck = true;
    } else {
      u = best;
      du = bd;
    }
  }
  if (u == t) {
    g_stop[p] = NO_VERTEX;
  } else if (stuck) {
    g_stop[p] = u;
  } else {
    g_pairs[2u * p] = u;
    g_stop[p] = UNFINISHED;
    atomicAdd(&g_active[gp.round], 1u);
  }
}
