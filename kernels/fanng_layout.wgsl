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
