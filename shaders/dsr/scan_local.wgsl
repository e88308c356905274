// Exclusive prefix sum, level 1: each workgroup scans a chunk of 4·WG u32s (4 per thread, in
// registers, then a Hillis–Steele scan of the thread totals in shared memory) and writes the
// chunk's total to sums[chunk]; the host scans `sums` the same way and adds it back (scan_add).
#include "dsr_scan.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
@group(0) @binding(3) var<storage, read_write> sums: array<u32>;

var<workgroup> sh: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let chunk = wid.y * nwg.x + wid.x;
    let base = chunk * 4u * WG + lid * 4u;
    var local_excl: array<u32, 4>;
    var tot = 0u;
    for (var k = 0u; k < 4u; k++) {
        local_excl[k] = tot;
        if (base + k < p.len) {
            tot += x[base + k];
        }
    }
    sh[lid] = tot;
    workgroupBarrier();
    for (var off = 1u; off < WG; off <<= 1u) {
        var t = 0u;
        if (lid >= off) { t = sh[lid - off]; }
        workgroupBarrier();
        sh[lid] += t;
        workgroupBarrier();
    }
    let excl = sh[lid] - tot;
    for (var k = 0u; k < 4u; k++) {
        if (base + k < p.len) {
            y[base + k] = excl + local_excl[k];
        }
    }
    // A folded 2-D grid can have more workgroups than chunks.
    if (lid == WG - 1u && chunk * 4u * WG < p.len) {
        sums[chunk] = sh[WG - 1u];
    }
}
