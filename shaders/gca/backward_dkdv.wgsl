// GCA backward, key side: one thread per key row j (chunk cj). Its readers are the local
// windows of chunks cj and cj + 1 (queries t ≥ j), and every chunk c ≥ cj + 2 whose sel row
// lists cj (found by scanning sel; at most one slot per chunk since top-k indices are
// distinct, but each listing slot is handled). P and dS are rebuilt from the dq pass's aux
// (lse, delta = α·dO·O^g, α), so each dk/dv row has exactly one writer.
#include "gca_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> sel: array<u32>;
@group(0) @binding(6) var<storage, read> aux: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

var<private> kv: array<f32, MAX_D>;
var<private> vv: array<f32, MAX_D>;
var<private> gk: array<f32, MAX_D>;
var<private> gv: array<f32, MAX_D>;

// Adds query row qr's segment-g contribution to this key's gk, gv.
fn contribute(qr: u32, g: u32) {
    let G = p.top_k + 1u;
    let ab = qr * 4u * G;
    let lse = aux[ab + g];
    let delta = aux[ab + G + g];
    let alpha = aux[ab + 2u * G + g];
    let qb = qr * p.d;
    var s = 0.0;
    var dpv = 0.0;
    for (var x = 0u; x < p.d; x++) {
        s += q[qb + x] * kv[x];
        dpv += dout[qb + x] * vv[x];
    }
    let pj = exp(s * p.scale - lse);
    let ds = pj * (alpha * dpv - delta) * p.scale;
    let pa = alpha * pj;
    for (var x = 0u; x < p.d; x++) {
        gk[x] += ds * q[qb + x];
        gv[x] += pa * dout[qb + x];
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.rows) { return; }
    let h = r / p.l;
    let j = r % p.l;
    let bi = h / p.heads;
    let row0 = h * p.l;
    let cj = j / p.chunk;
    for (var x = 0u; x < p.d; x++) {
        kv[x] = k[r * p.d + x];
        vv[x] = v[r * p.d + x];
        gk[x] = 0.0;
        gv[x] = 0.0;
    }
    let local_end = min((cj + 2u) * p.chunk, p.l);
    for (var t = j; t < local_end; t++) { contribute(row0 + t, 0u); }
    for (var c = cj + 2u; c < p.nc; c++) {
        for (var kk = 0u; kk < p.top_k; kk++) {
            if (sel[(bi * p.nc + c) * p.top_k + kk] != cj) { continue; }
            let end = min((c + 1u) * p.chunk, p.l);
            for (var t = c * p.chunk; t < end; t++) { contribute(row0 + t, kk + 1u); }
        }
    }
    for (var x = 0u; x < p.d; x++) {
        dk[r * p.d + x] = gk[x];
        dv[r * p.d + x] = gv[x];
    }
}
