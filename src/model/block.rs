//! The block's norm and MLP, dispatched on the config's block spec (`model.norm`,
//! `model.mlp`): the one place a new kind gets its match arm, used by the training forward and
//! backward (`layer`), the KV decoder (`decode`) and the final norm before the LM head
//! (`network`). The attention kind is dispatched in `layer::attend` / `layer::attend_backward`.

use super::config::{MlpKind, NormKind};
use super::params::LayerIdx;
use super::{acc, Grads, ModelError, Weights};
use crate::backend::Backend;
use crate::kernels::matmul::MatmulDims;

/// What a norm's backward needs: LayerNorm's per-row mean and reciprocal std.
pub(crate) type NormSaved<B> = (<B as Backend>::T, <B as Backend>::T);

fn unsupported(key: &str, kind: &str) -> ModelError {
    ModelError::Params(format!("{key} = \"{kind}\" has no kernels yet"))
}

/// `norm(x)` with gain `g` and bias `b` (`[rows, dm]`).
pub(crate) fn norm_forward<B: Backend>(
    w: &Weights<'_, B>,
    x: &B::T,
    g: &B::T,
    b: &B::T,
) -> Result<(B::T, NormSaved<B>), ModelError> {
    match w.cfg.model.norm {
        NormKind::LayerNorm => {
            let (y, mean, rstd) = w.be.layernorm_forward(x, g, b, w.cfg.model.layernorm_eps)?;
            Ok((y, (mean, rstd)))
        }
        NormKind::RmsNorm => Err(unsupported("model.norm", "rmsnorm")),
    }
}

/// `(dx, dgain, dbias)`.
pub(crate) type NormGrads<B> = (<B as Backend>::T, <B as Backend>::T, <B as Backend>::T);

/// `(dx, dg, db)` of [`norm_forward`] given `dy`.
pub(crate) fn norm_backward<B: Backend>(
    w: &Weights<'_, B>,
    dy: &B::T,
    x: &B::T,
    g: &B::T,
    saved: &NormSaved<B>,
) -> Result<NormGrads<B>, ModelError> {
    match w.cfg.model.norm {
        NormKind::LayerNorm => Ok(w.be.layernorm_backward(dy, x, g, &saved.0, &saved.1)?),
        NormKind::RmsNorm => Err(unsupported("model.norm", "rmsnorm")),
    }
}

/// What the MLP's backward needs besides its input.
pub(crate) struct MlpSaved<B: Backend> {
    /// Pre-activation `h·W1 + b1`.
    u: B::T,
    /// Activation `GELU(u)`.
    g: B::T,
}

/// The MLP of layer `li` on `h: [rows, dm]`; returns `[rows, dm]` (before the residual add).
pub(crate) fn mlp_forward<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    h: &B::T,
    rows: usize,
) -> Result<(B::T, MlpSaved<B>), ModelError> {
    let (be, p) = (w.be, w.p);
    let dm = w.cfg.model.d_model;
    match w.cfg.model.mlp {
        MlpKind::Gelu => {
            let f = 4 * w.cfg.model.hidden_dim;
            let u = be.bias_forward(
                &be.matmul(h, &p[li.w1], &MatmulDims::new(rows, dm, f))?,
                &p[li.b1],
            )?;
            let g = be.gelu_forward(&u)?;
            let y = be.bias_forward(
                &be.matmul(&g, &p[li.w2], &MatmulDims::new(rows, f, dm))?,
                &p[li.b2],
            )?;
            Ok((y, MlpSaved { u, g }))
        }
        MlpKind::SwiGlu => Err(unsupported("model.mlp", "swiglu")),
    }
}

/// Backward of [`mlp_forward`] given `dy`: accumulates the MLP's parameter gradients, returns
/// `dh`.
pub(crate) fn mlp_backward<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    h: &B::T,
    saved: &MlpSaved<B>,
    dy: &B::T,
    rows: usize,
    grads: &mut Grads<B::T>,
) -> Result<B::T, ModelError> {
    let (be, p) = (w.be, w.p);
    let dm = w.cfg.model.d_model;
    match w.cfg.model.mlp {
        MlpKind::Gelu => {
            let f = 4 * w.cfg.model.hidden_dim;
            acc(be, &mut grads[li.b2], be.bias_backward(dy)?)?;
            let (dg, dw2) =
                be.matmul_backward(&saved.g, &p[li.w2], dy, &MatmulDims::new(rows, f, dm))?;
            acc(be, &mut grads[li.w2], dw2)?;
            let du = be.gelu_backward(&saved.u, &dg)?;
            acc(be, &mut grads[li.b1], be.bias_backward(&du)?)?;
            let (dh, dw1) = be.matmul_backward(h, &p[li.w1], &du, &MatmulDims::new(rows, dm, f))?;
            acc(be, &mut grads[li.w1], dw1)?;
            Ok(dh)
        }
        MlpKind::SwiGlu => Err(unsupported("model.mlp", "swiglu")),
    }
}
