// LayerNorm dgamma/dbeta, step 1 of a deterministic column sum (WGSL has no float atomics):
// one thread per (chunk, column) adds the chunk's rows in order into partials [chunks, cols].
// Step 2 (the element-wise column-sum kernel) adds the partials in chunk order.
#include "layernorm_backward_params.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> pgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> pbeta: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.chunks * p.cols) { return; }
    // Adjacent threads take adjacent columns so each row's reads are coalesced.
    let k = i / p.cols;
    let c = i % p.cols;
    let r0 = k * p.chunk;
    let r1 = min(r0 + p.chunk, p.rows);
    var sg = 0.0;
    var sb = 0.0;
    for (var r = r0; r < r1; r++) {
        let d = dy[r * p.cols + c];
        sg += d * ((x[r * p.cols + c] - mean[r]) * rstd[r]);
        sb += d;
    }
    pgamma[i] = sg;
    pbeta[i] = sb;
}
