//! `engine apply [PLAN]`: runs the sync lifecycle's apply and shows what it did.

use std::path::Path;

use engine_executor::ProgressMode;
use engine_sync::{ApplyOptions, Registry};

use crate::report::CliReporter;
use crate::views;

pub async fn run(
    dir: &Path,
    plan_file: Option<&Path>,
    syncs: &[String],
    options: ApplyOptions,
) -> u8 {
    let project = match engine_sync::load_project(dir) {
        Ok((project, _)) => project,
        Err(problems) => {
            views::diagnostics(&problems, dir);
            return 1;
        }
    };
    let reporter = CliReporter::new(project.root.clone());
    let options = ApplyOptions {
        progress: if views::stderr_is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines(progress_interval())
        },
        ..options
    };
    let outcome = engine_sync::apply(
        &Registry::default(),
        &project,
        plan_file,
        syncs,
        options,
        &reporter,
    )
    .await;
    match outcome {
        Err(problems) => {
            views::diagnostics(&problems, dir);
            1
        }
        Ok(outcome) => {
            if outcome.nothing_to_apply {
                views::out("Nothing to apply.\n");
            }
            for (sync, held) in &outcome.held {
                views::out(&format!(
                    "sync `{sync}`: {held} row(s) held back: the destination rejected their data and it has not changed; fix the data, or resend with `engine apply --retry-failed`.\n"
                ));
            }
            for (sync, left_out) in &outcome.left_out {
                views::out(&format!(
                    "sync `{sync}`: {left_out} row(s) left out: a value does not fit its property (the plan lists each with the fix); they are planned again once their data is fixed.\n"
                ));
            }
            if outcome.is_success() { 0 } else { 1 }
        }
    }
}

/// How often a long apply writes a progress line when stderr is not a terminal:
/// `ENGINE_PROGRESS_INTERVAL` seconds, 10 by default.
fn progress_interval() -> std::time::Duration {
    std::env::var("ENGINE_PROGRESS_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(std::time::Duration::from_secs(10))
}
