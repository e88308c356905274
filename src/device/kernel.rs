//! Kernel descriptions and the pipeline cache. Each WGSL file declares no shapes: shapes come in
//! a small uniform at binding 0, so one pipeline serves every shape. Compile-time knobs
//! (workgroup size, tile size) are `const` lines the host prepends ("defines"); the cache key is
//! kernel + entry point + every define value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::{DeviceError, Result};
use super::params::ParamsLayout;

/// How a storage binding is used; binding 0 is always the uniform parameter block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// A WGSL entry point plus the explicit layout of its bindings.
#[derive(Debug)]
pub struct KernelSpec {
    pub name: &'static str,
    /// Path under `shaders/`, for error messages and the naga test.
    pub file: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
    /// Storage bindings 1..=len, in order.
    pub storage: &'static [Access],
    /// Defaults for every define the source uses.
    pub defines: &'static [(&'static str, u32)],
    /// The Rust struct that fills the uniform at binding 0 (see `device::params`).
    pub params: &'static ParamsLayout,
}

/// Declares a `KernelSpec` whose WGSL lives in `shaders/<file>`.
#[macro_export]
macro_rules! kernel_spec {
    ($name:expr, $file:expr, $entry:expr, $params:ty, [$($acc:ident),* $(,)?], [$(($d:expr, $v:expr)),* $(,)?]) => {
        $crate::device::KernelSpec {
            name: $name,
            file: $file,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),
            entry: $entry,
            storage: &[$($crate::device::Access::$acc),*],
            defines: &[$(($d, $v)),*],
            params: &<$params as $crate::device::GpuParams>::LAYOUT,
        }
    };
}

impl KernelSpec {
    /// The WGSL actually compiled: defines (defaults overridden by `overrides`) then the file,
    /// its `#include` lines expanded (see `wgsl_common`).
    pub fn resolved_source(&self, overrides: &[(&str, u32)]) -> Result<(String, Vec<u32>)> {
        for (k, _) in overrides {
            if !self.defines.iter().any(|(d, _)| d == k) {
                return Err(DeviceError::MissingDefine {
                    kernel: self.name,
                    define: (*k).to_string(),
                });
            }
        }
        let mut header = String::new();
        let mut values = Vec::with_capacity(self.defines.len());
        for (name, default) in self.defines {
            let v = overrides
                .iter()
                .find(|(k, _)| k == name)
                .map_or(*default, |(_, v)| *v);
            header.push_str(&format!("const {name}: u32 = {v}u;\n"));
            values.push(v);
        }
        Ok((
            header + &super::wgsl_common::expand(self.name, self.source)?,
            values,
        ))
    }
}

pub struct CompiledKernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

type Key = (&'static str, &'static str, Vec<u32>);

#[derive(Default)]
pub struct PipelineCache {
    map: Mutex<HashMap<Key, Arc<CompiledKernel>>>,
}

impl PipelineCache {
    pub(crate) fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Returns the cached pipeline or builds it with `build` (which runs inside an error scope).
    pub fn get_or_build(
        &self,
        spec: &'static KernelSpec,
        values: Vec<u32>,
        build: impl FnOnce() -> Result<CompiledKernel>,
    ) -> Result<Arc<CompiledKernel>> {
        let key = (spec.name, spec.entry, values);
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = map.get(&key) {
            return Ok(k.clone());
        }
        let compiled = Arc::new(build()?);
        map.insert(key, compiled.clone());
        Ok(compiled)
    }
}

pub fn layout_entries(spec: &KernelSpec) -> Vec<wgpu::BindGroupLayoutEntry> {
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }];
    for (i, acc) in spec.storage.iter().enumerate() {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: *acc == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    entries
}

/// Workgroup counts for `items` threads in groups of `wg`, folded into 2-D when one dimension
/// would pass the 65535 limit. Shaders rebuild the flat index with `num_workgroups.x`.
pub fn groups_1d(items: usize, wg: u32) -> [u32; 3] {
    let groups = items.div_ceil(wg as usize).max(1);
    const MAX: usize = 65535;
    if groups <= MAX {
        [groups as u32, 1, 1]
    } else {
        [MAX as u32, groups.div_ceil(MAX) as u32, 1]
    }
}
