//! Seeded synthetic long-context tasks that tiny models learn on a CPU: passkey retrieval,
//! multi-query associative recall and needle-in-a-haystack. Each generator's
//! `example(index)` depends only on `(seed, split, index)` ([`super::split::rng_for`]), so a
//! training run can resume at any position and Eval never replays Train's stream.

pub mod mqar;
pub mod needle;
pub mod passkey;

pub use mqar::Mqar;
pub use needle::{sweep, Needle, NeedleCase};
pub use passkey::Passkey;
