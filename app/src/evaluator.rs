//! Held-out evaluation of the current model in a background thread (`eval::harness`), with
//! the time between its per-example progress calls as each example's latency, live.

use std::sync::mpsc::{channel, Receiver};
use std::time::Instant;

use dsrsq::data::{DataSpec, LoadOptions, Split, Tok};
use dsrsq::eval::harness::evaluate_model;
use serde_json::Value;

use crate::kernels::Kernels;
use crate::subject::Subject;

pub enum EvalMsg {
    Progress {
        done: usize,
        total: usize,
        latency_s: f64,
    },
    Done(Value),
    Failed(String),
}

pub struct Evaluator {
    pub rx: Receiver<EvalMsg>,
    pub done: usize,
    pub total: usize,
    pub latencies: Vec<f64>,
    pub running: bool,
}

impl Evaluator {
    pub fn start(
        kernels: Kernels,
        subject: std::sync::Arc<Subject>,
        spec: String,
        examples: usize,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("dsrsq-eval".into())
            .spawn(move || {
                let send = |m: EvalMsg| {
                    let _ = tx.send(m);
                    wake();
                };
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::background::run_lowered(|| {
                        run(&kernels, &subject, &spec, examples, &send)
                    })
                    .map_err(anyhow::Error::msg)
                    .and_then(|r| r)
                }));
                match res {
                    Ok(Ok(v)) => send(EvalMsg::Done(v)),
                    Ok(Err(e)) => send(EvalMsg::Failed(format!("{e:#}"))),
                    Err(_) => send(EvalMsg::Failed("evaluation panicked".into())),
                }
            });
        if let Err(e) = spawned {
            let (tx2, rx2) = channel();
            let _ = tx2.send(EvalMsg::Failed(format!("cannot start a thread: {e}")));
            return Self::with(rx2);
        }
        Self::with(rx)
    }

    fn with(rx: Receiver<EvalMsg>) -> Self {
        Self {
            rx,
            done: 0,
            total: 0,
            latencies: Vec::new(),
            running: true,
        }
    }
}

fn run(
    kernels: &Kernels,
    subject: &Subject,
    spec: &str,
    examples: usize,
    send: &dyn Fn(EvalMsg),
) -> anyhow::Result<Value> {
    let tok = Tok::bundled()?;
    let cfg = &subject.cfg;
    let ds =
        DataSpec::parse(spec)?.open(&tok, cfg.train.seed, Split::Eval, &LoadOptions::default())?;
    let set = (0..examples as u64)
        .map(|i| ds.example(i))
        .collect::<Result<Vec<_>, _>>()?;
    let t0 = Instant::now();
    let mut last = Instant::now();
    let mut progress = |done: usize, total: usize| {
        send(EvalMsg::Progress {
            done,
            total,
            latency_s: last.elapsed().as_secs_f64(),
        });
        last = Instant::now();
    };
    let report = crate::with_model!(kernels, subject, be, model => {
        evaluate_model(be, &model, &tok, &set, cfg.train.batch_size, 16, &mut progress)
            .map_err(anyhow::Error::from)
    })?;
    let device = crate::with_backend!(kernels, be => dsrsq::backend::Backend::name(be));
    Ok(dsrsq::eval::harness::eval_record(
        "app",
        std::path::Path::new(&subject.origin),
        0,
        spec,
        cfg,
        &device,
        None,
        t0.elapsed().as_secs_f64(),
        &report,
    ))
}
