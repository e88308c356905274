// Fused softmax + cross-entropy forward and backward for one row per workgroup.
// losses[r] = log Σ exp(x − m) + (m − x[t]);  dlogits[r, c] = (softmax(x)[c] − [c == t]) · inv_n.
// Rows whose target is negative are ignored: loss and gradient are written as 0.
struct Params { rows: u32, vocab: u32, inv_n: f32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

// Finite stand-in for −inf: keeps (max, sum) merges free of inf − inf = NaN.
const NEG_BIG: f32 = -3.402823e38;

var<workgroup> s_max: array<f32, WG>;
var<workgroup> s_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) { return; }
    let base = row * p.vocab;

    // Online softmax statistics over this thread's strided slice: one exp per element.
    var m = NEG_BIG;
    var s = 0.0;
    for (var c = lid; c < p.vocab; c += WG) {
        let x = logits[base + c];
        if (x > m) {
            s = s * exp(m - x) + 1.0;
            m = x;
        } else {
            s += exp(x - m);
        }
    }
    s_max[lid] = m;
    s_sum[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            let m1 = s_max[lid];
            let m2 = s_max[lid + stride];
            let mm = max(m1, m2);
            s_sum[lid] = s_sum[lid] * exp(m1 - mm) + s_sum[lid + stride] * exp(m2 - mm);
            s_max[lid] = mm;
        }
        workgroupBarrier();
    }
    let row_max = s_max[0];
    let total = s_sum[0];

    let t = targets[row];
    if (t < 0) {
        // wgpu zero-initialises buffers, but writing keeps the output defined for reused ones.
        for (var c = lid; c < p.vocab; c += WG) {
            dlogits[base + c] = 0.0;
        }
        if (lid == 0u) { losses[row] = 0.0; }
        return;
    }
    let tu = u32(t);
    let inv_sum = 1.0 / total;
    for (var c = lid; c < p.vocab; c += WG) {
        var g = exp(logits[base + c] - row_max) * inv_sum;
        if (c == tu) { g -= 1.0; }
        dlogits[base + c] = g * p.inv_n;
    }
    if (lid == 0u) {
        losses[row] = log(total) + (row_max - logits[base + tu]);
    }
}
