// LayerNorm forward, one workgroup per row: y = (x − mean)·rstd·gamma + beta.
// Two passes (mean, then squared deviations) over values shifted by the row's first element, so
// rows with a large offset keep their small deviations; see src/kernels/layernorm/mod.rs.
struct Params { rows: u32, cols: u32, eps: f32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;

var<workgroup> red: array<f32, WG>;

// Tree sum of one value per thread; every thread gets the total. The trailing barrier lets the
// next call reuse `red` safely.
fn block_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let n = f32(p.cols);
    let shift = x[base];
    var s = 0.0;
    for (var c = lid; c < p.cols; c += WG) { s += x[base + c] - shift; }
    let mean_d = block_sum(lid, s) / n;
    var q = 0.0;
    for (var c = lid; c < p.cols; c += WG) {
        let d = (x[base + c] - shift) - mean_d;
        q += d * d;
    }
    let rs = 1.0 / sqrt(block_sum(lid, q) / n + p.eps);
    for (var c = lid; c < p.cols; c += WG) {
        y[base + c] = ((x[base + c] - shift) - mean_d) * rs * gamma[c] + beta[c];
    }
    if (lid == 0u) {
        mean[row] = shift + mean_d;
        rstd[row] = rs;
    }
}
