//! Fused softmax + cross-entropy: wgpu vs CPU reference, and the CPU gradient vs finite
//! differences of the mean loss over valid rows.

use crate::common;

use dsrsq::kernels::check::{compare, grad_check, random_vec, Tol};
use dsrsq::kernels::loss::{cpu, gpu};

/// Losses are log Σexp + (max − x[t]) in f32; driver exp/log differ by a few ulps and the
/// reduction order differs from the CPU's sequential sum (≈ √vocab ulps of the sum).
const LOSS_TOL: Tol = Tol::new(1e-5, 1e-5);
/// Gradients are probabilities scaled by 1/n_valid: tiny absolute values whose relative
/// error follows the sum's (≈ 1e-6 for a 30k vocabulary) plus exp's ulps.
const GRAD_TOL: Tol = Tol::new(1e-7, 1e-4);
/// Central differences in f32 with eps 1e-2 on a smooth function.
const FD: Tol = Tol::new(1e-3, 1e-2);

/// Targets in `0..vocab` with every third row (and row 1) ignored.
fn targets(rows: usize, vocab: usize, seed: u64) -> Vec<i32> {
    let r = random_vec(seed, rows, 1.0);
    (0..rows)
        .map(|i| {
            if i % 3 == 1 {
                -100
            } else {
                (((r[i] + 1.0) * 0.5 * vocab as f32) as usize).min(vocab - 1) as i32
            }
        })
        .collect()
}

fn check_gpu(ctx: &dsrsq::device::GpuContext, logits: &[f32], t: &[i32], vocab: usize, tag: &str) {
    let rows = t.len();
    let gl = ctx.upload(logits, &[rows, vocab]).unwrap();
    let (gloss, gdl) = gpu::cross_entropy(ctx, &gl, t).unwrap();
    let (want_loss, want_dl) = cpu::cross_entropy(logits, t, rows, vocab).unwrap();
    let loss = ctx.download(&gloss).unwrap();
    let dl = ctx.download(&gdl).unwrap();
    common::assert_ok(compare(&format!("loss {tag}"), &loss, &want_loss, LOSS_TOL));
    common::assert_ok(compare(&format!("dlogits {tag}"), &dl, &want_dl, GRAD_TOL));
}

#[test]
fn gpu_matches_cpu_across_vocab_sizes() {
    let Some(ctx) = common::gpu("gpu_matches_cpu_across_vocab_sizes") else {
        return;
    };
    for (i, &(rows, vocab)) in [(4, 1), (5, 3), (7, 255), (6, 257), (3, 30_522)]
        .iter()
        .enumerate()
    {
        let logits = random_vec(10 + i as u64, rows * vocab, 5.0);
        let t = targets(rows, vocab, 20 + i as u64);
        check_gpu(
            ctx,
            &logits,
            &t,
            vocab,
            &format!("rows={rows} vocab={vocab}"),
        );
    }
}

#[test]
fn large_logits_stay_finite_and_match() {
    let Some(ctx) = common::gpu("large_logits_stay_finite_and_match") else {
        return;
    };
    let (rows, vocab) = (4, 300);
    let mut logits = random_vec(3, rows * vocab, 1e4);
    logits[7] = 1e4;
    logits[vocab + 9] = -1e4;
    let t = [7, 9, 0, 299];
    let (loss, dl) = cpu::cross_entropy(&logits, &t, rows, vocab).unwrap();
    assert!(loss.iter().chain(&dl).all(|x| x.is_finite()));
    // Row 0's target is its maximum by a wide margin: loss ≈ 0; row 1's is its minimum.
    assert!(loss[0].abs() < 1e-3, "{}", loss[0]);
    assert!(loss[1] > 1e4, "{}", loss[1]);
    check_gpu(ctx, &logits, &t, vocab, "large logits");
}

#[test]
fn all_ignored_rows_give_zero_loss_and_gradient() {
    let t = [-1, -100, -7];
    let logits = random_vec(4, 3 * 11, 2.0);
    let (loss, dl) = cpu::cross_entropy(&logits, &t, 3, 11).unwrap();
    assert!(loss.iter().chain(&dl).all(|&x| x == 0.0));
    let Some(ctx) = common::gpu("all_ignored_rows_give_zero_loss_and_gradient") else {
        return;
    };
    let gl = ctx.upload(&logits, &[3, 11]).unwrap();
    let (gloss, gdl) = gpu::cross_entropy(ctx, &gl, &t).unwrap();
    let got = [ctx.download(&gloss).unwrap(), ctx.download(&gdl).unwrap()].concat();
    assert!(got.iter().all(|&x| x == 0.0), "{got:?}");
}

#[test]
fn dlogits_match_finite_differences_of_mean_loss() {
    let (rows, vocab) = (5, 7);
    let logits = random_vec(8, rows * vocab, 3.0);
    let t = [2, -1, 6, 0, -5];
    let (_, dl) = cpu::cross_entropy(&logits, &t, rows, vocab).unwrap();
    let n_valid = t.iter().filter(|&&x| x >= 0).count() as f64;
    common::assert_ok(grad_check("dlogits", &logits, &dl, 1e-2, FD, |x| {
        let (loss, _) = cpu::cross_entropy(x, &t, rows, vocab).unwrap();
        loss.iter().map(|&l| l as f64).sum::<f64>() / n_valid
    }));
}

#[test]
fn target_out_of_vocab_names_the_row() {
    let logits = random_vec(9, 3 * 4, 1.0);
    let err = cpu::cross_entropy(&logits, &[0, 4, 1], 3, 4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1"), "{err}");
    let Some(ctx) = common::gpu("target_out_of_vocab_names_the_row") else {
        return;
    };
    let gl = ctx.upload(&logits, &[3, 4]).unwrap();
    let err = gpu::cross_entropy(ctx, &gl, &[0, 1, 9])
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 2"), "{err}");
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    assert!(cpu::cross_entropy(&[0.0; 6], &[0, 1], 3, 2).is_err());
    let Some(ctx) = common::gpu("shape_mismatch_is_an_error_not_a_panic") else {
        return;
    };
    let gl = ctx.upload(&[0.0; 6], &[3, 2]).unwrap();
    let err = gpu::cross_entropy(ctx, &gl, &[0, 1])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cross_entropy"), "{err}");
    let flat = ctx.upload(&[0.0; 6], &[6]).unwrap();
    assert!(gpu::cross_entropy(ctx, &flat, &[0; 6]).is_err());
}

#[test]
fn more_than_65535_rows_fold_into_a_2d_grid() {
    let Some(ctx) = common::gpu("more_than_65535_rows_fold_into_a_2d_grid") else {
        return;
    };
    let (rows, vocab) = (70_001, 2);
    let logits = random_vec(11, rows * vocab, 4.0);
    let t = targets(rows, vocab, 12);
    check_gpu(ctx, &logits, &t, vocab, "70001 rows");
}
