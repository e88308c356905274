// s[i] = scale · <e[i, :], u> for the context rows i < n_ctx, with u = W_r·qv formed once on the
// host side of the pipeline (a matmul), so scoring is one dot product per token. The running
// sum goes over the row in order, as the CPU path does.
struct Params { n_ctx: u32, dm: u32, scale: f32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> e: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n_ctx) { return; }
    let base = i * p.dm;
    var acc = 0.0;
    for (var c = 0u; c < p.dm; c++) {
        acc += e[base + c] * u[c];
    }
    s[i] = p.scale * acc;
}
