//! Committing a run: the snapshot fold and the state's next generation, one path for a
//! finished apply and for a recovered crash, so both leave the same state.
//!
//! Everything here reads the run's outcomes from its journal, in key order, a page at a time:
//! the fold merges them with the previous snapshot and the plan's changes, the commit moves
//! pending rows in SQL. Memory does not grow with the number of rows the run wrote.

use std::collections::{HashMap, HashSet};

use engine_diag::Diagnostic;
use engine_diff::{RunOutcomes, fold_run, snapshot_is_sorted, sort_snapshot};
use engine_plan::SyncPlan;
use engine_spec::Project;
use engine_state::{
    Commit, JournalRow, MergeByKey, RowState, RunCounts, RunStatus, State, StateError, StateStore,
    journal_rows,
};

use crate::{Failure, state_error};

/// The fingerprints of the changes the destination rejected in run `run_id`, so an unchanged
/// row is not resent. The rejected keys are read from the journal (they are as many as the
/// fingerprints returned), then the plan's changes once.
pub(crate) fn held_fingerprints(
    state: &State,
    plan: &SyncPlan,
    run_id: i64,
) -> Result<Vec<(String, String)>, Failure> {
    let rejected: std::collections::HashSet<String> =
        journal_rows(state, run_id, Some(RowState::Rejected))
            .map(|row| row.map(|r| r.key))
            .collect::<Result<_, _>>()
            .map_err(|e| vec![state_error(e)])?;
    let mut held = Vec::new();
    if rejected.is_empty() {
        return Ok(held);
    }
    plan.changes
        .for_each(|c| {
            if rejected.contains(&c.key) {
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
    pub(crate) held: &'a [(String, String)],
    /// Rows of a crashed run whose answer never came, found written by reading the destination
    /// back (see `recovery`): journaled as written in the commit's own transaction.
    pub(crate) reconciled: &'a [JournalRow],
    /// Values found in the destination for rows recovery read back (see `recovery`).
    pub(crate) observed: &'a HashMap<String, Vec<Option<String>>>,
}

/// Folds a run's successes into the next snapshot and commits the generation, the run's end
/// and the pending rows. One path for finished and for recovered runs, so both give the same
/// state.
pub(crate) async fn fold_and_commit(
    project: &Project,
    state: &State,
    plan: &SyncPlan,
    outcome: Outcome<'_>,
) -> Result<(), Failure> {
    let fail = |e: StateError| vec![state_error(e)];
    let cannot_write = |e: std::io::Error| {
        let hint = if e.kind() == std::io::ErrorKind::InvalidData {
            // Out of key order: the state was edited or damaged, not the disk.
            format!(
                "run `engine state check`, then `engine state rebuild --sync {}` to rebuild the snapshot from the destination",
                plan.sync
            )
        } else {
            "check free disk space and permissions of the state directory, then run `engine apply` again".to_string()
        };
        vec![
            Diagnostic::error(
                "state::error",
                format!("cannot write the snapshot of sync `{}`: {e}", plan.sync),
            )
            .hint(hint),
        ]
    };
    let generation = state.generation(&plan.sync).map_err(fail)?;
    let out = state
        .next_snapshot_path(&plan.sync, generation.generation)
        .map_err(fail)?;
    if let Some(previous) = &generation.snapshot
        && !snapshot_is_sorted(previous).map_err(cannot_write)?
    {
        // A snapshot from before snapshots were kept in key order is sorted once.
        let engine = engine_models::ModelEngine::empty(&crate::engine_options(project))
            .map_err(|d| vec![d])?;
        sort_snapshot(engine.context(), previous)
            .await
            .map_err(cannot_write)?;
    }

    let mut reconciled: Vec<&JournalRow> = outcome
        .reconciled
        .iter()
        .filter(|r| r.state == RowState::Succeeded)
        .collect();
    reconciled.sort_by(|a, b| a.key.cmp(&b.key));
    let journaled = journal_rows(state, outcome.run_id, Some(RowState::Succeeded));
    let mut written = MergeByKey::new(
        journaled,
        reconciled
            .iter()
            .map(|r| Ok((*r).clone()))
            .collect::<Vec<_>>()
            .into_iter(),
    )
    .map(|row| {
        row.map(|r| (r.key, r.destination_id))
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    // Rows that took over another row's record (re-keys) are few: which of them the run
    // wrote is read in one pass over its successes, not looked up row by row.
    let wrote = |rekeyed: &HashSet<String>| -> std::io::Result<HashSet<String>> {
        let mut written: HashSet<String> = reconciled
            .iter()
            .filter(|r| rekeyed.contains(&r.key))
            .map(|r| r.key.clone())
            .collect();
        for row in journal_rows(state, outcome.run_id, Some(RowState::Succeeded)) {
            let row = row.map_err(|e| std::io::Error::other(e.to_string()))?;
            if rekeyed.contains(&row.key) {
                written.insert(row.key);
            }
        }
        Ok(written)
    };
    let folded = fold_run(
        generation.snapshot.as_deref(),
        plan,
        RunOutcomes {
            written: &mut written,
            wrote: &wrote,
            observed: outcome.observed,
        },
        &out,
    )
    .map_err(cannot_write)?;
    state
        .commit_generation(&Commit {
            sync: &plan.sync,
            base_generation: generation.generation,
            snapshot_rows: folded.rows,
            run_id: outcome.run_id,
            status: outcome.status,
            counts: outcome.counts,
            message: outcome.message,
            held: outcome.held,
            reconciled: outcome.reconciled,
        })
        .map_err(fail)?;
    Ok(())
}
