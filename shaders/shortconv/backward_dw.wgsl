// dw, step 1 of a deterministic sum over rows (WGSL has no float atomics): one thread per
// (chunk, tap, column) adds its chunk's rows in order into partials [chunks, taps·cols];
// step 2 (the element-wise column-sum kernel) adds the partials in chunk order.
#include "shortconv_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let width = p.taps * p.cols;
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.chunks * width) { return; }
    // Adjacent threads take adjacent columns so each row's reads are coalesced.
    let k = i / width;
    let j = (i % width) / p.cols;
    let c = i % p.cols;
    let r1 = min((k + 1u) * p.chunk, p.rows);
    var s = 0.0;
    for (var r = k * p.chunk; r < r1; r++) {
        if (r % p.len >= j) {
            s += x[(r - j) * p.cols + c] * dy[r * p.cols + c];
        }
    }
    partial[i] = s;
}
