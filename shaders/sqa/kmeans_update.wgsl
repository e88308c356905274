// Lloyd update: centroid c of head b = normalized sum of its keys, summed in ascending key order
// (thread t owns dimension t) like the CPU reference; the squared norm is summed by one thread in
// dimension order. An empty cluster, or one whose keys sum to zero, keeps its centroid. Each
// workgroup owns one (head, cluster) and rewrites only that centroid, so the update is in place.
// WG = MAX_D threads; workgroups folded over bh·C.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read> assign: array<u32>;
@group(0) @binding(3) var<storage, read_write> cent: array<f32>;

var<workgroup> sq: array<f32, WG>;
var<workgroup> nrm_sh: f32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let item = wid.y * nwg.x + wid.x;
    if (item >= p.bh * p.c) { return; }
    let b = item / p.c;
    let ci = item % p.c;
    var sum = 0.0;
    var count = 0u;
    for (var j = 0u; j < p.n; j++) {
        if (assign[b * p.n + j] == ci) {
            count++;
            if (lid < p.d) { sum += khat[(b * p.n + j) * p.d + lid]; }
        }
    }
    sq[lid] = sum * sum;
    workgroupBarrier();
    if (lid == 0u) {
        var s = 0.0;
        for (var t = 0u; t < p.d; t++) { s += sq[t]; }
        nrm_sh = sqrt(s);
    }
    workgroupBarrier();
    let nrm = nrm_sh;
    if (count > 0u && nrm > 0.0 && lid < p.d) {
        cent[item * p.d + lid] = sum / nrm;
    }
}
