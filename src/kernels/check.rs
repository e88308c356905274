//! Validation helpers shared by tests and benches: element-wise closeness with a stated
//! `atol + rtol·|ref|` tolerance, and central finite differences.

/// A tolerance `|got − ref| ≤ atol + rtol·|ref|`.
#[derive(Debug, Clone, Copy)]
pub struct Tol {
    pub atol: f32,
    pub rtol: f32,
}

impl Tol {
    pub const fn new(atol: f32, rtol: f32) -> Self {
        Self { atol, rtol }
    }
}

/// Returns a description of the worst offending element, or `Ok` when every element is within
/// tolerance. NaN anywhere in `got` where `want` is finite fails.
pub fn compare(what: &str, got: &[f32], want: &[f32], tol: Tol) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: length {} vs reference {}",
            got.len(),
            want.len()
        ));
    }
    let mut worst: Option<(usize, f32)> = None;
    let mut bad = 0usize;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let lim = tol.atol + tol.rtol * w.abs();
        let err = (g - w).abs();
        // Written so that a NaN error counts as a failure.
        let within = err <= lim || g == w;
        if !within {
            bad += 1;
            let excess = if err.is_nan() {
                f32::INFINITY
            } else {
                err / lim
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(format!(
            "{what}: {bad}/{} elements out of tolerance (atol {} rtol {}); worst at [{i}]: got {} want {}",
            got.len(),
            tol.atol,
            tol.rtol,
            got[i],
            want[i]
        )),
    }
}

/// Central finite differences of a scalar `loss` at `x`, at the indices in `at`
/// (all indices when `at` is `None`), with step `eps`.
pub fn finite_diff(
    x: &[f32],
    eps: f32,
    at: Option<&[usize]>,
    mut loss: impl FnMut(&[f32]) -> f64,
) -> Vec<(usize, f32)> {
    let all: Vec<usize> = (0..x.len()).collect();
    let idx = at.unwrap_or(&all);
    let mut xp = x.to_vec();
    idx.iter()
        .map(|&i| {
            let orig = xp[i];
            xp[i] = orig + eps;
            let lp = loss(&xp);
            xp[i] = orig - eps;
            let lm = loss(&xp);
            xp[i] = orig;
            (i, ((lp - lm) / (2.0 * eps as f64)) as f32)
        })
        .collect()
}

/// Compares an analytic gradient with central differences of `loss` at every index of `x`.
pub fn grad_check(
    what: &str,
    x: &[f32],
    analytic: &[f32],
    eps: f32,
    tol: Tol,
    loss: impl FnMut(&[f32]) -> f64,
) -> Result<(), String> {
    let fd = finite_diff(x, eps, None, loss);
    let numeric: Vec<f32> = fd.into_iter().map(|(_, g)| g).collect();
    compare(what, analytic, &numeric, tol)
}

/// Weighted sum `Σ y·w` in f64: the scalar loss finite-difference checks differentiate.
pub fn dot64(y: &[f32], w: &[f32]) -> f64 {
    y.iter().zip(w).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Seeded uniform values in `[-scale, scale)`.
pub fn random_vec(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}
