// losses.wgsl: triplet loss + global loss over one batch of B triplets, forward (one workgroup: the batch
// statistics couple all triplets) and backward (a parallel pass over (triplet, column) pairs).
// Driven by lib/ops/losses.ts (encodeTripletLoss).
//
// With d(i, j) the squared Euclidean distance between embedding rows:
//   dap_i = d(a_i, p_i), dan_i = d(a_i, n_i), h_i = dap_i - dan_i + margin
//   L_triplet = mean_i max(0, h_i)
//   L_global  = var(dap) + var(dan) + lambda * max(0, mean(dap) - mean(dan) + t)   (population variance)
//   L         = L_triplet + global_weight * L_global;  training error = mean_i [dap_i >= dan_i]
// Backward (entry point `grad_main`): the gradient of L with respect to every slot row (a_i, p_i, n_i), written
// per slot, so a sample used in several triplets gets one gradient row per use and nothing is lost
// without float atomics. With g_ap = dL/ddap_i and g_an = dL/ddan_i:
//   g_ap = [h_i > 0] / B + w * (2 (dap_i - mean dap) / B + lambda [gap > 0] / B)
//   g_an = -[h_i > 0] / B + w * (2 (dan_i - mean dan) / B - lambda [gap > 0] / B)
//   grad a = 2 g_ap (a - p) + 2 g_an (a - n), grad p = -2 g_ap (a - p), grad n = -2 g_an (a - n)
// The hinges use the subgradient 0 at exactly 0 (h_i = 0 or gap = 0 counts as inactive), as ReLU does.
//
// Bindings (group 0):
//   0 params   uniform Params (fields: lib/gpu/specs/losses.ts)
//   1 emb      read f32 [rows x ld_e]              embedding rows
//   2 triplets read u32 [B x 3]                    (a, p, n) row indices, used when indexed == 1;
//                                                  otherwise triplet i is rows (3i, 3i+1, 3i+2)
//   3 dists    f32 [B x 2]                         (dap_i, dan_i): written by main, read by grad_main
//   4 scalars  f32 [12]                            loss, triplet, global, error, mean dap, mean dan,
//                                                  var dap, var dan, active fraction, B, gap
//                                                  (mean dap - mean dan + t), 0: written by main, read by grad_main
//   5 grad     rw f32 [3B x ld_g]                  slot gradients, row 3i + s (grad_main only)
// Dispatch: main: exactly one workgroup of WG invocations. grad_main: one invocation per (triplet, column),
// WG per workgroup, workgroups past 65,535 spill into y (e = linear_invocation(wid, nwg, lid)).
// Defines: WG (a power of two). The prelude (lib/gpu/spec.ts) declares Params and the helpers.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> emb: array<f32>;
@group(0) @binding(2) var<storage, read> triplets: array<u32>;
@group(0) @binding(3) var<storage, read_write> dists: array<f32>;
@group(0) @binding(4) var<storage, read_write> scalars: array<f32>;

var<workgroup> red: array<array<f32, WG>, 5>;

fn slot_row(i: u32, s: u32) -> u32 {
  if (p.indexed == 1u) {
    let r = triplets[3u * i + s];
    return select(0u, r, r < p.rows);
  }
  return 3u * i + s;
}

// Sums red[0..n)[*] over the workgroup into red[*][0].
fn reduce(lid: u32, n: u32) {
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    workgroupBarrier();
    if (lid < stride) {
      for (var q = 0u; q < n; q++) { red[q][lid] += red[q][lid + stride]; }
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let B = p.count;
  let D = p.dim;
  // Pass 1: distances and the sums that need no mean.
  var s_ap = 0.0;
  var s_an = 0.0;
  var s_h = 0.0;
  var n_act = 0.0;
  var n_err = 0.0;
  for (var i = lid; i < B; i += WG) {
    let a = slot_row(i, 0u) * p.ld_e;
    let pp = slot_row(i, 1u) * p.ld_e;
    let n = slot_row(i, 2u) * p.ld_e;
    var dap = 0.0;
    var dan = 0.0;
    for (var j = 0u; j < D; j++) {
      let av = emb[a + j];
      let u = av - emb[pp + j];
      let v = av - emb[n + j];
      dap = fma(u, u, dap);
      dan = fma(v, v, dan);
    }
    dists[2u * i] = dap;
    dists[2u * i + 1u] = dan;
    s_ap += dap;
    s_an += dan;
    let h = dap - dan + p.margin;
    if (h > 0.0) { s_h += h; n_act += 1.0; }
    if (dap >= dan) { n_err += 1.0; }
  }
  red[0][lid] = s_ap;
  red[1][lid] = s_an;
  red[2][lid] = s_h;
  red[3][lid] = n_act;
  red[4][lid] = n_err;
  reduce(lid, 5u);
  let fb = f32(B);
  let mu_ap = red[0][0] / fb;
  let mu_an = red[1][0] / fb;
  let trip = red[2][0] / fb;
  let act_frac = red[3][0] / fb;
  let err = red[4][0] / fb;
  workgroupBarrier();
  // Pass 2: variances around the means (two-pass for accuracy). Each invocation re-reads its own dists.
  var v_ap = 0.0;
  var v_an = 0.0;
  for (var i = lid; i < B; i += WG) {
    let x = dists[2u * i] - mu_ap;
    let y = dists[2u * i + 1u] - mu_an;
    v_ap = fma(x, x, v_ap);
    v_an = fma(y, y, v_an);
  }
  red[0][lid] = v_ap;
  red[1][lid] = v_an;
  reduce(lid, 2u);
  let var_ap = red[0][0] / fb;
  let var_an = red[1][0] / fb;
  let gap = mu_ap - mu_an + p.t;
  let glob = var_ap + var_an + p.lambda * max(gap, 0.0);
  if (lid == 0u) {
    scalars[0] = trip + p.global_weight * glob;
    scalars[1] = trip;
    scalars[2] = glob;
    scalars[3] = err;
    scalars[4] = mu_ap;
    scalars[5] = mu_an;
    scalars[6] = var_ap;
    scalars[7] = var_an;
    scalars[8] = act_frac;
    scalars[9] = fb;
    scalars[10] = gap;
    scalars[11] = 0.0;
  }
}

@group(0) @binding(3) var<storage, read> gdists: array<f32>;
@group(0) @binding(4) var<storage, read> gscalars: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(WG)
fn grad_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let e = linear_invocation(wid, nwg, lid);
  let B = p.count;
  let D = p.dim;
  if (e >= B * D) { return; }
  let i = e / D;
  let j = e - i * D;
  let fb = f32(B);
  let w = p.global_weight;
  let gate = select(0.0, p.lambda, gscalars[10] > 0.0);
  let dap = gdists[2u * i];
  let dan = gdists[2u * i + 1u];
  let hinge = select(0.0, 1.0, dap - dan + p.margin > 0.0);
  let g_ap = (hinge + w * (2.0 * (dap - gscalars[4]) + gate)) / fb;
  let g_an = (-hinge + w * (2.0 * (dan - gscalars[5]) - gate)) / fb;
  let av = emb[slot_row(i, 0u) * p.ld_e + j];
  let u = av - emb[slot_row(i, 1u) * p.ld_e + j];
  let v = av - emb[slot_row(i, 2u) * p.ld_e + j];
  let ga = 2.0 * g_ap * u;
  let gn = 2.0 * g_an * v;
  let o = 3u * i * p.ld_g + j;
  grad[o] = ga + gn;
  grad[o + p.ld_g] = -ga;
  grad[o + 2u * p.ld_g] = -gn;
}
