//! CPU reference (and CPU backend) for the head split / merge: contiguous `d`-wide copies,
//! output rows split across threads for large inputs.

use rayon::prelude::*;

use super::head_dim;
use crate::device::Result;

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

/// Fills `out` by rows of `row` elements with `f(row_index, row)`, in parallel when large.
fn by_rows(out: &mut [f32], row: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(row)
            .with_min_len(64)
            .enumerate()
            .for_each(|(r, o)| f(r, o));
    } else {
        out.chunks_mut(row).enumerate().for_each(|(r, o)| f(r, o));
    }
}

/// `x: [b·n, h·d]` → `[b·h, n, d]` (see the family doc). Returns the data and `d`.
pub fn split_heads(x: &[f32], b: usize, n: usize, h: usize) -> Result<(Vec<f32>, usize)> {
    let d = head_dim("split_heads", x.len(), b, n, h)?;
    let mut y = vec![0.0f32; x.len()];
    // Output row (bi·h + hi)·n + ni reads token bi·n + ni, columns [hi·d, hi·d + d).
    by_rows(&mut y, d, |r, o| {
        let (bh, ni) = (r / n, r % n);
        let (bi, hi) = (bh / h, bh % h);
        let src = (bi * n + ni) * h * d + hi * d;
        o.copy_from_slice(&x[src..src + d]);
    });
    Ok((y, d))
}

/// `x: [b·h, n, d]` → `[b·n, h·d]`, the inverse of [`split_heads`]. Returns the data and `d`.
pub fn merge_heads(x: &[f32], b: usize, n: usize, h: usize) -> Result<(Vec<f32>, usize)> {
    let d = head_dim("merge_heads", x.len(), b, n, h)?;
    let mut y = vec![0.0f32; x.len()];
    // Output token row bi·n + ni gathers head hi's vector ((bi·h + hi)·n + ni) for every hi.
    by_rows(&mut y, h * d, |r, o| {
        let (bi, ni) = (r / n, r % n);
        for (hi, dst) in o.chunks_exact_mut(d).enumerate() {
            let src = ((bi * h + hi) * n + ni) * d;
            dst.copy_from_slice(&x[src..src + d]);
        }
    });
    Ok((y, d))
}
