// The uniform at binding 0 of 4 attention kernels (backward_dkdv, backward_dq, backward_preprocess, forward); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { n: u32, d: u32, scale: f32, rows: u32 }
