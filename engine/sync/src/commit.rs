//! Committing a run: the snapshot fold and the state's next generation, one path for a
//! finished apply and for a recovered crash, so both leave the same state.

use std::collections::HashMap;

use engine_diag::Diagnostic;
use engine_diff::fold_snapshot_observed;
use engine_plan::SyncPlan;
use engine_state::{Commit, LocalState, RunCounts, RunStatus, StateStore};

use crate::{Failure, state_error};

/// The fingerprints of rejected rows' changes, so an unchanged row is not resent.
pub(crate) fn held_fingerprints<'k>(
    plan: &SyncPlan,
    rejected: impl Iterator<Item = &'k str>,
) -> Result<Vec<(String, String)>, Failure> {
    let rejected: std::collections::HashSet<&str> = rejected.collect();
    let mut held = Vec::new();
    if rejected.is_empty() {
        return Ok(held);
    }
    plan.changes
        .for_each(|c| {
            if rejected.contains(c.key.as_str()) {
                held.push((c.key.clone(), c.fingerprint()));
            }
            Ok(())
        })
        .map_err(|e| vec![changes_unreadable(&plan.sync, &e)])?;
    Ok(held)
}

/// A plan's change files could not be read.
pub(crate) fn changes_unreadable(sync: &str, error: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        "state::error",
        format!("cannot read the planned changes of sync `{sync}`: {error}"),
    )
    .hint("check free disk space and permissions of the state directory, then run `engine apply` again")
}

/// How a run ended, for [`fold_and_commit`].
pub(crate) struct Outcome<'a> {
    pub(crate) run_id: i64,
    pub(crate) status: RunStatus,
    pub(crate) counts: RunCounts,
    pub(crate) message: Option<&'a str>,
    pub(crate) succeeded: &'a HashMap<String, Option<String>>,
    pub(crate) failed: &'a [(String, String)],
    pub(crate) held: &'a [(String, String)],
    /// Values found in the destination for rows recovery read back (see `recovery`).
    pub(crate) observed: &'a HashMap<String, Vec<Option<String>>>,
}

/// Folds a run's successes into the next snapshot and commits the generation, the run's end
/// and the pending rows. One path for finished and for recovered runs, so both give the same
/// state.
pub(crate) fn fold_and_commit(
    state: &LocalState,
    plan: &SyncPlan,
    outcome: Outcome<'_>,
) -> Result<(), Failure> {
    let fail = |e: engine_state::StateError| vec![state_error(e)];
    let generation = state.generation(&plan.sync).map_err(fail)?;
    let out = state
        .next_snapshot_path(&plan.sync, generation.generation)
        .map_err(fail)?;
    let folded = fold_snapshot_observed(
        generation.snapshot.as_deref(),
        plan,
        outcome.succeeded,
        outcome.observed,
        &out,
    )
        .map_err(|e| {
            vec![Diagnostic::error(
                "state::error",
                format!("cannot write the snapshot of sync `{}`: {e}", plan.sync),
            )
            .hint("check free disk space and permissions of the state directory, then run `engine apply` again")]
        })?;
    let resolved: Vec<String> = outcome.succeeded.keys().cloned().collect();
    state
        .commit_generation(&Commit {
            sync: &plan.sync,
            base_generation: generation.generation,
            snapshot_rows: folded.rows,
            run_id: outcome.run_id,
            status: outcome.status,
            counts: outcome.counts,
            message: outcome.message,
            resolved: &resolved,
            failed: outcome.failed,
            held: outcome.held,
        })
        .map_err(fail)?;
    Ok(())
}
