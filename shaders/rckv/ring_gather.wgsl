// Ring gather in age order: output row i reads slot i for the sinks (i < sink), else
// sink + (oldest + i − sink) mod rotating, where `oldest` is the oldest rotating slot's offset
// (the write head once the ring has wrapped). The host passes only the head, not an index list.
struct Params { total: u32, latent: u32, sink: u32, rotating: u32, oldest: u32,
                _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> slots: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_pos: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.total) { return; }
    let r = i / p.latent;
    let col = i - r * p.latent;
    var slot = r;
    if (r >= p.sink) {
        slot = p.sink + (p.oldest + r - p.sink) % p.rotating;
    }
    out[i] = slots[slot * p.latent + col];
    if (col == 0u) {
        out_pos[r] = positions[slot];
    }
}
