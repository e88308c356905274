//! Training throughput: full optimizer steps (forward, hybrid loss, backward, clipping, AdamW)
//! of a language-modelling batch, in tokens per second, for the dense path and for DSRSQ.
//!
//! The dense row is the reference shape (d_model 128, 4 layers, 4 heads, vocab 8192,
//! batch 8 × 512 and 8 × 2048, every position a target), so it can be set beside another
//! framework's figure measured the same way.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::adamw::AdamW;
use crate::model::{AttentionKind, Config, Model};
use crate::train::optim::Optimizer;

#[derive(Debug, thiserror::Error)]
pub enum TrainBenchError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    Config(#[from] crate::model::ConfigError),
}

/// The reference dense config: tiny's structure at d_model 128, 4 layers, 4 heads, vocab 8192,
/// with DSR, SQA and RCKV off.
pub fn dense_reference() -> Result<Config, TrainBenchError> {
    let mut c = Config::preset("tiny")?;
    c.model.vocab_size = 8192;
    c.model.d_model = 128;
    c.model.hidden_dim = 128;
    c.model.heads = 4;
    c.model.layers = 4;
    c.model.max_len = 4096;
    c.model.use_dsr = false;
    c.model.attention = AttentionKind::Dense;
    c.model.use_rckv = false;
    c.train.batch_size = 8;
    Ok(c)
}

/// Random-token language-modelling examples: every position predicts the next token. The
/// first half is "context" so the DSRSQ variants have something to select and compress.
pub fn lm_batch(cfg: &Config, len: usize, seed: u64) -> Vec<Example> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..cfg.train.batch_size)
        .map(|_| {
            let ids: Vec<u32> = (0..len)
                .map(|_| rng.random_range(1..cfg.model.vocab_size as u32))
                .collect();
            let mut targets: Vec<i32> = ids[1..].iter().map(|&t| t as i32).collect();
            targets.push(-1);
            let n_ctx = len / 2;
            // Only positions after the question may carry targets in a QA example; in LM mode
            // the whole sequence is scored, which the dense path allows.
            Example {
                ids,
                n_ctx,
                q0: n_ctx,
                q1: n_ctx + 1,
                targets,
                spans: vec![],
                answers: vec![],
            }
        })
        .collect()
}

/// Tokens per second over `steps` timed steps after one warm-up step.
pub fn tokens_per_second<B: Backend>(
    be: &B,
    cfg: &Config,
    len: usize,
    steps: usize,
) -> Result<f64, TrainBenchError> {
    let mut model = Model::new(be, cfg, 1)?;
    let hp = AdamW {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
    };
    let mut opt = Optimizer::new(be, &model.layout, hp)?;
    let mut run = |seed: u64| -> Result<usize, TrainBenchError> {
        let ex = lm_batch(cfg, len, seed);
        let out = model.step(be, &ex, 0, true, false)?;
        opt.apply(be, &model.layout, &mut model.params, out.grads, 1.0, 1e-3)?;
        be.sync().map_err(crate::model::ModelError::from)?;
        Ok(ex.iter().map(|e| e.ids.len()).sum())
    };
    run(0)?;
    let t0 = Instant::now();
    let mut tokens = 0;
    for s in 0..steps {
        tokens += run(s as u64 + 1)?;
    }
    Ok(tokens as f64 / t0.elapsed().as_secs_f64())
}
