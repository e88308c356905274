// The uniform at binding 0 of 2 heads kernels (split, merge); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { total: u32, n: u32, h: u32, d: u32 }
