// GCA backward, query side: one thread per query row. Per segment g it recomputes the
// softmax (pass 1: max, sum and Σ e·(dO·v) online, so dO·O^g needs no d-sized buffer), then
// (pass 2) accumulates dq. It writes the per-row, per-segment values the key side and the dw
// reduction read: aux[r, 0..G) lse, [G..2G) delta = α·dO·O^g, [2G..3G) α, [3G..4G) dO·O^g,
// with G = top_k + 1 and zeros for empty slots.
#include "gca_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> sel: array<u32>;
@group(0) @binding(6) var<storage, read> w: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> aux: array<f32>;

const NONE: u32 = 0xffffffffu;
const NEG_BIG: f32 = -3.402823e38;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.rows) { return; }
    let h = r / p.l;
    let t = r % p.l;
    let bi = h / p.heads;
    let base = h * p.l * p.d;
    let c = t / p.chunk;
    let G = p.top_k + 1u;
    let ab = r * 4u * G;
    var qv: array<f32, MAX_D>;
    var dov: array<f32, MAX_D>;
    var acc: array<f32, MAX_D>;
    for (var x = 0u; x < p.d; x++) {
        qv[x] = q[r * p.d + x];
        dov[x] = dout[r * p.d + x];
        acc[x] = 0.0;
    }
    for (var g = 0u; g < G; g++) {
        var start = 0u;
        if (c > 0u) { start = (c - 1u) * p.chunk; }
        var end = t + 1u;
        var alpha = 1.0;
        if (g > 0u) {
            let i = (bi * p.nc + c) * p.top_k + g - 1u;
            let ch = sel[i];
            if (ch == NONE) {
                aux[ab + g] = 0.0;
                aux[ab + G + g] = 0.0;
                aux[ab + 2u * G + g] = 0.0;
                aux[ab + 3u * G + g] = 0.0;
                continue;
            }
            start = ch * p.chunk;
            end = min(start + p.chunk, p.l);
            alpha = w[i];
        }
        var m = NEG_BIG;
        var z = 0.0;
        var y = 0.0;
        for (var j = start; j < end; j++) {
            let kb = base + j * p.d;
            var s = 0.0;
            var dv = 0.0;
            for (var x = 0u; x < p.d; x++) {
                s += qv[x] * k[kb + x];
                dv += dov[x] * v[kb + x];
            }
            s *= p.scale;
            let mn = max(m, s);
            let corr = exp(m - mn);
            let e = exp(s - mn);
            z = z * corr + e;
            y = y * corr + e * dv;
            m = mn;
        }
        let lse = m + log(z);
        let doo = y / z;
        for (var j = start; j < end; j++) {
            let kb = base + j * p.d;
            var s = 0.0;
            var dv = 0.0;
            for (var x = 0u; x < p.d; x++) {
                s += qv[x] * k[kb + x];
                dv += dov[x] * v[kb + x];
            }
            let pj = exp(s * p.scale - lse);
            let ds = alpha * pj * (dv - doo) * p.scale;
            for (var x = 0u; x < p.d; x++) { acc[x] += ds * k[kb + x]; }
        }
        aux[ab + g] = lse;
        aux[ab + G + g] = alpha * doo;
        aux[ab + 2u * G + g] = alpha;
        aux[ab + 3u * G + g] = doo;
    }
    for (var x = 0u; x < p.d; x++) { dq[r * p.d + x] = acc[x]; }
}
