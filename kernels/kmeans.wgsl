// kmeans.wgsl: k-means on the GPU with its loop on the GPU: k-means++ seeding in rounds of D^2 samples,
// Lloyd iterations (update, assignment, inertia, stable grouping by cluster) and the convergence test, with
// several restarts side by side; the host reads a few status words per batch of iterations.
// Driven by lib/eval/kmeans.ts; plain-TS reference lib/eval/kmeans_ref.ts (the same steps in the same
// f32 order). The assignment itself (nearest centroid) is kernels/eval_tiles.wgsl's `nearest`.
//
// Layouts (R = restarts, N = points, K = clusters per restart, NB = ceil(N / SUM_BLOCK) point blocks,
// DIM4 = vec4s per padded row; u32 unless noted):
//   data       f32 [N x DIM4*4]        the points, rows zero padded (lib/ops/distance.ts encodePrepareRows),
//                                      bound in row blocks (block_start, block_rows) where a kernel reads it
//   data_norms f32 [N]                 their squared norms (same row blocks)
//   cents      f32 [R*K x DIM4*4]      centroids, restart r's cluster c at row r*K + c (zero padded)
//   cent_norms f32 [R*K]
//   pairs      [R x N] (dist f32 bits, cluster): each point's nearest centroid (or, while seeding, its
//              distance to the nearest centre so far)
//   sums       f32 [R x NB]            block sums of the pairs' distances (SUM_BLOCK points each, in order)
//   prefix     f32 [R x NB]            their exclusive prefix sums; totals f32 [R] the restarts' totals
//   hist       [R x NGB x K]           points of grouping block b (GB points: NGB = ceil(N / GB) blocks) in
//                                      cluster c; after group_totals the exclusive prefix over blocks
//                                      (where block b's points of cluster c start)
//   counts     [R x K]                 cluster sizes; offsets [R x (K+1)] where each cluster starts in order
//   order      [R x N]                 each restart's points grouped by cluster, ascending within a cluster
//   prev       [R x N]                 the assignment of the previous iteration (to count moves)
//   status     [8 + 4R]: 0 state (0 running, 1 converged, 2 out of iterations, 3 empty clusters to refill
//              on the host), 1 iterations done; then per restart r: moved points at 8 + r, empty clusters
//              at 8 + R + r (both cleared by the host before each iteration), relocated at 8 + 2R + r (1:
//              an empty cluster was refilled before this iteration), previous inertia (f32 bits) at
//              8 + 3R + r.
//   uniforms   f32 [R x K]             the seeding draws, slot by slot (lib/eval/lloyd.ts)
//   picked     [R x K]                 the point each centre slot was seeded from
//
// Every entry point returns at once while status[0] != 0 (the loop has stopped), so a batch of iterations
// can be encoded ahead and the work after the stop costs nothing.
//
// Entry points (workgroups of WG; linear invocation = linear_invocation(wid, nwg, lid) unless
// said otherwise; restart r = wid.z where listed):
//   block_sums     one invocation per (block b, r = wid.z): sums[r][b] = sum of the block's distances.
//   prefix_sums    one invocation per restart, over blocks [lo, hi) (a window: llvmpipe ends loops after
//                  65,535 back-edges): prefix[r][b] and, at the last window, totals[r].
//   seed_pick      one invocation per (slot s < count, r = wid.z) of a seeding round that fills slots
//                  [first, first + count): the point whose cumulative distance first exceeds
//                  totals[r] * (s + u) / count (stratified D^2 sampling; uniformly by u when the total is
//                  0).
//   seed_copy      one invocation per (slot, vec4 d, r = wid.z) over a data block: copies picked rows and
//                  norms into the centroid slots and sets the picked points' distances to 0 (later rounds
//                  never pick them again).
//   seed_min       one invocation per point of the data block, for every restart (the point is loaded once):
//                  pairs = the nearer of its current pair and the new centres [first, first + count) (few
//                  centres per round; many take eval_tiles' `nearest` instead).
//   group_count    one invocation per (block b, r = wid.z): hist[r][b][c] += its points of cluster c; moves
//                  against prev (added to status), prev = the new assignment.
//   group_totals   one invocation per (cluster c, r = wid.z): counts[r][c] and hist's prefix over blocks;
//                  empty clusters are added to status.
//   status         one invocation: the convergence test of this iteration (see lib/eval/lloyd.ts).
//   group_offsets  one invocation per restart over clusters [lo, hi) (a window): offsets[r][c].
//   group_scatter  one invocation per (block b, r = wid.z): order[r][offsets[c] + hist[r][b][c]++] = point.
//   update         one invocation per (r, c, d) of the centroids: the mean of cluster c's members in
//                  `order` order (f32, summed over data blocks and member windows: `first` starts the sums
//                  in `sums_c`, `last` divides and writes the centroid; an empty cluster keeps its centroid).
//   cent_norms     one invocation per centroid: its squared norm.
// Defines: WG, DIM4, SUM_BLOCK.

// The prelude (lib/gpu/spec.ts) declares Params (fields: lib/gpu/specs/kmeans.ts) and the helpers.

const NONE = 0xffffffffu;
const INF = 0x7f800000u;
const S_STATE = 0u;
const S_ITERS = 1u;
const S_RESTART = 8u;  // per-restart words: see the status layout above

fn s_moved(r: u32) -> u32 { return S_RESTART + r; }
fn s_empty(r: u32) -> u32 { return S_RESTART + p.restarts + r; }
fn s_reloc(r: u32) -> u32 { return S_RESTART + 2u * p.restarts + r; }
fn s_inertia(r: u32) -> u32 { return S_RESTART + 3u * p.restarts + r; }

@group(0) @binding(0) var<uniform> p: Params;

// ---------------------------------------------------------------------------------------------------
// Sums over point blocks (seeding's sampling weights, the inertia)

@group(0) @binding(1) var<storage, read> bs_status: array<u32>;
@group(0) @binding(2) var<storage, read> bs_pairs: array<vec2u>;
@group(0) @binding(3) var<storage, read_write> bs_sums: array<f32>;

@compute @workgroup_size(WG)
fn block_sums(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  if (bs_status[S_STATE] != 0u) { return; }
  let b = linear_invocation(wid, nwg, lid);
  if (b >= p.nb) { return; }
  let r = wid.z;
  let end = min(p.n, (b + 1u) * SUM_BLOCK);
  var s = 0.0;
  for (var i = b * SUM_BLOCK; i < end; i++) { s = s + bitcast<f32>(bs_pairs[r * p.n + i].x); }
  bs_sums[r * p.nb + b] = s;
}

@group(0) @binding(1) var<storage, read> ps_status: array<u32>;
@group(0) @binding(2) var<storage, read> ps_sums: array<f32>;
@group(0) @binding(3) var<storage, read_write> ps_prefix: array<f32>;
@group(0) @binding(4) var<storage, read_write> ps_totals: array<f32>;

@compute @workgroup_size(WG)
fn prefix_sums(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  if (ps_status[S_STATE] != 0u) { return; }
  let r = linear_invocation(wid, nwg, lid);
  if (r >= p.restarts) { return; }
  // The running total enters through totals[r] (0 before the first window).
  var c = 0.0;
  if (p.lo > 0u) { c = ps_totals[r]; }
  for (var b = p.lo; b < p.hi; b++) {
    ps_prefix[r * p.nb + b] = c;
    c = c + ps_sums[r * p.nb + b];
  }
  ps_totals[r] = c;
}

// ---------------------------------------------------------------------------------------------------
// Seeding

@group(0) @binding(1) var<storage, read> sp_status: array<u32>;
@group(0) @binding(2) var<storage, read> sp_prefix: array<f32>;
@group(0) @binding(3) var<storage, read> sp_totals: array<f32>;
@group(0) @binding(4) var<storage, read> sp_uniforms: array<f32>;
@group(0) @binding(5) var<storage, read> sp_pairs: array<vec2u>;
@group(0) @binding(6) var<storage, read_write> sp_picked: array<u32>;

@compute @workgroup_size(WG)
fn seed_pick(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  if (sp_status[S_STATE] != 0u) { return; }
  let s = linear_invocation(wid, nwg, lid);
  if (s >= p.count) { return; }
  let r = wid.z;
  let slot = p.first + s;
  let u = sp_uniforms[r * p.k + slot];
  let total = sp_totals[r];
  var pick = 0u;
  if (!(total > 0.0)) {
    pick = min(p.n - 1u, u32(u * f32(p.n)));
  } else {
    let goal = total * ((f32(s) + u) / f32(p.count));
    // The last block whose prefix is <= goal, then the first point of it whose running sum exceeds
    // goal (or, past rounding, the block's last point with a positive distance).
    var lo = 0u;
    var hi = p.nb;
    while (hi - lo > 1u) {
      let mid = (lo + hi) / 2u;
      if (sp_prefix[r * p.nb + mid] <= goal) { lo = mid; } else { hi = mid; }
    }
    var c = sp_prefix[r * p.nb + lo];
    let end = min(p.n, (lo + 1u) * SUM_BLOCK);
    var last = NONE;
    pick = NONE;
    for (var i = lo * SUM_BLOCK; i < end; i++) {
      let d = bitcast<f32>(sp_pairs[r * p.n + i].x);
      if (d > 0.0) {
        c = c + d;
        last = i;
        if (c > goal) { pick = i; break; }
      }
    }
    if (pick == NONE) { pick = last; }
    if (pick == NONE) { pick = lo * SUM_BLOCK; }  // unreachable while the prefix is consistent
  }
  sp_picked[r * p.k + slot] = pick;
}

@group(0) @binding(1) var<storage, read> sc_status: array<u32>;
@group(0) @binding(2) var<storage, read> sc_picked: array<u32>;
@group(0) @binding(3) var<storage, read> sc_data: array<vec4f>;
@group(0) @binding(4) var<storage, read> sc_norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> sc_cents: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> sc_cent_norms: array<f32>;
@group(0) @binding(7) var<storage, read_write> sc_pairs: array<vec2u>;

@compute @workgroup_size(WG)
fn seed_copy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  if (sc_status[S_STATE] != 0u) { return; }
  let i = linear_invocation(wid, nwg, lid);
  if (i >= p.count * DIM4) { return; }
  let r = wid.z;
  let slot = p.first + i / DIM4;
  let d = i % DIM4;
  let pt = sc_picked[r * p.k + slot];
  if (pt < p.block_start || pt >= p.block_start + p.block_rows) { return; }
  sc_cents[(r * p.k + slot) * DIM4 + d] = sc_data[(pt - p.block_start) * DIM4 + d];
  if (d == 0u) {
    sc_cent_norms[r * p.k + slot] = sc_norms[pt - p.block_start];
    sc_pairs[r * p.n + pt].x = 0u;
  }
}

@group(0) @binding(1) var<storage, read> sm_status: array<u32>;
@group(0) @binding(2) var<storage, read> sm_data: array<vec4f>;
@group(0) @binding(3) var<storage, read> sm_norms: array<f32>;
@group(0) @binding(4) var<storage, read> sm_cents: array<vec4f>;
@group(0) @binding(5) var<storage, read> sm_cent_norms: array<f32>;
@group(0) @binding(6) var<storage, read_write> sm_pairs: array<vec2u>;

@compute @workgroup_size(WG)
fn seed_min(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  if (sm_status[S_STATE] != 0u) { return; }
  let row = linear_invocation(wid, nwg, lid);
  if (row >= p.block_rows) { return; }
  // The point once, against every restart's new centres.
  var x: array<vec4f, DIM4>;
  for (var d = 0u; d < DIM4; d++) { x[d] = sm_data[row * DIM4 + d]; }
  let xn = sm_norms[row];
  for (var r = 0u; r < p.restarts; r++) {
    let o = r * p.n + p.block_start + row;
    var best = sm_pairs[o];
    for (var c = p.first; c < p.first + p.count; c++) {
      let slot = r * p.k + c;
      var xc = 0.0;
      for (var d = 0u; d < DIM4; d++) { xc += dot(x[d], sm_cents[slot * DIM4 + d]); }
      var dist = xn + sm_cent_norms[slot] - 2.0 * xc;
      if (dist < 0.0) { dist = 0.0; }
      let bd = bitcast<f32>(best.x);
      if (dist < bd || (dist == bd && c < best.y)) { best = vec2u(bitcast<u32>(dist), c); }
    }
    sm_pairs[o] = best;
  }
}

// ---------------------------------------------------------------------------------------------------
// Lloyd iterations: grouping by cluster, convergence

@group(0) @binding(1) var<storage, read_write> gc_status: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> gc_pairs: array<vec2u>;
@group(0) @binding(3) var<storage, read_write> gc_prev: array<u32>;
@group(0) @binding(4) var<storage, read_write> gc_hist: array<u32>;

@compute @workgroup_size(WG)
fn group_count(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  if (atomicLoad(&gc_status[S_STATE]) != 0u) { return; }
  let b = linear_invocation(wid, nwg, lid);
  if (b >= p.ngb) { return; }
  let r = wid.z;
  let end = min(p.n, (b + 1u) * p.gb);
  let h = (r * p.ngb + b) * p.k;
  var moved = 0u;
  for (var i = b * p.gb; i < end; i++) {
    let c = gc_pairs[r * p.n + i].y;
    gc_hist[h + c] += 1u;
    if (gc_prev[r * p.n + i] != c) { moved++; }
    gc_prev[r * p.n + i] = c;
  }
  if (moved != 0u) { atomicAdd(&gc_status[s_moved(r)], moved); }
}

@group(0) @binding(1) var<storage, read_write> gt_status: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> gt_hist: array<u32>;
@group(0) @binding(3) var<storage, read_write> gt_counts: array<u32>;

@compute @workgroup_size(WG)
fn group_totals(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  if (atomicLoad(&gt_status[S_STATE]) != 0u) { return; }
  let c = linear_invocation(wid, nwg, lid);
  if (c >= p.k) { return; }
  let r = wid.z;
  var total = 0u;
  for (var b = 0u; b < p.ngb; b++) {
    let h = (r * p.ngb + b) * p.k + c;
    let v = gt_hist[h];
    gt_hist[h] = total;
    total += v;
  }
  gt_counts[r * p.k + c] = total;
  if (total == 0u) { atomicAdd(&gt_status[s_empty(r)], 1u); }
}

@group(0) @binding(1) var<storage, read_write> st_status: array<u32>;
@group(0) @binding(2) var<storage, read> st_totals: array<f32>;

// The test of lib/eval/lloyd.ts: a restart is done when no point moved, or when its inertia fell by at
// most tol * inertia (and no empty cluster was refilled before this iteration); all stop together.
@compute @workgroup_size(1)
fn status() {
  if (st_status[S_STATE] != 0u) { return; }
  let iters = st_status[S_ITERS] + 1u;
  st_status[S_ITERS] = iters;
  var done = true;
  var empty = 0u;
  for (var r = 0u; r < p.restarts; r++) {
    let now = st_totals[r];
    let prev = bitcast<f32>(st_status[s_inertia(r)]);
    let moved = iters == 1u || st_status[s_moved(r)] != 0u;
    let settled = st_status[s_reloc(r)] == 0u && iters > 1u && prev - now <= p.tol * now;
    done = done && (!moved || settled);
    empty += st_status[s_empty(r)];
    st_status[s_reloc(r)] = 0u;
    st_status[s_inertia(r)] = bitcast<u32>(now);
  }
  if (done) {
    st_status[S_STATE] = 1u;
  } else if (iters >= p.max_iters) {
    st_status[S_STATE] = 2u;
  } else if (empty != 0u) {
    st_status[S_STATE] = 3u;
  }
}

@group(0) @binding(1) var<storage, read> go_status: array<u32>;
@group(0) @binding(2) var<storage, read> go_counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> go_offsets: array<u32>;

@compute @workgroup_size(WG)
fn group_offsets(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  if (go_status[S_STATE] != 0u) { return; }
  let r = linear_invocation(wid, nwg, lid);
  if (r >= p.restarts) { return; }
  let o = r * (p.k + 1u);
  // The running offset enters through offsets[lo] (0 before the first window).
  if (p.lo == 0u) { go_offsets[o] = 0u; }
  var c = go_offsets[o + p.lo];
  for (var i = p.lo; i < p.hi; i++) {
    c += go_counts[r * p.k + i];
    go_offsets[o + i + 1u] = c;
  }
}

@group(0) @binding(1) var<storage, read> gs_status: array<u32>;
@group(0) @binding(2) var<storage, read> gs_pairs: array<vec2u>;
@group(0) @binding(3) var<storage, read> gs_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> gs_hist: array<u32>;
@group(0) @binding(5) var<storage, read_write> gs_order: array<u32>;

@compute @workgroup_size(WG)
fn group_scatter(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  if (gs_status[S_STATE] != 0u) { return; }
  let b = linear_invocation(wid, nwg, lid);
  if (b >= p.ngb) { return; }
  let r = wid.z;
  let end = min(p.n, (b + 1u) * p.gb);
  let h = (r * p.ngb + b) * p.k;
  for (var i = b * p.gb; i < end; i++) {
    let c = gs_pairs[r * p.n + i].y;
    let at = gs_offsets[r * (p.k + 1u) + c] + gs_hist[h + c];
    gs_hist[h + c] += 1u;
    gs_order[r * p.n + at] = i;
  }
}

@group(0) @binding(1) var<storage, read> up_status: array<u32>;
@group(0) @binding(2) var<storage, read> up_data: array<f32>;
@group(0) @binding(3) var<storage, read> up_order: array<u32>;
@group(0) @binding(4) var<storage, read> up_offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> up_sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> up_cents: array<f32>;

@compute @workgroup_size(WG)
fn update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  if (up_status[S_STATE] != 0u) { return; }
  let i = linear_invocation(wid, nwg, lid);
  if (i >= p.restarts * p.k * p.dim) { return; }
  let d = i % p.dim;
  let rc = i / p.dim;  // r * K + c
  let r = rc / p.k;
  let c = rc % p.k;
  let lo = up_offsets[r * (p.k + 1u) + c];
  let hi = up_offsets[r * (p.k + 1u) + c + 1u];
  var s = 0.0;
  if (p.first == 0u) { s = up_sums[i]; }
  let block_end = p.block_start + p.block_rows;
  for (var m = lo + p.lo; m < min(hi, lo + p.hi); m++) {
    let pt = up_order[r * p.n + m];
    if (pt >= p.block_start && pt < block_end) { s = s + up_data[(pt - p.block_start) * DIM4 * 4u + d]; }
  }
  if (p.last == 1u) {
    if (hi > lo) { up_cents[rc * DIM4 * 4u + d] = s / f32(hi - lo); }
  } else {
    up_sums[i] = s;
  }
}

@group(0) @binding(1) var<storage, read> cn_status: array<u32>;
@group(0) @binding(2) var<storage, read> cn_cents: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> cn_norms: array<f32>;

@compute @workgroup_size(WG)
fn cent_norms(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  if (cn_status[S_STATE] != 0u) { return; }
  let rc = linear_invocation(wid, nwg, lid);
  if (rc >= p.restarts * p.k) { return; }
  var s = 0.0;
  for (var d = 0u; d < DIM4; d++) {
    let v = cn_cents[rc * DIM4 + d];
    s = fma(v.x, v.x, s);
    s = fma(v.y, v.y, s);
    s = fma(v.z, v.z, s);
    s = fma(v.w, v.w, s);
  }
  cn_norms[rc] = s;
}
