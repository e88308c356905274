// One partial Σx² per workgroup by a fixed tree order; rckv/sum_partials then adds the partials
// in a fixed order too: deterministic without float atomics.
#include "elementwise_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> s: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = wid.y * nwg.x + wid.x;
    let i = g * WG + lid;
    // No early return: every thread must reach the barriers.
    var sq = 0.0;
    if (i < p.n) {
        let v = x[i];
        sq = v * v;
    }
    s[lid] = sq;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            s[lid] += s[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partials[g] = s[0];
    }
}
