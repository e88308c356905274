//! The streaming scenario of docs/DESIGN.md §5 and its three adaptation metrics.
//!
//! A stream is Landmark's passkey instruction followed by `segments` segments of filler
//! sentences (`segment_tokens` each). Each segment after the first holds a key line with
//! probability `key_prob` (the first always does): a new 5-digit pass key that supersedes the
//! previous one (an update). From segment `shift_at` on, key lines use a different format
//! ("Note that the pass key is now N.") — the distribution shift. After every segment the
//! model is asked "What is the pass key?" over the stream so far, with no weight updates, and
//! its greedy answer (KV-cache decoder) is right when it normalizes (SQuAD v1.1) to the
//! latest key. Every model gets the same streams (seeded).
//!
//! Each model reads the stream the way it reads any context: DSR scores the stream's tokens
//! against the question and picks blocks, the ring keeps its sinks and newest slots as
//! latents, a model without a retriever reads its last `model.max_len` tokens.
//!
//! Metrics (each on 0–1):
//! - age of a probe = context tokens after the latest key line; bucket = ⌊age / C⌋ with C =
//!   `rckv.buffer_size` (the cache capacity, the same for every variant of a config).
//! - information retention = accuracy over probes whose age exceeds the model's exact window
//!   W (W = 0 with RCKV: all context is read through latents; W = 2·`gca.chunk` for GCA,
//!   older rows only through retrieval; W = `model.max_len` otherwise, where rag and
//!   attention_rag reach older rows only through their chunk retrieval), also per age bucket.
//! - temporal consistency = over probes whose key has been updated at least once, the
//!   fraction answered with the latest value.
//! - adaptation speed = 1 − k/K: a_r = accuracy of round r over streams; K = rounds after the
//!   shift (at most the rounds before it); pre = mean a_r over the K rounds before the shift;
//!   k = first post-shift round index (0-based) with a_r ≥ 0.9·pre, or K if none. Undefined
//!   when pre = 0.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::generate::greedy_cached;
use super::squad::normalize_answer;
use crate::backend::Backend;
use crate::data::synthetic::passkey::{key_line, FILLER, INTRO, QUESTION};
use crate::data::{Example, Tok};
use crate::model::Model;
use crate::train::TrainError;

/// Shape of the streams.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamSpec {
    pub streams: usize,
    pub segments: usize,
    pub segment_tokens: usize,
    pub key_prob: f64,
    pub shift_at: usize,
    pub seed: u64,
}

/// The shifted key-line format.
pub fn shifted_key_line(n: u32) -> String {
    format!("Note that the pass key is now {n}.")
}

/// One generated stream: context tokens (after the intro) per segment, and the key (value,
/// end offset in the stream's context tokens) each segment set, if any.
struct Stream {
    ctx: Vec<u32>,
    /// Per segment: end of its tokens in `ctx`, and the key line it holds (value, end offset).
    segments: Vec<(usize, Option<(u32, usize)>)>,
}

fn make_stream(tok: &Tok, spec: &StreamSpec, index: usize) -> Result<Stream, TrainError> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ (0x5EED_0000 + index as u64));
    let filler = FILLER
        .iter()
        .map(|s| tok.encode(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ctx = tok.encode(INTRO)?;
    let mut segments = Vec::with_capacity(spec.segments);
    for r in 0..spec.segments {
        let key = (r == 0 || rng.random_bool(spec.key_prob))
            .then(|| rng.random_range(10_000..=99_999u32));
        let line = match key {
            Some(n) if r >= spec.shift_at => tok.encode(&shifted_key_line(n))?,
            Some(n) => tok.encode(&key_line(n))?,
            None => Vec::new(),
        };
        let mut sentences = Vec::new();
        let mut used = line.len();
        let mut f = rng.random_range(0..filler.len());
        while used + filler[f].len() <= spec.segment_tokens {
            used += filler[f].len();
            sentences.push(f);
            f = (f + 1) % filler.len();
        }
        let at = rng.random_range(0..=sentences.len());
        let mut set = None;
        for i in 0..=sentences.len() {
            if i == at {
                if let Some(n) = key {
                    ctx.extend_from_slice(&line);
                    set = Some((n, ctx.len()));
                }
            }
            if let Some(&s) = sentences.get(i) {
                ctx.extend_from_slice(&filler[s]);
            }
        }
        segments.push((ctx.len(), set));
    }
    Ok(Stream { ctx, segments })
}

/// One probe's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    pub stream: usize,
    pub round: usize,
    pub age: usize,
    pub updated: bool,
    pub correct: bool,
    pub prediction: String,
    pub answer: String,
}

/// Accuracy of the probes in one age bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bucket {
    /// Ages in `[bucket·C, (bucket+1)·C)` tokens.
    pub bucket: usize,
    pub probes: usize,
    pub accuracy: f64,
}

/// Everything the streaming scenario measured for one model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamReport {
    pub spec: StreamSpec,
    /// Cache capacity C (tokens per age bucket) and exact window W of this model.
    pub capacity: usize,
    pub exact_window: usize,
    pub information_retention: Option<f64>,
    pub retention_by_age: Vec<Bucket>,
    pub temporal_consistency: Option<f64>,
    pub adaptation_speed: Option<f64>,
    /// Accuracy per round over the streams.
    pub round_accuracy: Vec<f64>,
    pub probes: Vec<Probe>,
}

fn accuracy<'a>(probes: impl Iterator<Item = &'a Probe>) -> Option<f64> {
    let (n, ok) = probes.fold((0usize, 0usize), |(n, ok), p| {
        (n + 1, ok + usize::from(p.correct))
    });
    (n > 0).then(|| ok as f64 / n as f64)
}

/// 1 − k/K as defined in the module docs; `None` when there are no rounds on one side of
/// the shift or no accuracy before it.
pub fn adaptation_speed(round_accuracy: &[f64], shift_at: usize) -> Option<f64> {
    let before = shift_at.min(round_accuracy.len());
    let k_rounds = before.min(round_accuracy.len() - before);
    if k_rounds == 0 {
        return None;
    }
    let pre = round_accuracy[before - k_rounds..before]
        .iter()
        .sum::<f64>()
        / k_rounds as f64;
    if pre <= 0.0 {
        return None;
    }
    let k = round_accuracy[before..before + k_rounds]
        .iter()
        .position(|&a| a >= 0.9 * pre)
        .unwrap_or(k_rounds);
    Some(1.0 - k as f64 / k_rounds as f64)
}

/// Runs the streaming scenario on `model`. `progress(done, total)` after each probe.
pub fn run_streams<B: Backend>(
    be: &B,
    model: &Model<B>,
    tok: &Tok,
    spec: &StreamSpec,
    max_new: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<StreamReport, TrainError> {
    let cfg = &model.cfg;
    let capacity = cfg.rckv.buffer_size.max(1);
    let exact_window = if cfg.model.use_rckv {
        0
    } else if cfg.model.use_gca() {
        // GCA reads every row exactly, but beyond its local window (the previous chunk and
        // its own) only through retrieved chunks.
        2 * cfg.gca.chunk
    } else {
        cfg.model.max_len
    };
    let sp = tok.specials();
    let question = tok.encode(QUESTION)?;
    let total = spec.streams * spec.segments;
    let mut probes = Vec::with_capacity(total);
    for s in 0..spec.streams {
        let stream = make_stream(tok, spec, s)?;
        let mut latest: Option<(u32, usize)> = None;
        let mut keys_seen = 0;
        for (r, &(end, set)) in stream.segments.iter().enumerate() {
            if let Some(k) = set {
                latest = Some(k);
                keys_seen += 1;
            }
            let Some((value, key_end)) = latest else {
                continue;
            };
            let answer = value.to_string();
            let ex = Example::qa(
                sp,
                &stream.ctx[..end],
                &question,
                &tok.encode(&answer)?,
                &[],
                vec![answer.clone()],
            );
            let (g, _) = greedy_cached(be, model, &ex, sp.eos, max_new)?;
            let prediction = tok.decode(&g.tokens)?;
            probes.push(Probe {
                stream: s,
                round: r,
                age: end - key_end,
                updated: keys_seen > 1,
                correct: normalize_answer(&prediction) == normalize_answer(&answer),
                prediction,
                answer,
            });
            progress(probes.len(), total);
        }
    }
    let max_bucket = probes.iter().map(|p| p.age / capacity).max().unwrap_or(0);
    let retention_by_age = (0..=max_bucket)
        .filter_map(|b| {
            let inb = || probes.iter().filter(move |p| p.age / capacity == b);
            Some(Bucket {
                bucket: b,
                probes: inb().count(),
                accuracy: accuracy(inb())?,
            })
        })
        .collect();
    let round_accuracy: Vec<f64> = (0..spec.segments)
        .map(|r| accuracy(probes.iter().filter(|p| p.round == r)).unwrap_or(0.0))
        .collect();
    Ok(StreamReport {
        spec: spec.clone(),
        capacity,
        exact_window,
        information_retention: accuracy(probes.iter().filter(|p| p.age > exact_window)),
        retention_by_age,
        temporal_consistency: accuracy(probes.iter().filter(|p| p.updated)),
        adaptation_speed: adaptation_speed(&round_accuracy, spec.shift_at),
        round_accuracy,
        probes,
    })
}

#[cfg(test)]
mod tests {
    use super::adaptation_speed;

    #[test]
    fn adaptation_speed_counts_rounds_to_recover() {
        // Level 1.0 before the shift; back to >= 0.9 at the third post-shift round of 4.
        let a = [1.0, 1.0, 1.0, 1.0, 0.0, 0.5, 0.95, 1.0];
        assert_eq!(adaptation_speed(&a, 4), Some(1.0 - 2.0 / 4.0));
        // Never drops: k = 0.
        assert_eq!(adaptation_speed(&[0.5, 0.5, 0.5, 0.5], 2), Some(1.0));
        // Never recovers: k = K.
        assert_eq!(adaptation_speed(&[0.8, 0.8, 0.1, 0.1], 2), Some(0.0));
        // Nothing to return to, or no rounds after the shift.
        assert_eq!(adaptation_speed(&[0.0, 0.0, 0.5], 2), None);
        assert_eq!(adaptation_speed(&[0.5, 0.5], 2), None);
    }
}
