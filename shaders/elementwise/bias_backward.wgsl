// dbias[c] = sum over rows of dy[r, c]. One thread per column walks the rows in order, so the
// sum is deterministic (WGSL has no float atomics) and reads are coalesced across threads.
struct Params { rows: u32, cols: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = (wid.y * nwg.x + wid.x) * WG + lid;
    if (c >= p.cols) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s += dy[r * p.cols + c];
    }
    dbias[c] = s;
}
