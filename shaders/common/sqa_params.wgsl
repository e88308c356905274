// The uniform at binding 0 of 14 sqa kernels (backward_dkdv, backward_dq, backward_preprocess, count, forward, kmeans_assign, kmeans_init, kmeans_update, normalize, recall, recall_mean, route, scan, scatter); the Rust side
// is its `gpu_params!` struct, checked against this layout by tests/it/shaders_validate.rs.
struct Params {
    bh: u32, n: u32, d: u32, c: u32,
    kk: u32, window: u32, sink: u32, scale: f32,
    len: u32, per: u32, o1: u32, o2: u32,
    tie: f32, _p0: u32, _p1: u32, _p2: u32,
}
