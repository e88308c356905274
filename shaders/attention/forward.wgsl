// Causal scaled-dot-product attention forward, FlashAttention-2 style: a workgroup owns BQ
// query rows of one head and streams key/value tiles of BK rows through workgroup memory up
// to the diagonal, keeping a running max m, sum l and output accumulator per query (online
// softmax). Scores never leave the workgroup: memory is O(n·d), not O(n²).
// Grid: x = query block, y = head (bh). Thread (r, c) = (lid / BK, lid % BK) scores query r
// against key c of the tile, and accumulates output dims c, c + BK, c + 2·BK, ... of row r.
#include "attention_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

const WG: u32 = BQ * BK;
// Row stride in workgroup memory: the +1 staggers rows across banks for the column reads.
const LD: u32 = MAX_D + 1u;
// Output dims per thread.
const PER: u32 = (MAX_D + BK - 1u) / BK;
// Finite stand-in for −inf, so that m_old − m_new never computes inf − inf.
const NEG_BIG: f32 = -3.402823e38;

var<workgroup> qs: array<f32, BQ * LD>;
// K tile, then (after the scores are taken) the V tile of the same keys.
var<workgroup> kv: array<f32, BK * LD>;
var<workgroup> ss: array<f32, WG>;

// Tile loaders: rows row0.. of one head into workgroup memory, zeros past row n so the
// padded rows are harmless. (One per buffer: WGSL cannot pass storage arrays to functions.)
fn load_q(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BQ * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var x = 0.0;
        if (row0 + r < p.n) { x = q[base + (row0 + r) * p.d + t]; }
        qs[r * LD + t] = x;
    }
}

fn load_k(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BK * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var x = 0.0;
        if (row0 + r < p.n) { x = k[base + (row0 + r) * p.d + t]; }
        kv[r * LD + t] = x;
    }
}

fn load_v(base: u32, row0: u32, lid: u32) {
    for (var idx = lid; idx < BK * p.d; idx += WG) {
        let r = idx / p.d;
        let t = idx % p.d;
        var x = 0.0;
        if (row0 + r < p.n) { x = v[base + (row0 + r) * p.d + t]; }
        kv[r * LD + t] = x;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let q0 = wid.x * BQ;
    let base = wid.y * p.n * p.d;
    let r = lid / BK;
    let c = lid % BK;
    let qi = q0 + r;

    load_q(base, q0, lid);
    var m = NEG_BIG;
    var l = 0.0;
    var acc: array<f32, PER>;
    var pr: array<f32, BK>;
    // Causal: keys past the block's last query are never visited.
    let k_end = min(p.n, q0 + BQ);
    for (var k0 = 0u; k0 < k_end; k0 += BK) {
        load_k(base, k0, lid);
        workgroupBarrier();
        var s = 0.0;
        for (var t = 0u; t < p.d; t++) {
            s += qs[r * LD + t] * kv[c * LD + t];
        }
        ss[lid] = s * p.scale;
        workgroupBarrier();

        load_v(base, k0, lid);
        // Every thread of row r redoes the row's softmax update (BK exps) rather than
        // broadcasting it: cheaper than another barrier.
        var m_new = m;
        for (var j = 0u; j < BK; j++) {
            if (k0 + j <= qi && qi < p.n) { m_new = max(m_new, ss[r * BK + j]); }
        }
        let alpha = exp(m - m_new);
        var sum = 0.0;
        for (var j = 0u; j < BK; j++) {
            var e = 0.0;
            if (k0 + j <= qi && qi < p.n) { e = exp(ss[r * BK + j] - m_new); }
            pr[j] = e;
            sum += e;
        }
        l = l * alpha + sum;
        m = m_new;
        workgroupBarrier();

        for (var a = 0u; a < PER; a++) {
            let t = c + a * BK;
            if (t < p.d) {
                var x = acc[a] * alpha;
                for (var j = 0u; j < BK; j++) {
                    x += pr[j] * kv[j * LD + t];
                }
                acc[a] = x;
            }
        }
        workgroupBarrier();
    }

    if (qi < p.n) {
        let inv = 1.0 / l;
        for (var a = 0u; a < PER; a++) {
            let t = c + a * BK;
            if (t < p.d) { o[base + qi * p.d + t] = acc[a] * inv; }
        }
        if (c == 0u) { lse[wid.y * p.n + qi] = m + log(l); }
    }
}
