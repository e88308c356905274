//! Fast path vs reference on every instruction set this CPU has, and finite differences.

use super::reference::dot64;
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Fast vs reference: `|fast - ref| <= ATOL + RTOL * |ref|`.
const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-3;
/// Central differences, f32 inputs, f64 loss: `|fd - grad| <= FD_ATOL + FD_RTOL * |grad|`.
const FD_EPS: f32 = 1e-2;
const FD_ATOL: f64 = 2e-3;
const FD_RTOL: f64 = 2e-2;

type Fwd = fn(&[f32], &[f32], &[f32], usize, usize, usize) -> (Vec<f32>, Vec<f32>);
type Bwd = fn(&[f32], &[f32], &[f32], &[f32], &[f32], &[f32], usize, usize, usize) -> Grads;

/// Every kernel build this CPU can run, so the AVX2 and baseline code is tested too.
fn isas() -> Vec<Isa> {
    [Isa::Baseline, Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|&i| i <= Isa::detect())
        .collect()
}

/// Uniform in `(-amp, amp)`; for `amp > 1` rounded to integers so that q·k is exact in
/// f32 and the comparison measures the kernel rather than the conditioning of f32 logits
/// of magnitude ~1e3, whose rounding alone moves p by ~1e-4 relative.
fn rand_vec(rng: &mut StdRng, len: usize, amp: f32) -> Vec<f32> {
    let x = (0..len).map(|_| rng.random_range(-amp..amp));
    x.map(|x| if amp > 1.0 { x.round() } else { x }).collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= ATOL + RTOL * w.abs();
        assert!(ok, "{what}[{i}]: fast {g} vs ref {w}");
    }
}

fn compare(bh: usize, n: usize, d: usize, amp: f32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = bh * n * d;
    let (q, k) = (rand_vec(&mut rng, len, amp), rand_vec(&mut rng, len, amp));
    let (v, dout) = (rand_vec(&mut rng, len, 1.0), rand_vec(&mut rng, len, 1.0));
    let (o_ref, lse_ref) = attention_forward_ref(&q, &k, &v, bh, n, d);
    let want = attention_backward_ref(&q, &k, &v, &o_ref, &lse_ref, &dout, bh, n, d);
    for isa in isas() {
        let tag = format!("bh={bh} n={n} d={d} amp={amp} {isa:?}");
        let (o, lse) = forward(isa, [&q, &k, &v], [bh, n, d]);
        assert_close(&format!("o {tag}"), &o, &o_ref);
        assert_close(&format!("lse {tag}"), &lse, &lse_ref);
        let got = backward(isa, [&q, &k, &v, &o_ref, &lse_ref, &dout], [bh, n, d]);
        assert_close(&format!("dq {tag}"), &got.0, &want.0);
        assert_close(&format!("dk {tag}"), &got.1, &want.1);
        assert_close(&format!("dv {tag}"), &got.2, &want.2);
    }
    // The public entry points take the gemm path at these lengths.
    let tag = format!("bh={bh} n={n} d={d} amp={amp} public");
    let (o, lse) = attention_forward(&q, &k, &v, bh, n, d);
    assert_close(&format!("o {tag}"), &o, &o_ref);
    assert_close(&format!("lse {tag}"), &lse, &lse_ref);
    let got = attention_backward(&q, &k, &v, &o_ref, &lse_ref, &dout, bh, n, d);
    assert_close(&format!("dq {tag}"), &got.0, &want.0);
    assert_close(&format!("dk {tag}"), &got.1, &want.1);
    assert_close(&format!("dv {tag}"), &got.2, &want.2);
}

#[test]
fn fast_matches_reference() {
    for (seed, bh) in [1, 3].into_iter().enumerate() {
        for n in [1, 2, 7, 63, 64, 65, 130, 300] {
            for d in [1, 8, 64, 65] {
                compare(bh, n, d, 1.0, (seed * 1000 + n * 100 + d) as u64);
            }
        }
    }
}

#[test]
fn fast_matches_reference_large_logits() {
    let shapes = [
        (1, 7, 1),
        (3, 65, 8),
        (1, 130, 64),
        (3, 300, 65),
        (1, 600, 64),
    ];
    for (seed, (bh, n, d)) in shapes.into_iter().enumerate() {
        compare(bh, n, d, 30.0, seed as u64);
    }
}

#[test]
fn empty_shapes() {
    assert!(attention_forward(&[], &[], &[], 0, 5, 4).0.is_empty());
    let (dq, dk, dv) = attention_backward(&[], &[], &[], &[], &[], &[], 2, 0, 4);
    assert!(dq.is_empty() && dk.is_empty() && dv.is_empty());
}

fn gradient_check(fast: bool) {
    let (bh, n, d) = (2, 5, 3);
    let mut rng = StdRng::seed_from_u64(7);
    let len = bh * n * d;
    let x0: [Vec<f32>; 3] = std::array::from_fn(|_| rand_vec(&mut rng, len, 1.0));
    let w = rand_vec(&mut rng, len, 1.0);
    let (fwd, bwd) = if fast {
        (attention_forward as Fwd, attention_backward as Bwd)
    } else {
        (attention_forward_ref as Fwd, attention_backward_ref as Bwd)
    };
    let loss = |x: &[Vec<f32>; 3]| -> f64 { dot64(&fwd(&x[0], &x[1], &x[2], bh, n, d).0, &w) };
    let (o, lse) = fwd(&x0[0], &x0[1], &x0[2], bh, n, d);
    let (dq, dk, dv) = bwd(&x0[0], &x0[1], &x0[2], &o, &lse, &w, bh, n, d);
    for (which, grad) in [dq, dk, dv].iter().enumerate() {
        for (i, &g) in grad.iter().enumerate() {
            let mut x = x0.clone();
            x[which][i] = x0[which][i] + FD_EPS;
            let plus = loss(&x);
            x[which][i] = x0[which][i] - FD_EPS;
            let fd = (plus - loss(&x)) / (2.0 * f64::from(FD_EPS));
            let g = f64::from(g);
            let ok = (fd - g).abs() <= FD_ATOL + FD_RTOL * g.abs();
            assert!(ok, "fast={fast} input {which} [{i}]: fd {fd} vs grad {g}");
        }
    }
}

#[test]
fn reference_gradients_match_finite_differences() {
    gradient_check(false);
}

#[test]
fn fast_gradients_match_finite_differences() {
    gradient_check(true);
}

fn check_exp2<const F: bool>() {
    let mut worst = 0.0_f64;
    for i in 0..=1_000_000 {
        let x = -126.0 + 127.0 * i as f32 / 1e6;
        let want = f64::from(x).exp2();
        worst = worst.max((f64::from(exp2_fast::<F>(x)) - want).abs() / want);
    }
    assert!(worst < 1e-6, "max relative error {worst}");
    for x in [-127.0, -127.5, -1e30, f32::NEG_INFINITY] {
        assert_eq!(exp2_fast::<F>(x).to_bits(), 0, "exp2({x})");
    }
}

#[test]
fn exp2_fast_accuracy() {
    check_exp2::<false>();
    check_exp2::<true>();
}
