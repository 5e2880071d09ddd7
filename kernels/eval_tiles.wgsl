// eval_tiles.wgsl: squared L2 distances computed in register tiles and reduced where they are computed, so
// that no distance matrix is ever stored. Driven by lib/eval/tiles.ts; plain-TS references in
// lib/eval/tiles_ref.ts.
//
// Entry points:
//   nearest       per row, the nearest column of a range (optionally only columns of the row's label other
//                 than the row itself): the k-means assignment and seeding update (lib/eval/kmeans.ts), each
//                 query's nearest positive (lib/eval/retrieval.ts).
//   count_before  per row, how many columns of another label precede the row's threshold (tau, id) in the
//                 (distance, id) order: with tau the nearest positive, the rank of the first positive
//                 (Recall@K, precision@1). Symmetric mode (one set against itself) computes each unordered
//                 pair once and counts it for both of its points.
//
// Distances: d = max(||a||^2 + ||b||^2 - 2 a.b, 0) in f32 from prepared rows (lib/ops/distance.ts
// encodePrepareRows: rows zero padded to dim4 vec4s, squared norms). The dot products are accumulated as in
// kernels/distance.wgsl's register kernels (transpose(A) * B per vec4 of the shared dimension, in order, and
// (||a||^2 + ||b||^2) - 2 a.b), so a pair has the same value here and in pairwiseSqL2 on one adapter, on
// either side of the pair. The tile code repeats dist_reg32_v4's arithmetic for that reason.
// Order: column j precedes column l for a row when (d_j, id_j) < (d_l, id_l); NaN distances never qualify.
//
// Tiles: an invocation computes 32 rows x 32 columns, 8 x 8 blocks of 4 x 4 in named mat4x4f accumulators
// (llvmpipe keeps them in registers; arrays indexed in loops are far slower there). Rows and columns past
// the end are clamped to the last one for loads and masked out of every reduction.
//
// nearest: one invocation per row tile (WG consecutive row tiles per workgroup; tile =
//   linear_invocation(wid, nwg, lid)), z = wid.z (k-means: the restart). Row positions t < rows; the row's
//   index into `a` is ids[t] (flag F_ROW_LIST) or t, its global id row_base + that index. Column positions s
//   of the range [begin, end): ranges from ids[ranges_off + 2 * tile ..] (flag F_RANGES), else
//   [col_begin + z * col_step, + col_len); only the window [begin + win_lo, min(end, begin + win_hi)) is
//   scanned by one dispatch (a bounded loop: llvmpipe ends loops after 65,535 back-edges per invocation).
//   The column's index into `b` is ids[list_off + s] (flag F_COL_LIST) or s, its id that index (F_COL_LIST)
//   or s - z * col_step (the cluster). Masks (the shared filters of lib/gpu/spec.ts): F_LABELS keeps
//   columns whose label labels[label_off + column] differs from labels[row global id] (equals it, with
//   F_SAME); F_SELF drops the column whose id equals the row's global id; F_RADIUS keeps columns farther
//   than row_min[row global id] (d > it: smart mining's positives beyond the negative). Output
//   out[z * out_stride + row global id] = (d bits, id) of the best column (or (+Inf, 0xFFFFFFFF) when none
//   qualifies); F_MIN_INTO keeps out's current value when that ranks first (windows after the first,
//   k-means++ rounds). F_HALTABLE returns at once when status[0] != 0 (the k-means loop has stopped;
//   kernels/kmeans.wgsl's status buffer).
//   Bindings: 0 params, 1 a vec4f, 2 b vec4f, 3 a_norms f32, 4 b_norms f32, 5 ids u32, 6 labels u32,
//   7 out vec2u (rw), 8 status u32, 9 row_min f32.
// count_before: one invocation per tile; a workgroup holds WG adjacent column tiles of one row tile
//   (linear workgroup ids wg_base .. wg_end - 1). Rows r < rows of `a` (global id row_base + r), columns
//   c < cols of `b` (global id col_base + c). Row r counts column c when labels[label_off + col id] !=
//   labels[row id] and (d, col id) < thresh[row id] = (tau bits, id); rows with id 0xFFFFFFFF (no
//   positive) count nothing. F_SYM (a = b, one set): only tiles that hold a pair (row id < col id) run
//   (triangular enumeration), and every such pair also counts row r for column c against thresh[col id].
//   Counts are added atomically (nonzero ones only) to counts[global id].
//   Bindings: 0 params, 1 a vec4f, 2 b vec4f, 3 a_norms f32, 4 b_norms f32, 5 labels u32, 6 thresh vec2u,
//   7 counts atomic u32 (rw).
// Defines: WG (invocations per workgroup).

// The prelude (lib/gpu/spec.ts) declares Params (fields: lib/gpu/specs/eval_tiles.ts), the flags
// (EVAL_TILES_FLAGS: the shared filters, then F_ROW_LIST, F_COL_LIST, F_RANGES, F_MIN_INTO, F_HALTABLE,
// F_SYM) and the helpers.

const NONE = 0xffffffffu;
const INF = 0x7f800000u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read> a_norms: array<f32>;
@group(0) @binding(4) var<storage, read> b_norms: array<f32>;
// nearest
@group(0) @binding(5) var<storage, read> ids: array<u32>;
@group(0) @binding(6) var<storage, read> labels: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<vec2u>;
@group(0) @binding(8) var<storage, read> status: array<u32>;
@group(0) @binding(9) var<storage, read> row_min: array<f32>;
// count_before
@group(0) @binding(5) var<storage, read> c_labels: array<u32>;
@group(0) @binding(6) var<storage, read> thresh: array<vec2u>;
@group(0) @binding(7) var<storage, read_write> counts: array<atomic<u32>>;

// ---------------------------------------------------------------------------------------------------
// The 32 x 32 tile of dot products (dist_reg32_v4's arithmetic)

struct Row8 {
  c0: mat4x4f, c1: mat4x4f, c2: mat4x4f, c3: mat4x4f, c4: mat4x4f, c5: mat4x4f, c6: mat4x4f, c7: mat4x4f,
}
struct Offs8 { o0: vec4u, o1: vec4u, o2: vec4u, o3: vec4u, o4: vec4u, o5: vec4u, o6: vec4u, o7: vec4u }
struct Tile { r0: Row8, r1: Row8, r2: Row8, r3: Row8, r4: Row8, r5: Row8, r6: Row8, r7: Row8 }

fn load_a(o: vec4u, d: u32) -> mat4x4f {
  return mat4x4f(a[o.x + d], a[o.y + d], a[o.z + d], a[o.w + d]);
}
fn load_b(o: vec4u, d: u32) -> mat4x4f {
  return mat4x4f(b[o.x + d], b[o.y + d], b[o.z + d], b[o.w + d]);
}

fn fma_row(r: ptr<function, Row8>, q: mat4x4f, bm: Row8) {
  (*r).c0 += q * bm.c0; (*r).c1 += q * bm.c1; (*r).c2 += q * bm.c2; (*r).c3 += q * bm.c3;
  (*r).c4 += q * bm.c4; (*r).c5 += q * bm.c5; (*r).c6 += q * bm.c6; (*r).c7 += q * bm.c7;
}

// Entry [c][r] of block (i, j) is a_(row block i, row r) . b_(column block j, column c). `ao`/`bo` hold the
// vec4 offsets (row index * dim4) of the tile's rows and columns, four per block.
fn tile_dots(ao: Offs8, bo: Offs8) -> Tile {
  var r0 = Row8(); var r1 = Row8(); var r2 = Row8(); var r3 = Row8();
  var r4 = Row8(); var r5 = Row8(); var r6 = Row8(); var r7 = Row8();
  for (var d = 0u; d < p.dim4; d++) {
    let bm = Row8(load_b(bo.o0, d), load_b(bo.o1, d), load_b(bo.o2, d), load_b(bo.o3, d),
                  load_b(bo.o4, d), load_b(bo.o5, d), load_b(bo.o6, d), load_b(bo.o7, d));
    fma_row(&r0, transpose(load_a(ao.o0, d)), bm); fma_row(&r1, transpose(load_a(ao.o1, d)), bm);
    fma_row(&r2, transpose(load_a(ao.o2, d)), bm); fma_row(&r3, transpose(load_a(ao.o3, d)), bm);
    fma_row(&r4, transpose(load_a(ao.o4, d)), bm); fma_row(&r5, transpose(load_a(ao.o5, d)), bm);
    fma_row(&r6, transpose(load_a(ao.o6, d)), bm); fma_row(&r7, transpose(load_a(ao.o7, d)), bm);
  }
  return Tile(r0, r1, r2, r3, r4, r5, r6, r7);
}

// Distances of a 4 x 4 block: entry [c][r] is row r to column c (the layout of the dot products), as
// (||a||^2 + ||b||^2) - 2 a.b clamped at 0 (NaN kept).
fn block_dist(acc: mat4x4f, an: vec4f, bn: vec4f) -> mat4x4f {
  return mat4x4f(clamp0(an + vec4f(bn.x) - 2.0 * acc[0]), clamp0(an + vec4f(bn.y) - 2.0 * acc[1]),
                 clamp0(an + vec4f(bn.z) - 2.0 * acc[2]), clamp0(an + vec4f(bn.w) - 2.0 * acc[3]));
}

fn clamp0(x: vec4f) -> vec4f {
  return select(x, vec4f(), x < vec4f());
}

fn count4(m: vec4<bool>) -> u32 {
  let v = select(vec4u(0u), vec4u(1u), m);
  return v.x + v.y + v.z + v.w;
}

// ---------------------------------------------------------------------------------------------------
// nearest

// Per row of a block of 4: the best (distance, id) so far and what the masks compare against.
struct RowState { d: vec4f, id: vec4u, norm: vec4f, label: vec4u, gid: vec4u, live: vec4<bool>, rmin: vec4f }
// Per column of a block of 4: index into `b`, norm, label, id, whether it is in the range.
struct ColInfo { ix: vec4u, norm: vec4f, label: vec4u, id: vec4u, live: vec4<bool> }
struct Cols8 {
  c0: ColInfo, c1: ColInfo, c2: ColInfo, c3: ColInfo, c4: ColInfo, c5: ColInfo, c6: ColInfo, c7: ColInfo,
}

// Folds one column (its distances to the 4 rows in `dc`) into the rows' best.
fn fold_col(s: ptr<function, RowState>, dc: vec4f, norm: f32, label: u32, id: u32, live: bool) {
  var ok = (*s).live & vec4<bool>(live);
  if ((p.flags & F_LABELS) != 0u) {
    ok = ok & (((*s).label == vec4u(label)) == vec4<bool>((p.flags & F_SAME) != 0u));
  }
  if ((p.flags & F_SELF) != 0u) { ok = ok & ((*s).gid != vec4u(id)); }
  if ((p.flags & F_RADIUS) != 0u) { ok = ok & (dc > (*s).rmin); }
  let better = ok & ((dc < (*s).d) | ((dc == (*s).d) & (vec4u(id) < (*s).id)));
  (*s).d = select((*s).d, dc, better);
  (*s).id = select((*s).id, vec4u(id), better);
}

fn fold_block(s: ptr<function, RowState>, acc: mat4x4f, c: ColInfo) {
  let d = block_dist(acc, (*s).norm, c.norm);
  fold_col(s, d[0], c.norm.x, c.label.x, c.id.x, c.live.x);
  fold_col(s, d[1], c.norm.y, c.label.y, c.id.y, c.live.y);
  fold_col(s, d[2], c.norm.z, c.label.z, c.id.z, c.live.z);
  fold_col(s, d[3], c.norm.w, c.label.w, c.id.w, c.live.w);
}

fn fold_row(s: ptr<function, RowState>, r: Row8, c: Cols8) {
  fold_block(s, r.c0, c.c0); fold_block(s, r.c1, c.c1); fold_block(s, r.c2, c.c2); fold_block(s, r.c3, c.c3);
  fold_block(s, r.c4, c.c4); fold_block(s, r.c5, c.c5); fold_block(s, r.c6, c.c6); fold_block(s, r.c7, c.c7);
}

// Index into `a` of row position t (clamped to the last row).
fn row_index(t: u32) -> u32 {
  let tc = min(t, p.rows - 1u);
  if ((p.flags & F_ROW_LIST) != 0u) { return ids[tc]; }
  return tc;
}

// Vec4 offsets into `a` of row positions t0..t0+3.
fn row_offsets(t0: u32) -> vec4u {
  return vec4u(row_index(t0), row_index(t0 + 1u), row_index(t0 + 2u), row_index(t0 + 3u)) * p.dim4;
}

fn row_state(t0: u32) -> RowState {
  let t = vec4u(t0) + vec4u(0u, 1u, 2u, 3u);
  let ix = vec4u(row_index(t.x), row_index(t.y), row_index(t.z), row_index(t.w));
  let g = ix + vec4u(p.row_base);
  var lab = vec4u(0u);
  if ((p.flags & F_LABELS) != 0u) { lab = vec4u(labels[g.x], labels[g.y], labels[g.z], labels[g.w]); }
  let norm = vec4f(a_norms[ix.x], a_norms[ix.y], a_norms[ix.z], a_norms[ix.w]);
  var rmin = vec4f(0.0);
  if ((p.flags & F_RADIUS) != 0u) { rmin = vec4f(row_min[g.x], row_min[g.y], row_min[g.z], row_min[g.w]); }
  return RowState(vec4f(bitcast<f32>(INF)), vec4u(NONE), norm, lab, g, t < vec4u(p.rows), rmin);
}

// Column position s of the range ending at `end`: its index into `b` (clamped to the range) and its id.
fn col_info(s0: u32, end: u32, z: u32) -> ColInfo {
  let s = vec4u(s0) + vec4u(0u, 1u, 2u, 3u);
  let sc = min(s, vec4u(end - 1u));
  var ix = sc;
  var id = sc - vec4u(z * p.col_step);
  if ((p.flags & F_COL_LIST) != 0u) {
    ix = vec4u(ids[p.list_off + sc.x], ids[p.list_off + sc.y], ids[p.list_off + sc.z], ids[p.list_off + sc.w]);
    id = ix;
  }
  var lab = vec4u(0u);
  if ((p.flags & F_LABELS) != 0u) {
    let l = vec4u(p.label_off) + ix;
    lab = vec4u(labels[l.x], labels[l.y], labels[l.z], labels[l.w]);
  }
  let norm = vec4f(b_norms[ix.x], b_norms[ix.y], b_norms[ix.z], b_norms[ix.w]);
  return ColInfo(ix, norm, lab, id, s < vec4u(end));
}

// Writes one block's best (keeping the output's current value when F_MIN_INTO and it ranks first).
fn write_rows(s: RowState, z: u32) {
  for (var r = 0u; r < 4u; r++) {
    if (!s.live[r]) { continue; }
    let o = z * p.out_stride + s.gid[r];
    var best = vec2u(bitcast<u32>(s.d[r]), s.id[r]);
    if ((p.flags & F_MIN_INTO) != 0u) {
      let old = out[o];
      let od = bitcast<f32>(old.x);
      if (od < s.d[r] || (od == s.d[r] && old.y < best.y)) { best = old; }
    }
    out[o] = best;
  }
}

@compute @workgroup_size(WG)
fn nearest(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  if ((p.flags & F_HALTABLE) != 0u && status[0] != 0u) { return; }
  let tile = linear_invocation(wid, nwg, lid);
  let t0 = tile * 32u;
  if (t0 >= p.rows) { return; }
  let z = wid.z;
  var begin = p.col_begin + z * p.col_step;
  var end = begin + p.col_len;
  if ((p.flags & F_RANGES) != 0u) {
    begin = ids[p.ranges_off + 2u * tile];
    end = ids[p.ranges_off + 2u * tile + 1u];
  }
  let lo = begin + p.win_lo;
  let hi = min(end, begin + p.win_hi);
  var s0 = row_state(t0); var s1 = row_state(t0 + 4u);
  var s2 = row_state(t0 + 8u); var s3 = row_state(t0 + 12u);
  var s4 = row_state(t0 + 16u); var s5 = row_state(t0 + 20u);
  var s6 = row_state(t0 + 24u); var s7 = row_state(t0 + 28u);
  let dim4 = vec4u(p.dim4);
  let ao = Offs8(row_offsets(t0), row_offsets(t0 + 4u), row_offsets(t0 + 8u), row_offsets(t0 + 12u),
                 row_offsets(t0 + 16u), row_offsets(t0 + 20u), row_offsets(t0 + 24u), row_offsets(t0 + 28u));
  for (var c0 = lo; c0 < hi; c0 += 32u) {
    let c = Cols8(col_info(c0, hi, z), col_info(c0 + 4u, hi, z), col_info(c0 + 8u, hi, z),
                  col_info(c0 + 12u, hi, z), col_info(c0 + 16u, hi, z), col_info(c0 + 20u, hi, z),
                  col_info(c0 + 24u, hi, z), col_info(c0 + 28u, hi, z));
    let bo = Offs8(c.c0.ix * dim4, c.c1.ix * dim4, c.c2.ix * dim4, c.c3.ix * dim4, c.c4.ix * dim4,
                   c.c5.ix * dim4, c.c6.ix * dim4, c.c7.ix * dim4);
    let t = tile_dots(ao, bo);
    fold_row(&s0, t.r0, c); fold_row(&s1, t.r1, c); fold_row(&s2, t.r2, c); fold_row(&s3, t.r3, c);
    fold_row(&s4, t.r4, c); fold_row(&s5, t.r5, c); fold_row(&s6, t.r6, c); fold_row(&s7, t.r7, c);
  }
  write_rows(s0, z); write_rows(s1, z); write_rows(s2, z); write_rows(s3, z);
  write_rows(s4, z); write_rows(s5, z); write_rows(s6, z); write_rows(s7, z);
}

// ---------------------------------------------------------------------------------------------------
// count_before

// A block of 4 rows (or columns): global ids, labels, norms, thresholds (tau, id) and whether each exists
// (`live`) and has a threshold to count against (`counts`: it has a positive).
struct Side {
  id: vec4u, label: vec4u, norm: vec4f, tau: vec4f, pid: vec4u, live: vec4<bool>, counts: vec4<bool>,
}

fn side(first: u32, count: u32, base: u32, label_off: u32, is_row: bool) -> Side {
  let local = vec4u(first) + vec4u(0u, 1u, 2u, 3u);
  let lc = min(local, vec4u(count - 1u));
  let g = lc + vec4u(base);
  let l = g + vec4u(label_off);
  let lab = vec4u(c_labels[l.x], c_labels[l.y], c_labels[l.z], c_labels[l.w]);
  var norm: vec4f;
  if (is_row) {
    norm = vec4f(a_norms[lc.x], a_norms[lc.y], a_norms[lc.z], a_norms[lc.w]);
  } else {
    norm = vec4f(b_norms[lc.x], b_norms[lc.y], b_norms[lc.z], b_norms[lc.w]);
  }
  var tau = vec4f(0.0);
  var pid = vec4u(NONE);
  // Rows count against their thresholds; columns too in the symmetric mode (same set, same ids).
  if (is_row || (p.flags & F_SYM) != 0u) {
    let t0 = thresh[g.x]; let t1 = thresh[g.y]; let t2 = thresh[g.z]; let t3 = thresh[g.w];
    tau = bitcast<vec4f>(vec4u(t0.x, t1.x, t2.x, t3.x));
    pid = vec4u(t0.y, t1.y, t2.y, t3.y);
  }
  let live = local < vec4u(count);
  return Side(g, lab, norm, tau, pid, live, live & (pid != vec4u(NONE)));
}

// Whether each of `d` (distances from one point with threshold (tau, pid) and label `label` to the 4 points
// of `others`) counts for that point: another label, and (d, other id) before (tau, pid).
fn precedes(d: vec4f, others: Side, label: u32, tau: f32, pid: u32) -> vec4<bool> {
  return others.live & (others.label != vec4u(label)) &
    ((d < vec4f(tau)) | ((d == vec4f(tau)) & (others.id < vec4u(pid))));
}

struct Counts8 { c0: vec4u, c1: vec4u, c2: vec4u, c3: vec4u, c4: vec4u, c5: vec4u, c6: vec4u, c7: vec4u }
struct Sides8 { s0: Side, s1: Side, s2: Side, s3: Side, s4: Side, s5: Side, s6: Side, s7: Side }

// Counts of one row (distances `d` to the block's 4 columns) against the columns, and likewise of one
// column against the rows (symmetric mode: only pairs with row id < column id).
fn row_counts(d: vec4f, rs: Side, k: u32, cs: Side) -> u32 {
  var ok = precedes(d, cs, rs.label[k], rs.tau[k], rs.pid[k]) & vec4<bool>(rs.counts[k]);
  if ((p.flags & F_SYM) != 0u) { ok = ok & (cs.id > vec4u(rs.id[k])); }
  return count4(ok);
}
fn col_counts(d: vec4f, cs: Side, k: u32, rs: Side) -> u32 {
  return count4(precedes(d, rs, cs.label[k], cs.tau[k], cs.pid[k]) & vec4<bool>(cs.counts[k]) &
    (rs.id < vec4u(cs.id[k])));
}

// Counts within one 4 x 4 block: of its rows (x) and, in the symmetric mode, of its columns (y).
// (Results are returned, not added through pointers to struct members: naga 29's SPIR-V writer panics on
// those.)
struct BlockCounts { rows: vec4u, cols: vec4u }

fn count_block(acc: mat4x4f, rs: Side, cs: Side) -> BlockCounts {
  let d = block_dist(acc, rs.norm, cs.norm);  // d[c][r]
  let dr = transpose(d);                      // dr[r][c]
  let rc = vec4u(row_counts(dr[0], rs, 0u, cs), row_counts(dr[1], rs, 1u, cs), row_counts(dr[2], rs, 2u, cs),
                 row_counts(dr[3], rs, 3u, cs));
  var cc = vec4u(0u);
  if ((p.flags & F_SYM) != 0u) {
    cc = vec4u(col_counts(d[0], cs, 0u, rs), col_counts(d[1], cs, 1u, rs), col_counts(d[2], cs, 2u, rs),
               col_counts(d[3], cs, 3u, rs));
  }
  return BlockCounts(rc, cc);
}

// One row of blocks: its rows' counts and each column block's counts.
struct RowCounts { rows: vec4u, cols: Counts8 }

fn count_row(r: Row8, rs: Side, cs: Sides8) -> RowCounts {
  let k0 = count_block(r.c0, rs, cs.s0); let k1 = count_block(r.c1, rs, cs.s1);
  let k2 = count_block(r.c2, rs, cs.s2); let k3 = count_block(r.c3, rs, cs.s3);
  let k4 = count_block(r.c4, rs, cs.s4); let k5 = count_block(r.c5, rs, cs.s5);
  let k6 = count_block(r.c6, rs, cs.s6); let k7 = count_block(r.c7, rs, cs.s7);
  let rows = k0.rows + k1.rows + k2.rows + k3.rows + k4.rows + k5.rows + k6.rows + k7.rows;
  return RowCounts(rows, Counts8(k0.cols, k1.cols, k2.cols, k3.cols, k4.cols, k5.cols, k6.cols, k7.cols));
}

fn add8(x: Counts8, y: Counts8) -> Counts8 {
  return Counts8(x.c0 + y.c0, x.c1 + y.c1, x.c2 + y.c2, x.c3 + y.c3, x.c4 + y.c4, x.c5 + y.c5, x.c6 + y.c6,
                 x.c7 + y.c7);
}

fn add_counts(n: vec4u, s: Side) {
  if (all(n == vec4u(0u))) { return; }
  for (var k = 0u; k < 4u; k++) {
    if (n[k] != 0u) { atomicAdd(&counts[s.id[k]], n[k]); }
  }
}

// (row tile, column tile) of this invocation; x >= number of row tiles when it has nothing to do.
fn count_tile(wid: vec3u, nwg: vec3u, lid: u32) -> vec2u {
  let lin = linear_workgroup(wid, nwg) + p.wg_base;
  let row_tiles = (p.rows + 31u) / 32u;
  if (lin >= p.wg_end) { return vec2u(row_tiles, NONE); }
  if ((p.flags & F_SYM) == 0u) {
    return vec2u(lin / p.tiles_x, (lin % p.tiles_x) * WG + lid);
  }
  // Triangular: row tile i needs column groups g >= i / WG (group g = column tiles g*WG ..). Band b (row
  // tiles b*WG ..) has WG rows of (groups - b) workgroups each; start(b) = WG * (b * groups - b(b-1)/2).
  let groups = (row_tiles + WG - 1u) / WG;
  var lo = 0u;
  var hi = groups;  // the band holding `lin` is the last with start(b) <= lin
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (WG * (mid * groups - mid * (mid - 1u) / 2u) <= lin) { lo = mid; } else { hi = mid; }
  }
  let off = lin - WG * (lo * groups - lo * (lo - 1u) / 2u);
  let width = groups - lo;
  let i = lo * WG + off / width;
  let j = (lo + off % width) * WG + lid;
  return vec2u(i, select(j, NONE, j < i));
}

@compute @workgroup_size(WG)
fn count_before(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let ij = count_tile(wid, nwg, lid);
  let r0 = ij.x * 32u;
  let c0 = ij.y * 32u;
  if (r0 >= p.rows || ij.y == NONE || c0 >= p.cols) { return; }
  let rs = Sides8(side(r0, p.rows, p.row_base, 0u, true), side(r0 + 4u, p.rows, p.row_base, 0u, true),
                  side(r0 + 8u, p.rows, p.row_base, 0u, true), side(r0 + 12u, p.rows, p.row_base, 0u, true),
                  side(r0 + 16u, p.rows, p.row_base, 0u, true), side(r0 + 20u, p.rows, p.row_base, 0u, true),
                  side(r0 + 24u, p.rows, p.row_base, 0u, true), side(r0 + 28u, p.rows, p.row_base, 0u, true));
  let cs = Sides8(side(c0, p.cols, p.col_base, p.label_off, false),
                  side(c0 + 4u, p.cols, p.col_base, p.label_off, false),
                  side(c0 + 8u, p.cols, p.col_base, p.label_off, false),
                  side(c0 + 12u, p.cols, p.col_base, p.label_off, false),
                  side(c0 + 16u, p.cols, p.col_base, p.label_off, false),
                  side(c0 + 20u, p.cols, p.col_base, p.label_off, false),
                  side(c0 + 24u, p.cols, p.col_base, p.label_off, false),
                  side(c0 + 28u, p.cols, p.col_base, p.label_off, false));
  let dim4 = vec4u(p.dim4);
  let rows1 = vec4u(p.rows - 1u);
  let cols1 = vec4u(p.cols - 1u);
  let q = vec4u(0u, 1u, 2u, 3u);
  let ao = Offs8(min(vec4u(r0) + q, rows1) * dim4, min(vec4u(r0 + 4u) + q, rows1) * dim4,
                 min(vec4u(r0 + 8u) + q, rows1) * dim4, min(vec4u(r0 + 12u) + q, rows1) * dim4,
                 min(vec4u(r0 + 16u) + q, rows1) * dim4, min(vec4u(r0 + 20u) + q, rows1) * dim4,
                 min(vec4u(r0 + 24u) + q, rows1) * dim4, min(vec4u(r0 + 28u) + q, rows1) * dim4);
  let bo = Offs8(min(vec4u(c0) + q, cols1) * dim4, min(vec4u(c0 + 4u) + q, cols1) * dim4,
                 min(vec4u(c0 + 8u) + q, cols1) * dim4, min(vec4u(c0 + 12u) + q, cols1) * dim4,
                 min(vec4u(c0 + 16u) + q, cols1) * dim4, min(vec4u(c0 + 20u) + q, cols1) * dim4,
                 min(vec4u(c0 + 24u) + q, cols1) * dim4, min(vec4u(c0 + 28u) + q, cols1) * dim4);
  let t = tile_dots(ao, bo);
  let k0 = count_row(t.r0, rs.s0, cs); add_counts(k0.rows, rs.s0);
  let k1 = count_row(t.r1, rs.s1, cs); add_counts(k1.rows, rs.s1);
  let k2 = count_row(t.r2, rs.s2, cs); add_counts(k2.rows, rs.s2);
  let k3 = count_row(t.r3, rs.s3, cs); add_counts(k3.rows, rs.s3);
  let k4 = count_row(t.r4, rs.s4, cs); add_counts(k4.rows, rs.s4);
  let k5 = count_row(t.r5, rs.s5, cs); add_counts(k5.rows, rs.s5);
  let k6 = count_row(t.r6, rs.s6, cs); add_counts(k6.rows, rs.s6);
  let k7 = count_row(t.r7, rs.s7, cs); add_counts(k7.rows, rs.s7);
  let cc = add8(add8(add8(k0.cols, k1.cols), add8(k2.cols, k3.cols)),
                add8(add8(k4.cols, k5.cols), add8(k6.cols, k7.cols)));
  if ((p.flags & F_SYM) != 0u) {
    add_counts(cc.c0, cs.s0); add_counts(cc.c1, cs.s1); add_counts(cc.c2, cs.s2); add_counts(cc.c3, cs.s3);
    add_counts(cc.c4, cs.s4); add_counts(cc.c5, cs.s5); add_counts(cc.c6, cs.s6); add_counts(cc.c7, cs.s7);
  }
}
