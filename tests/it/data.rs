//! Data layer, part 1: the tokenizer, the example layout, and the NQ / NQ-open / SQuAD
//! loaders on real samples and on malformed input. Fixtures are under tests/data/
//! (provenance in tests/data/README.md); generators and specs are in data_tasks.rs.

use std::io::Cursor;

use dsrsq::data::{nq, nq_open, squad, DataError, Example, Loc, Tok, UNANSWERABLE};

use crate::data_util;
use data_util::*;

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

    let lines: Vec<&str> = include_str!("../data/malformed/nq_bad.jsonl")
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
