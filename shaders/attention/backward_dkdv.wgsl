// Causal attention backward, dK and dV (FlashAttention-2): a workgroup owns BK keys of one
// head, holds their K and V rows in workgroup memory, and walks the query blocks from the
// diagonal to the end, recomputing P = exp(S·scale − lse) from the saved lse. Each key row
// is written by exactly one workgroup, so no atomics and no n×n buffers are needed.
// Grid: x = key block, y = head. Thread (i, j) = (lid / BK, lid % BK) handles score (query i,
// key j); thread (j, c) = (lid / BQ, lid % BQ) accumulates dims c, c + BQ, ... of key row j.
//   dV_j += Σ_i P_ij dO_i      dK_j += scale · Σ_i dS_ij Q_i,  dS = P ∘ (dO·Vᵀ − delta)
#include "attention_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

const WG: u32 = BQ * BK;
// Row stride in workgroup memory: the +1 staggers rows across banks for the column reads.
const LD: u32 = MAX_D + 1u;
// Accumulated dims per thread.
const PER: u32 = (MAX_D + BQ - 1u) / BQ;

var<workgroup> ks: array<f32, BK * LD>;
var<workgroup> vs: array<f32, BK * LD>;
// Q tile, then the dO tile, then Q again: holding both would pass the 16 KiB default limit
// at MAX_D = 128, so Q is read twice per query block instead.
var<workgroup> xs: array<f32, BQ * LD>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> dss: array<f32, WG>;
var<workgroup> lse_s: array<f32, BQ>;
var<workgroup> delta_s: array<f32, BQ>;

fn load_kv(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BK * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var a = 0.0;
        var b = 0.0;
        if (row0 + r < p.n) {
            a = k[base + (row0 + r) * p.d + t];
            b = v[base + (row0 + r) * p.d + t];
        }
        ks[r * LD + t] = a;
        vs[r * LD + t] = b;
    }
}

fn load_q(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BQ * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var x = 0.0;
        if (row0 + r < p.n) { x = q[base + (row0 + r) * p.d + t]; }
        xs[r * LD + t] = x;
    }
}

fn load_dout(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BQ * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var x = 0.0;
        if (row0 + r < p.n) { x = dout[base + (row0 + r) * p.d + t]; }
        xs[r * LD + t] = x;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k0 = wid.x * BK;
    let base = wid.y * p.n * p.d;
    let si = lid / BK;
    let sj = lid % BK;
    let aj = lid / BQ;
    let ac = lid % BQ;

    load_kv(base, k0, lid);
    var dk_acc: array<f32, PER>;
    var dv_acc: array<f32, PER>;
    // Causal: query blocks entirely above the diagonal (all queries < k0) contribute nothing.
    for (var i0 = (k0 / BQ) * BQ; i0 < p.n; i0 += BQ) {
        load_q(base, i0, lid);
        if (lid < BQ) {
            var a = 0.0;
            var b = 0.0;
            if (i0 + lid < p.n) {
                a = lse[wid.y * p.n + i0 + lid];
                b = delta[wid.y * p.n + i0 + lid];
            }
            lse_s[lid] = a;
            delta_s[lid] = b;
        }
        workgroupBarrier();

        let qi = i0 + si;
        let kj = k0 + sj;
        var s = 0.0;
        for (var t = 0u; t < p.d; t++) {
            s += xs[si * LD + t] * ks[sj * LD + t];
        }
        var pij = 0.0;
        if (kj <= qi && qi < p.n) { pij = exp(s * p.scale - lse_s[si]); }
        ps[lid] = pij;
        workgroupBarrier();

        load_dout(base, i0, lid);
        workgroupBarrier();
        var dp = 0.0;
        for (var t = 0u; t < p.d; t++) {
            dp += xs[si * LD + t] * vs[sj * LD + t];
        }
        dss[lid] = pij * (dp - delta_s[si]);
        for (var a = 0u; a < PER; a++) {
            let t = ac + a * BQ;
            if (t < p.d) {
                var x = dv_acc[a];
                for (var i = 0u; i < BQ; i++) {
                    x += ps[i * BK + aj] * xs[i * LD + t];
                }
                dv_acc[a] = x;
            }
        }
        workgroupBarrier();

        load_q(base, i0, lid);
        workgroupBarrier();
        for (var a = 0u; a < PER; a++) {
            let t = ac + a * BQ;
            if (t < p.d) {
                var x = dk_acc[a];
                for (var i = 0u; i < BQ; i++) {
                    x += dss[i * BK + aj] * xs[i * LD + t];
                }
                dk_acc[a] = x;
            }
        }
        workgroupBarrier();
    }

    let kj = k0 + aj;
    if (kj < p.n) {
        for (var a = 0u; a < PER; a++) {
            let t = ac + a * BQ;
            if (t < p.d) {
                dk[base + kj * p.d + t] = dk_acc[a] * p.scale;
                dv[base + kj * p.d + t] = dv_acc[a];
            }
        }
    }
}
