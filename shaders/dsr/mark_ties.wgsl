// flag[b] = 1 for the non-sink blocks whose key equals the threshold T; their prefix sum is each
// tie's rank in block order, so ties go to the lower block index.
#include "dsr_blocks.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> flag: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = (wid.y * nwg.x + wid.x) * WG + lid;
    if (b >= p.nb) { return; }
    flag[b] = u32(b > 0u && keys[b] == state[6]);
}
