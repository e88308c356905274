// delta[i] = Σ_t dO[i, t] · O[i, t] for every query row of every head (rows = bh·n): the
// row term of the softmax backward, dS = P ∘ (dP − delta). One thread per row.
#include "attention_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.rows) { return; }
    var s = 0.0;
    for (var t = 0u; t < p.d; t++) {
        s += dout[i * p.d + t] * o[i * p.d + t];
    }
    delta[i] = s;
}
