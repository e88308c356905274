//! The model's parameters: one flat, ordered list of named tensors (the order checkpoints,
//! gradients and optimizer moments share), with typed indices into it.
//!
//! Shape legend (`dm` = d_model, `V` = vocab, `dr` = DSR reduced dim, `lat` = RCKV latent,
//! `f` = MLP width = 4·hidden_dim): weights are stored `[in, out]` so a layer is `y = x·W`.
//! - `wte: [V, dm]` token embedding, tied with the LM head (`logits = h·wteᵀ`)
//! - `dsr.w_r`, `dsr.w_q: [dm, dr]` the retriever's projections
//! - per layer: `ln1.{g,b}: [dm]`, `attn.{wq,wk,wv,wo}: [dm, dm]`,
//!   `rckv.{dk,dv}: [dm, lat]` (the down-projection `D = [D_k | D_v]` split by input half, so
//!   `c = k·D_k + v·D_v` is two plain matmuls), `rckv.{uk,uv}: [lat, dm]` (`U` split by output
//!   half), `ln2.{g,b}: [dm]`, `mlp.w1: [dm, f]`, `mlp.b1: [f]`, `mlp.w2: [f, dm]`, `mlp.b2: [dm]`
//! - `lnf.{g,b}: [dm]`
//! - with `model.short_conv = K > 0`, per layer after `ln1.b`: `conv.w: [K, dm]`, the short
//!   convolution's taps (initialised to 0, so the block starts as it would be without it).
//! - GCA models only (`model.attention = "gca"`), per layer after `mlp.b2`: `gca.{lq,lk}: [dm, dg]`
//!   (`dg = gca.landmark_dim`), the landmark projections of the retrieval scores.
//!
//! Apart from the GCA tensors (absent otherwise, so the other models' layouts are
//! unchanged), every tensor exists whatever the variant, so checkpoints of one config always have one
//! layout; tensors a variant never uses simply get no gradient (and are not updated).
//!
//! Initialization (GPT-2's): weights N(0, 0.02), the two residual projections (`wo`, `w2`)
//! scaled by `1/√(2·layers)`, LayerNorm gains 1, biases 0. The RCKV pair starts at
//! N(0, 1/√fan_in) so the reconstruction starts as a random low-rank map of the right scale.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Config;
use crate::Tensor;

/// Indices of one layer's tensors in the flat list.
#[derive(Debug, Clone, Copy)]
pub struct LayerIdx {
    pub ln1_g: usize,
    pub ln1_b: usize,
    pub wq: usize,
    pub wk: usize,
    pub wv: usize,
    pub wo: usize,
    pub rk_dk: usize,
    pub rk_dv: usize,
    pub rk_uk: usize,
    pub rk_uv: usize,
    pub ln2_g: usize,
    pub ln2_b: usize,
    pub w1: usize,
    pub b1: usize,
    pub w2: usize,
    pub b2: usize,
    /// Short-convolution taps `[K, dm]`; only when `model.short_conv = K > 0`.
    pub conv_w: Option<usize>,
    /// GCA landmark projections `[dm, dg]` (query side, key side); only when `attention = "gca"`.
    pub gca_lq: Option<usize>,
    pub gca_lk: Option<usize>,
}

/// Indices of every tensor.
#[derive(Debug, Clone)]
pub struct ParamIdx {
    pub wte: usize,
    pub dsr_wr: usize,
    pub dsr_wq: usize,
    pub layers: Vec<LayerIdx>,
    pub lnf_g: usize,
    pub lnf_b: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Init {
    Normal(f32),
    Ones,
    Zeros,
}

/// Names, shapes and initializers of a config's tensors, in order.
#[derive(Debug, Clone)]
pub struct ParamLayout {
    pub names: Vec<String>,
    pub shapes: Vec<Vec<usize>>,
    init: Vec<Init>,
    pub idx: ParamIdx,
}

impl ParamLayout {
    pub fn new(cfg: &Config) -> Self {
        let dm = cfg.model.d_model;
        let f = 4 * cfg.model.hidden_dim;
        let lat = cfg.rckv.compressed_dim;
        let dr = cfg.dsr.reduced_dim;
        let std = 0.02;
        let resid = std / (2.0 * cfg.model.layers as f32).sqrt();
        let mut l = ParamLayout {
            names: Vec::new(),
            shapes: Vec::new(),
            init: Vec::new(),
            idx: ParamIdx {
                wte: 0,
                dsr_wr: 0,
                dsr_wq: 0,
                layers: Vec::new(),
                lnf_g: 0,
                lnf_b: 0,
            },
        };
        let mut add = |name: String, shape: &[usize], init: Init| {
            l.names.push(name);
            l.shapes.push(shape.to_vec());
            l.init.push(init);
            l.names.len() - 1
        };
        let wte = add("wte".into(), &[cfg.model.vocab_size, dm], Init::Normal(std));
        let dsr_wr = add("dsr.w_r".into(), &[dm, dr], Init::Normal(std));
        let dsr_wq = add("dsr.w_q".into(), &[dm, dr], Init::Normal(std));
        let mut layers = Vec::new();
        for i in 0..cfg.model.layers {
            let p = |s: &str| format!("h{i}.{s}");
            let down = Init::Normal(1.0 / (dm as f32).sqrt());
            let up = Init::Normal(1.0 / (lat as f32).sqrt());
            let gca = cfg.model.use_gca();
            let taps = cfg.model.short_conv;
            let ln1_g = add(p("ln1.g"), &[dm], Init::Ones);
            let ln1_b = add(p("ln1.b"), &[dm], Init::Zeros);
            let conv_w = (taps > 0).then(|| add(p("conv.w"), &[taps, dm], Init::Zeros));
            let mut layer = LayerIdx {
                ln1_g,
                ln1_b,
                conv_w,
                wq: add(p("attn.wq"), &[dm, dm], Init::Normal(std)),
                wk: add(p("attn.wk"), &[dm, dm], Init::Normal(std)),
                wv: add(p("attn.wv"), &[dm, dm], Init::Normal(std)),
                wo: add(p("attn.wo"), &[dm, dm], Init::Normal(resid)),
                rk_dk: add(p("rckv.dk"), &[dm, lat], down),
                rk_dv: add(p("rckv.dv"), &[dm, lat], down),
                rk_uk: add(p("rckv.uk"), &[lat, dm], up),
                rk_uv: add(p("rckv.uv"), &[lat, dm], up),
                ln2_g: add(p("ln2.g"), &[dm], Init::Ones),
                ln2_b: add(p("ln2.b"), &[dm], Init::Zeros),
                w1: add(p("mlp.w1"), &[dm, f], Init::Normal(std)),
                b1: add(p("mlp.b1"), &[f], Init::Zeros),
                w2: add(p("mlp.w2"), &[f, dm], Init::Normal(resid)),
                b2: add(p("mlp.b2"), &[dm], Init::Zeros),
                gca_lq: None,
                gca_lk: None,
            };
            if gca {
                // Unit-scale scores at the start (N(0, 1/√dm) like the RCKV down-projection),
                // so the first top-k already depends on content rather than on noise.
                let dg = cfg.gca.landmark_dim;
                layer.gca_lq = Some(add(p("gca.lq"), &[dm, dg], down));
                layer.gca_lk = Some(add(p("gca.lk"), &[dm, dg], down));
            }
            layers.push(layer);
        }
        let lnf_g = add("lnf.g".into(), &[dm], Init::Ones);
        let lnf_b = add("lnf.b".into(), &[dm], Init::Zeros);
        l.idx = ParamIdx {
            wte,
            dsr_wr,
            dsr_wq,
            layers,
            lnf_g,
            lnf_b,
        };
        l
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum()
    }

    /// Weight decay applies to matrices only (not gains, biases), as is usual for transformers.
    pub fn decays(&self, i: usize) -> bool {
        self.shapes[i].len() >= 2
    }

    /// Fresh host tensors from `seed` (one ChaCha stream per tensor, so adding a tensor does
    /// not change the others' values).
    pub fn init(&self, seed: u64) -> Vec<Tensor> {
        self.shapes
            .iter()
            .zip(&self.init)
            .enumerate()
            .map(|(i, (shape, init))| {
                let n: usize = shape.iter().product();
                let data = match *init {
                    Init::Ones => vec![1.0; n],
                    Init::Zeros => vec![0.0; n],
                    Init::Normal(std) => {
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        rng.set_stream(i as u64 + 1);
                        (0..n).map(|_| std * normal(&mut rng)).collect()
                    }
                };
                Tensor {
                    data,
                    shape: shape.clone(),
                }
            })
            .collect()
    }
}

/// A standard normal draw (Box–Muller; rand_distr is not worth a dependency for this).
fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}
