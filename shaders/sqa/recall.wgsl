// Attention recall, per query: the dense causal log-sum-exp over all keys j ≤ i (online, tiles
// of WG keys, one score per thread), then recall_i = min(1, exp(lse_sqa − lse_dense)): the dense
// softmax mass of the keys SQA selected (clamped against rounding). Workgroup per query.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> recall: array<f32>;

const NEG_BIG: f32 = -3.402823e38;

var<workgroup> qs: array<f32, MAX_D>;
var<workgroup> sc: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let item = wid.y * nwg.x + wid.x;
    if (item >= p.bh * p.n) { return; }
    let b = item / p.n;
    let i = item % p.n;
    for (var t = lid; t < p.d; t += WG) { qs[t] = q[item * p.d + t]; }
    workgroupBarrier();
    var m = NEG_BIG;
    var l = 0.0;
    for (var x0 = 0u; x0 <= i; x0 += WG) {
        let j = x0 + lid;
        var s = NEG_BIG;
        if (j <= i) {
            let kb = (b * p.n + j) * p.d;
            var dot = 0.0;
            for (var t = 0u; t < p.d; t++) { dot += qs[t] * k[kb + t]; }
            s = dot * p.scale;
        }
        sc[lid] = s;
        workgroupBarrier();
        let cnt = min(WG, i + 1u - x0);
        var m_new = m;
        for (var y = 0u; y < cnt; y++) { m_new = max(m_new, sc[y]); }
        var sum = 0.0;
        for (var y = 0u; y < cnt; y++) { sum += exp(sc[y] - m_new); }
        l = l * exp(m - m_new) + sum;
        m = m_new;
        workgroupBarrier();
    }
    if (lid == 0u) { recall[item] = min(1.0, exp(lse[item] - (m + log(l)))); }
}
