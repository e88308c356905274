//! The `[model]` section: the transformer's shape and its block spec (which norm, MLP and
//! attention each block uses, and how many key/value heads).
//!
//! A block kind is one enum value here and one match arm per op in `model::block` (norm, MLP)
//! or `model::layer` (attention); validation says which kinds run today. Configs and checkpoint
//! sidecars written before the block spec (`use_sqa` / `use_gca` booleans, no `attention`) are
//! read into the same values.

use serde::{Deserialize, Serialize};

use super::baselines::{ContextPolicy, KvPolicy};

/// The attention a block computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKind {
    /// Dense causal attention.
    Dense,
    /// Sub-Quadratic Sparse Attention (clustered keys, top-k routes + window + sinks).
    #[default]
    Sqa,
    /// Grouped Cross Attention (the `gca` baseline): local window + retrieved chunks.
    Gca,
}

/// The normalization before attention, before the MLP and before the LM head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    #[default]
    LayerNorm,
    RmsNorm,
}

/// The block's MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MlpKind {
    /// `W2·GELU(W1·x + b1) + b2`, width `4·hidden_dim`.
    #[default]
    Gelu,
    /// `down(silu(gate·x) * up·x)`.
    SwiGlu,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ModelToml")]
pub struct ModelSection {
    pub vocab_size: usize,
    pub d_model: usize,
    pub hidden_dim: usize,
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`); unset means
    /// `heads`, so code that changes `heads` need not touch it (see [`ModelSection::kv_heads`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<usize>,
    pub layers: usize,
    /// Longest input the dense path accepts (the standard model truncates here).
    pub max_len: usize,
    pub rope_base: f32,
    pub layernorm_eps: f32,
    pub norm: NormKind,
    pub mlp: MlpKind,
    pub attention: AttentionKind,
    /// DSR and RCKV; switching one off (or `attention = "dense"`) gives the seed's ablations
    /// (`no_dsr` keeps the whole context, `no_rckv` exact context KV, `no_sqa` dense
    /// attention). Both off with dense attention is the standard transformer.
    pub use_dsr: bool,
    pub use_rckv: bool,
    /// How a model without DSR picks the context it reads (`rag`, `attention_rag`).
    pub context: ContextPolicy,
    /// What the decoding KV cache keeps after the prefill (`razor`, `pyramid`).
    pub kv: KvPolicy,
    /// Taps of the short causal convolution applied to each block's normalised input before
    /// the Q/K/V projections (`kernels::shortconv`); 0 (the default) leaves it out, and the
    /// checkpoint layout then has no `conv.w` tensors.
    pub short_conv: usize,
}

impl ModelSection {
    /// Key/value heads: `kv_heads` when set, else `heads`.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads.unwrap_or(self.heads)
    }

    pub fn use_sqa(&self) -> bool {
        self.attention == AttentionKind::Sqa
    }

    pub fn use_gca(&self) -> bool {
        self.attention == AttentionKind::Gca
    }
}

fn on() -> bool {
    true
}

/// `[model]` as written: the block spec, or the older switches it replaced.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelToml {
    vocab_size: usize,
    d_model: usize,
    hidden_dim: usize,
    heads: usize,
    #[serde(default)]
    kv_heads: Option<usize>,
    layers: usize,
    max_len: usize,
    rope_base: f32,
    layernorm_eps: f32,
    #[serde(default)]
    norm: NormKind,
    #[serde(default)]
    mlp: MlpKind,
    #[serde(default)]
    attention: Option<AttentionKind>,
    #[serde(default = "on")]
    use_dsr: bool,
    #[serde(default)]
    use_sqa: Option<bool>,
    #[serde(default = "on")]
    use_rckv: bool,
    #[serde(default)]
    use_gca: Option<bool>,
    #[serde(default)]
    context: ContextPolicy,
    #[serde(default)]
    kv: KvPolicy,
    #[serde(default)]
    short_conv: usize,
}

impl TryFrom<ModelToml> for ModelSection {
    type Error = String;

    fn try_from(m: ModelToml) -> Result<Self, String> {
        let attention = match (m.attention, m.use_sqa, m.use_gca) {
            (Some(a), None, None) => a,
            (Some(_), _, _) => {
                return Err(
                    "`model.attention` replaces `model.use_sqa` / `model.use_gca`: give only `attention`"
                        .into(),
                )
            }
            (None, sqa, gca) => match (sqa.unwrap_or(true), gca.unwrap_or(false)) {
                (true, true) => {
                    return Err("`model.use_gca` replaces the attention, so it needs `model.use_sqa = false` (or write `attention = \"gca\"`)".into())
                }
                (_, true) => AttentionKind::Gca,
                (true, false) => AttentionKind::Sqa,
                (false, false) => AttentionKind::Dense,
            },
        };
        Ok(ModelSection {
            vocab_size: m.vocab_size,
            d_model: m.d_model,
            hidden_dim: m.hidden_dim,
            heads: m.heads,
            kv_heads: m.kv_heads,
            layers: m.layers,
            max_len: m.max_len,
            rope_base: m.rope_base,
            layernorm_eps: m.layernorm_eps,
            norm: m.norm,
            mlp: m.mlp,
            attention,
            use_dsr: m.use_dsr,
            use_rckv: m.use_rckv,
            context: m.context,
            kv: m.kv,
            short_conv: m.short_conv,
        })
    }
}

/// The most taps `model.short_conv` may have: it is meant to be short (a few tokens of local
/// mixing); anything longer is attention's job.
pub const MAX_SHORT_CONV: usize = 16;

/// The block-spec rules: `(key, problem)` for the first one broken.
pub(super) fn check(m: &ModelSection) -> Option<(&'static str, String)> {
    if m.norm != NormKind::LayerNorm {
        return Some((
            "model.norm",
            "is \"rmsnorm\", which has no kernels yet: use \"layernorm\"".into(),
        ));
    }
    if m.mlp != MlpKind::Gelu {
        return Some((
            "model.mlp",
            "is \"swiglu\", which has no kernels yet: use \"gelu\"".into(),
        ));
    }
    if m.kv_heads() != m.heads {
        return Some((
            "model.kv_heads",
            format!(
                "is {}; grouped-query attention is not implemented yet, so it must equal model.heads ({})",
                m.kv_heads(),
                m.heads
            ),
        ));
    }
    if m.short_conv > MAX_SHORT_CONV {
        return Some((
            "model.short_conv",
            format!(
                "is {}; must be at most {MAX_SHORT_CONV} taps (0 switches it off)",
                m.short_conv
            ),
        ));
    }
    if m.use_dsr && m.context != ContextPolicy::Truncate {
        return Some((
            "model.context",
            format!(
                "is {:?}; with model.use_dsr = true DSR picks the context, so it must be \"truncate\"",
                m.context
            ),
        ));
    }
    None
}
