//! `engine state gc`: prunes the state by the project's retention (see `engine_state::prune`),
//! with every sync locked so no apply runs meanwhile. Every apply also prunes its own sync
//! after it commits ([`prune_after_commit`]).

use engine_spec::Project;
use engine_state::{Keep, Pruned, State, StateStore};

use crate::{Failure, open_state, state_error};

/// The project's retention as the state takes it.
pub(crate) fn keep(project: &Project) -> Keep {
    Keep {
        runs: project.retention.runs,
        days: project.retention.days,
    }
}

/// Prunes every sync's history and the state's leftovers; with `dry_run`, only says what
/// would go. Fails at once, changing nothing, if an apply holds a sync's lock.
pub fn gc(project: &Project, dry_run: bool) -> Result<Pruned, Failure> {
    let state = open_state(project)?;
    let fail = |e| vec![state_error(e)];
    let mut names: Vec<String> = state
        .recorded_syncs()
        .map_err(fail)?
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    names.extend(project.syncs.iter().map(|s| s.name.value.clone()));
    names.sort();
    names.dedup();
    let mut locks = Vec::new();
    for name in &names {
        locks.push(state.lock_sync(name).map_err(fail)?);
    }
    let pruned = state.prune_all(keep(project), dry_run).map_err(fail)?;
    drop(locks);
    Ok(pruned)
}

/// Prunes what a committed apply of `sync` made obsolete; the caller holds the sync's lock.
/// A failure here does not undo the apply: it is logged, and `engine state gc` retries.
pub(crate) fn prune_after_commit(project: &Project, state: &State, sync: &str) {
    match state.prune_sync(sync, keep(project), false) {
        Ok(pruned) if !pruned.failed.is_empty() => tracing::warn!(
            sync,
            file = %pruned.failed[0].0.display(),
            error = %pruned.failed[0].1,
            files = pruned.failed.len(),
            "Could not remove files the state no longer needs; `engine state gc` will try again."
        ),
        Ok(pruned) => tracing::debug!(
            sync,
            runs = pruned.runs,
            journal_rows = pruned.journal_rows,
            files = pruned.files.len(),
            bytes = pruned.bytes(),
            "Pruned the state."
        ),
        Err(error) => {
            tracing::warn!(sync, %error, "Could not prune the state; `engine state gc` will.")
        }
    }
}
