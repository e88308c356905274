// (k[r], v[r]) = x[r]: x is [n, 2·dm], k and v are [n, dm]. Also the backward of concat.
// One thread per element of k (and the matching element of v).
#include "rckv_copy_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.total) { return; }
    let r = i / p.dm;
    let j = i - r * p.dm;
    let base = r * 2u * p.dm + j;
    k[i] = x[base];
    v[i] = x[base + p.dm];
}
