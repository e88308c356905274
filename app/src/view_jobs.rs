//! A view's data (the model's forward pass on the chosen input) computed off the UI thread:
//! on the tiny preset the cache view's prefill alone took ~40 ms, a dropped frame each time
//! the live run sent new parameters; on a larger model it would freeze the window.

use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;

use dsrsq::data::Example;
use dsrsq::inspect::attention::{self, AttentionInspect};
use dsrsq::inspect::cache::CacheStream;
use dsrsq::inspect::dsr::{self, DsrInspect};

use crate::kernels::Kernels;
use crate::subject::Subject;

/// What a view needs computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Attention { layer: usize, head: usize },
    Dsr,
    Cache,
}

pub enum ViewData {
    Attention(Box<AttentionInspect>),
    Dsr(DsrInspect),
    Cache(CacheStream),
}

/// One computation in flight.
pub struct ViewJob {
    pub want: Want,
    rx: Receiver<Result<ViewData, String>>,
}

impl ViewJob {
    /// Starts computing `want` on its own thread below the UI in the scheduler's order;
    /// `wake` is called when the result is ready.
    pub fn start(
        kernels: Kernels,
        subject: Arc<Subject>,
        ex: Example,
        want: Want,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let (tx, rx) = channel();
        let tx2 = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("dsrsq-view".into())
            .spawn(move || {
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::background::run_lowered(|| {
                        compute(&kernels, &subject, &ex, want).map_err(|e| format!("{e:#}"))
                    })
                    .and_then(|r| r)
                }))
                .unwrap_or_else(|p| {
                    Err(format!(
                        "panicked: {}",
                        crate::background::panic_message(&*p)
                    ))
                });
                let _ = tx.send(res);
                wake();
            });
        if let Err(e) = spawned {
            let _ = tx2.send(Err(format!("cannot start a thread: {e}")));
        }
        Self { want, rx }
    }

    /// The result, once the computation has ended.
    pub fn poll(&self) -> Option<Result<ViewData, String>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("ended without a result".into())),
        }
    }
}

fn compute(k: &Kernels, subject: &Subject, ex: &Example, want: Want) -> anyhow::Result<ViewData> {
    match want {
        Want::Attention { layer, head } => crate::with_model!(k, subject, be, model => {
            attention::inspect(be, &model, ex, layer, head)
                .map(|a| ViewData::Attention(Box::new(a)))
                .map_err(anyhow::Error::from)
        }),
        Want::Dsr => crate::with_model!(k, subject, be, model => {
            dsr::inspect(be, &model, ex).map(ViewData::Dsr).map_err(anyhow::Error::from)
        }),
        Want::Cache => crate::with_model!(k, subject, be, model => {
            CacheStream::new(be, &model, ex).map(ViewData::Cache).map_err(anyhow::Error::from)
        }),
    }
}
