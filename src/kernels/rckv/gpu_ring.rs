//! The ring buffer with its slots on the device. The write head is host state ([`RingState`]);
//! each write uploads only a small plan (batch row, slot, position, step per surviving token)
//! and a scatter kernel copies the latents; gathering in age order is a kernel that derives
//! each row's slot from the head, so reading the cache uploads nothing.

use super::ring::{check_batch, RingSlots};
use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor};

crate::gpu_params! {
    pub(crate) struct WriteParams {
        total: u32,
        latent: u32,
        _pad: [u32; 2],
    }
}

crate::gpu_params! {
    pub(crate) struct GatherParams {
        total: u32,
        latent: u32,
        sink: u32,
        rotating: u32,
        oldest: u32,
        _pad: [u32; 3],
    }
}

/// One layer's ring of latent vectors, on the device. Not `Clone`: a clone would share the
/// device buffers but not the host head, and the two would overwrite each other's slots.
#[derive(Debug)]
pub struct GpuRingBuffer {
    cfg: RckvConfig,
    state: RingState,
    /// `[capacity, latent]` f32.
    latents: GpuTensor,
    /// `[capacity]` u32 source positions.
    positions: GpuTensor,
    /// `[capacity]` u32 write steps.
    steps: GpuTensor,
}

impl GpuRingBuffer {
    pub fn new(ctx: &GpuContext, cfg: RckvConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            state: RingState::new(&cfg),
            latents: ctx.zeros(&[cfg.capacity, cfg.latent], DType::F32)?,
            positions: ctx.zeros(&[cfg.capacity], DType::U32)?,
            steps: ctx.zeros(&[cfg.capacity], DType::U32)?,
        })
    }

    pub fn config(&self) -> &RckvConfig {
        &self.cfg
    }

    pub fn state(&self) -> &RingState {
        &self.state
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Empties the ring; fresh zeroed buffers replace the old ones (wgpu zero-fills new
    /// buffers), so the storage matches a reset CPU ring.
    pub fn reset(&mut self, ctx: &GpuContext) -> Result<()> {
        *self = Self::new(ctx, self.cfg)?;
        Ok(())
    }

    /// Writes `m` tokens (`latents: [m, latent]` on the device, `positions: [m]`) as `m` single
    /// writes, after the write policy (`saliences: [m]`, only for `Salient`; filtered on the
    /// host). Returns how many tokens entered the ring. On error nothing is written.
    pub fn write(
        &mut self,
        ctx: &GpuContext,
        latents: &GpuTensor,
        positions: &[u32],
        saliences: Option<&[f32]>,
    ) -> Result<usize> {
        const OP: &str = "rckv_write";
        let l = self.cfg.latent;
        let m = match (latents.dtype, latents.shape.as_slice()) {
            (DType::F32, &[m, w]) if w == l => m,
            _ => {
                return Err(shape_err(
                    OP,
                    format!(
                        "latents must be f32 [m, {l}], got {:?} {:?}",
                        latents.dtype, latents.shape
                    ),
                ))
            }
        };
        check_batch(&self.cfg, latents.numel(), Some(m), positions)?;
        if u32::try_from(latents.numel()).is_err() {
            return Err(shape_err(OP, format!("{m} rows exceed 32-bit indices")));
        }
        let rows = self.cfg.accepted_rows(m, saliences)?;
        // Commit the head only once the scatter is recorded.
        let mut next = self.state;
        let plan = next.plan_writes(&rows)?;
        if !plan.is_empty() {
            let table: Vec<u32> = plan
                .iter()
                .flat_map(|w| [w.row as u32, w.slot as u32, positions[w.row], w.step])
                .collect();
            let table = ctx.upload_u32(&table, &[plan.len(), 4])?;
            let total = plan.len() * l;
            let p = WriteParams {
                total: total as u32,
                latent: l as u32,
                _pad: [0; 2],
            };
            ctx.dispatch(
                &RING_WRITE,
                &[],
                &p,
                &[latents, &table, &self.latents, &self.positions, &self.steps],
                groups_1d(total, WG),
            )?;
        }
        self.state = next;
        Ok(rows.len())
    }

    /// `(latents [len, latent] f32, positions [len] u32)` on the device: sinks first, then the
    /// rotating slots oldest first.
    pub fn gather_in_age_order(&self, ctx: &GpuContext) -> Result<(GpuTensor, GpuTensor)> {
        let (len, l) = (self.len(), self.cfg.latent);
        let lat = ctx.zeros(&[len, l], DType::F32)?;
        let pos = ctx.zeros(&[len], DType::U32)?;
        if len == 0 {
            return Ok((lat, pos));
        }
        let p = GatherParams {
            total: (len * l) as u32,
            latent: l as u32,
            sink: self.state.sink as u32,
            rotating: self.state.rotating() as u32,
            oldest: self.state.oldest_rotating() as u32,
            _pad: [0; 3],
        };
        ctx.dispatch(
            &RING_GATHER,
            &[],
            &p,
            &[&self.latents, &self.positions, &lat, &pos],
            groups_1d(len * l, WG),
        )?;
        Ok((lat, pos))
    }

    /// `(k̂, v̂)`, each `[len, dm]`, of every live slot in age order, with `U: [2dm, latent]`;
    /// gather, product and split all run on the device.
    pub fn reconstruct(&self, ctx: &GpuContext, u: &GpuTensor) -> Result<(GpuTensor, GpuTensor)> {
        let (c, _) = self.gather_in_age_order(ctx)?;
        gpu::reconstruct(ctx, &c, u)
    }

    /// Downloads the raw slot storage (slot order), e.g. to compare with a CPU ring.
    pub fn download_slots(&self, ctx: &GpuContext) -> Result<RingSlots> {
        Ok(RingSlots {
            latents: ctx.download(&self.latents)?,
            positions: ctx.download_u32(&self.positions)?,
            steps: ctx.download_u32(&self.steps)?,
        })
    }
}
