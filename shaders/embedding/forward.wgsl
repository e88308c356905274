// out[t, c] = weight[ids[t], c]. The host has already rejected ids ≥ vocab; the guard here keeps
// a bad id from ever reading outside the table.
struct Params { n: u32, dim: u32, vocab: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let id = ids[i / p.dim];
    if (id >= p.vocab) { return; }
    out[i] = weight[id * p.dim + i % p.dim];
}
