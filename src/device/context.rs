//! The wgpu context: one device + queue, the pipeline cache, a pending command encoder that
//! batches every dispatch until a readback (or `flush`) submits them all at once, and byte
//! accounting of live buffers.

use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::error::{DeviceError, Result};
use super::kernel::PipelineCache;
use super::memory::MemCounter;
use super::select::{self, AdapterSummary};
use super::tensor::{DType, GpuTensor, TrackedBuffer};

/// Limits every kernel in this crate stays within (WebGPU's defaults, which every
/// conformant adapter offers); buffer sizes are raised to what the adapter allows.
fn required_limits(adapter: &wgpu::Adapter) -> Result<wgpu::Limits> {
    let have = adapter.limits();
    let need = wgpu::Limits::default();
    let name = adapter.get_info().name;
    let checks: [(&'static str, u64, u64); 5] = [
        (
            "max_storage_buffers_per_shader_stage",
            need.max_storage_buffers_per_shader_stage as u64,
            have.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "max_compute_invocations_per_workgroup",
            need.max_compute_invocations_per_workgroup as u64,
            have.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroup_storage_size",
            need.max_compute_workgroup_storage_size as u64,
            have.max_compute_workgroup_storage_size as u64,
        ),
        (
            "max_compute_workgroups_per_dimension",
            need.max_compute_workgroups_per_dimension as u64,
            have.max_compute_workgroups_per_dimension as u64,
        ),
        (
            "max_storage_buffer_binding_size",
            need.max_storage_buffer_binding_size,
            have.max_storage_buffer_binding_size,
        ),
    ];
    for (limit, needed, has) in checks {
        if has < needed {
            return Err(DeviceError::LimitTooLow {
                adapter: name,
                limit,
                needed,
                has,
            });
        }
    }
    Ok(wgpu::Limits {
        max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
        max_buffer_size: have.max_buffer_size,
        ..need
    })
}

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub(super) pipelines: PipelineCache,
    pending: Mutex<Option<wgpu::CommandEncoder>>,
    mem: Arc<MemCounter>,
    /// Errors that escaped every scope (wgpu's default handler would panic on them).
    uncaptured: Arc<Mutex<Vec<String>>>,
}

impl GpuContext {
    /// Chooses an adapter from the environment and opens a device on it.
    pub fn from_env() -> Result<Self> {
        let instance = select::instance_from_env();
        let adapter = select::choose(select::enumerate(&instance))?;
        Self::from_adapter(&adapter)
    }

    pub fn from_adapter(adapter: &wgpu::Adapter) -> Result<Self> {
        let info = AdapterSummary::from_info(&adapter.get_info());
        let limits = required_limits(adapter)?;
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("dsrsq"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|source| DeviceError::RequestDevice {
            adapter: info.name.clone(),
            source,
        })?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        Ok(Self {
            device,
            queue,
            adapter: info,
            limits,
            features,
            pipelines: PipelineCache::default(),
            pending: Mutex::new(None),
            mem: Arc::new(MemCounter::default()),
            uncaptured,
        })
    }

    pub fn memory(&self) -> &MemCounter {
        &self.mem
    }

    pub fn pipelines_cached(&self) -> usize {
        self.pipelines.len()
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they caught
    /// into an error naming `op`.
    pub fn scoped<R>(&self, op: &str, f: impl FnOnce() -> R) -> Result<R> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let r = f();
        let val_err = pollster::block_on(val.pop());
        let oom_err = pollster::block_on(oom.pop());
        if let Some(e) = val_err {
            return Err(DeviceError::Validation {
                op: op.to_string(),
                message: e.to_string(),
            });
        }
        if let Some(e) = oom_err {
            return Err(DeviceError::OutOfMemory {
                op: op.to_string(),
                message: e.to_string(),
            });
        }
        self.take_uncaptured(op)?;
        Ok(r)
    }

    fn take_uncaptured(&self, op: &str) -> Result<()> {
        let mut v = self.uncaptured.lock().unwrap_or_else(|e| e.into_inner());
        if v.is_empty() {
            return Ok(());
        }
        let message = v.join("; ");
        v.clear();
        Err(DeviceError::Validation {
            op: op.to_string(),
            message,
        })
    }

    fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        let max = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > max {
            return Err(DeviceError::TooLarge {
                what: what.to_string(),
                bytes,
                max,
            });
        }
        Ok(())
    }

    fn track(&self, buffer: wgpu::Buffer, bytes: u64) -> Arc<TrackedBuffer> {
        self.mem.alloc(bytes);
        Arc::new(TrackedBuffer {
            buffer,
            bytes,
            mem: self.mem.clone(),
        })
    }

    const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
        .union(wgpu::BufferUsages::COPY_SRC)
        .union(wgpu::BufferUsages::COPY_DST);

    /// Uploads raw 4-byte elements. Empty tensors still get a 4-byte buffer so they can bind.
    pub fn upload_raw(&self, bytes: &[u8], shape: &[usize], dtype: DType) -> Result<GpuTensor> {
        let numel: usize = shape.iter().product();
        if bytes.len() != numel * 4 {
            return Err(DeviceError::Shape {
                op: "upload",
                detail: format!(
                    "{} bytes for shape {shape:?} of 4-byte elements",
                    bytes.len()
                ),
            });
        }
        let size = (bytes.len() as u64).max(4);
        self.check_size(&format!("tensor of shape {shape:?}"), size)?;
        let buffer = self.scoped("upload", || {
            if bytes.is_empty() {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: 4,
                    usage: Self::USAGE,
                    mapped_at_creation: false,
                })
            } else {
                self.device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: None,
                        contents: bytes,
                        usage: Self::USAGE,
                    })
            }
        })?;
        Ok(GpuTensor {
            buf: self.track(buffer, size),
            shape: shape.to_vec(),
            dtype,
        })
    }

    pub fn upload(&self, data: &[f32], shape: &[usize]) -> Result<GpuTensor> {
        self.upload_raw(bytemuck::cast_slice(data), shape, DType::F32)
    }
    pub fn upload_u32(&self, data: &[u32], shape: &[usize]) -> Result<GpuTensor> {
        self.upload_raw(bytemuck::cast_slice(data), shape, DType::U32)
    }
    pub fn upload_i32(&self, data: &[i32], shape: &[usize]) -> Result<GpuTensor> {
        self.upload_raw(bytemuck::cast_slice(data), shape, DType::I32)
    }

    /// A zero-filled tensor (wgpu zero-initializes new buffers).
    pub fn zeros(&self, shape: &[usize], dtype: DType) -> Result<GpuTensor> {
        let numel: usize = shape.iter().product();
        let size = (numel as u64 * 4).max(4);
        self.check_size(&format!("tensor of shape {shape:?}"), size)?;
        let buffer = self.scoped("alloc", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: Self::USAGE,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuTensor {
            buf: self.track(buffer, size),
            shape: shape.to_vec(),
            dtype,
        })
    }

    /// Overwrites a tensor's contents from the host (queued; ordered with pending work).
    pub fn write(&self, t: &GpuTensor, data: &[f32]) -> Result<()> {
        if data.len() != t.numel() {
            return Err(DeviceError::Shape {
                op: "write",
                detail: format!("{} values into shape {:?}", data.len(), t.shape),
            });
        }
        // Work recorded before this write must run first.
        self.flush()?;
        if !data.is_empty() {
            self.scoped("write", || {
                self.queue
                    .write_buffer(t.buffer(), 0, bytemuck::cast_slice(data))
            })?;
        }
        Ok(())
    }

    /// Records into the pending encoder, creating it on first use.
    pub fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut slot = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let enc = slot.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("batch"),
                })
        });
        f(enc)
    }

    /// Submits everything recorded so far as one command buffer.
    pub fn flush(&self) -> Result<()> {
        // The lock is held until the submit returns: otherwise another thread's flush could find
        // the slot empty while this one is still between take and submit, map its staging buffer
        // before the copy into it was submitted, and read stale zeros.
        let mut slot = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(enc) = slot.take() {
            self.scoped("submit", || {
                self.queue.submit(Some(enc.finish()));
            })?;
        }
        Ok(())
    }

    /// Blocks until the device is idle.
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| DeviceError::Readback {
                op: "sync".into(),
                message: e.to_string(),
            })?;
        self.take_uncaptured("sync")
    }

    /// Copies a tensor back to the host as raw 4-byte words; submits pending work first.
    pub fn download_raw(&self, t: &GpuTensor) -> Result<Vec<u8>> {
        let bytes = t.numel() as u64 * 4;
        if bytes == 0 {
            self.flush()?;
            return Ok(Vec::new());
        }
        let staging = self.scoped("download", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.with_encoder(|enc| enc.copy_buffer_to_buffer(t.buffer(), 0, &staging, 0, bytes));
            staging
        })?;
        self.flush()?;
        self.read_mapped(&staging, "download")
    }

    fn read_mapped(&self, staging: &wgpu::Buffer, op: &str) -> Result<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| DeviceError::Readback {
                op: op.into(),
                message: e.to_string(),
            })?;
        let mapped = rx.recv().map_err(|e| DeviceError::Readback {
            op: op.into(),
            message: e.to_string(),
        })?;
        mapped.map_err(|e| DeviceError::Readback {
            op: op.into(),
            message: e.to_string(),
        })?;
        let out = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| DeviceError::Readback {
                    op: op.into(),
                    message: e.to_string(),
                })?;
            view.to_vec()
        };
        staging.unmap();
        self.take_uncaptured(op)?;
        Ok(out)
    }

    pub fn download(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.download_raw(t)?))
    }
    pub fn download_u32(&self, t: &GpuTensor) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.download_raw(t)?))
    }

    /// Whether `time_gpu` can read device timestamps on this adapter.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
        )
    }

    /// Runs `f` (which records dispatches) and returns the device time between its first and
    /// last command, in seconds, when the adapter has timestamp queries; `None` otherwise.
    pub fn time_gpu<R>(&self, f: impl FnOnce() -> Result<R>) -> Result<(R, Option<f64>)> {
        if !self.has_timestamps() {
            let r = f()?;
            self.sync()?;
            return Ok((r, None));
        }
        self.flush()?;
        let (set, resolve) = self.scoped("timestamps", || {
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timer"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timer"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            self.with_encoder(|enc| enc.write_timestamp(&set, 0));
            (set, resolve)
        })?;
        let r = f()?;
        let staging = self.scoped("timestamps", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timer-read"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.with_encoder(|enc| {
                enc.write_timestamp(&set, 1);
                enc.resolve_query_set(&set, 0..2, &resolve, 0);
                enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
            });
            staging
        })?;
        self.flush()?;
        let ticks: Vec<u64> =
            bytemuck::pod_collect_to_vec(&self.read_mapped(&staging, "timestamps")?);
        let period_ns = self.queue.get_timestamp_period() as f64;
        let secs = ticks[1].saturating_sub(ticks[0]) as f64 * period_ns * 1e-9;
        Ok((r, Some(secs)))
    }
}
