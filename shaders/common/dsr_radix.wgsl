// The uniform at binding 0 of 2 dsr kernels (radix_hist, radix_pick); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { nb: u32, pass_: u32, groups: u32, _p0: u32 }
