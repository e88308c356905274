//! Run configuration: model shape, the three DSRSQ components, the hybrid loss and training.
//! Read from TOML (`assets/configs/*.toml`); unknown keys and out-of-range values are errors
//! that name the key.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::kernels::dsr::DsrConfig;
use crate::kernels::rckv::{RckvConfig, WritePolicy};
use crate::kernels::sqa::SqaConfig;

mod baselines;
mod block;
pub use baselines::{
    ContextPolicy, GcaSection, KvPolicy, PyramidSection, RagSection, RazorSection,
};
pub use block::{AttentionKind, MlpKind, ModelSection, NormKind, MAX_SHORT_CONV};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading config {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config {path}: `{key}` {problem}")]
    Invalid {
        path: String,
        key: &'static str,
        problem: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsrSection {
    pub reduced_dim: usize,
    pub base_budget: usize,
    pub alpha: f32,
    pub block: usize,
    pub tau: f32,
    pub temperature: f32,
    pub dilation: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqaSection {
    pub clusters: usize,
    pub top_k: usize,
    pub window: usize,
    pub sink: usize,
    pub iters: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RckvSection {
    pub compressed_dim: usize,
    pub buffer_size: usize,
    pub sink: usize,
    /// `"all"` or `"salient"`.
    pub write_policy: String,
    pub salience_threshold: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HofSection {
    pub lambda_task: f32,
    pub lambda_retrieval: f32,
    pub lambda_compression: f32,
    pub lambda_compute: f32,
    pub rampup_steps: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub learning_rate: f32,
    pub batch_size: usize,
    pub epochs: usize,
    pub weight_decay: f32,
    pub grad_clip: f32,
    pub seed: u64,
    /// AdamW's moment decay rates (the usual 0.9 / 0.999 unless the config says otherwise).
    #[serde(default = "default_beta1")]
    pub adam_beta1: f32,
    #[serde(default = "default_beta2")]
    pub adam_beta2: f32,
}

fn default_beta1() -> f32 {
    0.9
}

fn default_beta2() -> f32 {
    0.999
}

/// A whole run configuration, as in the seed's "Model Architecture" and "Component
/// Configurations".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub model: ModelSection,
    pub dsr: DsrSection,
    pub sqa: SqaSection,
    pub rckv: RckvSection,
    pub hof: HofSection,
    pub train: TrainSection,
    #[serde(default)]
    pub rag: RagSection,
    #[serde(default)]
    pub razor: RazorSection,
    #[serde(default)]
    pub pyramid: PyramidSection,
    #[serde(default)]
    pub gca: GcaSection,
}

/// The presets shipped in `assets/configs/`, by name.
pub const PRESETS: &[(&str, &str)] = &[
    ("micro", include_str!("../../assets/configs/micro.toml")),
    ("seed", include_str!("../../assets/configs/seed.toml")),
    ("tiny", include_str!("../../assets/configs/tiny.toml")),
    (
        "tiny-mqar",
        include_str!("../../assets/configs/tiny-mqar.toml"),
    ),
];

impl Config {
    /// Parses and validates TOML text; `path` names the source in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_toml(&text, &shown)
    }

    /// A shipped preset (`seed`, `tiny`).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        let (_, text) =
            PRESETS
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| ConfigError::Invalid {
                    path: format!("preset {name:?}"),
                    key: "preset",
                    problem: format!(
                        "is unknown; presets: {}",
                        PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                    ),
                })?;
        Self::from_toml(text, &format!("preset {name}"))
    }

    /// Every range rule, each naming its key (the first one broken).
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let broken = sizes(self)
            .or_else(|| block::check(&self.model))
            .or_else(|| components(self))
            .or_else(|| baselines(self));
        match broken {
            Some((key, problem)) => Err(ConfigError::Invalid {
                path: path.to_string(),
                key,
                problem,
            }),
            None => Ok(()),
        }
    }

    /// The report's name for this model: `dsrsq` with every component, `standard` with none,
    /// `no_dsr` / `no_sqa` / `no_rckv` with one removed, a baseline's name, else the
    /// components it keeps.
    pub fn variant_name(&self) -> String {
        let m = &self.model;
        let plain = !m.use_dsr && !m.use_sqa() && !m.use_rckv;
        if plain {
            match (m.use_gca(), m.context, m.kv) {
                (true, ContextPolicy::Truncate, KvPolicy::Exact) => return "gca".into(),
                (false, ContextPolicy::Bm25, KvPolicy::Exact) => return "rag".into(),
                (false, ContextPolicy::Attention, KvPolicy::Exact) => {
                    return "attention_rag".into()
                }
                (false, ContextPolicy::Truncate, KvPolicy::Razor) => return "razor".into(),
                (false, ContextPolicy::Truncate, KvPolicy::Pyramid) => return "pyramid".into(),
                _ => {}
            }
        }
        if m.use_gca() || m.context != ContextPolicy::Truncate || m.kv != KvPolicy::Exact {
            return format!(
                "custom(dsr={},sqa={},rckv={},gca={},context={:?},kv={:?})",
                m.use_dsr,
                m.use_sqa(),
                m.use_rckv,
                m.use_gca(),
                m.context,
                m.kv
            )
            .to_lowercase();
        }
        match (m.use_dsr, m.use_sqa(), m.use_rckv) {
            (true, true, true) => "dsrsq".into(),
            (false, false, false) => "standard".into(),
            (false, true, true) => "no_dsr".into(),
            (true, false, true) => "no_sqa".into(),
            (true, true, false) => "no_rckv".into(),
            (dsr, sqa, rckv) => {
                let on: Vec<&str> = [(dsr, "dsr"), (sqa, "sqa"), (rckv, "rckv")]
                    .iter()
                    .filter(|(b, _)| *b)
                    .map(|(_, n)| *n)
                    .collect();
                format!("only_{}", on.join("_"))
            }
        }
    }

    pub fn head_dim(&self) -> usize {
        self.model.d_model / self.model.heads
    }

    pub fn dsr_kernel(&self) -> DsrConfig {
        DsrConfig {
            reduced_dim: self.dsr.reduced_dim,
            block: self.dsr.block,
            base_budget: self.dsr.base_budget,
            alpha: self.dsr.alpha,
            tau: self.dsr.tau,
            temperature: self.dsr.temperature,
            dilation: self.dsr.dilation,
        }
    }

    pub fn sqa_kernel(&self) -> SqaConfig {
        SqaConfig {
            clusters: self.sqa.clusters,
            top_k: self.sqa.top_k,
            window: self.sqa.window,
            sink: self.sqa.sink,
            iters: self.sqa.iters,
        }
    }

    pub fn rckv_kernel(&self) -> RckvConfig {
        RckvConfig {
            latent: self.rckv.compressed_dim,
            capacity: self.rckv.buffer_size,
            sink: self.rckv.sink,
            policy: if self.rckv.write_policy == "salient" {
                WritePolicy::Salient {
                    threshold: self.rckv.salience_threshold,
                }
            } else {
                WritePolicy::All
            },
        }
    }

    /// The HOF ramp `r(t) = min(1, t / rampup)` (1 at once when the ramp-up is 0).
    pub fn ramp(&self, step: usize) -> f32 {
        match self.hof.rampup_steps {
            0 => 1.0,
            r => (step as f32 / r as f32).min(1.0),
        }
    }
}

/// A broken rule: the key and what is wrong with its value.
type Problem = (&'static str, String);

/// The rules on the model's and components' sizes: the first broken one.
fn sizes(c: &Config) -> Option<Problem> {
    let positive: [(&'static str, usize); 14] = [
        ("model.vocab_size", c.model.vocab_size),
        ("model.d_model", c.model.d_model),
        ("model.hidden_dim", c.model.hidden_dim),
        ("model.heads", c.model.heads),
        ("model.layers", c.model.layers),
        ("model.max_len", c.model.max_len),
        ("dsr.reduced_dim", c.dsr.reduced_dim),
        ("dsr.base_budget", c.dsr.base_budget),
        ("dsr.block", c.dsr.block),
        ("sqa.clusters", c.sqa.clusters),
        ("sqa.top_k", c.sqa.top_k),
        ("rckv.compressed_dim", c.rckv.compressed_dim),
        ("train.batch_size", c.train.batch_size),
        ("train.epochs", c.train.epochs),
    ];
    for (key, v) in positive {
        if v == 0 {
            return Some((key, "must be at least 1".into()));
        }
    }
    if !c.model.d_model.is_multiple_of(c.model.heads) {
        return Some((
            "model.heads",
            format!(
                "({}) must divide model.d_model ({})",
                c.model.heads, c.model.d_model
            ),
        ));
    }
    if !(c.model.d_model / c.model.heads).is_multiple_of(2) {
        return Some((
            "model.heads",
            "must leave an even head dimension (RoPE pairs)".into(),
        ));
    }
    None
}

/// The rules on DSR, RCKV, the HOF weights and training numbers: the first broken one.
fn components(c: &Config) -> Option<Problem> {
    if c.rckv.buffer_size <= c.rckv.sink {
        return Some((
            "rckv.buffer_size",
            format!(
                "({}) must exceed rckv.sink ({})",
                c.rckv.buffer_size, c.rckv.sink
            ),
        ));
    }
    if !matches!(c.rckv.write_policy.as_str(), "all" | "salient") {
        return Some((
            "rckv.write_policy",
            format!(
                "is {:?}; expected \"all\" or \"salient\"",
                c.rckv.write_policy
            ),
        ));
    }
    let non_negative: [(&'static str, f32); 7] = [
        ("dsr.alpha", c.dsr.alpha),
        ("hof.lambda_task", c.hof.lambda_task),
        ("hof.lambda_retrieval", c.hof.lambda_retrieval),
        ("hof.lambda_compression", c.hof.lambda_compression),
        ("hof.lambda_compute", c.hof.lambda_compute),
        ("train.weight_decay", c.train.weight_decay),
        ("train.grad_clip", c.train.grad_clip),
    ];
    for (key, v) in non_negative {
        if !(v.is_finite() && v >= 0.0) {
            return Some((key, format!("is {v}; must be finite and ≥ 0")));
        }
    }
    let positive_f: [(&'static str, f32); 4] = [
        ("dsr.temperature", c.dsr.temperature),
        ("train.learning_rate", c.train.learning_rate),
        ("model.rope_base", c.model.rope_base),
        ("model.layernorm_eps", c.model.layernorm_eps),
    ];
    for (key, v) in positive_f {
        if !(v.is_finite() && v > 0.0) {
            return Some((key, format!("is {v}; must be finite and > 0")));
        }
    }
    for (key, v) in [
        ("train.adam_beta1", c.train.adam_beta1),
        ("train.adam_beta2", c.train.adam_beta2),
    ] {
        if !(v.is_finite() && (0.0..1.0).contains(&v)) {
            return Some((key, format!("is {v}; must be in [0, 1)")));
        }
    }
    if !c.dsr.tau.is_finite() {
        return Some(("dsr.tau", "must be finite".into()));
    }
    if !c.rckv.salience_threshold.is_finite() {
        return Some(("rckv.salience_threshold", "must be finite".into()));
    }
    None
}

/// The rules on the baselines' sections: the first broken one.
fn baselines(c: &Config) -> Option<Problem> {
    for (key, v) in [
        ("rag.chunk", c.rag.chunk),
        ("razor.window", c.razor.window),
        ("razor.probe_len", c.razor.probe_len),
        ("pyramid.budget", c.pyramid.budget),
        ("pyramid.window", c.pyramid.window),
        ("pyramid.kernel", c.pyramid.kernel),
        ("gca.chunk", c.gca.chunk),
        ("gca.top_k", c.gca.top_k),
        ("gca.landmark_dim", c.gca.landmark_dim),
    ] {
        if v == 0 {
            return Some((key, "must be at least 1".into()));
        }
    }
    if !(c.rag.k1.is_finite() && c.rag.k1 >= 0.0) {
        return Some(("rag.k1", format!("is {}; must be finite and ≥ 0", c.rag.k1)));
    }
    for (key, v) in [
        ("rag.b", c.rag.b),
        ("razor.retrieval_heads", c.razor.retrieval_heads),
        ("razor.echo_heads", c.razor.echo_heads),
    ] {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Some((key, format!("is {v}; must be in [0, 1]")));
        }
    }
    if c.razor.echo_heads > c.razor.retrieval_heads {
        return Some((
            "razor.echo_heads",
            format!(
                "({}) must not exceed razor.retrieval_heads ({})",
                c.razor.echo_heads, c.razor.retrieval_heads
            ),
        ));
    }
    if c.pyramid.kernel.is_multiple_of(2) {
        return Some((
            "pyramid.kernel",
            format!(
                "is {}; must be odd (a centred pooling window)",
                c.pyramid.kernel
            ),
        ));
    }
    if c.pyramid.budget <= c.pyramid.window {
        return Some((
            "pyramid.budget",
            format!(
                "({}) must exceed pyramid.window ({}): the window is part of the budget",
                c.pyramid.budget, c.pyramid.window
            ),
        ));
    }
    if !(c.pyramid.beta.is_finite() && c.pyramid.beta >= 1.0) {
        return Some((
            "pyramid.beta",
            format!("is {}; must be finite and ≥ 1", c.pyramid.beta),
        ));
    }
    None
}
