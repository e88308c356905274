//! The RCKV ring of every layer while the context of one input streams in token by token.
//!
//! The model's forward runs once over the whole context (every context token offered to the
//! ring, no DSR selection, as in the streaming scenario) and keeps, per layer, each context
//! token's exact key and value and its latent `c = k·D_k + v·D_v`. Feeding tokens then writes
//! those latents into one `kernels::rckv::RingBuffer` per layer — the library's ring, with its
//! sinks, rotation and eviction — and a snapshot reads each live slot back through the
//! library's reconstruction `[k̂; v̂] = c·U` and compares it with the token's exact `[k; v]`.
//! The model writes every kept context token (its ring has no salience filter), so the stream
//! does too.

use super::{check_example, forward_layers, InspectError, Result};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::rckv::{RckvConfig, RingBuffer, WritePolicy};
use crate::model::{Model, SeqPlan};

/// One layer's exact context KV, its latents and its ring.
#[derive(Debug, Clone)]
struct LayerStream {
    k: Vec<f32>,
    v: Vec<f32>,
    latents: Vec<f32>,
    /// `U: [2·dm, latent]` in the ring's layout (rows: k̂ then v̂ features).
    u: Vec<f32>,
    ring: RingBuffer,
}

/// A context streaming through every layer's ring.
#[derive(Debug, Clone)]
pub struct CacheStream {
    cfg: RckvConfig,
    dm: usize,
    /// Context token ids, in stream order.
    pub ids: Vec<u32>,
    layers: Vec<LayerStream>,
    fed: usize,
}

/// One ring slot as drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotView {
    pub live: bool,
    /// A sink slot (never evicted).
    pub sink: bool,
    /// Source position of the token in the slot, and its write step.
    pub position: u32,
    pub step: u32,
    /// Writes since this slot was written (0 = the newest).
    pub age: u64,
    /// Mean squared reconstruction error of the slot's `[k; v]` (0 for an empty slot).
    pub error: f32,
}

/// One layer's ring at the current point of the stream.
#[derive(Debug, Clone)]
pub struct RingView {
    pub layer: usize,
    pub capacity: usize,
    pub sink: usize,
    /// Tokens written so far.
    pub written: u64,
    /// The slot the next token goes to.
    pub head: usize,
    /// `[capacity]` in slot order.
    pub slots: Vec<SlotView>,
    /// Mean of the live slots' errors.
    pub mean_error: f32,
}

impl CacheStream {
    /// Runs `model` over the context of `ex` and prepares an empty ring per layer.
    pub fn new<B: Backend>(be: &B, model: &Model<B>, ex: &Example) -> Result<Self> {
        check_example(model, ex)?;
        let cfg = &model.cfg;
        if !cfg.model.use_rckv {
            return Err(InspectError::Input(
                "this model has no RCKV cache (model.use_rckv = false)".into(),
            ));
        }
        let layers = cfg.model.layers;
        let (_, caches) = forward_layers(be, model, ex, SeqPlan::dense(ex), layers - 1)?;
        let rcfg = RckvConfig {
            policy: WritePolicy::All,
            ..cfg.rckv_kernel()
        };
        let (dm, lat) = (cfg.model.d_model, rcfg.latent);
        let mut out = Vec::with_capacity(layers);
        for (cache, li) in caches.iter().zip(&model.layout.idx.layers) {
            let rc = cache
                .rckv
                .as_ref()
                .ok_or_else(|| InspectError::Input("a layer kept no context KV".into()))?;
            let uk = be.download(&model.params[li.rk_uk])?.data;
            let uv = be.download(&model.params[li.rk_uv])?.data;
            // Model: k̂ = c·U_k with U_k: [lat, dm]; the ring wants U: [2dm, lat] (x̂ = c·Uᵀ).
            let mut u = vec![0.0_f32; 2 * dm * lat];
            for j in 0..lat {
                for r in 0..dm {
                    u[r * lat + j] = uk[j * dm + r];
                    u[(dm + r) * lat + j] = uv[j * dm + r];
                }
            }
            out.push(LayerStream {
                k: be.download(&rc.kc)?.data,
                v: be.download(&rc.vc)?.data,
                latents: be.download(&rc.c)?.data,
                u,
                ring: RingBuffer::new(rcfg)?,
            });
        }
        Ok(Self {
            cfg: rcfg,
            dm,
            ids: ex.ids[..ex.n_ctx].to_vec(),
            layers: out,
            fed: 0,
        })
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Context tokens in the stream, and how many were fed.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn fed(&self) -> usize {
        self.fed
    }

    pub fn config(&self) -> &RckvConfig {
        &self.cfg
    }

    /// Feeds the next `count` tokens (fewer at the end of the stream); returns how many.
    pub fn feed(&mut self, count: usize) -> Result<usize> {
        let m = count.min(self.len() - self.fed);
        if m == 0 {
            return Ok(0);
        }
        let (a, lat) = (self.fed, self.cfg.latent);
        let positions: Vec<u32> = (a as u32..(a + m) as u32).collect();
        for l in &mut self.layers {
            l.ring
                .write(&l.latents[a * lat..(a + m) * lat], &positions, None)?;
        }
        self.fed += m;
        Ok(m)
    }

    /// Empties every ring (the stream starts over).
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(|l| l.ring.reset());
        self.fed = 0;
    }

    /// Layer `layer`'s ring now.
    pub fn ring(&self, layer: usize) -> Result<RingView> {
        let l = self.layers.get(layer).ok_or_else(|| {
            InspectError::Input(format!("layer {layer} of {}", self.layers.len()))
        })?;
        let st = l.ring.state();
        let slots = l.ring.slots();
        let dm = self.dm;
        let (khat, vhat) = l.ring.reconstruct(&l.u, dm)?;
        let mut view: Vec<SlotView> = (0..self.cfg.capacity)
            .map(|s| SlotView {
                live: false,
                sink: s < self.cfg.sink,
                position: 0,
                step: 0,
                age: 0,
                error: 0.0,
            })
            .collect();
        for (rank, slot) in st.age_order().into_iter().enumerate() {
            let p = slots.positions[slot] as usize;
            let step = slots.steps[slot];
            let sq = |a: &[f32], b: &[f32]| -> f64 {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| f64::from(x - y).powi(2))
                    .sum()
            };
            let err = sq(&khat[rank * dm..][..dm], &l.k[p * dm..][..dm])
                + sq(&vhat[rank * dm..][..dm], &l.v[p * dm..][..dm]);
            view[slot] = SlotView {
                live: true,
                sink: slot < self.cfg.sink,
                position: p as u32,
                step,
                age: st.written - 1 - u64::from(step),
                error: (err / (2 * dm) as f64) as f32,
            };
        }
        let live: Vec<f32> = view.iter().filter(|s| s.live).map(|s| s.error).collect();
        let mean_error = if live.is_empty() {
            0.0
        } else {
            (live.iter().map(|&e| f64::from(e)).sum::<f64>() / live.len() as f64) as f32
        };
        Ok(RingView {
            layer,
            capacity: self.cfg.capacity,
            sink: self.cfg.sink,
            written: st.written,
            head: st.slot_of(st.written),
            slots: view,
            mean_error,
        })
    }
}
