// Ring scatter: plan row w = (batch row, slot, source position, write step) copies one latent
// vector into its slot and sets the slot's metadata. The host drops writes overwritten later in
// the same batch, so slots in a plan are distinct and no two threads write one word.
struct Params { total: u32, latent: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> plan: array<u32>;
@group(0) @binding(3) var<storage, read_write> slots: array<f32>;
@group(0) @binding(4) var<storage, read_write> positions: array<u32>;
@group(0) @binding(5) var<storage, read_write> steps: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.total) { return; }
    let w = i / p.latent;
    let col = i - w * p.latent;
    let row = plan[4u * w];
    let slot = plan[4u * w + 1u];
    slots[slot * p.latent + col] = src[row * p.latent + col];
    if (col == 0u) {
        positions[slot] = plan[4u * w + 2u];
        steps[slot] = plan[4u * w + 3u];
    }
}
