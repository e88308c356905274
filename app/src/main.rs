//! `dsrsq-app`: opens the visualizer window on eframe's wgpu renderer. The library opens the
//! adapter (its limits and features) and eframe renders on that same device, so the kernels
//! and the UI share it; if the library cannot open one, eframe picks its own and the views
//! run on the CPU backend.
//!
//! Options (all optional): `--config PRESET|FILE`, `--checkpoint FILE|RUN_DIR`, `--view
//! metrics|attention|dsr|cache`, `--input SPEC`, `--index N`, `--query ROW`, `--feed N` (tokens
//! streamed into the rings at start), `--train` (start the form's preset at once), `--preset
//! NAME`, `--steps N`, `--out DIR`, `--metrics FILE|RUN_DIR`, `--eval-json FILE`, `--exit-after SECONDS`,
//! `--size WxH` (default 1280x800, or 960x600 on a software adapter such as lavapipe).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dsrsq::device::{select, GpuContext};
use dsrsq_app::kernels::SharedDevice;
use dsrsq_app::trainer::TrainState;
use dsrsq_app::{AppState, Tab};
use eframe::egui;

struct Args {
    pairs: Vec<(String, String)>,
    train: bool,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut pairs, mut train) = (Vec::new(), false);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--train" => train = true,
            "--help" | "-h" => {
                println!(
                    "{}",
                    include_str!("main.rs")
                        .lines()
                        .take(10)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                std::process::exit(0);
            }
            s if s.starts_with("--") => {
                let v = it.next().with_context(|| format!("{s} needs a value"))?;
                pairs.push((s[2..].to_string(), v));
            }
            s => bail!("unexpected argument `{s}` (see --help)"),
        }
    }
    Ok(Args { pairs, train })
}

/// The library's adapter choice, opened with the limits the kernels need, for eframe too.
fn shared_device() -> Option<(SharedDevice, egui_wgpu::WgpuSetup)> {
    let instance = select::instance_from_env();
    let adapter = match select::choose(select::enumerate(&instance)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dsrsq-app: no adapter for the kernels ({e}); views run on the CPU backend");
            return None;
        }
    };
    match GpuContext::from_adapter(&adapter) {
        Ok(ctx) => {
            let info = adapter.get_info();
            let setup = egui_wgpu::WgpuSetupExisting {
                instance,
                adapter,
                device: ctx.device.clone(),
                queue: ctx.queue.clone(),
            };
            eprintln!(
                "dsrsq-app: renderer and kernels share {} ({:?})",
                info.name, info.backend
            );
            Some((
                SharedDevice {
                    ctx: Arc::new(ctx),
                    name: info.name,
                    software: info.device_type == wgpu::DeviceType::Cpu,
                },
                egui_wgpu::WgpuSetup::Existing(setup),
            ))
        }
        Err(e) => {
            eprintln!(
                "dsrsq-app: cannot open {} for the kernels ({e}); views run on the CPU backend",
                adapter.get_info().name
            );
            None
        }
    }
}

/// `--size WxH`, else a default that depends on who draws the pixels: on a software adapter
/// (lavapipe) each frame's cost is proportional to the window's area and comes out of the CPU
/// the training runs on, so the default window is smaller there.
fn window_size(args: &Args, software: bool) -> Result<[f32; 2]> {
    let Some((_, v)) = args.pairs.iter().rev().find(|(k, _)| k == "size") else {
        return Ok(if software {
            [960.0, 600.0]
        } else {
            [1280.0, 800.0]
        });
    };
    let parsed = v.split_once('x').and_then(|(w, h)| {
        let (w, h): (f32, f32) = (w.parse().ok()?, h.parse().ok()?);
        (w >= 320.0 && h >= 240.0).then_some([w, h])
    });
    parsed.with_context(|| format!("--size {v}: expected WIDTHxHEIGHT, at least 320x240"))
}

struct App {
    state: AppState,
    exit_at: Option<Instant>,
}

impl eframe::App for App {
    fn clear_color(&self, v: &egui::Visuals) -> [f32; 4] {
        dsrsq_app::background(v).to_normalized_gamma_f32()
    }
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.state.frames.cpu_usage = frame.info().cpu_usage;
        self.state.show(ui);
        if let Some(t) = self.exit_at {
            if Instant::now() >= t {
                // Stop a running training first, so its checkpoint is written before exit.
                match &mut self.state.trainer {
                    Some(tr) if tr.state != TrainState::Ended => tr.stop(),
                    _ => ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close),
                }
            }
            ui.ctx().request_repaint_after(Duration::from_millis(200));
        }
    }
}

fn apply(state: &mut AppState, args: &Args, ctx: &egui::Context) {
    let get = |k: &str| {
        args.pairs
            .iter()
            .rev()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
    };
    if let Some(p) = get("preset") {
        match dsrsq_app::run_form::PRESETS.iter().position(|x| x.0 == p) {
            Some(i) => state.form.set_preset(i),
            None => state.error(format!("--preset {p}: unknown")),
        }
    }
    if let Some(n) = get("steps").and_then(|s| s.parse().ok()) {
        state.form.steps = n;
    }
    if let Some(o) = get("out") {
        state.form.out_dir = o;
    }
    if let Some(c) = get("config") {
        state.form.config = c;
    }
    if let Some(s) = get("input") {
        state.form.input_spec = s;
    }
    if let Some(i) = get("index").and_then(|s| s.parse().ok()) {
        state.form.input_index = i;
    }
    if let Some(c) = get("checkpoint") {
        state.form.checkpoint = c;
        state.load_from_form();
    }
    if let Some(m) = get("metrics") {
        state.metrics.log_path = m.clone();
        state.open_log(&m);
    }
    if let Some(e) = get("eval-json") {
        state.metrics.eval_path = e.clone();
        state.open_eval(&e);
    }
    if let Some(v) = get("view") {
        match Tab::parse(&v) {
            Some(t) => state.tab = t,
            None => state.error(format!("--view {v}: use metrics, attention, dsr or cache")),
        }
    }
    if let Some(q) = get("query").and_then(|s| s.parse().ok()) {
        state.attention.query = Some(q);
    }
    if let Some(n) = get("feed").and_then(|s| s.parse::<usize>().ok()) {
        state.pending_feed = n;
    }
    if args.train {
        state.start_training(ctx);
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let exit_after: Option<f64> = args
        .pairs
        .iter()
        .find(|(k, _)| k == "exit-after")
        .and_then(|(_, v)| v.parse().ok());
    let shared = shared_device();
    // Unknown when eframe has to pick its own adapter: assume the cheaper window.
    let software = shared.as_ref().is_none_or(|(d, _)| d.software);
    let size = window_size(&args, software)?;
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size(size)
            .with_title("DSRSQ"),
        ..Default::default()
    };
    let kernels_dev = shared.as_ref().map(|(d, _)| d.clone());
    if let Some((_, setup)) = shared {
        options.wgpu_options.wgpu_setup = setup;
    }
    eframe::run_native(
        "DSRSQ",
        options,
        Box::new(move |cc| {
            let mut state = AppState::new(kernels_dev);
            apply(&mut state, &args, &cc.egui_ctx);
            Ok(Box::new(App {
                state,
                exit_at: exit_after.map(|s| Instant::now() + Duration::from_secs_f64(s)),
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("window: {e}"))
}
