//! Data layer: the tokenizer, the NQ / NQ-open / SQuAD loaders on real samples and on
//! malformed input, the long-context QA builder, the synthetic generators and the `--data`
//! specs. Fixtures are under tests/data/ (provenance in tests/data/README.md).

use std::collections::HashSet;
use std::io::Cursor;

use dsrsq::data::synthetic::{mqar, needle, passkey, Mqar, Needle, Passkey};
use dsrsq::data::{
    nq, nq_open, squad, DataError, DataSpec, Example, LoadOptions, Loc, Split, Tok, UNANSWERABLE,
};

const NQ_DEV: &str = "tests/data/nq_simplified/farm_dev_sample.jsonl";
const NQ_TRAIN: &str = "tests/data/nq_simplified/farm_train_sample.jsonl";
const NQ_OPEN: &str = "tests/data/nq_open/NQ-open.efficientqa.dev.1.1.sample.jsonl";
const SQUAD: &str = "tests/data/squad/squad_v2_dev_Normans.json";
const BAD_NQ_OPEN: &str = "tests/data/malformed/nq_open_bad.jsonl";
const BAD_NQ: &str = "tests/data/malformed/nq_bad.jsonl";
const BAD_SQUAD: &str = "tests/data/malformed/squad_bad.json";
const STRICT: LoadOptions = LoadOptions { skip_bad: false };
const SKIP: LoadOptions = LoadOptions { skip_bad: true };

fn tok() -> Tok {
    Tok::bundled().expect("bundled tokenizer")
}

/// Text of the tokens `[s, e)` of an example.
fn text(t: &Tok, ex: &Example, (s, e): (usize, usize)) -> String {
    t.decode(&ex.ids[s..e]).unwrap()
}

/// The answer region's tokens (after the SEP at q1, before a trailing EOS).
fn answer_text(t: &Tok, ex: &Example) -> String {
    let end = ex.ids.len() - usize::from(*ex.ids.last().unwrap() == t.specials().eos);
    text(t, ex, (ex.q1 + 1, end))
}

/// The tokenizer's normal form of `s` (lower case, spaced punctuation).
fn norm(t: &Tok, s: &str) -> String {
    t.decode(&t.encode(s).unwrap()).unwrap()
}

// ---------- tokenizer ----------

#[test]
fn tokenizer_specials_round_trip_and_no_truncation() {
    let t = tok();
    let sp = t.specials();
    assert_eq!((sp.bos, sp.sep, sp.eos, sp.pad), (101, 102, 1, 0));
    assert_eq!(t.vocab_size(), 30_522);
    let same = Tok::from_file("assets/tokenizer/tokenizer.json").unwrap();
    assert_eq!(same.specials(), sp);

    let s = "Hello, World! The Normans (Norman: Nourmands) gave their name to Normandy.";
    let (ids, offs) = t.encode_with_offsets(s).unwrap();
    assert!(
        !ids.contains(&sp.bos) && !ids.contains(&sp.sep),
        "no specials added"
    );
    assert_eq!(ids.len(), offs.len());
    assert_eq!(
        t.decode(&ids).unwrap(),
        "hello, world! the normans ( norman : nourmands ) gave their name to normandy."
    );
    // Byte offsets point at the original text; a byte span maps back to its tokens.
    let b = s.find("Normandy").unwrap();
    let (a, z) = Tok::byte_span_to_tokens(&offs, b, b + "Normandy".len()).unwrap();
    assert_eq!(t.decode(&ids[a..z]).unwrap(), "normandy");
    // The file's fixed padding/truncation to 128 is off.
    let long = "word ".repeat(500);
    assert_eq!(t.encode(&long).unwrap().len(), 500);
    assert_eq!(t.encode("a").unwrap().len(), 1);
}

// ---------- Example ----------

#[test]
fn example_qa_layout_and_validation() {
    let sp = tok().specials();
    let ex = Example::qa(
        sp,
        &[10, 11, 12],
        &[20, 21],
        &[30],
        &[(1, 2)],
        vec!["x".into()],
    );
    assert_eq!(ex.ids, vec![101, 10, 11, 12, 102, 20, 21, 102, 30, 1]);
    assert_eq!((ex.n_ctx, ex.q0, ex.q1), (4, 5, 7));
    assert_eq!(ex.targets, vec![-1, -1, -1, -1, -1, -1, -1, 30, 1, -1]);
    assert_eq!(ex.spans, vec![(2, 3)]);
    ex.validate().unwrap();

    let mut bad = ex.clone();
    bad.targets[3] = 12;
    assert!(matches!(
        bad.validate(),
        Err(dsrsq::data::ExampleError::TargetBeforeAnswer { pos: 3, .. })
    ));
    let mut bad = ex.clone();
    bad.targets[7] = 31;
    assert!(bad.validate().is_err());
    let mut bad = ex.clone();
    bad.spans = vec![(3, 5)];
    assert!(bad.validate().is_err());
    let mut bad = ex.clone();
    bad.targets.pop();
    assert!(bad.validate().is_err());
    let mut bad = ex;
    bad.targets = vec![-1; bad.ids.len()];
    assert!(bad.validate().is_err());
}

#[test]
fn window_keeps_the_span() {
    use dsrsq::data::window;
    assert!(!window(10, 20, &[]).truncated);
    let w = window(1000, 100, &[]);
    assert_eq!((w.start, w.end, w.truncated), (0, 100, true));
    let w = window(1000, 100, &[(10, 20)]);
    assert_eq!((w.start, w.end), (0, 100));
    let w = window(1000, 100, &[(500, 510), (400, 800)]);
    assert!(w.start <= 500 && 510 <= w.end && w.end - w.start == 100);
    let w = window(1000, 100, &[(990, 1000)]);
    assert_eq!((w.start, w.end), (900, 1000));
}

// ---------- Natural Questions (simplified) ----------

#[test]
fn nq_dev_sample_short_answer_and_spans() {
    let (recs, report) = nq::read(NQ_DEV, &STRICT).unwrap();
    assert_eq!((recs.len(), report.records, report.skipped), (1, 1, 0));
    let r = &recs[0];
    assert_eq!(r.kind, nq::NqAnswer::Short);
    assert_eq!(r.qa.id, "5328212470870865242");
    assert_eq!(r.qa.question, "how i.met your mother who is the mother");
    assert_eq!(r.qa.answers, vec!["Tracy McConnell".to_string()]);
    assert!(!r.qa.unanswerable);
    assert_eq!(r.short_answers, vec![(213, 215)]);
    assert_eq!(r.long_answer, Some((212, 310)));
    assert_eq!(r.doc_tokens, 3948);
    assert!(r.text_tokens < r.doc_tokens, "HTML tokens removed");
    assert!(!r.qa.context.contains('<'), "no HTML left");
    let (s, e) = r.qa.support[0];
    assert_eq!(&r.qa.context[s..e], "Tracy McConnell");
    let (ls, le) = r.qa.support[1];
    assert!(ls <= s && e <= le, "long answer holds the short one");

    let t = tok();
    let c = r.qa.to_example(&t, 4096).unwrap();
    let ex = &c.example;
    ex.validate().unwrap();
    assert_eq!(text(&t, ex, ex.spans[0]), "tracy mcconnell");
    assert_eq!(answer_text(&t, ex), "tracy mcconnell");
    assert_eq!(
        text(&t, ex, (ex.q0, ex.q1)),
        "how i. met your mother who is the mother"
    );
    // A window far shorter than the document still holds the answer span.
    let c = r.qa.to_example(&t, 64).unwrap();
    assert!(c.truncated);
    assert_eq!(c.example.n_ctx, 64);
    assert_eq!(text(&t, &c.example, c.example.spans[0]), "tracy mcconnell");
}

#[test]
fn nq_train_sample_unanswerable_long_streamed() {
    let mut seen = Vec::new();
    let report = nq::for_each(NQ_TRAIN, &STRICT, |r| {
        seen.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!((report.records, report.skipped), (1, 0));
    let r = &seen[0];
    assert_eq!(r.doc_tokens, 17_964);
    assert_eq!(r.kind, nq::NqAnswer::None);
    assert!(r.qa.unanswerable && r.qa.answers.is_empty() && r.qa.support.is_empty());
    assert_eq!(r.long_answer, None);

    let t = tok();
    let c = r.qa.to_example(&t, 512).unwrap();
    assert!(c.truncated);
    let ex = &c.example;
    assert_eq!(ex.n_ctx, 512);
    assert!(ex.answers.is_empty() && ex.spans.is_empty());
    assert_eq!(answer_text(&t, ex), UNANSWERABLE);
    // No span known: the window keeps the document's start.
    assert!(text(&t, ex, (1, 6)).starts_with("list of wwe champions"));
}

// ---------- NQ-open ----------

#[test]
fn nq_open_sample_hundred_records() {
    let (recs, report) = nq_open::read(NQ_OPEN, &STRICT).unwrap();
    assert_eq!((recs.len(), report.skipped), (100, 0));
    assert_eq!(
        recs[0].question,
        "the last time la dodgers won the world series"
    );
    assert_eq!(recs[0].answers, vec!["1988"]);
    assert_eq!(recs[2].answers, vec!["Salzburg, Austria", "Austria"]);
    assert!(recs.iter().all(|r| r.context.is_empty() && !r.unanswerable));
    let t = tok();
    let ex = recs[2].to_example(&t, 4096).unwrap().example;
    assert_eq!((ex.n_ctx, ex.q0), (1, 2));
    assert_eq!(answer_text(&t, &ex), "salzburg, austria");
}

// ---------- SQuAD ----------

#[test]
fn squad_v2_normans_counts_and_spans() {
    let (recs, report) = squad::read(SQUAD, &STRICT).unwrap();
    assert_eq!((recs.len(), report.records, report.skipped), (208, 208, 0));
    assert_eq!(recs.iter().filter(|r| r.unanswerable).count(), 112);
    assert_eq!(recs[0].id, "56ddde6b9a695914005b9628");
    assert_eq!(recs[0].answers, vec!["France"]);
    assert_eq!(recs[0].group, "Normans#0");
    for r in &recs {
        assert_eq!(r.unanswerable, r.answers.is_empty(), "{}", r.id);
        for &(s, e) in &r.support {
            assert!(r.answers.iter().any(|a| a == &r.context[s..e]), "{}", r.id);
        }
    }
    // Contexts with non-ASCII text before the answer: char → byte conversion matters.
    assert!(recs
        .iter()
        .any(|r| !r.context.is_ascii() && !r.support.is_empty()));

    let t = tok();
    for r in recs.iter().filter(|r| !r.unanswerable) {
        let ex = r.to_example(&t, 4096).unwrap().example;
        let span = text(&t, &ex, ex.spans[0]);
        assert!(
            r.answers.iter().any(|a| norm(&t, a) == span),
            "{}: span {span:?} vs {:?}",
            r.id,
            r.answers
        );
        assert_eq!(answer_text(&t, &ex), norm(&t, &r.answers[0]));
    }
}

// ---------- malformed input ----------

/// The error's (path, location, field) or panics.
fn field_err(e: DataError) -> (String, Loc, String) {
    match e {
        DataError::Field {
            path, at, field, ..
        } => (path, at, field),
        other => panic!("expected a field error, got {other}"),
    }
}

#[test]
fn nq_open_malformed_lines_name_file_line_field() {
    let e = nq_open::read(BAD_NQ_OPEN, &STRICT).unwrap_err();
    match &e {
        DataError::Json { path, line, .. } => assert_eq!((path.as_str(), *line), (BAD_NQ_OPEN, 2)),
        other => panic!("expected bad JSON, got {other}"),
    }
    assert!(e.to_string().contains("nq_open_bad.jsonl:2"), "{e}");

    let one = |s: &str| nq_open::read_from(Cursor::new(s.to_string()), "mem.jsonl", &STRICT);
    let (p, at, f) = field_err(one("{\"question\": \"q\"}\n").unwrap_err());
    assert_eq!(
        (p.as_str(), at, f.as_str()),
        ("mem.jsonl", Loc::Line(1), "answer")
    );
    let (_, _, f) = field_err(one("\n{\"question\": \"q\", \"answer\": \"Paris\"}").unwrap_err());
    assert_eq!(f, "answer");
    let e = one("{\"question\": \"q\", \"answer\": [\"a\", 3]}").unwrap_err();
    assert!(
        e.to_string()
            .contains("mem.jsonl line 1: field `answer[1]`"),
        "{e}"
    );

    let (recs, report) = nq_open::read(BAD_NQ_OPEN, &SKIP).unwrap();
    assert_eq!((recs.len(), report.records, report.skipped), (2, 2, 3));
    assert_eq!(report.reasons.len(), 3);
    assert!(report.reasons[0].contains(":2"));
    assert!(report.reasons[1].contains("line 3") && report.reasons[1].contains("`answer`"));
    assert!(
        report.reasons[2].contains("line 4") && report.reasons[2].contains("expected an array")
    );
}

#[test]
fn nq_malformed_lines_name_file_line_field() {
    let e = nq::read(BAD_NQ, &STRICT).unwrap_err();
    assert!(matches!(&e, DataError::Json { line: 2, .. }), "{e}");

    let lines: Vec<&str> = include_str!("data/malformed/nq_bad.jsonl")
        .lines()
        .collect();
    let (_, at, f) = field_err(nq::parse_line(lines[2].as_bytes(), BAD_NQ, 3).unwrap_err());
    assert_eq!((at, f.as_str()), (Loc::Line(3), "question_text"));
    let e = nq::parse_line(lines[3].as_bytes(), BAD_NQ, 4).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let (_, _, f) = field_err(e);
    assert_eq!(f, "annotations[0].short_answers[0].start_token");
    let (_, _, f) = field_err(nq::parse_line(lines[4].as_bytes(), BAD_NQ, 5).unwrap_err());
    assert_eq!(f, "annotations");

    let (recs, report) = nq::read(BAD_NQ, &SKIP).unwrap();
    assert_eq!((recs.len(), report.skipped), (1, 4));
    assert_eq!(recs[0].qa.answers, vec!["William Shakespeare"]);
    assert_eq!(
        recs[0].qa.context,
        "Hamlet Hamlet is a tragedy written by William Shakespeare ."
    );
    let lines_named: Vec<bool> = (2..=5)
        .map(|l| {
            report
                .reasons
                .iter()
                .any(|r| r.contains(&format!("line {l}")) || r.contains(&format!(":{l}:")))
        })
        .collect();
    assert_eq!(lines_named, vec![true; 4], "{:?}", report.reasons);
}

#[test]
fn squad_malformed_questions_name_path_id_field() {
    let e = squad::read(BAD_SQUAD, &STRICT).unwrap_err();
    let msg = e.to_string();
    let (p, at, f) = field_err(e);
    assert_eq!(p, BAD_SQUAD);
    assert_eq!(
        at,
        Loc::Path("data[0].paragraphs[0].qas[1] (id mismatch)".into())
    );
    assert_eq!(f, "answers[0].answer_start");
    assert!(msg.contains("\"1067\""), "{msg}");

    let (recs, report) = squad::read(BAD_SQUAD, &SKIP).unwrap();
    assert_eq!((recs.len(), report.records, report.skipped), (1, 1, 5));
    // The good answer sits after "Café": char 25 is byte 26.
    let r = &recs[0];
    assert_eq!(&r.context[r.support[0].0..r.support[0].1], "1066");
    assert_eq!(r.support[0].0, 26);
    let want = [
        ("qas[1] (id mismatch)", "answers[0].answer_start"),
        ("qas[2] (id out_of_range)", "out of range"),
        ("qas[3] (id no_question)", "`question`: missing"),
        ("qas[4] (id wrong_type)", "expected an integer"),
        ("data[0].paragraphs[1]", "`context`: missing"),
    ];
    for (r, (a, b)) in report.reasons.iter().zip(want) {
        assert!(
            r.contains(BAD_SQUAD) && r.contains(a) && r.contains(b),
            "{r}"
        );
    }

    let e = squad::read_slice(b"{\n\"data\": [\n,]}", "mem.json", &STRICT).unwrap_err();
    assert!(matches!(&e, DataError::Json { line: 3, .. }), "{e}");
    let e = squad::read_slice(b"{\"version\": \"v2.0\"}", "mem.json", &STRICT).unwrap_err();
    assert_eq!(field_err(e).2, "data");
}

// ---------- synthetic tasks ----------

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

#[test]
fn nq_yes_no_long_only_and_choice_of_annotation() {
    let doc = "<P> Paris is the capital of France . </P> <P> It is large . </P>";
    let ann = |yn: &str, long: (i64, i64), short: &[(i64, i64)]| {
        let shorts: Vec<String> = short
            .iter()
            .map(|(s, e)| format!("{{\"start_token\": {s}, \"end_token\": {e}}}"))
            .collect();
        format!(
            "{{\"yes_no_answer\": \"{yn}\", \"long_answer\": {{\"start_token\": {}, \"end_token\": {}}}, \"short_answers\": [{}]}}",
            long.0,
            long.1,
            shorts.join(", ")
        )
    };
    let line = |anns: &[String]| {
        format!(
            "{{\"example_id\": \"x\", \"question_text\": \"q\", \"document_text\": \"{doc}\", \"annotations\": [{}]}}",
            anns.join(", ")
        )
    };
    let parse = |l: String| nq::parse_line(l.as_bytes(), "mem", 1).unwrap();

    let r = parse(line(&[ann("YES", (0, 9), &[])]));
    assert_eq!(
        (r.kind, r.qa.answers.clone()),
        (nq::NqAnswer::YesNo, vec!["yes".to_string()])
    );
    assert_eq!(r.qa.support.len(), 1);
    let (s, e) = r.qa.support[0];
    assert_eq!(&r.qa.context[s..e], "Paris is the capital of France .");

    let r = parse(line(&[ann("NONE", (9, 15), &[])]));
    assert_eq!(r.kind, nq::NqAnswer::LongOnly);
    assert_eq!(r.qa.answers, vec!["It is large ."]);

    // The first annotation WITH short answers wins over an earlier long-only one.
    let r = parse(line(&[
        ann("NONE", (9, 15), &[]),
        ann("NONE", (0, 9), &[(1, 2), (6, 7)]),
    ]));
    assert_eq!(r.kind, nq::NqAnswer::Short);
    assert_eq!(r.qa.answers, vec!["Paris", "France"]);
    assert_eq!(r.short_answers, vec![(1, 2), (6, 7)]);

    let r = parse(line(&[ann("NONE", (-1, -1), &[])]));
    assert!(r.qa.unanswerable && r.kind == nq::NqAnswer::None);

    let e = nq::parse_line(line(&[ann("MAYBE", (0, 9), &[])]).as_bytes(), "mem", 1).unwrap_err();
    assert_eq!(field_err(e).2, "annotations[0].yes_no_answer");
}
