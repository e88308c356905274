//! Training in a background thread through `dsrsq::train::TrainSession` (one optimizer step per
//! loop turn), with pause and stop between steps. The thread sends each step's metrics record
//! and, now and then, a copy of the parameters so the views can look at the live model.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dsrsq::backend::Backend;
use dsrsq::train::{StepRecord, TrainOptions, TrainSession};
use dsrsq::Tensor;

use crate::kernels::Kernels;

/// Messages from the training thread.
pub enum TrainMsg {
    Record(Box<StepRecord>),
    /// Something opening the run reported (see `TrainSession::notices`).
    Notice(String),
    Params {
        step: usize,
        params: Vec<Tensor>,
    },
    /// Ended (finished or stopped), with the checkpoint written, if any.
    Done {
        steps: usize,
        checkpoint: Option<PathBuf>,
    },
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainState {
    Running,
    Paused,
    Stopping,
    Ended,
}

#[derive(Default)]
struct Control {
    pause: AtomicBool,
    stop: AtomicBool,
}

pub struct Trainer {
    ctrl: Arc<Control>,
    pub rx: Receiver<TrainMsg>,
    handle: Option<JoinHandle<()>>,
    pub state: TrainState,
}

/// How often the live parameters are sent to the views.
const PARAMS_EVERY: Duration = Duration::from_secs(5);

impl Trainer {
    /// Starts training on all cores but one, below the UI in the scheduler's order; `wake`
    /// is called after every message (to repaint the UI).
    pub fn start(
        kernels: Kernels,
        opts: TrainOptions,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let ctrl = Arc::new(Control::default());
        let (tx, rx) = channel();
        let c = ctrl.clone();
        let handle = std::thread::Builder::new()
            .name("dsrsq-train".into())
            .spawn(move || {
                let send = |m: TrainMsg| {
                    let _ = tx.send(m);
                    wake();
                };
                // A panic in the library must end the run, not the app.
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::background::run_lowered(
                        || crate::with_backend!(&kernels, be => run(be, opts, &c, &send)),
                    )
                    .and_then(|r| r)
                }));
                match res {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => send(TrainMsg::Failed(e)),
                    Err(p) => send(TrainMsg::Failed(panic_text(&*p))),
                }
            });
        let (handle, state, rx) = match handle {
            Ok(h) => (Some(h), TrainState::Running, rx),
            Err(e) => {
                let (tx, rx) = channel();
                let _ = tx.send(TrainMsg::Failed(format!("cannot start a thread: {e}")));
                (None, TrainState::Ended, rx)
            }
        };
        Self {
            ctrl,
            rx,
            handle,
            state,
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.ctrl.pause.store(paused, Ordering::SeqCst);
        if self.state != TrainState::Ended && self.state != TrainState::Stopping {
            self.state = if paused {
                TrainState::Paused
            } else {
                TrainState::Running
            };
        }
    }

    pub fn stop(&mut self) {
        self.ctrl.stop.store(true, Ordering::SeqCst);
        if self.state != TrainState::Ended {
            self.state = TrainState::Stopping;
        }
    }

    /// Marks the run ended and reaps the thread.
    pub fn ended(&mut self) {
        self.state = TrainState::Ended;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Trainer {
    fn drop(&mut self) {
        self.ctrl.stop.store(true, Ordering::SeqCst);
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    format!("training panicked: {}", crate::background::panic_message(p))
}

fn run<B: Backend>(
    be: &B,
    opts: TrainOptions,
    ctrl: &Control,
    send: &dyn Fn(TrainMsg),
) -> Result<(), String> {
    let mut s = TrainSession::open(be, opts).map_err(|e| e.to_string())?;
    for n in s.notices() {
        send(TrainMsg::Notice(n.clone()));
    }
    let mut last_params = Instant::now();
    let share = |s: &TrainSession<B>| -> Result<(), String> {
        let params = s.params(be).map_err(|e| e.to_string())?;
        send(TrainMsg::Params {
            step: s.steps_done(),
            params,
        });
        Ok(())
    };
    while !s.finished() && !ctrl.stop.load(Ordering::SeqCst) {
        if ctrl.pause.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(30));
            continue;
        }
        let rec = s.step(be).map_err(|e| e.to_string())?;
        send(TrainMsg::Record(Box::new(rec)));
        if last_params.elapsed() >= PARAMS_EVERY {
            share(&s)?;
            last_params = Instant::now();
        }
    }
    share(&s)?;
    let checkpoint = match s.out_dir() {
        Some(_) if s.steps_done() > 0 => Some(s.save_checkpoint(be).map_err(|e| e.to_string())?),
        _ => None,
    };
    send(TrainMsg::Done {
        steps: s.steps_done(),
        checkpoint,
    });
    Ok(())
}
