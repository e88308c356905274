// Retrieval loss with known spans, fused forward + backward: label y_i = 1 inside any of the
// (already dilated and clipped) spans [a, b), per-token stable BCE-with-logits
// max(s, 0) − s·y + ln(1 + e^{−|s|}), ds_i = (σ(s_i) − y_i)/n. Each workgroup sums its
// grid-strided share of the losses into part[g] (tree, fixed order); reduce_partials finishes.
struct Params { n: u32, nspans: u32, groups: u32, inv_n: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> spans: array<u32>;
@group(0) @binding(3) var<storage, read_write> ds: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

var<workgroup> sh: array<f32, WG>;

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = wid.x * WG + lid; i < p.n; i += p.groups * WG) {
        var y = 0.0;
        for (var k = 0u; k < p.nspans; k++) {
            if (i >= spans[2u * k] && i < spans[2u * k + 1u]) {
                y = 1.0;
                break;
            }
        }
        let x = s[i];
        acc += max(x, 0.0) - x * y + log(1.0 + exp(-abs(x)));
        ds[i] = (sigmoid(x) - y) * p.inv_n;
    }
    sh[lid] = acc;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) { sh[lid] += sh[lid + h]; }
        workgroupBarrier();
    }
    if (lid == 0u) { part[wid.x] = sh[0]; }
}
