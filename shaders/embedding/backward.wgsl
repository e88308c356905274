// dweight[id, c] = Σ dy[t, c] over the positions t with that id. One thread per
// (segment, column); a segment lists one distinct id's positions in ascending order (built on the
// host), so each sum has a fixed order and no two threads write the same element.
struct Params { segs: u32, dim: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> seg_ids: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> dweight: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.segs * p.dim) { return; }
    let k = i / p.dim;
    let c = i % p.dim;
    var s = 0.0;
    for (var j = offsets[k]; j < offsets[k + 1u]; j++) {
        s += dy[order[j] * p.dim + c];
    }
    dweight[seg_ids[k] * p.dim + c] = s;
}
