// Radix select, histogram of one 8-bit digit (pass 0 = the top byte) of the block keys 1..nb
// (block 0, the sink, is always kept and never competes) that match the threshold prefix found
// by the earlier passes. Integer atomics make the counts exact whatever the thread order: a
// shared histogram per workgroup, then one global add per non-empty bin into hist[pass·256 + d].
#include "dsr_radix.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;

var<workgroup> lh: array<atomic<u32>, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    for (var d = lid; d < 256u; d += WG) {
        atomicStore(&lh[d], 0u);
    }
    workgroupBarrier();
    let shift = 24u - 8u * p.pass_;
    var mask = 0u;
    if (p.pass_ > 0u) {
        mask = 0xFFFFFFFFu << (shift + 8u);
    }
    let prefix = state[6] & mask;
    for (var i = wid.x * WG + lid + 1u; i < p.nb; i += p.groups * WG) {
        let k = keys[i];
        if ((k & mask) == prefix) {
            atomicAdd(&lh[(k >> shift) & 255u], 1u);
        }
    }
    workgroupBarrier();
    for (var d = lid; d < 256u; d += WG) {
        let c = atomicLoad(&lh[d]);
        if (c > 0u) {
            atomicAdd(&hist[p.pass_ * 256u + d], c);
        }
    }
}
