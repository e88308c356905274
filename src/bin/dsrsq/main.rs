//! `dsrsq`: the headless CLI (device info, benchmarks; training and evaluation come later).

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use dsrsq::bench::{self, BackendChoice};

mod info;

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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info => info::run(),
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
    }
}
