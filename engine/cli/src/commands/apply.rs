//! `engine apply [PLAN]`: runs the sync lifecycle's apply and shows what it did.

use std::path::Path;

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
        progress: views::stderr_is_terminal(),
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
            if outcome.is_success() { 0 } else { 1 }
        }
    }
}
