//! The config's baseline switches and sections (`rag`, `attention_rag`, `gca`, `razor`,
//! `pyramid`); every field has a default, so configs without them keep their meaning.

use serde::{Deserialize, Serialize};

/// The context a model without DSR reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextPolicy {
    /// The context's last tokens up to `model.max_len` (the standard model).
    #[default]
    Truncate,
    /// BM25 over chunks with the question as query (`rag`).
    Bm25,
    /// Chunks ranked by the model's own attention from the question's last token
    /// (`attention_rag`).
    Attention,
}

/// What the decoding KV cache keeps of the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvPolicy {
    /// Every row (or RCKV latents for the context when RCKV is on).
    #[default]
    Exact,
    /// RazorAttention: retrieval heads keep everything, the others sinks + window + one
    /// compensation token.
    Razor,
    /// PyramidKV: per-layer budgets decreasing with depth, rows kept by SnapKV scores.
    Pyramid,
}

/// `rag` / `attention_rag`: chunking and the token budget of the kept context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RagSection {
    /// Tokens per chunk.
    pub chunk: usize,
    /// Context tokens kept; 0 fills the dense model's window (`model.max_len` minus the
    /// question and answer).
    pub budget: usize,
    /// BM25's term-frequency saturation and length normalization.
    pub k1: f32,
    pub b: f32,
}

impl Default for RagSection {
    fn default() -> Self {
        Self {
            chunk: 64,
            budget: 0,
            k1: 1.2,
            b: 0.75,
        }
    }
}

/// `razor`: RazorAttention's cache for non-retrieval heads and its head scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RazorSection {
    /// Attention-sink tokens kept at the start.
    pub sink: usize,
    /// Most recent tokens kept.
    pub window: usize,
    /// Fraction of heads kept whole (by echo + induction score).
    pub retrieval_heads: f32,
    /// Fraction of all heads picked by echo score first (the paper protects 1% echo heads
    /// and fills the rest with induction heads); counts towards `retrieval_heads`.
    #[serde(default = "razor_echo_heads")]
    pub echo_heads: f32,
    /// Random tokens in the head-scoring probe (repeated twice; capped at `max_len / 2`).
    #[serde(default = "razor_probe_len")]
    pub probe_len: usize,
}

fn razor_echo_heads() -> f32 {
    0.01
}

fn razor_probe_len() -> usize {
    64
}

impl Default for RazorSection {
    fn default() -> Self {
        Self {
            sink: 4,
            window: 64,
            retrieval_heads: 0.15,
            echo_heads: razor_echo_heads(),
            probe_len: razor_probe_len(),
        }
    }
}

/// `pyramid`: PyramidKV's budgets and SnapKV's scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PyramidSection {
    /// Average rows kept per head and layer (the budget the pyramid redistributes).
    pub budget: usize,
    /// β: the top layer keeps `budget / β`.
    pub beta: f32,
    /// Observation window: the prompt's last rows, whose attention scores the rest.
    pub window: usize,
    /// Pooling kernel over the scores.
    pub kernel: usize,
}

impl Default for PyramidSection {
    fn default() -> Self {
        Self {
            budget: 128,
            beta: 20.0,
            window: 32,
            kernel: 5,
        }
    }
}

/// `gca`: Grouped Cross Attention's chunking and retrieval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcaSection {
    /// Tokens per chunk.
    pub chunk: usize,
    /// Past chunks retrieved per chunk.
    pub top_k: usize,
    /// Width of the landmark projections the retrieval scores are taken in.
    #[serde(default = "default_gca_landmark_dim")]
    pub landmark_dim: usize,
}

fn default_gca_landmark_dim() -> usize {
    32
}

impl Default for GcaSection {
    fn default() -> Self {
        Self {
            chunk: 64,
            top_k: 4,
            landmark_dim: default_gca_landmark_dim(),
        }
    }
}
