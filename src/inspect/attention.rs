//! One layer and head of the model on one input: the keys (after RoPE, as SQA clusters them),
//! their k-means clusters and 2-D projection, each query's routed clusters, and the dense and
//! SQA attention weights side by side with the attention recall.
//!
//! The rows are the tokens the model keeps for this input (DSR selection, then the ring), in
//! order; `positions` maps each row to its original position. The clustering is the CPU
//! backend's (`kernels::sqa::cpu::cluster`) on this head's q and k, whatever backend ran the
//! forward, so it is exactly the clustering the CPU model uses.

use super::pca::Pca;
use super::{check_example, forward_layers, model_plan, InspectError, Result};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::attention;
use crate::kernels::matmul::{self, MatmulDims};
use crate::kernels::sqa::{self, CpuClusters, SqaShape, NO_CLUSTER};
use crate::model::Model;

/// Everything the attention view draws for one (layer, head).
#[derive(Debug, Clone)]
pub struct AttentionInspect {
    pub layer: usize,
    pub head: usize,
    /// Rows (kept tokens) and head width.
    pub n: usize,
    pub d: usize,
    /// `[n]` token id and original position of each row.
    pub ids: Vec<u32>,
    pub positions: Vec<u32>,
    /// Rows that hold context tokens (the rest: separator, question, answer).
    pub ctx_rows: usize,
    pub clusters: usize,
    pub top_k: usize,
    /// `[n]` cluster of each key.
    pub assign: Vec<u32>,
    /// Per query, its routed clusters best first (`NO_CLUSTER` padding removed).
    pub routes: Vec<Vec<u32>>,
    /// `[n]` unit keys projected on their first two principal components.
    pub keys_2d: Vec<[f32; 2]>,
    /// `[clusters]` centroids in the same projection.
    pub centroids_2d: Vec<[f32; 2]>,
    /// Share of the keys' variance the two components explain.
    pub explained: f32,
    /// `[n, n]` row-major causal softmax weights of dense attention.
    pub dense: Vec<f32>,
    /// `[n, n]` SQA weights: the softmax over the keys query i reads (0 elsewhere).
    pub sparse: Vec<f32>,
    /// `[n, n]` whether query i reads key j under SQA.
    pub selected: Vec<bool>,
    /// `[n]` dense softmax mass on the keys each query reads.
    pub recall_per_query: Vec<f32>,
    /// The head's attention recall (mean of `recall_per_query`, the SQA diagnostic).
    pub recall: f32,
    /// `[n, d]` this head's queries and keys (after RoPE) and their clustering.
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub clustering: CpuClusters,
}

impl AttentionInspect {
    /// Clusters query `i` routes to (empty for a row out of range).
    pub fn routes_of(&self, i: usize) -> &[u32] {
        self.routes.get(i).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Inspects `layer`/`head` of `model` on `ex`.
pub fn inspect<B: Backend>(
    be: &B,
    model: &Model<B>,
    ex: &Example,
    layer: usize,
    head: usize,
) -> Result<AttentionInspect> {
    check_example(model, ex)?;
    let cfg = &model.cfg;
    let heads = cfg.model.heads;
    if head >= heads {
        return Err(InspectError::Input(format!(
            "head {head} does not exist (the model has {heads})"
        )));
    }
    let plan = model_plan(be, model, ex)?;
    let (batch, caches) = forward_layers(be, model, ex, plan, layer)?;
    let cache = caches
        .last()
        .ok_or_else(|| InspectError::Input("no layer ran".into()))?;
    let (n, d) = (batch.l, cfg.head_dim());
    // b = 1, so head h is the contiguous block h of [H, n, d].
    let head_rows = |t: &B::T| -> Result<Vec<f32>> {
        let all = be.download(t)?.data;
        Ok(all[head * n * d..(head + 1) * n * d].to_vec())
    };
    let (q, k, v) = (
        head_rows(&cache.qh)?,
        head_rows(&cache.kh)?,
        head_rows(&cache.vh)?,
    );
    let sq = cfg.sqa_kernel();
    let s = SqaShape { bh: 1, n, d };
    let cl = sqa::cpu::cluster(&q, &k, &sq, s)?;
    let kk = sq.routes();
    let routes: Vec<Vec<u32>> = cl
        .routes
        .chunks_exact(kk.max(1))
        .map(|r| r.iter().copied().filter(|&c| c != NO_CLUSTER).collect())
        .collect();

    let scores = matmul::cpu::matmul(&q, &k, &MatmulDims::new(n, d, n).transpose_b());
    let scale = 1.0 / (d as f32).sqrt();
    let (_, lse_dense) = attention::cpu::attention_forward(&q, &k, &v, 1, n, d);
    let (_, lse_sparse) = sqa::cpu::sqa_forward((&q, &k, &v), &cl, &sq, s)?;
    let mut dense = vec![0.0_f32; n * n];
    let mut sparse = vec![0.0_f32; n * n];
    let mut selected = vec![false; n * n];
    let mut recall_per_query = vec![0.0_f32; n];
    for i in 0..n {
        let mut mass = 0.0_f64;
        for j in 0..=i {
            let sij = scores[i * n + j] * scale;
            let p = (sij - lse_dense[i]).exp();
            dense[i * n + j] = p;
            if sqa::cpu::selected(&cl, &sq, s, 0, i, j) {
                selected[i * n + j] = true;
                sparse[i * n + j] = (sij - lse_sparse[i]).exp();
                mass += f64::from(p);
            }
        }
        recall_per_query[i] = mass.min(1.0) as f32;
    }
    let recall = sqa::cpu::recall((&q, &k, &v), &lse_sparse, &sq, s)?
        .first()
        .copied()
        .unwrap_or(0.0);

    let unit = sqa::cpu::normalize_keys_ref(&k, d);
    let pca = Pca::fit(&unit, d)?;
    Ok(AttentionInspect {
        layer,
        head,
        n,
        d,
        ids: batch.ids.clone(),
        positions: batch.positions.clone(),
        ctx_rows: batch.kept_ctx.first().copied().unwrap_or(0),
        clusters: sq.clusters,
        top_k: kk,
        assign: cl.assign.clone(),
        routes,
        keys_2d: pca.project_rows(&unit),
        centroids_2d: pca.project_rows(&cl.centroids),
        explained: pca.explained,
        dense,
        sparse,
        selected,
        recall_per_query,
        recall,
        q,
        k,
        clustering: cl,
    })
}
