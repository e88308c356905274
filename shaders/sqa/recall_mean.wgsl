// Attention recall per head: the mean over the head's n per-query recalls. Workgroup per head;
// strided partial sums, then a fixed-order tree reduction (deterministic).
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> recall: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = wid.y * nwg.x + wid.x;
    if (b >= p.bh) { return; }
    var s = 0.0;
    for (var x = lid; x < p.n; x += WG) { s += recall[b * p.n + x]; }
    part[lid] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lid < w) { part[lid] += part[lid + w]; }
        workgroupBarrier();
    }
    if (lid == 0u) { mean[b] = part[0] / f32(p.n); }
}
