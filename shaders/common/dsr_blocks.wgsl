// The uniform at binding 0 of 2 dsr kernels (mark_ties, mark_selected); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params { nb: u32, _p0: u32, _p1: u32, _p2: u32 }
