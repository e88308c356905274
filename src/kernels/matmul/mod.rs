//! Batched matrix multiply `C = op(A)·op(B)` (forward and backward), f32, row-major.
//!
//! Shape legend: `batch` independent products; `C: [batch, m, n]` (`[m, n]` when `batch` is 1); `A: [batch, m, k]`, or
//! `[batch, k, m]` when `trans_a`; `B: [batch, k, n]`, or `[batch, n, k]` when `trans_b`; with
//! `broadcast_b` a single `B` (`[k, n]` / `[n, k]`) serves every batch (the weight case
//! `x[B·T, C]·W[C, 3C]`).
//!
//! Choices:
//! - Every product, including each backward product, is lowered to a [`GemmPlan`]: per-operand
//!   row / column / batch strides. A transpose is a stride swap and a broadcast is batch stride 0,
//!   so one WGSL kernel and one CPU routine serve all of them, and the backward never copies or
//!   transposes a buffer.
//! - The WGSL kernel is register-blocked: a 16×16 workgroup computes a 64×64 tile of `C`, each
//!   thread a 4×4 block whose rows/columns are 16 apart, so the shared-memory reads of a warp hit
//!   consecutive words and the global writes coalesce. A and B are staged through shared memory in
//!   `TK`-deep slices; the loader walks whichever dimension is contiguous in global memory
//!   (a uniform flag), and the tiles are padded by one column so transposing stores do not all land
//!   in one bank.
//! - The batch sum of a broadcast `dB` is folded into the reduction dimension when `A` is not
//!   transposed (`A` is then one contiguous `[batch·m, k]` matrix); otherwise per-batch products go
//!   to a scratch buffer that `reduce_batch` sums in a fixed order (WGSL has no float atomics).
//! - The CPU path calls the `gemm` crate with the same strides; it picks its own blocking and
//!   threads. Many small products are spread over batches with rayon instead.

pub mod cpu;
pub mod gpu;

use crate::device::{DeviceError, KernelSpec};
use crate::kernel_spec;

/// Threads per side of a workgroup.
pub const TS: u32 = 16;
/// Each thread computes an `RB × RB` block of `C`; the workgroup tile is `TS·RB` square.
pub const RB: u32 = 4;
/// Depth of the shared-memory slices of A and B.
pub const TK: u32 = 16;
/// Side of the `C` tile one workgroup computes.
pub const TILE: u32 = TS * RB;
/// Workgroup size of the batch reduction.
pub const WG: u32 = 256;

pub static FORWARD: KernelSpec = kernel_spec!(
    "matmul/forward",
    "matmul/forward.wgsl",
    "main",
    crate::kernels::matmul::gpu::Params,
    [Read, Read, ReadWrite],
    [("TS", TS), ("RB", RB), ("TK", TK)]
);
pub static REDUCE_BATCH: KernelSpec = kernel_spec!(
    "matmul/reduce_batch",
    "matmul/reduce_batch.wgsl",
    "main",
    crate::kernels::matmul::gpu::ReduceParams,
    [Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &REDUCE_BATCH];

/// One batched product as the user sees it (see the module docs for the layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulDims {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub broadcast_b: bool,
}

impl MatmulDims {
    /// One product `C[m, n] = A[m, k] · B[k, n]`; the builders below change that.
    pub const fn new(m: usize, k: usize, n: usize) -> Self {
        Self {
            batch: 1,
            m,
            k,
            n,
            trans_a: false,
            trans_b: false,
            broadcast_b: false,
        }
    }

    /// `batch` products, each with its own `A` and `B` (see [`MatmulDims::broadcast`]).
    pub const fn batched(self, batch: usize) -> Self {
        Self { batch, ..self }
    }

    /// `A` is stored `[k, m]` (each product reads its transpose).
    pub const fn transpose_a(self) -> Self {
        Self {
            trans_a: true,
            ..self
        }
    }

    /// `B` is stored `[n, k]`.
    pub const fn transpose_b(self) -> Self {
        Self {
            trans_b: true,
            ..self
        }
    }

    /// One `B` shared by every product of the batch.
    pub const fn broadcast(self) -> Self {
        Self {
            broadcast_b: true,
            ..self
        }
    }

    /// Elements `A` must hold.
    pub fn a_len(&self) -> usize {
        self.batch * self.m * self.k
    }
    /// Elements `B` must hold (one matrix when broadcast).
    pub fn b_len(&self) -> usize {
        let copies = if self.broadcast_b { 1 } else { self.batch };
        copies * self.k * self.n
    }
    /// Elements of `C`.
    /// `[batch, m, n]`, or `[m, n]` when `batch == 1` (the model's weight products), so a
    /// product of 2-D activations stays 2-D.
    pub fn c_shape(&self) -> Vec<usize> {
        if self.batch == 1 {
            vec![self.m, self.n]
        } else {
            vec![self.batch, self.m, self.n]
        }
    }
    pub fn c_len(&self) -> usize {
        self.batch * self.m * self.n
    }

    /// Checks operand lengths against the dims.
    pub fn validate(&self, a_len: usize, b_len: usize) -> Result<(), DeviceError> {
        if a_len != self.a_len() || b_len != self.b_len() {
            return Err(DeviceError::Shape {
                op: "matmul",
                detail: format!(
                    "{self:?} needs A of {} and B of {} elements, got {a_len} and {b_len}",
                    self.a_len(),
                    self.b_len()
                ),
            });
        }
        Ok(())
    }

    /// `op(A)` element `(i, kk)` of batch `z` lives at `z·bs + i·rs + kk·cs`.
    pub fn a_operand(&self) -> Operand {
        let (m, k) = (self.m, self.k);
        if self.trans_a {
            Operand::new(1, m, m * k)
        } else {
            Operand::new(k, 1, m * k)
        }
    }

    /// `op(B)` element `(kk, j)` of batch `z` lives at `z·bs + kk·rs + j·cs`.
    pub fn b_operand(&self) -> Operand {
        let (k, n) = (self.k, self.n);
        let bs = if self.broadcast_b { 0 } else { k * n };
        if self.trans_b {
            Operand::new(1, k, bs)
        } else {
            Operand::new(n, 1, bs)
        }
    }

    /// The forward product as a strided plan.
    pub fn plan(&self) -> GemmPlan {
        GemmPlan {
            batch: self.batch,
            m: self.m,
            k: self.k,
            n: self.n,
            a: self.a_operand(),
            b: self.b_operand(),
        }
    }
}

/// Element strides of one operand matrix: row, column and batch (0 = shared by every batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operand {
    pub rs: usize,
    pub cs: usize,
    pub bs: usize,
}

impl Operand {
    pub const fn new(rs: usize, cs: usize, bs: usize) -> Self {
        Self { rs, cs, bs }
    }
    /// The same storage read as the transposed matrix.
    pub const fn t(self) -> Self {
        Self::new(self.cs, self.rs, self.bs)
    }
    /// Largest element offset touched for an `rows × cols` matrix over `batch` batches, plus one.
    fn extent(&self, batch: usize, rows: usize, cols: usize) -> usize {
        if batch == 0 || rows == 0 || cols == 0 {
            return 0;
        }
        (batch - 1) * self.bs + (rows - 1) * self.rs + (cols - 1) * self.cs + 1
    }
}

/// `C[z] = A[z]·B[z]` with `A` seen as `m × k`, `B` as `k × n` through strides; `C` is always
/// written contiguous `[batch, m, n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmPlan {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a: Operand,
    pub b: Operand,
}

impl GemmPlan {
    /// Output elements.
    pub fn c_len(&self) -> usize {
        self.batch * self.m * self.n
    }
    /// Checks that every strided access stays inside buffers of the given lengths.
    pub fn check(&self, op: &'static str, a_len: usize, b_len: usize) -> Result<(), DeviceError> {
        let need_a = self.a.extent(self.batch, self.m, self.k);
        let need_b = self.b.extent(self.batch, self.k, self.n);
        if need_a > a_len || need_b > b_len {
            return Err(DeviceError::Shape {
                op,
                detail: format!(
                    "{self:?} reads {need_a} elements of A and {need_b} of B, buffers hold {a_len} and {b_len}"
                ),
            });
        }
        Ok(())
    }
}

/// Which buffer a backward product reads as its left or right operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    A,
    B,
    DC,
}

/// The products `matmul_backward` runs: `dA` (always one plan) and `dB` (one plan, or per-batch
/// products to be summed over the batch when `sum_batch`), each with its (left, right) inputs.
pub(crate) struct BackwardPlans {
    pub da: GemmPlan,
    pub da_src: (Src, Src),
    pub db: GemmPlan,
    pub db_src: (Src, Src),
    pub sum_batch: bool,
}

/// Lowers the backward of `d` to forward plans reading `A`, `B` and `dC` in place.
pub(crate) fn backward_plans(d: &MatmulDims) -> BackwardPlans {
    let (batch, m, k, n) = (d.batch, d.m, d.k, d.n);
    let a = d.a_operand();
    let b = d.b_operand();
    let dc = Operand::new(n, 1, m * n);
    // d op(A) = dC·op(B)ᵀ (m×k); stored transposed it is op(B)·dCᵀ (k×m).
    let (da, da_src) = if d.trans_a {
        (
            GemmPlan {
                batch,
                m: k,
                k: n,
                n: m,
                a: b,
                b: dc.t(),
            },
            (Src::B, Src::DC),
        )
    } else {
        (
            GemmPlan {
                batch,
                m,
                k: n,
                n: k,
                a: dc,
                b: b.t(),
            },
            (Src::DC, Src::B),
        )
    };
    // d op(B) = op(A)ᵀ·dC (k×n); stored transposed it is dCᵀ·op(A) (n×k).
    let (per_batch, db_src) = if d.trans_b {
        (
            GemmPlan {
                batch,
                m: n,
                k: m,
                n: k,
                a: dc.t(),
                b: a,
            },
            (Src::DC, Src::A),
        )
    } else {
        (
            GemmPlan {
                batch,
                m: k,
                k: m,
                n,
                a: a.t(),
                b: dc,
            },
            (Src::A, Src::DC),
        )
    };
    let (db, sum_batch) = if !d.broadcast_b {
        (per_batch, false)
    } else if !d.trans_a {
        // A is one contiguous [batch·m, k] matrix and dC one [batch·m, n] matrix, so the batch
        // sum is just a longer reduction dimension.
        (
            GemmPlan {
                batch: 1,
                k: batch * m,
                ..per_batch
            },
            false,
        )
    } else {
        (per_batch, true)
    };
    BackwardPlans {
        da,
        da_src,
        db,
        db_src,
        sum_batch,
    }
}
