// Short causal depthwise convolution plus identity: y[r,c] = x[r,c] + Σ_{j≤min(K−1,t)}
// w[j,c]·x[r−j,c], t = r mod len (taps never reach into the previous sequence).
// One thread per element.
#include "shortconv_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.rows * p.cols) { return; }
    let r = i / p.cols;
    let c = i % p.cols;
    let t = r % p.len;
    var s = x[i];
    let n = min(p.taps, t + 1u);
    for (var j = 0u; j < n; j++) {
        s += w[j * p.cols + c] * x[(r - j) * p.cols + c];
    }
    y[i] = s;
}
