// Softmax statistics of the scores, pass 1: each of `groups` workgroups walks a grid-strided
// share of s and keeps, per thread, an online triple (m, z, t) = (max, Σ e^{s−m},
// Σ e^{s−m}(s−m)), rescaled whenever m grows; a shared-memory tree merges the triples in a fixed
// order. Every exponent is ≤ 0, so large scores cannot overflow. Output: part[g], part[G + g],
// part[2G + g].
#include "dsr_partials.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

var<workgroup> sm: array<f32, WG>;
var<workgroup> sz: array<f32, WG>;
var<workgroup> st: array<f32, WG>;

// Merges two triples onto the larger max; an empty triple (z = 0) is the identity, which also
// keeps (m1 − m)·z from forming 0·inf.
fn merge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    if (a.y == 0.0) { return b; }
    if (b.y == 0.0) { return a; }
    let m = max(a.x, b.x);
    let fa = exp(a.x - m);
    let fb = exp(b.x - m);
    return vec3<f32>(m, a.y * fa + b.y * fb,
                     fa * (a.z + (a.x - m) * a.y) + fb * (b.z + (b.x - m) * b.y));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var acc = vec3<f32>(0.0, 0.0, 0.0);
    for (var i = wid.x * WG + lid; i < p.n; i += p.groups * WG) {
        acc = merge(acc, vec3<f32>(s[i], 1.0, 0.0));
    }
    sm[lid] = acc.x;
    sz[lid] = acc.y;
    st[lid] = acc.z;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            let r = merge(vec3<f32>(sm[lid], sz[lid], st[lid]),
                          vec3<f32>(sm[lid + h], sz[lid + h], st[lid + h]));
            sm[lid] = r.x;
            sz[lid] = r.y;
            st[lid] = r.z;
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        part[wid.x] = sm[0];
        part[p.groups + wid.x] = sz[0];
        part[2u * p.groups + wid.x] = st[0];
    }
}
