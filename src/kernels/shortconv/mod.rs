//! A short causal depthwise convolution along each sequence, added to its input:
//! `y[s,t,c] = x[s,t,c] + Σ_{j<K, j≤t} w[j,c]·x[s,t−j,c]` (the "short convolution" of H3,
//! Hyena and Based, and the token shift of RWKV when K = 1 at lag 1).
//!
//! Why: recall tasks (MQAR, passkey) are solved by an induction circuit whose first half
//! copies the previous token into the current row. Plain attention has to learn that from
//! RoPE, which a 2-layer model at our sizes does slowly; a K-tap convolution gives every row
//! its predecessors directly, so one attention layer can match "key at t−1" and read the
//! value at t. The residual form (the identity plus the taps, taps initialised to 0) starts
//! the model exactly where it would be without the convolution, and weight decay pulls it
//! back towards the identity rather than towards zero.
//!
//! Shape legend: `x, y, dy, dx: [seqs·len, cols]` (row `s·len + t`, rows of one sequence
//! contiguous, the convolution never reads across sequences), `w, dw: [taps, cols]` (tap `j`
//! reads lag `j`; tap 0 is a per-channel gain on the row itself).
//!
//! Choices:
//! - `dw` is a sum over every row. WGSL has no float atomics, so it is computed
//!   deterministically in two steps, as LayerNorm's dgamma: `backward_dw.wgsl` sums fixed
//!   chunks of `DW_CHUNK` rows into partials `[chunks, taps·cols]`, then the element-wise
//!   column-sum kernel adds the partials in chunk order. The CPU uses the same chunking and
//!   order, so the two agree to the last bit unless a driver fuses the multiply-add.
//! - One thread per output element for `y` and `dx`: K is small (≤ 8 in practice), so each
//!   thread reads K values and there is nothing to share between threads.

pub mod cpu;
pub mod gpu;

use crate::device::KernelSpec;
use crate::kernel_spec;

/// Threads per workgroup of every kernel of the family.
pub const WG: u32 = 64;
/// Rows summed per partial in the `dw` reduction.
pub const DW_CHUNK: usize = 64;

pub static FORWARD: KernelSpec = kernel_spec!(
    "shortconv/forward",
    "shortconv/forward.wgsl",
    "main",
    crate::kernels::shortconv::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD_DX: KernelSpec = kernel_spec!(
    "shortconv/backward_dx",
    "shortconv/backward_dx.wgsl",
    "main",
    crate::kernels::shortconv::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD_DW: KernelSpec = kernel_spec!(
    "shortconv/backward_dw",
    "shortconv/backward_dw.wgsl",
    "main",
    crate::kernels::shortconv::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &BACKWARD_DX, &BACKWARD_DW];

/// The sizes of one call: `rows = seqs·len` rows of `cols` channels, `taps` weights per
/// channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvDims {
    pub seqs: usize,
    pub len: usize,
    pub cols: usize,
    pub taps: usize,
}

impl ConvDims {
    pub fn rows(&self) -> usize {
        self.seqs * self.len
    }

    /// `Err(detail)` when `x` (`x_len` elements) and `w` (`w_len`) do not fit these sizes.
    pub fn check(&self, x_len: usize, w_len: usize) -> Result<(), String> {
        if self.len == 0 || self.cols == 0 || self.taps == 0 {
            return Err(format!("empty sizes {self:?}"));
        }
        if x_len != self.rows() * self.cols {
            return Err(format!(
                "x has {x_len} elements, {self:?} needs {}",
                self.rows() * self.cols
            ));
        }
        if w_len != self.taps * self.cols {
            return Err(format!(
                "w has {w_len} elements, {self:?} needs {}",
                self.taps * self.cols
            ));
        }
        Ok(())
    }
}
