// x[r] = [k[r], v[r]]: k, v are [n, dm], x is [n, 2·dm]. Also the backward of split (dx̂ from
// dk̂, dv̂). One thread per element of x, so writes coalesce.
#include "rckv_copy_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.total) { return; }
    let w = 2u * p.dm;
    let r = i / w;
    let j = i - r * w;
    if (j < p.dm) {
        x[i] = k[r * p.dm + j];
    } else {
        x[i] = v[r * p.dm + j - p.dm];
    }
}
