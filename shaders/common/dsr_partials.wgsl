// The uniform at binding 0 of 3 dsr kernels (stats_partial, loss_kl, kl_grad); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { n: u32, groups: u32, _p0: u32, _p1: u32 }
