// linear.wgsl: a fully connected layer, forward and backward, with register-tiled small GEMMs.
// Driven by lib/ops/linear.ts (encodeLinearForward, encodeLinearGradWeight, encodeLinearGradInput).
//
// Parameter layout ("augmented weights"): one buffer per layer, W_aug [(K + 1) x OV] of vec4<f32>, where
// K is the input width, O the output width and OV = ceil(O / 4). Rows 0..K-1 hold W (W[k, o] multiplies
// input k into output o), row K holds the bias. Columns O..4*OV-1 are zero padding. Treating the bias as
// a weight row whose input is the constant 1 makes dW and db one product: dW_aug = [X | 1]^T dZ.
//
// Entry points (each dispatch covers `rows` rows; bindings may start at a row block of a bigger buffer):
//   forward      y[r, o] = act(sum_k x[r, k] W[k, o] + b[o]), act = ReLU when relu == 1, else identity.
//     0 params uniform Params   1 x read f32 [rows x ldx]   2 w read vec4 [(K+1) x OV]
//     3 y rw vec4 [rows x ldy] (ldy in vec4s >= OV; the padding columns come out 0)
//     Invocation: TR rows x TCV vec4 columns (TR * 4 * TCV outputs in registers).
//     Outputs are written as whole vec4s: on llvmpipe, scalar stores make this kernel about 5x slower.
//   grad_weight  partial[s, k, :] = sum_{r in split s} [x | 1][r, k] dz[r, :]   (k = 0..K; k = K is db)
//     0 params   1 x read f32 [rows x ldx]   2 dz read vec4 [rows x OV]   3 partial rw vec4 [splits x (K+1) x OV]
//     Invocation: TK weight rows x TCV vec4 columns over one split of `split_rows` rows (split-K; the
//     splits are summed by kernels/sgd.wgsl, so no float atomics are needed).
//   grad_input   dx[r, k] = (sum_o dz[r, o] W[k, o]) * (act[r, k] > 0)   (the ReLU of the layer below)
//     0 params   1 dz read vec4 [rows x OV]   2 w read vec4 [(K+1) x OV]   3 act read f32 [rows x ldx]
//     4 dx rw vec4 [rows x ldy] (ldy in vec4s >= ceil(K / 4); columns K.. of the last vec4 come out 0)
//     Invocation: TR rows x TK vec4 groups of input columns.
// Dispatch: 1-D, WG invocations per workgroup; workgroup counts past 65,535 spill into y
// (linear_invocation(wid, nwg, lid)).
// Defines: WG (invocations per workgroup), TR, TCV, TK (tile sizes; chosen per adapter in linear.ts).
// The prelude (lib/gpu/spec.ts) declares Params (fields: lib/gpu/specs/linear.ts) and the helpers.

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward ----
@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read> fw: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> fy: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let id = linear_invocation(wid, nwg, lid);
  let ov = p.out_vec;
  let ncg = (ov + TCV - 1u) / TCV;
  let cg = id % ncg;
  let r0 = (id / ncg) * TR;
  if (r0 >= p.rows) { return; }
  let c0 = cg * TCV;
  let kdim = p.in_dim;
  let rlast = p.rows - 1u;
  let clast = ov - 1u;
  var acc: array<array<vec4<f32>, TCV>, TR>;
  for (var c = 0u; c < TCV; c++) {
    let b = fw[kdim * ov + min(c0 + c, clast)];
    for (var t = 0u; t < TR; t++) { acc[t][c] = b; }
  }
  let k4n = kdim / 4u;
  for (var k4 = 0u; k4 < k4n; k4++) {
    var xs: array<vec4<f32>, TR>;
    for (var t = 0u; t < TR; t++) {
      // Rows past the end read the last row (their results are not written).
      let i = min(r0 + t, rlast) * p.ldx + k4 * 4u;
      xs[t] = vec4(fx[i], fx[i + 1u], fx[i + 2u], fx[i + 3u]);
    }
    for (var q = 0u; q < 4u; q++) {
      let wrow = (k4 * 4u + q) * ov;
      for (var c = 0u; c < TCV; c++) {
        let wv = fw[wrow + min(c0 + c, clast)];
        for (var t = 0u; t < TR; t++) { acc[t][c] = fma(vec4(xs[t][q]), wv, acc[t][c]); }
      }
    }
  }
  for (var k = k4n * 4u; k < kdim; k++) {
    for (var c = 0u; c < TCV; c++) {
      let wv = fw[k * ov + min(c0 + c, clast)];
      for (var t = 0u; t < TR; t++) { acc[t][c] = fma(vec4(fx[min(r0 + t, rlast) * p.ldx + k]), wv, acc[t][c]); }
    }
  }
  // No `break` in loops over the register tile: llvmpipe then keeps the tile in registers (with an early
  // exit it spills the tile and runs about 5x slower).
  for (var t = 0u; t < TR; t++) {
    for (var c = 0u; c < TCV; c++) {
      var v = acc[t][c];
      if (p.relu == 1u) { v = max(v, vec4(0.0)); }
      if (r0 + t < p.rows && c0 + c < ov) { fy[(r0 + t) * p.ldy + c0 + c] = v; }
    }
  }
}

// ---- grad_weight ----
@group(0) @binding(1) var<storage, read> gx: array<f32>;
@group(0) @binding(2) var<storage, read> gdz: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> gpart: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn grad_weight(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let id = linear_invocation(wid, nwg, lid);
  let ov = p.out_vec;
  let kdim = p.in_dim;
  let ncg = (ov + TCV - 1u) / TCV;
  let nkg = (kdim + TK) / TK; // K + 1 weight rows (the bias row included)
  let cg = id % ncg;
  let kg = (id / ncg) % nkg;
  let s = id / (ncg * nkg);
  if (s >= p.splits) { return; }
  let c0 = cg * TCV;
  let k0 = kg * TK;
  let rbeg = s * p.split_rows;
  let rend = min(p.rows, rbeg + p.split_rows);
  var col: array<u32, TCV>;
  for (var c = 0u; c < TCV; c++) { col[c] = min(c0 + c, ov - 1u); }
  var kk: array<u32, TK>;
  for (var t = 0u; t < TK; t++) { kk[t] = min(k0 + t, kdim - 1u); }
  var acc: array<array<vec4<f32>, TCV>, TK>;
  for (var r = rbeg; r < rend; r++) {
    var ds: array<vec4<f32>, TCV>;
    for (var c = 0u; c < TCV; c++) { ds[c] = gdz[r * ov + col[c]]; }
    let xb = r * p.ldx;
    for (var t = 0u; t < TK; t++) {
      // The bias row (k == K) sees the constant input 1.
      let xv = select(gx[xb + kk[t]], 1.0, k0 + t == kdim);
      for (var c = 0u; c < TCV; c++) { acc[t][c] = fma(vec4(xv), ds[c], acc[t][c]); }
    }
  }
  for (var t = 0u; t < TK; t++) {
    for (var c = 0u; c < TCV; c++) {
      if (k0 + t <= kdim && c0 + c < ov) { gpart[(s * (kdim + 1u) + k0 + t) * ov + c0 + c] = acc[t][c]; }
    }
  }
}

// ---- grad_input ----
@group(0) @binding(1) var<storage, read> idz: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> iw: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> iact: array<f32>;
@group(0) @binding(4) var<storage, read_write> idx: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn grad_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let id = linear_invocation(wid, nwg, lid);
  let ov = p.out_vec;
  let kdim = p.in_dim;
  let kv = (kdim + 3u) / 4u;
  let nkg = (kv + TK - 1u) / TK;
  let kg = id % nkg;
  let r0 = (id / nkg) * TR;
  if (r0 >= p.rows) { return; }
  let k0 = kg * TK * 4u; // first input column of this invocation
  let rlast = p.rows - 1u;
  var acc: array<array<vec4<f32>, TK>, TR>;
  for (var c = 0u; c < ov; c++) {
    var ds: array<vec4<f32>, TR>;
    for (var t = 0u; t < TR; t++) { ds[t] = idz[min(r0 + t, rlast) * ov + c]; }
    for (var u = 0u; u < TK; u++) {
      for (var e = 0u; e < 4u; e++) {
        let w = iw[min(k0 + 4u * u + e, kdim - 1u) * ov + c];
        for (var t = 0u; t < TR; t++) { acc[t][u][e] += dot(ds[t], w); }
      }
    }
  }
  for (var t = 0u; t < TR; t++) {
    let r = min(r0 + t, rlast);
    for (var u = 0u; u < TK; u++) {
      let kb = k0 + 4u * u;
      var m = vec4(0.0);
      for (var e = 0u; e < 4u; e++) {
        if (kb + e < kdim && iact[r * p.ldx + min(kb + e, kdim - 1u)] > 0.0) { m[e] = 1.0; }
      }
      if (r0 + t < p.rows && kb < kdim) { idx[r * p.ldy + kb / 4u] = acc[t][u] * m; }
    }
  }
}
