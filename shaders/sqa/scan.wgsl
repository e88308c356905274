// Counting sort, pass 2: per head, inclusive prefix sum over the C counts in
// offsets[b·(C+1) + 1 ..= C] (entry 0 stays 0), giving cluster c the range
// offsets[c]..offsets[c+1]. One workgroup of WG = MAX_C threads per head (C ≤ MAX_C),
// Hillis–Steele scan in workgroup memory.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> offsets: array<u32>;

var<workgroup> buf: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = wid.y * nwg.x + wid.x;
    if (b >= p.bh) { return; }
    let base = b * (p.c + 1u) + 1u;
    var x = 0u;
    if (lid < p.c) { x = offsets[base + lid]; }
    buf[lid] = x;
    workgroupBarrier();
    for (var w = 1u; w < WG; w *= 2u) {
        var add = 0u;
        if (lid >= w) { add = buf[lid - w]; }
        workgroupBarrier();
        buf[lid] += add;
        workgroupBarrier();
    }
    if (lid < p.c) { offsets[base + lid] = buf[lid]; }
    if (lid == 0u) { offsets[base - 1u] = 0u; }
}
