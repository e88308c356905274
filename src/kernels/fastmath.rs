//! Branch-free scalar math the fast CPU kernels inline into their vectorized loops, shared by
//! the dense attention and SQA tile code. `F` selects hardware FMA (the AVX2 / AVX-512 builds).

#[inline(always)]
pub(crate) fn fmadd<const F: bool>(a: f32, b: f32, acc: f32) -> f32 {
    // Without hardware FMA `mul_add` is a libm call, so the baseline build must not use it.
    if F {
        a.mul_add(b, acc)
    } else {
        a * b + acc
    }
}

/// `2^x`: round-to-nearest range reduction plus a degree-6 Taylor polynomial on
/// `[-0.5, 0.5]` (truncation error < 1.7e-7 relative), written branch-free so loops over it
/// vectorize. Inputs below -127, including the `-inf` of masked scores, give exactly 0.
#[inline(always)]
pub(crate) fn exp2_fast<const F: bool>(x: f32) -> f32 {
    // 1.5 · 2^23: adding it pushes the fraction out of the mantissa, i.e. rounds to integer.
    const SHIFTER: f32 = 12_582_912.0;
    let x = if x < -127.0 { -127.0 } else { x };
    let x = if x > 127.0 { 127.0 } else { x };
    let t = x + SHIFTER;
    let f = x - (t - SHIFTER);
    let e = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32);
    let p = fmadd::<F>(1.540_353_1e-4, f, 1.333_355_8e-3);
    let p = fmadd::<F>(p, f, 9.618_129e-3);
    let p = fmadd::<F>(p, f, 5.550_411e-2);
    let p = fmadd::<F>(p, f, 0.240_226_5);
    let p = fmadd::<F>(p, f, std::f32::consts::LN_2);
    let p = fmadd::<F>(p, f, 1.0);
    // e = -127 gives an all-zero bit pattern: 2^-127 flushes to exactly 0.
    p * f32::from_bits(((e + 127) as u32) << 23)
}
