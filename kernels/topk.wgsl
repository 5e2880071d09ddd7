// topk.wgsl: the k smallest entries of each row with their column indices, with optional filters.
// Driven by lib/ops/topk.ts (topkSmallest) and lib/ops/knn.ts (knnSqL2, which streams column blocks).
//
// Order: ascending by (value, column index): ties go to the smaller column. NaN entries are never
// selected; +Inf entries are selectable and rank after every finite one (-Inf before). Rows with fewer
// than k qualifying entries are filled with (value +Inf, index 0xFFFFFFFF), which sorts after everything.
// Filters (the shared FILTER_FLAGS of lib/gpu/spec.ts): F_SELF drops column global row + self_offset,
// F_LABELS keeps columns whose label differs from the row's (equals it, with F_SAME), F_RADIUS keeps
// values > row_min[global row].
//
// Each invocation keeps its list in a max-heap of k (value, index) pairs in private memory whose top is the
// current k-th best, scans its entries in chunks (see CHUNK below), replaces the top by the rare entries
// that beat it, then heap-sorts into ascending order. Invocation = (row, segment): long rows can be split
// into segments whose lists `merge_lists` combines, which keeps real GPUs busy when rows are few.
//
// select_rows: for row r < rows and segment s < segs, scans columns [s * seg_len, min((s+1) * seg_len,
//   cols)) of values[val_off + r * val_stride + c] (global column col_base + c) and writes its list to
//   out_v/out_i[out_off + r * out_stride + s * k + t], t < k. With `init` = 1 (segs must be 1) the list
//   starts from the k entries already in out (ascending, e.g. the result over earlier column blocks).
// select_rows_v4: the same, four entries per load, when val_off, val_stride, seg_len and cols are
//   multiples of 4 (llvmpipe loads element by element, so this matters there).
// merge_lists: for row r, merges `segs` ascending lists part_v/part_i[r * segs * k + s * k + t] into
//   out_v/out_i[out_off + r * out_stride + t] (starting from out's current list when `init` = 1).
//
// Bindings (group 0); select_rows uses 0-6, merge_lists 0-4:
//   0 params  uniform Params (fields: lib/gpu/specs/topk.ts)
//   (val_off and out_off are element offsets added to every values / out index: bindings start at
//   aligned offsets at or below the block's first element)
//   1 values  storage read  f32 (select_rows) / the part_v lists f32 [rows x segs x k] (merge_lists)
//   2 out_v   storage rw    f32
//   3 out_i   storage rw    u32
//   4 row_labels storage read i32 [global rows] (select_rows; bind any buffer when unused)
//     / part_i storage read u32 [rows x segs x k] (merge_lists)
//   5 col_labels storage read i32 [global cols] (select_rows)
//   6 row_min    storage read f32 [global rows] (select_rows)
// Dispatch: WG invocations per workgroup, one per (row, segment) with row-major (row, segment) order;
// linear invocation = linear_invocation(wid, nwg, lid) (the prelude's helper).
// Defines: KMAX (heap capacity, k <= KMAX), WG. The prelude (lib/gpu/spec.ts) declares Params, the
// filter flags and the helpers.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> values4: array<vec4f>; // select_rows_v4
@group(0) @binding(2) var<storage, read_write> out_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_i: array<u32>;
@group(0) @binding(4) var<storage, read> row_labels: array<i32>; // select_rows
@group(0) @binding(5) var<storage, read> col_labels: array<i32>; // select_rows
@group(0) @binding(6) var<storage, read> row_min: array<f32>;    // select_rows
@group(0) @binding(4) var<storage, read> part_i: array<u32>;     // merge_lists

const NONE = 0xFFFFFFFFu;
// +Inf through a variable: a constant bitcast to Inf is a shader-creation error in Tint (Chromium, Dawn).
var<private> INF_BITS: u32 = 0x7F800000u;

var<private> hv: array<f32, KMAX>;
var<private> hi: array<u32, KMAX>;

// (va, ia) ranks after (vb, ib)?
fn after(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia > ib);
}

// Restores the max-heap property below `start` within the first n entries.
fn sift_down(start: u32, n: u32) {
  var i = start;
  let v = hv[i];
  let id = hi[i];
  loop {
    var c = 2u * i + 1u;
    if (c >= n) { break; }
    if (c + 1u < n && after(hv[c + 1u], hi[c + 1u], hv[c], hi[c])) { c += 1u; }
    if (!after(hv[c], hi[c], v, id)) { break; }
    hv[i] = hv[c];
    hi[i] = hi[c];
    i = c;
  }
  hv[i] = v;
  hi[i] = id;
}

// Fills the heap with the sentinel, or with the ascending list at out[o..o+k] (descending order is a heap).
fn init_heap(o: u32) {
  for (var t = 0u; t < p.k; t++) {
    if (p.init == 1u) {
      hv[t] = out_v[o + p.k - 1u - t];
      hi[t] = out_i[o + p.k - 1u - t];
    } else {
      hv[t] = bitcast<f32>(INF_BITS); // +Inf
      hi[t] = NONE;
    }
  }
}

// Heap-sorts in place into ascending order and writes the list at out[o..o+k].
fn write_sorted(o: u32) {
  for (var n = p.k - 1u; n > 0u; n--) {
    let v = hv[0];
    let id = hi[0];
    hv[0] = hv[n];
    hi[0] = hi[n];
    hv[n] = v;
    hi[n] = id;
    sift_down(0u, n);
  }
  for (var t = 0u; t < p.k; t++) {
    out_v[o + t] = hv[t];
    out_i[o + t] = hi[t];
  }
}

// Per-invocation state of a scan: the current k-th best in registers (most entries fail the test
// against it and cost one compare) and the row's filter values.
var<private> tv: f32;
var<private> ti: u32;
var<private> row_label: i32;
var<private> row_rmin: f32;
var<private> self_col: u32;

// The best candidate of a chunk found so far; also the entry taken last from a chunk (found: false
// before the first).
struct Cand { v: f32, i: u32, found: bool }

// Whether entry (v, global column g) may enter the list: it ranks before the current k-th best (which
// drops NaN), after the entry `last` taken from this chunk (when there is one), and passes the filters.
fn eligible(v: f32, g: u32, last: Cand) -> bool {
  return (v < tv || (v == tv && g < ti)) && (!last.found || v > last.v || (v == last.v && g > last.i)) &&
    ((p.flags & F_SELF) == 0u || g != self_col) && ((p.flags & F_RADIUS) == 0u || v > row_rmin) &&
    ((p.flags & F_LABELS) == 0u || ((col_labels[g] == row_label) == ((p.flags & F_SAME) != 0u)));
}

// `c`, or (v, g) when that is eligible and ranks before `c`.
fn pick(c: Cand, v: f32, g: u32, last: Cand) -> Cand {
  let better = eligible(v, g, last) && (!c.found || v < c.v || (v == c.v && g < c.i));
  return Cand(select(c.v, v, better), select(c.i, g, better), c.found || better);
}

// Inserts a candidate in place of the heap top (the current k-th best) and refreshes the threshold.
fn insert(c: Cand) {
  hv[0] = c.v;
  hi[0] = c.i;
  sift_down(0u, p.k);
  tv = hv[0];
  ti = hi[0];
}

// Sets up the scan of (row r, segment s); returns the output offset of its list.
fn begin_scan(r: u32, s: u32) -> u32 {
  let o = p.out_off + r * p.out_stride + s * p.k;
  init_heap(o);
  let grow = p.row_base + r;
  if ((p.flags & F_LABELS) != 0u) { row_label = row_labels[grow]; }
  if ((p.flags & F_RADIUS) != 0u) { row_rmin = row_min[grow]; }
  self_col = grow + p.self_offset;
  tv = hv[0];
  ti = hi[0];
  return o;
}

// Entries are scanned in chunks of CHUNK: a branch-free pass finds the chunk's smallest value above the
// radius (NaN-safe: comparisons skip NaN); only a chunk that could hold an entry ranking before the
// current k-th best is searched further, by taking its eligible entries best first (one branch-free pass
// each) until the best one left cannot enter. CPU adapters run invocations in lockstep and execute
// masked-off branches anyway, so the rare insertion (a heap sift with per-lane indexing) must run once
// per chunk pass, not once per entry. Each insertion costs a pass over its chunk, so chunks are short: 16
// selects 1,024 x 2,048 at k 33 (the FANNG build's blocks) 1.4x faster than 64 on llvmpipe, k 1 as fast.
const CHUNK = 16u;

// The smallest of `v` that is > the row's radius (when that filter is on), folded into `m`.
fn fold_min(m: f32, v: f32) -> f32 {
  let eligible = v < m && ((p.flags & F_RADIUS) == 0u || v > row_rmin);
  return select(m, v, eligible);
}

@compute @workgroup_size(WG)
fn select_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let inv = linear_invocation(wid, nwg, lid);
  let r = inv / p.segs;
  if (r >= p.rows) { return; }
  let s = inv - r * p.segs;
  let o = begin_scan(r, s);
  let vrow = p.val_off + r * p.val_stride;
  let c_end = min((s + 1u) * p.seg_len, p.cols);
  for (var c0 = s * p.seg_len; c0 < c_end; c0 += CHUNK) {
    let c1 = min(c0 + CHUNK, c_end);
    var m = bitcast<f32>(INF_BITS);
    for (var c = c0; c < c1; c++) { m = fold_min(m, values[vrow + c]); }
    if (m <= tv) {
      // Take the chunk's qualifying entries best first; stop when the best left cannot enter.
      var last = Cand(0.0, 0u, false);
      loop {
        var best = Cand(0.0, 0u, false);
        for (var c = c0; c < c1; c++) { best = pick(best, values[vrow + c], p.col_base + c, last); }
        if (!best.found) { break; }
        insert(best);
        last = best;
      }
    }
  }
  write_sorted(o);
}

// select_rows reading four entries per load: needs val_off, val_stride, seg_len and cols to be
// multiples of 4 (binding 1 viewed as vec4f).
@compute @workgroup_size(WG)
fn select_rows_v4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let inv = linear_invocation(wid, nwg, lid);
  let r = inv / p.segs;
  if (r >= p.rows) { return; }
  let s = inv - r * p.segs;
  let o = begin_scan(r, s);
  let vrow4 = (p.val_off + r * p.val_stride) / 4u;
  let c_end = min((s + 1u) * p.seg_len, p.cols) / 4u;
  for (var c0 = s * p.seg_len / 4u; c0 < c_end; c0 += CHUNK / 4u) {
    let c1 = min(c0 + CHUNK / 4u, c_end);
    var m = bitcast<f32>(INF_BITS);
    for (var c = c0; c < c1; c++) {
      let v = values4[vrow4 + c];
      m = fold_min(fold_min(fold_min(fold_min(m, v.x), v.y), v.z), v.w);
    }
    if (m <= tv) {
      var last = Cand(0.0, 0u, false);
      loop {
        var best = Cand(0.0, 0u, false);
        for (var c = c0; c < c1; c++) {
          let v = values4[vrow4 + c];
          let g = p.col_base + c * 4u;
          best = pick(best, v.x, g, last);
          best = pick(best, v.y, g + 1u, last);
          best = pick(best, v.z, g + 2u, last);
          best = pick(best, v.w, g + 3u, last);
        }
        if (!best.found) { break; }
        insert(best);
        last = best;
      }
    }
  }
  write_sorted(o);
}

@compute @workgroup_size(WG)
fn merge_lists(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let r = linear_invocation(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let o = p.out_off + r * p.out_stride;
  init_heap(o);
  for (var s = 0u; s < p.segs; s++) {
    let base = (r * p.segs + s) * p.k;
    for (var t = 0u; t < p.k; t++) {
      let v = values[base + t];
      let id = part_i[base + t];
      if (!after(hv[0], hi[0], v, id)) { break; } // lists are ascending: the rest cannot enter either
      hv[0] = v;
      hi[0] = id;
      sift_down(0u, p.k);
    }
  }
  write_sorted(o);
}
