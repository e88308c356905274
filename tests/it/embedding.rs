//! Embedding lookup: wgpu vs CPU reference, deterministic scatter-add backward, id validation,
//! and the CPU backward vs finite differences.

use crate::common;

use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::embedding::{cpu, gpu, Segments};

/// The forward copies values and the backward adds the same f32 terms in the same order on both
/// sides (ascending position within each id), so results agree bit for bit.
const EXACT: Tol = Tol::new(0.0, 0.0);
/// Central differences of a linear loss: only f32 rounding of the perturbed weights remains.
const FD: Tol = Tol::new(1e-3, 1e-2);

fn ids_from(seed: u64, t: usize, vocab: usize) -> Vec<u32> {
    random_vec(seed, t, 1.0)
        .into_iter()
        .map(|v| (((v + 1.0) * 0.5 * vocab as f32) as usize).min(vocab - 1) as u32)
        .collect()
}

fn check(ctx: &dsrsq::device::GpuContext, ids: &[u32], vocab: usize, dim: usize, seed: u64) {
    let w = random_vec(seed, vocab * dim, 1.0);
    let dy = random_vec(seed + 1, ids.len() * dim, 1.0);
    let what = |s: &str| format!("{s} T={} vocab={vocab} dim={dim}", ids.len());
    let gw = ctx.upload(&w, &[vocab, dim]).unwrap();
    let out = gpu::embedding_forward(ctx, &gw, ids).unwrap();
    assert_eq!(out.shape, vec![ids.len(), dim]);
    let want = cpu::embedding_forward(&w, ids, vocab, dim).unwrap();
    common::assert_ok(compare(
        &what("forward"),
        &ctx.download(&out).unwrap(),
        &want,
        EXACT,
    ));
    let gdy = ctx.upload(&dy, &[ids.len(), dim]).unwrap();
    let dw = gpu::embedding_backward(ctx, &gdy, ids, vocab).unwrap();
    assert_eq!(dw.shape, vec![vocab, dim]);
    let want = cpu::embedding_backward(&dy, ids, vocab, dim).unwrap();
    common::assert_ok(compare(
        &what("backward"),
        &ctx.download(&dw).unwrap(),
        &want,
        EXACT,
    ));
}

#[test]
fn gpu_matches_cpu_with_repeated_ids_and_odd_dims() {
    let Some(ctx) = common::gpu("gpu_matches_cpu_with_repeated_ids_and_odd_dims") else {
        return;
    };
    // dims around the workgroup size (256) and not multiples of it; few ids, so many repeats.
    for (i, &(t, vocab, dim)) in [
        (1, 1, 1),
        (1, 5, 3),
        (9, 4, 7),
        (40, 6, 255),
        (33, 10, 257),
        (300, 17, 5),
    ]
    .iter()
    .enumerate()
    {
        check(
            ctx,
            &ids_from(i as u64, t, vocab),
            vocab,
            dim,
            100 + i as u64,
        );
    }
}

#[test]
fn bert_sized_vocab_with_few_ids() {
    let Some(ctx) = common::gpu("bert_sized_vocab_with_few_ids") else {
        return;
    };
    let (vocab, dim) = (30_522, 12);
    let ids = [101u32, 30_521, 0, 7_592, 101, 2_088, 30_521, 101];
    check(ctx, &ids, vocab, dim, 9);
    // Rows of ids that never occur stay exactly zero.
    let dy = random_vec(10, ids.len() * dim, 1.0);
    let gdy = ctx.upload(&dy, &[ids.len(), dim]).unwrap();
    let dw = ctx
        .download(&gpu::embedding_backward(ctx, &gdy, &ids, vocab).unwrap())
        .unwrap();
    for (v, row) in dw.chunks(dim).enumerate() {
        if !ids.contains(&(v as u32)) {
            assert!(row.iter().all(|&a| a == 0.0), "row {v} is not zero");
        }
    }
    // Id 101 occurs at positions 0, 4, 7: its row is their sum, added in that order.
    for c in 0..dim {
        let want = dy[c] + dy[4 * dim + c] + dy[7 * dim + c];
        assert_eq!(dw[101 * dim + c], want, "column {c}");
    }
}

#[test]
fn backward_is_deterministic_across_runs() {
    let Some(ctx) = common::gpu("backward_is_deterministic_across_runs") else {
        return;
    };
    let (t, vocab, dim) = (500, 3, 33);
    let ids = ids_from(3, t, vocab);
    let dy = random_vec(4, t * dim, 1e3);
    let gdy = ctx.upload(&dy, &[t, dim]).unwrap();
    let runs: Vec<Vec<u32>> = (0..3)
        .map(|_| {
            let dw = gpu::embedding_backward(ctx, &gdy, &ids, vocab).unwrap();
            ctx.download_u32(&dw).unwrap()
        })
        .collect();
    assert!(
        runs.windows(2).all(|w| w[0] == w[1]),
        "bits differ between runs"
    );
}

#[test]
fn empty_ids_give_empty_output_and_zero_gradient() {
    assert!(cpu::embedding_forward(&[1.0; 6], &[], 2, 3)
        .unwrap()
        .is_empty());
    assert_eq!(
        cpu::embedding_backward(&[], &[], 2, 3).unwrap(),
        vec![0.0; 6]
    );
    let Some(ctx) = common::gpu("empty_ids_give_empty_output_and_zero_gradient") else {
        return;
    };
    let gw = ctx.upload(&[1.0; 6], &[2, 3]).unwrap();
    let out = gpu::embedding_forward(ctx, &gw, &[]).unwrap();
    assert_eq!(out.shape, vec![0, 3]);
    let dy = ctx.upload(&[], &[0, 3]).unwrap();
    let dw = gpu::embedding_backward(ctx, &dy, &[], 2).unwrap();
    assert_eq!(ctx.download(&dw).unwrap(), vec![0.0; 6]);
}

#[test]
fn segments_group_positions_by_id_in_ascending_order() {
    let s = Segments::new(&[3, 1, 3, 0, 1, 3]);
    assert_eq!(s.ids, vec![0, 1, 3]);
    assert_eq!(s.offsets, vec![0, 1, 3, 6]);
    assert_eq!(s.positions(2), &[0, 2, 5]);
    assert!(Segments::new(&[]).is_empty());
}

#[test]
fn backward_matches_finite_differences() {
    let (vocab, dim) = (6, 4);
    let ids = [2u32, 5, 2, 0, 2];
    let w = random_vec(1, vocab * dim, 1.0);
    let g = random_vec(2, ids.len() * dim, 1.0);
    let analytic = cpu::embedding_backward(&g, &ids, vocab, dim).unwrap();
    common::assert_ok(grad_check(
        "embedding dweight",
        &w,
        &analytic,
        1e-2,
        FD,
        |wp| dot64(&cpu::embedding_forward(wp, &ids, vocab, dim).unwrap(), &g),
    ));
}

#[test]
fn out_of_range_id_is_an_error_naming_position_and_id() {
    let (vocab, dim) = (10, 3);
    let ids = [1u32, 9, 10, 4];
    let w = vec![0.5; vocab * dim];
    let dy = vec![1.0; ids.len() * dim];
    let named = |e: String| {
        assert!(e.contains("position 2") && e.contains("id 10"), "{e}");
    };
    named(
        cpu::embedding_forward(&w, &ids, vocab, dim)
            .unwrap_err()
            .to_string(),
    );
    named(
        cpu::embedding_backward(&dy, &ids, vocab, dim)
            .unwrap_err()
            .to_string(),
    );
    let Some(ctx) = common::gpu("out_of_range_id_is_an_error_naming_position_and_id") else {
        return;
    };
    let gw = ctx.upload(&w, &[vocab, dim]).unwrap();
    let gdy = ctx.upload(&dy, &[ids.len(), dim]).unwrap();
    named(
        gpu::embedding_forward(ctx, &gw, &ids)
            .unwrap_err()
            .to_string(),
    );
    named(
        gpu::embedding_backward(ctx, &gdy, &ids, vocab)
            .unwrap_err()
            .to_string(),
    );
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let err = cpu::embedding_forward(&[1.0; 5], &[0], 2, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedding_forward"), "{err}");
    let Some(ctx) = common::gpu("shape_mismatch_is_an_error_not_a_panic") else {
        return;
    };
    let flat = ctx.upload(&[1.0; 6], &[6]).unwrap();
    let err = gpu::embedding_forward(ctx, &flat, &[0])
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedding_forward"), "{err}");
    let dy = ctx.upload(&[1.0; 6], &[2, 3]).unwrap();
    let err = gpu::embedding_backward(ctx, &dy, &[0, 1, 1], 4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedding_backward"), "{err}");
}
