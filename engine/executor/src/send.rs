//! One batch from its first request to its final answer: pacing, retries, back pressure.
//!
//! Each attempt waits for the account's budget, takes a ticket from the concurrency
//! controller and reports how the answer bears on load. A `Retry-After` pauses the whole
//! account. Once the run is stopping (a fatal answer elsewhere), a batch finishes the request
//! it has on the wire but sends nothing more: its rows not written give up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use connector_core::{BatchResult, Destination, Diagnostic, Operation, RowOutcome};
use tokio::sync::watch;

use crate::budget::AccountBudget;
use crate::concurrency::{Controller, Signal};
use crate::retry::RetryPolicy;

/// What every batch of one execution shares.
pub(crate) struct Pacing<'a> {
    pub(crate) budget: &'a AccountBudget,
    pub(crate) controller: &'a Mutex<Controller>,
    pub(crate) policy: &'a RetryPolicy,
    /// Becomes true when the run stops: no batch sends again.
    pub(crate) stop: &'a watch::Sender<bool>,
    /// The "not answering" status line was logged for the current outage.
    pub(crate) unreachable_warned: &'a AtomicBool,
    /// Requests charged to the budget so far: one per batch sent, plus those the destination
    /// sent beyond one for a batch (see [`Destination::requests_sent`]).
    pub(crate) charged: &'a Mutex<u64>,
}

/// The final fate of one operation after retries.
pub(crate) enum Final {
    Succeeded(Option<String>),
    /// Done without a write: the record exists and is not the sync's (`mode: insert`).
    Skipped(String),
    Rejected(String),
    GaveUp(String),
}

/// A batch's final answer.
pub(crate) enum Sent {
    Rows(Vec<Final>),
    Stopped(Diagnostic),
}

/// Charges the budget for the requests the destination sent beyond one per batch (links,
/// look-ups, list members), so the account's rate holds for the whole apply: the tokens are
/// taken after the fact, which delays this batch's next request and everyone else's.
async fn charge_extra_requests<D: Destination>(destination: &D, pacing: &Pacing<'_>) {
    let extra = {
        let mut charged = lock(pacing.charged);
        let extra = destination.requests_sent().saturating_sub(*charged);
        *charged += extra;
        extra
    };
    for _ in 0..extra {
        pacing.budget.ready().await;
    }
}

/// The message of rows never sent because the run stopped early.
pub(crate) const NOT_SENT: &str = "not sent: the run stopped early";

/// Sends a batch, re-sending rows (or the whole batch) the destination asks to retry.
pub(crate) async fn send_with_retries<D: Destination>(
    destination: &D,
    batch: &[Operation],
    pacing: &Pacing<'_>,
) -> Sent {
    let policy = pacing.policy;
    let mut stop = pacing.stop.subscribe();
    let mut finals: Vec<Option<Final>> = batch.iter().map(|_| None).collect();
    let mut todo: Vec<usize> = (0..batch.len()).collect();
    let mut delays = policy.delays();
    let mut attempt = 0u32;
    // Why the rows in `todo` are not written yet, once they have been tried.
    let mut last_reason: Option<String> = None;
    // When the destination stopped answering, if it has not answered since.
    let mut unreachable_since: Option<Instant> = None;
    loop {
        attempt += 1;
        if interrupted(&mut stop, pacing.budget.ready()).await {
            give_up(&mut finals, &todo, stopped_message(last_reason.as_deref()));
            break;
        }
        // The whole batch as it is; only a retry of some of its rows makes a smaller one.
        let subset: Vec<Operation>;
        let ops: &[Operation] = if todo.len() == batch.len() {
            batch
        } else {
            subset = todo.iter().map(|i| batch[*i].clone()).collect();
            &subset
        };
        *lock(pacing.charged) += 1;
        let ticket = lock(pacing.controller).start();
        let started = Instant::now();
        let result = destination.send_batch(ops).await;
        lock(pacing.controller).observe(ticket, started.elapsed(), signal(&result));
        charge_extra_requests(destination, pacing).await;
        let (retry_rows, wait, reason) = match result {
            BatchResult::Fatal(diagnostic) => return Sent::Stopped(diagnostic),
            BatchResult::Unreachable { target, reason } => {
                let since = *unreachable_since.get_or_insert_with(|| {
                    if !pacing.unreachable_warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "{target} is not answering; retrying for up to {} s.",
                            policy.unreachable_timeout.as_secs_f64()
                        );
                    }
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
                if interrupted(&mut stop, tokio::time::sleep(pause)).await {
                    give_up(&mut finals, &todo, stopped_message(Some(&reason)));
                    break;
                }
                last_reason = Some(reason);
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
                        RowOutcome::Skipped { reason, .. } => {
                            finals[*index] = Some(Final::Skipped(reason))
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
        pacing.unreachable_warned.store(false, Ordering::Relaxed);
        if let Some(after) = wait {
            // The destination asked for a pause: every request to the account waits.
            pacing.budget.pause(after.min(policy.max_delay));
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
            give_up(&mut finals, &retry_rows, message);
            break;
        };
        let pause = wait.map(|w| w.min(policy.max_delay)).unwrap_or(backoff);
        tracing::warn!(attempt, reason = %reason, wait_ms = pause.as_millis() as u64, "Retrying batch.");
        todo = retry_rows;
        if interrupted(&mut stop, tokio::time::sleep(pause)).await {
            give_up(&mut finals, &todo, stopped_message(Some(&reason)));
            break;
        }
        last_reason = Some(reason);
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

/// Awaits `wait` unless the run stops first; true when it stopped.
async fn interrupted(stop: &mut watch::Receiver<bool>, wait: impl Future<Output = ()>) -> bool {
    tokio::select! {
        biased;
        Ok(_) = stop.wait_for(|stopping| *stopping) => true,
        () = wait => false,
    }
}

fn give_up(finals: &mut [Option<Final>], rows: &[usize], message: String) {
    for index in rows {
        finals[*index] = Some(Final::GaveUp(message.clone()));
    }
}

/// Why rows were not sent (again) after the run stopped.
fn stopped_message(last_reason: Option<&str>) -> String {
    match last_reason {
        None => NOT_SENT.to_string(),
        Some(reason) => format!("{reason}; not sent again: the run stopped early"),
    }
}

/// How an answer bears on the destination's load.
fn signal(result: &BatchResult) -> Signal {
    match result {
        BatchResult::PerRow(outcomes) => {
            if outcomes
                .iter()
                .any(|o| matches!(o, RowOutcome::Retry { .. }))
            {
                Signal::BackPressure
            } else {
                Signal::Clean
            }
        }
        BatchResult::RetryAll { .. } | BatchResult::Unreachable { .. } => Signal::BackPressure,
        BatchResult::Fatal(_) => Signal::Neutral,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
