//! Frame-time figures for the debug overlay, and an optional log of them
//! (`DSRSQ_APP_FRAME_LOG=FILE`: one line every 5 s with p50/p95/max of the frame interval and
//! of the time spent building the UI). `DSRSQ_APP_UNCAPPED=1` repaints continuously without
//! the 30 fps cap, so the interval is each frame's whole cost, on any view.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

const KEEP: usize = 600;

pub struct FrameStats {
    last: Option<Instant>,
    /// Seconds between frame starts, and seconds spent in our UI code, newest last.
    pub intervals: VecDeque<f32>,
    pub ui_times: VecDeque<f32>,
    /// eframe's figure for the previous frame: UI, tessellation and command recording, without
    /// the time spent acquiring, submitting and presenting (where a software adapter renders).
    pub cpu_usage: Option<f32>,
    cpu_times: VecDeque<f32>,
    log: Option<(std::fs::File, Instant, Instant)>,
    pub show: bool,
    pub uncapped: bool,
}

impl Default for FrameStats {
    fn default() -> Self {
        let log = std::env::var_os("DSRSQ_APP_FRAME_LOG")
            .and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ok()
            })
            .map(|f| (f, Instant::now(), Instant::now()));
        Self {
            last: None,
            intervals: VecDeque::new(),
            ui_times: VecDeque::new(),
            cpu_usage: None,
            cpu_times: VecDeque::new(),
            log,
            show: true,
            uncapped: std::env::var_os("DSRSQ_APP_UNCAPPED").is_some(),
        }
    }
}

/// `(p50, p95, max)` in milliseconds.
pub fn quantiles(v: &VecDeque<f32>) -> (f32, f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut s: Vec<f32> = v.iter().copied().collect();
    s.sort_by(f32::total_cmp);
    let at = |q: f32| s[((q * s.len() as f32).ceil() as usize).clamp(1, s.len()) - 1] * 1e3;
    (at(0.5), at(0.95), s[s.len() - 1] * 1e3)
}

impl FrameStats {
    /// Starts a frame. `continuous`: the previous frame asked for the next one at once, so
    /// the interval is a frame time (idle gaps between input events are not).
    pub fn begin(&mut self, continuous: bool) -> Instant {
        let now = Instant::now();
        if let (Some(l), true) = (self.last, continuous) {
            let dt = (now - l).as_secs_f32();
            push(&mut self.intervals, dt);
            // Each frame over 50 ms gets its own line, with what the frame before it spent
            // in our UI code and in eframe (the rest is rendering, presenting or waiting).
            if let (Some((f, t0, _)), true) = (&mut self.log, dt > 0.05) {
                let _ = writeln!(
                    f,
                    "t={:.1}s slow frame: interval {:.1} ms, previous frame ui {:.1} ms, eframe_cpu {:.1} ms",
                    t0.elapsed().as_secs_f32(),
                    dt * 1e3,
                    self.ui_times.back().map_or(0.0, |v| v * 1e3),
                    self.cpu_times.back().map_or(0.0, |v| v * 1e3),
                );
            }
        }
        self.last = Some(now);
        now
    }

    pub fn end(&mut self, started: Instant, context: &str) {
        push(&mut self.ui_times, started.elapsed().as_secs_f32());
        if let Some(c) = self.cpu_usage.take() {
            push(&mut self.cpu_times, c);
        }
        if let Some((f, t0, last)) = &mut self.log {
            if last.elapsed() >= Duration::from_secs(5) {
                let (a, b, c) = quantiles(&self.intervals);
                let (d, e, g) = quantiles(&self.ui_times);
                let (h, i, _) = quantiles(&self.cpu_times);
                let _ = writeln!(
                    f,
                    "t={:.0}s frames={} interval_ms p50={a:.1} p95={b:.1} max={c:.1} ui_ms p50={d:.1} p95={e:.1} max={g:.1} eframe_cpu_ms p50={h:.1} p95={i:.1} {context}",
                    t0.elapsed().as_secs_f32(),
                    self.intervals.len()
                );
                *last = Instant::now();
                self.intervals.clear();
                self.ui_times.clear();
                self.cpu_times.clear();
            }
        }
    }
}

fn push(q: &mut VecDeque<f32>, v: f32) {
    if q.len() == KEEP {
        q.pop_front();
    }
    q.push_back(v);
}
