// gather.wgsl: row gather. out[i, :] = src[index[i], :] for i < count.
// Driven by lib/ops/gather.ts (gatherRows).
// The source may be larger than one storage binding, so it is bound one row block at a time:
// a dispatch copies only the rows whose index falls in [block_start, block_start + block_rows).
// Bindings (group 0):
//   0 params  uniform Params (its fields are declared in lib/gpu/specs/gather.ts)
//   1 src     storage read  f32 [block_rows x cols]  (rows block_start.. of the source)
//   2 index   storage read  u32 [count]
//   3 out     storage rw    f32 [count x cols]
// Rows whose index is out of range (>= total_rows) are written as zeros by the block at 0.
// Dispatch: one workgroup of WG threads per output row; rows beyond 65,535 spill into dispatch y
// (linear row = linear_workgroup(wid, nwg)). Each thread copies every WG-th column.
// Defines: WG (threads per workgroup). The prelude (lib/gpu/spec.ts) declares Params and the helpers.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= params.count) { return; }
  let s = index[row];
  let cols = params.cols;
  if (s >= params.total_rows) {
    if (params.block_start == 0u) {
      for (var c = lid; c < cols; c += WG) { out[row * cols + c] = 0.0; }
    }
    return;
  }
  if (s < params.block_start || s - params.block_start >= params.block_rows) { return; }
  let base = (s - params.block_start) * cols;
  for (var c = lid; c < cols; c += WG) { out[row * cols + c] = src[base + c]; }
}
