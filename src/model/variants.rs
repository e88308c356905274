//! The compared models by name: DSRSQ, the standard transformer, the five baselines and the
//! three ablations of the seed. Each is the shared config with its switches set, so every
//! model runs through the same forward, decoder and metrics.

use super::config::{AttentionKind, Config, ContextPolicy, KvPolicy};

/// One named model.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub name: &'static str,
    /// What it is, for `--help` and the report.
    pub about: &'static str,
    /// Training-free baselines run on the weights of this model instead of their own.
    pub weights_of: Option<&'static str>,
}

/// Every model, in the report's order.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "dsrsq",
        about: "DSR + SQA + RCKV, trained with the hybrid loss",
        weights_of: None,
    },
    Variant {
        name: "standard",
        about: "dense causal transformer over the context's last model.max_len tokens",
        weights_of: None,
    },
    Variant {
        name: "rag",
        about: "BM25 over context chunks with the question as query; dense model on the kept chunks",
        weights_of: Some("standard"),
    },
    Variant {
        name: "attention_rag",
        about: "chunks ranked by the dense model's attention from the question's last token",
        weights_of: Some("standard"),
    },
    Variant {
        name: "gca",
        about: "Grouped Cross Attention: chunk landmarks retrieve past chunks, fused by retrieval scores",
        weights_of: None,
    },
    Variant {
        name: "razor",
        about: "RazorAttention KV cache on the standard model's weights",
        weights_of: Some("standard"),
    },
    Variant {
        name: "pyramid",
        about: "PyramidKV KV cache (SnapKV scoring) on the standard model's weights",
        weights_of: Some("standard"),
    },
    Variant {
        name: "no_dsr",
        about: "DSRSQ without DSR (whole context through SQA and RCKV)",
        weights_of: None,
    },
    Variant {
        name: "no_sqa",
        about: "DSRSQ without SQA (dense attention)",
        weights_of: None,
    },
    Variant {
        name: "no_rckv",
        about: "DSRSQ without RCKV (exact context KV)",
        weights_of: None,
    },
];

/// Every model's name, comma-separated (for error messages and `--help`).
pub fn names() -> String {
    VARIANTS
        .iter()
        .map(|v| v.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn find(name: &str) -> Option<&'static Variant> {
    VARIANTS.iter().find(|v| v.name == name)
}

/// `base` with the switches of model `name`; `None` for an unknown name.
pub fn apply(base: &Config, name: &str) -> Option<Config> {
    let (dsr, sqa, rckv, gca, context, kv) = match name {
        "dsrsq" => (
            true,
            true,
            true,
            false,
            ContextPolicy::Truncate,
            KvPolicy::Exact,
        ),
        "standard" => (
            false,
            false,
            false,
            false,
            ContextPolicy::Truncate,
            KvPolicy::Exact,
        ),
        "rag" => (
            false,
            false,
            false,
            false,
            ContextPolicy::Bm25,
            KvPolicy::Exact,
        ),
        "attention_rag" => (
            false,
            false,
            false,
            false,
            ContextPolicy::Attention,
            KvPolicy::Exact,
        ),
        "gca" => (
            false,
            false,
            false,
            true,
            ContextPolicy::Truncate,
            KvPolicy::Exact,
        ),
        "razor" => (
            false,
            false,
            false,
            false,
            ContextPolicy::Truncate,
            KvPolicy::Razor,
        ),
        "pyramid" => (
            false,
            false,
            false,
            false,
            ContextPolicy::Truncate,
            KvPolicy::Pyramid,
        ),
        "no_dsr" => (
            false,
            true,
            true,
            false,
            ContextPolicy::Truncate,
            KvPolicy::Exact,
        ),
        "no_sqa" => (
            true,
            false,
            true,
            false,
            ContextPolicy::Truncate,
            KvPolicy::Exact,
        ),
        "no_rckv" => (
            true,
            true,
            false,
            false,
            ContextPolicy::Truncate,
            KvPolicy::Exact,
        ),
        _ => return None,
    };
    let mut c = base.clone();
    let m = &mut c.model;
    m.use_dsr = dsr;
    m.use_rckv = rckv;
    m.attention = match (sqa, gca) {
        (_, true) => AttentionKind::Gca,
        (true, false) => AttentionKind::Sqa,
        (false, false) => AttentionKind::Dense,
    };
    m.context = context;
    m.kv = kv;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_name() {
        let base = Config::preset("tiny").expect("tiny");
        for v in VARIANTS {
            let c = apply(&base, v.name).expect("known");
            c.validate("test").expect("valid");
            assert_eq!(c.variant_name(), v.name);
            if let Some(w) = v.weights_of {
                let donor = apply(&base, w).expect("donor");
                assert_eq!(
                    crate::model::ParamLayout::new(&donor).shapes,
                    crate::model::ParamLayout::new(&c).shapes,
                    "{} must load {}'s weights",
                    v.name,
                    w
                );
            }
        }
        assert!(apply(&base, "nope").is_none());
    }
}
