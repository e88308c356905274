// y[r, :] = softmax(x[r, :]) with one workgroup per row. Each thread keeps an online running
// max m and sum s = Σ exp(x − m) over its strided share of the row, rescaling s when m grows; a
// shared-memory tree merges the (m, s) pairs in a fixed order; a second pass writes
// exp(x − M) / S. Every exponent is ≤ 0, so large logits cannot overflow.
#include "softmax_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// The lowest finite f32 stands in for -inf (WGSL has no infinite literals); exp of anything
// minus it underflows to 0 as -inf would.
const LOWEST: f32 = -3.40282347e38;

var<workgroup> sm: array<f32, WG>;
var<workgroup> ss: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // workgroup_id is uniform, so this return keeps the barriers below in uniform control flow.
    let r = wid.y * nwg.x + wid.x;
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    var m = LOWEST;
    var s = 0.0;
    for (var c = lid; c < p.cols; c += WG) {
        let v = x[base + c];
        if (v > m) {
            s = s * exp(m - v) + 1.0;
            m = v;
        } else {
            s += exp(v - m);
        }
    }
    sm[lid] = m;
    ss[lid] = s;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            let m1 = sm[lid];
            let m2 = sm[lid + h];
            let mx = max(m1, m2);
            ss[lid] = ss[lid] * exp(m1 - mx) + ss[lid + h] * exp(m2 - mx);
            sm[lid] = mx;
        }
        workgroupBarrier();
    }
    let mx = sm[0];
    let inv = 1.0 / ss[0];
    for (var c = lid; c < p.cols; c += WG) {
        y[base + c] = exp(x[base + c] - mx) * inv;
    }
}
