// out[0] = inv_n · Σ partials, by a single workgroup: each thread walks its strided slice in
// order, then a tree reduction — the same order every run.
struct Params { count: u32, inv_n: f32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> s: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < p.count; i += WG) {
        acc += partials[i];
    }
    s[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            s[lid] += s[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[0] = s[0] * p.inv_n;
    }
}
