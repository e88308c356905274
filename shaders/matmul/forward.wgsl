// C[z] = A[z]·B[z] for z = workgroup_id.z, A seen as m×k and B as k×n through row/column/batch
// strides (transposes swap strides, a broadcast operand has batch stride 0); C is contiguous
// [batch, m, n]. A TS×TS workgroup computes a TILE×TILE tile of C (TILE = TS·RB); each thread owns
// the RB×RB elements at rows ty + i·TS and columns tx + j·TS, so a warp's shared reads are
// consecutive words and its global writes coalesce. A and B go through shared memory in TK-deep
// slices; out-of-range elements load as 0, so any m, k, n works.
struct Params {
    m: u32, n: u32, k: u32, a_k_contig: u32,
    a_rs: u32, a_cs: u32, a_bs: u32, b_n_contig: u32,
    b_rs: u32, b_cs: u32, b_bs: u32, _p0: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = TS * RB;
// One padding column: a loader walking k stores TILE+1 words apart, which spreads the banks.
const LD: u32 = TILE + 1u;
const THREADS: u32 = TS * TS;
// Slices stored k-major: as_[kk * LD + row], bs_[kk * LD + col].
var<workgroup> as_: array<f32, TK * LD>;
var<workgroup> bs_: array<f32, TK * LD>;

@compute @workgroup_size(TS, TS, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let a0 = wid.z * p.a_bs;
    let b0 = wid.z * p.b_bs;
    var acc: array<f32, RB * RB>;
    var av: array<f32, RB>;
    var bv: array<f32, RB>;
    let slices = (p.k + TK - 1u) / TK;
    for (var t = 0u; t < slices; t++) {
        let k0 = t * TK;
        // Consecutive threads take consecutive addresses of whichever index is contiguous in
        // global memory (the flags are uniform, so the branch does not diverge).
        for (var e = lid; e < TILE * TK; e += THREADS) {
            var r: u32;
            var kk: u32;
            if (p.a_k_contig != 0u) { kk = e % TK; r = e / TK; } else { r = e % TILE; kk = e / TILE; }
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.m && gk < p.k) { v = a[a0 + gr * p.a_rs + gk * p.a_cs]; }
            as_[kk * LD + r] = v;
        }
        for (var e = lid; e < TILE * TK; e += THREADS) {
            var cc: u32;
            var kk: u32;
            if (p.b_n_contig != 0u) { cc = e % TILE; kk = e / TILE; } else { kk = e % TK; cc = e / TK; }
            let gc = col0 + cc;
            let gk = k0 + kk;
            var v = 0.0;
            if (gc < p.n && gk < p.k) { v = b[b0 + gk * p.b_rs + gc * p.b_cs]; }
            bs_[kk * LD + cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            for (var i = 0u; i < RB; i++) { av[i] = as_[kk * LD + lid3.y + i * TS]; }
            for (var j = 0u; j < RB; j++) { bv[j] = bs_[kk * LD + lid3.x + j * TS]; }
            for (var i = 0u; i < RB; i++) {
                for (var j = 0u; j < RB; j++) {
                    acc[i * RB + j] = fma(av[i], bv[j], acc[i * RB + j]);
                }
            }
        }
        workgroupBarrier();
    }
    let c0 = wid.z * p.m * p.n;
    for (var i = 0u; i < RB; i++) {
        let r = row0 + lid3.y + i * TS;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < RB; j++) {
            let cc = col0 + lid3.x + j * TS;
            if (cc < p.n) { c[c0 + r * p.n + cc] = acc[i * RB + j]; }
        }
    }
}
