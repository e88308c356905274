//! Ring buffer: order and eviction against a one-token-at-a-time model (a sink list plus a
//! bounded deque, independent of the crate's slot arithmetic), the GPU ring equal to the CPU ring
//! bit for bit, the salient policy, reconstruction, reset and bad input.

use std::collections::VecDeque;

use dsrsq::device::GpuContext;
use dsrsq::kernels::check::{compare, random_vec, Tol};
use dsrsq::kernels::rckv::{cpu, GpuRingBuffer, RckvConfig, RckvDims, RingBuffer, WritePolicy};

use crate::common;

/// The obvious ring: sinks fill first and stay; the rest is a FIFO of `capacity − sink`.
struct Model {
    sink: usize,
    rotating: usize,
    sinks: Vec<(Vec<f32>, u32)>,
    fifo: VecDeque<(Vec<f32>, u32)>,
}

impl Model {
    fn new(cfg: &RckvConfig) -> Self {
        Self {
            sink: cfg.sink,
            rotating: cfg.capacity - cfg.sink,
            sinks: Vec::new(),
            fifo: VecDeque::new(),
        }
    }
    fn push(&mut self, lat: &[f32], pos: u32) {
        if self.sinks.len() < self.sink {
            self.sinks.push((lat.to_vec(), pos));
            return;
        }
        if self.fifo.len() == self.rotating {
            self.fifo.pop_front();
        }
        self.fifo.push_back((lat.to_vec(), pos));
    }
    fn gather(&self) -> (Vec<f32>, Vec<u32>) {
        let all = self.sinks.iter().chain(self.fifo.iter());
        let lat = all.clone().flat_map(|(l, _)| l.iter().copied()).collect();
        (lat, all.map(|&(_, p)| p).collect())
    }
}

/// Token `t`'s latent (distinct per token and column) and source position (≠ its step).
fn token(t: usize, latent: usize) -> (Vec<f32>, u32) {
    let lat = (0..latent).map(|j| (t * 100 + j) as f32 + 0.25).collect();
    (lat, (7 + 3 * t) as u32)
}

/// Batch sizes summing to `total`, cycling through `sizes`.
fn batches(total: usize, sizes: &[usize]) -> Vec<usize> {
    let (mut out, mut left, mut i) = (Vec::new(), total, 0);
    while left > 0 {
        let b = sizes[i % sizes.len()].min(left);
        out.push(b);
        left -= b;
        i += 1;
    }
    out
}

/// Writes `total` tokens in the given batches into a CPU ring, the model, and (if given) a GPU
/// ring; checks order, positions, eviction and steps, and that the GPU storage equals the CPU's.
fn run(cfg: RckvConfig, total: usize, sizes: &[usize], ctx: Option<&GpuContext>) {
    let what = format!("{cfg:?} total={total} batches={sizes:?}");
    let l = cfg.latent;
    let mut ring = RingBuffer::new(cfg).unwrap();
    let mut model = Model::new(&cfg);
    let mut g = ctx.map(|c| GpuRingBuffer::new(c, cfg).unwrap());
    let mut t = 0;
    for b in batches(total, sizes) {
        let toks: Vec<_> = (t..t + b).map(|i| token(i, l)).collect();
        let lat: Vec<f32> = toks.iter().flat_map(|(x, _)| x.iter().copied()).collect();
        let pos: Vec<u32> = toks.iter().map(|&(_, p)| p).collect();
        toks.iter().for_each(|(x, p)| model.push(x, *p));
        assert_eq!(ring.write(&lat, &pos, None).unwrap(), b, "{what}");
        if let (Some(c), Some(g)) = (ctx, g.as_mut()) {
            let gl = c.upload(&lat, &[b, l]).unwrap();
            assert_eq!(g.write(c, &gl, &pos, None).unwrap(), b, "{what}");
        }
        t += b;
    }
    assert_eq!(ring.len(), total.min(cfg.capacity), "{what}");
    let (lat, pos) = ring.gather_in_age_order();
    assert_eq!(
        (&lat, &pos),
        (&model.gather().0, &model.gather().1),
        "{what}"
    );
    // Sinks hold the first tokens forever.
    let sinks = total.min(cfg.sink);
    let first: Vec<u32> = (0..sinks).map(|i| token(i, l).1).collect();
    assert_eq!(&pos[..sinks], &first[..], "sinks evicted: {what}");
    // Steps: the token number written into each live slot, strictly increasing in age order.
    let slots = ring.slots();
    let steps: Vec<u32> = ring
        .state()
        .age_order()
        .iter()
        .map(|&s| slots.steps[s])
        .collect();
    let want: Vec<u32> = (0..sinks)
        .chain(total - (ring.len() - sinks)..total)
        .map(|s| s as u32)
        .collect();
    assert_eq!(steps, want, "steps {what}");
    if let (Some(c), Some(g)) = (ctx, g.as_ref()) {
        assert_eq!(g.len(), ring.len(), "{what}");
        assert_eq!(&g.download_slots(c).unwrap(), slots, "gpu slots {what}");
        let (gl, gp) = g.gather_in_age_order(c).unwrap();
        assert_eq!(gl.shape, vec![ring.len(), l]);
        assert_eq!(c.download(&gl).unwrap(), lat, "gpu gather {what}");
        assert_eq!(c.download_u32(&gp).unwrap(), pos, "gpu positions {what}");
    }
}

fn small_configs() -> [RckvConfig; 3] {
    let base = RckvConfig {
        latent: 3,
        capacity: 8,
        sink: 2,
        policy: WritePolicy::All,
    };
    [
        base,
        RckvConfig { sink: 0, ..base },
        RckvConfig {
            capacity: 5,
            sink: 4,
            latent: 1,
            ..base
        },
    ]
}

/// Single writes; mixed batches incl. one larger than the capacity; everything in one batch.
const SCHEDULES: [&[usize]; 4] = [&[1], &[3, 5, 1, 2], &[17, 2], &[usize::MAX]];

fn check_counts(ctx: Option<&GpuContext>) {
    for cfg in small_configs() {
        let cap = cfg.capacity;
        for total in [0, 1, cap - 1, cap, cap + 1, 10 * cap + 3] {
            for sizes in SCHEDULES {
                run(cfg, total, sizes, ctx);
            }
        }
    }
}

#[test]
fn ring_order_and_eviction_are_exact_on_cpu() {
    check_counts(None);
    // The seed configuration, wrapped ten times, in batches of every shape.
    for sizes in SCHEDULES {
        run(RckvConfig::seed(), 10 * 1024 + 3, sizes, None);
    }
}

#[test]
fn gpu_ring_equals_cpu_ring() {
    let Some(ctx) = common::gpu("gpu_ring_equals_cpu_ring") else {
        return;
    };
    check_counts(Some(ctx));
    run(RckvConfig::seed(), 10 * 1024 + 3, &[1500, 700], Some(ctx));
}

#[test]
fn salient_policy_writes_only_salient_tokens() {
    let cfg = RckvConfig {
        latent: 2,
        capacity: 6,
        sink: 1,
        policy: WritePolicy::Salient { threshold: 0.2 },
    };
    let m = 40;
    let mut sal = random_vec(5, m, 1.0);
    sal[3] = f32::NAN;
    sal[4] = 0.2;
    let toks: Vec<_> = (0..m).map(|i| token(i, cfg.latent)).collect();
    let lat: Vec<f32> = toks.iter().flat_map(|(x, _)| x.iter().copied()).collect();
    let pos: Vec<u32> = toks.iter().map(|&(_, p)| p).collect();
    let mut model = Model::new(&cfg);
    let kept: Vec<usize> = (0..m).filter(|&i| sal[i] >= 0.2).collect();
    kept.iter().for_each(|&i| model.push(&toks[i].0, toks[i].1));
    assert!(kept.contains(&4) && !kept.contains(&3));
    let mut ring = RingBuffer::new(cfg).unwrap();
    // Two batches, so the filter and the head carry across calls.
    let split = 17;
    let l = cfg.latent;
    let n1 = ring
        .write(&lat[..split * l], &pos[..split], Some(&sal[..split]))
        .unwrap();
    let n2 = ring
        .write(&lat[split * l..], &pos[split..], Some(&sal[split..]))
        .unwrap();
    assert_eq!(n1 + n2, kept.len());
    assert_eq!(ring.gather_in_age_order(), model.gather());
    assert!(
        ring.write(&lat[..l], &pos[..1], None).is_err(),
        "salient without saliences"
    );
    let Some(ctx) = common::gpu("salient_policy_writes_only_salient_tokens") else {
        return;
    };
    let mut g = GpuRingBuffer::new(ctx, cfg).unwrap();
    for (a, b) in [(0, split), (split, m)] {
        let gl = ctx.upload(&lat[a * l..b * l], &[b - a, l]).unwrap();
        g.write(ctx, &gl, &pos[a..b], Some(&sal[a..b])).unwrap();
    }
    assert_eq!(&g.download_slots(ctx).unwrap(), ring.slots());
}

#[test]
fn ring_reconstructs_stored_kv_in_age_order() {
    // Identity projections (latent = 2·dm): the cache hands back exactly the k, v of the
    // surviving tokens, oldest first — the uncompressed model's KV.
    let (dm, n) = (2, 23);
    let cfg = RckvConfig {
        latent: 2 * dm,
        capacity: 7,
        sink: 2,
        policy: WritePolicy::All,
    };
    let d = RckvDims {
        n,
        dm,
        latent: 2 * dm,
    };
    let k = random_vec(11, n * dm, 5.0);
    let v = random_vec(12, n * dm, 5.0);
    let mut eye = vec![0.0f32; 16];
    (0..4).for_each(|i| eye[i * 4 + i] = 1.0);
    let c = cpu::compress(&k, &v, &eye, &d).unwrap();
    let pos: Vec<u32> = (0..n as u32).collect();
    let mut ring = RingBuffer::new(cfg).unwrap();
    ring.write(&c, &pos, None).unwrap();
    let (kh, vh) = ring.reconstruct(&eye, dm).unwrap();
    let live: Vec<usize> = (0..2).chain(n - 5..n).collect();
    let pick = |a: &[f32]| -> Vec<f32> {
        live.iter()
            .flat_map(|&t| a[t * dm..(t + 1) * dm].to_vec())
            .collect()
    };
    assert_eq!((kh.clone(), vh.clone()), (pick(&k), pick(&v)));
    assert!(ring.reconstruct(&eye[1..], dm).is_err());

    let Some(ctx) = common::gpu("ring_reconstructs_stored_kv_in_age_order") else {
        return;
    };
    let mut g = GpuRingBuffer::new(ctx, cfg).unwrap();
    let gc = ctx.upload(&c, &[n, 2 * dm]).unwrap();
    g.write(ctx, &gc, &pos, None).unwrap();
    let (gk, gv) = g
        .reconstruct(ctx, &ctx.upload(&eye, &[4, 4]).unwrap())
        .unwrap();
    assert_eq!(ctx.download(&gk).unwrap(), kh);
    assert_eq!(ctx.download(&gv).unwrap(), vh);
    // A general U: GPU product vs CPU product (reduction over latent = 4 terms).
    let u = random_vec(13, 16, 1.0);
    let (ck, cv) = ring.reconstruct(&u, dm).unwrap();
    let (gk, gv) = g
        .reconstruct(ctx, &ctx.upload(&u, &[4, 4]).unwrap())
        .unwrap();
    let tol = Tol::new(1e-5, 1e-5);
    common::assert_ok(compare("ring k̂", &ctx.download(&gk).unwrap(), &ck, tol));
    common::assert_ok(compare("ring v̂", &ctx.download(&gv).unwrap(), &cv, tol));
}

#[test]
fn reset_empties_the_ring() {
    let cfg = small_configs()[0];
    let (lat, pos): (Vec<f32>, Vec<u32>) = ((0..30).map(|i| i as f32).collect(), (0..10).collect());
    let mut ring = RingBuffer::new(cfg).unwrap();
    ring.write(&lat, &pos, None).unwrap();
    ring.reset();
    assert!(ring.is_empty());
    assert_eq!(ring.gather_in_age_order(), (vec![], vec![]));
    assert_eq!(ring.reconstruct(&[0.0; 6], 1).unwrap(), (vec![], vec![]));
    let fresh = RingBuffer::new(cfg).unwrap();
    assert_eq!(ring.slots(), fresh.slots());
    let Some(ctx) = common::gpu("reset_empties_the_ring") else {
        return;
    };
    let mut g = GpuRingBuffer::new(ctx, cfg).unwrap();
    g.write(ctx, &ctx.upload(&lat, &[10, 3]).unwrap(), &pos, None)
        .unwrap();
    g.reset(ctx).unwrap();
    assert!(g.is_empty());
    assert_eq!(&g.download_slots(ctx).unwrap(), fresh.slots());
    let (gk, gv) = g
        .reconstruct(ctx, &ctx.upload(&[0.0; 6], &[2, 3]).unwrap())
        .unwrap();
    assert_eq!(
        (gk.shape.clone(), gv.shape.clone()),
        (vec![0, 1], vec![0, 1])
    );
}

#[test]
fn bad_ring_input_is_an_error_not_a_panic() {
    let ok = small_configs()[0];
    for bad in [
        RckvConfig { sink: 8, ..ok },
        RckvConfig { sink: 9, ..ok },
        RckvConfig { latent: 0, ..ok },
        RckvConfig {
            policy: WritePolicy::Salient {
                threshold: f32::NAN,
            },
            ..ok
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        assert!(RingBuffer::new(bad).is_err(), "{bad:?}");
    }
    assert!(RckvConfig::seed().validate().is_ok());
    let mut ring = RingBuffer::new(ok).unwrap();
    // Latent mismatch (7 values are not rows of 3), positions length ≠ m.
    assert!(ring.write(&[0.0; 7], &[0, 1], None).is_err());
    assert!(ring.write(&[0.0; 6], &[0], None).is_err());
    assert!(ring.write(&[0.0; 6], &[0, 1, 2], None).is_err());
    assert!(ring.is_empty(), "a failed write must not move the head");
    let Some(ctx) = common::gpu("bad_ring_input_is_an_error_not_a_panic") else {
        return;
    };
    assert!(GpuRingBuffer::new(ctx, RckvConfig { sink: 8, ..ok }).is_err());
    let mut g = GpuRingBuffer::new(ctx, ok).unwrap();
    let wide = ctx.upload(&[0.0; 8], &[2, 4]).unwrap();
    let err = g.write(ctx, &wide, &[0, 1], None).unwrap_err().to_string();
    assert!(err.contains("rckv_write"), "{err}");
    let rows = ctx.upload(&[0.0; 6], &[2, 3]).unwrap();
    assert!(g.write(ctx, &rows, &[0], None).is_err());
    assert!(g.write(ctx, &rows, &[0, 1, 2], None).is_err());
    let ids = ctx.upload_u32(&[0; 6], &[2, 3]).unwrap();
    assert!(g.write(ctx, &ids, &[0, 1], None).is_err());
    assert!(g.is_empty());
}
