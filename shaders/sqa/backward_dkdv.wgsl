// SQA backward, dK and dV: one workgroup per key j of head b gathers over the queries that read
// it: through the band (all i ≥ j if j is a sink key, else its window readers j ≤ i < j + w) and,
// for a non-sink key, the queries routed to its cluster with i ≥ j + w — a suffix of the
// cluster's inverse routing list (query ids ascending). Thread t handles one query of each WG
// tile (p, dS recomputed from lse and delta), then dims t, t + WG, ... of
// dv = Σ p·dO and dk = scale · Σ dS·q. One writer per key row: no atomics.
// idx packs assign [bh, n] | qoff [bh, C+1] (from o1) | qlist [bh, n·kk] (from o2).
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> idx: array<u32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

const PER: u32 = (MAX_D + WG - 1u) / WG;

var<workgroup> ks: array<f32, MAX_D>;
var<workgroup> vs: array<f32, MAX_D>;
var<workgroup> pw: array<f32, WG>;
var<workgroup> dsw: array<f32, WG>;
var<workgroup> qis: array<u32, WG>;

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
    let j = item % p.n;
    for (var t = lid; t < p.d; t += WG) {
        ks[t] = k[item * p.d + t];
        vs[t] = v[item * p.d + t];
    }
    workgroupBarrier();
    let ql = p.o2 + b * p.n * p.kk;
    var acc_k: array<f32, PER>;
    var acc_v: array<f32, PER>;
    for (var sg = 0u; sg < 2u; sg++) {
        var a = 0u;
        var z = 0u;
        var direct = true;
        if (sg == 0u) {
            a = j;
            z = p.n;
            if (j >= p.sink) { z = min(p.n, j + p.window); }
        } else if (j >= p.sink) {
            let ci = idx[item];
            let ob = p.o1 + b * (p.c + 1u);
            let cz = idx[ob + ci + 1u];
            a = lower_bound(ql, idx[ob + ci], cz, j + p.window);
            z = cz;
            direct = false;
        }
        for (var x0 = a; x0 < z; x0 += WG) {
            let x = x0 + lid;
            var pr = 0.0;
            var ds = 0.0;
            var i = 0u;
            if (x < z) {
                i = x;
                if (!direct) { i = idx[ql + x]; }
                let qb = (b * p.n + i) * p.d;
                var s = 0.0;
                var dp = 0.0;
                for (var t = 0u; t < p.d; t++) {
                    s += q[qb + t] * ks[t];
                    dp += dout[qb + t] * vs[t];
                }
                let r = b * p.n + i;
                pr = exp(s * p.scale - stats[2u * r]);
                ds = pr * (dp - stats[2u * r + 1u]) * p.scale;
            }
            pw[lid] = pr;
            dsw[lid] = ds;
            qis[lid] = i;
            workgroupBarrier();
            let cnt = min(WG, z - x0);
            for (var e = 0u; e < PER; e++) {
                let t = lid + e * WG;
                if (t < p.d) {
                    var ak = acc_k[e];
                    var av = acc_v[e];
                    for (var y = 0u; y < cnt; y++) {
                        let qb = (b * p.n + qis[y]) * p.d + t;
                        av += pw[y] * dout[qb];
                        ak += dsw[y] * q[qb];
                    }
                    acc_k[e] = ak;
                    acc_v[e] = av;
                }
            }
            workgroupBarrier();
        }
    }
    for (var e = 0u; e < PER; e++) {
        let t = lid + e * WG;
        if (t < p.d) {
            dk[item * p.d + t] = acc_k[e];
            dv[item * p.d + t] = acc_v[e];
        }
    }
}
