// GELU, tanh form (GPT-2): 0.5·x·(1 + tanh u), u = √(2/π)·(x + 0.044715·x³), evaluated as
// the equal x·σ(2u) = x·e/(1 + e), e = exp(2u): no 1 + tanh cancellation for negative x, and
// the same formula as the CPU reference. u is clamped to ±10 so exp cannot overflow.
#include "elementwise_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const K0: f32 = 0.7978845608028654;
const K1: f32 = 0.044715;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let v = x[i];
    let u = clamp(K0 * (v + K1 * v * v * v), -10.0, 10.0);
    let e = exp(2.0 * u);
    y[i] = v * (e / (1.0 + e));
}
