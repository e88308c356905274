// Counting sort, pass 1: for each (head b, cluster c) the number of labels equal to c among the
// head's `len` labels (key assignments, or routes with NO_CLUSTER padding), written to
// offsets[b·(C+1) + c + 1] (scan.wgsl turns the counts into offsets). Workgroup per (b, c),
// integer tree reduction: deterministic.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;

var<workgroup> part: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let item = wid.y * nwg.x + wid.x;
    if (item >= p.bh * p.c) { return; }
    let b = item / p.c;
    let ci = item % p.c;
    var cnt = 0u;
    for (var x = lid; x < p.len; x += WG) {
        if (labels[b * p.len + x] == ci) { cnt++; }
    }
    part[lid] = cnt;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lid < w) { part[lid] += part[lid + w]; }
        workgroupBarrier();
    }
    if (lid == 0u) { offsets[b * (p.c + 1u) + ci + 1u] = part[0]; }
}
