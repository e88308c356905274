// Block score = max of the scores of its tokens (the last block may be partial), plus the
// block's u32 sort key: a bit pattern that orders like the float (−0 folded onto +0), which the
// radix select and the CPU's sort share, so both keep the same blocks.
struct Params { n_ctx: u32, block: u32, nb: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> bs: array<f32>;
@group(0) @binding(3) var<storage, read_write> keys: array<u32>;

fn order_key(f: f32) -> u32 {
    var b = bitcast<u32>(f);
    if (b == 0x80000000u) { b = 0u; }
    if ((b & 0x80000000u) != 0u) { return ~b; }
    return b | 0x80000000u;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = (wid.y * nwg.x + wid.x) * WG + lid;
    if (b >= p.nb) { return; }
    let start = b * p.block;
    // Written as a length so a huge block size cannot overflow start + block.
    let len = min(p.block, p.n_ctx - start);
    var m = s[start];
    for (var k = 1u; k < len; k++) {
        m = max(m, s[start + k]);
    }
    bs[b] = m;
    keys[b] = order_key(m);
}
