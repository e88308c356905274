//! DSR selection: invariants, ties, the budget ≥ context identity, and the GPU's radix select
//! against the CPU's sort, exactly.

use super::*;

#[test]
fn budget_at_least_context_keeps_every_token_exactly() {
    let c = case(3, 45, 5, 6, cfg(4, 16, 45));
    let (_, sel) = cpu::forward(&c.e, &c.w_r, &c.w_q, &c.d, &c.cfg).unwrap();
    let all: Vec<u32> = (0..45).chain(c.d.q0 as u32..c.d.q1 as u32).collect();
    assert_eq!(sel.selection.selected, all);
    // Gathering the selected rows gives exactly the unselected model input.
    let dm = c.d.dm;
    let gathered: Vec<f32> = sel
        .selection
        .selected
        .iter()
        .flat_map(|&t| c.e[t as usize * dm..(t as usize + 1) * dm].to_vec())
        .collect();
    let plain = [&c.e[..45 * dm], &c.e[c.d.q0 * dm..c.d.q1 * dm]].concat();
    assert_eq!(gathered, plain);
    if let Some(ctx) = common::gpu("budget_at_least_context_keeps_every_token_exactly") {
        let (e, wr, wq) = up(ctx, &c);
        let (_, g) = gpu::forward(ctx, &e, &wr, &wq, &c.d, &c.cfg).unwrap();
        assert_eq!(g.selection.selected, all);
    }
}

#[test]
fn selection_keeps_sink_question_order_and_best_blocks() {
    for &(n_ctx, block, base) in &[(100, 8, 20), (257, 16, 40), (64, 1, 10), (9, 4, 0)] {
        let s = random_vec(n_ctx as u64, n_ctx, 3.0);
        let k = cfg(8, block, base);
        let r = cpu::select(&s, n_ctx + 2, n_ctx + 5, &k).unwrap();
        check_invariants(&r.selection, n_ctx, n_ctx + 2, n_ctx + 5, block);
        // The non-sink blocks kept are the best by a full sort.
        let mut order: Vec<usize> = (1..r.block_scores.len()).collect();
        order.sort_by(|&a, &b| r.block_scores[b].total_cmp(&r.block_scores[a]));
        let mut want: Vec<usize> = order[..r.selection.keep_blocks - 1].to_vec();
        want.push(0);
        want.sort();
        let mut got: Vec<usize> = r.selection.selected[..r.selection.kept_ctx]
            .iter()
            .map(|&t| t as usize / block)
            .collect();
        got.dedup();
        assert_eq!(got, want, "n_ctx {n_ctx} block {block}");
    }
}

#[test]
fn equal_scores_keep_the_lowest_blocks() {
    let s = vec![0.25f32; 100];
    let r = cpu::select(&s, 100, 101, &cfg(8, 8, 20)).unwrap().selection;
    assert_eq!(r.complexity, 1.0);
    assert_eq!(r.budget, 30);
    let want: Vec<u32> = (0..32).chain([100]).collect();
    assert_eq!(r.selected, want);
}

#[test]
fn gpu_selection_matches_cpu_exactly_on_the_same_scores() {
    let Some(ctx) = common::gpu("gpu_selection_matches_cpu_exactly_on_the_same_scores") else {
        return;
    };
    // (n_ctx, block, base budget, score scale, quantized): n not a multiple of the block or of
    // the workgroup, n < block, token level, n_ctx = 1, a budget of 0, long token-level input
    // (multi-level prefix sums), large scores, and scores on a coarse grid so that many blocks
    // tie at the threshold.
    let cases: &[(usize, usize, usize, f32, bool)] = &[
        (1000, 16, 100, 3.0, false),
        (37, 16, 8, 3.0, false),
        (5, 16, 512, 3.0, false),
        (300, 1, 40, 3.0, false),
        (1, 16, 512, 3.0, false),
        (1, 1, 0, 3.0, false),
        (250, 4, 0, 3.0, false),
        (70_001, 1, 512, 3.0, false),
        (4099, 16, 512, 1e4, false),
        (2000, 4, 300, 2.0, true),
        (5000, 1, 700, 3.0, true),
    ];
    for (i, &(n_ctx, block, base, scale, quantized)) in cases.iter().enumerate() {
        let mut s = random_vec(40 + i as u64, n_ctx, scale);
        if quantized {
            s.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
        }
        if n_ctx > 10 {
            // Exact ties between blocks and a −0 against +0.
            s[3] = 2.0 * scale;
            s[n_ctx - 1] = 2.0 * scale;
            s[n_ctx / 2] = -0.0;
        }
        let k = cfg(8, block, base);
        let (q0, q1) = (n_ctx + 3, n_ctx + 7);
        let want = cpu::select(&s, q0, q1, &k).unwrap();
        let gs = ctx.upload(&s, &[n_ctx]).unwrap();
        let got = gpu::select(ctx, &gs, q0, q1, &k).unwrap();
        let what = format!("n_ctx {n_ctx} block {block} base {base} scale {scale} q {quantized}");
        assert_same_selection(&what, &got.selection, &want.selection);
        check_invariants(&got.selection, n_ctx, q0, q1, block);
        let bs = ctx.download(&got.block_scores).unwrap();
        assert_eq!(bs, want.block_scores, "{what}: block scores");
    }
}

#[test]
fn gpu_selection_with_all_scores_equal_keeps_the_lowest_blocks() {
    let Some(ctx) = common::gpu("gpu_selection_with_all_scores_equal_keeps_the_lowest_blocks")
    else {
        return;
    };
    for &(n_ctx, block) in &[(100, 8), (1000, 1), (33, 16)] {
        let s = vec![-1.5f32; n_ctx];
        let k = cfg(8, block, 20);
        let want = cpu::select(&s, n_ctx, n_ctx + 2, &k).unwrap();
        let gs = ctx.upload(&s, &[n_ctx]).unwrap();
        let got = gpu::select(ctx, &gs, n_ctx, n_ctx + 2, &k).unwrap();
        assert_same_selection("equal scores", &got.selection, &want.selection);
        let kept = want.selection.keep_blocks * block;
        assert_eq!(
            &got.selection.selected[..got.selection.kept_ctx],
            (0..kept.min(n_ctx) as u32).collect::<Vec<_>>().as_slice()
        );
    }
}
