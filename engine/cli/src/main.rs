//! `engine`: the command line of the reverse-ETL engine.
//!
//! ```text
//!  YAML spec ─► validate ─► model (DataFusion) ─► diff vs snapshot ─► plan (+ ~ -)
//!                                                                      │
//!          state (.engine/) ◄── snapshot fold ◄── journal ◄── executor ◄┘ ─► destination
//! ```
//!
//! This crate parses arguments and renders results; the sync lifecycle (plan, guards,
//! recovery, execution, fold, commit) lives in `engine-sync`, and each stage in the crate
//! named after it. Exit codes: 0 success, 1 error, 2 "changes present" with
//! `plan --detailed-exitcode`.

mod args;
mod commands;
mod report;
mod views;

use std::process::ExitCode;

use clap::Parser;

/// Plans and applies allocate many small strings per row (changes, requests, answers); a
/// multi-threaded allocator built for that keeps the engine's own CPU per row down.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = args::Cli::parse();
    init_logging();
    std::panic::set_hook(Box::new(|info| {
        views::error_line(&format!(
            "error[internal]: this is a bug in engine: {info}\n  = hint: please report it with the command you ran; \
             the state is safe: the next `engine apply` recovers an interrupted run"
        ));
    }));
    let runtime = match runtime_for(&args.command).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            views::error_line(&format!("cannot start the async runtime: {error}"));
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(commands::run(args));
    ExitCode::from(code)
}

/// The async runtime a command runs on. Applying a saved plan is one task that reads the plan,
/// sends, journals and folds in turn: on a current-thread runtime the HTTP client's connection
/// tasks share that thread, so no request or answer crosses threads (measured on a 200,000-row
/// apply: half the system CPU, a fifth of the context switches, the same rows per second).
/// Every command that plans runs DataFusion, whose partitions want every core.
fn runtime_for(command: &args::Command) -> tokio::runtime::Builder {
    match command {
        args::Command::Apply { plan: Some(_), .. } => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colours())
        .try_init();
}

/// Colours in logs only for a person at a terminal: a file, a pipe or a CI log gets plain
/// text, and `NO_COLOR` (any non-empty value) turns them off everywhere.
fn log_colours() -> bool {
    views::stderr_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
