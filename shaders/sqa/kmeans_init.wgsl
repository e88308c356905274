// Initial centroids: centroid c of head b = normalized key ⌊c·n/C⌋ of that head (n ≥ 1; the
// host checks c·n fits u32). One thread per element of [bh, C, d].
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read_write> cent: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let e = (wid.y * nwg.x + wid.x) * WG + lid;
    if (e >= p.bh * p.c * p.d) { return; }
    let t = e % p.d;
    let ci = (e / p.d) % p.c;
    let b = e / (p.d * p.c);
    let j = ci * p.n / p.c;
    cent[e] = khat[(b * p.n + j) * p.d + t];
}
