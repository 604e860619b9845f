//! `engine runs` and `engine runs show ID`: run history from the state.

use std::fmt::Write as _;
use std::path::Path;

use engine_diag::Diagnostic;
use engine_state::{RowState, StateStore};

use crate::args::RunsCommand;
use crate::views;

pub fn run(dir: &Path, limit: usize, command: Option<RunsCommand>) -> u8 {
    let result = (|| {
        let (project, _) = engine_sync::load_project(dir)?;
        let state = engine_sync::open_state(&project)?;
        match command {
            None => list(&state, limit).map_err(|e| vec![engine_sync::state_error(e)]),
            Some(RunsCommand::Show { id }) => match show(&state, id) {
                Ok(Some(text)) => Ok(text),
                Ok(None) => Err(vec![not_found(id)]),
                Err(e) => Err(vec![engine_sync::state_error(e)]),
            },
        }
    })();
    match result {
        Ok(text) => {
            views::out(&text);
            0
        }
        Err(problems) => {
            views::diagnostics(&problems, dir);
            1
        }
    }
}

fn list(state: &dyn StateStore, limit: usize) -> Result<String, engine_state::StateError> {
    let runs = state.runs(limit)?;
    let mut out = String::new();
    if runs.is_empty() {
        out.push_str("No runs yet. `engine apply` records one per sync it changes.\n");
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:>4}  {:<24} {:<10} {:<20} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8}",
        "ID",
        "SYNC",
        "STATUS",
        "STARTED",
        "CREATE",
        "UPDATE",
        "REMOVE",
        "OK",
        "REJECTED",
        "PENDING"
    );
    for run in runs {
        let c = run.counts;
        let _ = writeln!(
            out,
            "{:>4}  {:<24} {:<10} {:<20} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8}",
            run.id,
            run.sync,
            run.status.as_str(),
            run.started_at.get(..19).unwrap_or(&run.started_at),
            c.planned_create,
            c.planned_update,
            c.planned_remove,
            c.succeeded,
            c.rejected,
            c.pending
        );
    }
    Ok(out)
}

/// A run id the state does not know (a typo, a run pruned by `state.retention`, or a state
/// that was reset).
fn not_found(id: i64) -> Diagnostic {
    Diagnostic::error("runs::not_found", format!("there is no run {id}"))
        .note("run history keeps the runs `state.retention` in engine.yaml allows (by default the newest 100 per sync, at most 90 days)")
        .hint("`engine runs` lists the runs kept and their ids")
}

/// The run's details and failed rows; `None` when there is no such run.
fn show(state: &dyn StateStore, id: i64) -> Result<Option<String>, engine_state::StateError> {
    let mut out = String::new();
    let Some(run) = state.run(id)? else {
        return Ok(None);
    };
    let c = run.counts;
    let _ = writeln!(
        out,
        "run {} of sync `{}`: {}",
        run.id,
        run.sync,
        run.status.as_str()
    );
    let _ = writeln!(
        out,
        "  plan {} (generation {})",
        run.plan_id, run.base_generation
    );
    let _ = writeln!(
        out,
        "  started {}, finished {}",
        run.started_at,
        run.finished_at.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  planned: {} create, {} update, {} remove; written: {}, rejected: {}, pending: {}",
        c.planned_create, c.planned_update, c.planned_remove, c.succeeded, c.rejected, c.pending
    );
    if let Some(message) = &run.message {
        let _ = writeln!(out, "  stopped: {message}");
    }
    // The journal is read a page at a time: a run of millions of rows is never held.
    let counts = state.journal_counts(id)?;
    let not_written = [RowState::Rejected, RowState::GaveUp, RowState::Sent];
    let failed: u64 = not_written.iter().map(|s| counts.get(None, *s)).sum();
    if failed == 0 {
        let _ = writeln!(out, "\nNo failed rows.");
    } else {
        let _ = writeln!(out, "\nFailed rows ({failed}):");
        for only in not_written {
            for row in engine_state::journal_rows(state, id, Some(only)) {
                let row = row?;
                let why = match row.state {
                    RowState::Sent => {
                        "in flight when the run stopped; retried by the next apply".to_string()
                    }
                    _ => row.message.clone().unwrap_or_default(),
                };
                let _ = writeln!(out, "  {} {:?}: {}", row.action, row.key, why);
            }
        }
    }
    // Rows the destination left as they were (a create whose record exists, `mode: insert`):
    // done, with why. Only such rows carry a message among those written.
    let mut left = String::new();
    let mut left_count = 0;
    // Rows written with nothing to say are kept per batch, so only the journal's own rows
    // can carry a message.
    for row in engine_state::journal_table_rows(state, id, Some(RowState::Succeeded)) {
        let row = row?;
        if row.message.is_none() {
            continue;
        }
        left_count += 1;
        let why = row.message.as_deref().unwrap_or_default();
        let _ = writeln!(left, "  {} {:?}: {}", row.action, row.key, why);
    }
    if left_count > 0 {
        let _ = write!(
            out,
            "\nLeft as they were ({left_count}; done, nothing written):\n{left}"
        );
    }
    // Rows the plan left out: skipped for their match value, or held back after a rejection.
    if let Ok(plan) = state
        .run_plan(id)
        .map(|bytes| engine_sync::decode_run_plan(&bytes))
        && let Ok(plan) = plan
    {
        if !plan.skipped.is_empty() {
            let _ = writeln!(out, "\nSkipped rows ({}):", plan.skipped.len());
            for row in &plan.skipped {
                let _ = writeln!(out, "  {:?}: {}", row.key, row.reason);
            }
        }
        if !plan.held.is_empty() {
            let _ = writeln!(
                out,
                "\nHeld back, rejected before with the same data ({}):",
                plan.held.len()
            );
            for row in &plan.held {
                let _ = writeln!(out, "  {:?}: {}", row.key, row.message);
            }
        }
    }
    Ok(Some(out))
}
