// retrieval.wgsl: exact ranks of same-label samples in each query's distance-ordered list, for Recall@K,
// precision@1, R-Precision and MAP@R without an N x N matrix (the caller streams blocks of query rows).
// Queries are searched against a gallery: the set itself (`single` = 1: each query excludes itself) or a
// separate one (In-Shop style query/gallery protocol).
// Driven by lib/eval/retrieval.ts (retrievalMetrics); plain-TS reference lib/eval/retrieval_ref.ts.
//
// Order: sample j precedes sample l for a query when (dist[j], j) < (dist[l], l) (distance, then index).
// The rank of a sample is the number of other gallery samples (the query itself excluded) that precede it.
// A query's positives are the other gallery samples of its label; R = their number (0: a lone query).
//
// Layouts (N = gallery samples; labels are dense ids 0..L-1 shared by queries and gallery):
//   dist        f32 [block_rows x stride]  squared distances of the block's queries (rows block_start..) to
//                                          all gallery samples; stride >= N, a multiple of 4 for
//                                          positive_ranks (which reads rows as vec4; the padding is ignored)
//   labels      u32 [N + queries]          the gallery's labels, then (from qlabel_off) the queries'; with
//                                          `single`, qlabel_off = 0 (the same array)
//   members     u32 [N]                    gallery indices grouped by label, ascending within a label
//   class_start u32 [L + 1]                label l's samples: members[class_start[l] .. class_start[l + 1])
//   out         u32                        first_rank: [block_rows]; positive_ranks: [block_rows x out_width]
//   list        u32 [block_rows x N]       positive_ranks' scratch: candidate samples grouped by bin
//
// Entry points (one workgroup of WG invocations per query row, row = linear_workgroup(wid, nwg)):
//   first_rank      out[row] = rank of the query's nearest positive (0xFFFFFFFF for a lone query):
//                   a min-reduction over the positives, then a count over all samples.
//   positive_ranks  out[row * out_width + i] = rank of the query's i-th nearest positive, for every positive
//                   within the query's nearest depth = max(R, min_depth) samples; NONE for the rest.
//                   No sort. (1) min/max of the row; (2) NARROW rounds of counting the samples under 8
//                   thresholds (registers, no per-sample atomics) shrink [lo, hi] until hi is just past
//                   the depth-th smallest distance: only samples with d <= hi ("candidates", about depth
//                   of them plus a margin) can precede a positive that matters; (3) histograms of the
//                   candidates and of the positives over BINS linear bins of [lo, hi] (an order-preserving
//                   map) and their prefix sums give, per bin, how many samples and positives lie in
//                   earlier bins, and the bin holding the depth-th sample (the cut); (4) candidates up
//                   to the cut are grouped by bin into `list`; (5) a positive's rank (and its place among
//                   the positives) is the count of earlier bins plus a scan of its own bin.
//                   Work per query: five passes over the row (vec4 loads), atomics for candidates only,
//                   and per kept positive one bin's population.
// Bindings: 0 params, 1 dist, 2 labels, 3 members, 4 class_start, 5 out, and for positive_ranks 6 list.
// Defines: WG (invocations per workgroup, a power of two), BINS (histogram bins of positive_ranks).
// The prelude (lib/gpu/spec.ts) declares Params (fields: lib/gpu/specs/retrieval.ts) and the helpers.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dist: array<f32>;
@group(0) @binding(1) var<storage, read> dist4: array<vec4f>;  // the same binding, as positive_ranks reads it
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> members: array<u32>;
@group(0) @binding(4) var<storage, read> class_start: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;
@group(0) @binding(6) var<storage, read_write> list: array<u32>;

const NONE = 0xffffffffu;
const INF = 0x7f800000u;

var<workgroup> red_d: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> red_hi: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> red_p: array<u32, WG>;
var<workgroup> bin_ptr: array<atomic<u32>, BINS>;
var<workgroup> bin_pos: array<atomic<u32>, BINS>;
var<workgroup> narrow: array<atomic<u32>, 8>;
const NARROW = 2u;                           // narrowing passes before binning
var<workgroup> cut: u32;
var<workgroup> kept: u32;

// (da, ia) precedes (db, ib).
fn before(da: f32, ia: u32, db: f32, ib: u32) -> bool {
  return da < db || (da == db && ia < ib);
}

// The gallery index the query excludes: itself in a single set, none (NONE) against a separate gallery.
fn self_index(q: u32) -> u32 {
  return select(NONE, q, params.single == 1u);
}

@compute @workgroup_size(WG)
fn first_rank(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= params.block_rows) { return; }
  let q = params.block_start + row;
  let qs = self_index(q);
  let lq = labels[params.qlabel_off + q];
  let s = class_start[lq];
  let e = class_start[lq + 1u];
  if (e - s <= params.single) {
    if (lid == 0u) { out[row] = NONE; }
    return;
  }
  let drow = row * params.stride;
  // Nearest positive: per-invocation minimum, then a tree reduction.
  var bd = bitcast<f32>(INF);
  var bi = NONE;
  for (var m = s + lid; m < e; m += WG) {
    let p = members[m];
    let d = dist[drow + p];
    if (p != qs && before(d, p, bd, bi)) { bd = d; bi = p; }
  }
  red_d[lid] = bd;
  red_i[lid] = bi;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w /= 2u) {
    if (lid < w && before(red_d[lid + w], red_i[lid + w], red_d[lid], red_i[lid])) {
      red_d[lid] = red_d[lid + w];
      red_i[lid] = red_i[lid + w];
    }
    workgroupBarrier();
  }
  let md = red_d[0];
  let mi = red_i[0];
  workgroupBarrier();
  // Samples that precede it (the query itself excluded).
  var count = 0u;
  for (var j = lid; j < params.n; j += WG) {
    let d = dist[drow + j];
    if (j != qs && before(d, j, md, mi)) { count++; }
  }
  red_i[lid] = count;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w /= 2u) {
    if (lid < w) { red_i[lid] += red_i[lid + w]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[row] = red_i[0]; }
}

// Order-preserving bin of a distance: BINS linear bins over the query's [lo, lo + BINS / scale].
fn dist_bin(d: f32, lo: f32, scale: f32) -> u32 {
  return min(u32(max((d - lo) * scale, 0.0)), BINS - 1u);
}

// Distance from this row's query to sample j (positive_ranks reads the row as vec4).
fn dist_at(row4: u32, j: u32) -> f32 {
  return dist4[row4 + j / 4u][j % 4u];
}

// Which of the 4 samples 4v..4v+3 exist and are not the query itself (`q`: self_index, NONE for none).
fn valid4(v: u32, q: u32) -> vec4<bool> {
  let j = vec4u(4u * v) + vec4u(0u, 1u, 2u, 3u);
  return (j < vec4u(params.n)) & (j != vec4u(q));
}

@compute @workgroup_size(WG)
fn positive_ranks(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= params.block_rows) { return; }
  let q = params.block_start + row;
  let qs = self_index(q);
  let lq = labels[params.qlabel_off + q];
  let s = class_start[lq];
  let size = class_start[lq + 1u] - s;      // gallery samples of the label (the query too when single)
  let r = size - min(size, params.single);  // positives
  if (r == 0u) { return; }
  let depth = max(r, params.min_depth);
  let row4 = row * params.stride / 4u;
  let n4 = (params.n + 3u) / 4u;

  // 1. Range of the other samples' distances (min and max reduction).
  var dlo = bitcast<f32>(INF);
  var dhi = 0.0;
  for (var v = lid; v < n4; v += WG) {
    let d = dist4[row4 + v];
    let ok = valid4(v, qs);
    let a = select(vec4f(bitcast<f32>(INF)), d, ok);
    let b = select(vec4f(0.0), d, ok);
    dlo = min(dlo, min(min(a.x, a.y), min(a.z, a.w)));
    dhi = max(dhi, max(max(b.x, b.y), max(b.z, b.w)));
  }
  red_d[lid] = dlo;
  red_hi[lid] = dhi;
  for (var b = lid; b < BINS; b += WG) {
    atomicStore(&bin_ptr[b], 0u);
    atomicStore(&bin_pos[b], 0u);
  }
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w /= 2u) {
    if (lid < w) {
      red_d[lid] = min(red_d[lid], red_d[lid + w]);
      red_hi[lid] = max(red_hi[lid], red_hi[lid + w]);
    }
    workgroupBarrier();
  }
  let lo = red_d[0];

  // 2. Narrow [lo, hi] around the depth-th smallest distance: count the samples under 8 thresholds
  // (in registers, then 8 atomics per invocation) and keep the interval where the count crosses depth.
  // Afterwards at least depth samples (or all of them) have d <= hi; only those are binned below.
  var nlo = lo;
  var hi = red_hi[0];
  for (var round = 0u; round < NARROW; round++) {
    if (lid < 8u) { atomicStore(&narrow[lid], 0u); }
    workgroupBarrier();
    let step = (hi - nlo) / 8.0;
    let ta = vec4f(nlo + step, nlo + 2.0 * step, nlo + 3.0 * step, nlo + 4.0 * step);
    let tb = vec4f(nlo + 5.0 * step, nlo + 6.0 * step, nlo + 7.0 * step, hi);
    var ca = vec4u(0u);
    var cb = vec4u(0u);
    for (var v = lid; v < n4; v += WG) {
      let d4 = dist4[row4 + v];
      let ok = valid4(v, qs);
      for (var c = 0u; c < 4u; c++) {
        if (ok[c]) {
          let d = vec4f(d4[c]);
          ca += select(vec4u(0u), vec4u(1u), d <= ta);
          cb += select(vec4u(0u), vec4u(1u), d <= tb);
        }
      }
    }
    atomicAdd(&narrow[0], ca.x);
    atomicAdd(&narrow[1], ca.y);
    atomicAdd(&narrow[2], ca.z);
    atomicAdd(&narrow[3], ca.w);
    atomicAdd(&narrow[4], cb.x);
    atomicAdd(&narrow[5], cb.y);
    atomicAdd(&narrow[6], cb.z);
    atomicAdd(&narrow[7], cb.w);
    workgroupBarrier();
    let ts = array<f32, 8>(ta.x, ta.y, ta.z, ta.w, tb.x, tb.y, tb.z, tb.w);
    var new_lo = nlo;
    var new_hi = hi;
    for (var t = 0u; t < 8u; t++) {
      if (atomicLoad(&narrow[t]) >= depth) {
        new_hi = ts[t];
        break;
      }
      new_lo = ts[t];
    }
    nlo = new_lo;
    hi = new_hi;
    workgroupBarrier();
  }
  let span = hi - lo;
  let scale = select(0.0, f32(BINS) / span, span > 0.0);

  // 3. Histograms over BINS bins of [lo, hi]: of the samples with d <= hi, and of the positives among them
  // (taken from the label's member list, so the scan needs no labels).
  for (var v = lid; v < n4; v += WG) {
    let d4 = dist4[row4 + v];
    let ok = valid4(v, qs) & (d4 <= vec4f(hi));
    for (var c = 0u; c < 4u; c++) {
      if (ok[c]) { atomicAdd(&bin_ptr[dist_bin(d4[c], lo, scale)], 1u); }
    }
  }
  for (var i = lid; i < size; i += WG) {
    let p = members[s + i];
    let d = dist_at(row4, p);
    if (p != qs && d <= hi) { atomicAdd(&bin_pos[dist_bin(d, lo, scale)], 1u); }
  }
  workgroupBarrier();
  // Exclusive prefix sums of both histograms: each invocation sums its run of ceil(BINS / WG) bins, one
  // invocation scans the WG run totals, then each writes its run's prefixes; the invocation whose run
  // holds the depth-th sample records the cut (that bin) and the positives up to it.
  let run = u32((BINS + WG - 1) / WG);
  let b0 = min(lid * run, BINS);
  let b1 = min(b0 + run, BINS);
  var run_all = 0u;
  var run_pos = 0u;
  for (var b = b0; b < b1; b++) {
    run_all += atomicLoad(&bin_ptr[b]);
    run_pos += atomicLoad(&bin_pos[b]);
  }
  red_u[lid] = run_all;
  red_p[lid] = run_pos;
  if (lid == 0u) {
    cut = BINS - 1u;
    kept = r;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var all = 0u;
    var positives = 0u;
    for (var t = 0u; t < WG; t++) {
      let na = red_u[t];
      let np = red_p[t];
      red_u[t] = all;
      red_p[t] = positives;
      all += na;
      positives += np;
    }
  }
  workgroupBarrier();
  var all = red_u[lid];
  var positives = red_p[lid];
  for (var b = b0; b < b1; b++) {
    let na = atomicLoad(&bin_ptr[b]);
    let np = atomicLoad(&bin_pos[b]);
    atomicStore(&bin_ptr[b], all);
    atomicStore(&bin_pos[b], positives);
    let before_all = all;
    all += na;
    positives += np;
    if (before_all < depth && all >= depth) {
      cut = b;
      kept = positives;
    }
  }
  workgroupBarrier();
  let cut_bin = cut;

  // 4. Samples in bins up to the cut, grouped by bin, into this row's list. Afterwards bin_ptr[b] is the
  // end of bin b, i.e. the start of bin b + 1 (the number of samples in earlier bins).
  let lrow = row * params.n;
  for (var v = lid; v < n4; v += WG) {
    let d4 = dist4[row4 + v];
    let ok = valid4(v, qs) & (d4 <= vec4f(hi));
    for (var c = 0u; c < 4u; c++) {
      if (ok[c]) {
        let b = dist_bin(d4[c], lo, scale);
        if (b <= cut_bin) { list[lrow + atomicAdd(&bin_ptr[b], 1u)] = 4u * v + c; }
      }
    }
  }
  workgroupBarrier();

  // 5. Each positive up to the cut: rank = samples in earlier bins + samples of its bin that precede it;
  // its place among the positives likewise. Positives past the cut rank >= depth: they read NONE.
  for (var i = lid; i < size; i += WG) {
    let p = members[s + i];
    if (p == qs) { continue; }
    let d = dist_at(row4, p);
    if (d > hi) { continue; }
    let b = dist_bin(d, lo, scale);
    if (b > cut_bin) { continue; }
    var start = 0u;
    if (b > 0u) { start = atomicLoad(&bin_ptr[b - 1u]); }
    let end = atomicLoad(&bin_ptr[b]);
    var rank = start;
    var place = atomicLoad(&bin_pos[b]);
    for (var t = start; t < end; t++) {
      let j = list[lrow + t];
      if (before(dist_at(row4, j), j, d, p)) {
        rank++;
        if (labels[j] == lq) { place++; }
      }
    }
    out[row * params.out_width + place] = rank;
  }
  for (var i = kept + lid; i < r; i += WG) { out[row * params.out_width + i] = NONE; }
}
