// SQA backward, dQ: one workgroup per query walks the same key segments as forward.wgsl (sink,
// window, each route's cluster range in `order`), recomputing p = exp(s − lse) and
// dS = p·(dO·v − delta) per key; thread t scores one key of each WG tile and accumulates dims
// t, t + WG, ... of dq = scale · Σ dS·k. The query's row has this one writer: no atomics.
// idx packs offsets | order (from o1) | routes (from o2); stats = (lse, delta) per query.
#include "sqa_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> idx: array<u32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

const PER: u32 = (MAX_D + WG - 1u) / WG;
const NO_CLUSTER: u32 = 0xffffffffu;

var<workgroup> qs: array<f32, MAX_D>;
var<workgroup> dos: array<f32, MAX_D>;
var<workgroup> dsw: array<f32, WG>;
var<workgroup> js: array<u32, WG>;

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
    for (var t = lid; t < p.d; t += WG) {
        qs[t] = q[item * p.d + t];
        dos[t] = dout[item * p.d + t];
    }
    workgroupBarrier();
    let lse_i = stats[2u * item];
    let delta_i = stats[2u * item + 1u];
    var lim = 0u;
    if (i + 1u > p.window) { lim = i + 1u - p.window; }
    let ord = p.o1 + b * p.n;
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
            var ds = 0.0;
            var j = 0u;
            if (x < z) {
                j = x;
                if (!direct) { j = idx[ord + x]; }
                let kb = (b * p.n + j) * p.d;
                var s = 0.0;
                var dp = 0.0;
                for (var t = 0u; t < p.d; t++) {
                    s += qs[t] * k[kb + t];
                    dp += dos[t] * v[kb + t];
                }
                let pr = exp(s * p.scale - lse_i);
                ds = pr * (dp - delta_i) * p.scale;
            }
            dsw[lid] = ds;
            js[lid] = j;
            workgroupBarrier();
            let cnt = min(WG, z - x0);
            for (var e = 0u; e < PER; e++) {
                let t = lid + e * WG;
                if (t < p.d) {
                    var y_acc = acc[e];
                    for (var y = 0u; y < cnt; y++) {
                        y_acc += dsw[y] * k[(b * p.n + js[y]) * p.d + t];
                    }
                    acc[e] = y_acc;
                }
            }
            workgroupBarrier();
        }
    }
    for (var e = 0u; e < PER; e++) {
        let t = lid + e * WG;
        if (t < p.d) { dq[item * p.d + t] = acc[e]; }
    }
}
