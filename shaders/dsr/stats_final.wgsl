// Softmax statistics, pass 2 (one workgroup): merges the per-workgroup triples in a fixed order,
// then thread 0 derives the entropy H = ln z − t/z, the complexity c = H/ln n (0 for n ≤ 1),
// the budget B = min(n, floor(base·(1 + α·c) + 0.5)) and the kept blocks K = clamp(ceil(B/block),
// 1, nb), and seeds the radix select with M = K − 1 blocks still to find.
// state: [0] max, [1] ln z, [2] c (f32 bits), [3] B, [4] K, [5] M, [6] threshold prefix,
//        [7] blocks still to take at the threshold.
struct Params {
    groups: u32, n: u32, block: u32, nb: u32,
    base_budget: u32, alpha: f32, _p0: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;

var<workgroup> sm: array<f32, WG>;
var<workgroup> sz: array<f32, WG>;
var<workgroup> st: array<f32, WG>;

fn merge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    if (a.y == 0.0) { return b; }
    if (b.y == 0.0) { return a; }
    let m = max(a.x, b.x);
    let fa = exp(a.x - m);
    let fb = exp(b.x - m);
    return vec3<f32>(m, a.y * fa + b.y * fb,
                     fa * (a.z + (a.x - m) * a.y) + fb * (b.z + (b.x - m) * b.y));
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    var acc = vec3<f32>(0.0, 0.0, 0.0);
    for (var g = lid; g < p.groups; g += WG) {
        acc = merge(acc, vec3<f32>(part[g], part[p.groups + g], part[2u * p.groups + g]));
    }
    sm[lid] = acc.x;
    sz[lid] = acc.y;
    st[lid] = acc.z;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            let r = merge(vec3<f32>(sm[lid], sz[lid], st[lid]),
                          vec3<f32>(sm[lid + h], sz[lid + h], st[lid + h]));
            sm[lid] = r.x;
            sz[lid] = r.y;
            st[lid] = r.z;
        }
        workgroupBarrier();
    }
    if (lid != 0u) { return; }
    let z = sz[0];
    let lnz = log(z);
    var c = 0.0;
    if (p.n > 1u) {
        c = clamp((lnz - st[0] / z) / log(f32(p.n)), 0.0, 1.0);
    }
    let want = floor(f32(p.base_budget) * (1.0 + p.alpha * c) + 0.5);
    let b = u32(clamp(want, 0.0, f32(p.n)));
    let bmin = min(b, p.n);
    var k = bmin / p.block;
    if (k * p.block < bmin) { k += 1u; }
    k = clamp(k, 1u, p.nb);
    state[0] = bitcast<u32>(sm[0]);
    state[1] = bitcast<u32>(lnz);
    state[2] = bitcast<u32>(c);
    state[3] = bmin;
    state[4] = k;
    state[5] = k - 1u;
    // With nothing to find, a threshold above every key and no ties to take select no block.
    state[6] = select(0u, 0xFFFFFFFFu, k == 1u);
    state[7] = k - 1u;
}
