//! CPU reference (and CPU backend) for RoPE. The angle is computed and reduced with exactly the
//! WGSL's f32 operations (see the module doc); rows of `d` run in parallel for large inputs.

use rayon::prelude::*;

use super::{check_head_dim, check_positions, inv_freq};
use crate::device::DeviceError;

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

const INV_2PI: f32 = 0.159_154_94;
// 2π split so that k·C1, k·C2 and k·C3 are exact for k < 2^18 (each has ≤ 6 significant bits);
// C4 is the f32-rounded remainder. Same values as rotate.wgsl.
const C1: f32 = 25.0 / 4.0;
const C2: f32 = 33.0 / 1024.0;
const C3: f32 = 31.0 / 32768.0;
const C4: f32 = 1.269_975_75e-5;

/// `t − 2πk` with `k = round(t / 2π)`: in [−π, π] up to the rounding of the f32 quotient
/// (|t|·2^-23 rad at most), and the same point on the circle as `t` to about an ulp of π.
pub fn reduce_angle(t: f32) -> f32 {
    let k = (t * INV_2PI).round_ties_even();
    (((t - k * C1) - k * C2) - k * C3) - k * C4
}

fn rotate(
    op: &'static str,
    x: &[f32],
    positions: &[u32],
    (b, h, n, d): (usize, usize, usize, usize),
    base: f32,
    sign: f32,
) -> Result<Vec<f32>, DeviceError> {
    check_head_dim(op, d)?;
    check_positions(op, positions, b, n)?;
    if x.len() != b * h * n * d {
        return Err(DeviceError::Shape {
            op,
            detail: format!("x has {} elements, expected [{b}, {h}, {n}, {d}]", x.len()),
        });
    }
    let half = d / 2;
    let inv = inv_freq(d, base);
    // One (sin, cos) table per (batch row, token), shared by every head: the angles do not
    // depend on the head, and sin/cos dominated this kernel when taken per head.
    let mut table = vec![(0.0f32, 0.0f32); b * n * half];
    let fill = |(t, tr): (usize, &mut [(f32, f32)])| {
        let pos = positions[t] as f32;
        for (e, &f) in tr.iter_mut().zip(&inv) {
            let (s, c) = reduce_angle(pos * f).sin_cos();
            *e = (sign * s, c);
        }
    };
    if x.len() >= PAR_MIN {
        table.par_chunks_mut(half.max(1)).enumerate().for_each(fill);
    } else {
        table.chunks_mut(half.max(1)).enumerate().for_each(fill);
    }
    let table = table;
    let mut y = vec![0.0f32; x.len()];
    let one = |(row, (o, xr)): (usize, (&mut [f32], &[f32]))| {
        let t = row / (h * n) * n + row % n;
        for (i, &(s, c)) in table[t * half..][..half].iter().enumerate() {
            let (a, bb) = (xr[i], xr[i + half]);
            o[i] = a * c - bb * s;
            o[i + half] = a * s + bb * c;
        }
    };
    if x.len() >= PAR_MIN {
        y.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .enumerate()
            .for_each(one);
    } else {
        y.chunks_mut(d).zip(x.chunks(d)).enumerate().for_each(one);
    }
    Ok(y)
}

/// Rotates each head vector of `x [b, h, n, d]` by its token's position.
pub fn rope_forward(
    x: &[f32],
    positions: &[u32],
    b: usize,
    h: usize,
    n: usize,
    d: usize,
    base: f32,
) -> Result<Vec<f32>, DeviceError> {
    rotate("rope_forward", x, positions, (b, h, n, d), base, 1.0)
}

/// The transpose of the forward: rotates `dy` by the negated angles.
pub fn rope_backward(
    dy: &[f32],
    positions: &[u32],
    b: usize,
    h: usize,
    n: usize,
    d: usize,
    base: f32,
) -> Result<Vec<f32>, DeviceError> {
    rotate("rope_backward", dy, positions, (b, h, n, d), base, -1.0)
}
