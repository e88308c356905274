// dx[r,c] = dy[r,c] + Σ_{j<K, t+j<len} w[j,c]·dy[r+j,c], t = r mod len: the transpose of the
// forward's taps, staying inside the sequence. One thread per element.
#include "shortconv_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.rows * p.cols) { return; }
    let r = i / p.cols;
    let c = i % p.cols;
    let t = r % p.len;
    var s = dy[i];
    let n = min(p.taps, p.len - t);
    for (var j = 0u; j < n; j++) {
        s += w[j * p.cols + c] * dy[(r + j) * p.cols + c];
    }
    dx[i] = s;
}
