// Unit-normalizes every key row: khat = k / ‖k‖ (a row whose squared norm is 0 stays 0), summing
// squares in ascending dimension order like the CPU reference. One thread per row of bh·n.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> khat: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.bh * p.n) { return; }
    let base = r * p.d;
    var s = 0.0;
    for (var t = 0u; t < p.d; t++) {
        let x = k[base + t];
        s += x * x;
    }
    let nrm = sqrt(s);
    for (var t = 0u; t < p.d; t++) {
        var y = 0.0;
        if (nrm > 0.0) { y = k[base + t] / nrm; }
        khat[base + t] = y;
    }
}
