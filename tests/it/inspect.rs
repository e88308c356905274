//! The inspection module against the library's references: SQA weights, recall and the
//! top_k = C exactness; DSR scores and selection; the RCKV stream against the model's
//! compression loss and the ring trim; PCA on data of known structure; a training session
//! against `train::train`.

use dsrsq::backend::CpuBackend;
use dsrsq::data::{DataSpec, Example, LoadOptions, Split, Tok};
use dsrsq::eval::reproduce;
use dsrsq::inspect::{attention, cache::CacheStream, dsr, pca::Pca};
use dsrsq::kernels::dsr as dsr_kernels;
use dsrsq::kernels::sqa::{self, SqaShape};
use dsrsq::model::{Config, Model, SeqPlan};
use dsrsq::train::{self, metrics, TrainOptions, TrainSession};

fn micro() -> Config {
    reproduce::preset("micro").expect("micro preset").config
}

fn example(spec: &str, seed: u64, i: u64) -> Example {
    let tok = Tok::bundled().expect("tokenizer");
    let ds = DataSpec::parse(spec)
        .expect("spec")
        .open(&tok, seed, Split::Eval, &LoadOptions::default())
        .expect("open");
    ds.example(i).expect("example")
}

fn close(a: f64, b: f64, atol: f64, rtol: f64) -> bool {
    (a - b).abs() <= atol + rtol * b.abs()
}

#[test]
fn attention_weights_and_recall_match_the_references() {
    let be = CpuBackend;
    let cfg = micro();
    let model = Model::new(&be, &cfg, 7).expect("model");
    let ex = example("passkey:ctx=256", 3, 0);
    let a = attention::inspect(&be, &model, &ex, 0, 1).expect("inspect");
    let (n, d) = (a.n, a.d);
    let s = SqaShape { bh: 1, n, d };
    let sq = cfg.sqa_kernel();
    assert_eq!(a.q.len(), n * d);
    assert_eq!(a.keys_2d.len(), n);
    assert_eq!(a.centroids_2d.len(), sq.clusters);
    // Dense weights: the causal softmax of q·k/√d, recomputed here in f64.
    for i in [0, n / 2, n - 1] {
        let sc: Vec<f64> = (0..=i)
            .map(|j| {
                let dot: f64 = (0..d)
                    .map(|c| f64::from(a.q[i * d + c]) * f64::from(a.k[j * d + c]))
                    .sum();
                dot / (d as f64).sqrt()
            })
            .collect();
        let m = sc.iter().fold(f64::MIN, |x, &y| x.max(y));
        let z: f64 = sc.iter().map(|x| (x - m).exp()).sum();
        for (j, &x) in sc.iter().enumerate() {
            let want = (x - m).exp() / z;
            assert!(
                close(f64::from(a.dense[i * n + j]), want, 1e-6, 1e-4),
                "dense {i},{j}"
            );
        }
        assert!(a.dense[i * n + i + 1..(i + 1) * n]
            .iter()
            .all(|&p| p == 0.0));
    }
    // Sparse weights: exp(score − lse) with the reference forward's lse, on the reference's
    // selection rule.
    let (_, lse) =
        sqa::cpu::sqa_forward_ref((&a.q, &a.k, &a.k), &a.clustering, &sq, s).expect("ref");
    let dot = |i: usize, j: usize| -> f64 {
        (0..d)
            .map(|c| f64::from(a.q[i * d + c]) * f64::from(a.k[j * d + c]))
            .sum::<f64>()
            / (d as f64).sqrt()
    };
    for (i, &lse_i) in lse.iter().enumerate() {
        let mut sum = 0.0_f64;
        for j in 0..n {
            let sel = sqa::cpu::selected(&a.clustering, &sq, s, 0, i, j);
            assert_eq!(a.selected[i * n + j], sel, "selection {i},{j}");
            if sel {
                let want = (dot(i, j) - f64::from(lse_i)).exp();
                let got = f64::from(a.sparse[i * n + j]);
                assert!(
                    close(got, want, 1e-6, 1e-4),
                    "sparse {i},{j}: {got} vs {want}"
                );
                sum += got;
            } else {
                assert_eq!(a.sparse[i * n + j], 0.0);
            }
        }
        assert!(close(sum, 1.0, 1e-4, 0.0), "row {i} sums to {sum}");
    }
    let rref = sqa::cpu::recall_ref((&a.q, &a.k), &a.clustering, &sq, s).expect("recall_ref")[0];
    assert!(
        close(f64::from(a.recall), f64::from(rref), 1e-4, 0.0),
        "{} vs {rref}",
        a.recall
    );
    let mean: f64 = a
        .recall_per_query
        .iter()
        .map(|&r| f64::from(r))
        .sum::<f64>()
        / n as f64;
    assert!(close(mean, f64::from(rref), 1e-4, 0.0));
    // The clustering is the reference clustering of these keys.
    let cref = sqa::cpu::cluster_ref(&a.q, &a.k, &sq, s).expect("cluster_ref");
    let same = cref
        .assign
        .iter()
        .zip(&a.clustering.assign)
        .filter(|(x, y)| x == y)
        .count();
    assert!(
        same * 100 >= 99 * n,
        "assignments differ on {} of {n} keys",
        n - same
    );
    // Rows are the tokens the model keeps, at their original positions.
    let dv = dsr::inspect(&be, &model, &ex).expect("dsr");
    assert_eq!(&a.positions[..a.ctx_rows], &dv.read[..]);
}

#[test]
fn attention_with_every_cluster_routed_is_dense() {
    let be = CpuBackend;
    let mut cfg = micro();
    cfg.sqa.top_k = cfg.sqa.clusters;
    let model = Model::new(&be, &cfg, 11).expect("model");
    let ex = example("passkey:ctx=256", 5, 1);
    let a = attention::inspect(&be, &model, &ex, 0, 0).expect("inspect");
    assert!(
        close(f64::from(a.recall), 1.0, 1e-5, 0.0),
        "recall {}",
        a.recall
    );
    for (x, y) in a.dense.iter().zip(&a.sparse) {
        assert!(close(f64::from(*x), f64::from(*y), 1e-6, 1e-4));
    }
    assert!(
        attention::inspect(&be, &model, &ex, 5, 0).is_err(),
        "layer 5 of 1"
    );
    assert!(
        attention::inspect(&be, &model, &ex, 0, 9).is_err(),
        "head 9 of 2"
    );
}

#[test]
fn dsr_scores_and_selection_match_the_references() {
    let be = CpuBackend;
    let cfg = micro();
    let model = Model::new(&be, &cfg, 3).expect("model");
    let ex = example("passkey:ctx=256", 9, 2);
    let v = dsr::inspect(&be, &model, &ex).expect("inspect");
    let idx = &model.layout.idx;
    let dm = cfg.model.d_model;
    let wte = &model.params[idx.wte].data;
    let e: Vec<f32> = ex
        .ids
        .iter()
        .flat_map(|&t| wte[t as usize * dm..][..dm].to_vec())
        .collect();
    let dims = dsr_kernels::DsrDims {
        n: ex.ids.len(),
        dm,
        n_ctx: ex.n_ctx,
        q0: ex.q0,
        q1: ex.q1,
    };
    let want = dsr_kernels::reference::scores_ref(
        &e,
        &model.params[idx.dsr_wr].data,
        &model.params[idx.dsr_wq].data,
        &dims,
        cfg.dsr.reduced_dim,
    );
    assert_eq!(v.scores.len(), want.len());
    for (a, b) in v.scores.iter().zip(&want) {
        assert!(
            close(f64::from(*a), f64::from(*b), 1e-6, 1e-4),
            "{a} vs {b}"
        );
    }
    let sel = dsr_kernels::cpu::select(&v.scores, ex.q0, ex.q1, &cfg.dsr_kernel()).expect("select");
    assert_eq!(v.kept, sel.selection.selected[..sel.selection.kept_ctx]);
    assert_eq!(v.block_scores, sel.block_scores);
    let (budget, blocks) = dsr_kernels::budget(v.complexity, ex.n_ctx, &cfg.dsr_kernel());
    assert_eq!((v.budget, v.keep_blocks), (budget, blocks));
    assert_eq!(v.kept_blocks.iter().filter(|&&k| k).count(), blocks);
    assert!(v.kept_blocks[0], "the sink block is always kept");
    let plan =
        SeqPlan::from_context(&ex, v.kept.clone()).ring_trim(cfg.rckv.buffer_size, cfg.rckv.sink);
    assert_eq!(v.read, plan.kept[..plan.kept_ctx]);
}

#[test]
fn cache_error_is_the_model_compression_loss() {
    let be = CpuBackend;
    let mut cfg = micro();
    cfg.model.use_dsr = false;
    cfg.model.layers = 2;
    cfg.rckv.buffer_size = 128;
    let model = Model::new(&be, &cfg, 5).expect("model");
    let ex = example("passkey:ctx=96", 1, 0);
    let mut st = CacheStream::new(&be, &model, &ex).expect("stream");
    assert_eq!(st.len(), ex.n_ctx);
    while st.feed(7).expect("feed") > 0 {}
    let mean: f64 = (0..2)
        .map(|l| f64::from(st.ring(l).expect("ring").mean_error))
        .sum::<f64>()
        / 2.0;
    let out = model
        .step(&be, std::slice::from_ref(&ex), 0, false, false)
        .expect("step");
    let want = f64::from(out.terms.compression);
    assert!(close(mean, want, 1e-7, 1e-4), "ring {mean} vs model {want}");
}

#[test]
fn cache_ring_wraps_like_the_model_trim() {
    let be = CpuBackend;
    let cfg = micro(); // 96 slots, 4 sinks
    let model = Model::new(&be, &cfg, 5).expect("model");
    let ex = example("passkey:ctx=256", 2, 0);
    let mut one = CacheStream::new(&be, &model, &ex).expect("stream");
    let mut chunked = one.clone();
    while one.feed(1).expect("feed") > 0 {}
    while chunked.feed(37).expect("feed") > 0 {}
    let (a, b) = (one.ring(0).expect("ring"), chunked.ring(0).expect("ring"));
    assert_eq!(a.slots, b.slots);
    let mut pos: Vec<u32> = a
        .slots
        .iter()
        .filter(|s| s.live)
        .map(|s| s.position)
        .collect();
    pos.sort_unstable();
    let plan = SeqPlan::dense(&ex).ring_trim(cfg.rckv.buffer_size, cfg.rckv.sink);
    assert_eq!(pos, plan.kept[..plan.kept_ctx]);
    assert_eq!(a.written, ex.n_ctx as u64);
    let newest = a
        .slots
        .iter()
        .find(|s| s.live && s.age == 0)
        .expect("newest");
    assert_eq!(newest.position as usize, ex.n_ctx - 1);
    assert!(a.slots[..cfg.rckv.sink]
        .iter()
        .all(|s| s.sink && s.live && s.position < 4));
    one.reset();
    assert_eq!(
        one.ring(0)
            .expect("ring")
            .slots
            .iter()
            .filter(|s| s.live)
            .count(),
        0
    );
}

#[test]
fn pca_recovers_a_plane() {
    // Points on a 2-D plane embedded in 6-D (plus an offset): the projection keeps every
    // pairwise distance, and the plane carries all the variance.
    let (u, v) = (
        [0.6, 0.0, 0.8, 0.0, 0.0, 0.0],
        [0.0, 0.6, 0.0, 0.0, 0.8, 0.0],
    );
    let pts: Vec<(f32, f32)> = (0..40)
        .map(|i| ((i as f32 * 0.37).sin() * 3.0, (i as f32 * 0.91).cos()))
        .collect();
    let x: Vec<f32> = pts
        .iter()
        .flat_map(|&(a, b)| (0..6).map(move |c| a * u[c] + b * v[c] + 0.5))
        .collect();
    let p = Pca::fit(&x, 6).expect("fit");
    let y = p.project_rows(&x);
    assert!(p.explained > 0.9999, "explained {}", p.explained);
    assert!(p.variances[0] >= p.variances[1]);
    for i in 0..pts.len() {
        for j in 0..pts.len() {
            let d0 = ((pts[i].0 - pts[j].0).powi(2) + (pts[i].1 - pts[j].1).powi(2)).sqrt();
            let d1 = ((y[i][0] - y[j][0]).powi(2) + (y[i][1] - y[j][1]).powi(2)).sqrt();
            assert!((d0 - d1).abs() < 1e-3, "{d0} vs {d1}");
        }
    }
    assert!(Pca::fit(&x[..5], 6).is_err());
}

#[test]
fn session_steps_match_train() {
    let be = CpuBackend;
    let p = reproduce::preset("micro").expect("micro");
    let dir = std::env::temp_dir().join(format!("dsrsq-inspect-session-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let steps = 3;
    let mut opts = TrainOptions::new(p.config.clone(), &p.data, steps);
    opts.out_dir = Some(dir.join("train"));
    opts.warmup = p.warmup;
    train::train(&be, &opts).expect("train");
    let want = metrics::read_jsonl(&dir.join("train/metrics.jsonl")).expect("metrics");
    let mut session_opts = TrainOptions::new(p.config.clone(), &p.data, steps);
    session_opts.warmup = p.warmup;
    session_opts.out_dir = Some(dir.join("session"));
    let mut s = TrainSession::open(&be, session_opts).expect("session");
    for w in &want {
        let r = s.step(&be).expect("step");
        for key in [
            "loss",
            "task",
            "retrieval",
            "compression",
            "compute",
            "lr",
            "grad_norm",
        ] {
            // f32 values: serde_json reads a logged float back to the nearest f64 only approximately.
            let f = |v: Option<f64>| v.map(|x| x as f32);
            assert_eq!(
                f(r.get(key)),
                f(w[key].as_f64()),
                "step {}: {key}",
                w["step"]
            );
        }
    }
    assert!(s.finished() && s.step(&be).is_err());
    let ck = s.save_checkpoint(&be).expect("save");
    let loaded = train::checkpoint::load(&ck).expect("load");
    let host = s.params(&be).expect("params");
    assert_eq!(loaded.params.len(), host.len());
    assert!(loaded.params.iter().zip(&host).all(|((_, a), b)| a == b));
    let _ = std::fs::remove_dir_all(&dir);
}
