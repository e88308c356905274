//! The application state and its frame: poll the background threads, draw the run panel and
//! the chosen view, recompute a view's data when its inputs change, show errors in the UI.

use std::sync::Arc;

use eframe::egui::{self, Color32};

use crate::evaluator::{EvalMsg, Evaluator};
use crate::frame_stats::FrameStats;
use crate::kernels::{Kernels, SharedDevice};
use crate::run_form::RunForm;
use crate::subject::{InputSource, Subject};
use crate::trainer::{TrainMsg, TrainState, Trainer};
use crate::view_jobs::{ViewData, ViewJob, Want};
use crate::views::{
    attention::AttentionState, cache::CacheState, dsr::DsrState, metrics::MetricsState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Metrics,
    Attention,
    Dsr,
    Cache,
}

impl Tab {
    pub const ALL: [(Tab, &'static str); 4] = [
        (Tab::Metrics, "Live metrics"),
        (Tab::Attention, "Attention clusters"),
        (Tab::Dsr, "DSR selection"),
        (Tab::Cache, "Cache rotation"),
    ];

    pub fn parse(s: &str) -> Option<Tab> {
        match s {
            "metrics" => Some(Tab::Metrics),
            "attention" => Some(Tab::Attention),
            "dsr" => Some(Tab::Dsr),
            "cache" => Some(Tab::Cache),
            _ => None,
        }
    }
}

/// What a view's data was computed from; recompute when it changes.
type ViewKey = (u64, String, u64, usize, usize, bool);

pub struct AppState {
    pub tab: Tab,
    pub form: RunForm,
    pub shared: Option<SharedDevice>,
    pub kernels: Kernels,
    pub subject: Option<Arc<Subject>>,
    pub inputs: Option<InputSource>,
    pub trainer: Option<Trainer>,
    pub evaluator: Option<Evaluator>,
    pub metrics: MetricsState,
    pub attention: AttentionState,
    pub dsr: DsrState,
    pub cache: CacheState,
    /// Errors to show (newest last), each dismissable.
    pub errors: Vec<String>,
    pub status: String,
    pub frames: FrameStats,
    /// Tokens to stream into the rings as soon as the cache view has data.
    pub pending_feed: usize,
    /// This frame asked for the next one at once (training, evaluating or playing).
    pub(crate) animating: bool,
    version: u64,
    keys: [Option<ViewKey>; 3],
    /// The view computation in flight, if any (one at a time).
    pub(crate) view_job: Option<ViewJob>,
}

impl AppState {
    pub fn new(shared: Option<SharedDevice>) -> Self {
        let mut errors = Vec::new();
        let inputs = match InputSource::new() {
            Ok(i) => Some(i),
            Err(e) => {
                errors.push(format!("tokenizer: {e:#}"));
                None
            }
        };
        Self {
            tab: Tab::Metrics,
            form: RunForm::default(),
            kernels: Kernels::preferred(shared.as_ref()),
            shared,
            subject: None,
            inputs,
            trainer: None,
            evaluator: None,
            metrics: MetricsState::default(),
            attention: AttentionState::default(),
            dsr: DsrState::default(),
            cache: CacheState::default(),
            errors,
            status: "Load a checkpoint or start training.".into(),
            frames: FrameStats::default(),
            pending_feed: 0,
            animating: false,
            version: 0,
            keys: [None, None, None],
            view_job: None,
        }
    }

    pub fn error(&mut self, e: impl std::fmt::Display) {
        self.errors.push(e.to_string());
    }

    pub fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Loads the checkpoint (and config) named in the run form.
    pub fn load_from_form(&mut self) {
        let v = self.next_version();
        let cfg = self.form.config.clone();
        match crate::subject::load(
            &self.form.checkpoint,
            Some(&cfg)
                .filter(|c| !c.trim().is_empty())
                .map(|c| c.as_str()),
            v,
        ) {
            Ok(s) => {
                self.status = format!("loaded {}", s.origin);
                self.subject = Some(Arc::new(s));
            }
            Err(e) => self.error(format!("load: {e:#}")),
        }
    }

    /// Starts training with the form's preset, data, steps and output folder.
    pub fn start_training(&mut self, ctx: &egui::Context) {
        if self
            .trainer
            .as_ref()
            .is_some_and(|t| t.state != TrainState::Ended)
        {
            self.error("a run is already going: stop it first");
            return;
        }
        match self.form.session_options() {
            Ok(opts) => {
                self.metrics.clear_records();
                self.metrics.source = format!("live run ({})", opts.data);
                let total = opts.steps.unwrap_or(0);
                let c = ctx.clone();
                self.trainer = Some(Trainer::start(self.kernels.clone(), opts, move || {
                    c.request_repaint()
                }));
                self.status = format!("training: 0 / {total} steps");
            }
            Err(e) => self.error(format!("train: {e:#}")),
        }
    }

    pub fn start_eval(&mut self, ctx: &egui::Context) {
        let Some(s) = self.subject.clone() else {
            self.error("evaluate: no model yet (load a checkpoint or train)");
            return;
        };
        let c = ctx.clone();
        self.metrics.eval_latencies.clear();
        self.metrics.eval = None;
        self.evaluator = Some(Evaluator::start(
            self.kernels.clone(),
            s,
            self.form.input_spec.clone(),
            self.form.eval_examples,
            move || c.request_repaint(),
        ));
    }

    /// Drains the background threads' messages.
    pub fn poll(&mut self) {
        let mut msgs = Vec::new();
        if let Some(t) = &self.trainer {
            msgs.extend(t.rx.try_iter());
        }
        for m in msgs {
            match m {
                TrainMsg::Record(r) => {
                    self.status = format!("training: step {} / {}", r.step, self.form.steps);
                    match serde_json::to_value(&r) {
                        Ok(v) => self.metrics.push_record(v),
                        Err(e) => self.error(format!("metrics record: {e}")),
                    }
                }
                TrainMsg::Notice(n) => self.status = format!("training: {n}"),
                TrainMsg::Params { step, params } => {
                    if let Ok(cfg) = self.form.training_config() {
                        let v = self.next_version();
                        self.subject = Some(Arc::new(Subject {
                            cfg,
                            params,
                            origin: format!("live run, step {step}"),
                            version: v,
                        }));
                    }
                }
                TrainMsg::Done { steps, checkpoint } => {
                    self.status = match checkpoint {
                        Some(p) => {
                            self.form.checkpoint = p.display().to_string();
                            format!(
                                "training ended after {steps} steps; checkpoint {}",
                                p.display()
                            )
                        }
                        None => format!("training ended after {steps} steps"),
                    };
                    if let Some(t) = &mut self.trainer {
                        t.ended();
                    }
                }
                TrainMsg::Failed(e) => {
                    self.error(format!("training: {e}"));
                    if let Some(t) = &mut self.trainer {
                        t.ended();
                    }
                }
            }
        }
        let mut emsgs = Vec::new();
        if let Some(ev) = &self.evaluator {
            emsgs.extend(ev.rx.try_iter());
        }
        for m in emsgs {
            match m {
                EvalMsg::Progress {
                    done,
                    total,
                    latency_s,
                } => {
                    self.metrics.eval_progress = Some((done, total));
                    self.metrics.eval_latencies.push(latency_s);
                }
                EvalMsg::Done(v) => {
                    self.metrics.eval = Some(v);
                    self.metrics.eval_progress = None;
                    self.evaluator = None;
                }
                EvalMsg::Failed(e) => {
                    self.error(format!("evaluation: {e}"));
                    self.metrics.eval_progress = None;
                    self.evaluator = None;
                }
            }
        }
    }

    /// Whether a view's data is being computed.
    pub fn view_busy(&self) -> bool {
        self.view_job.is_some()
    }

    /// Starts recomputing the current view's data when its inputs changed (one computation at
    /// a time: a change made meanwhile is picked up when it ends).
    pub(crate) fn refresh_view(&mut self, ctx: &egui::Context) {
        let (slot, want) = match self.tab {
            Tab::Metrics => return,
            Tab::Attention => (
                0,
                Want::Attention {
                    layer: self.attention.layer,
                    head: self.attention.head,
                },
            ),
            Tab::Dsr => (1, Want::Dsr),
            Tab::Cache => (2, Want::Cache),
        };
        if self.view_job.is_some() {
            return;
        }
        let Some(subject) = &self.subject else { return };
        let (layer, head) = match want {
            Want::Attention { layer, head } => (layer, head),
            _ => (0, 0),
        };
        let key: ViewKey = (
            subject.version,
            self.form.input_spec.clone(),
            self.form.input_index,
            layer,
            head,
            self.kernels.is_cpu(),
        );
        if self.keys[slot].as_ref() == Some(&key) {
            return;
        }
        self.keys[slot] = Some(key);
        let Some(inputs) = &mut self.inputs else {
            return;
        };
        let ex = match inputs.example(
            &self.form.input_spec,
            subject.cfg.train.seed,
            self.form.input_index,
        ) {
            Ok(e) => e,
            Err(e) => {
                self.errors.push(format!("input: {e:#}"));
                return;
            }
        };
        let c = ctx.clone();
        self.view_job = Some(ViewJob::start(
            self.kernels.clone(),
            subject.clone(),
            ex,
            want,
            move || c.request_repaint(),
        ));
    }

    pub(crate) fn view_has_data(&self) -> bool {
        match self.tab {
            Tab::Metrics => true,
            Tab::Attention => self.attention.data.is_some(),
            Tab::Dsr => self.dsr.data.is_some(),
            Tab::Cache => self.cache.stream.is_some(),
        }
    }

    /// Takes a finished view computation's result.
    pub(crate) fn poll_view(&mut self) {
        let Some(res) = self.view_job.as_ref().and_then(ViewJob::poll) else {
            return;
        };
        let want = self.view_job.take().map(|j| j.want);
        match res {
            Ok(ViewData::Attention(a)) => self.attention.set(*a),
            Ok(ViewData::Dsr(d)) => {
                if let Some(inputs) = &self.inputs {
                    self.dsr.tokens = d.ids.iter().map(|&i| inputs.token_text(i)).collect();
                }
                self.dsr.data = Some(d);
            }
            Ok(ViewData::Cache(s)) => {
                self.cache.set(s);
                if self.pending_feed > 0 {
                    self.cache.feed(std::mem::take(&mut self.pending_feed));
                }
            }
            Err(e) => {
                let view = match want {
                    Some(Want::Attention { .. }) => "attention",
                    Some(Want::Dsr) => "DSR",
                    Some(Want::Cache) | None => "cache",
                };
                self.errors.push(format!("{view} view: {e}"));
            }
        }
    }

    pub fn open_log(&mut self, path: &str) {
        let p = std::path::PathBuf::from(path.trim());
        let file = if p.is_dir() {
            p.join("metrics.jsonl")
        } else {
            p
        };
        match dsrsq::train::metrics::read_jsonl(&file) {
            Ok(r) => {
                self.metrics.set_records(r);
                self.metrics.source = file.display().to_string();
            }
            Err(e) => self.error(format!("metrics log: {e}")),
        }
    }

    pub fn open_eval(&mut self, path: &str) {
        let res = std::fs::read_to_string(path.trim())
            .map_err(|e| format!("{}: {e}", path.trim()))
            .and_then(|t| {
                serde_json::from_str::<serde_json::Value>(&t)
                    .map_err(|e| format!("{}: {e}", path.trim()))
            });
        match res {
            Ok(v) => self.metrics.eval = Some(v),
            Err(e) => self.error(format!("eval results: {e}")),
        }
    }
}

/// The shortest interval between frames while something animates (training, evaluation,
/// the cache playing).
pub const FRAME_PERIOD: std::time::Duration = std::time::Duration::from_micros(33_333);

/// The window's background, which the app clears to (no panel or plot fills its area again).
pub fn background(visuals: &egui::Visuals) -> Color32 {
    visuals.panel_fill
}
