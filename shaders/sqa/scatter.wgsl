// Counting sort, pass 3: for each (head b, cluster c), writes the positions x (divided by `per`)
// of the head's labels equal to c, in ascending order, to out[b·len + offsets[c] ..]: key
// indices grouped by cluster (per = 1) or, from the routes, the queries routed to each cluster
// (per = kk). Stable and deterministic: a workgroup scans its head's labels WG at a time with an
// exclusive prefix sum of the matches.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

var<workgroup> buf: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let item = wid.y * nwg.x + wid.x;
    if (item >= p.bh * p.c) { return; }
    let b = item / p.c;
    let ci = item % p.c;
    var next = offsets[b * (p.c + 1u) + ci];
    for (var x0 = 0u; x0 < p.len; x0 += WG) {
        let x = x0 + lid;
        var hit = 0u;
        if (x < p.len && labels[b * p.len + x] == ci) { hit = 1u; }
        buf[lid] = hit;
        workgroupBarrier();
        // Inclusive Hillis–Steele scan of the hit flags.
        for (var w = 1u; w < WG; w *= 2u) {
            var add = 0u;
            if (lid >= w) { add = buf[lid - w]; }
            workgroupBarrier();
            buf[lid] += add;
            workgroupBarrier();
        }
        if (hit == 1u) { out[b * p.len + next + buf[lid] - 1u] = x / p.per; }
        let total = buf[WG - 1u];
        workgroupBarrier();
        next += total;
    }
}
