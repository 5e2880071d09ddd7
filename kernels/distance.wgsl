// distance.wgsl: pairwise squared L2 distances, out[i, j] = max(||q_i||^2 + ||b_j||^2 - 2 q_i . b_j, 0).
// Driven by lib/ops/distance.ts (pairwiseSqL2, encodePairwiseSqL2) and lib/ops/knn.ts (knnSqL2).
//
// Numerics: f32 throughout, norms precomputed by `prep_rows`, dot products accumulated in d order four
// components at a time. The expansion loses precision when the two points are close relative to their
// norms (absolute error up to about 1e-6 * (||q||^2 + ||b||^2) * sqrt(D)); negative results are clamped to 0,
// so a point's distance to itself is 0 or a tiny positive number, not always exactly 0.
// A distance involving a NaN or +-Inf coordinate is NaN or +Inf (never a finite number: the clamp keeps
// NaN); the other entries are unaffected.
//
// Entry points (all read rows as vec4: D is padded to D4 * 4 with zeros by `prep_rows` when D % 4 != 0):
//
// prep_rows: norms[r] = sum_d src[r, d]^2, and when PAD is true dst[r, :] = src[r, :] zero-padded to D4*4.
//   0 params uniform PrepParams (fields: lib/gpu/specs/distance.ts)
//   1 src    storage read  f32 [rows x dim]
//   2 dst    storage rw    f32 [rows x dim4 * 4]   (untouched when PAD is false; bind any buffer)
//   3 norms  storage rw    f32 [rows]
//   Dispatch: one invocation per row, 64 per workgroup, workgroups over x/y (linear_workgroup).
//
// dist_reg32_v4 / dist_reg16 / dist_reg4: register-tiled kernels for CPU adapters (llvmpipe): no
//   workgroup memory and no barriers; each invocation keeps a 32 x 32, 16 x 16 or 4 x 4 output tile in
//   named mat4x4f accumulators (arrays indexed in loops are far slower there). Invocations of a workgroup
//   (WG of them) own adjacent column tiles of the same row tile.
// dist_tiled: workgroup-memory tiling for real GPUs: a 64 x 64 output tile per 16 x 16 workgroup, each
//   invocation 4 x 4, the shared dimension staged 16 components (4 vec4) at a time (tfjs
//   makeMatMulPackedVec4Source style).
//   All of them share the bindings:
//   0 params uniform DistParams (fields: lib/gpu/specs/distance.ts)
//   1 q      storage read  vec4f [rows x dim4]   (a block of query rows)
//   2 b      storage read  vec4f [cols x dim4]   (a block of base rows)
//   3 qn     storage read  f32, qn[qn_off + r]: the rows' squared norms (bound from an aligned offset)
//   4 bn     storage read  f32, bn[bn_off + c]
//   5 out    storage rw    f32, out[r * out_stride + out_col + c] for r < rows, c < cols
//   dist_reg16_v4 is dist_reg16 with one vec4 store per row of a 4 x 4 block (binding 5 viewed as vec4f)
//   and norms read four at a time (bindings 3 and 4 as vec4f, sizes rounded up to 16 bytes): only when
//   out_stride, out_col, cols, qn_off and bn_off are multiples of 4. It has no edge branches: rows and
//   column groups past the end are clamped to the last ones and rewrite the same values there.
//   Dispatch: linear workgroup id (linear_workgroup) over tiles_x * tiles_y tiles (row-major, column
//   tiles fastest); ids past the end return. Out-of-range rows and columns are clamped on load and skipped
//   (or, in dist_reg16_v4, redirected) on store, so any rows, cols >= 1 work.
// Defines: PAD (bool, prep_rows), WG (invocations per workgroup of the dist_reg* kernels), DOT (bool: the
// dist_* kernels write the dot products q_i . b_j themselves, norms unused; lib/ops/distance.ts pairwiseDot).
// The prelude (lib/gpu/spec.ts) declares PrepParams, DistParams and the helpers.

@group(0) @binding(0) var<uniform> prep: PrepParams;
@group(0) @binding(1) var<storage, read> prep_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> prep_dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> prep_norms: array<f32>;

@compute @workgroup_size(64)
fn prep_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let r = linear_workgroup(wid, nwg) * 64u + lid;
  if (r >= prep.rows) { return; }
  var s = 0.0;
  for (var d = 0u; d < prep.dim; d++) {
    let v = prep_src[r * prep.dim + d];
    s = fma(v, v, s);
    if (PAD) { prep_dst[r * prep.dim4 * 4u + d] = v; }
  }
  if (PAD) {
    for (var d = prep.dim; d < prep.dim4 * 4u; d++) { prep_dst[r * prep.dim4 * 4u + d] = 0.0; }
  }
  prep_norms[r] = s;
}

@group(0) @binding(0) var<uniform> p: DistParams;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read> qn: array<f32>;
@group(0) @binding(4) var<storage, read> bn: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@group(0) @binding(5) var<storage, read_write> out4: array<vec4f>; // the *_v4 entry points

@group(0) @binding(3) var<storage, read> qn4: array<vec4f>; // dist_reg16_v4: norms four at a time
@group(0) @binding(4) var<storage, read> bn4: array<vec4f>;

// Norms of 4 consecutive rows from `row0` (clamped to `count`) of the q or b block.
fn qnorms(row0: u32) -> vec4f {
  let i = min(vec4u(row0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.rows - 1u)) + p.qn_off;
  return vec4f(qn[i.x], qn[i.y], qn[i.z], qn[i.w]);
}
fn bnorms(col0: u32) -> vec4f {
  let i = min(vec4u(col0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.cols - 1u)) + p.bn_off;
  return vec4f(bn[i.x], bn[i.y], bn[i.z], bn[i.w]);
}

// The 4 x 4 block of distances from dot products acc (acc[c][r] = q_{row0+r} . b_{col0+c}) and norms:
// entry [r][c] of the result is the distance of row r to column c.
fn dist4x4(acc: mat4x4f, qn4: vec4f, bn4: vec4f) -> mat4x4f {
  let t = transpose(acc);
  if (DOT) { return t; }
  return mat4x4f(clamp0(vec4f(qn4.x) + bn4 - 2.0 * t[0]), clamp0(vec4f(qn4.y) + bn4 - 2.0 * t[1]),
                 clamp0(vec4f(qn4.z) + bn4 - 2.0 * t[2]), clamp0(vec4f(qn4.w) + bn4 - 2.0 * t[3]));
}

// Negative rounding residue to 0, keeping NaN (max(NaN, 0) may return 0 and would hide bad inputs).
fn clamp0(x: vec4f) -> vec4f {
  return select(x, vec4f(), x < vec4f());
}

// Stores a 4 x 4 block of dot products as distances, skipping rows and columns past the edges.
fn store4x4(acc: mat4x4f, row0: u32, col0: u32) {
  store4x4n(acc, row0, col0, qnorms(row0), bnorms(col0));
}
fn store4x4n(acc: mat4x4f, row0: u32, col0: u32, qn4: vec4f, bn4: vec4f) {
  let d = dist4x4(acc, qn4, bn4);
  for (var r = 0u; r < 4u; r++) {
    let row = row0 + r;
    if (row >= p.rows) { return; }
    let base = row * p.out_stride + p.out_col + col0;
    for (var c = 0u; c < 4u; c++) {
      if (col0 + c < p.cols) { out[base + c] = d[r][c]; }
    }
  }
}

// The same with one vec4 store per row, rows past the end clamped to the last one (see dist_reg16_v4):
// needs out_stride, out_col and cols to be multiples of 4 and col0 to be a valid group.
fn store4x4v(acc: mat4x4f, row0: u32, col0: u32, qn: vec4f, bn: vec4f) {
  let d = dist4x4(acc, qn, bn);
  let rows = min(vec4u(row0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.rows - 1u)) * p.out_stride + p.out_col + col0;
  out4[rows.x / 4u] = d[0];
  out4[rows.y / 4u] = d[1];
  out4[rows.z / 4u] = d[2];
  out4[rows.w / 4u] = d[3];
}

// Norms of 4 rows from `row0` read as one vec4 (qn_off and row0 multiples of 4); rows past the end get
// the last row's norm, like their clamped coordinates.
fn qnorms4(row0: u32) -> vec4f {
  let v = qn4[(p.qn_off + row0) / 4u];
  let l = p.qn_off + p.rows - 1u;
  let last = qn4[l / 4u][l % 4u];
  return select(vec4f(last), v, vec4u(row0) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.rows));
}

// Element offsets (in vec4s) of 4 consecutive rows starting at `row0`, clamped to `count`.
fn rows4(row0: u32, count: u32) -> vec4u {
  return min(vec4u(row0) + vec4u(0u, 1u, 2u, 3u), vec4u(count - 1u)) * p.dim4;
}

// The 4 rows at offsets `o` (+ d) as matrix columns.
fn loadQ(o: vec4u, d: u32) -> mat4x4f {
  return mat4x4f(q[o.x + d], q[o.y + d], q[o.z + d], q[o.w + d]);
}
fn loadB(o: vec4u, d: u32) -> mat4x4f {
  return mat4x4f(b[o.x + d], b[o.y + d], b[o.z + d], b[o.w + d]);
}

// A 16 x 16 tile of dot products as 4 x 4 blocks: aIJ covers rows 4I.., columns 4J.. of the tile.
struct Tile16 {
  a00: mat4x4f, a01: mat4x4f, a02: mat4x4f, a03: mat4x4f,
  a10: mat4x4f, a11: mat4x4f, a12: mat4x4f, a13: mat4x4f,
  a20: mat4x4f, a21: mat4x4f, a22: mat4x4f, a23: mat4x4f,
  a30: mat4x4f, a31: mat4x4f, a32: mat4x4f, a33: mat4x4f,
}

// The origin (row0, col0) of this invocation's size x size tile (the dist_reg* kernels); row0 >= rows
// (nothing to do) for ids past the end.
fn tile_origin(wid: vec3u, nwg: vec3u, lid: u32, size: u32) -> vec2u {
  let tile = linear_workgroup(wid, nwg);
  let ty = tile / p.tiles_x;
  let tx = tile - ty * p.tiles_x;
  return vec2u(ty * size, (tx * WG + lid) * size);
}

// `cg`: the first columns of the tile's four column groups.
fn tile16(row0: u32, cg: vec4u) -> Tile16 {
  let qo0 = rows4(row0, p.rows); let qo1 = rows4(row0 + 4u, p.rows);
  let qo2 = rows4(row0 + 8u, p.rows); let qo3 = rows4(row0 + 12u, p.rows);
  let bo0 = rows4(cg.x, p.cols); let bo1 = rows4(cg.y, p.cols);
  let bo2 = rows4(cg.z, p.cols); let bo3 = rows4(cg.w, p.cols);
  // Named accumulators: llvmpipe keeps them in registers; arrays indexed in loops are far slower there.
  var a00 = mat4x4f(); var a01 = mat4x4f(); var a02 = mat4x4f(); var a03 = mat4x4f();
  var a10 = mat4x4f(); var a11 = mat4x4f(); var a12 = mat4x4f(); var a13 = mat4x4f();
  var a20 = mat4x4f(); var a21 = mat4x4f(); var a22 = mat4x4f(); var a23 = mat4x4f();
  var a30 = mat4x4f(); var a31 = mat4x4f(); var a32 = mat4x4f(); var a33 = mat4x4f();
  for (var d = 0u; d < p.dim4; d++) {
    // transpose(Q) * B: entry [c][r] = q_r . b_c over these 4 components.
    let b0 = loadB(bo0, d); let b1 = loadB(bo1, d); let b2 = loadB(bo2, d); let b3 = loadB(bo3, d);
    let q0 = transpose(loadQ(qo0, d));
    a00 += q0 * b0; a01 += q0 * b1; a02 += q0 * b2; a03 += q0 * b3;
    let q1 = transpose(loadQ(qo1, d));
    a10 += q1 * b0; a11 += q1 * b1; a12 += q1 * b2; a13 += q1 * b3;
    let q2 = transpose(loadQ(qo2, d));
    a20 += q2 * b0; a21 += q2 * b1; a22 += q2 * b2; a23 += q2 * b3;
    let q3 = transpose(loadQ(qo3, d));
    a30 += q3 * b0; a31 += q3 * b1; a32 += q3 * b2; a33 += q3 * b3;
  }
  return Tile16(a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33);
}

@compute @workgroup_size(WG)
fn dist_reg16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let o = tile_origin(wid, nwg, lid, 16u);
  if (o.x >= p.rows) { return; }
  let t = tile16(o.x, vec4u(o.y) + vec4u(0u, 4u, 8u, 12u));
  if (o.y >= p.cols) { return; }
  // Norms once per tile (each is used by four blocks).
  let r = o.x; let c = o.y;
  let q0 = qnorms(r); let q1 = qnorms(r + 4u); let q2 = qnorms(r + 8u); let q3 = qnorms(r + 12u);
  let b0 = bnorms(c); let b1 = bnorms(c + 4u); let b2 = bnorms(c + 8u); let b3 = bnorms(c + 12u);
  store4x4n(t.a00, r, c, q0, b0); store4x4n(t.a01, r, c + 4u, q0, b1);
  store4x4n(t.a02, r, c + 8u, q0, b2); store4x4n(t.a03, r, c + 12u, q0, b3);
  store4x4n(t.a10, r + 4u, c, q1, b0); store4x4n(t.a11, r + 4u, c + 4u, q1, b1);
  store4x4n(t.a12, r + 4u, c + 8u, q1, b2); store4x4n(t.a13, r + 4u, c + 12u, q1, b3);
  store4x4n(t.a20, r + 8u, c, q2, b0); store4x4n(t.a21, r + 8u, c + 4u, q2, b1);
  store4x4n(t.a22, r + 8u, c + 8u, q2, b2); store4x4n(t.a23, r + 8u, c + 12u, q2, b3);
  store4x4n(t.a30, r + 12u, c, q3, b0); store4x4n(t.a31, r + 12u, c + 4u, q3, b1);
  store4x4n(t.a32, r + 12u, c + 8u, q3, b2); store4x4n(t.a33, r + 12u, c + 12u, q3, b3);
}

// No edge branches here (CPU adapters execute both sides of a branch): rows past the end are clamped to
// the last row for loads, norms and stores, and column groups past the end to the last group, so they
// recompute and rewrite exactly the values already stored there.
@compute @workgroup_size(WG)
fn dist_reg16_v4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let o = tile_origin(wid, nwg, lid, 16u);
  if (o.x >= p.rows) { return; }
  let cg = min(vec4u(o.y) + vec4u(0u, 4u, 8u, 12u), vec4u(p.cols - 4u));
  let t = tile16(o.x, cg);
  let r = o.x;
  let q0 = qnorms4(r); let q1 = qnorms4(r + 4u); let q2 = qnorms4(r + 8u); let q3 = qnorms4(r + 12u);
  let bi = (vec4u(p.bn_off) + cg) / 4u;
  let b0 = bn4[bi.x]; let b1 = bn4[bi.y]; let b2 = bn4[bi.z]; let b3 = bn4[bi.w];
  store4x4v(t.a00, r, cg.x, q0, b0); store4x4v(t.a01, r, cg.y, q0, b1);
  store4x4v(t.a02, r, cg.z, q0, b2); store4x4v(t.a03, r, cg.w, q0, b3);
  store4x4v(t.a10, r + 4u, cg.x, q1, b0); store4x4v(t.a11, r + 4u, cg.y, q1, b1);
  store4x4v(t.a12, r + 4u, cg.z, q1, b2); store4x4v(t.a13, r + 4u, cg.w, q1, b3);
  store4x4v(t.a20, r + 8u, cg.x, q2, b0); store4x4v(t.a21, r + 8u, cg.y, q2, b1);
  store4x4v(t.a22, r + 8u, cg.z, q2, b2); store4x4v(t.a23, r + 8u, cg.w, q2, b3);
  store4x4v(t.a30, r + 12u, cg.x, q3, b0); store4x4v(t.a31, r + 12u, cg.y, q3, b1);
  store4x4v(t.a32, r + 12u, cg.z, q3, b2); store4x4v(t.a33, r + 12u, cg.w, q3, b3);
}

// dist_reg32_v4: a 32 x 32 tile per invocation (8 x 8 blocks of 4 x 4; rows of blocks as Row8 structs),
// otherwise like dist_reg16_v4: twice the arithmetic per loaded vec4, which is what CPU adapters are
// short of. Needs the same multiples of 4 as dist_reg16_v4.
struct Row8 { c0: mat4x4f, c1: mat4x4f, c2: mat4x4f, c3: mat4x4f, c4: mat4x4f, c5: mat4x4f, c6: mat4x4f, c7: mat4x4f }
struct Offs8 { o0: vec4u, o1: vec4u, o2: vec4u, o3: vec4u, o4: vec4u, o5: vec4u, o6: vec4u, o7: vec4u }

// Accumulates row of blocks `r` += q * (the 8 column blocks in b).
fn fma_row(r: ptr<function, Row8>, q: mat4x4f, b: Row8) {
  (*r).c0 += q * b.c0; (*r).c1 += q * b.c1; (*r).c2 += q * b.c2; (*r).c3 += q * b.c3;
  (*r).c4 += q * b.c4; (*r).c5 += q * b.c5; (*r).c6 += q * b.c6; (*r).c7 += q * b.c7;
}

// Stores a row of 8 blocks (rows row0.., column groups g0, g1) with the rows' norms qn and the groups'
// norms (column k of bn0 / bn1: the norms of group g0[k] / g1[k]).
fn store_row(r: Row8, row0: u32, g0: vec4u, g1: vec4u, qn: vec4f, bn0: mat4x4f, bn1: mat4x4f) {
  store4x4v(r.c0, row0, g0.x, qn, bn0[0]); store4x4v(r.c1, row0, g0.y, qn, bn0[1]);
  store4x4v(r.c2, row0, g0.z, qn, bn0[2]); store4x4v(r.c3, row0, g0.w, qn, bn0[3]);
  store4x4v(r.c4, row0, g1.x, qn, bn1[0]); store4x4v(r.c5, row0, g1.y, qn, bn1[1]);
  store4x4v(r.c6, row0, g1.z, qn, bn1[2]); store4x4v(r.c7, row0, g1.w, qn, bn1[3]);
}

@compute @workgroup_size(WG)
fn dist_reg32_v4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let o = tile_origin(wid, nwg, lid, 32u);
  let row0 = o.x;
  if (row0 >= p.rows) { return; }
  let col0 = o.y;
  // Column groups past the end are clamped to the last group (see dist_reg16_v4).
  let g0 = min(vec4u(col0) + vec4u(0u, 4u, 8u, 12u), vec4u(p.cols - 4u));
  let g1 = min(vec4u(col0) + vec4u(16u, 20u, 24u, 28u), vec4u(p.cols - 4u));
  let bo = Offs8(rows4(g0.x, p.cols), rows4(g0.y, p.cols), rows4(g0.z, p.cols), rows4(g0.w, p.cols),
                 rows4(g1.x, p.cols), rows4(g1.y, p.cols), rows4(g1.z, p.cols), rows4(g1.w, p.cols));
  let qo = Offs8(rows4(row0, p.rows), rows4(row0 + 4u, p.rows), rows4(row0 + 8u, p.rows),
                 rows4(row0 + 12u, p.rows), rows4(row0 + 16u, p.rows), rows4(row0 + 20u, p.rows),
                 rows4(row0 + 24u, p.rows), rows4(row0 + 28u, p.rows));
  var r0 = Row8(); var r1 = Row8(); var r2 = Row8(); var r3 = Row8();
  var r4 = Row8(); var r5 = Row8(); var r6 = Row8(); var r7 = Row8();
  for (var d = 0u; d < p.dim4; d++) {
    let b = Row8(loadB(bo.o0, d), loadB(bo.o1, d), loadB(bo.o2, d), loadB(bo.o3, d),
                 loadB(bo.o4, d), loadB(bo.o5, d), loadB(bo.o6, d), loadB(bo.o7, d));
    fma_row(&r0, transpose(loadQ(qo.o0, d)), b); fma_row(&r1, transpose(loadQ(qo.o1, d)), b);
    fma_row(&r2, transpose(loadQ(qo.o2, d)), b); fma_row(&r3, transpose(loadQ(qo.o3, d)), b);
    fma_row(&r4, transpose(loadQ(qo.o4, d)), b); fma_row(&r5, transpose(loadQ(qo.o5, d)), b);
    fma_row(&r6, transpose(loadQ(qo.o6, d)), b); fma_row(&r7, transpose(loadQ(qo.o7, d)), b);
  }
  let bi0 = (vec4u(p.bn_off) + g0) / 4u;
  let bi1 = (vec4u(p.bn_off) + g1) / 4u;
  let bn0 = mat4x4f(bn4[bi0.x], bn4[bi0.y], bn4[bi0.z], bn4[bi0.w]);
  let bn1 = mat4x4f(bn4[bi1.x], bn4[bi1.y], bn4[bi1.z], bn4[bi1.w]);
  store_row(r0, row0, g0, g1, qnorms4(row0), bn0, bn1);
  store_row(r1, row0 + 4u, g0, g1, qnorms4(row0 + 4u), bn0, bn1);
  store_row(r2, row0 + 8u, g0, g1, qnorms4(row0 + 8u), bn0, bn1);
  store_row(r3, row0 + 12u, g0, g1, qnorms4(row0 + 12u), bn0, bn1);
  store_row(r4, row0 + 16u, g0, g1, qnorms4(row0 + 16u), bn0, bn1);
  store_row(r5, row0 + 20u, g0, g1, qnorms4(row0 + 20u), bn0, bn1);
  store_row(r6, row0 + 24u, g0, g1, qnorms4(row0 + 24u), bn0, bn1);
  store_row(r7, row0 + 28u, g0, g1, qnorms4(row0 + 28u), bn0, bn1);
}

@compute @workgroup_size(WG)
fn dist_reg4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let o = tile_origin(wid, nwg, lid, 4u);
  let row0 = o.x;
  if (row0 >= p.rows) { return; }
  let col0 = o.y;
  let qo = rows4(row0, p.rows);
  let bo = rows4(col0, p.cols);
  var acc = mat4x4f();
  for (var d = 0u; d < p.dim4; d++) {
    acc += transpose(loadQ(qo, d)) * loadB(bo, d);
  }
  if (col0 < p.cols) { store4x4(acc, row0, col0); }
}

// dist_tiled: 16 x 16 invocations, 64 x 64 outputs per workgroup, 4 vec4 of the shared dimension per step.
var<workgroup> tq: array<array<vec4f, 4>, 64>;
var<workgroup> tb: array<array<vec4f, 4>, 64>;

@compute @workgroup_size(16, 16)
fn dist_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tile = linear_workgroup(wid, nwg);
  let ty = tile / p.tiles_x;
  let tx = tile - ty * p.tiles_x;
  let row0 = ty * 64u;
  let col0 = tx * 64u;
  let live = row0 < p.rows; // uniform per workgroup: dead workgroups still join the barriers
  // Loader: each of the 256 invocations fetches one vec4 of each tile per step (64 rows x 4 vec4).
  let lr = lid / 4u;
  let lc = lid % 4u;
  let qrow = min(row0 + lr, p.rows - 1u) * p.dim4;
  let brow = min(col0 + lr, p.cols - 1u) * p.dim4;
  var acc = mat4x4f(); // acc[c][r]: rows lid3.y * 4 + r, columns lid3.x * 4 + c of the tile
  for (var d0 = 0u; d0 < p.dim4; d0 += 4u) {
    let d = d0 + lc;
    var qv = vec4f(); var bv = vec4f();
    if (live && d < p.dim4) { qv = q[qrow + d]; bv = b[brow + d]; }
    tq[lr][lc] = qv;
    tb[lr][lc] = bv;
    workgroupBarrier();
    for (var k = 0u; k < 4u; k++) {
      let qm = transpose(mat4x4f(tq[lid3.y * 4u][k], tq[lid3.y * 4u + 1u][k],
                                 tq[lid3.y * 4u + 2u][k], tq[lid3.y * 4u + 3u][k]));
      let bm = mat4x4f(tb[lid3.x * 4u][k], tb[lid3.x * 4u + 1u][k],
                       tb[lid3.x * 4u + 2u][k], tb[lid3.x * 4u + 3u][k]);
      acc += qm * bm;
    }
    workgroupBarrier();
  }
  if (live) { store4x4(acc, row0 + lid3.y * 4u, col0 + lid3.x * 4u); }
}
