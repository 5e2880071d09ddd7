// fanng_search.wgsl: batched FANNG graph search, a team of lanes per query (the CAGRA shape), and the
// scoring-rate ceiling it is measured against. Driven by lib/ann/search.ts; the plain-TS reference with the
// same semantics, iteration for iteration, is lib/ann/search_ref.ts (read its header for the algorithm).
//
// Vectors: column blocks of vec4 (kernels/fanng_layout.wgsl, lib/ann/vectors.ts): bindings 1..4 hold the
// base blocks, 5..8 the query blocks (a row block of the queries, or the base again for self-search); blocks
// past nblocks repeat block 0 and are never read. Graph: adjacency [N x R] u32 (NO_VERTEX past the degree),
// degrees [N]. (WGSL has no includes: the distance below has the arithmetic of kernels/fanng.wgsl's.)
//
// Work split: a workgroup holds QW teams of T lanes, one query per team (WG = QW * T). Each iteration:
//   A. the team's leader (lane 0) decides: stop, or the sources of this iteration (the next chunk of entry
//      vertices, or up to P candidates popped from the queue) and the admission bound;
//   B. all lanes of the team walk the P * R source slots side by side: each slot's vertex, unless visited
//      (a lock-free open-addressing hash in global memory), is scored; the scores go to workgroup memory;
//   C. the leader merges them: nearest-any, the results (a max-heap of the KE best that pass the filter) and
//      the candidate queue (a 4-ary min-heap; a vertex joins when closer than the bound of step A).
// Three workgroup barriers per iteration; the loop runs while any team of the workgroup is searching. On a
// GPU, T = 32 lanes score a vertex's neighbours at once; on llvmpipe a workgroup of 8 invocations is one
// SIMD vector of one thread, so its barriers are cheap and T = 8 or T = 1 (one query per lane) both work.
//
// Memory per query (global): scratch [2QC + 2KE + P + P * R + 8] u32: queue distances and vertices (QC each),
// result distances and vertices (KE each), the iteration's sources (P) and new vertices (P * R), state (queue size, result count,
// evaluations, nearest-any distance and vertex, next entry); hash [HS] (vertex + 1, 0 = empty;
// HS >= 2x the most evaluations, so the set never fills or forgets). search_lane interleaves the scratch
// slots of its queries (slot s of query q at s * queries + q: a SIMD vector's heap tops share cache lines).
//
// Bounded work per dispatch (lib/ann/rounds.ts): at most step_cap iterations per dispatch, the same for every
// team; unfinished queries keep their state in scratch and append themselves to pending (counted in
// active[round]); the next round runs just those, packed into its first slots, so short queries never hold
// a SIMD vector back for more than a round. The host dispatches rounds until none is left. first_round = 1
// starts every query.
//
// Entry point search:
//   0 params uniform SearchParams   1..8 blocks   9 adj read u32 [N x R]   10 degrees read u32 [N]
//   11 entries read u32 ([E] shared, entry_stride 0, or [queries x E])   12 labels read i32 [N]
//   13 qlabels read i32 [queries]   14 qmin read f32 [queries]   15 out_idx rw u32 [queries x K]
//   16 out_dist rw f32 [queries x K]   17 out_any rw u32 [queries]   18 out_any_dist rw f32 [queries]
//   19 out_evals rw u32 [queries] (adds its count to the value there)
//   20 scratch rw u32 [queries x (2QC + 2KE + P + P * R + 8)]
//   21 hash rw atomic u32 [queries x HS]   22 active rw atomic u32 [rounds]   23 pending rw u32 [2 x queries]
//   Results: the K best, ascending by (distance, vertex); NO_VERTEX / +Inf where fewer qualified.
// Entry point ceiling: the scoring-rate ceiling: each team walks `steps` vertices from vertex q % n (next:
//   edge (step % degree)) and scores every neighbour of each against its query row, nothing else.
//   0 params uniform CeilingParams   1..8 blocks   9 adj   10 degrees   11 sums rw f32 [queries x T]
//   (sums[q * T + lane]: the lane's running f32 sum of its distances, for the reference check)
//   12 evals rw u32 [queries] (distances computed per query).
// Entry point nearest_edge: each self-search query's nearest point as the graph knows it, in the search's
//   arithmetic: vertex v = q + self_offset, its first edge c (edges are sorted by length, and the occlusion
//   rule always keeps the nearest candidate) and d(v, c); NO_VERTEX / +Inf for a vertex without edges. One
//   evaluation per query with an edge. (Mining's eps_a: a search's first pass would expand v and find the
//   same c, at ~30x the cost.) WG = T * QW invocations per workgroup, one query each.
//   0 params uniform EdgeParams   1..8 blocks   9 adj   10 degrees   11 e_any rw u32 [queries]
//   12 e_any_dist rw f32 [queries]   13 e_evals rw u32 [queries] (set, not added to)
// Entry point rerank: the exact re-ranking of a search that walked a projection of the vectors (the k
//   nearest of each query's candidates in the vectors of bindings 1..8); see its section below.
// Dispatch: 1-D over workgroups, spilling into y (linear_workgroup, from the prelude).
// Interface: lib/gpu/specs/fanng_search.ts (uniform structs, flag bits, binding names; its prelude is prepended).
// Defines: T (lanes per query; 1 = search_lane), QW (queries per workgroup), R (maximum degree), P (sources
//   per iteration), QW4 (row width in vec4 when each invocation holds its query in registers, else 0), HALF
//   (1: rows packed as f16 pairs, see query_load).
//   Sizes that vary per call (k, results kept, queue and hash slots) are parameters, so a
//   new budget or k compiles nothing.

const NO_VERTEX = 0xffffffffu;
const WG = T * QW;
const LW = T * QW; // search_lane: queries per workgroup (T = 1)
const SLOTS = P * R;

@group(0) @binding(1) var<storage, read> b0: array<vec4f>;
@group(0) @binding(2) var<storage, read> b1: array<vec4f>;
@group(0) @binding(3) var<storage, read> b2: array<vec4f>;
@group(0) @binding(4) var<storage, read> b3: array<vec4f>;
@group(0) @binding(5) var<storage, read> q0: array<vec4f>;
@group(0) @binding(6) var<storage, read> q1: array<vec4f>;
@group(0) @binding(7) var<storage, read> q2: array<vec4f>;
@group(0) @binding(8) var<storage, read> q3: array<vec4f>;
@group(0) @binding(9) var<storage, read> adj: array<u32>;
@group(0) @binding(10) var<storage, read> degrees: array<u32>;

var<private> g_w4: u32;
var<private> g_nblocks: u32;

// +Inf through a private variable: WGSL const-evaluates bitcast<f32>(0x7f800000u) and browsers refuse it.
var<private> INF_BITS: u32 = 0x7f800000u;
fn inf() -> f32 { return bitcast<f32>(INF_BITS); }

// (d1, v1) orders before (d2, v2).
fn before(d1: f32, v1: u32, d2: f32, v2: u32) -> bool { return d1 < d2 || (d1 == d2 && v1 < v2); }

// One block's partial squared distance, 4 vec4 per loop trip; the block is chosen by `b` (WGSL cannot index
// bindings, and a uniform branch per block costs less than four copies of the loop).
fn block_part(b: u32, iq: u32, iv: u32, w: u32) -> vec4f {
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  switch b {
    case 0u: {
      for (; j + 4u <= w; j += 4u) {
        let d0 = q0[iq + j] - b0[iv + j];
        let d1 = q0[iq + j + 1u] - b0[iv + j + 1u];
        let d2 = q0[iq + j + 2u] - b0[iv + j + 2u];
        let d3 = q0[iq + j + 3u] - b0[iv + j + 3u];
        a0 = fma(d0, d0, fma(d2, d2, a0));
        a1 = fma(d1, d1, fma(d3, d3, a1));
      }
      for (; j < w; j++) { let d = q0[iq + j] - b0[iv + j]; a0 = fma(d, d, a0); }
    }
    case 1u: {
      for (; j + 4u <= w; j += 4u) {
        let d0 = q1[iq + j] - b1[iv + j];
        let d1 = q1[iq + j + 1u] - b1[iv + j + 1u];
        let d2 = q1[iq + j + 2u] - b1[iv + j + 2u];
        let d3 = q1[iq + j + 3u] - b1[iv + j + 3u];
        a0 = fma(d0, d0, fma(d2, d2, a0));
        a1 = fma(d1, d1, fma(d3, d3, a1));
      }
      for (; j < w; j++) { let d = q1[iq + j] - b1[iv + j]; a0 = fma(d, d, a0); }
    }
    case 2u: {
      for (; j + 4u <= w; j += 4u) {
        let d0 = q2[iq + j] - b2[iv + j];
        let d1 = q2[iq + j + 1u] - b2[iv + j + 1u];
        let d2 = q2[iq + j + 2u] - b2[iv + j + 2u];
        let d3 = q2[iq + j + 3u] - b2[iv + j + 3u];
        a0 = fma(d0, d0, fma(d2, d2, a0));
        a1 = fma(d1, d1, fma(d3, d3, a1));
      }
      for (; j < w; j++) { let d = q2[iq + j] - b2[iv + j]; a0 = fma(d, d, a0); }
    }
    default: {
      for (; j + 4u <= w; j += 4u) {
        let d0 = q3[iq + j] - b3[iv + j];
        let d1 = q3[iq + j + 1u] - b3[iv + j + 1u];
        let d2 = q3[iq + j + 2u] - b3[iv + j + 2u];
        let d3 = q3[iq + j + 3u] - b3[iv + j + 3u];
        a0 = fma(d0, d0, fma(d2, d2, a0));
        a1 = fma(d1, d1, fma(d3, d3, a1));
      }
      for (; j < w; j++) { let d = q3[iq + j] - b3[iv + j]; a0 = fma(d, d, a0); }
    }
  }
  return a0 + a1;
}

// Two running sums of a distance, as block_part keeps them (a0: vec4s 0 and 2 of a trip, a1: 1 and 3).
struct Sums { a0: vec4f, a1: vec4f }

// One block_part loop trip for one base row y0..y3 against query vec4s x0..x3, the same operations.
fn sums_trip(s: ptr<function, Sums>, x0: vec4f, x1: vec4f, x2: vec4f, x3: vec4f,
             y0: vec4f, y1: vec4f, y2: vec4f, y3: vec4f) {
  let d0 = x0 - y0;
  let d1 = x1 - y1;
  let d2 = x2 - y2;
  let d3 = x3 - y3;
  (*s).a0 = fma(d0, d0, fma(d2, d2, (*s).a0));
  (*s).a1 = fma(d1, d1, fma(d3, d3, (*s).a1));
}
fn sums_tail(s: ptr<function, Sums>, x: vec4f, y: vec4f) { let d = x - y; (*s).a0 = fma(d, d, (*s).a0); }

// block_part for four base rows at once (offsets iv.x .. iv.w): each query vec4 is loaded once for the
// four (the re-ranking's 784-d distances are bound by their scattered loads on llvmpipe). Column i of the
// result is block_part(b, iq, iv[i], w), operation for operation. One copy of the loop per binding, as in
// block_part: a switch per load instead (one loop) made the re-ranking 1.4x slower on llvmpipe.
fn block_part4(b: u32, iq: u32, iv: vec4u, w: u32) -> mat4x4f {
  var s0 = Sums();
  var s1 = Sums();
  var s2 = Sums();
  var s3 = Sums();
  var j = 0u;
  switch b {
    case 0u: {
      for (; j + 4u <= w; j += 4u) {
        let x0 = q0[iq + j]; let x1 = q0[iq + j + 1u]; let x2 = q0[iq + j + 2u]; let x3 = q0[iq + j + 3u];
        sums_trip(&s0, x0, x1, x2, x3, b0[iv.x + j], b0[iv.x + j + 1u], b0[iv.x + j + 2u], b0[iv.x + j + 3u]);
        sums_trip(&s1, x0, x1, x2, x3, b0[iv.y + j], b0[iv.y + j + 1u], b0[iv.y + j + 2u], b0[iv.y + j + 3u]);
        sums_trip(&s2, x0, x1, x2, x3, b0[iv.z + j], b0[iv.z + j + 1u], b0[iv.z + j + 2u], b0[iv.z + j + 3u]);
        sums_trip(&s3, x0, x1, x2, x3, b0[iv.w + j], b0[iv.w + j + 1u], b0[iv.w + j + 2u], b0[iv.w + j + 3u]);
      }
      for (; j < w; j++) {
        let x = q0[iq + j];
        sums_tail(&s0, x, b0[iv.x + j]); sums_tail(&s1, x, b0[iv.y + j]);
        sums_tail(&s2, x, b0[iv.z + j]); sums_tail(&s3, x, b0[iv.w + j]);
      }
    }
    case 1u: {
      for (; j + 4u <= w; j += 4u) {
        let x0 = q1[iq + j]; let x1 = q1[iq + j + 1u]; let x2 = q1[iq + j + 2u]; let x3 = q1[iq + j + 3u];
        sums_trip(&s0, x0, x1, x2, x3, b1[iv.x + j], b1[iv.x + j + 1u], b1[iv.x + j + 2u], b1[iv.x + j + 3u]);
        sums_trip(&s1, x0, x1, x2, x3, b1[iv.y + j], b1[iv.y + j + 1u], b1[iv.y + j + 2u], b1[iv.y + j + 3u]);
        sums_trip(&s2, x0, x1, x2, x3, b1[iv.z + j], b1[iv.z + j + 1u], b1[iv.z + j + 2u], b1[iv.z + j + 3u]);
        sums_trip(&s3, x0, x1, x2, x3, b1[iv.w + j], b1[iv.w + j + 1u], b1[iv.w + j + 2u], b1[iv.w + j + 3u]);
      }
      for (; j < w; j++) {
        let x = q1[iq + j];
        sums_tail(&s0, x, b1[iv.x + j]); sums_tail(&s1, x, b1[iv.y + j]);
        sums_tail(&s2, x, b1[iv.z + j]); sums_tail(&s3, x, b1[iv.w + j]);
      }
    }
    case 2u: {
      for (; j + 4u <= w; j += 4u) {
        let x0 = q2[iq + j]; let x1 = q2[iq + j + 1u]; let x2 = q2[iq + j + 2u]; let x3 = q2[iq + j + 3u];
        sums_trip(&s0, x0, x1, x2, x3, b2[iv.x + j], b2[iv.x + j + 1u], b2[iv.x + j + 2u], b2[iv.x + j + 3u]);
        sums_trip(&s1, x0, x1, x2, x3, b2[iv.y + j], b2[iv.y + j + 1u], b2[iv.y + j + 2u], b2[iv.y + j + 3u]);
        sums_trip(&s2, x0, x1, x2, x3, b2[iv.z + j], b2[iv.z + j + 1u], b2[iv.z + j + 2u], b2[iv.z + j + 3u]);
        sums_trip(&s3, x0, x1, x2, x3, b2[iv.w + j], b2[iv.w + j + 1u], b2[iv.w + j + 2u], b2[iv.w + j + 3u]);
      }
      for (; j < w; j++) {
        let x = q2[iq + j];
        sums_tail(&s0, x, b2[iv.x + j]); sums_tail(&s1, x, b2[iv.y + j]);
        sums_tail(&s2, x, b2[iv.z + j]); sums_tail(&s3, x, b2[iv.w + j]);
      }
    }
    default: {
      for (; j + 4u <= w; j += 4u) {
        let x0 = q3[iq + j]; let x1 = q3[iq + j + 1u]; let x2 = q3[iq + j + 2u]; let x3 = q3[iq + j + 3u];
        sums_trip(&s0, x0, x1, x2, x3, b3[iv.x + j], b3[iv.x + j + 1u], b3[iv.x + j + 2u], b3[iv.x + j + 3u]);
        sums_trip(&s1, x0, x1, x2, x3, b3[iv.y + j], b3[iv.y + j + 1u], b3[iv.y + j + 2u], b3[iv.y + j + 3u]);
        sums_trip(&s2, x0, x1, x2, x3, b3[iv.z + j], b3[iv.z + j + 1u], b3[iv.z + j + 2u], b3[iv.z + j + 3u]);
        sums_trip(&s3, x0, x1, x2, x3, b3[iv.w + j], b3[iv.w + j + 1u], b3[iv.w + j + 2u], b3[iv.w + j + 3u]);
      }
      for (; j < w; j++) {
        let x = q3[iq + j];
        sums_tail(&s0, x, b3[iv.x + j]); sums_tail(&s1, x, b3[iv.y + j]);
        sums_tail(&s2, x, b3[iv.z + j]); sums_tail(&s3, x, b3[iv.w + j]);
      }
    }
  }
  return mat4x4f(s0.a0 + s0.a1, s1.a0 + s1.a1, s2.a0 + s2.a1, s3.a0 + s3.a1);
}

// dist for four base rows at once (the generic path, QW4 = 0): component i is dist(q, v[i]).
fn dist4(q: u32, v: vec4u) -> vec4f {
  let w = g_w4;
  var a = mat4x4f();
  for (var b = 0u; b < g_nblocks; b++) { a += block_part4(b, q * w, v * w, w); }
  return vec4f(sum_dist(a[0]), sum_dist(a[1]), sum_dist(a[2]), sum_dist(a[3]));
}

// QW4 > 0: the vectors are one column block of QW4 vec4s, known when compiling. Each invocation then holds
// its query's row in private registers (query_load, once per query), so a distance reads only the base row:
// half the scattered loads, and a loop the compiler unrolls.
// HALF = 1 (with QW4 > 0): the base and query rows are f16 pairs packed in 32-bit words (lib/ann/vectors.ts
// toHalf), QW4 packed vec4s per row; the query register row holds them unpacked (2 * QW4 vec4s) and
// dist_half reads half the bytes of dist_reg, with its arithmetic over the unpacked values.
const QREG = max(QW4 * (1 + HALF), 1);
var<private> g_query: array<vec4f, QREG>;

fn query_load(q: u32) {
  if (QW4 > 0 && HALF == 1) {
    for (var j = 0u; j < u32(QW4); j++) {
      let u = bitcast<vec4u>(q0[q * u32(QW4) + j]);
      g_query[2u * j] = lo_half4(u);
      g_query[2u * j + 1u] = hi_half4(u);
    }
  } else if (QW4 > 0) {
    for (var j = 0u; j < u32(QW4); j++) { g_query[j] = q0[q * u32(QW4) + j]; }
  }
}

// The first and the second four halves of a packed vec4.
fn lo_half4(u: vec4u) -> vec4f { return vec4f(unpack2x16float(u.x), unpack2x16float(u.y)); }
fn hi_half4(u: vec4u) -> vec4f { return vec4f(unpack2x16float(u.z), unpack2x16float(u.w)); }

// dist_reg over packed rows: the same operations on the unpacked vec4s (2 * QW4 of them, an even count).
fn dist_half(v: u32) -> f32 {
  let iv = v * u32(QW4);
  let w = 2u * u32(QW4);
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  for (; j + 4u <= w; j += 4u) {
    let u0 = bitcast<vec4u>(b0[iv + j / 2u]);
    let u1 = bitcast<vec4u>(b0[iv + j / 2u + 1u]);
    let d0 = g_query[j] - lo_half4(u0);
    let d1 = g_query[j + 1u] - hi_half4(u0);
    let d2 = g_query[j + 2u] - lo_half4(u1);
    let d3 = g_query[j + 3u] - hi_half4(u1);
    a0 = fma(d0, d0, fma(d2, d2, a0));
    a1 = fma(d1, d1, fma(d3, d3, a1));
  }
  if (j < w) { // two vec4s left, into a0 in order, as dist_reg's tail loop
    let u = bitcast<vec4u>(b0[iv + j / 2u]);
    let d0 = g_query[j] - lo_half4(u);
    a0 = fma(d0, d0, a0);
    let d1 = g_query[j + 1u] - hi_half4(u);
    a0 = fma(d1, d1, a0);
  }
  let a = vec4f(0.0) + (a0 + a1);
  return sum_dist(a);
}

// block_part's arithmetic, operation for operation (the results must not depend on the path).
fn dist_reg(v: u32) -> f32 {
  let iv = v * u32(QW4);
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var j = 0u;
  for (; j + 4u <= u32(QW4); j += 4u) {
    let d0 = g_query[j] - b0[iv + j];
    let d1 = g_query[j + 1u] - b0[iv + j + 1u];
    let d2 = g_query[j + 2u] - b0[iv + j + 2u];
    let d3 = g_query[j + 3u] - b0[iv + j + 3u];
    a0 = fma(d0, d0, fma(d2, d2, a0));
    a1 = fma(d1, d1, fma(d3, d3, a1));
  }
  for (; j < u32(QW4); j++) { let d = g_query[j] - b0[iv + j]; a0 = fma(d, d, a0); }
  let a = vec4f(0.0) + (a0 + a1);
  return sum_dist(a);
}

// Squared distance between query row q and base row v; NaN counts as +Inf. With QW4 > 0, q must be the row
// query_load took.
fn dist(q: u32, v: u32) -> f32 {
  if (QW4 > 0 && HALF == 1) { return dist_half(v); }
  if (QW4 > 0) { return dist_reg(v); }
  let w = g_w4;
  var a = vec4f(0.0);
  for (var b = 0u; b < g_nblocks; b++) { a += block_part(b, q * w, v * w, w); }
  return sum_dist(a);
}

// A distance from its four partial sums; NaN counts as +Inf.
fn sum_dist(a: vec4f) -> f32 { return nan_to_inf((a.x + a.y) + (a.z + a.w)); }

// NaN as +Inf, tested on the bits (a compiler may assume floats are never NaN).
fn nan_to_inf(x: f32) -> f32 {
  return select(x, inf(), (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u);
}

// ---------------------------------------------------------------------------------------------------
// search, search_lane

// SearchParams (the prelude, from lib/gpu/specs/fanng_search.ts): queries, n, w4, nblocks, budget, ef,
// entry_count, entry_stride, has_self, self_offset, query_row_offset, filters (F_LABELS, F_RADIUS,
// F_LABEL_PENALTY), min_scale, step_cap, first_round, round, k, kept, queue_slots, hash_slots, label_penalty.

@group(0) @binding(0) var<uniform> sp: SearchParams;
@group(0) @binding(11) var<storage, read> s_entries: array<u32>;
@group(0) @binding(12) var<storage, read> s_labels: array<i32>;
@group(0) @binding(13) var<storage, read> s_qlabels: array<i32>;
@group(0) @binding(14) var<storage, read> s_qmin: array<f32>;
@group(0) @binding(15) var<storage, read_write> out_idx: array<u32>;
@group(0) @binding(16) var<storage, read_write> out_dist: array<f32>;
@group(0) @binding(17) var<storage, read_write> out_any: array<u32>;
@group(0) @binding(18) var<storage, read_write> out_any_dist: array<f32>;
@group(0) @binding(19) var<storage, read_write> out_evals: array<u32>;
@group(0) @binding(20) var<storage, read_write> s_scratch: array<u32>;
// The visited hash: atomic for teams (lanes of one query insert side by side), plain for one lane per query.
@group(0) @binding(21) var<storage, read_write> s_hash: array<atomic<u32>>;
@group(0) @binding(21) var<storage, read_write> s_hash_plain: array<u32>;
@group(0) @binding(22) var<storage, read_write> s_active: array<atomic<u32>>;
@group(0) @binding(23) var<storage, read_write> s_pending: array<u32>;

// Scratch layout of one query (slots from its first word; set by set_layout() from the parameters).
const QD = 0u;
var<private> QV: u32;   // queue vertices (queue distances start at QD)
var<private> RD: u32;   // result distances
var<private> RV: u32;   // result vertices
var<private> SRC: u32;  // the sources of the current iteration (P)
var<private> NEW: u32;  // search_lane: the unvisited targets of the current iteration (P * R)
var<private> ST: u32;   // state: queue size, result count, evaluations, nearest-any d and v, next entry
var<private> SW: u32;   // scratch words per query
var<private> KE: u32;   // results kept
var<private> HS: u32;   // hash slots (a power of two)

fn set_layout() {
  g_w4 = sp.w4;
  g_nblocks = sp.nblocks;
  KE = sp.kept;
  HS = sp.hash_slots;
  QV = sp.queue_slots;
  RD = 2u * sp.queue_slots;
  RV = RD + KE;
  SRC = RV + KE;
  NEW = SRC + P;
  ST = NEW + SLOTS;
  SW = ST + 8u;
}

// What a query does this iteration.
const IDLE = 0u;
const EXPAND = 1u;
const ENTRIES = 2u;

// The state of the query this invocation leads (lane 0 of a team, or every lane of search_lane).
var<private> g_q: u32;          // query in this dispatch
var<private> g_sw: u32;         // first scratch word of the query
var<private> g_hb: u32;         // first hash word of the query
var<private> g_stride: u32;     // words between its consecutive slots (1, or interleaved: queries)
var<private> qn: u32;           // queue size
var<private> rn: u32;           // results held
var<private> g_evals: u32;
var<private> g_any_d: f32;
var<private> g_any_v: u32;
var<private> g_next_entry: u32;
var<private> g_running: bool;   // still searching
var<private> g_finished: bool;  // the search ended in this dispatch (its outputs are written here)
var<private> g_qlabel: i32;
var<private> g_min_d: f32;
var<private> g_bound: f32;      // admission bound of the current iteration
var<private> g_worst_d: f32;    // the worst kept result, once KE are kept
var<private> g_worst_v: u32;
var<private> g_count: u32;      // sources (EXPAND) or entries (ENTRIES) of the current iteration
var<private> g_first: u32;      // first entry of the chunk (ENTRIES)

// Word of scratch slot s of this query, and of hash slot h.
fn sw(s: u32) -> u32 { return s * g_stride + g_sw; }
fn hw(h: u32) -> u32 { return g_hb + h; }

fn qd(i: u32) -> f32 { return bitcast<f32>(s_scratch[sw(QD + i)]); }
fn qv(i: u32) -> u32 { return s_scratch[sw(QV + i)]; }
fn q_set(i: u32, d: f32, v: u32) {
  s_scratch[sw(QD + i)] = bitcast<u32>(d);
  s_scratch[sw(QV + i)] = v;
}
fn rd(i: u32) -> f32 { return bitcast<f32>(s_scratch[sw(RD + i)]); }
fn rv(i: u32) -> u32 { return s_scratch[sw(RV + i)]; }
fn r_set(i: u32, d: f32, v: u32) {
  s_scratch[sw(RD + i)] = bitcast<u32>(d);
  s_scratch[sw(RV + i)] = v;
}

// Candidate queue: a 4-ary min-heap by (d, v): half the levels of a binary heap, so a pop moves half as
// many slots (its four children are read side by side), and a push climbs half as far. The entries are
// distinct (each vertex joins once), so pops come out in (d, v) order whatever the arity: the walk is the
// reference's (lib/ann/search_ref.ts keeps a binary heap). The heaps read a slot's vertex only where it is
// needed: to move the slot, or to break a tie of distances (WGSL's && and || short-circuit). On llvmpipe
// every slot read is a gather, and the heaps are most of a search's time.
fn queue_push(d: f32, v: u32) {
  if (qn >= sp.queue_slots) { return; } // never: the queue has a slot for every evaluation
  var i = qn;
  qn++;
  while (i > 0u) {
    let p = (i - 1u) / 4u;
    let pd = qd(p);
    if (!(d < pd || (d == pd && v < qv(p)))) { break; }
    q_set(i, pd, qv(p));
    i = p;
  }
  q_set(i, d, v);
}

fn queue_pop() {
  qn--;
  let n = qn;
  if (n == 0u) { return; }
  let d = qd(n);
  let v = qv(n);
  var i = 0u;
  loop {
    let first = 4u * i + 1u;
    if (first >= n) { break; }
    var c = first;
    var cd = qd(first);
    for (var j = first + 1u; j < min(first + 4u, n); j++) {
      let jd = qd(j);
      if (jd < cd || (jd == cd && qv(j) < qv(c))) {
        c = j;
        cd = jd;
      }
    }
    if (!(cd < d || (cd == d && qv(c) < v))) { break; }
    q_set(i, cd, qv(c));
    i = c;
  }
  q_set(i, d, v);
}

// Results: a binary max-heap by (d, v) of at most KE entries (the root is the worst kept).
fn results_sift_down(i0: u32, n: u32, d: f32, v: u32) {
  var i = i0;
  loop {
    var c = 2u * i + 1u;
    if (c >= n) { break; }
    var cd = rd(c);
    if (c + 1u < n) {
      let r = rd(c + 1u);
      if (cd < r || (cd == r && rv(c) < rv(c + 1u))) {
        c++;
        cd = r;
      }
    }
    if (!(d < cd || (d == cd && v < rv(c)))) { break; }
    r_set(i, cd, rv(c));
    i = c;
  }
  r_set(i, d, v);
}

fn results_add(d: f32, v: u32) {
  if (rn < KE) {
    var i = rn;
    rn++;
    while (i > 0u) {
      let p = (i - 1u) / 2u;
      let pd = rd(p);
      if (!(pd < d || (pd == d && rv(p) < v))) { break; }
      r_set(i, pd, rv(p));
      i = p;
    }
    r_set(i, d, v);
    if (rn == KE) { note_worst(); }
  } else if (before(d, v, g_worst_d, g_worst_v)) {
    results_sift_down(0u, KE, d, v);
    note_worst();
  }
}

// Caches the worst kept result (the root), so most rejections read no memory.
fn note_worst() {
  g_worst_d = rd(0u);
  g_worst_v = rv(0u);
}

fn hash_u32(x: u32) -> u32 {
  var z = x * 0x9e3779b9u;
  z ^= z >> 16u;
  z *= 0x85ebca6bu;
  z ^= z >> 13u;
  return z;
}

// Marks v visited; false when it already was. Lock-free linear probing: a slot, once claimed, never
// changes, so two lanes holding the same vertex meet at the same slot.
fn visit_shared(v: u32) -> bool {
  let key = v + 1u;
  var h = hash_u32(v) & (HS - 1u);
  loop {
    let cur = atomicLoad(&s_hash[hw(h)]);
    if (cur == key) { return false; }
    if (cur == 0u) {
      let r = atomicCompareExchangeWeak(&s_hash[hw(h)], 0u, key);
      if (r.exchanged) { return true; }
      if (r.old_value == key) { return false; }
      if (r.old_value == 0u) { continue; } // spurious failure: try the same slot again
    }
    h = (h + 1u) & (HS - 1u);
  }
  return false; // unreachable: the hash never fills
}

// visit_shared for a hash only this invocation touches.
fn visit_own(v: u32) -> bool {
  let key = v + 1u;
  var h = hash_u32(v) & (HS - 1u);
  loop {
    let cur = s_hash_plain[hw(h)];
    if (cur == key) { return false; }
    if (cur == 0u) {
      s_hash_plain[hw(h)] = key;
      return true;
    }
    h = (h + 1u) & (HS - 1u);
  }
  return false; // unreachable: the hash never fills
}

// The query of dispatch slot i: round 0 runs every query (slot i: query i); a later round runs only the
// queries the previous round left unfinished, packed into the first slots (so that a SIMD vector's lanes
// all still have work), or NO_VERTEX.
fn query_of(i: u32) -> u32 {
  if (sp.first_round != 0u) { return select(NO_VERTEX, i, i < sp.queries); }
  if (i >= atomicLoad(&s_active[sp.round - 1u])) { return NO_VERTEX; }
  return s_pending[((sp.round - 1u) % 2u) * sp.queries + i];
}

// Loads (or starts) the search of query q; g_running says whether it has work left. A fresh self-search
// still has to mark and queue its own vertex (the caller, which knows its hash).
fn begin(q: u32) {
  g_q = q;
  g_running = false;
  g_finished = false;
  g_evals = 0u;
  g_any_d = inf();
  g_any_v = NO_VERTEX;
  g_next_entry = 0u;
  qn = 0u;
  rn = 0u;
  g_qlabel = 0;
  g_min_d = 0.0;
  if ((sp.filters & F_LABELS) != 0u) { g_qlabel = s_qlabels[q]; }
  if ((sp.filters & F_RADIUS) != 0u) { g_min_d = nan_to_inf(sp.min_scale * s_qmin[q]); }
  if (sp.first_round != 0u) {
    g_running = true;
  } else {
    g_running = true;
    qn = s_scratch[sw(ST)];
    rn = s_scratch[sw(ST + 1u)];
    g_evals = s_scratch[sw(ST + 2u)];
    g_any_d = bitcast<f32>(s_scratch[sw(ST + 3u)]);
    g_any_v = s_scratch[sw(ST + 4u)];
    g_next_entry = s_scratch[sw(ST + 5u)];
    if (rn == KE) { note_worst(); }
  }
}

// The query's own vertex in self-search (0 queued at distance 0, never a result), or NO_VERTEX.
fn self_vertex() -> u32 {
  return select(NO_VERTEX, g_q + sp.self_offset, sp.has_self != 0u && sp.first_round != 0u);
}

// Step A: what this iteration does. EXPAND pops the sources into scratch (SRC); ENTRIES sets the chunk.
fn choose() -> u32 {
  if (!g_running) { return IDLE; }
  g_bound = inf();
  if (sp.ef != 0u && rn >= KE) { g_bound = ring_key(g_worst_d); }
  var mode = IDLE;
  if (g_evals >= sp.budget) {
    g_running = false;
  } else if (g_next_entry < sp.entry_count) {
    mode = ENTRIES;
    g_first = g_next_entry;
    g_count = min(SLOTS, sp.entry_count - g_next_entry);
    g_next_entry += g_count;
  } else if (qn == 0u || qd(0u) > g_bound) {
    g_running = false;
  } else {
    mode = EXPAND;
    g_count = 0u;
    while (g_count < P && qn > 0u && !(qd(0u) > g_bound)) {
      s_scratch[sw(SRC + g_count)] = qv(0u);
      queue_pop();
      g_count++;
    }
  }
  g_finished = !g_running;
  return mode;
}

// Slot s of an ENTRIES chunk starting at `first` with `count` entries, or of EXPAND source `v` (slot mod R).
fn entry_slot(s: u32, first: u32, count: u32) -> u32 {
  if (s < count) { return s_entries[g_q * sp.entry_stride + first + s]; }
  return NO_VERTEX;
}

fn edge_slot(v: u32, e: u32) -> u32 {
  if (e < min(degrees[v], R)) { return adj[v * R + e]; }
  return NO_VERTEX;
}

// The queue's key of a vertex at distance d. With a radius filter, its distance from the exclusion sphere,
// |d - r| (NaN, from r = +Inf, as +Inf): results are the nearest points beyond r, so the walk spreads from
// the sphere, not from the query; without one, d.
fn ring_key(d: f32) -> f32 {
  if ((sp.filters & F_RADIUS) == 0u) { return d; }
  return nan_to_inf(abs(d - g_min_d));
}

// Step C for one new vertex (against the bound of step A, so the order of new vertices does not matter).
fn merge(d: f32, c: u32) {
  g_evals++;
  if (before(d, c, g_any_d, g_any_v)) {
    g_any_d = d;
    g_any_v = c;
  }
  let label_ok = (sp.filters & F_LABELS) == 0u || s_labels[c] != g_qlabel;
  if (label_ok && ((sp.filters & F_RADIUS) == 0u || d > g_min_d)) { results_add(d, c); }
  var key = ring_key(d);
  if (!label_ok && (sp.filters & F_LABEL_PENALTY) != 0u) { key = nan_to_inf(key * sp.label_penalty); }
  if (key < g_bound) { queue_push(key, c); }
}

// After the dispatch: saves an unfinished search, or writes the outputs of one that ended now.
fn end() {
  let q = g_q;
  if (g_running) {
    s_scratch[sw(ST)] = qn;
    s_scratch[sw(ST + 1u)] = rn;
    s_scratch[sw(ST + 2u)] = g_evals;
    s_scratch[sw(ST + 3u)] = bitcast<u32>(g_any_d);
    s_scratch[sw(ST + 4u)] = g_any_v;
    s_scratch[sw(ST + 5u)] = g_next_entry;
    let at = atomicAdd(&s_active[sp.round], 1u);
    s_pending[(sp.round % 2u) * sp.queries + at] = q;
    return;
  }
  if (!g_finished) { return; }
  // Heap-sort the results ascending, then write the first k.
  for (var m = rn; m > 1u; m--) {
    let top_d = rd(0u);
    let top_v = rv(0u);
    let last_d = rd(m - 1u);
    let last_v = rv(m - 1u);
    r_set(m - 1u, top_d, top_v);
    results_sift_down(0u, m - 1u, last_d, last_v);
  }
  let k = sp.k;
  let kept = min(rn, k);
  for (var i = 0u; i < kept; i++) {
    out_idx[q * k + i] = rv(i);
    out_dist[q * k + i] = rd(i);
  }
  for (var i = kept; i < k; i++) {
    out_idx[q * k + i] = NO_VERTEX;
    out_dist[q * k + i] = inf();
  }
  out_any[q] = g_any_v;
  out_any_dist[q] = g_any_d;
  out_evals[q] += g_evals; // accumulates: a second pass adds to the first's count
}

var<workgroup> t_mode: array<u32, QW>;
var<workgroup> t_count: array<u32, QW>;     // sources (EXPAND) or entries (ENTRIES) this iteration
var<workgroup> t_first: array<u32, QW>;     // first entry of the chunk (ENTRIES)
var<workgroup> t_src: array<u32, QW * P>;   // popped vertices (EXPAND)
var<workgroup> cand_d: array<f32, QW * SLOTS>;
var<workgroup> cand_v: array<u32, QW * SLOTS>;
var<workgroup> wg_any: u32;

// Teams: QW teams of T lanes per workgroup (the hash is cleared by the host before the first round).
@compute @workgroup_size(WG)
fn search(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  set_layout();
  let team = lid / T;
  let lane = lid - team * T;
  let q = query_of(linear_workgroup(wid, nwg) * QW + team);
  let leader = lane == 0u && q != NO_VERTEX;
  let qrow = q + sp.query_row_offset;
  if (q != NO_VERTEX) { query_load(qrow); }
  g_running = false;
  // A team's query owns contiguous scratch and hash (its lanes probe the hash side by side).
  g_q = q;
  g_sw = q * SW;
  g_hb = q * HS;
  g_stride = 1u;
  if (leader) {
    begin(q);
    let self_v = self_vertex();
    if (self_v < sp.n) {
      visit_shared(self_v);
      queue_push(0.0, self_v);
    }
  }
  for (var it = 0u; it < sp.step_cap; it++) {
    // A. The leader picks this iteration's sources.
    if (leader) {
      let mode = choose();
      t_mode[team] = mode;
      t_count[team] = g_count;
      t_first[team] = g_first;
      for (var i = 0u; mode == EXPAND && i < g_count; i++) { t_src[team * P + i] = s_scratch[sw(SRC + i)]; }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var a = IDLE;
      for (var t = 0u; t < QW; t++) { a |= t_mode[t]; }
      wg_any = a;
    }
    if (workgroupUniformLoad(&wg_any) == IDLE) { break; }

    // B. All lanes score the unvisited vertices of the source slots.
    let mode = t_mode[team];
    if (mode != IDLE) {
      let count = t_count[team];
      let first = t_first[team];
      for (var s = lane; s < SLOTS; s += T) {
        var c = NO_VERTEX;
        if (mode == ENTRIES) {
          c = entry_slot(s, first, count);
        } else {
          let src = s / R;
          if (src < count) { c = edge_slot(t_src[team * P + src], s - src * R); }
        }
        var d = inf();
        if (c < sp.n && visit_shared(c)) {
          d = dist(qrow, c);
        } else {
          c = NO_VERTEX;
        }
        cand_d[team * SLOTS + s] = d;
        cand_v[team * SLOTS + s] = c;
      }
    }
    workgroupBarrier();

    // C. The leader merges the new vertices.
    if (leader && mode != IDLE) {
      for (var s = 0u; s < SLOTS; s++) {
        let c = cand_v[team * SLOTS + s];
        if (c != NO_VERTEX) { merge(cand_d[team * SLOTS + s], c); }
      }
    }
  }
  if (leader) { end(); }
}

// One query per invocation, LW per workgroup, no barriers: the shape for CPU adapters, where a workgroup's
// invocations are the SIMD lanes of one thread. Scores and merges each new vertex in turn.
@compute @workgroup_size(LW)
fn search_lane(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  set_layout();
  let q = query_of(linear_workgroup(wid, nwg) * LW + lid);
  if (q == NO_VERTEX) { return; }
  let qrow = q + sp.query_row_offset;
  query_load(qrow);
  // Slots interleaved across queries: the lanes of a SIMD vector touch neighbouring words (heap tops,
  // state), which share cache lines.
  g_sw = q;
  g_hb = q * HS;
  g_stride = sp.queries;
  begin(q);
  let self_v = self_vertex();
  if (self_v < sp.n) {
    visit_own(self_v);
    queue_push(0.0, self_v);
  }
  for (var it = 0u; it < sp.step_cap; it++) {
    let mode = choose();
    if (mode == IDLE) { break; }
    if (mode == ENTRIES) {
      for (var s = 0u; s < g_count; s++) {
        let c = entry_slot(s, g_first, g_count);
        if (c < sp.n && visit_own(c)) { merge(dist(qrow, c), c); }
      }
    } else {
      // Unvisited targets first, then score them: the lanes of a SIMD vector then score side by side
      // instead of idling through each other's visited edges.
      var fresh = 0u;
      for (var src = 0u; src < g_count; src++) {
        let v = s_scratch[sw(SRC + src)];
        let deg = min(degrees[v], R);
        for (var e = 0u; e < deg; e++) {
          let c = adj[v * R + e];
          if (c < sp.n && visit_own(c)) {
            s_scratch[sw(NEW + fresh)] = c;
            fresh++;
          }
        }
      }
      for (var i = 0u; i < fresh; i++) {
        let c = s_scratch[sw(NEW + i)];
        merge(dist(qrow, c), c);
      }
    }
  }
  end();
}

// ---------------------------------------------------------------------------------------------------
// ceiling

// CeilingParams (the prelude): queries, n, w4, nblocks, steps.

@group(0) @binding(0) var<uniform> cp: CeilingParams;
@group(0) @binding(11) var<storage, read_write> c_sums: array<f32>;
@group(0) @binding(12) var<storage, read_write> c_evals: array<u32>;

@compute @workgroup_size(WG)
fn ceiling(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  g_w4 = cp.w4;
  g_nblocks = cp.nblocks;
  let team = lid / T;
  let lane = lid - team * T;
  let q = linear_workgroup(wid, nwg) * QW + team;
  if (q >= cp.queries || cp.n == 0u) { return; }
  query_load(q);
  var v = q % cp.n;
  var sum = 0.0;
  var evals = 0u;
  for (var s = 0u; s < cp.steps; s++) {
    let deg = min(degrees[v], R);
    if (deg == 0u) { break; }
    for (var e = lane; e < deg; e += T) { sum += dist(q, adj[v * R + e]); }
    evals += deg;
    v = adj[v * R + s % deg];
  }
  c_sums[q * T + lane] = sum;
  if (lane == 0u) { c_evals[q] = evals; }
}

// ---------------------------------------------------------------------------------------------------
// nearest_edge

// EdgeParams (the prelude): queries, n, w4, nblocks, self_offset.

@group(0) @binding(0) var<uniform> ep: EdgeParams;
@group(0) @binding(11) var<storage, read_write> e_any: array<u32>;
@group(0) @binding(12) var<storage, read_write> e_any_dist: array<f32>;
@group(0) @binding(13) var<storage, read_write> e_evals: array<u32>;

@compute @workgroup_size(WG)
fn nearest_edge(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  g_w4 = ep.w4;
  g_nblocks = ep.nblocks;
  let q = linear_workgroup(wid, nwg) * WG + lid;
  if (q >= ep.queries) { return; }
  let v = q + ep.self_offset;
  var c = NO_VERTEX;
  var d = inf();
  var evals = 0u;
  if (v < ep.n && min(degrees[v], R) > 0u) {
    c = adj[v * R];
    if (c < ep.n) {
      query_load(v);
      d = dist(v, c);
      evals = 1u;
    } else {
      c = NO_VERTEX;
    }
  }
  e_any[q] = c;
  e_any_dist[q] = d;
  e_evals[q] = evals;
}

// ---------------------------------------------------------------------------------------------------
// rerank

// RerankParams (the prelude): queries, n, w4, nblocks, cands, k, query_row_offset, cand_start, cand_end,
// first. The exact re-ranking of a search that walked a projection of the vectors (lib/ann/rerank.ts):
// query q (row q + query_row_offset of the query blocks) keeps, of its candidates c[q][cand_start ..
// cand_end) (NO_VERTEX and ids >= n skipped), the k nearest in the vectors of bindings 1..8, ascending by
// (distance, vertex), in out rows that a dispatch with `first` = 1 fills with NO_VERTEX / +Inf; a later
// dispatch carries on from them (candidate ranges split so that no invocation passes llvmpipe's loop limit,
// lib/gpu/rounds.ts). Each row's last slot is its worst kept result (+Inf / NO_VERTEX while it is not
// full), so no count is kept. Also writes each query's best result as its nearest-any and adds the
// candidates scored to its evaluations.
// Work split: rerank, one query per workgroup of T lanes (QW = 1): the lanes score T candidates side by side
// into workgroup memory, then lane 0 merges them into the rows (hardware adapters). rerank_lane, one query
// per invocation (T = 1, QW queries per workgroup): on llvmpipe, where a workgroup is one thread's SIMD
// vector, it is 1.4x faster than teams of 8 (no barriers, no serial merge).
//   0 params uniform RerankParams   1..8 blocks   9 r_cand read u32 [queries x cands]
//   10 r_idx rw u32 [queries x k]   11 r_dist rw f32 [queries x k]   12 r_any rw u32 [queries]
//   13 r_any_dist rw f32 [queries]   14 r_evals rw u32 [queries]

@group(0) @binding(0) var<uniform> rp: RerankParams;
@group(0) @binding(9) var<storage, read> r_cand: array<u32>;
@group(0) @binding(10) var<storage, read_write> r_idx: array<u32>;
@group(0) @binding(11) var<storage, read_write> r_dist: array<f32>;
@group(0) @binding(12) var<storage, read_write> r_any: array<u32>;
@group(0) @binding(13) var<storage, read_write> r_any_dist: array<f32>;
@group(0) @binding(14) var<storage, read_write> r_evals: array<u32>;

var<workgroup> r_tile_d: array<f32, T>;
var<workgroup> r_tile_v: array<u32, T>;

// Inserts (d, v) into the sorted row at o (k slots, the last the worst kept) if it beats the worst.
fn rerank_insert(o: u32, d: f32, v: u32) {
  let last = o + rp.k - 1u;
  if (!before(d, v, r_dist[last], r_idx[last])) { return; }
  var i = rp.k - 1u;
  while (i > 0u && before(d, v, r_dist[o + i - 1u], r_idx[o + i - 1u])) {
    r_dist[o + i] = r_dist[o + i - 1u];
    r_idx[o + i] = r_idx[o + i - 1u];
    i--;
  }
  r_dist[o + i] = d;
  r_idx[o + i] = v;
}

@compute @workgroup_size(WG)
fn rerank(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  g_w4 = rp.w4;
  g_nblocks = rp.nblocks;
  let q = linear_workgroup(wid, nwg);
  if (q >= rp.queries || rp.k == 0u) { return; }
  let row = q + rp.query_row_offset;
  let o = q * rp.k;
  // Lane 0 alone writes and reads the rows (a workgroup barrier does not order storage memory).
  if (rp.first != 0u && lid == 0u) {
    for (var j = 0u; j < rp.k; j++) {
      r_idx[o + j] = NO_VERTEX;
      r_dist[o + j] = inf();
    }
  }
  query_load(row);
  var evals = 0u;
  for (var c0 = rp.cand_start; c0 < rp.cand_end; c0 += T) {
    let c = c0 + lid;
    var d = inf();
    var v = NO_VERTEX;
    if (c < rp.cand_end) {
      v = r_cand[q * rp.cands + c];
      if (v < rp.n) { d = dist(row, v); } else { v = NO_VERTEX; }
    }
    r_tile_d[lid] = d;
    r_tile_v[lid] = v;
    workgroupBarrier();
    if (lid == 0u) {
      for (var j = 0u; j < T; j++) {
        if (r_tile_v[j] != NO_VERTEX) {
          evals++;
          rerank_insert(o, r_tile_d[j], r_tile_v[j]);
        }
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    r_any[q] = r_idx[o];
    r_any_dist[q] = r_dist[o];
    r_evals[q] += evals;
  }
}

@compute @workgroup_size(WG)
fn rerank_lane(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  g_w4 = rp.w4;
  g_nblocks = rp.nblocks;
  let q = linear_workgroup(wid, nwg) * WG + lid;
  if (q >= rp.queries || rp.k == 0u) { return; }
  let row = q + rp.query_row_offset;
  let o = q * rp.k;
  if (rp.first != 0u) {
    for (var j = 0u; j < rp.k; j++) {
      r_idx[o + j] = NO_VERTEX;
      r_dist[o + j] = inf();
    }
  }
  query_load(row);
  var evals = 0u;
  var c = rp.cand_start;
  if (QW4 == 0) {
    // Four candidates a trip (dist4); a skipped one is scored as vertex 0 and dropped.
    for (; c + 4u <= rp.cand_end; c += 4u) {
      let i = q * rp.cands + c;
      let v = vec4u(r_cand[i], r_cand[i + 1u], r_cand[i + 2u], r_cand[i + 3u]);
      let ok = v < vec4u(rp.n);
      let d = dist4(row, select(vec4u(0u), v, ok));
      for (var t = 0u; t < 4u; t++) {
        if (ok[t]) {
          evals++;
          rerank_insert(o, d[t], v[t]);
        }
      }
    }
  }
  for (; c < rp.cand_end; c++) {
    let v = r_cand[q * rp.cands + c];
    if (v >= rp.n) { continue; }
    evals++;
    rerank_insert(o, dist(row, v), v);
  }
  r_any[q] = r_idx[o];
  r_any_dist[q] = r_dist[o];
  r_evals[q] += evals;
}
