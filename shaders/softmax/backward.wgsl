// dx[r, :] = y[r, :] * (dy[r, :] - dot(y[r, :], dy[r, :])) with one workgroup per row; the dot
// product is a strided per-thread sum then a shared-memory tree in a fixed order.
#include "softmax_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = wid.y * nwg.x + wid.x;
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    var s = 0.0;
    for (var c = lid; c < p.cols; c += WG) {
        s += y[base + c] * dy[base + c];
    }
    part[lid] = s;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) { part[lid] += part[lid + h]; }
        workgroupBarrier();
    }
    let dot = part[0];
    for (var c = lid; c < p.cols; c += WG) {
        dx[base + c] = y[base + c] * (dy[base + c] - dot);
    }
}
