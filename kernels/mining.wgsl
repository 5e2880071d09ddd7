// mining.wgsl: the exclusion radius of smart mining (docs/method.md section 3): radius[i] = kappa * eps[i] in f32,
// so the radius never leaves the GPU between the eps search and the filtered search. Driven by
// lib/mining/radius.ts (encodeRadius; reference radiusRef).
// Entry point radius:
//   0 params uniform Params (fields: lib/gpu/specs/mining.ts)   1 eps read f32 [count]   2 out rw f32 [count]
// Dispatch: one invocation per element, WG per workgroup, workgroups spill into y
// (linear_invocation(wid, nwg, lid)). Defines: WG. The prelude (lib/gpu/spec.ts) declares Params and the
// helpers.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> eps: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn radius(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i < p.count) { out[i] = p.kappa * eps[i]; }
}
