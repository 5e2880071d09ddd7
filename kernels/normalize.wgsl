// normalize.wgsl: row-wise L2 normalisation and its backward pass.
// Driven by lib/ops/normalize.ts (encodeL2NormalizeForward, encodeL2NormalizeBackward).
//
// forward:  n[r] = ||z[r, :]||,  e[r, :] = z[r, :] / max(n[r], EPS)          (as torch F.normalize)
//           with scale == 0: e[r, :] = z[r, :] (a plain copy between row strides, e.g. to unpad rows)
//   0 params uniform Params   1 z read f32 [rows x ld_in]   2 e rw f32 [rows x ld_out]   3 n rw f32 [rows]
// backward: dz[r, :] = (de - e * <e, de>) / n      where n > EPS (the Jacobian of z / ||z||)
//           dz[r, :] = de / EPS                    where n <= EPS (the clamped, linear regime)
//   0 params   1 e read f32 [rows x ld_e]   2 de read f32 [rows x ld_in]   3 n read f32 [rows]
//   4 dz rw f32 [rows x ld_out]
// Only columns 0..dim-1 are read and written, so padded row strides keep their padding untouched.
// Dispatch: one invocation per row, WG per workgroup; workgroups past 65,535 spill into y
// (row = linear_invocation(wid, nwg, lid)).
// Defines: WG (invocations per workgroup), EPS (the norm floor, 1e-12).
// The prelude (lib/gpu/spec.ts) declares Params (fields: lib/gpu/specs/normalize.ts) and the helpers.

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> fz: array<f32>;
@group(0) @binding(2) var<storage, read_write> fe: array<f32>;
@group(0) @binding(3) var<storage, read_write> fn_: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let r = linear_invocation(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let zb = r * p.ld_in;
  var s = 0.0;
  for (var j = 0u; j < p.dim; j++) { let v = fz[zb + j]; s = fma(v, v, s); }
  let n = sqrt(s);
  fn_[r] = n;
  let inv = select(1.0, 1.0 / max(n, EPS), p.scale == 1u);
  let eb = r * p.ld_out;
  for (var j = 0u; j < p.dim; j++) { fe[eb + j] = fz[zb + j] * inv; }
}

@group(0) @binding(1) var<storage, read> be: array<f32>;
@group(0) @binding(2) var<storage, read> bde: array<f32>;
@group(0) @binding(3) var<storage, read> bn: array<f32>;
@group(0) @binding(4) var<storage, read_write> bdz: array<f32>;

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let r = linear_invocation(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let eb = r * p.ld_e;
  let db = r * p.ld_in;
  let ob = r * p.ld_out;
  let n = bn[r];
  if (n <= EPS) {
    for (var j = 0u; j < p.dim; j++) { bdz[ob + j] = bde[db + j] / EPS; }
    return;
  }
  var dot_ = 0.0;
  for (var j = 0u; j < p.dim; j++) { dot_ = fma(be[eb + j], bde[db + j], dot_); }
  let inv = 1.0 / n;
  for (var j = 0u; j < p.dim; j++) { bdz[ob + j] = (bde[db + j] - be[eb + j] * dot_) * inv; }
}
