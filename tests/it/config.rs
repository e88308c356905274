//! Run configuration: the shipped presets parse, the seed preset holds the seed's numbers, and
//! bad keys or values are errors that name the key.

use dsrsq::model::{Config, ConfigError};

fn seed_text() -> String {
    dsrsq::model::config::PRESETS
        .iter()
        .find(|p| p.0 == "seed")
        .expect("seed preset")
        .1
        .to_string()
}

#[test]
fn presets_parse_and_validate() {
    for (name, _) in dsrsq::model::config::PRESETS {
        Config::preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn seed_preset_is_the_seed_configuration() {
    let c = Config::preset("seed").unwrap();
    let m = &c.model;
    assert_eq!(
        (m.d_model, m.hidden_dim, m.heads, m.layers),
        (768, 768, 12, 12)
    );
    assert_eq!(
        (c.dsr.reduced_dim, c.dsr.base_budget, c.dsr.alpha),
        (128, 512, 0.5)
    );
    assert_eq!((c.sqa.clusters, c.sqa.top_k), (32, 8));
    assert_eq!((c.rckv.compressed_dim, c.rckv.buffer_size), (64, 1024));
    let h = &c.hof;
    assert_eq!(
        (
            h.lambda_task,
            h.lambda_retrieval,
            h.lambda_compression,
            h.lambda_compute
        ),
        (1.0, 0.5, 0.3, 0.2)
    );
    assert_eq!(h.rampup_steps, 1000);
    assert_eq!(
        (c.train.learning_rate, c.train.batch_size, c.train.epochs),
        (5e-5, 8, 3)
    );
    assert_eq!(c.head_dim(), 64);
    assert_eq!(
        (c.ramp(0), c.ramp(500), c.ramp(1000), c.ramp(5000)),
        (0.0, 0.5, 1.0, 1.0)
    );
    assert_eq!(c.sqa_kernel().clusters, 32);
    assert_eq!(c.rckv_kernel().capacity, 1024);
    assert_eq!(c.dsr_kernel().base_budget, 512);
}

#[test]
fn unknown_key_is_named() {
    let text = seed_text().replace("top_k = 8", "top_k = 8\ntopk = 8");
    let err = Config::from_toml(&text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("topk") && err.contains("bad.toml"), "{err}");
}

#[test]
fn missing_key_is_named() {
    let text = seed_text().replace("clusters = 32", "");
    let err = Config::from_toml(&text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("clusters"), "{err}");
}

#[test]
fn out_of_range_values_name_their_key() {
    let cases = [
        ("heads = 12", "heads = 7", "model.heads"),
        ("top_k = 8", "top_k = 0", "sqa.top_k"),
        ("buffer_size = 1024", "buffer_size = 16", "rckv.buffer_size"),
        (
            "write_policy = \"all\"",
            "write_policy = \"some\"",
            "rckv.write_policy",
        ),
        (
            "learning_rate = 5e-5",
            "learning_rate = -1.0",
            "train.learning_rate",
        ),
        (
            "lambda_compute = 0.2",
            "lambda_compute = nan",
            "hof.lambda_compute",
        ),
        (
            "layers = 12",
            "layers = 12\nshort_conv = 17",
            "model.short_conv",
        ),
    ];
    for (from, to, key) in cases {
        let text = seed_text().replace(from, to);
        assert_ne!(text, seed_text(), "{from} not found in the seed preset");
        match Config::from_toml(&text, "bad.toml") {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{to}: expected an error naming {key}, got {other:?}"),
        }
    }
}

#[test]
fn wrong_type_and_missing_file_are_errors() {
    let text = seed_text().replace("layers = 12", "layers = \"twelve\"");
    let err = Config::from_toml(&text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("layers"), "{err}");
    let err = Config::from_file(std::path::Path::new("/no/such/config.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/no/such/config.toml"), "{err}");
    assert!(Config::preset("huge").is_err());
}

/// The block spec: one attention enum, norm and MLP kinds, kv_heads; the older `use_sqa` /
/// `use_gca` switches still read into the same values, and every bad combination names its key.
#[test]
fn block_spec_reads_new_and_old_spellings() {
    use dsrsq::model::{AttentionKind, MlpKind, NormKind};
    let seed = Config::preset("seed").unwrap();
    assert_eq!(
        seed.model.attention,
        AttentionKind::Sqa,
        "default as before"
    );
    assert_eq!(
        (seed.model.norm, seed.model.mlp, seed.model.kv_heads()),
        (NormKind::LayerNorm, MlpKind::Gelu, seed.model.heads)
    );
    let with = |extra: &str| seed_text().replace("layers = 12", &format!("layers = 12\n{extra}"));
    for (extra, kind) in [
        ("attention = \"dense\"", AttentionKind::Dense),
        ("attention = \"gca\"\nuse_dsr = false", AttentionKind::Gca),
        ("use_sqa = false", AttentionKind::Dense),
        ("use_sqa = true", AttentionKind::Sqa),
        (
            "use_sqa = false\nuse_gca = true\nuse_dsr = false",
            AttentionKind::Gca,
        ),
    ] {
        let c =
            Config::from_toml(&with(extra), "t.toml").unwrap_or_else(|e| panic!("{extra}: {e}"));
        assert_eq!(c.model.attention, kind, "{extra}");
        // What a checkpoint sidecar stores reads back to the same config.
        let back: Config = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c, "{extra}");
    }
    for (extra, needle) in [
        ("use_gca = true", "use_sqa"),
        ("attention = \"dense\"\nuse_sqa = false", "attention"),
        ("attention = \"linear\"", "linear"),
    ] {
        let err = Config::from_toml(&with(extra), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(needle) && err.contains("t.toml"),
            "{extra}: {err}"
        );
    }
    for (extra, key) in [
        ("norm = \"rmsnorm\"", "model.norm"),
        ("mlp = \"swiglu\"", "model.mlp"),
        ("kv_heads = 4", "model.kv_heads"),
    ] {
        match Config::from_toml(&with(extra), "t.toml") {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{extra}"),
            other => panic!("{extra}: expected an error naming {key}, got {other:?}"),
        }
    }
}
