// The uniform at binding 0 of 2 layernorm kernels (backward, backward_params); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { rows: u32, cols: u32, chunk: u32, chunks: u32 }
