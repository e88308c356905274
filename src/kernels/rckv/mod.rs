//! RCKV — Rotating Compressive KV Cache: per-layer latent compression of keys and values, its
//! reconstruction loss, and the ring buffer of latents that stands in for the context's KV cache.
//!
//! Shape legend: `n` tokens; `dm` = d_model (all heads' keys, head-major inside `dm`);
//! `k, v: [n, dm]`; `x = [k; v]` concatenated per token: `[n, 2·dm]`; `latent` = compressed width
//! (64 in the seed config); `D: [latent, 2·dm]`, `U: [2·dm, latent]`; `c = x·Dᵀ: [n, latent]`;
//! `x̂ = c·Uᵀ: [n, 2·dm]`, split back into `k̂, v̂: [n, dm]`. The ring holds `capacity` latent
//! slots (`[capacity, latent]`) with per-slot source position and write step (u32).
//!
//! Choices:
//! - Both products are `matmul` calls (CPU and GPU). The only RCKV-specific kernels are the
//!   per-token concat of `k, v` into `x` and the split of `x̂` into `k̂, v̂` (each is the other's
//!   backward), because `matmul` takes whole contiguous operands and cannot read the `k` / `v`
//!   column blocks of `x` in place.
//! - Compression loss `L = mean((x̂ − x)²)`, the mean over all `n·2·dm` elements (so its size
//!   does not depend on the batch or the model width). `dL/dx̂ = 2(x̂ − x)/(n·2·dm)` flows back
//!   through both products; `x` also gets the direct term `−dL/dx̂`. The WGSL is one fused pass
//!   (gradient + one partial sum of squares per workgroup) and a one-workgroup sum of the
//!   partials in a fixed order: deterministic, as WGSL has no float atomics.
//! - Ring: the first `sink` written tokens fill slots `0..sink` and stay; token number
//!   `t ≥ sink` goes to `sink + (t − sink) mod (capacity − sink)`. `t` counts the tokens that
//!   entered the ring (after the write policy) and is also the slot's stored "write step", so
//!   age order is increasing step. All slot arithmetic is host state ([`RingState`]), shared by
//!   the CPU and GPU rings, so the two agree by construction; the GPU keeps the slot storage and
//!   metadata in device buffers and only receives small host arrays (write plans).
//! - A batch of `m` writes behaves exactly as `m` single writes; only the writes that would not
//!   be overwritten later in the same batch are kept (every sink write, and the last
//!   `capacity − sink` rotating ones), so the GPU scatter never has two writes to one slot.
//! - `WritePolicy::Salient` filters on the host on both paths: saliences and positions are small
//!   host arrays of `m` values, and the filter decides which rows of the (device) latents are
//!   scattered, so nothing is read back.
//! - Steps and positions are u32 on both paths; a write that would push the step counter past
//!   `u32::MAX` is refused with an error instead of wrapping.

pub mod cpu;
pub mod gpu;
pub mod gpu_ring;
pub mod ring;

use crate::device::{DeviceError, KernelSpec, Result};
use crate::kernel_spec;

pub use gpu_ring::GpuRingBuffer;
pub use ring::RingBuffer;

/// Threads per workgroup of the element-wise RCKV kernels.
pub const WG: u32 = 256;

pub static CONCAT: KernelSpec = kernel_spec!(
    "rckv/concat",
    "rckv/concat.wgsl",
    "main",
    crate::kernels::rckv::gpu::CopyParams,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static SPLIT: KernelSpec = kernel_spec!(
    "rckv/split",
    "rckv/split.wgsl",
    "main",
    crate::kernels::rckv::gpu::CopyParams,
    [Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static MSE: KernelSpec = kernel_spec!(
    "rckv/mse",
    "rckv/mse.wgsl",
    "main",
    crate::kernels::rckv::gpu::MseParams,
    [Read, Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static SUM_PARTIALS: KernelSpec = kernel_spec!(
    "rckv/sum_partials",
    "rckv/sum_partials.wgsl",
    "main",
    crate::kernels::rckv::gpu::SumParams,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static RING_WRITE: KernelSpec = kernel_spec!(
    "rckv/ring_write",
    "rckv/ring_write.wgsl",
    "main",
    crate::kernels::rckv::gpu_ring::WriteParams,
    [Read, Read, ReadWrite, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static RING_GATHER: KernelSpec = kernel_spec!(
    "rckv/ring_gather",
    "rckv/ring_gather.wgsl",
    "main",
    crate::kernels::rckv::gpu_ring::GatherParams,
    [Read, Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[
    &CONCAT,
    &SPLIT,
    &MSE,
    &SUM_PARTIALS,
    &RING_WRITE,
    &RING_GATHER,
];

fn shape_err(op: &'static str, detail: String) -> DeviceError {
    DeviceError::Shape { op, detail }
}

/// Which context tokens enter the ring.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum WritePolicy {
    /// Every token offered is written.
    #[default]
    All,
    /// Only tokens whose salience (given by the caller) is `>= threshold`; a NaN salience is
    /// never written.
    Salient { threshold: f32 },
}

/// Per-layer RCKV settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RckvConfig {
    /// Width of the latent `c` (64 in the seed config).
    pub latent: usize,
    /// Ring slots per layer (1024 in the seed config).
    pub capacity: usize,
    /// Leading slots that are never evicted.
    pub sink: usize,
    pub policy: WritePolicy,
}

impl Default for RckvConfig {
    fn default() -> Self {
        Self::seed()
    }
}

impl RckvConfig {
    /// The seed configuration: latent 64, 1024 slots, 16 sinks (one DSR block), write all.
    pub const fn seed() -> Self {
        Self {
            latent: 64,
            capacity: 1024,
            sink: 16,
            policy: WritePolicy::All,
        }
    }

    /// `latent ≥ 1`, `capacity > sink` (at least one rotating slot), a non-NaN threshold, and
    /// sizes that fit the kernels' u32 indices.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "rckv_config";
        if self.latent == 0 {
            return Err(shape_err(OP, "latent must be at least 1".into()));
        }
        if self.capacity <= self.sink {
            return Err(shape_err(
                OP,
                format!(
                    "capacity {} must exceed sink {} (no rotating slot otherwise)",
                    self.capacity, self.sink
                ),
            ));
        }
        if let WritePolicy::Salient { threshold } = self.policy {
            if threshold.is_nan() {
                return Err(shape_err(OP, "salience threshold is NaN".into()));
            }
        }
        let fits = self
            .capacity
            .checked_mul(self.latent)
            .is_some_and(|e| u32::try_from(e).is_ok());
        if !fits {
            return Err(shape_err(
                OP,
                format!(
                    "capacity {} × latent {} exceeds 32-bit indices",
                    self.capacity, self.latent
                ),
            ));
        }
        Ok(())
    }

    /// Rows of a `write` batch the policy lets in, in order. `saliences` must hold one value per
    /// row under `Salient` (it is ignored under `All`).
    pub fn accepted_rows(&self, m: usize, saliences: Option<&[f32]>) -> Result<Vec<usize>> {
        match self.policy {
            WritePolicy::All => Ok((0..m).collect()),
            WritePolicy::Salient { threshold } => {
                let s = saliences.ok_or_else(|| {
                    shape_err("rckv_write", "the salient policy needs saliences".into())
                })?;
                if s.len() != m {
                    return Err(shape_err(
                        "rckv_write",
                        format!("{} saliences for {m} tokens", s.len()),
                    ));
                }
                Ok((0..m).filter(|&i| s[i] >= threshold).collect())
            }
        }
    }
}

/// Sizes of one compression call, checked against the operand lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RckvDims {
    pub n: usize,
    pub dm: usize,
    pub latent: usize,
}

impl RckvDims {
    /// Width of `x = [k; v]`.
    pub fn width(&self) -> usize {
        2 * self.dm
    }
    /// Elements of `x` (the MSE's denominator).
    pub fn x_len(&self) -> usize {
        self.n * self.width()
    }
    /// Elements of `D` and of `U`.
    pub fn proj_len(&self) -> usize {
        self.latent * self.width()
    }

    /// Checks that `what` holds exactly `want` elements.
    pub(crate) fn expect(op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
        if got != want {
            return Err(shape_err(
                op,
                format!("{what} has {got} elements, expected {want}"),
            ));
        }
        Ok(())
    }

    /// `latent ≥ 1`, `dm ≥ 1`, and every buffer within u32 indexing.
    pub(crate) fn check(&self, op: &'static str) -> Result<()> {
        if self.latent == 0 || self.dm == 0 {
            return Err(shape_err(
                op,
                format!("{self:?}: latent and dm must be ≥ 1"),
            ));
        }
        let big = self.x_len().max(self.proj_len()).max(self.n * self.latent);
        if u32::try_from(big).is_err() {
            return Err(shape_err(op, format!("{self:?} exceeds 32-bit indices")));
        }
        Ok(())
    }
}

/// One accepted write that survives its batch: row of the batch, destination slot, and the
/// write step stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedWrite {
    pub row: usize,
    pub slot: usize,
    pub step: u32,
}

/// The ring's host-side bookkeeping: how many tokens have entered it. Everything else (slot of
/// a token, live length, age order) follows from that count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingState {
    pub capacity: usize,
    pub sink: usize,
    /// Tokens written since the last reset (the next token's write step).
    pub written: u64,
}

impl RingState {
    pub fn new(cfg: &RckvConfig) -> Self {
        Self {
            capacity: cfg.capacity,
            sink: cfg.sink,
            written: 0,
        }
    }

    /// Rotating slots (`capacity − sink`, ≥ 1 for a validated config).
    pub fn rotating(&self) -> usize {
        self.capacity - self.sink
    }

    /// Slot of the token with write step `t`.
    pub fn slot_of(&self, t: u64) -> usize {
        let sink = self.sink as u64;
        if t < sink {
            t as usize
        } else {
            self.sink + ((t - sink) % self.rotating() as u64) as usize
        }
    }

    /// Live slots.
    pub fn len(&self) -> usize {
        self.written.min(self.capacity as u64) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Offset (within the rotating part) of the oldest live rotating slot: the write head once
    /// the ring has wrapped, 0 before.
    pub fn oldest_rotating(&self) -> usize {
        let rot = self.rotating() as u64;
        let past_sink = self.written.saturating_sub(self.sink as u64);
        if past_sink >= rot {
            (past_sink % rot) as usize
        } else {
            0
        }
    }

    /// Slot read at age rank `i` (`i < len()`): sinks in order, then rotating slots oldest first.
    pub fn slot_at_age(&self, i: usize) -> usize {
        if i < self.sink {
            i
        } else {
            self.sink + (self.oldest_rotating() + i - self.sink) % self.rotating()
        }
    }

    /// All live slots, oldest first.
    pub fn age_order(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.slot_at_age(i)).collect()
    }

    /// Plans `accepted` (rows of the batch, in order) as consecutive single writes and advances
    /// the counter. Returns only the writes that survive the batch, in write order; their slots
    /// are distinct. Fails (leaving the state unchanged) if a step would pass `u32::MAX`.
    pub fn plan_writes(&mut self, accepted: &[usize]) -> Result<Vec<PlannedWrite>> {
        let t0 = self.written;
        let end = t0 + accepted.len() as u64;
        if end > u32::MAX as u64 + 1 {
            return Err(shape_err(
                "rckv_write",
                format!("write step {end} would overflow the 32-bit step counter; reset the ring"),
            ));
        }
        let (sink, rot) = (self.sink as u64, self.rotating() as u64);
        let plan = accepted
            .iter()
            .enumerate()
            .map(|(j, &row)| (t0 + j as u64, row))
            // A rotating write is overwritten iff `rot` more writes follow it in this batch.
            .filter(|&(t, _)| t < sink || t + rot >= end)
            .map(|(t, row)| PlannedWrite {
                row,
                slot: self.slot_of(t),
                step: t as u32,
            })
            .collect();
        self.written = end;
        Ok(plan)
    }
}
