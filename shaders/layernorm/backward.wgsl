// LayerNorm dx, one workgroup per row. With g = dy·gamma and x̂ = (x − mean)·rstd:
// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); both means come from one shared-memory reduction.
#include "layernorm_backward_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

var<workgroup> red_g: array<f32, WG>;
var<workgroup> red_gx: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let m = mean[row];
    let rs = rstd[row];
    var sg = 0.0;
    var sgx = 0.0;
    for (var c = lid; c < p.cols; c += WG) {
        let g = dy[base + c] * gamma[c];
        sg += g;
        sgx += g * ((x[base + c] - m) * rs);
    }
    red_g[lid] = sg;
    red_gx[lid] = sgx;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_g[lid] += red_g[lid + s];
            red_gx[lid] += red_gx[lid + s];
        }
        workgroupBarrier();
    }
    let n = f32(p.cols);
    let mg = red_g[0] / n;
    let mgx = red_gx[0] / n;
    for (var c = lid; c < p.cols; c += WG) {
        let xh = (x[base + c] - m) * rs;
        dx[base + c] = rs * (dy[base + c] * gamma[c] - mg - xh * mgx);
    }
}
