//! SQA: exactness against dense attention, fast CPU path vs the plain-loop references,
//! finite differences, recall, errors; and every WGSL kernel against its CPU reference.

use crate::common;
mod cpu_tests;
mod gpu_tests;

use dsrsq::kernels::attention::cpu as dense;
use dsrsq::kernels::check::{random_vec, Tol};
use dsrsq::kernels::sqa::{SqaConfig, SqaShape};

/// f32 products and sums (gemm tiles, a polynomial exp with 2e-7 relative error, f32 merges
/// of partial softmaxes) against f64 references: the tolerance of the dense attention tests.
pub const TOL: Tol = Tol::new(1e-4, 1e-3);
/// Central differences with eps 1e-2 of an f64 loss over f32 forward outputs.
pub const FD: Tol = Tol::new(1e-3, 1e-2);

/// Standard normal samples (Box–Muller over the crate's seeded uniforms).
pub fn gauss(seed: u64, len: usize) -> Vec<f32> {
    let u = random_vec(seed, 2 * len, 1.0);
    let pairs = u.chunks_exact(2).map(|p| {
        let (a, b) = ((f64::from(p[0]) + 1.0) / 2.0, (f64::from(p[1]) + 1.0) / 2.0);
        let r = (-2.0 * (1.0 - a).ln()).sqrt();
        (r * (2.0 * std::f64::consts::PI * b).cos()) as f32
    });
    pairs.collect()
}

/// Inputs on which every clustering decision is exact in f32 on any device: keys are positive
/// integer multiples of one of `protos` one-hot directions (so normalized keys are exactly
/// one-hot and centroid scores are sums of few exact terms), queries small integers. Ties are
/// then exact or f32-rounding-level, and the tie rule resolves both the same way everywhere.
pub fn exact_inputs(seed: u64, s: SqaShape, protos: usize) -> (Vec<f32>, Vec<f32>) {
    let len = s.bh * s.n * s.d;
    let u = random_vec(seed, 2 * s.bh * s.n, 1.0);
    let mut k = vec![0.0_f32; len];
    for (r, key) in k.chunks_exact_mut(s.d).enumerate() {
        let p = ((u[2 * r] + 1.0) / 2.0 * protos as f32) as usize % protos.min(s.d);
        key[p] = 1.0 + ((u[2 * r + 1] + 1.0) * 1.5).floor();
    }
    let q = random_vec(seed + 1, len, 3.5)
        .into_iter()
        .map(f32::round)
        .collect();
    (q, k)
}

pub fn cfg(clusters: usize, top_k: usize, window: usize, sink: usize, iters: usize) -> SqaConfig {
    SqaConfig {
        clusters,
        top_k,
        window,
        sink,
        iters,
    }
}

pub fn shape(bh: usize, n: usize, d: usize) -> SqaShape {
    SqaShape { bh, n, d }
}

pub type Qkv = (Vec<f32>, Vec<f32>, Vec<f32>);

pub fn qkv(seed: u64, s: SqaShape) -> Qkv {
    let len = s.bh * s.n * s.d;
    (gauss(seed, len), gauss(seed + 1, len), gauss(seed + 2, len))
}

/// Clusterings of the exact inputs: n < C, n = 1, all keys identical, empty clusters, n not a
/// multiple of the workgroup size. `(shape, config, prototypes)`.
pub fn exact_cases() -> Vec<(SqaShape, SqaConfig, usize)> {
    vec![
        (shape(2, 100, 8), cfg(6, 2, 4, 2, 2), 8),
        (shape(1, 5, 8), cfg(8, 3, 1, 1, 2), 8),     // n < C
        (shape(3, 1, 4), cfg(4, 2, 1, 0, 2), 4),     // n = 1
        (shape(1, 77, 6), cfg(5, 2, 3, 1, 3), 1),    // all keys identical in direction
        (shape(2, 131, 16), cfg(12, 4, 8, 4, 2), 3), // most clusters empty
        (shape(1, 67, 32), cfg(9, 9, 2, 2, 0), 32),  // iters = 0, top_k = C
    ]
}
