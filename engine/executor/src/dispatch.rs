//! The send loop: carries out steps with several batches in flight, journaling each batch.
//!
//! One task drives every request (a `FuturesUnordered`), so the journal, which is synchronous,
//! is written from that task alone: a batch is journaled `sent` before its first request and
//! its outcomes once its answer is final, in whatever order answers come. Each answer costs
//! one write: its outcomes go in the same transaction as the batches admitted after it.
//! Batches are admitted while fewer than the controller's limit are in flight; a
//! [`Step::Barrier`] admits nothing more until every batch before it is answered. After a
//! fatal answer nothing new is sent, batches in flight are awaited and journaled, and the
//! rows of every batch not yet sent are journaled as not sent.

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, PoisonError};

use connector_core::{Destination, Diagnostic, Operation};
use engine_state::{JournalRow, RowState, StateStore};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;

use crate::concurrency::Controller;
use crate::operations::{InvalidRow, PlannedOperation};
use crate::send::{Final, NOT_SENT, Pacing, Sent, send_with_retries};
use crate::steps::Step;
use crate::{ExecutionReport, ExecutorError, ExecutorOptions};

/// Carries out `steps` with the given controller (tests pass their own to watch it).
pub(crate) async fn run<D: Destination>(
    destination: &D,
    state: &dyn StateStore,
    run_id: i64,
    steps: impl Iterator<Item = Step>,
    expected_operations: u64,
    options: &ExecutorOptions,
    controller: &Mutex<Controller>,
) -> Result<ExecutionReport, ExecutorError> {
    let mut progress = crate::progress::Progress::new(expected_operations, options.progress);
    let (stop, _) = watch::channel(false);
    let unreachable_warned = AtomicBool::new(false);
    let charged = Mutex::new(destination.requests_sent());
    let pacing = Pacing {
        budget: &options.budget,
        controller,
        policy: &options.retry,
        stop: &stop,
        unreachable_warned: &unreachable_warned,
        charged: &charged,
    };
    let limit = || {
        controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .limit()
    };
    let mut tally = Tally::default();
    let mut steps = steps;
    let mut in_flight = FuturesUnordered::new();
    // A barrier was reached: nothing more is sent until the batches in flight are answered.
    let mut barrier = false;
    // Outcomes of batches answered since the journal was last written.
    let mut answered: Vec<Vec<JournalRow>> = Vec::new();
    loop {
        let mut admitted: Vec<Batch> = Vec::new();
        while !barrier && tally.fatal.is_none() && in_flight.len() + admitted.len() < limit() {
            let Some(step) = steps.next() else {
                break;
            };
            match step {
                Step::Barrier => barrier = !(in_flight.is_empty() && admitted.is_empty()),
                Step::NoRequest(rows) => {
                    progress.inc(rows.len() as u64);
                    tally.no_request(state, run_id, rows)?;
                }
                Step::Invalid(rows) => {
                    progress.inc(rows.len() as u64);
                    tally.invalid(state, run_id, rows)?;
                }
                Step::Batch(batch) => admitted.push(Batch::from(batch)),
            }
        }
        // One write for the answers just taken and the batches about to go: a batch is
        // journaled `sent` before its request exists (a future runs only once polled below).
        if !answered.is_empty() || !admitted.is_empty() {
            let sent: Vec<Vec<(String, String)>> = admitted
                .iter()
                .map(|batch| {
                    batch
                        .rows()
                        .map(|(key, action)| (key.to_string(), action.to_string()))
                        .collect()
                })
                .collect();
            state.journal_batches(run_id, &answered, &sent)?;
            answered.clear();
        }
        for batch in admitted {
            let pacing = &pacing;
            in_flight.push(async move {
                let answer = send_with_retries(destination, &batch.operations, pacing).await;
                (batch, answer)
            });
        }
        let Some((batch, answer)) = in_flight.next().await else {
            break;
        };
        answered.push(tally.answered(run_id, &batch, answer));
        progress.inc(batch.len() as u64);
        if tally.fatal.is_some() {
            stop.send_replace(true);
        }
        if in_flight.is_empty() {
            barrier = false;
        }
    }
    // Stopped early: what was never sent stays pending, and run history says so.
    for step in steps {
        match step {
            Step::Barrier => {}
            Step::NoRequest(rows) => tally.no_request(state, run_id, rows)?,
            Step::Invalid(rows) => tally.invalid(state, run_id, rows)?,
            Step::Batch(batch) => {
                let journal = tally.not_sent(&Batch::from(batch));
                state.journal_outcomes(run_id, &journal)?;
            }
        }
    }
    progress.finish();
    {
        let controller = controller.lock().unwrap_or_else(PoisonError::into_inner);
        tracing::debug!(
            run_id,
            peak_in_flight = controller.peak(),
            cuts = controller.cuts(),
            "Batches sent."
        );
    }
    Ok(tally.finish())
}

/// A batch as it is sent: the operations in one vector (the connector's input, never copied
/// for the first attempt) and each one's plan action beside it.
struct Batch {
    operations: Vec<Operation>,
    actions: Vec<&'static str>,
}

impl From<Vec<PlannedOperation>> for Batch {
    fn from(planned: Vec<PlannedOperation>) -> Self {
        let (actions, operations) = planned.into_iter().map(|p| (p.action, p.operation)).unzip();
        Batch {
            operations,
            actions,
        }
    }
}

impl Batch {
    fn len(&self) -> usize {
        self.operations.len()
    }

    /// Each operation's row key with its plan action.
    fn rows(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.operations
            .iter()
            .zip(&self.actions)
            .map(|(op, action)| (op.key.as_str(), *action))
    }
}

/// The report under construction: counts only. Every row's outcome is in the journal, which
/// the snapshot fold and the pending rows are built from, so nothing here grows with the run.
#[derive(Default)]
struct Tally {
    report: ExecutionReport,
    fatal: Option<Diagnostic>,
}

impl Tally {
    /// Journals rows that need no request as written.
    fn no_request(
        &mut self,
        state: &dyn StateStore,
        run_id: i64,
        rows: Vec<(String, &'static str)>,
    ) -> Result<(), ExecutorError> {
        self.report.counts.succeeded += rows.len() as u64;
        let journal: Vec<JournalRow> = rows
            .into_iter()
            .inspect(|(_, action)| self.report.written.add(action))
            .map(|(key, action)| JournalRow {
                key,
                action: action.to_string(),
                state: RowState::Succeeded,
                destination_id: None,
                message: None,
            })
            .collect();
        state.journal_outcomes(run_id, &journal)?;
        Ok(())
    }

    fn invalid(
        &mut self,
        state: &dyn StateStore,
        run_id: i64,
        rows: Vec<InvalidRow>,
    ) -> Result<(), ExecutorError> {
        self.report.counts.pending += rows.len() as u64;
        let journal: Vec<JournalRow> = rows
            .into_iter()
            .map(|row| JournalRow {
                key: row.key,
                action: row.action.to_string(),
                state: RowState::GaveUp,
                destination_id: None,
                message: Some(row.message),
            })
            .collect();
        if !journal.is_empty() {
            state.journal_outcomes(run_id, &journal)?;
        }
        Ok(())
    }

    /// Records a batch's final answer; returns its journal rows.
    fn answered(&mut self, run_id: i64, batch: &Batch, answer: Sent) -> Vec<JournalRow> {
        match answer {
            Sent::Rows(finals) => batch
                .rows()
                .zip(finals)
                .map(|((key, action), outcome)| {
                    let (state, destination_id, message) = match outcome {
                        Final::Succeeded(id) => {
                            self.report.counts.succeeded += 1;
                            self.report.written.add(action);
                            (RowState::Succeeded, id, None)
                        }
                        Final::Skipped(reason) => {
                            // Done, with no record of the sync's: the state keeps the row
                            // without a record id, and the journal says why.
                            self.report.counts.succeeded += 1;
                            self.report.written.skipped += 1;
                            (RowState::Succeeded, None, Some(reason))
                        }
                        Final::Rejected(message) => {
                            self.report.counts.rejected += 1;
                            (RowState::Rejected, None, Some(message))
                        }
                        Final::GaveUp(message) => {
                            self.report.counts.pending += 1;
                            (RowState::GaveUp, None, Some(message))
                        }
                    };
                    JournalRow {
                        key: key.to_string(),
                        action: action.to_string(),
                        state,
                        destination_id,
                        message,
                    }
                })
                .collect(),
            Sent::Stopped(diagnostic) => {
                let journal = self.gave_up(batch, &diagnostic.message);
                if self.fatal.is_none() {
                    tracing::error!(run_id, error = %diagnostic, "Run stopped.");
                    self.fatal = Some(diagnostic);
                }
                journal
            }
        }
    }

    /// Records a batch never sent because the run stopped; returns its journal rows.
    fn not_sent(&mut self, batch: &Batch) -> Vec<JournalRow> {
        self.gave_up(batch, NOT_SENT)
    }

    fn gave_up(&mut self, batch: &Batch, message: &str) -> Vec<JournalRow> {
        self.report.counts.pending += batch.len() as u64;
        batch
            .rows()
            .map(|(key, action)| JournalRow {
                key: key.to_string(),
                action: action.to_string(),
                state: RowState::GaveUp,
                destination_id: None,
                message: Some(message.to_string()),
            })
            .collect()
    }

    fn finish(mut self) -> ExecutionReport {
        self.report.fatal = self.fatal;
        self.report
    }
}
