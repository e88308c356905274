// Causal attention backward, dQ (FlashAttention-2): a workgroup owns BQ queries of one head,
// holds their Q and dO rows in workgroup memory, and walks the key blocks up to the
// diagonal, recomputing P = exp(S·scale − lse). Per key block V is streamed first (for
// dP = dO·Vᵀ, kept in a register), then K (for S and, once dS is formed, dQ += dS·K), so
// each tile is read once through a single tile buffer.
// Grid: x = query block, y = head. Thread (i, j) = (lid / BK, lid % BK) handles score
// (query i, key j) and accumulates dQ dims j, j + BK, ... of query row i.
#include "attention_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

const WG: u32 = BQ * BK;
// Row stride in workgroup memory: the +1 staggers rows across banks for the column reads.
const LD: u32 = MAX_D + 1u;
// Accumulated dims per thread.
const PER: u32 = (MAX_D + BK - 1u) / BK;

var<workgroup> qs: array<f32, BQ * LD>;
var<workgroup> dos: array<f32, BQ * LD>;
// V tile, then the K tile of the same keys.
var<workgroup> xs: array<f32, BK * LD>;
var<workgroup> dss: array<f32, WG>;

fn load_q_dout(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BQ * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var a = 0.0;
        var b = 0.0;
        if (row0 + r < p.n) {
            a = q[base + (row0 + r) * p.d + t];
            b = dout[base + (row0 + r) * p.d + t];
        }
        qs[r * LD + t] = a;
        dos[r * LD + t] = b;
    }
}

fn load_k(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BK * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var x = 0.0;
        if (row0 + r < p.n) { x = k[base + (row0 + r) * p.d + t]; }
        xs[r * LD + t] = x;
    }
}

fn load_v(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BK * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var x = 0.0;
        if (row0 + r < p.n) { x = v[base + (row0 + r) * p.d + t]; }
        xs[r * LD + t] = x;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let q0 = wid.x * BQ;
    let base = wid.y * p.n * p.d;
    let i = lid / BK;
    let j = lid % BK;
    let qi = q0 + i;

    load_q_dout(base, q0, lid);
    var lse_i = 0.0;
    var delta_i = 0.0;
    if (qi < p.n) {
        lse_i = lse[wid.y * p.n + qi];
        delta_i = delta[wid.y * p.n + qi];
    }
    var acc: array<f32, PER>;
    // Causal: keys past the block's last query are never visited.
    let k_end = min(p.n, q0 + BQ);
    for (var k0 = 0u; k0 < k_end; k0 += BK) {
        load_v(base, k0, lid);
        workgroupBarrier();
        var dp = 0.0;
        for (var t = 0u; t < p.d; t++) {
            dp += dos[i * LD + t] * xs[j * LD + t];
        }
        workgroupBarrier();

        load_k(base, k0, lid);
        workgroupBarrier();
        var s = 0.0;
        for (var t = 0u; t < p.d; t++) {
            s += qs[i * LD + t] * xs[j * LD + t];
        }
        var ds = 0.0;
        if (k0 + j <= qi && qi < p.n) { ds = exp(s * p.scale - lse_i) * (dp - delta_i); }
        dss[lid] = ds;
        workgroupBarrier();

        for (var a = 0u; a < PER; a++) {
            let t = j + a * BK;
            if (t < p.d) {
                var x = acc[a];
                for (var jj = 0u; jj < BK; jj++) {
                    x += dss[i * BK + jj] * xs[jj * LD + t];
                }
                acc[a] = x;
            }
        }
        workgroupBarrier();
    }

    if (qi < p.n) {
        for (var a = 0u; a < PER; a++) {
            let t = j + a * BK;
            if (t < p.d) { dq[base + qi * p.d + t] = acc[a] * p.scale; }
        }
    }
}
