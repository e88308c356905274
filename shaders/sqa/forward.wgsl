// SQA forward: one workgroup per query i of head b walks the keys it selects as segments —
// sink keys before its window [0, min(sink, lim)), its window [lim, i] (lim = i + 1 − w), and
// for each route the positions of the cluster's keys in `order` with sink ≤ j < lim (a
// contiguous range: order is ascending within a cluster) — so every key is read once. Tiles of
// WG keys: thread t scores one key, then the online softmax (running max m, sum l) rescales the
// output, of which thread t owns dims t, t + WG, ...
// idx packs offsets [bh, C+1] | order [bh, n] (from o1) | routes [bh, n, kk] (from o2).
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> idx: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

const PER: u32 = (MAX_D + WG - 1u) / WG;
// Finite stand-in for -inf, so that m_old - m_new never computes inf - inf.
const NEG_BIG: f32 = -3.402823e38;
const NO_CLUSTER: u32 = 0xffffffffu;

var<workgroup> qs: array<f32, MAX_D>;
var<workgroup> sc: array<f32, WG>;
var<workgroup> js: array<u32, WG>;
var<workgroup> pw: array<f32, WG>;

// First position in idx[base + a .. base + z) (ascending) holding a value ≥ x.
fn lower_bound(base: u32, a: u32, z: u32, x: u32) -> u32 {
    var lo = a;
    var hi = z;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (idx[base + mid] < x) { lo = mid + 1u; } else { hi = mid; }
    }
    return lo;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let item = wid.y * nwg.x + wid.x;
    if (item >= p.bh * p.n) { return; }
    let b = item / p.n;
    let i = item % p.n;
    for (var t = lid; t < p.d; t += WG) { qs[t] = q[item * p.d + t]; }
    workgroupBarrier();
    var lim = 0u;
    if (i + 1u > p.window) { lim = i + 1u - p.window; }
    let ord = p.o1 + b * p.n;
    var m = NEG_BIG;
    var l = 0.0;
    var acc: array<f32, PER>;
    for (var sg = 0u; sg < 2u + p.kk; sg++) {
        var a = 0u;
        var z = 0u;
        var direct = true;
        if (sg == 0u) {
            z = min(p.sink, lim);
        } else if (sg == 1u) {
            a = lim;
            z = i + 1u;
        } else {
            let ci = idx[p.o2 + item * p.kk + sg - 2u];
            if (ci != NO_CLUSTER) {
                let ob = b * (p.c + 1u);
                let ca = idx[ob + ci];
                let cz = idx[ob + ci + 1u];
                a = lower_bound(ord, ca, cz, p.sink);
                z = max(a, lower_bound(ord, ca, cz, lim));
                direct = false;
            }
        }
        for (var x0 = a; x0 < z; x0 += WG) {
            let x = x0 + lid;
            var s = NEG_BIG;
            var j = 0u;
            if (x < z) {
                j = x;
                if (!direct) { j = idx[ord + x]; }
                let kb = (b * p.n + j) * p.d;
                var dot = 0.0;
                for (var t = 0u; t < p.d; t++) { dot += qs[t] * k[kb + t]; }
                s = dot * p.scale;
            }
            sc[lid] = s;
            js[lid] = j;
            workgroupBarrier();
            let cnt = min(WG, z - x0);
            var m_new = m;
            for (var y = 0u; y < cnt; y++) { m_new = max(m_new, sc[y]); }
            pw[lid] = exp(s - m_new);
            workgroupBarrier();
            let alpha = exp(m - m_new);
            var sum = 0.0;
            for (var y = 0u; y < cnt; y++) { sum += pw[y]; }
            l = l * alpha + sum;
            for (var e = 0u; e < PER; e++) {
                let t = lid + e * WG;
                if (t < p.d) {
                    var y_acc = acc[e] * alpha;
                    for (var y = 0u; y < cnt; y++) {
                        y_acc += pw[y] * v[(b * p.n + js[y]) * p.d + t];
                    }
                    acc[e] = y_acc;
                }
            }
            m = m_new;
            workgroupBarrier();
        }
    }
    for (var e = 0u; e < PER; e++) {
        let t = lid + e * WG;
        if (t < p.d) { o[item * p.d + t] = acc[e] / l; }
    }
    if (lid == 0u) { lse[item] = m + log(l); }
}
