// Assigns every normalized key to its best centroid by dot product. Tie rule (shared with the
// CPU): scanning centroids in ascending order, one replaces the running best only when it scores
// more than tie·‖k̂‖₁ higher, so exact and rounding-level ties go to the lowest index.
// One thread per key of bh·n; the key lives in registers.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read> cent: array<f32>;
@group(0) @binding(3) var<storage, read_write> assign: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.bh * p.n) { return; }
    let b = r / p.n;
    var kv: array<f32, MAX_D>;
    var l1 = 0.0;
    for (var t = 0u; t < p.d; t++) {
        kv[t] = khat[r * p.d + t];
        l1 += abs(kv[t]);
    }
    let tol = p.tie * l1;
    var best = 0u;
    var best_s = 0.0;
    for (var ci = 0u; ci < p.c; ci++) {
        let base = (b * p.c + ci) * p.d;
        var s = 0.0;
        for (var t = 0u; t < p.d; t++) {
            s += kv[t] * cent[base + t];
        }
        if (ci == 0u || s > best_s + tol) {
            best = ci;
            best_s = s;
        }
    }
    assign[r] = best;
}
