//! CPU matmul: an f64 triple-loop reference, and the fast backend on the `gemm` crate (which
//! takes arbitrary strides, so transposes and broadcasts cost nothing). `gemm` is built with its
//! `x86-v4` feature: AVX-512 kernels where the CPU has them, chosen at run time.

use rayon::prelude::*;

use super::{backward_plans, GemmPlan, MatmulDims, Src};

/// Below this many multiply-adds per product, `gemm`'s own threading costs more than it saves,
/// so batches are spread over threads instead.
const SMALL_PRODUCT: usize = 1 << 18;

/// The reference: `C = op(A)·op(B)` per batch, each dot product accumulated in f64.
pub fn matmul_ref(a: &[f32], b: &[f32], d: &MatmulDims) -> Vec<f32> {
    let (m, k, n) = (d.m, d.k, d.n);
    let mut c = vec![0.0f32; d.c_len()];
    for z in 0..d.batch {
        let a0 = z * m * k;
        let b0 = if d.broadcast_b { 0 } else { z * k * n };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for kk in 0..k {
                    let av = if d.trans_a {
                        a[a0 + kk * m + i]
                    } else {
                        a[a0 + i * k + kk]
                    };
                    let bv = if d.trans_b {
                        b[b0 + j * k + kk]
                    } else {
                        b[b0 + kk * n + j]
                    };
                    s += av as f64 * bv as f64;
                }
                c[(z * m + i) * n + j] = s as f32;
            }
        }
    }
    c
}

/// The fast path: `C = op(A)·op(B)` through `gemm`, multithreaded.
///
/// # Panics
/// When `a` or `b` is shorter than `d` requires (call [`MatmulDims::validate`] first).
pub fn matmul(a: &[f32], b: &[f32], d: &MatmulDims) -> Vec<f32> {
    let mut plan = d.plan();
    if d.broadcast_b && !d.trans_a {
        // A is one contiguous [batch·m, k] matrix against a shared B: one tall product.
        plan = GemmPlan {
            batch: 1,
            m: d.batch * d.m,
            ..plan
        };
    }
    let mut c = vec![0.0f32; plan.c_len()];
    run_plan(a, b, &plan, &mut c, false);
    c
}

/// Gradients of `C = op(A)·op(B)` given `dC`, returned in the storage layouts of `A` and `B`
/// (with `broadcast_b`, `dB` is summed over the batch).
///
/// # Panics
/// When a buffer is shorter than `d` requires.
pub fn matmul_backward(a: &[f32], b: &[f32], dc: &[f32], d: &MatmulDims) -> (Vec<f32>, Vec<f32>) {
    assert!(
        dc.len() >= d.c_len(),
        "matmul_backward: dC too short for {d:?}"
    );
    let plans = backward_plans(d);
    let pick = |s: Src| match s {
        Src::A => a,
        Src::B => b,
        Src::DC => dc,
    };
    let mut da = vec![0.0f32; d.a_len()];
    run_plan(
        pick(plans.da_src.0),
        pick(plans.da_src.1),
        &plans.da,
        &mut da,
        false,
    );
    let (lhs, rhs) = (pick(plans.db_src.0), pick(plans.db_src.1));
    let mut db = vec![0.0f32; d.b_len()];
    if plans.sum_batch {
        // Each batch's product is added onto dB in batch order: deterministic, no scratch.
        let one = GemmPlan {
            batch: 1,
            ..plans.db
        };
        for z in 0..plans.db.batch {
            let (la, lb) = (z * plans.db.a.bs, z * plans.db.b.bs);
            run_plan(&lhs[la..], &rhs[lb..], &one, &mut db, z > 0);
        }
    } else {
        run_plan(lhs, rhs, &plans.db, &mut db, false);
    }
    (da, db)
}

/// Runs `plan` into `c` (`[batch, m, n]`, contiguous); adds onto `c` when `accumulate`.
fn run_plan(a: &[f32], b: &[f32], p: &GemmPlan, c: &mut [f32], accumulate: bool) {
    // Every access `gemm` makes is inside these bounds, which makes the raw pointers sound.
    if let Err(e) = p.check("matmul (cpu)", a.len(), b.len()) {
        panic!("{e}");
    }
    assert!(c.len() >= p.c_len(), "matmul (cpu): output too short");
    let mn = p.m * p.n;
    if mn == 0 {
        return;
    }
    if p.k == 0 {
        if !accumulate {
            c[..p.c_len()].fill(0.0);
        }
        return;
    }
    let one = |z: usize, cz: &mut [f32], par: gemm::Parallelism| {
        // SAFETY: `check` proved every offset z·bs + r·rs + c·cs of A and B is in bounds, `cz`
        // holds exactly m·n elements written at r·n + c, and the borrows outlive the call.
        unsafe {
            gemm::gemm(
                p.m,
                p.n,
                p.k,
                cz.as_mut_ptr(),
                1,
                p.n as isize,
                accumulate,
                a.as_ptr().add(z * p.a.bs),
                p.a.cs as isize,
                p.a.rs as isize,
                b.as_ptr().add(z * p.b.bs),
                p.b.cs as isize,
                p.b.rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    };
    let c = &mut c[..p.c_len()];
    if p.batch > 1 && p.m * p.n * p.k < SMALL_PRODUCT {
        c.par_chunks_mut(mn)
            .enumerate()
            .for_each(|(z, cz)| one(z, cz, gemm::Parallelism::None));
    } else {
        for (z, cz) in c.chunks_mut(mn).enumerate() {
            one(z, cz, gemm::Parallelism::Rayon(0));
        }
    }
}
