// de[i, c]: ds'_i·u[c] for context rows (u = W_r·qv), v[c]/|Q| for question rows (v = W_q·dqv),
// 0 elsewhere. ds' is the scaled, padded score gradient from pad_scale.
struct Params { n: u32, dm: u32, n_ctx: u32, q0: u32, q1: u32, inv_nq: f32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dss: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> de: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let idx = (wid.y * nwg.x + wid.x) * WG + lid;
    if (idx >= p.n * p.dm) { return; }
    let i = idx / p.dm;
    let c = idx - i * p.dm;
    var g = 0.0;
    if (i < p.n_ctx) {
        g = dss[i] * u[c];
    } else if (i >= p.q0 && i < p.q1) {
        g = v[c] * p.inv_nq;
    }
    de[idx] = g;
}
