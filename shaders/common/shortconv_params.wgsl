// The uniform at binding 0 of 3 shortconv kernels (backward_dw, backward_dx, forward); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { rows: u32, len: u32, cols: u32, taps: u32, chunk: u32, chunks: u32, _p0: u32, _p1: u32 }
