// Final pass of the DSR reductions (one workgroup): out[c] = scale · Σ_g part[c·groups + g] for
// each of `channels` channels, summed by thread stride then a tree, always in the same order.
struct Params { groups: u32, channels: u32, scale: f32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> sh: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    for (var c = 0u; c < p.channels; c++) {
        var acc = 0.0;
        for (var g = lid; g < p.groups; g += WG) {
            acc += part[c * p.groups + g];
        }
        sh[lid] = acc;
        workgroupBarrier();
        for (var h = WG / 2u; h > 0u; h >>= 1u) {
            if (lid < h) { sh[lid] += sh[lid + h]; }
            workgroupBarrier();
        }
        if (lid == 0u) { out[c] = p.scale * sh[0]; }
        workgroupBarrier();
    }
}
