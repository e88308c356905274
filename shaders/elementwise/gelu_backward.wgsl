// dx = dy · GELU'(x) for the tanh form; where the tanh argument is clamped, its derivative
// term is zero, matching the forward exactly.
#include "elementwise_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const K0: f32 = 0.7978845608028654;
const K1: f32 = 0.044715;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let v = x[i];
    let raw = K0 * (v + K1 * v * v * v);
    let u = clamp(raw, -10.0, 10.0);
    // d/dx [x·σ(2u)] = σ + 2x·σ(1 − σ)·du/dx (the CPU reference's form; σ(1 − σ) does not
    // cancel where 1 − tanh² would).
    let e = exp(2.0 * u);
    let s = e / (1.0 + e);
    var du = K0 * (1.0 + 3.0 * K1 * v * v);
    if (abs(raw) > 10.0) { du = 0.0; }
    dx[i] = dy[i] * (s + 2.0 * v * s * (1.0 - s) * du);
}
