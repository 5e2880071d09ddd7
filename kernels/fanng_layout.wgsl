// fanng_layout.wgsl: copies row-major vectors into the column blocks the FANNG kernels read.
// Driven by lib/ann/vectors.ts (encodeToBlocks).
//
// Graph search reads arbitrary rows, so the vectors cannot be bound one row block at a time. They are split
// by columns instead: block b holds, for every row, the 4 * w4 columns starting at b * 4 * w4, as w4 vec4s
// (zero past the last real column). Each block fits one storage binding and every row's distance is the sum
// over blocks, so no invocation ever branches on which block holds a row.
//
// Entry point to_blocks: dst[r * w4 + j] = src[r, col0 + 4j .. col0 + 4j + 3] (zero where >= dims)
//   0 params uniform Params (fields: lib/gpu/specs/fanng_layout.ts)
//   1 src    storage read  f32 [rows x dims]          (a row block of the source, rows dst_row0..)
//   2 dst    storage rw    vec4f [total_rows x w4]    (one column block, whole)
// Dispatch: one invocation per (row, vec4) of the block, WG per workgroup, workgroups spill into y
// (linear_invocation(wid, nwg, lid)).
// Defines: WG. The prelude (lib/gpu/spec.ts) declares Params and the helpers.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;

@compute @workgroup_size(WG)
fn to_blocks(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i >= p.rows * p.w4) { return; }
  let r = i / p.w4;
  let j = i - r * p.w4;
  var v = vec4f(0.0);
  for (var k = 0u; k < 4u; k++) {
    let c = p.col0 + 4u * j + k;
    if (c < p.dims) { v[k] = src[r * p.dims + c]; }
  }
  dst[(p.dst_row0 + r) * p.w4 + j] = v;
}

// Entry point half_max: the largest finite |value| of a one-block matrix, as f32 bits (a positive float's
// bits order as the float does), atomically maxed into hm_out[0] (the host zeroes it).
//   0 hp uniform HalfParams   1 h_src read vec4f [rows x w4]   2 hm_out rw atomic u32 [1]
// Entry point to_half: the rows of a one-block matrix times `scale` (a power of two), rounded to f16 and
// packed two per u32 (pack2x16float; values past the f16 range saturate to +-65504):
//   h_dst[r * w4h + j] = the vec4s 2j and 2j + 1 of row r (zero past w4)
//   0 hp uniform HalfParams   1 h_src read vec4f [rows x w4]   2 h_dst rw vec4u [rows x w4h]
// One invocation per (row, packed vec4); Defines: WG.

@group(0) @binding(0) var<uniform> hp: HalfParams;
@group(0) @binding(1) var<storage, read> h_src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> hm_out: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> h_dst: array<vec4u>;

@compute @workgroup_size(WG)
fn half_max(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i >= hp.rows * hp.w4) { return; }
  let a = bitcast<vec4u>(abs(h_src[i]));
  var m = 0u;
  for (var k = 0u; k < 4u; k++) { m = select(m, max(m, a[k]), a[k] < 0x7f800000u); }
  if (m > 0u) { atomicMax(&hm_out[0], m); }
}

const F16_MAX = 65504.0;

fn half_pair(v: vec2f) -> u32 {
  return pack2x16float(clamp(v * hp.scale, vec2f(-F16_MAX), vec2f(F16_MAX)));
}

@compute @workgroup_size(WG)
fn to_half(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i >= hp.rows * hp.w4h) { return; }
  let r = i / hp.w4h;
  let j = i - r * hp.w4h;
  let a = h_src[r * hp.w4 + 2u * j];
  var b = vec4f(0.0);
  if (2u * j + 1u < hp.w4) { b = h_src[r * hp.w4 + 2u * j + 1u]; }
  h_dst[i] = vec4u(half_pair(a.xy), half_pair(a.zw), half_pair(b.xy), half_pair(b.zw));
}
