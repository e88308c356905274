// Compute loss, fused forward + backward: per token σ(z) with z = (s − τ)/T (the soft "kept"
// indicator), ds_i = σ(z)(1 − σ(z))/(T·n). Workgroup partial sums of σ(z) go to part[g].
struct Params { n: u32, groups: u32, tau: f32, inv_t: f32, inv_n: f32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> ds: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

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
        let q = sigmoid((s[i] - p.tau) * p.inv_t);
        acc += q;
        ds[i] = q * (1.0 - q) * p.inv_t * p.inv_n;
    }
    sh[lid] = acc;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) { sh[lid] += sh[lid + h]; }
        workgroupBarrier();
    }
    if (lid == 0u) { part[wid.x] = sh[0]; }
}
