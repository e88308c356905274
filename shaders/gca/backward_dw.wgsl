// GCA backward, fusion weights: one thread per (sequence, chunk, slot) sums the dq pass's
// per-row dO·O^g over the sequence's heads and the chunk's tokens, in a fixed order
// (deterministic without float atomics).
#include "gca_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> aux: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Here `rows` counts the b·nc·K outputs.
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.rows) { return; }
    let slot = i % p.top_k;
    let c = (i / p.top_k) % p.nc;
    let bi = i / (p.top_k * p.nc);
    let G = p.top_k + 1u;
    let end = min((c + 1u) * p.chunk, p.l);
    var sum = 0.0;
    for (var hh = 0u; hh < p.heads; hh++) {
        let row0 = (bi * p.heads + hh) * p.l;
        for (var t = c * p.chunk; t < end; t++) {
            sum += aux[(row0 + t) * 4u * G + 3u * G + slot + 1u];
        }
    }
    dw[i] = sum;
}
