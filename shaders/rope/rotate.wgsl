// Half-split RoPE over x [b, h, n, d]: pair (i, i + d/2) rotated by θ = f32(pos)·inv_freq[i].
// One thread per pair. `backward` is the same rotation by −θ. θ is reduced to [−π, π] before
// sin/cos because WGSL bounds their error only there; the CPU reference does the same f32 steps.
struct Params { pairs: u32, half: u32, n: u32, hn: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const INV_2PI: f32 = 0.15915494;
// 2π = C1 + C2 + C3 + C4: k·C1..k·C3 are exact for k < 2^18, so only the last step rounds.
const C1: f32 = 25.0 / 4.0;
const C2: f32 = 33.0 / 1024.0;
const C3: f32 = 31.0 / 32768.0;
const C4: f32 = 1.26997575e-5;

fn reduce_angle(t: f32) -> f32 {
    let k = round(t * INV_2PI);
    return (((t - k * C1) - k * C2) - k * C3) - k * C4;
}

fn rotate(i: u32, sign: f32) {
    if (i >= p.pairs) { return; }
    let row = i / p.half;
    let j = i % p.half;
    let tok = row / p.hn * p.n + row % p.n;
    let r = reduce_angle(f32(positions[tok]) * inv_freq[j]);
    let s = sign * sin(r);
    let c = cos(r);
    let lo = row * 2u * p.half + j;
    let a = x[lo];
    let b = x[lo + p.half];
    y[lo] = a * c - b * s;
    y[lo + p.half] = a * s + b * c;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    rotate((wid.y * nwg.x + wid.x) * WG + lid, 1.0);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    rotate((wid.y * nwg.x + wid.x) * WG + lid, -1.0);
}
