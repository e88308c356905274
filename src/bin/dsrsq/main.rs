//! `dsrsq`: the headless CLI (device info, training, evaluation, benchmarks).

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use dsrsq::bench::{self, BackendChoice};

mod bench_train;
mod eval;
mod info;
mod reproduce;
mod train;

#[derive(Parser)]
#[command(name = "dsrsq", version, about = "DSRSQ long-context QA toolchain")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every wgpu adapter, the one chosen (WGPU_BACKEND / WGPU_ADAPTER_NAME), its limits
    /// and features; without an adapter, say the CPU backend will be used.
    Info,
    /// Train a model (CPU or wgpu backend) on synthetic or real data, with checkpoints,
    /// a JSONL metrics log and held-out evaluation.
    Train(Box<train::TrainArgs>),
    /// Evaluate a checkpoint on held-out data: teacher-forced accuracy, greedy answers scored
    /// by EM / F1 / ROUGE-L / BLEU, throughput, latency, token efficiency and peak memory,
    /// written to one JSON file.
    Eval(Box<eval::EvalArgs>),
    /// Train DSRSQ and the standard model on a preset, evaluate both on held-out data and
    /// write the report (tables + figures) into one folder.
    Reproduce(Box<reproduce::ReproduceArgs>),
    /// Write DIR/report.md and its PNG figures from every DIR/<run>/eval.json (and the
    /// training logs beside them).
    Report {
        /// The folder holding one sub-folder per evaluated model.
        dir: std::path::PathBuf,
    },
    /// Run a benchmark and print a table.
    Bench {
        #[arg(value_enum)]
        suite: Suite,
        /// Which backends to measure.
        #[arg(long, value_enum, default_value_t = BackendChoice::All)]
        backend: BackendChoice,
        /// Smaller sizes and fewer repetitions (a smoke run).
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Suite {
    /// Matmul GFLOP/s and dense causal attention forward time.
    Kernels,
    /// SQA vs dense attention, DSR selection vs context length, DSR→SQA vs dense.
    Attention,
    /// Training steps per second (tokens/s): the dense reference model and DSRSQ.
    Train,
}

/// Counts heap bytes so the CPU backend reports its memory like the wgpu device does.
#[global_allocator]
static ALLOC: dsrsq::backend::CountingAlloc = dsrsq::backend::CountingAlloc;

fn main() -> Result<()> {
    dsrsq::backend::keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Info => info::run(),
        Command::Train(a) => train::run(*a),
        Command::Eval(a) => eval::run(*a),
        Command::Reproduce(a) => reproduce::run(*a),
        Command::Report { dir } => {
            let w = dsrsq::eval::report::write_report(&dir)?;
            for (f, why) in &w.skipped {
                eprintln!("not drawn: {f} ({why})");
            }
            println!(
                "wrote {} and {} figures",
                w.report.display(),
                w.figures.len()
            );
            Ok(())
        }
        Command::Bench {
            suite: Suite::Kernels,
            backend,
            quick,
        } => Ok(bench::kernels(backend, quick)?),
        Command::Bench {
            suite: Suite::Attention,
            backend,
            quick,
        } => Ok(bench::attention(backend, quick)?),
        Command::Bench {
            suite: Suite::Train,
            backend,
            quick,
        } => bench_train::run(backend, quick),
    }
}
