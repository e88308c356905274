//! Train/eval separation and per-index seeding, shared by every dataset.
//!
//! - Generated tasks: example `i` of split `s` is drawn from a ChaCha8 stream keyed by
//!   `(seed, s)` and positioned at stream `i`, so it depends on nothing but `(seed, s, i)`:
//!   a run resumes at any index, and Eval draws from a different key than Train (held out
//!   in the sense that its examples come from an independent stream).
//! - Files: a record belongs to Eval when the FNV-1a hash of its `group` (mixed by SplitMix64) (its context's
//!   identity, so one context never lands on both sides) falls in the first `holdout`
//!   fraction of the hash range. The split depends only on the data, not on the seed, so
//!   the held-out set is the same for every run. `holdout = 0` means "no split": both
//!   splits see every record (for a file that is itself a dev set).
//! - Train walks epochs: index `i` is position `i mod n` of a permutation seeded by
//!   `(seed, i div n)`; Eval walks the records in file order (epochs repeat it).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Eval,
}

impl Split {
    fn tag(self) -> u64 {
        match self {
            Split::Train => 0x7472_6169_6e00_0001,
            Split::Eval => 0x6576_616c_0000_0002,
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 256-bit ChaCha key from `(seed, domain)`, expanded with SplitMix64.
fn key(seed: u64, domain: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    let mut x = seed ^ splitmix64(domain);
    for chunk in k.chunks_exact_mut(8) {
        x = splitmix64(x);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    k
}

/// The generator of example `index` of `split`.
pub fn rng_for(seed: u64, split: Split, index: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::from_seed(key(seed, split.tag()));
    r.set_stream(index);
    r
}

/// 64-bit FNV-1a: stable across platforms and Rust versions (unlike `DefaultHasher`).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether a record of `group` belongs to `split` under `holdout` (see module doc).
pub fn in_split(group: &str, split: Split, holdout: f64) -> bool {
    if holdout <= 0.0 {
        return true;
    }
    // FNV-1a alone barely moves its top bits when only the last byte differs
    // ("title#1" vs "title#2"); SplitMix64 mixes them before the fraction is taken.
    let u = (splitmix64(fnv1a(group)) >> 11) as f64 / (1u64 << 53) as f64;
    (u < holdout) == (split == Split::Eval)
}

/// Permutation of `0..n` for one training epoch.
pub fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut r = ChaCha8Rng::from_seed(key(seed, 0x6570_6f63_6800_0003));
    r.set_stream(epoch);
    order.shuffle(&mut r);
    order
}
