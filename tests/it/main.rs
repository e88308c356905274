//! All integration tests in one binary: one link of wgpu, naga and tokenizers instead of one per
//! file, and one wgpu device shared by every adapter test (`common::gpu`). Each module is one
//! former test file; run one with `cargo test --test it <module>::`.

mod common;
mod data_util;

mod adamw;
mod attention;
mod backend;
mod checkpoint;
mod cli_train;
mod config;
mod data;
mod data_tasks;
mod decode;
mod device;
mod dsr;
mod elementwise;
mod embedding;
mod eval_harness;
mod eval_metrics;
mod gca;
mod gca_model;
mod heads;
mod inspect;
mod kv_policy;
mod layernorm;
mod lm_head;
mod loss;
mod matmul;
mod metrics;
mod model;
mod rag;
mod rckv;
mod report;
mod rope;
mod run_safety;
mod shaders_validate;
mod shortconv;
mod softmax;
mod sqa;
mod train;
