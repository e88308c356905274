//! The CPU ring buffer of latents (see the module doc of `rckv` for the slot rules).

use super::{cpu, shape_err, RckvConfig, RckvDims, RingState};
use crate::device::Result;

/// Raw slot storage, in slot order (not age order): what the tests compare between CPU and GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct RingSlots {
    /// `[capacity, latent]`.
    pub latents: Vec<f32>,
    /// `[capacity]` source positions.
    pub positions: Vec<u32>,
    /// `[capacity]` write steps.
    pub steps: Vec<u32>,
}

/// Checks a write batch: `latents_len` must be `m · latent` with `m = positions.len()`.
pub(crate) fn check_batch(
    cfg: &RckvConfig,
    latents_len: usize,
    rows: Option<usize>,
    positions: &[u32],
) -> Result<usize> {
    const OP: &str = "rckv_write";
    let m = match rows {
        Some(m) => m,
        None if latents_len.is_multiple_of(cfg.latent) => latents_len / cfg.latent,
        None => {
            return Err(shape_err(
                OP,
                format!(
                    "{latents_len} latent values are not a whole number of rows of {}",
                    cfg.latent
                ),
            ))
        }
    };
    if m * cfg.latent != latents_len {
        return Err(shape_err(
            OP,
            format!(
                "latents hold {latents_len} values, expected [{m}, {}]",
                cfg.latent
            ),
        ));
    }
    if positions.len() != m {
        return Err(shape_err(
            OP,
            format!("{} positions for {m} latent rows", positions.len()),
        ));
    }
    Ok(m)
}

/// One layer's ring of latent vectors, on the host.
#[derive(Debug, Clone)]
pub struct RingBuffer {
    cfg: RckvConfig,
    state: RingState,
    slots: RingSlots,
}

impl RingBuffer {
    pub fn new(cfg: RckvConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            state: RingState::new(&cfg),
            slots: RingSlots {
                latents: vec![0.0; cfg.capacity * cfg.latent],
                positions: vec![0; cfg.capacity],
                steps: vec![0; cfg.capacity],
            },
        })
    }

    pub fn config(&self) -> &RckvConfig {
        &self.cfg
    }

    pub fn state(&self) -> &RingState {
        &self.state
    }

    /// Live slots (at most `capacity`).
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Empties the ring and zeroes its storage.
    pub fn reset(&mut self) {
        self.state.written = 0;
        self.slots.latents.fill(0.0);
        self.slots.positions.fill(0);
        self.slots.steps.fill(0);
    }

    /// Writes `m` tokens (`latents: [m, latent]`, `positions: [m]`) as `m` single writes, after
    /// the write policy (`saliences: [m]`, needed only by `Salient`). Returns how many tokens
    /// entered the ring. On error nothing is written.
    pub fn write(
        &mut self,
        latents: &[f32],
        positions: &[u32],
        saliences: Option<&[f32]>,
    ) -> Result<usize> {
        let m = check_batch(&self.cfg, latents.len(), None, positions)?;
        let rows = self.cfg.accepted_rows(m, saliences)?;
        let l = self.cfg.latent;
        for w in self.state.plan_writes(&rows)? {
            self.slots.latents[w.slot * l..(w.slot + 1) * l]
                .copy_from_slice(&latents[w.row * l..(w.row + 1) * l]);
            self.slots.positions[w.slot] = positions[w.row];
            self.slots.steps[w.slot] = w.step;
        }
        Ok(rows.len())
    }

    /// `(latents [len, latent], positions [len])`: sinks first, then rotating slots oldest first.
    pub fn gather_in_age_order(&self) -> (Vec<f32>, Vec<u32>) {
        let l = self.cfg.latent;
        let order = self.state.age_order();
        let mut lat = Vec::with_capacity(order.len() * l);
        for &s in &order {
            lat.extend_from_slice(&self.slots.latents[s * l..(s + 1) * l]);
        }
        let pos = order.iter().map(|&s| self.slots.positions[s]).collect();
        (lat, pos)
    }

    /// `(k̂, v̂)`, each `[len, dm]`, of every live slot in age order, with `U: [2dm, latent]`.
    pub fn reconstruct(&self, u: &[f32], dm: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let (c, _) = self.gather_in_age_order();
        let d = RckvDims {
            n: self.len(),
            dm,
            latent: self.cfg.latent,
        };
        cpu::reconstruct(&c, u, &d)
    }

    /// The raw slot storage in slot order.
    pub fn slots(&self) -> &RingSlots {
        &self.slots
    }
}
