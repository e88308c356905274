// Attention distillation, gradient: ds_i = p_i·Σt − t_i with p_i = exp(s_i − max − ln z)
// (state[0], state[1]) and Σt = sums[1] from the reduced pass 1.
#include "dsr_partials.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read> sums: array<f32>;
@group(0) @binding(5) var<storage, read_write> ds: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let shift = bitcast<f32>(state[0]) + bitcast<f32>(state[1]);
    ds[i] = exp(s[i] - shift) * sums[1] - tgt[i];
}
