// Backward preprocess: stats[2r] = lse[r] and stats[2r + 1] = delta_r = Σ_t dO[r, t]·O[r, t]
// (dS = P ∘ (dP − delta)) for every query row r of bh·n, packed so that the dQ and dK/dV kernels
// stay within 8 storage bindings. One thread per row.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.bh * p.n) { return; }
    var s = 0.0;
    for (var t = 0u; t < p.d; t++) { s += dout[r * p.d + t] * o[r * p.d + t]; }
    stats[2u * r] = lse[r];
    stats[2u * r + 1u] = s;
}
