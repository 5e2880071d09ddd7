// sgd.wgsl: SGD with momentum and weight decay (PyTorch's torch.optim.SGD semantics, no dampening, no
// Nesterov) on one parameter tensor, after summing the split-K partial gradients of linear.wgsl.
// Driven by lib/ops/sgd.ts (encodeSgdUpdate).
//
//   g    = sum_{s < splits} grad[s, i]          (the gradient; written back to grad[0, i] when splits > 1)
//   g'   = g + weight_decay * w[i]
//   v[i] = momentum * v[i] + g'                 (v starts at 0, so the first step gives v = g' as PyTorch)
//   w[i] = w[i] - lr * v[i]                     (lr already includes the parameter group's multiplier)
// With apply == 0 only the reduction runs (for reading gradients without changing the parameters).
//
// Bindings (group 0):
//   0 params   uniform Params (fields: lib/gpu/specs/sgd.ts)
//   1 w        rw vec4<f32> [count4]            parameters
//   2 v        rw vec4<f32> [count4]            momentum buffer
//   3 grad     rw vec4<f32> [splits x count4]   partial gradients
// Dispatch: one invocation per vec4, WG per workgroup; workgroups past 65,535 spill into y
// (i = linear_invocation(wid, nwg, lid)).
// Defines: WG. The prelude (lib/gpu/spec.ts) declares Params and the helpers.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> grad: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_invocation(wid, nwg, lid);
  if (i >= p.count4) { return; }
  var g = grad[i];
  for (var s = 1u; s < p.splits; s++) { g += grad[s * p.count4 + i]; }
  if (p.splits > 1u) { grad[i] = g; }
  if (p.apply == 0u) { return; }
  let wi = w[i];
  let vi = p.momentum * v[i] + g + p.weight_decay * wi;
  v[i] = vi;
  w[i] = wi - p.lr * vi;
}
