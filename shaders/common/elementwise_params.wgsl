// The uniform at binding 0 of 4 elementwise kernels (bias_forward, gelu_forward, gelu_backward, sum_squares); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { n: u32, cols: u32, _p0: u32, _p1: u32 }
