//! Renders the sync lifecycle's events: results on stdout, notes on stderr.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use engine_diff::PlanStage;
use engine_plan::{HumanOptions, render_human};
use engine_sync::{Event, Reporter};
use indicatif::{ProgressBar, ProgressStyle};

use crate::views;

/// Shows events as the command line always has; on a terminal, a spinner says what a long
/// plan is doing.
pub struct CliReporter {
    /// The project root, for diagnostics' file paths.
    root: PathBuf,
    /// The planning spinner, while a plan runs at a terminal.
    spinner: Mutex<Option<ProgressBar>>,
}

impl CliReporter {
    /// A reporter for the project at `root`.
    pub fn new(root: PathBuf) -> Self {
        CliReporter {
            root,
            spinner: Mutex::new(None),
        }
    }

    /// Shows `message` on the spinner (started on first use), at a terminal only.
    fn spin(&self, message: String) {
        if !views::stderr_is_terminal() {
            return;
        }
        let Ok(mut spinner) = self.spinner.lock() else {
            return;
        };
        let bar = spinner.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(message);
    }

    fn stop_spinner(&self) {
        if let Ok(mut spinner) = self.spinner.lock()
            && let Some(bar) = spinner.take()
        {
            bar.finish_and_clear();
        }
    }
}

impl Drop for CliReporter {
    fn drop(&mut self) {
        self.stop_spinner();
    }
}

impl Reporter for CliReporter {
    fn report(&self, event: Event<'_>) {
        if let Event::PlanStage { sync, stage } = event {
            let doing = match stage {
                PlanStage::Mapping { rows } => format!("reading the model ({rows} rows)"),
                PlanStage::Diffing => "comparing with the last snapshot".to_string(),
                PlanStage::Writing { rows } => format!("writing the plan ({rows} changes)"),
            };
            tracing::debug!(sync, "{doing}");
            self.spin(format!("sync `{sync}`: {doing}"));
            return;
        }
        self.stop_spinner();
        match event {
            Event::PlanStage { .. } => {}
            Event::UnfinishedRun { sync, run_id } => views::status(&format!(
                "Note: run {run_id} of sync `{sync}` has not finished (it is running, or it was interrupted); `engine apply` recovers an interrupted run first, so the plan it runs may differ from this one."
            )),
            Event::PlanningSync { sync } => {
                tracing::info!(
                    sync,
                    "Planning: reading the model and diffing it against the last snapshot."
                )
            }
            Event::Recovered(r) => views::status(&format!(
                "Recovered run {} of sync `{}`: {} written row(s) from its journal are now in the state{}; the rest is planned again.",
                r.run_id,
                r.sync,
                r.from_journal,
                if r.unanswered == 0 {
                    String::new()
                } else {
                    format!(
                        "; of {} row(s) whose batch was never answered, {} were found written in the destination and {} were read back as the destination holds them",
                        r.unanswered, r.found_written, r.read_back
                    )
                }
            )),
            Event::Planned(plan) => views::out(&render_human(plan, HumanOptions::default())),
            Event::ApplyingSync { sync, rows } => {
                tracing::info!(sync, rows, "Applying.")
            }
            Event::Applied(s) => {
                let skipped = if s.skipped > 0 {
                    format!(
                        ", {} skipped (a record held their match value already)",
                        s.skipped
                    )
                } else {
                    String::new()
                };
                views::out(&format!(
                    "sync `{}`: {} created/upserted, {} updated, {} removed, {} failed{skipped} (run {}).\n",
                    s.sync, s.created, s.updated, s.removed, s.failed, s.run_id
                ));
                if s.failed > 0 {
                    views::out(&format!(
                        "  {} row(s) stay pending and are retried by the next apply; see `engine runs show {}`.\n",
                        s.failed, s.run_id
                    ));
                }
                if let Some(fatal) = &s.fatal {
                    views::diagnostics(std::slice::from_ref(fatal), &self.root);
                }
            }
            Event::StateRestarted { aside } => views::status(&format!(
                "The state database was lost: starting a new state; the old snapshots are kept in `{}`.",
                aside.display()
            )),
        }
    }
}
