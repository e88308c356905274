// y[bi·h + hi, ni, di] = x[bi·n + ni, hi·d + di]: one thread per output element (a gather), so
// the writes are coalesced and each has one writer.
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
    let row = i / p.d;          // (bi·h + hi)·n + ni
    let ni = row % p.n;
    let bh = row / p.n;
    let hi = bh % p.h;
    let bi = bh / p.h;
    y[i] = x[((bi * p.n + ni) * p.h + hi) * p.d + di];
}
