// y[bi·n + ni, hi·d + di] = x[bi·h + hi, ni, di]: the inverse of split, again one thread per
// output element.
#include "heads_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.total) { return; }
    let di = i % p.d;
    let col = i / p.d;          // (bi·n + ni)·h + hi
    let hi = col % p.h;
    let tok = col / p.h;
    let ni = tok % p.n;
    let bi = tok / p.n;
    y[i] = x[((bi * p.h + hi) * p.n + ni) * p.d + di];
}
