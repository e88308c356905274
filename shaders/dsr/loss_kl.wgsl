// Attention distillation KL(t ‖ softmax(s)), pass 1: with ln p_i = s_i − max − ln z from the
// softmax statistics (state[0], state[1]), each workgroup sums t·(ln t − ln p) over tokens with
// t > 0 into part[g] and Σt into part[G + g]. The gradient needs Σt, so it is a second kernel.
#include "dsr_partials.wgsl"
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

var<workgroup> sl: array<f32, WG>;
var<workgroup> stt: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let shift = bitcast<f32>(state[0]) + bitcast<f32>(state[1]);
    var acc_l = 0.0;
    var acc_t = 0.0;
    for (var i = wid.x * WG + lid; i < p.n; i += p.groups * WG) {
        let t = tgt[i];
        if (t > 0.0) {
            acc_l += t * (log(t) - (s[i] - shift));
            acc_t += t;
        }
    }
    sl[lid] = acc_l;
    stt[lid] = acc_t;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            sl[lid] += sl[lid + h];
            stt[lid] += stt[lid + h];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        part[wid.x] = sl[0];
        part[p.groups + wid.x] = stt[0];
    }
}
