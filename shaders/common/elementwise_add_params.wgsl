// The uniform at binding 0 of 2 elementwise kernels (add, scale); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { n: u32, alpha: f32, _p0: u32, _p1: u32 }
