// The uniform at binding 0 of 4 gca kernels (backward_dkdv, backward_dq, backward_dw, forward); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { l: u32, d: u32, chunk: u32, top_k: u32, heads: u32, nc: u32, rows: u32, scale: f32 }
