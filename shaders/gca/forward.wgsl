// GCA forward: one thread per query row. The row attends its local window (previous chunk
// and its own chunk up to itself), then each retrieved chunk on its own (an online softmax
// per segment), and sums the segment outputs weighted by 1 (local) and w (retrieved).
// Grid: 1-D over bh·l rows, folded into (x, y) by the host.
#include "gca_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> sel: array<u32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read_write> o: array<f32>;

const NONE: u32 = 0xffffffffu;
// Finite stand-in for −inf, so that m_old − m_new never computes inf − inf.
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
    var qv: array<f32, MAX_D>;
    var out: array<f32, MAX_D>;
    var acc: array<f32, MAX_D>;
    for (var x = 0u; x < p.d; x++) {
        qv[x] = q[r * p.d + x];
        out[x] = 0.0;
    }
    for (var g = 0u; g <= p.top_k; g++) {
        var start = 0u;
        if (c > 0u) { start = (c - 1u) * p.chunk; }
        var end = t + 1u;
        var alpha = 1.0;
        if (g > 0u) {
            let i = (bi * p.nc + c) * p.top_k + g - 1u;
            let ch = sel[i];
            if (ch == NONE) { continue; }
            start = ch * p.chunk;
            end = min(start + p.chunk, p.l);
            alpha = w[i];
        }
        var m = NEG_BIG;
        var z = 0.0;
        for (var x = 0u; x < p.d; x++) { acc[x] = 0.0; }
        for (var j = start; j < end; j++) {
            let kb = base + j * p.d;
            var s = 0.0;
            for (var x = 0u; x < p.d; x++) { s += qv[x] * k[kb + x]; }
            s *= p.scale;
            let mn = max(m, s);
            let corr = exp(m - mn);
            let e = exp(s - mn);
            z = z * corr + e;
            for (var x = 0u; x < p.d; x++) { acc[x] = acc[x] * corr + e * v[kb + x]; }
            m = mn;
        }
        let f = alpha / z;
        for (var x = 0u; x < p.d; x++) { out[x] += f * acc[x]; }
    }
    for (var x = 0u; x < p.d; x++) { o[r * p.d + x] = out[x]; }
}
