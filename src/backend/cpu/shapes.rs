//! Shape checks and constructors of the CPU backend's host tensors.

use crate::device::{DeviceError, Result};
use crate::kernels::sqa::SqaShape;
use crate::Tensor;

pub(super) fn shape_err(op: &'static str, detail: String) -> DeviceError {
    DeviceError::Shape { op, detail }
}

/// (rows, cols) of a tensor seen as a matrix over its last dimension.
pub(super) fn rows_cols(op: &'static str, t: &Tensor) -> Result<(usize, usize)> {
    let cols = *t
        .shape
        .last()
        .ok_or_else(|| shape_err(op, "tensor has no dimensions".into()))?;
    Ok((t.numel().checked_div(cols).unwrap_or(0), cols))
}

pub(super) fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(shape_err(op, format!("{:?} vs {:?}", a.shape, b.shape)));
    }
    Ok(())
}

pub(super) fn dims3(op: &'static str, t: &Tensor) -> Result<(usize, usize, usize)> {
    match t.shape[..] {
        [_, _, 0] => Err(shape_err(
            op,
            format!("head dimension is 0 in {:?}", t.shape),
        )),
        [a, b, c] => Ok((a, b, c)),
        _ => Err(shape_err(
            op,
            format!("expected [bh, n, d], got {:?}", t.shape),
        )),
    }
}

pub(super) fn dims4(op: &'static str, t: &Tensor) -> Result<(usize, usize, usize, usize)> {
    match t.shape[..] {
        [a, b, c, d] => Ok((a, b, c, d)),
        _ => Err(shape_err(
            op,
            format!("expected [b, h, n, d], got {:?}", t.shape),
        )),
    }
}

pub(super) fn t(data: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor {
        data,
        shape: shape.to_vec(),
    }
}

/// A `[1]` tensor holding a scalar (losses, sums).
pub(super) fn scalar(v: f32) -> Tensor {
    t(vec![v], &[1])
}

/// The SQA problem shape of `q`, every other tensor having the same shape.
pub(super) fn sqa_shape(op: &'static str, q: &Tensor, others: &[&Tensor]) -> Result<SqaShape> {
    for x in others {
        same_shape(op, q, x)?;
    }
    let (bh, n, d) = dims3(op, q)?;
    Ok(SqaShape { bh, n, d })
}
