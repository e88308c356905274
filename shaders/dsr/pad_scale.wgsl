// ds' = ds/sqrt(dr) over the context, 0 for the other n − n_ctx rows: the left operand of
// g = ds'ᵀ·e, a matmul over the whole [n, dm] embedding buffer with no row copy.
struct Params { n_ctx: u32, n: u32, scale: f32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ds: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    var v = 0.0;
    if (i < p.n_ctx) { v = ds[i] * p.scale; }
    out[i] = v;
}
