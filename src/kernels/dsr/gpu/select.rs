//! The selection on the device: block scores, softmax statistics (→ c, budget, kept blocks), a
//! radix select of the best `K − 1` non-sink blocks, and an order-keeping compaction. Only the
//! eight info words and the selected positions are read back.

use super::*;

crate::gpu_params! {
    pub(crate) struct FinalParams {
        groups: u32,
        n: u32,
        block: u32,
        nb: u32,
        base_budget: u32,
        alpha: f32,
        _pad: [u32; 2],
    }
}

crate::gpu_params! {
    pub(crate) struct CompactParams {
        n_ctx: u32,
        block: u32,
        nb: u32,
        q0: u32,
        nq: u32,
        _pad: [u32; 3],
    }
}

/// The selection, plus what stays on the device.
#[derive(Debug, Clone)]
pub struct GpuSelection {
    pub selection: DsrSelection,
    /// Block scores `[nb]` (diagnostics; never read back by `select`).
    pub block_scores: GpuTensor,
    /// `[n_ctx + nq]` u32; the first `selection.selected.len()` words are the selection.
    pub indices: GpuTensor,
}

/// Softmax statistics and the budget of scores `s` into an 8-word state (layout in
/// `stats_final.wgsl`).
pub(crate) fn softmax_state(
    ctx: &GpuContext,
    s: &GpuTensor,
    block: usize,
    nb: usize,
    base_budget: usize,
    alpha: f32,
) -> Result<GpuTensor> {
    let n = s.numel();
    let g = partial_groups(n);
    let part = ctx.zeros(&[3 * g], DType::F32)?;
    let p = partials(n, g);
    ctx.dispatch(&STATS_PARTIAL, &[], &p, &[s, &part], [g as u32, 1, 1])?;
    let state = ctx.zeros(&[8], DType::U32)?;
    let p = FinalParams {
        groups: g as u32,
        n: n as u32,
        block: block as u32,
        nb: nb as u32,
        base_budget: base_budget as u32,
        alpha,
        _pad: [0; 2],
    };
    ctx.dispatch(&STATS_FINAL, &[], &p, &[&part, &state], [1, 1, 1])?;
    Ok(state)
}

/// Exclusive prefix sum of the `len` u32s of `x` (chunks of `SCAN_CHUNK`, recursing on the
/// chunk totals).
pub(crate) fn scan(ctx: &GpuContext, x: &GpuTensor, len: usize) -> Result<GpuTensor> {
    let y = ctx.zeros(&[len], DType::U32)?;
    let chunks = len.div_ceil(SCAN_CHUNK);
    let sums = ctx.zeros(&[chunks], DType::U32)?;
    let p = ScanLen {
        len: len as u32,
        _pad: [0; 3],
    };
    let groups = groups_1d(len, SCAN_CHUNK as u32);
    ctx.dispatch(&SCAN_LOCAL, &[], &p, &[x, &y, &sums], groups)?;
    if chunks > 1 {
        let offs = scan(ctx, &sums, chunks)?;
        ctx.dispatch(&SCAN_ADD, &[], &p, &[&offs, &y], flat(len))?;
    }
    Ok(y)
}

/// Reads back the first `count` words of a u32 tensor.
fn read_prefix(ctx: &GpuContext, t: &GpuTensor, count: usize) -> Result<Vec<u32>> {
    if count > t.numel() {
        return Err(DeviceError::Readback {
            op: "dsr_select".into(),
            message: format!("{count} selected of at most {}", t.numel()),
        });
    }
    let out = ctx.zeros(&[count], DType::U32)?;
    if count > 0 {
        ctx.scoped("dsr_select", || {
            ctx.with_encoder(|enc| {
                enc.copy_buffer_to_buffer(t.buffer(), 0, out.buffer(), 0, count as u64 * 4)
            })
        })?;
    }
    ctx.download_u32(&out)
}

/// Forward steps 2–4 on the device from the scores `s: [n_ctx]`.
pub fn select(
    ctx: &GpuContext,
    s: &GpuTensor,
    q0: usize,
    q1: usize,
    cfg: &DsrConfig,
) -> Result<GpuSelection> {
    const OP: &str = "dsr_select";
    check_dtype(OP, DType::F32, &[s])?;
    validate_config(OP, cfg)?;
    let n_ctx = s.numel();
    super::super::cpu::check_question(OP, n_ctx, q0, q1)?;
    let nq = q1 - q0;
    to_u32(OP, n_ctx + nq)?;
    let (block, nb) = (cfg.block, n_ctx.div_ceil(cfg.block));

    let bs = ctx.zeros(&[nb], DType::F32)?;
    let keys = ctx.zeros(&[nb], DType::U32)?;
    let p = BlockMax {
        n_ctx: n_ctx as u32,
        block: block as u32,
        nb: nb as u32,
        _pad: 0,
    };
    ctx.dispatch(&BLOCK_MAX, &[], &p, &[s, &bs, &keys], flat(nb))?;
    let state = softmax_state(ctx, s, block, nb, cfg.base_budget, cfg.alpha)?;

    let hist = ctx.zeros(&[4 * 256], DType::U32)?;
    let hg = partial_groups(nb);
    for pass in 0..4u32 {
        let p = Radix {
            nb: nb as u32,
            pass_: pass,
            groups: hg as u32,
            _pad: 0,
        };
        ctx.dispatch(
            &RADIX_HIST,
            &[],
            &p,
            &[&keys, &state, &hist],
            [hg as u32, 1, 1],
        )?;
        ctx.dispatch(&RADIX_PICK, &[], &p, &[&hist, &state], [1, 1, 1])?;
    }

    let p = Blocks {
        nb: nb as u32,
        _pad: [0; 3],
    };
    let ties = ctx.zeros(&[nb], DType::U32)?;
    ctx.dispatch(&MARK_TIES, &[], &p, &[&keys, &state, &ties], flat(nb))?;
    let rank = scan(ctx, &ties, nb)?;
    let sel = ctx.zeros(&[nb], DType::U32)?;
    ctx.dispatch(
        &MARK_SELECTED,
        &[],
        &p,
        &[&keys, &state, &rank, &sel],
        flat(nb),
    )?;
    let pos = scan(ctx, &sel, nb)?;

    let indices = ctx.zeros(&[n_ctx + nq], DType::U32)?;
    let info = ctx.zeros(&[8], DType::U32)?;
    let p = CompactParams {
        n_ctx: n_ctx as u32,
        block: block as u32,
        nb: nb as u32,
        q0: q0 as u32,
        nq: nq as u32,
        _pad: [0; 3],
    };
    ctx.dispatch(
        &COMPACT,
        &[],
        &p,
        &[&sel, &pos, &state, &indices, &info],
        flat(n_ctx + nq),
    )?;
    let info = ctx.download_u32(&info)?;
    let selected = read_prefix(ctx, &indices, info[0] as usize)?;
    Ok(GpuSelection {
        selection: DsrSelection {
            selected,
            kept_ctx: info[1] as usize,
            budget: info[3] as usize,
            keep_blocks: info[4] as usize,
            complexity: f32::from_bits(info[2]),
        },
        block_scores: bs,
        indices,
    })
}
