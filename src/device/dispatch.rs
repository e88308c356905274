//! Compiling a kernel (once per spec and define values, through the pipeline cache) and
//! recording a dispatch of it into the context's pending encoder.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::error::{DeviceError, Result};
use super::kernel::{layout_entries, CompiledKernel, KernelSpec};
use super::params::GpuParams;
use super::tensor::GpuTensor;

impl GpuContext {
    fn kernel(
        &self,
        spec: &'static KernelSpec,
        defines: &[(&str, u32)],
    ) -> Result<Arc<CompiledKernel>> {
        let (source, values) = spec.resolved_source(defines)?;
        self.pipelines.get_or_build(spec, values, || {
            self.scoped(spec.name, || {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(spec.name),
                        source: wgpu::ShaderSource::Wgsl(source.into()),
                    });
                let layout =
                    self.device
                        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                            label: Some(spec.name),
                            entries: &layout_entries(spec),
                        });
                let pl = self
                    .device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some(spec.name),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
                let pipeline =
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(spec.name),
                            layout: Some(&pl),
                            module: &module,
                            entry_point: Some(spec.entry),
                            compilation_options: Default::default(),
                            cache: None,
                        });
                CompiledKernel { pipeline, layout }
            })
        })
    }

    /// Records one dispatch of `spec` with `params` (the struct its spec names, padded here to
    /// 16 bytes) at binding 0 and `tensors` at bindings 1.. in order.
    pub fn dispatch<P: GpuParams>(
        &self,
        spec: &'static KernelSpec,
        defines: &[(&str, u32)],
        params: &P,
        tensors: &[&GpuTensor],
        groups: [u32; 3],
    ) -> Result<()> {
        if P::LAYOUT.type_name != spec.params.type_name {
            return Err(DeviceError::Shape {
                op: "dispatch",
                detail: format!(
                    "{} reads its uniform as {}, but was given a {}",
                    spec.name,
                    spec.params.type_name,
                    P::LAYOUT.type_name
                ),
            });
        }
        if tensors.len() != spec.storage.len() {
            return Err(DeviceError::Shape {
                op: "dispatch",
                detail: format!(
                    "{} takes {} storage buffers, got {}",
                    spec.name,
                    spec.storage.len(),
                    tensors.len()
                ),
            });
        }
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(DeviceError::TooLarge {
                what: format!("{} dispatch of {groups:?} workgroups", spec.name),
                bytes: groups.iter().copied().max().unwrap_or(0) as u64,
                max: max as u64,
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let kernel = self.kernel(spec, defines)?;
        let mut bytes = bytemuck::bytes_of(params).to_vec();
        bytes.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
        self.scoped(spec.name, || {
            let uniform = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("params"),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::UNIFORM,
                });
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            }];
            for (i, t) in tensors.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: t.buffer().as_entire_binding(),
                });
            }
            let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(spec.name),
                layout: &kernel.layout,
                entries: &entries,
            });
            self.with_encoder(|enc| {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(spec.name),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&kernel.pipeline);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            });
        })
    }
}
