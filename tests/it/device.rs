//! The device layer itself: byte accounting, pipeline reuse across shapes, batching, errors
//! surfaced as `Result`s, size limits and timestamps.

use crate::common;

use dsrsq::device::DType;
use dsrsq::kernels::elementwise::{cpu, gpu};

#[test]
fn memory_counter_counts_alloc_free_and_peak() {
    let m = dsrsq::device::MemCounter::default();
    m.alloc(100);
    m.alloc(50);
    m.free(100);
    assert_eq!((m.current(), m.peak()), (50, 150));
    m.reset_peak();
    assert_eq!(m.peak(), 50);
}

#[test]
fn device_buffers_are_counted() {
    let Some(ctx) = common::gpu("device_buffers_are_counted") else {
        return;
    };
    let a = ctx.zeros(&[1 << 20], DType::F32).unwrap();
    let b = ctx.zeros(&[1 << 20], DType::F32).unwrap();
    // Other tests share the context, but they only ever free their own buffers: while `a` and
    // `b` live, at least their bytes are counted.
    assert!(ctx.memory().current() >= (a.numel() + b.numel()) as u64 * 4);
    assert!(ctx.memory().peak() >= 8 << 20);
}

#[test]
fn validation_errors_become_results() {
    let Some(ctx) = common::gpu("validation_errors_become_results") else {
        return;
    };
    // MAP_READ may only be combined with COPY_DST: wgpu reports a validation error.
    let r = ctx.scoped("bad buffer", || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    });
    let err = r.expect_err("invalid usage must be an error").to_string();
    assert!(err.contains("bad buffer"), "{err}");
}

#[test]
fn one_pipeline_serves_every_shape() {
    let Some(ctx) = common::gpu("one_pipeline_serves_every_shape") else {
        return;
    };
    let mut results = Vec::new();
    for n in [3usize, 1000, 5] {
        let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
        let gx = ctx.upload(&x, &[n]).unwrap();
        results.push((x.clone(), gpu::gelu_forward(ctx, &gx).unwrap()));
    }
    let cached = ctx.pipelines_cached();
    for (x, y) in &results {
        let got = ctx.download(y).unwrap();
        common::assert_ok(dsrsq::kernels::check::compare(
            "gelu batch",
            &got,
            &cpu::gelu_forward(x),
            dsrsq::kernels::check::Tol::new(1e-6, 1e-5),
        ));
    }
    // Three shapes, recorded into one batch, no new pipeline after the first.
    let x = ctx.upload(&[1.0; 7], &[7]).unwrap();
    gpu::gelu_forward(ctx, &x).unwrap();
    assert_eq!(ctx.pipelines_cached(), cached);
}

#[test]
fn oversized_tensor_is_a_clear_error() {
    let Some(ctx) = common::gpu("oversized_tensor_is_a_clear_error") else {
        return;
    };
    let huge = (ctx.limits.max_storage_buffer_binding_size / 4 + 1) as usize;
    let err = ctx.zeros(&[huge], DType::F32).unwrap_err().to_string();
    assert!(err.contains("at most"), "{err}");
}

#[test]
fn upload_with_wrong_length_is_an_error() {
    let Some(ctx) = common::gpu("upload_with_wrong_length_is_an_error") else {
        return;
    };
    let err = ctx
        .upload(&[1.0, 2.0, 3.0], &[2, 2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("shape"), "{err}");
}

#[test]
fn gpu_timestamps_measure_work_when_available() {
    let Some(ctx) = common::gpu("gpu_timestamps_measure_work_when_available") else {
        return;
    };
    let x = ctx.upload(&vec![0.5; 1 << 16], &[1 << 16]).unwrap();
    let (y, secs) = ctx.time_gpu(|| gpu::gelu_forward(ctx, &x)).unwrap();
    assert_eq!(y.numel(), 1 << 16);
    if ctx.has_timestamps() {
        let s = secs.expect("timestamps enabled");
        assert!(s > 0.0 && s < 60.0, "{s}");
    } else {
        assert!(secs.is_none());
    }
}
