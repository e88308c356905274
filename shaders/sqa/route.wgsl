// Routing: query i of head b takes its kk best eligible clusters by q·c (repeated arg-max with
// the tie rule of kmeans_assign.wgsl, tolerance tie·‖q‖₁), best first, then NO_CLUSTER padding.
// Cluster c is eligible iff it holds a key j ≤ i: its first key in `order` (the smallest) is ≤ i.
// One thread per query of bh·n; scores and taken flags live in per-thread arrays of MAX_C.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> cent: array<f32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> order: array<u32>;
@group(0) @binding(5) var<storage, read_write> routes: array<u32>;

const NO_CLUSTER: u32 = 0xffffffffu;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.bh * p.n) { return; }
    let b = r / p.n;
    let i = r % p.n;
    var qv: array<f32, MAX_D>;
    var l1 = 0.0;
    for (var t = 0u; t < p.d; t++) {
        qv[t] = q[r * p.d + t];
        l1 += abs(qv[t]);
    }
    let tol = p.tie * l1;
    var s: array<f32, MAX_C>;
    // Ineligible clusters start out taken.
    var taken: array<bool, MAX_C>;
    for (var ci = 0u; ci < p.c; ci++) {
        let a = offsets[b * (p.c + 1u) + ci];
        let z = offsets[b * (p.c + 1u) + ci + 1u];
        taken[ci] = a == z || order[b * p.n + a] > i;
        var acc = 0.0;
        for (var t = 0u; t < p.d; t++) {
            acc += qv[t] * cent[(b * p.c + ci) * p.d + t];
        }
        s[ci] = acc;
    }
    for (var slot = 0u; slot < p.kk; slot++) {
        var best = NO_CLUSTER;
        var best_s = 0.0;
        for (var ci = 0u; ci < p.c; ci++) {
            if (!taken[ci] && (best == NO_CLUSTER || s[ci] > best_s + tol)) {
                best = ci;
                best_s = s[ci];
            }
        }
        routes[r * p.kk + slot] = best;
        if (best != NO_CLUSTER) { taken[best] = true; }
    }
}
