//! `engine state migrate --to postgres|local`: moves a project's state between the directory
//! `state.path` names and the PostgreSQL schema `state.url` and `state.schema` name, without
//! loss (see `engine_state::transfer`). Both ends come from `engine.yaml`, so the PostgreSQL
//! backend must be configured there; every sync of the source is locked meanwhile, and the
//! target must be empty.

use engine_diag::Diagnostic;
use engine_spec::{Project, StateBackend};
use engine_state::{State, StateStore, Transferred};

use std::path::PathBuf;

use crate::{Failure, open_local, open_postgres, state_error};

/// The interrupted runs of the source with their change files. Moving to the local backend,
/// a run whose change files are not on this machine (it was interrupted elsewhere) is refused:
/// recover it first, where the shared state can give them.
fn interrupted_runs(
    from: &State,
    syncs: &[String],
    to: MigrateTo,
) -> Result<Vec<(i64, Vec<PathBuf>)>, Failure> {
    let fail = |e| vec![state_error(e)];
    let mut runs = Vec::new();
    for sync in syncs {
        for run in from.unfinished_runs(sync).map_err(fail)? {
            let Ok(stored) = from.run_plan(run.id) else {
                continue; // stopped before its plan was kept: it sent nothing
            };
            let Ok(plan) = crate::run_plan::decode(&stored) else {
                continue; // named by the recovery that reads it
            };
            if to == MigrateTo::Local && crate::run_plan::missing_part(&plan).is_some() {
                return Err(vec![Diagnostic::error(
                    "state::migrate_interrupted_run",
                    format!(
                        "run {} of sync `{sync}` was interrupted on another machine, and its planned changes are only in the PostgreSQL state",
                        run.id
                    ),
                )
                .hint("run `engine apply` with the PostgreSQL backend first (it recovers the run), then migrate")]);
            }
            runs.push((run.id, plan.changes.files().to_vec()));
        }
    }
    Ok(runs)
}

/// Where `engine state migrate` moves the state to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateTo {
    /// From `state.path` into the PostgreSQL schema.
    Postgres,
    /// From the PostgreSQL schema into `state.path`.
    Local,
}

/// What a migration moved, and from where to where (for messages).
#[derive(Debug)]
pub struct Migrated {
    /// Counts.
    pub moved: Transferred,
    /// The source's location.
    pub from: String,
    /// The target's location.
    pub to: String,
}

/// Moves the state (see the module docs).
pub fn migrate_state(project: &Project, to: MigrateTo) -> Result<Migrated, Failure> {
    let StateBackend::Postgres(spec) = &project.state_backend else {
        return Err(vec![
            Diagnostic::error(
                "state::migrate_without_postgres",
                "`engine state migrate` moves the state between `state.path` and a PostgreSQL schema, and `engine.yaml` configures no PostgreSQL state",
            )
            .hint("add `backend: postgres` and `url: ${env:STATE_URL}` (and optionally `schema:`) under `state:` in `engine.yaml`, then run `engine state migrate --to postgres`"),
        ]);
    };
    let fail = |e| vec![state_error(e)];
    let (from, target, cache) = match to {
        MigrateTo::Postgres => {
            if !project.state_dir.join("state.db").exists() {
                return Err(vec![
                    Diagnostic::error(
                        "state::migrate_no_source",
                        format!(
                            "there is no local state to move: `{}` holds no `state.db`",
                            project.state_dir.display()
                        ),
                    )
                    .hint("check `state.path` in `engine.yaml`; a new project needs no migration"),
                ]);
            }
            let from = State::Local(open_local(project)?);
            let target = State::Postgres(open_postgres(spec, &project.state_dir)?);
            (from, target, None)
        }
        MigrateTo::Local => {
            // The shared state's snapshots are read into a cache of their own, so they are
            // never copied onto themselves.
            let cache = project
                .state_dir
                .join("tmp")
                .join(format!("migrate-{}", uuid::Uuid::new_v4()));
            let from = State::Postgres(open_postgres(spec, &cache)?);
            // What the shared backend cached in `state.path` is not a local state: without a
            // `state.db` it would read as a lost database beside its snapshots.
            if !project.state_dir.join("state.db").exists() {
                let _ = fs_err::remove_dir_all(project.state_dir.join("snapshots"));
            }
            let target = State::Local(open_local(project)?);
            (from, target, Some(cache))
        }
    };
    let mut names: Vec<String> = from
        .recorded_syncs()
        .map_err(fail)?
        .into_iter()
        .map(|(name, _, _)| name)
        .chain(project.syncs.iter().map(|s| s.name.value.clone()))
        .collect();
    names.sort();
    names.dedup();
    let mut locks = Vec::new();
    for name in &names {
        locks.push(from.lock_sync(name).map_err(fail)?);
        locks.push(target.lock_sync(name).map_err(fail)?);
    }
    let interrupted = interrupted_runs(&from, &names, to)?;
    let moved = engine_state::transfer(&from, &target)
        .and_then(|moved| {
            // A shared state keeps an interrupted run's change files, so any machine recovers it.
            for (run_id, files) in &interrupted {
                target.keep_run_files(*run_id, files)?;
            }
            Ok(moved)
        })
        .map_err(fail);
    drop(locks);
    if let Some(cache) = cache {
        let _ = fs_err::remove_dir_all(cache);
    }
    Ok(Migrated {
        moved: moved?,
        from: from.location(),
        to: target.location(),
    })
}
