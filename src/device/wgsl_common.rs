//! WGSL shared between kernels, under `shaders/common/`: a kernel's source names one with a line
//! `#include "NAME"`, which [`expand`] replaces by the file (WGSL has no includes of its own).
//! Each kernel family's uniform struct is defined once here, so its kernels cannot drift apart.

use super::error::{DeviceError, Result};

/// Every file under `shaders/common/`, by name.
pub static COMMON: &[(&str, &str)] = &[
    (
        "attention_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/attention_params.wgsl"
        )),
    ),
    (
        "dsr_blocks.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/dsr_blocks.wgsl"
        )),
    ),
    (
        "dsr_partials.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/dsr_partials.wgsl"
        )),
    ),
    (
        "dsr_radix.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/dsr_radix.wgsl"
        )),
    ),
    (
        "dsr_scan.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/dsr_scan.wgsl"
        )),
    ),
    (
        "elementwise_add_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/elementwise_add_params.wgsl"
        )),
    ),
    (
        "elementwise_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/elementwise_params.wgsl"
        )),
    ),
    (
        "gca_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/gca_params.wgsl"
        )),
    ),
    (
        "heads_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/heads_params.wgsl"
        )),
    ),
    (
        "layernorm_backward_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/layernorm_backward_params.wgsl"
        )),
    ),
    (
        "rckv_copy_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/rckv_copy_params.wgsl"
        )),
    ),
    (
        "shortconv_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/shortconv_params.wgsl"
        )),
    ),
    (
        "softmax_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/softmax_params.wgsl"
        )),
    ),
    (
        "sqa_params.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/common/sqa_params.wgsl"
        )),
    ),
];

/// `source` with each `#include "NAME"` line replaced by `shaders/common/NAME`; `kernel` names
/// the kernel in the error for an unknown name.
pub fn expand(kernel: &'static str, source: &str) -> Result<String> {
    let mut out = String::with_capacity(source.len() + 1024);
    for line in source.lines() {
        match line.trim().strip_prefix("#include ") {
            Some(name) => {
                let name = name.trim().trim_matches('"');
                let (_, text) = COMMON.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                    DeviceError::MissingInclude {
                        kernel,
                        include: name.to_string(),
                    }
                })?;
                out.push_str(text);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}
