//! CPU reference (and CPU backend) for the embedding lookup. The backward adds each id's rows in
//! the GPU's order (ascending position), one table row per task for large inputs.

use rayon::prelude::*;

use super::{check_ids, Segments};
use crate::device::DeviceError;

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

fn check_len(op: &'static str, what: &str, got: usize, want: usize) -> Result<(), DeviceError> {
    if got != want {
        return Err(DeviceError::Shape {
            op,
            detail: format!("{what} has {got} elements, expected {want}"),
        });
    }
    Ok(())
}

/// `out[t] = weight[ids[t]]`, shape `[T, dim]`.
pub fn embedding_forward(
    weight: &[f32],
    ids: &[u32],
    vocab: usize,
    dim: usize,
) -> Result<Vec<f32>, DeviceError> {
    const OP: &str = "embedding_forward";
    check_len(OP, "weight", weight.len(), vocab * dim)?;
    check_ids(OP, ids, vocab)?;
    let mut out = vec![0.0f32; ids.len() * dim];
    if dim == 0 {
        return Ok(out);
    }
    let copy = |(row, &id): (&mut [f32], &u32)| {
        let s = id as usize * dim;
        row.copy_from_slice(&weight[s..s + dim]);
    };
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(dim).zip(ids).for_each(copy);
    } else {
        out.chunks_mut(dim).zip(ids).for_each(copy);
    }
    Ok(out)
}

/// `dweight[v] = Σ_{t: ids[t] = v} dy[t]`, shape `[vocab, dim]`; unused rows are zero.
pub fn embedding_backward(
    dy: &[f32],
    ids: &[u32],
    vocab: usize,
    dim: usize,
) -> Result<Vec<f32>, DeviceError> {
    const OP: &str = "embedding_backward";
    check_len(OP, "dy", dy.len(), ids.len() * dim)?;
    check_ids(OP, ids, vocab)?;
    let mut dw = vec![0.0f32; vocab * dim];
    if dim == 0 || ids.is_empty() {
        return Ok(dw);
    }
    let segs = Segments::new(ids);
    let mut seg_of = vec![u32::MAX; vocab];
    for (k, &id) in segs.ids.iter().enumerate() {
        seg_of[id as usize] = k as u32;
    }
    let sum = |(row, &k): (&mut [f32], &u32)| {
        if k == u32::MAX {
            return;
        }
        for &t in segs.positions(k as usize) {
            let src = &dy[t as usize * dim..(t as usize + 1) * dim];
            row.iter_mut().zip(src).for_each(|(a, b)| *a += b);
        }
    };
    if dy.len() >= PAR_MIN {
        dw.par_chunks_mut(dim).zip(&seg_of).for_each(sum);
    } else {
        dw.chunks_mut(dim).zip(&seg_of).for_each(sum);
    }
    Ok(dw)
}
