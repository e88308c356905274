// ē[c] = mean of e[j, c] over the question rows j in [q0, q1): the question vector before W_q
// (qv = ē·W_q, since the projection is linear). One thread per column; the question is short.
struct Params { q0: u32, q1: u32, dm: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> e: array<f32>;
@group(0) @binding(2) var<storage, read_write> ebar: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = (wid.y * nwg.x + wid.x) * WG + lid;
    if (c >= p.dm) { return; }
    var acc = 0.0;
    for (var j = p.q0; j < p.q1; j++) {
        acc += e[j * p.dm + c];
    }
    ebar[c] = acc / f32(p.q1 - p.q0);
}
