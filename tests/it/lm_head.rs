//! The fused LM head + cross-entropy (`Backend::lm_head_loss`): the CPU's chunked version
//! against the composed ops, across chunk boundaries and with ignored rows, and wgpu's.

use crate::common;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::kernels::check::{compare, random_vec, Tol};
use dsrsq::kernels::matmul::MatmulDims;
use dsrsq::Tensor;

/// Both sides do the same f32 arithmetic per row; only gemm's blocking differs between a
/// chunk and the whole matrix, and dW sums chunk partials: a few ulps of the largest terms.
const TOL: Tol = Tol::new(1e-6, 1e-4);

fn composed<B: Backend>(be: &B, h: &B::T, w: &B::T, targets: &[i32], scale: f32) -> [Tensor; 3] {
    let (rows, dm) = (be.shape(h)[0], be.shape(h)[1]);
    let d = MatmulDims {
        batch: 1,
        m: rows,
        k: dm,
        n: be.shape(w)[0],
        trans_a: false,
        trans_b: true,
        broadcast_b: false,
    };
    let logits = be.matmul(h, w, &d).unwrap();
    let (l, dl) = be.cross_entropy(&logits, targets).unwrap();
    let dl = be.scale(&dl, scale).unwrap();
    let (dh, dw) = be.matmul_backward(h, w, &dl, &d).unwrap();
    [l, dh, dw].map(|t| be.download(&t).unwrap())
}

fn case(rows: usize, dm: usize, vocab: usize, seed: u64) -> (Tensor, Tensor, Vec<i32>) {
    let h = Tensor::new(random_vec(seed, rows * dm, 2.0), &[rows, dm]).unwrap();
    let w = Tensor::new(random_vec(seed + 1, vocab * dm, 0.5), &[vocab, dm]).unwrap();
    // Every 7th row ignored, targets spread over the vocabulary.
    let targets = (0..rows)
        .map(|r| {
            if r % 7 == 3 {
                -1
            } else {
                ((r * 7919) % vocab) as i32
            }
        })
        .collect();
    (h, w, targets)
}

#[test]
fn cpu_fused_head_matches_the_composed_ops_across_chunks() {
    // vocab 8192 → 512-row chunks: 1100 rows are three chunks, the last partial; 1 row too.
    for (rows, dm, vocab) in [(1100, 16, 8192), (1, 8, 8192), (37, 5, 97)] {
        let (h, w, targets) = case(rows, dm, vocab, rows as u64);
        let be = CpuBackend;
        let want = composed(&be, &h, &w, &targets, 0.7);
        let (l, dh, dw) = be.lm_head_loss(&h, &w, &targets, 0.7).unwrap();
        for (name, got, want) in [
            ("losses", l, &want[0]),
            ("dh", dh, &want[1]),
            ("dw", dw, &want[2]),
        ] {
            assert_eq!(got.shape, want.shape, "{name} shape");
            common::assert_ok(compare(
                &format!("{name} rows={rows}"),
                &got.data,
                &want.data,
                TOL,
            ));
        }
    }
}

#[test]
fn wgpu_head_matches_cpu() {
    if common::gpu("wgpu_head_matches_cpu").is_none() {
        return;
    }
    let gpu = WgpuBackend::new(Arc::new(
        dsrsq::device::GpuContext::from_env().expect("adapter found above"),
    ));
    let (h, w, targets) = case(45, 12, 300, 5);
    let (lc, dhc, dwc) = CpuBackend.lm_head_loss(&h, &w, &targets, 1.0).unwrap();
    let (hg, wg) = (gpu.upload(&h).unwrap(), gpu.upload(&w).unwrap());
    let (lg, dhg, dwg) = gpu.lm_head_loss(&hg, &wg, &targets, 1.0).unwrap();
    let down = |t| gpu.download(t).unwrap().data;
    // GPU vs CPU: different summation orders in the 12-term dot products and the softmax sums.
    let tol = Tol::new(1e-5, 1e-4);
    common::assert_ok(compare("losses", &down(&lg), &lc.data, tol));
    common::assert_ok(compare("dh", &down(&dhg), &dhc.data, tol));
    common::assert_ok(compare("dw", &down(&dwg), &dwc.data, tol));
}

#[test]
fn mismatched_shapes_are_errors() {
    let (h, w, targets) = case(4, 3, 10, 1);
    assert!(CpuBackend.lm_head_loss(&h, &w, &targets[..3], 1.0).is_err());
    let bad_w = Tensor::new(vec![0.0; 40], &[10, 4]).unwrap();
    assert!(CpuBackend.lm_head_loss(&h, &bad_w, &targets, 1.0).is_err());
    let mut t = targets.clone();
    t[0] = 10;
    let err = CpuBackend
        .lm_head_loss(&h, &w, &t, 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 0"), "{err}");
}
