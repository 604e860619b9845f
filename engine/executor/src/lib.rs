//! Runs a sync plan against a destination: batching, rate limiting, retries and the journal.
//!
//! ```text
//! SyncPlan ─► steps_for ─► batches, barriers ─► journal "sent" ─► account budget ─► send_batch
//!                                                                           │
//!          per-row outcomes ◄─ retry (Retry-After / backoff with jitter) ◄──┘
//!                 │
//!                 └─► journal outcomes (before the next batch is sent)
//! ```
//!
//! Requests draw from an [`AccountBudget`] that every sync writing to the same account shares
//! ([`AccountBudgets::global`]); a `Retry-After` pauses the whole account.
//!
//! Connectors classify; this crate decides. A row the destination rejects stays pending with
//! its message and never blocks the rest of the batch. A whole-batch failure (429, 5xx,
//! timeout) is retried with backoff, honouring `Retry-After`; a destination that cannot be
//! reached at all is retried the same way, but for `unreachable_timeout` at most. When retries
//! run out the run stops with a diagnostic, and every row not written stays pending for the
//! next run.

mod budget;
mod operations;
mod retry;
mod steps;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connector_core::{BatchResult, Destination, Diagnostic, Operation, RowOutcome};
use engine_plan::SyncPlan;
use engine_state::{JournalRow, RowState, RunCounts, StateError, StateStore};
use indicatif::{ProgressBar, ProgressStyle};

pub use budget::{AccountBudget, AccountBudgets};
pub use operations::{
    InvalidRow, PlannedOperation, PlannedOperations, action_name, operations_for,
};
pub use retry::{DEFAULT_UNREACHABLE_TIMEOUT, RetryPolicy};
pub use steps::{PlannedSteps, Step, steps_for};

/// How the executor paces and retries.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Operations per request (capped by the connector's maximum).
    pub batch_size: usize,
    /// The account's request budget (token bucket and `Retry-After` pauses). Take it from
    /// [`AccountBudgets::global`] so syncs writing to one account share it, or make a private
    /// one with [`AccountBudget::new`].
    pub budget: Arc<AccountBudget>,
    /// Backoff and attempts.
    pub retry: RetryPolicy,
    /// Show a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
}

/// What an execution did, for the snapshot fold and run history.
#[derive(Debug, Default)]
pub struct ExecutionReport {
    /// Keys written, with the destination id when the destination reported one.
    pub succeeded: HashMap<String, Option<String>>,
    /// Keys refused or given up on, with the message; they stay pending.
    pub failed: Vec<(String, String)>,
    /// Of the failed keys, those the destination rejected for their data (not resent
    /// unchanged).
    pub rejected: HashSet<String>,
    /// Why the run stopped early, if it did.
    pub fatal: Option<Diagnostic>,
    /// Counts for run history.
    pub counts: RunCounts,
}

/// Errors that stop an execution because the journal could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The journal could not be written: nothing more is sent.
    #[error("cannot write the apply journal: {0}")]
    Journal(#[from] StateError),
    /// The plan's change files could not be read: nothing more is sent.
    #[error("cannot read the plan's changes: {0}")]
    Changes(#[from] std::io::Error),
}

/// Executes `plan` for run `run_id`, journaling every batch in `state`: [`steps_for`] then
/// [`execute_steps`], with the planned counts in the report.
pub async fn execute<D: Destination>(
    destination: &D,
    state: &dyn StateStore,
    run_id: i64,
    plan: &SyncPlan,
    options: &ExecutorOptions,
) -> Result<ExecutionReport, ExecutorError> {
    let batch_size = options
        .batch_size
        .clamp(1, destination.capabilities().max_batch_size.max(1));
    let planned = steps_for(plan, batch_size)?;
    let mut report = execute_steps(
        destination,
        state,
        run_id,
        planned.steps,
        planned.operations,
        options,
    )
    .await?;
    report.counts = RunCounts {
        succeeded: report.counts.succeeded,
        rejected: report.counts.rejected,
        pending: report.counts.pending,
        ..planned.counts
    };
    Ok(report)
}

/// Carries out `steps` for run `run_id`, in order, journaling every batch in `state`. Needs
/// no plan: steps may come from a stream. `expected_operations` sizes the progress bar (0
/// hides it). The report's planned counts are left at zero for the caller to fill.
pub async fn execute_steps<D: Destination>(
    destination: &D,
    state: &dyn StateStore,
    run_id: i64,
    steps: impl IntoIterator<Item = Step>,
    expected_operations: u64,
    options: &ExecutorOptions,
) -> Result<ExecutionReport, ExecutorError> {
    let mut report = ExecutionReport::default();
    let progress = progress_bar(expected_operations, options.progress);
    let not_sent = |batch: &[PlannedOperation], message: &str| -> Vec<JournalRow> {
        batch
            .iter()
            .map(|p| JournalRow {
                key: p.operation.key.clone(),
                action: p.action.to_string(),
                state: RowState::GaveUp,
                destination_id: None,
                message: Some(message.to_string()),
            })
            .collect()
    };
    for step in steps {
        let batch = match step {
            // One batch at a time: every barrier holds.
            Step::Barrier => continue,
            Step::NoRequest(keys) => {
                for key in keys {
                    report.succeeded.insert(key, None);
                }
                continue;
            }
            Step::Invalid(rows) => {
                let journal: Vec<JournalRow> = rows
                    .into_iter()
                    .map(|row| {
                        report.failed.push((row.key.clone(), row.message.clone()));
                        report.counts.pending += 1;
                        JournalRow {
                            key: row.key,
                            action: row.action.to_string(),
                            state: RowState::GaveUp,
                            destination_id: None,
                            message: Some(row.message),
                        }
                    })
                    .collect();
                if !journal.is_empty() {
                    state.journal_outcomes(run_id, &journal)?;
                }
                continue;
            }
            Step::Batch(batch) => batch,
        };
        if report.fatal.is_some() {
            // Stopped early: what was never sent stays pending, and run history says so.
            let message = "not sent: the run stopped early";
            for p in &batch {
                report
                    .failed
                    .push((p.operation.key.clone(), message.to_string()));
            }
            report.counts.pending += batch.len() as u64;
            state.journal_outcomes(run_id, &not_sent(&batch, message))?;
            continue;
        }
        let sent: Vec<(String, String)> = batch
            .iter()
            .map(|p| (p.operation.key.clone(), p.action.to_string()))
            .collect();
        state.journal_sent(run_id, &sent)?;
        let operations: Vec<Operation> = batch.iter().map(|p| p.operation.clone()).collect();
        let outcome =
            send_with_retries(destination, &operations, &options.budget, &options.retry).await;
        let journal = match outcome {
            Sent::Rows(outcomes) => batch
                .iter()
                .zip(outcomes)
                .map(|(p, outcome)| {
                    let key = &p.operation.key;
                    let (state, destination_id, message) = match outcome {
                        Final::Succeeded(id) => {
                            report.succeeded.insert(key.clone(), id.clone());
                            (RowState::Succeeded, id, None)
                        }
                        Final::Rejected(message) => {
                            report.counts.rejected += 1;
                            report.rejected.insert(key.clone());
                            report.failed.push((key.clone(), message.clone()));
                            (RowState::Rejected, None, Some(message))
                        }
                        Final::GaveUp(message) => {
                            report.counts.pending += 1;
                            report.failed.push((key.clone(), message.clone()));
                            (RowState::GaveUp, None, Some(message))
                        }
                    };
                    JournalRow {
                        key: key.clone(),
                        action: p.action.to_string(),
                        state,
                        destination_id,
                        message,
                    }
                })
                .collect(),
            Sent::Stopped(diagnostic) => {
                for p in &batch {
                    report
                        .failed
                        .push((p.operation.key.clone(), diagnostic.message.clone()));
                }
                report.counts.pending += batch.len() as u64;
                tracing::error!(run_id, error = %diagnostic, "Run stopped.");
                let journal = not_sent(&batch, &diagnostic.message);
                report.fatal = Some(diagnostic);
                journal
            }
        };
        state.journal_outcomes(run_id, &journal)?;
        progress.inc(batch.len() as u64);
    }
    report.counts.succeeded = report.succeeded.len() as u64;
    progress.finish_and_clear();
    Ok(report)
}

/// Runs a read-only request (schema discovery, lookups) with the batches' backoff: `read` is
/// tried again while it fails with a diagnostic `transient` accepts (429, 5xx), at most
/// `policy.max_attempts` times in all. Other failures, and the last one, are returned as is.
pub async fn read_with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    transient: impl Fn(&Diagnostic) -> bool,
    mut read: F,
) -> Result<T, Diagnostic>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Diagnostic>>,
{
    let mut delays = policy.delays();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match read().await {
            Err(diagnostic) if transient(&diagnostic) && attempt < policy.max_attempts => {
                let Some(pause) = delays.next() else {
                    return Err(diagnostic);
                };
                tracing::warn!(attempt, error = %diagnostic, wait_ms = pause.as_millis() as u64, "Retrying read.");
                tokio::time::sleep(pause).await;
            }
            result => return result,
        }
    }
}

fn progress_bar(total: u64, show: bool) -> ProgressBar {
    if !show || total == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} rows ({per_sec}, eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// The final fate of one operation after retries.
enum Final {
    Succeeded(Option<String>),
    Rejected(String),
    GaveUp(String),
}

enum Sent {
    Rows(Vec<Final>),
    Stopped(Diagnostic),
}

/// Sends a batch, re-sending rows (or the whole batch) the destination asks to retry.
async fn send_with_retries<D: Destination>(
    destination: &D,
    batch: &[Operation],
    budget: &AccountBudget,
    policy: &RetryPolicy,
) -> Sent {
    let mut finals: Vec<Option<Final>> = batch.iter().map(|_| None).collect();
    let mut todo: Vec<usize> = (0..batch.len()).collect();
    let mut delays = policy.delays();
    let mut attempt = 0u32;
    // When the destination stopped answering, if it has not answered since.
    let mut unreachable_since: Option<Instant> = None;
    loop {
        attempt += 1;
        budget.ready().await;
        let ops: Vec<Operation> = todo.iter().map(|i| batch[*i].clone()).collect();
        let (retry_rows, wait, reason) = match destination.send_batch(&ops).await {
            BatchResult::Fatal(diagnostic) => return Sent::Stopped(diagnostic),
            BatchResult::Unreachable { target, reason } => {
                let since = *unreachable_since.get_or_insert_with(|| {
                    tracing::warn!(
                        "{target} is not answering; retrying for up to {} s.",
                        policy.unreachable_timeout.as_secs_f64()
                    );
                    Instant::now()
                });
                let left = policy.unreachable_timeout.saturating_sub(since.elapsed());
                let Some(backoff) = delays
                    .next()
                    .filter(|_| attempt < policy.max_attempts && !left.is_zero())
                else {
                    return Sent::Stopped(unreachable_diagnostic(
                        &target,
                        &reason,
                        attempt,
                        since.elapsed(),
                    ));
                };
                let pause = backoff.min(left);
                tracing::warn!(attempt, reason = %reason, wait_ms = pause.as_millis() as u64, "Retrying batch.");
                tokio::time::sleep(pause).await;
                continue;
            }
            BatchResult::RetryAll { reason, after } => (todo.clone(), after, reason),
            BatchResult::PerRow(outcomes) => {
                let mut retry_rows = Vec::new();
                let mut wait: Option<Duration> = None;
                let mut reason = String::new();
                if outcomes.len() != ops.len() {
                    return Sent::Stopped(Diagnostic::error(
                        "internal",
                        format!(
                            "the {} connector returned {} outcomes for {} operations; this is a bug in engine",
                            destination.name(),
                            outcomes.len(),
                            ops.len()
                        ),
                    ));
                }
                for (index, outcome) in todo.iter().zip(outcomes) {
                    match outcome {
                        RowOutcome::Succeeded { destination_id, .. } => {
                            finals[*index] = Some(Final::Succeeded(Some(destination_id)))
                        }
                        RowOutcome::Rejected { message } => {
                            finals[*index] = Some(Final::Rejected(message))
                        }
                        RowOutcome::Retry { reason: why, after } => {
                            retry_rows.push(*index);
                            wait = wait.max(after);
                            reason = why;
                        }
                    }
                }
                (retry_rows, wait, reason)
            }
        };
        // It answered: a later connection failure starts a new unreachable period.
        unreachable_since = None;
        if let Some(after) = wait {
            // The destination asked for a pause: every request to the account waits.
            budget.pause(after.min(policy.max_delay));
        }
        if retry_rows.is_empty() {
            break;
        }
        let Some(backoff) = delays.next().filter(|_| attempt < policy.max_attempts) else {
            let message = format!("gave up after {attempt} attempts: {reason}");
            if retry_rows.len() == todo.len() && finals.iter().all(Option::is_none) {
                return Sent::Stopped(
                    Diagnostic::error("executor::gave_up", format!("{} did not accept a batch after {attempt} attempts: {reason}", destination.name()))
                        .hint("check that the destination's `base_url` is reachable and healthy, then run `engine apply` again; rows not written stay pending"),
                );
            }
            for index in retry_rows {
                finals[index] = Some(Final::GaveUp(message.clone()));
            }
            break;
        };
        let pause = wait.map(|w| w.min(policy.max_delay)).unwrap_or(backoff);
        tracing::warn!(attempt, reason = %reason, wait_ms = pause.as_millis() as u64, "Retrying batch.");
        tokio::time::sleep(pause).await;
        todo = retry_rows;
    }
    Sent::Rows(
        finals
            .into_iter()
            .map(|f| {
                f.unwrap_or_else(|| {
                    Final::GaveUp("no outcome recorded; this is a bug in engine".into())
                })
            })
            .collect(),
    )
}

/// The diagnostic for a destination that could not be reached within the retry bound.
fn unreachable_diagnostic(
    target: &str,
    reason: &str,
    attempts: u32,
    waited: Duration,
) -> Diagnostic {
    Diagnostic::error(
        "executor::unreachable",
        format!(
            "{target} did not answer for {:.0} s ({attempts} attempts): {reason}",
            waited.as_secs_f64()
        ),
    )
    .hint("check that the destination is running and its `base_url` is right, then run `engine apply` again; rows not written stay pending")
    .hint("to wait longer for a destination that is restarting, set `ENGINE_RETRY_TIMEOUT` (seconds)")
}

#[cfg(test)]
mod tests;
