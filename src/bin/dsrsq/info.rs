//! `dsrsq info`: what hardware the toolchain sees and what it will run on.

use anyhow::Result;
use dsrsq::device::{select, GpuContext};

pub fn run() -> Result<()> {
    let instance = select::instance_from_env();
    let adapters = select::enumerate(&instance);
    println!(
        "backends allowed: {:?} (WGPU_BACKEND={})",
        select::backends_from_env(),
        std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "unset".into())
    );
    println!("adapters found: {}", adapters.len());
    for (i, a) in adapters.iter().enumerate() {
        println!(
            "  [{i}] {}",
            select::AdapterSummary::from_info(&a.get_info())
        );
    }
    println!(
        "CPU backend: {} threads (rayon; set RAYON_NUM_THREADS to change)",
        rayon::current_num_threads()
    );
    match GpuContext::from_env() {
        Ok(ctx) => {
            println!("chosen: {}", ctx.adapter);
            let l = &ctx.limits;
            println!("limits requested:");
            println!(
                "  max_storage_buffer_binding_size {} MiB, max_buffer_size {} MiB",
                l.max_storage_buffer_binding_size >> 20,
                l.max_buffer_size >> 20
            );
            println!(
                "  workgroup storage {} B, invocations/workgroup {}, workgroups/dim {}, storage buffers/stage {}",
                l.max_compute_workgroup_storage_size,
                l.max_compute_invocations_per_workgroup,
                l.max_compute_workgroups_per_dimension,
                l.max_storage_buffers_per_shader_stage
            );
            println!("features enabled: {:?}", ctx.features);
            println!(
                "GPU timestamps: {}",
                if ctx.has_timestamps() { "yes" } else { "no" }
            );
        }
        Err(e) => {
            println!("no usable wgpu adapter: {e}");
            println!("the CPU backend will be used");
        }
    }
    Ok(())
}
