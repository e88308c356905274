// sel[b] = 1 for the kept blocks: the sink block, every block above the threshold key T, and
// the first state[7] blocks (in block order) tied at T.
#include "dsr_blocks.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read> tie_rank: array<u32>;
@group(0) @binding(4) var<storage, read_write> sel: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = (wid.y * nwg.x + wid.x) * WG + lid;
    if (b >= p.nb) { return; }
    let k = keys[b];
    let t = state[6];
    let keep = b == 0u || k > t || (k == t && tie_rank[b] < state[7]);
    sel[b] = u32(keep);
}
