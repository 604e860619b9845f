//! Runs a sync plan against a destination: batching, concurrency, rate limiting, retries
//! and the journal.
//!
//! ```text
//! SyncPlan ─► stream_steps ─► Step::Batch … Step::Barrier … Step::Batch  (ordered, grouped)
//!                              │
//!                              ▼  execute_steps: up to N batches in flight (AIMD), one task
//!             journal "sent" ─► account budget (token bucket + Retry-After pause) ─► send_batch
//!                                                                                      │
//!       per-row outcomes ◄─ retry (Retry-After / backoff with jitter) ◄───────────────┘
//!              │
//!              └─► journal outcomes (with the next batches' "sent", one write per answer)
//! ```
//!
//! Connectors classify; this crate decides. A row the destination rejects stays pending with
//! its message and never blocks the rest of the batch. A whole-batch failure (429, 5xx,
//! timeout) is retried with backoff, honouring `Retry-After`; a destination that cannot be
//! reached at all is retried the same way, but for `unreachable_timeout` at most. When retries
//! run out the run stops with a diagnostic, and every row not written stays pending for the
//! next run.
//!
//! Several batches of one sync are in flight at once, up to an adaptive limit (AIMD, within
//! [`ConcurrencyLimits`]), but batches are grouped by operation kind and wave and a group is
//! fully answered before the next one starts (a record gives up a match value before another
//! record takes it). Requests draw from an [`AccountBudget`] that every sync writing to the
//! same account shares ([`AccountBudgets::global`]); a `Retry-After` pauses the whole account.

mod budget;
mod concurrency;
mod dispatch;
mod operations;
mod progress;
mod retry;
mod send;
mod steps;

use std::sync::{Arc, Mutex};

use connector_core::{Destination, Diagnostic};
use engine_plan::SyncPlan;
use engine_state::{RunCounts, StateError, StateStore};

pub use budget::{AccountBudget, AccountBudgets, PACING_SHARE};
pub use concurrency::{ConcurrencyLimits, DEFAULT_INITIAL_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT};
pub use operations::{
    InvalidRow, PlannedOperation, PlannedOperations, action_name, operations_for,
};
pub use progress::ProgressMode;
pub use retry::{DEFAULT_UNREACHABLE_TIMEOUT, RetryPolicy};
pub use steps::{PlannedSteps, Step, StepStream, steps_for, stream_steps};

/// How the executor paces and retries.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Operations per request (capped by the connector's maximum).
    pub batch_size: usize,
    /// The account's request budget (token bucket and `Retry-After` pauses). Take it from
    /// [`AccountBudgets::global`] so syncs writing to one account share it, or make a private
    /// one with [`AccountBudget::new`].
    pub budget: Arc<AccountBudget>,
    /// How many requests may be in flight at once.
    pub concurrency: ConcurrencyLimits,
    /// Backoff and attempts.
    pub retry: RetryPolicy,
    /// How progress is shown on stderr.
    pub progress: ProgressMode,
}

/// What an execution did, for run history. Each row's outcome (written with its record id,
/// rejected, given up) is in the journal, not here, so the report's size does not grow with
/// the run.
#[derive(Debug, Default)]
pub struct ExecutionReport {
    /// Why the run stopped early, if it did.
    pub fatal: Option<Diagnostic>,
    /// Counts for run history.
    pub counts: RunCounts,
    /// Rows written, by plan action: what the summary line reports.
    pub written: WrittenCounts,
}

/// Rows written in one execution, by plan action.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WrittenCounts {
    /// Created (upserted) rows.
    pub create: u64,
    /// Updated rows.
    pub update: u64,
    /// Removed rows (per `on_remove`).
    pub remove: u64,
    /// Rows done without a write: their record existed and was left as it is
    /// (`mode: insert`).
    pub skipped: u64,
}

impl WrittenCounts {
    /// Counts one row of plan action `action` (`create`, `update` or `remove`) as written.
    pub fn add(&mut self, action: &str) {
        match action {
            "create" => self.create += 1,
            "update" => self.update += 1,
            _ => self.remove += 1,
        }
    }
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

/// Executes `plan` for run `run_id`, journaling every batch in `state`: [`stream_steps`]
/// then [`execute_steps`], with the planned counts in the report.
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
    let mut planned = stream_steps(plan, batch_size)?;
    // Every change is one operation, or a row that sends nothing: the progress bar counts both.
    let mut report = execute_steps(
        destination,
        state,
        run_id,
        &mut planned,
        plan.changes.len(),
        options,
    )
    .await?;
    if let Some(error) = planned.take_error() {
        return Err(ExecutorError::Changes(error));
    }
    // The stream has been read to its end (or the run stopped, and the rest journaled as not
    // sent, which reads it too): its counts are complete.
    let counts = planned.counts;
    report.counts = RunCounts {
        succeeded: report.counts.succeeded,
        rejected: report.counts.rejected,
        pending: report.counts.pending,
        ..counts
    };
    Ok(report)
}

/// Carries out `steps` for run `run_id`, in order, journaling every batch in `state`. Needs
/// no plan: steps may come from a stream. `expected_operations` sizes the progress bar (0
/// hides it); rows that send nothing count towards it as they are journaled. The report's
/// planned counts are left at zero for the caller to fill.
///
/// Batches between two barriers are sent several at once, up to the adaptive limit; a batch's
/// outcomes are journaled as soon as its answer is final. After a fatal answer nothing new
/// is sent, batches in flight are awaited and journaled, and every row not sent is journaled
/// as given up.
pub async fn execute_steps<D: Destination>(
    destination: &D,
    state: &dyn StateStore,
    run_id: i64,
    steps: impl IntoIterator<Item = Step>,
    expected_operations: u64,
    options: &ExecutorOptions,
) -> Result<ExecutionReport, ExecutorError> {
    let controller = Mutex::new(concurrency::Controller::new(options.concurrency));
    dispatch::run(
        destination,
        state,
        run_id,
        steps.into_iter(),
        expected_operations,
        options,
        &controller,
    )
    .await
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

#[cfg(test)]
mod tests;
