// kmeans.wgsl: the GPU steps of Lloyd's k-means with several restarts run side by side.
// Driven by lib/eval/kmeans.ts (kmeans); plain-TS reference in lib/eval/kmeans_ref.ts (kmeansRef).
//
// Layouts (row-major, f32 unless noted; R = restarts, N = points, K = clusters, DIM = dims):
//   data       [N x DIM]            the points; bound one row block at a time (block_start, block_rows),
//                                   so data larger than one storage binding works
//   centroids  [R x K x DIM4*4]     restart r's cluster c at (r * K + c) * DIM4 * 4; rows padded with
//                                   zeros to a multiple of 4 floats (DIM4 = ceil(DIM / 4)) to load as vec4
//   result     u32 [2 x R x N]      assign: [0, R*N) nearest cluster (ties: smaller cluster index),
//                                   [R*N, 2*R*N) its squared distance as f32 bits (one buffer, one readback)
//   order      u32 [R x N]          restart r's points grouped by cluster, ascending index within a cluster
//   offsets    u32 [R x (K + 1)]    cluster c of restart r holds order[r*N + offsets[c] .. r*N + offsets[c+1])
//
// Entry points (all @workgroup_size(WG); linear workgroup id = wid.y * nwg.x + wid.x, see grid1d):
//   assign     one thread per block row, restart = wid.z: nearest centroid and its squared distance.
//              Bindings: 0 params, 1 data block, 2 centroids (read), 3 result (rw).
//   pp_update  k-means++ seeding: one thread per block row, restart = wid.z: min-distance to the newest center
//              `step` of each restart, written to result's distance half (first = 1 overwrites).
//              Bindings: 0 params, 1 data block, 2 centroids (read), 3 result (rw).
//   update     one thread per (restart, cluster, dim): mean of the cluster's members, summed in `order`
//              order over the data blocks (first block overwrites `sums`, the last divides and writes the
//              centroid; an empty cluster keeps its centroid). Bindings: 0 params, 1 data block,
//              2 order, 3 offsets, 4 sums (rw), 5 centroids (rw).
// Squared distances: four partial sums over dims d = j mod 4, each in dim order, added left to right at
// the end; the reference (kmeans_ref.ts) sums in the same order.
// Defines: WG (threads per workgroup), DIM (dims per point).

struct Params {
  n: u32,            // points in total
  k: u32,            // clusters per restart
  restarts: u32,
  block_start: u32,  // first row of the bound data block
  block_rows: u32,   // rows in the bound data block
  step: u32,         // pp_update: index of the newest center
  first: u32,        // pp_update / update: 1 on the first pass (overwrite instead of accumulate)
  last: u32,         // update: 1 on the last data block (divide and write the centroid)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;


// Centroid rows are padded to DIM4 * 4 floats (zeros) so they load as vec4.
const DIM4 = (DIM + 3) / 4;
@group(0) @binding(2) var<storage, read> centroids_in: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> result: array<u32>;

// The bound block's row `row`, kept in registers while it is compared with every centroid.
fn load_row(row: u32) -> array<vec4f, DIM4> {
  var x: array<vec4f, DIM4>;
  let xo = row * DIM;
  for (var q = 0u; q < DIM / 4; q++) {
    let o = xo + 4u * q;
    x[q] = vec4f(data[o], data[o + 1u], data[o + 2u], data[o + 3u]);
  }
  // The last, partial group of dims (if any) is padded with zeros, like the centroids.
  for (var d = u32(DIM / 4 * 4); d < DIM; d++) { x[d / 4u][d % 4u] = data[xo + d]; }
  return x;
}

// Squared distance from `x` to centroid slot `centroid` (= r * K + c).
// Four partial sums (dims d with d % 4 = 0, 1, 2, 3, in order), added as ((s.x + s.y) + s.z) + s.w.
fn sq_dist_to(x: ptr<function, array<vec4f, DIM4>>, centroid: u32) -> f32 {
  let co = centroid * DIM4;
  var s = vec4f(0.0);
  for (var q = 0u; q < DIM4; q++) {
    let diff = (*x)[q] - centroids_in[co + q];
    s += diff * diff;
  }
  return s.x + s.y + s.z + s.w;
}

// Rows of the block run along x (and y past 65,535 workgroups); the restart is wid.z, so every thread of a
// workgroup reads the same centroids.
fn block_row(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn assign(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let row = block_row(wid, nwg, lid);
  if (row >= params.block_rows) { return; }
  let r = wid.z;
  var x = load_row(row);
  var best = 0u;
  var best_d = sq_dist_to(&x, r * params.k);
  for (var c = 1u; c < params.k; c++) {
    let d = sq_dist_to(&x, r * params.k + c);
    if (d < best_d) { best_d = d; best = c; }
  }
  let out = r * params.n + params.block_start + row;
  result[out] = best;
  result[params.restarts * params.n + out] = bitcast<u32>(best_d);
}

@compute @workgroup_size(WG)
fn pp_update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let row = block_row(wid, nwg, lid);
  if (row >= params.block_rows) { return; }
  let r = wid.z;
  var x = load_row(row);
  let d = sq_dist_to(&x, r * params.k + params.step);
  let out = params.restarts * params.n + r * params.n + params.block_start + row;
  if (params.first == 1u) {
    result[out] = bitcast<u32>(d);
  } else {
    result[out] = bitcast<u32>(min(bitcast<f32>(result[out]), d));
  }
}

// update's bindings reuse slots 2..5 with other types; only update uses these (WGSL allows the same slot
// in different entry points).
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;
@group(0) @binding(5) var<storage, read_write> centroids_out: array<f32>;

@compute @workgroup_size(WG)
fn update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = block_row(wid, nwg, lid);
  if (i >= params.restarts * params.k * DIM) { return; }
  let d = i % DIM;
  let rc = i / DIM;            // r * K + c
  let slot = rc * DIM4 * 4u + d;
  let r = rc / params.k;
  let c = rc % params.k;
  let lo = offsets[r * (params.k + 1u) + c];
  let hi = offsets[r * (params.k + 1u) + c + 1u];
  var s = 0.0;
  if (params.first == 0u) { s = sums[slot]; }
  let block_end = params.block_start + params.block_rows;
  for (var m = lo; m < hi; m++) {
    let p = order[r * params.n + m];
    if (p >= params.block_start && p < block_end) {
      s += data[(p - params.block_start) * DIM + d];
    }
  }
  if (params.last == 1u) {
    if (hi > lo) { centroids_out[slot] = s / f32(hi - lo); }
  } else {
    sums[slot] = s;
  }
}
