//! Data layer, part 2: the long-context QA builder, the synthetic generators (passkey,
//! MQAR, needle), the `--data` specs and the datasets they open.

use std::collections::HashSet;

use dsrsq::data::synthetic::{mqar, needle, passkey, Mqar, Needle, Passkey};
use dsrsq::data::{squad, DataError, DataSpec, Example, Split};

use crate::data_util;
use data_util::*;

#[test]
fn passkey_deterministic_length_and_key_span() {
    let t = tok();
    for ctx in [512, 2048] {
        let g = Passkey::new(&t, ctx, 7, Split::Train).unwrap();
        let longest = passkey::FILLER
            .iter()
            .map(|s| t.encode(s).unwrap().len())
            .max()
            .unwrap();
        for i in 0..5 {
            let ex = g.example(i).unwrap();
            ex.validate().unwrap();
            assert_eq!(
                ex,
                g.example(i).unwrap(),
                "same (seed, index), same example"
            );
            assert!(
                ex.n_ctx <= ctx && ex.n_ctx > ctx - longest,
                "n_ctx {} for {ctx}",
                ex.n_ctx
            );
            let key = &ex.answers[0];
            assert_eq!(key.len(), 5);
            assert_eq!(
                text(&t, &ex, ex.spans[0]),
                norm(&t, &passkey::key_line(key.parse().unwrap()))
            );
            assert_eq!(answer_text(&t, &ex), *key);
            assert_eq!(text(&t, &ex, (ex.q0, ex.q1)), "what is the pass key?");
        }
        assert_ne!(g.example(0).unwrap(), g.example(1).unwrap());
    }
    let a = Passkey::new(&t, 512, 7, Split::Train).unwrap();
    let b = Passkey::new(&t, 512, 7, Split::Eval).unwrap();
    let c = Passkey::new(&t, 512, 8, Split::Train).unwrap();
    assert_ne!(
        a.example(0).unwrap(),
        b.example(0).unwrap(),
        "eval is another stream"
    );
    assert_ne!(a.example(0).unwrap(), c.example(0).unwrap());
    // Key positions vary over indices (random insertion point).
    let starts: HashSet<usize> = (0..20).map(|i| a.example(i).unwrap().spans[0].0).collect();
    assert!(starts.len() > 5);
    assert!(Passkey::new(&t, 20, 0, Split::Train).is_err());
}

#[test]
fn mqar_targets_exactly_at_values() {
    let t = tok();
    let g = Mqar::new(&t, 256, 16, 16, None, 3, Split::Train).unwrap();
    assert!(g.keys.end <= g.values.start && g.values.end <= g.filler.start);
    assert!(g.keys.start >= mqar::FIRST_WORD_ID && g.filler.end as usize <= t.vocab_size());
    for i in 0..10 {
        let ex = g.example(i).unwrap();
        ex.validate().unwrap();
        assert_eq!(ex, g.example(i).unwrap());
        assert_eq!(ex.n_ctx, 256);
        let ctx = &ex.ids[..ex.n_ctx];
        let keys_in_ctx: Vec<u32> = ctx.iter().copied().filter(|x| g.keys.contains(x)).collect();
        assert_eq!(keys_in_ctx.len(), 16, "every key once");
        assert_eq!(keys_in_ctx.iter().collect::<HashSet<_>>().len(), 16);
        let question = &ex.ids[ex.q0..ex.q1];
        assert_eq!(question.len(), 16);
        assert_eq!(ex.ids[ex.q1], t.specials().sep);
        let answer = &ex.ids[ex.q1 + 1..];
        assert_eq!(answer.len(), 32, "k v per query, no EOS");
        for (j, &k) in question.iter().enumerate() {
            let p = ex.q1 + 1 + 2 * j;
            assert_eq!(ex.ids[p], k, "answer keys in question order");
            let at = ctx.iter().position(|&x| x == k).unwrap();
            let v = ctx[at + 1];
            assert!(g.values.contains(&v));
            assert_eq!(ex.ids[p + 1], v);
            assert_eq!(ex.targets[p], v as i32, "the key predicts its value");
            assert!(ex.spans.contains(&(at, at + 2)));
        }
        let scored: Vec<usize> = (0..ex.ids.len()).filter(|&p| ex.targets[p] != -1).collect();
        let want: Vec<usize> = (0..16).map(|j| ex.q1 + 1 + 2 * j).collect();
        assert_eq!(scored, want, "targets only at the answer keys");
        assert_eq!(ex.spans.len(), 16);
    }
    assert_ne!(g.example(0).unwrap(), g.example(1).unwrap());
    // Fewer queries than pairs; a small id range.
    let g = Mqar::new(&t, 64, 8, 3, Some(50), 3, Split::Eval).unwrap();
    let ex = g.example(5).unwrap();
    assert_eq!((ex.q1 - ex.q0, ex.spans.len(), ex.n_targets()), (3, 3, 3));
    assert!(ex.ids[1..ex.n_ctx]
        .iter()
        .all(|x| (1996..1996 + 150).contains(x)));
    assert!(
        Mqar::new(&t, 16, 8, 8, None, 0, Split::Train).is_err(),
        "ctx too small"
    );
    assert!(
        Mqar::new(&t, 64, 8, 9, None, 0, Split::Train).is_err(),
        "queries > pairs"
    );
}

#[test]
fn needle_depth_placement_and_sweep() {
    let t = tok();
    let n = t.encode(needle::NEEDLE).unwrap().len();
    for &depth in &[0.0, 0.25, 0.5, 0.75, 1.0] {
        let g = Needle::new(&t, 1024, Some(depth), 11, Split::Train).unwrap();
        for i in 0..3 {
            let ex = g.example(i).unwrap();
            ex.validate().unwrap();
            assert_eq!(ex, g.example(i).unwrap());
            assert_eq!(ex.n_ctx, 1024);
            let (s, e) = ex.spans[0];
            assert_eq!(e - s, n);
            assert_eq!(text(&t, &ex, (s, e)), norm(&t, needle::NEEDLE));
            let target = (depth * (1023 - n) as f64).round() as usize;
            assert!(
                s - 1 <= target && target - (s - 1) <= needle::MAX_BACKOFF,
                "depth {depth}: start {s}"
            );
            let got = g.depth_of(&ex).unwrap();
            assert!((got - depth).abs() <= needle::MAX_BACKOFF as f64 / (1023 - n) as f64);
            assert_eq!(answer_text(&t, &ex), norm(&t, needle::ANSWER));
        }
    }
    // Longer than the haystack (about 6k tokens): it repeats.
    let g = Needle::new(&t, 10_000, None, 1, Split::Eval).unwrap();
    assert_eq!(g.example(0).unwrap().n_ctx, 10_000);

    let cases = needle::sweep(&t, 0, &[256, 512], &[0.0, 0.5, 1.0]).unwrap();
    assert_eq!(cases.len(), 6);
    for c in &cases {
        assert_eq!(c.example.n_ctx, c.ctx);
        c.example.validate().unwrap();
    }
    assert!(cases[0].example.spans[0].0 < cases[1].example.spans[0].0);
    assert!(Needle::new(&t, 1024, Some(1.5), 0, Split::Train).is_err());
}

#[test]
fn longqa_gold_among_distractors_at_depth() {
    let t = tok();
    let (recs, _) = squad::read(SQUAD, &STRICT).unwrap();
    for &depth in &[0.0, 0.5, 1.0] {
        let g = dsrsq::data::longqa::LongQa::new(
            &t,
            &recs,
            |_| true,
            1024,
            Some(depth),
            5,
            Split::Train,
        )
        .unwrap();
        assert_eq!((g.len(), g.excluded), (96, 112));
        for (item, index) in [(0, 0), (10, 1), (95, 2)] {
            let ex = g.example(item, index).unwrap();
            ex.validate().unwrap();
            assert_eq!(ex, g.example(item, index).unwrap());
            assert_eq!(ex.n_ctx, 1024);
            let span = text(&t, &ex, ex.spans[0]);
            let answers: Vec<String> = ex.answers.iter().map(|a| norm(&t, a)).collect();
            assert!(answers.contains(&span), "{span:?} vs {answers:?}");
            // The gold paragraph starts at its depth: find it by its tokens.
            let gold = t
                .encode(
                    &recs
                        .iter()
                        .filter(|r| !r.unanswerable)
                        .nth(item)
                        .unwrap()
                        .context,
                )
                .unwrap();
            let at = ex.ids[..ex.n_ctx]
                .windows(gold.len())
                .position(|w| w == gold.as_slice())
                .unwrap();
            let room = 1023 - gold.len();
            assert_eq!(at - 1, (depth * room as f64).round() as usize);
        }
    }
}

// ---------- specs and datasets ----------

#[test]
fn data_spec_parse_and_errors() {
    let ok = [
        "passkey:ctx=2048",
        "passkey",
        "mqar:ctx=256,pairs=16",
        "mqar:ctx=128,pairs=8,queries=4,range=100",
        "needle:ctx=4096,depth=0.5",
        "squad:tests/data/squad/squad_v2_dev_Normans.json",
        "nq:some/file.jsonl,ctx=1024,holdout=0",
        "nq-open:file.jsonl",
        "longqa:file.json,ctx=4096,depth=0.5",
    ];
    for s in ok {
        let spec = DataSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            DataSpec::parse(&spec.to_string()).unwrap(),
            spec,
            "{s} round trip"
        );
    }
    assert_eq!(
        DataSpec::parse("mqar:ctx=256,pairs=16").unwrap(),
        DataSpec::Mqar {
            ctx: 256,
            pairs: 16,
            queries: 16,
            range: None
        }
    );
    let bad = [
        ("wiki:ctx=5", "unknown kind `wiki`"),
        ("passkey:ctx=2048,len=3", "unknown key `len`"),
        ("mqar:pairs=x", "`pairs` has a bad value"),
        ("needle:depth=1.5", "not in [0, 1]"),
        ("squad", "needs a path"),
        ("squad:ctx=5", "needs a path"),
        ("passkey:ctx=1,ctx=2", "given twice"),
        ("passkey:2048", "not key=value"),
        ("passkey:ctx=0", "must be positive"),
        ("nq-open:f.jsonl,ctx=5", "unknown key `ctx`"),
    ];
    for (s, want) in bad {
        let e = DataSpec::parse(s).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(s), "{s}: {e}");
    }
}

#[test]
fn generated_datasets_are_deterministic_and_endless() {
    let t = tok();
    for s in [
        "passkey:ctx=256",
        "mqar:ctx=128,pairs=8",
        "needle:ctx=256,depth=0.3",
    ] {
        let spec = DataSpec::parse(s).unwrap();
        let train = spec.open(&t, 1, Split::Train, &STRICT).unwrap();
        let again = spec.open(&t, 1, Split::Train, &STRICT).unwrap();
        let eval = spec.open(&t, 1, Split::Eval, &STRICT).unwrap();
        assert_eq!(train.len(), None);
        for i in [0, 1, 1_000_000_007] {
            let ex = train.example(i).unwrap();
            assert_eq!(ex, again.example(i).unwrap());
            assert_ne!(ex, eval.example(i).unwrap(), "{s}");
        }
        assert_eq!(train.describe(), spec.to_string());
    }
}

#[test]
fn file_datasets_split_and_walk_epochs() {
    let t = tok();
    let open = |s: &str, split| {
        DataSpec::parse(s)
            .unwrap()
            .open(&t, 9, split, &STRICT)
            .unwrap()
    };
    let train = open(
        "squad:tests/data/squad/squad_v2_dev_Normans.json,ctx=512",
        Split::Train,
    );
    let eval = open(
        "squad:tests/data/squad/squad_v2_dev_Normans.json,ctx=512",
        Split::Eval,
    );
    let (nt, ne) = (train.len().unwrap(), eval.len().unwrap());
    assert_eq!(nt + ne, 208, "each question in exactly one split");
    assert!(ne > 0 && nt > ne);
    assert_eq!(train.report().load.records, 208);
    // No context on both sides.
    let ctx_of = |d: &dyn dsrsq::data::Dataset, n: usize| -> HashSet<Vec<u32>> {
        (0..n as u64)
            .map(|i| {
                let e = d.example(i).unwrap();
                e.ids[..e.n_ctx].to_vec()
            })
            .collect()
    };
    assert!(ctx_of(&*train, nt).is_disjoint(&ctx_of(&*eval, ne)));
    // Train: every epoch is a permutation of the same examples, in a different order.
    let epoch = |e: u64| -> Vec<Example> {
        (0..nt as u64)
            .map(|i| train.example(e * nt as u64 + i).unwrap())
            .collect()
    };
    let (e0, e1) = (epoch(0), epoch(1));
    assert_ne!(e0, e1);
    let key = |v: &[Example]| {
        let mut k: Vec<Vec<u32>> = v.iter().map(|x| x.ids.clone()).collect();
        k.sort();
        k
    };
    assert_eq!(key(&e0), key(&e1));
    // Eval: file order, repeating.
    assert_eq!(eval.example(0).unwrap(), eval.example(ne as u64).unwrap());

    let all = open(
        "nq-open:tests/data/nq_open/NQ-open.efficientqa.dev.1.1.sample.jsonl,holdout=0",
        Split::Eval,
    );
    assert_eq!(all.len(), Some(100));
    let nq = open(
        "nq:tests/data/nq_simplified/farm_dev_sample.jsonl,ctx=256,holdout=0",
        Split::Train,
    );
    assert_eq!(nq.len(), Some(1));
    let ex = nq.example(3).unwrap();
    assert_eq!(ex.n_ctx, 256);
    assert_eq!(text(&t, &ex, ex.spans[0]), "tracy mcconnell");
    assert_eq!(nq.report().truncated, 1);

    let lq = open(
        "longqa:tests/data/squad/squad_v2_dev_Normans.json,ctx=512,depth=0.5,holdout=0",
        Split::Train,
    );
    assert_eq!((lq.len(), lq.report().excluded), (Some(96), 112));
    assert_eq!(lq.example(7).unwrap().n_ctx, 512);

    let e =
        DataSpec::parse("squad:tests/data/nope.json")
            .unwrap()
            .open(&t, 0, Split::Train, &STRICT);
    assert!(matches!(e, Err(DataError::Io { .. })));
    let bad = DataSpec::parse(&format!("nq-open:{BAD_NQ_OPEN},holdout=0")).unwrap();
    assert!(bad.open(&t, 0, Split::Train, &STRICT).is_err());
    let d = bad.open(&t, 0, Split::Train, &SKIP).unwrap();
    assert_eq!((d.len(), d.report().load.skipped), (Some(2), 3));
}
