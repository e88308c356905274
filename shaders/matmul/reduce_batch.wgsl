// y[i] = sum over z of x[z * len + i]: the batch sum of per-batch gradients of a broadcast
// operand. One thread per element adds the batches in order, so the result is deterministic
// (WGSL has no float atomics) and reads coalesce across threads.
struct Params { len: u32, batch: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.len) { return; }
    var s = 0.0;
    for (var z = 0u; z < p.batch; z++) {
        s += x[z * p.len + i];
    }
    y[i] = s;
}
